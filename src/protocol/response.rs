//! Finds where a server response ends while it streams through, reading only
//! packet headers, first bytes and the OK/EOF/ERR packets that close a result.
//! Rows are never decoded: a row is passed on as soon as its header and first
//! byte show it is not a terminator, even before the rest of it has arrived.

use super::packet::{header, lenenc_int, MAX_PAYLOAD};
use super::status;
use super::track::{self, SESSION_STATE_CHANGED};

/// What kind of response the forwarded command produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY: OK, ERR, LOCAL INFILE request or text result sets.
    Query,
    /// COM_STMT_EXECUTE: OK, ERR or binary result sets (maybe a cursor).
    Execute,
    /// COM_STMT_PREPARE: statement OK, parameter and column definitions.
    Prepare,
    /// COM_FIELD_LIST: column definitions closed by EOF (or ERR).
    FieldList,
    /// COM_STMT_FETCH: rows closed by EOF (or ERR).
    Fetch,
    /// Commands answered by exactly one packet (OK, ERR, EOF or a string).
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanState {
    /// More packets belong to this response.
    More,
    /// The response is complete.
    Done,
    /// The server asked for a LOCAL INFILE: the client's file packets must be
    /// forwarded before the response continues.
    LocalInfile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    First,
    Columns(u64),
    ColumnsEof,
    Rows,
    PrepParams(u64),
    PrepParamsEof,
    PrepColumns(u64),
    PrepColumnsEof,
    FieldList,
    Done,
}

/// A malformed server response: the connection cannot be trusted any more.
#[derive(Debug, thiserror::Error)]
#[error("malformed server response: {0}")]
pub struct ResponseError(pub &'static str);

/// What COM_STMT_PREPARE returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreparedInfo {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

#[derive(Debug)]
pub struct ResponseScanner {
    expect: Expect,
    deprecate_eof: bool,
    phase: Phase,
    /// Payload bytes of the current physical packet still to pass through.
    skip: usize,
    /// The current physical packet is full size, so a continuation follows.
    continued: bool,
    /// Sequence id of the last packet passed on.
    pub last_seq: u8,
    /// Status flags of the last OK/EOF packet seen.
    pub status: Option<u16>,
    /// The response ended with an ERR packet.
    pub error: bool,
    /// The ERR packet's code, when `error`.
    pub error_code: u16,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub prepared: Option<PreparedInfo>,
    /// The connection has CLIENT_SESSION_TRACK: OK packets may carry state
    /// information, collected into `track`.
    pub session_track: bool,
    /// Session state information of every OK packet, in order.
    pub track: Vec<u8>,
    /// Some OK or EOF packet had SERVER_SESSION_STATE_CHANGED.
    pub state_changed: bool,
    /// Rewrite state information in OK packets to what the client would
    /// see directly (none, if it did not ask for session tracking; else what
    /// `view` shows): the scanner stops after such a packet, see
    /// `take_rewrite`.
    pub strip: bool,
    pub view: Option<std::sync::Arc<track::TrackView>>,
    strip_pending: bool,
    rewrite: Option<usize>,
}

impl ResponseScanner {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let phase = match expect {
            Expect::FieldList => Phase::FieldList,
            Expect::Fetch => Phase::Rows,
            _ => Phase::First,
        };
        Self {
            expect,
            deprecate_eof,
            phase,
            skip: 0,
            continued: false,
            last_seq: 0,
            status: None,
            error: false,
            error_code: 0,
            affected_rows: 0,
            last_insert_id: 0,
            prepared: None,
            session_track: false,
            track: Vec::new(),
            state_changed: false,
            strip: false,
            view: None,
            strip_pending: false,
            rewrite: None,
        }
    }

    /// After `scan`: the offset in the scanned buffer of an OK packet that
    /// must be passed on without its state information (`strip`). It ends
    /// where the forwardable bytes end; scan again for the rest.
    pub fn take_rewrite(&mut self) -> Option<usize> {
        self.rewrite.take()
    }

    /// True when no packet is half passed on, so Gantry may inject its own
    /// ERR packet into the client stream.
    pub fn at_packet_boundary(&self) -> bool {
        self.skip == 0 && !self.continued
    }

    /// After the client's LOCAL INFILE data was forwarded the server answers
    /// with OK or ERR.
    pub fn resume_after_local_infile(&mut self, last_client_seq: u8) {
        self.phase = Phase::First;
        self.last_seq = last_client_seq;
    }

    /// Scans `buf` (bytes received from the server and not yet forwarded).
    /// Returns how many leading bytes may be forwarded now and the state.
    pub fn scan(&mut self, buf: &[u8]) -> Result<(usize, ScanState), ResponseError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok((pos, ScanState::More));
                }
            }
            if self.phase == Phase::Done && !self.continued {
                return Ok((pos, ScanState::Done));
            }
            if buf.len() - pos < 4 {
                return Ok((pos, ScanState::More));
            }
            let (len, seq) = header(&buf[pos..]);
            if self.continued {
                self.pass(len, seq);
                pos += 4;
                continue;
            }
            let avail = buf.len() - pos - 4;
            if len > 0 && avail == 0 {
                return Ok((pos, ScanState::More));
            }
            let first = if len > 0 { buf[pos + 4] } else { 0 };
            if !self.needs_whole(first, len) {
                self.on_passed_packet();
                self.pass(len, seq);
                pos += 4;
                continue;
            }
            if len >= MAX_PAYLOAD {
                return Err(ResponseError("oversized control packet"));
            }
            if avail < len {
                return Ok((pos, ScanState::More));
            }
            let payload = &buf[pos + 4..pos + 4 + len];
            self.last_seq = seq;
            let start = pos;
            pos += 4 + len;
            if self.on_whole_packet(payload)? {
                return Ok((pos, ScanState::LocalInfile));
            }
            if std::mem::take(&mut self.strip_pending) {
                self.rewrite = Some(start);
                let state = if self.phase == Phase::Done {
                    ScanState::Done
                } else {
                    ScanState::More
                };
                return Ok((pos, state));
            }
        }
    }

    fn pass(&mut self, len: usize, seq: u8) {
        self.skip = len;
        self.continued = len == MAX_PAYLOAD;
        self.last_seq = seq;
    }

    fn is_terminator(&self, first: u8, len: usize) -> bool {
        first == 0xfe
            && if self.deprecate_eof {
                len < MAX_PAYLOAD
            } else {
                len < 9
            }
    }

    /// Whether the packet starting with `first` must be inspected whole.
    fn needs_whole(&self, first: u8, len: usize) -> bool {
        match self.phase {
            Phase::First | Phase::ColumnsEof => true,
            Phase::Rows | Phase::FieldList => first == 0xff || self.is_terminator(first, len),
            _ => false,
        }
    }

    /// Phase bookkeeping for a packet passed through without inspection.
    fn on_passed_packet(&mut self) {
        self.phase = match self.phase {
            Phase::Columns(n) if n > 1 => Phase::Columns(n - 1),
            Phase::Columns(_) => self.after_columns(),
            Phase::PrepParams(n) if n > 1 => Phase::PrepParams(n - 1),
            Phase::PrepParams(_) if !self.deprecate_eof => Phase::PrepParamsEof,
            Phase::PrepParams(_) | Phase::PrepParamsEof => self.prepared_columns_phase(),
            Phase::PrepColumns(n) if n > 1 => Phase::PrepColumns(n - 1),
            Phase::PrepColumns(_) if !self.deprecate_eof => Phase::PrepColumnsEof,
            Phase::PrepColumns(_) | Phase::PrepColumnsEof => Phase::Done,
            other => other,
        };
    }

    fn after_columns(&self) -> Phase {
        if self.deprecate_eof {
            Phase::Rows
        } else {
            Phase::ColumnsEof
        }
    }

    fn prepared_columns_phase(&self) -> Phase {
        match self.prepared {
            Some(p) if p.columns > 0 => Phase::PrepColumns(p.columns as u64),
            _ => Phase::Done,
        }
    }

    /// Handles a packet inspected whole; returns true for a LOCAL INFILE
    /// request.
    fn on_whole_packet(&mut self, p: &[u8]) -> Result<bool, ResponseError> {
        let first = p.first().copied().unwrap_or(0);
        if first == 0xff && self.phase != Phase::ColumnsEof {
            self.error = true;
            self.error_code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
            self.phase = Phase::Done;
            return Ok(false);
        }
        match self.phase {
            Phase::First => self.on_first(p),
            Phase::ColumnsEof => {
                let st = eof_status(p).ok_or(ResponseError("bad EOF after columns"))?;
                self.status = Some(st);
                self.state_changed |= st & SESSION_STATE_CHANGED != 0;
                // A cursor was opened: rows come later with COM_STMT_FETCH.
                self.phase = if self.expect == Expect::Execute && st & status::CURSOR_EXISTS != 0 {
                    Phase::Done
                } else {
                    Phase::Rows
                };
                Ok(false)
            }
            Phase::Rows | Phase::FieldList => {
                let st = if p.len() < 9 {
                    eof_status(p)
                } else {
                    self.parse_ok(p)
                }
                .ok_or(ResponseError("bad result set terminator"))?;
                self.end_result(st);
                Ok(false)
            }
            _ => Err(ResponseError("unexpected packet")),
        }
    }

    fn on_first(&mut self, p: &[u8]) -> Result<bool, ResponseError> {
        let first = p.first().copied().unwrap_or(0);
        match self.expect {
            Expect::Single => {
                if first == 0x00 && p.len() >= 7 {
                    let st = self.parse_ok(p);
                    self.status = st.or(self.status);
                } else if first == 0xfe && p.len() < 9 {
                    self.status = eof_status(p).or(self.status);
                }
                self.phase = Phase::Done;
                Ok(false)
            }
            Expect::Prepare => {
                if first != 0x00 || p.len() < 9 {
                    return Err(ResponseError("bad COM_STMT_PREPARE answer"));
                }
                let info = PreparedInfo {
                    statement_id: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
                    columns: u16::from_le_bytes([p[5], p[6]]),
                    params: u16::from_le_bytes([p[7], p[8]]),
                };
                self.prepared = Some(info);
                self.phase = if info.params > 0 {
                    Phase::PrepParams(info.params as u64)
                } else {
                    self.prepared_columns_phase()
                };
                Ok(false)
            }
            _ => match first {
                0x00 => {
                    let st = self.parse_ok(p).ok_or(ResponseError("bad OK packet"))?;
                    self.end_result(st);
                    Ok(false)
                }
                0xfb if self.expect == Expect::Query => Ok(true),
                _ => {
                    let (n, _) = lenenc_int(p).ok_or(ResponseError("bad column count"))?;
                    if n == 0 {
                        return Err(ResponseError("zero column count"));
                    }
                    self.phase = Phase::Columns(n);
                    Ok(false)
                }
            },
        }
    }

    fn end_result(&mut self, st: u16) {
        self.status = Some(st);
        self.state_changed |= st & SESSION_STATE_CHANGED != 0;
        self.phase = if st & status::MORE_RESULTS_EXISTS != 0 {
            Phase::First
        } else {
            Phase::Done
        };
    }

    /// OK packet (0x00 or 0xFE header): affected rows, insert id, status.
    fn parse_ok(&mut self, p: &[u8]) -> Option<u16> {
        let (affected, a) = lenenc_int(p.get(1..)?)?;
        let (insert_id, b) = lenenc_int(p.get(1 + a..)?)?;
        let s = p.get(1 + a + b..3 + a + b)?;
        self.affected_rows = affected;
        self.last_insert_id = insert_id;
        let st = u16::from_le_bytes([s[0], s[1]]);
        if st & SESSION_STATE_CHANGED != 0 {
            self.state_changed = true;
            if self.session_track {
                if let Some(layout) = track::ok_layout(p) {
                    if let Some((a, b)) = layout.state {
                        self.track.extend_from_slice(&p[a..b]);
                        self.strip_pending = self.strip
                            && !self.view.as_ref().is_some_and(|v| v.shows_all(&p[a..b]));
                    }
                }
            }
        }
        Some(st)
    }
}

/// Status flags of a classic EOF packet: 0xFE, warnings(2), status(2).
pub(crate) fn eof_status(p: &[u8]) -> Option<u16> {
    if p.first() != Some(&0xfe) {
        return None;
    }
    let s = p.get(3..5)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

#[cfg(test)]
mod tests;
