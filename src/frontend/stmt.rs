//! Binary prepared statements: Gantry's own statement ids, and the packet
//! rewriting that maps them to whichever backend connection executes them.
//! Statements are prepared lazily on each backend connection (cached there
//! by schema and text), so read-only ones can run on any replica.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::BytesMut;

use crate::protocol::packet::{put_packet, MAX_PAYLOAD};
use crate::router::Classification;

/// CURSOR_TYPE_READ_ONLY in COM_STMT_EXECUTE's flags.
pub const CURSOR_READ_ONLY: u8 = 0x01;

/// A statement a client prepared, under Gantry's id.
#[derive(Debug)]
pub struct ClientStatement {
    /// Cache key on backend connections: hash of schema and text.
    pub key: u64,
    pub sql: Arc<[u8]>,
    /// The statement's classification: its route, and what it does to the
    /// session when executed.
    pub class: Classification,
    pub params: u16,
    /// Parameter types from the last execute that bound them; replayed when
    /// a later execute relies on them on another connection.
    pub param_types: Option<Vec<u8>>,
    /// COM_STMT_SEND_LONG_DATA packets waiting for the next execute.
    pub long_data: LongData,
    /// Backend statement id of an open cursor on the held connection.
    pub cursor: Option<u32>,
}

/// Long data of one statement, bounded as the server bounds it: once a
/// parameter's data outgrows max_allowed_packet, nothing more is kept and
/// every execute fails until COM_STMT_RESET.
#[derive(Debug, Default)]
pub struct LongData {
    pub packets: Vec<BytesMut>,
    /// Data bytes per parameter that got any.
    per_param: Vec<(u16, usize)>,
    /// Memory held, counted against the session's bound.
    held: usize,
    pub overflow: bool,
}

/// Memory a kept packet costs beyond its bytes (its handle in the list).
const PACKET_OVERHEAD: usize = 64;
/// COM_STMT_SEND_LONG_DATA: header, command, statement id, parameter.
const LONG_DATA_PREFIX: usize = 4 + 1 + 4 + 2;

impl LongData {
    /// Adds `data` bytes to parameter `param`; false when that takes it
    /// over `max_packet`.
    fn grow(&mut self, param: u16, data: usize, max_packet: usize) -> bool {
        let i = match self.per_param.iter().position(|(p, _)| *p == param) {
            Some(i) => i,
            None => {
                self.per_param.push((param, 0));
                self.per_param.len() - 1
            }
        };
        self.per_param[i].1 += data;
        self.per_param[i].1 <= max_packet
    }
}

/// The error the server gives at execute for long data it refused.
pub fn long_data_too_large() -> crate::protocol::reply::MyError {
    crate::protocol::reply::MyError::new(
        1105,
        "HY000",
        "Parameter of prepared statement which is set through mysql_send_long_data() is longer \
         than 'max_allowed_packet' bytes",
    )
}

#[derive(Debug, Default)]
pub struct Statements {
    next_id: u32,
    map: HashMap<u32, ClientStatement>,
    /// Long data held for all statements: at most twice max_allowed_packet
    /// per session (a server keeps it per parameter; Gantry bounds the
    /// client's memory).
    long_data_held: usize,
}

impl Statements {
    pub fn insert(&mut self, stmt: ClientStatement) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.map.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        self.map.insert(self.next_id, stmt);
        self.next_id
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut ClientStatement> {
        self.map.get_mut(&id)
    }

    /// Returns a statement taken out with `remove` under the same id.
    pub fn put_back(&mut self, id: u32, stmt: ClientStatement) {
        self.map.insert(id, stmt);
    }

    /// Takes a statement out (to execute it; see `put_back`).
    pub fn remove(&mut self, id: u32) -> Option<ClientStatement> {
        self.map.remove(&id)
    }

    /// COM_STMT_CLOSE: the statement and its long data are gone.
    pub fn close(&mut self, id: u32) -> Option<ClientStatement> {
        let mut stmt = self.map.remove(&id)?;
        self.take_long_data(&mut stmt);
        Some(stmt)
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.long_data_held = 0;
    }

    /// Keeps a COM_STMT_SEND_LONG_DATA packet (header included) for the
    /// next execute of its statement, within the bounds of `LongData`.
    pub fn add_long_data(&mut self, packet: BytesMut, max_packet: usize) {
        let Some(id) = statement_id(&packet[4..]) else {
            return;
        };
        let Some(stmt) = self.map.get_mut(&id) else {
            return;
        };
        let long = &mut stmt.long_data;
        if long.overflow || packet.len() < LONG_DATA_PREFIX {
            return;
        }
        let param = u16::from_le_bytes([packet[9], packet[10]]);
        let cost = packet.len() + PACKET_OVERHEAD;
        let within = long.grow(param, packet.len() - LONG_DATA_PREFIX, max_packet)
            && self.long_data_held + cost <= max_packet.saturating_mul(2);
        if within {
            self.long_data_held += cost;
            long.held += cost;
            long.packets.push(packet);
        } else {
            self.long_data_held -= long.held;
            *long = LongData {
                overflow: true,
                ..LongData::default()
            };
        }
    }

    /// The statement's long data, no longer counted (sent, or reset).
    pub fn take_long_data(&mut self, stmt: &mut ClientStatement) -> LongData {
        let long = std::mem::take(&mut stmt.long_data);
        self.long_data_held -= long.held;
        long
    }

    /// Whether a statement of this session has the backend cache key `key`.
    pub fn uses_key(&self, key: u64) -> bool {
        self.map.values().any(|s| s.key == key)
    }

    pub fn any_cursor(&self) -> bool {
        self.map.values().any(|s| s.cursor.is_some())
    }
}

pub fn statement_key(schema: Option<&str>, sql: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    schema.hash(&mut h);
    sql.hash(&mut h);
    h.finish()
}

/// The statement id in COM_STMT_EXECUTE/FETCH/CLOSE/RESET/SEND_LONG_DATA
/// payloads (bytes 1..5).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(1..5)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Rewrites the statement id of a one-packet command in place (header
/// included in `packet`).
pub fn set_statement_id(packet: &mut [u8], id: u32) {
    if packet.len() >= 9 {
        packet[5..9].copy_from_slice(&id.to_le_bytes());
    }
}

/// Builds the COM_STMT_EXECUTE to send to a backend from the client's
/// payload: the backend's statement id, and the parameter types inserted
/// when the client relies on types bound by an earlier execute. Records the
/// types when the client binds new ones. Returns false if the payload is
/// malformed.
pub fn rewrite_execute(
    payload: &[u8],
    backend_id: u32,
    stmt: &mut ClientStatement,
    out: &mut BytesMut,
) -> bool {
    out.clear();
    let n = stmt.params as usize;
    if payload.len() < 10 {
        return false;
    }
    let flag_at = 10 + n.div_ceil(8);
    let bound = payload.get(flag_at).copied();
    let types = payload.get(flag_at + 1..flag_at + 1 + 2 * n);
    if n > 0 && (bound.is_none() || (bound == Some(1) && types.is_none())) {
        return false;
    }
    // The payload is framed once it is built: a header slot first, filled
    // in at the end (the reused `out` is the only buffer).
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&payload[..10]);
    out[5..9].copy_from_slice(&backend_id.to_le_bytes());
    if n == 0 {
        out.extend_from_slice(&payload[10..]);
    } else {
        out.extend_from_slice(&payload[10..flag_at]);
        if let (Some(1), Some(types)) = (bound, types) {
            let kept = stmt.param_types.get_or_insert_with(Vec::new);
            kept.clear();
            kept.extend_from_slice(types);
            out.extend_from_slice(&payload[flag_at..]);
        } else if let Some(types) = &stmt.param_types {
            out.extend_from_slice(&[1]);
            out.extend_from_slice(types);
            out.extend_from_slice(&payload[flag_at + 1..]);
        } else {
            out.extend_from_slice(&payload[flag_at..]);
        }
    }
    let len = out.len() - 4;
    if len < MAX_PAYLOAD {
        out[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
        out[3] = 0;
    } else {
        // Longer than one packet (types inserted into a buffered execute
        // near 16 MiB): framed into continuation packets, once.
        let body = out.split_off(4);
        out.clear();
        put_packet(out, 0, &body);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(params: u16) -> ClientStatement {
        ClientStatement {
            key: 1,
            sql: Arc::from(&b"SELECT ?"[..]),
            class: crate::router::classify(b"SELECT ?"),
            params,
            param_types: None,
            long_data: LongData::default(),
            cursor: None,
        }
    }

    fn long_packet(id: u32, param: u16, data: usize) -> BytesMut {
        let mut payload = vec![0x18];
        payload.extend_from_slice(&id.to_le_bytes());
        payload.extend_from_slice(&param.to_le_bytes());
        payload.resize(payload.len() + data, b'x');
        let mut out = BytesMut::new();
        put_packet(&mut out, 0, &payload);
        out
    }

    #[test]
    fn long_data_is_bounded_per_parameter_like_the_server() {
        let mut stmts = Statements::default();
        let id = stmts.insert(stmt(2));
        stmts.add_long_data(long_packet(id, 0, 600), 1000);
        stmts.add_long_data(long_packet(id, 0, 400), 1000);
        // Each parameter has its own allowance.
        stmts.add_long_data(long_packet(id, 1, 900), 10_000);
        let mut s = stmts.remove(id).unwrap();
        let long = stmts.take_long_data(&mut s);
        assert!(!long.overflow);
        assert_eq!(long.packets.len(), 3);
        assert_eq!(stmts.long_data_held, 0);
        stmts.put_back(id, s);
        // One byte over: nothing kept, the execute will fail.
        stmts.add_long_data(long_packet(id, 0, 600), 1000);
        stmts.add_long_data(long_packet(id, 0, 401), 1000);
        stmts.add_long_data(long_packet(id, 0, 1), 1000);
        let long = stmts.close(id).unwrap().long_data;
        assert!(long.packets.is_empty() && stmts.long_data_held == 0);
        let id = stmts.insert(stmt(1));
        stmts.add_long_data(long_packet(id, 0, 1001), 1000);
        assert!(stmts.get_mut(id).unwrap().long_data.overflow);
    }

    #[test]
    fn long_data_of_a_session_is_bounded() {
        let mut stmts = Statements::default();
        let ids: Vec<u32> = (0..3).map(|_| stmts.insert(stmt(1))).collect();
        stmts.add_long_data(long_packet(ids[0], 0, 900), 1000);
        stmts.add_long_data(long_packet(ids[1], 0, 900), 1000);
        assert!(!stmts.get_mut(ids[1]).unwrap().long_data.overflow);
        // A third would take the session over twice max_allowed_packet.
        stmts.add_long_data(long_packet(ids[2], 0, 900), 1000);
        assert!(stmts.get_mut(ids[2]).unwrap().long_data.overflow);
        assert!(stmts.long_data_held <= 2000);
        stmts.clear();
        assert_eq!(stmts.long_data_held, 0);
    }

    #[test]
    fn execute_gets_backend_id_and_remembered_types() {
        let mut s = stmt(2);
        // id 7, flags 0, iterations 1, bitmap 0, bound=1, types, values
        let first = [
            0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 3, 0, 3, 0, 1, 0, 0, 0, 2, 0, 0, 0,
        ];
        let mut out = BytesMut::new();
        assert!(rewrite_execute(&first, 99, &mut s, &mut out));
        assert_eq!(&out[4..9], &[0x17, 99, 0, 0, 0]);
        assert_eq!(&out[9..], &first[5..]);
        assert_eq!(s.param_types.as_deref(), Some(&[3, 0, 3, 0][..]));

        // A later execute with bound=0 gets the types inserted.
        let later = [
            0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0, 5, 0, 0, 0, 6, 0, 0, 0,
        ];
        assert!(rewrite_execute(&later, 42, &mut s, &mut out));
        let expected = [
            0x17, 42, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 3, 0, 3, 0, 5, 0, 0, 0, 6, 0, 0, 0,
        ];
        assert_eq!(&out[4..], &expected);
        assert_eq!(out[0] as usize, expected.len());
    }

    #[test]
    fn execute_without_params_and_malformed() {
        let mut s = stmt(0);
        let mut out = BytesMut::new();
        assert!(rewrite_execute(
            &[0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0],
            5,
            &mut s,
            &mut out
        ));
        assert_eq!(&out[4..9], &[0x17, 5, 0, 0, 0]);
        let mut s = stmt(3);
        assert!(!rewrite_execute(&[0x17, 1, 0, 0, 0], 5, &mut s, &mut out));
        assert!(!rewrite_execute(
            &[0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0],
            5,
            &mut s,
            &mut out
        ));
    }

    #[test]
    fn ids_are_unique_and_reused_only_after_close() {
        let mut st = Statements::default();
        let a = st.insert(stmt(0));
        let b = st.insert(stmt(0));
        assert_ne!(a, b);
        assert!(st.remove(a).is_some());
        assert!(st.get_mut(a).is_none());
        assert!(st.get_mut(b).is_some());
    }
}
