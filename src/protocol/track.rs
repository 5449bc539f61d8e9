//! Session-state tracking data in OK packets (CLIENT_SESSION_TRACK): how
//! the server tells Gantry what a statement changed in the session — the
//! current schema, system variables with their new values, "some state
//! changed" (temporary tables, user variables, prepared SQL statements) and
//! the session's own GTID. Gantry asks every backend connection for it, and
//! strips it again for clients that did not ask.

use bytes::{BufMut, BytesMut};

use super::packet::{lenenc_int, put_lenenc_int};

/// SERVER_SESSION_STATE_CHANGED: the OK packet carries state information.
pub const SESSION_STATE_CHANGED: u16 = 0x4000;

/// The entry types of the session state information.
const SYSTEM_VARIABLES: u8 = 0;
const SCHEMA: u8 = 1;
const STATE_CHANGE: u8 = 2;
const GTIDS: u8 = 3;

/// One entry of the session state information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackEntry<'a> {
    /// A system variable's new value (`last_gtid` on MariaDB among them).
    Variable { name: &'a [u8], value: &'a [u8] },
    /// The new current schema; empty when it was dropped.
    Schema(&'a [u8]),
    /// Something not otherwise described changed (temporary table, user
    /// variable, prepared statement, ...).
    StateChanged,
    /// MySQL's `session_track_gtids`: the GTIDs this statement committed.
    Gtids(&'a [u8]),
    /// Transaction characteristics / state, or a type Gantry does not use.
    Other,
}

/// A length-encoded string at the start of `buf`: (bytes, consumed).
fn lenenc_str(buf: &[u8]) -> Option<(&[u8], usize)> {
    let (len, n) = lenenc_int(buf)?;
    let len = usize::try_from(len).ok()?;
    let s = buf.get(n..n.checked_add(len)?)?;
    Some((s, n + len))
}

/// Where the parts of an OK packet lie (payload offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkLayout {
    /// The status flags' offset.
    pub status_at: usize,
    pub status: u16,
    /// Offset of the info field (just after the warning count).
    pub info_at: usize,
    /// The info message.
    pub info: (usize, usize),
    /// The state information's entries (inside its outer length), if any.
    pub state: Option<(usize, usize)>,
}

/// Parses an OK packet (0x00 or 0xFE header) sent on a connection with
/// CLIENT_SESSION_TRACK.
pub fn ok_layout(p: &[u8]) -> Option<OkLayout> {
    let (_, a) = lenenc_int(p.get(1..)?)?;
    let (_, b) = lenenc_int(p.get(1 + a..)?)?;
    let status_at = 1 + a + b;
    let s = p.get(status_at..status_at + 2)?;
    let status = u16::from_le_bytes([s[0], s[1]]);
    let info_at = status_at + 4;
    if p.len() < info_at {
        return None;
    }
    let mut layout = OkLayout {
        status_at,
        status,
        info_at,
        info: (info_at, info_at),
        state: None,
    };
    if p.len() == info_at {
        return Some(layout);
    }
    let (info, n) = lenenc_str(&p[info_at..])?;
    layout.info = (info_at + n - info.len(), info_at + n);
    let after = info_at + n;
    if status & SESSION_STATE_CHANGED != 0 && p.len() > after {
        let (len, h) = lenenc_int(&p[after..])?;
        let start = after + h;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > p.len() {
            return None;
        }
        layout.state = Some((start, end));
    }
    Some(layout)
}

/// The entries of a session state information block.
pub fn entries(mut buf: &[u8]) -> impl Iterator<Item = TrackEntry<'_>> {
    std::iter::from_fn(move || {
        let (&kind, rest) = buf.split_first()?;
        let Some((data, n)) = lenenc_str(rest) else {
            buf = &[];
            return None;
        };
        buf = &rest[n..];
        Some(match kind {
            SYSTEM_VARIABLES => match lenenc_str(data) {
                Some((name, m)) => match lenenc_str(&data[m..]) {
                    Some((value, _)) => TrackEntry::Variable { name, value },
                    None => TrackEntry::Other,
                },
                None => TrackEntry::Other,
            },
            SCHEMA => lenenc_str(data).map_or(TrackEntry::Other, |(s, _)| TrackEntry::Schema(s)),
            STATE_CHANGE => TrackEntry::StateChanged,
            // One byte of encoding specification, then the GTID set.
            GTIDS => data
                .get(1..)
                .and_then(lenenc_str)
                .map_or(TrackEntry::Other, |(g, _)| TrackEntry::Gtids(g)),
            _ => TrackEntry::Other,
        })
    })
}

/// What a client that asked for session tracking would be told directly:
/// the servers' defaults for new sessions (Gantry tracks more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackView {
    pub schema: bool,
    pub state_change: bool,
    pub gtids: bool,
    /// `session_track_system_variables`, lower case; `*` means all.
    pub variables: Vec<String>,
}

impl TrackView {
    /// From the values of `session_track_schema`, `_state_change`,
    /// `_gtids` (MySQL only; empty elsewhere) and `_system_variables`.
    pub fn from_settings(schema: &str, state_change: &str, gtids: &str, variables: &str) -> Self {
        let on = |v: &str| v == "1" || v.eq_ignore_ascii_case("ON");
        Self {
            schema: on(schema),
            state_change: on(state_change),
            gtids: !gtids.is_empty() && !gtids.eq_ignore_ascii_case("OFF"),
            variables: variables
                .split(',')
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }

    fn shows(&self, entry: &TrackEntry<'_>) -> bool {
        match entry {
            TrackEntry::Schema(_) => self.schema,
            TrackEntry::StateChanged => self.state_change,
            TrackEntry::Gtids(_) => self.gtids,
            TrackEntry::Variable { name, .. } => self
                .variables
                .iter()
                .any(|v| v == "*" || v.as_bytes().eq_ignore_ascii_case(name)),
            TrackEntry::Other => true,
        }
    }

    /// Whether every entry of `block` is one the client would see.
    pub fn shows_all(&self, block: &[u8]) -> bool {
        entries(block).all(|e| self.shows(&e))
    }
}

/// The raw entries of a block, each with its bytes.
fn raw_entries(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let rest = buf.get(1..)?;
        let (data, n) = lenenc_str(rest)?;
        let _ = data;
        let (entry, tail) = buf.split_at(1 + n);
        buf = tail;
        Some(entry)
    })
}

/// Writes `p` (an OK packet payload with state information) keeping only
/// the entries `view` shows; with no view, or nothing left to show, as a
/// client without CLIENT_SESSION_TRACK sees it (no state information, the
/// flag cleared).
pub fn filter_state(p: &[u8], layout: &OkLayout, view: Option<&TrackView>, out: &mut BytesMut) {
    let Some((a, b)) = layout.state else {
        out.put_slice(p);
        return;
    };
    let kept: Vec<&[u8]> = match view {
        Some(v) => raw_entries(&p[a..b])
            .filter(|raw| entries(raw).next().is_some_and(|e| v.shows(&e)))
            .collect(),
        None => Vec::new(),
    };
    if kept.is_empty() {
        return strip_state(p, layout, out);
    }
    out.put_slice(&p[..layout.info.1]);
    let len: usize = kept.iter().map(|k| k.len()).sum();
    put_lenenc_int(out, len as u64);
    for k in kept {
        out.put_slice(k);
    }
}

/// Writes `p` (an OK packet payload with state information) as it would
/// look to a client without CLIENT_SESSION_TRACK: no state information, the
/// flag cleared, the info message kept.
pub fn strip_state(p: &[u8], layout: &OkLayout, out: &mut BytesMut) {
    out.put_slice(&p[..layout.status_at]);
    out.put_u16_le(layout.status & !SESSION_STATE_CHANGED);
    out.put_slice(&p[layout.status_at + 2..layout.info_at]);
    let (a, b) = layout.info;
    if b > a {
        put_lenenc_int(out, (b - a) as u64);
        out.put_slice(&p[a..b]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenenc(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    /// An OK packet as MariaDB sends it with CLIENT_SESSION_TRACK.
    fn ok_with_state(info: &[u8], entries: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0x00, 1, 5];
        p.extend_from_slice(&(0x0002 | SESSION_STATE_CHANGED).to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        lenenc(&mut p, info);
        let mut block = Vec::new();
        for (kind, data) in entries {
            block.push(*kind);
            lenenc(&mut block, data);
        }
        lenenc(&mut p, &block);
        p
    }

    fn var(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        lenenc(&mut d, name);
        lenenc(&mut d, value);
        d
    }

    #[test]
    fn parses_every_entry_kind() {
        let mut schema = Vec::new();
        lenenc(&mut schema, b"shop");
        let mut gtids = vec![0];
        lenenc(&mut gtids, b"3e11fa47-71ca-11e1-9e33-c80aa9429562:23");
        let p = ok_with_state(
            b"",
            &[
                (0, var(b"time_zone", b"+03:00")),
                (1, schema),
                (2, b"1".to_vec()),
                (3, gtids),
                (5, b"________".to_vec()),
            ],
        );
        let l = ok_layout(&p).unwrap();
        assert_eq!(l.status & SESSION_STATE_CHANGED, SESSION_STATE_CHANGED);
        let (a, b) = l.state.unwrap();
        let got: Vec<_> = entries(&p[a..b]).collect();
        assert_eq!(
            got,
            vec![
                TrackEntry::Variable {
                    name: b"time_zone",
                    value: b"+03:00"
                },
                TrackEntry::Schema(b"shop"),
                TrackEntry::StateChanged,
                TrackEntry::Gtids(b"3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
                TrackEntry::Other,
            ]
        );
    }

    #[test]
    fn dropped_schema_is_an_empty_entry() {
        let p = ok_with_state(b"", &[(1, vec![0])]);
        let l = ok_layout(&p).unwrap();
        let (a, b) = l.state.unwrap();
        assert_eq!(
            entries(&p[a..b]).collect::<Vec<_>>(),
            [TrackEntry::Schema(b"")]
        );
    }

    #[test]
    fn strip_keeps_counts_and_info_and_clears_the_flag() {
        let p = ok_with_state(b"Rows matched: 1", &[(2, b"1".to_vec())]);
        let l = ok_layout(&p).unwrap();
        let mut out = BytesMut::new();
        strip_state(&p, &l, &mut out);
        let mut want = vec![0x00, 1, 5, 0x02, 0x00, 0, 0];
        lenenc(&mut want, b"Rows matched: 1");
        assert_eq!(&out[..], &want[..]);
        let p = ok_with_state(b"", &[(2, b"1".to_vec())]);
        let l = ok_layout(&p).unwrap();
        let mut out = BytesMut::new();
        strip_state(&p, &l, &mut out);
        assert_eq!(&out[..], &[0x00, 1, 5, 0x02, 0x00, 0, 0]);
    }

    #[test]
    fn a_tracking_client_sees_what_its_settings_show() {
        let mut schema = Vec::new();
        lenenc(&mut schema, b"shop");
        let p = ok_with_state(
            b"",
            &[
                (0, var(b"last_gtid", b"0-1-9")),
                (1, schema.clone()),
                (0, var(b"time_zone", b"+03:00")),
                (2, b"1".to_vec()),
            ],
        );
        let l = ok_layout(&p).unwrap();
        let view =
            TrackView::from_settings("ON", "OFF", "", "autocommit,character_set_client,time_zone");
        let (a, b) = l.state.unwrap();
        assert!(!view.shows_all(&p[a..b]));
        let mut out = BytesMut::new();
        filter_state(&p, &l, Some(&view), &mut out);
        let want = ok_with_state(b"", &[(1, schema), (0, var(b"time_zone", b"+03:00"))]);
        assert_eq!(&out[..], &want[..]);
        // Nothing left to show: no state information at all.
        let p = ok_with_state(b"", &[(0, var(b"last_gtid", b"0-1-9"))]);
        let l = ok_layout(&p).unwrap();
        let mut out = BytesMut::new();
        filter_state(&p, &l, Some(&view), &mut out);
        assert_eq!(&out[..], &[0x00, 1, 5, 0x02, 0x00, 0, 0]);
        let all = TrackView::from_settings("1", "1", "OWN_GTID", "*");
        assert!(all.shows_all(&p[l.state.unwrap().0..l.state.unwrap().1]));
    }

    #[test]
    fn plain_and_malformed_packets() {
        let plain = [0x00, 0, 0, 2, 0, 0, 0];
        let l = ok_layout(&plain).unwrap();
        assert_eq!(l.state, None);
        assert_eq!(l.info, (7, 7));
        assert!(ok_layout(&[0x00, 0]).is_none());
        // The flag set but the block cut short: no panic, no layout.
        let mut p = ok_with_state(b"", &[(0, var(b"a", b"b"))]);
        p.truncate(p.len() - 2);
        assert!(ok_layout(&p).is_none());
        // Garbage entries end the iteration.
        assert_eq!(entries(&[0, 200, 1]).count(), 0);
        assert_eq!(
            entries(&[0, 2, 9, 9]).collect::<Vec<_>>(),
            [TrackEntry::Other]
        );
    }
}
