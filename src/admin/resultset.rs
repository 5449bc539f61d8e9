//! Text-protocol result sets built by the admin port: column definitions
//! via mysql_common's `Column` serializer, rows as length-encoded strings.

use bytes::BytesMut;
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::packets::Column;
use mysql_common::proto::MySerialize;
use std::sync::OnceLock;

use crate::protocol::packet::put_packet;
use crate::protocol::reply::{eof_packet, ok_packet, put_lenenc, put_lenenc_str};
use crate::protocol::status;

/// utf8mb3_general_ci, what MySQL servers send for text columns.
const UTF8_GENERAL_CI: u16 = 33;
const BINARY: u16 = 63;

/// How a column is declared to the client (numbers are right-aligned by
/// the `mysql` CLI, text left-aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
}

/// A result set; `None` cells are SQL NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<(String, Kind)>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    pub fn new(columns: &[(&str, Kind)]) -> Self {
        Self {
            columns: columns.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells become NULL, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<Option<String>>) {
        row.resize(self.columns.len(), None);
        self.rows.push(row);
    }

    /// Appends the whole result set, packets numbered from `seq`. Under
    /// CLIENT_DEPRECATE_EOF the column EOF is skipped and an OK with a 0xFE
    /// header ends the rows; otherwise classic EOFs.
    pub fn write(&self, out: &mut BytesMut, mut seq: u8, deprecate_eof: bool) {
        let mut payload = Vec::with_capacity(128);
        put_lenenc(&mut payload, self.columns.len() as u64);
        seq = put_packet(out, seq, &payload);
        for (i, (name, kind)) in self.columns.iter().enumerate() {
            payload.clear();
            column_def(name, *kind, self.max_len(i)).serialize(&mut payload);
            seq = put_packet(out, seq, &payload);
        }
        let st = status::AUTOCOMMIT;
        if !deprecate_eof {
            eof_packet(out, seq, st);
            seq = seq.wrapping_add(1);
        }
        for row in &self.rows {
            payload.clear();
            for cell in row {
                match cell {
                    Some(v) => put_lenenc_str(&mut payload, v.as_bytes()),
                    None => payload.push(0xfb),
                }
            }
            seq = put_packet(out, seq, &payload);
        }
        if deprecate_eof {
            ok_packet(out, seq, 0, st, true);
        } else {
            eof_packet(out, seq, st);
        }
    }
}

impl ResultSet {
    /// Longest value of column `i` (a display width hint for clients).
    fn max_len(&self, i: usize) -> u32 {
        let longest = self
            .rows
            .iter()
            .filter_map(|r| r.get(i).and_then(|c| c.as_ref()))
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0);
        let name = self.columns.get(i).map_or(0, |(n, _)| n.chars().count());
        u32::try_from(longest.max(name).max(1)).unwrap_or(u32::MAX)
    }
}

fn column_def(name: &str, kind: Kind, chars: u32) -> Column {
    let (ty, charset, len, flags) = match kind {
        Kind::Text => (
            ColumnType::MYSQL_TYPE_VAR_STRING,
            UTF8_GENERAL_CI,
            chars.saturating_mul(3),
            ColumnFlags::empty(),
        ),
        Kind::Int => (
            ColumnType::MYSQL_TYPE_LONGLONG,
            BINARY,
            chars,
            ColumnFlags::NUM_FLAG | ColumnFlags::UNSIGNED_FLAG,
        ),
    };
    let col = Column::new(ty).with_name(name.as_bytes()).with_flags(flags);
    set_charset_and_length(col, charset, len)
}

/// On the wire the character set (2 bytes) comes before the column length
/// (4 bytes). mysql_common 0.37/0.38 serialize the two fields the other
/// way round, so when that is detected the six bytes are fed in through
/// the swapped fields to come out in protocol order.
fn set_charset_and_length(col: Column, charset: u16, len: u32) -> Column {
    if !serializer_swaps_fields() {
        return col.with_character_set(charset).with_column_length(len);
    }
    let mut wire = [0u8; 6];
    wire[..2].copy_from_slice(&charset.to_le_bytes());
    wire[2..].copy_from_slice(&len.to_le_bytes());
    let first = u32::from_le_bytes([wire[0], wire[1], wire[2], wire[3]]);
    let second = u16::from_le_bytes([wire[4], wire[5]]);
    col.with_column_length(first).with_character_set(second)
}

/// Probes the serializer once: where do the character set bytes land?
fn serializer_swaps_fields() -> bool {
    static SWAPS: OnceLock<bool> = OnceLock::new();
    *SWAPS.get_or_init(|| {
        let mut buf = Vec::new();
        Column::new(ColumnType::MYSQL_TYPE_NULL)
            .with_character_set(0xABCD)
            .serialize(&mut buf);
        // The packet ends with 12 fixed bytes after the 0x0c length byte;
        // the character set should be the first two.
        let at = buf.len().saturating_sub(12);
        buf.get(at..at + 2) != Some(&[0xCD, 0xAB][..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::{complete_len, join_payload};

    fn packets(mut buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(n) = complete_len(buf) {
            let (p, seq) = join_payload(&buf[..n]);
            out.push((seq, p.into_owned()));
            buf = &buf[n..];
        }
        assert!(buf.is_empty());
        out
    }

    fn sample() -> ResultSet {
        let mut rs = ResultSet::new(&[("backend_ndx", Kind::Int), ("address", Kind::Text)]);
        rs.push(vec![Some("1".into()), Some("127.0.0.1:3306".into())]);
        rs.push(vec![Some("2".into())]);
        rs
    }

    #[test]
    fn column_definition_is_in_protocol_order() {
        let mut buf = Vec::new();
        column_def("address", Kind::Text, 14).serialize(&mut buf);
        let fixed = &buf[buf.len() - 13..];
        assert_eq!(fixed[0], 0x0c);
        assert_eq!(u16::from_le_bytes([fixed[1], fixed[2]]), UTF8_GENERAL_CI);
        assert_eq!(
            u32::from_le_bytes([fixed[3], fixed[4], fixed[5], fixed[6]]),
            42
        );
        assert_eq!(fixed[7], ColumnType::MYSQL_TYPE_VAR_STRING as u8);
        // catalog "def", then empty schema/table/org_table, name, empty org_name.
        assert_eq!(&buf[..4], b"\x03def");
        assert_eq!(&buf[7..15], b"\x07address");
    }

    #[test]
    fn classic_eof_layout() {
        let mut out = BytesMut::new();
        sample().write(&mut out, 1, false);
        let p = packets(&out);
        let seqs: Vec<u8> = p.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(p[0].1, [2]);
        assert_eq!(p[3].1[0], 0xfe);
        assert_eq!(p[4].1, b"\x011\x0e127.0.0.1:3306");
        assert_eq!(p[5].1, b"\x012\xfb");
        assert_eq!(p[6].1[0], 0xfe);
        assert!(p[6].1.len() < 9);
    }

    #[test]
    fn deprecate_eof_layout() {
        let mut out = BytesMut::new();
        sample().write(&mut out, 1, true);
        let p = packets(&out);
        assert_eq!(p.len(), 6);
        assert_ne!(p[3].1[0], 0xfe, "no EOF after the column definitions");
        assert_eq!(
            p[5].1[0], 0xfe,
            "OK packet with the EOF header ends the rows"
        );
        assert_eq!(p[5].0, 6);
    }
}
