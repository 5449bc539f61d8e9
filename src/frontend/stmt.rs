//! Binary prepared statements: Gantry's own statement ids, and the packet
//! rewriting that maps them to whichever backend connection executes them.
//! Statements are prepared lazily on each backend connection (cached there
//! by schema and text), so read-only ones can run on any replica.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::BytesMut;

use crate::protocol::packet::put_packet;
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
    pub long_data: Vec<BytesMut>,
    /// Backend statement id of an open cursor on the held connection.
    pub cursor: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Statements {
    next_id: u32,
    map: HashMap<u32, ClientStatement>,
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

    pub fn remove(&mut self, id: u32) -> Option<ClientStatement> {
        self.map.remove(&id)
    }

    pub fn clear(&mut self) {
        self.map.clear();
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
    let mut body = Vec::with_capacity(payload.len() + 2 * n);
    body.extend_from_slice(&payload[..10]);
    body[1..5].copy_from_slice(&backend_id.to_le_bytes());
    if n == 0 {
        body.extend_from_slice(&payload[10..]);
    } else {
        let bitmap = n.div_ceil(8);
        let flag_at = 10 + bitmap;
        let Some(&bound) = payload.get(flag_at) else {
            return false;
        };
        body.extend_from_slice(&payload[10..flag_at]);
        if bound == 1 {
            let Some(types) = payload.get(flag_at + 1..flag_at + 1 + 2 * n) else {
                return false;
            };
            stmt.param_types = Some(types.to_vec());
            body.extend_from_slice(&payload[flag_at..]);
        } else if let Some(types) = &stmt.param_types {
            body.push(1);
            body.extend_from_slice(types);
            body.extend_from_slice(&payload[flag_at + 1..]);
        } else {
            body.extend_from_slice(&payload[flag_at..]);
        }
    }
    put_packet(out, 0, &body);
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
            long_data: Vec::new(),
            cursor: None,
        }
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
