//! The packets Gantry writes itself: OK and ERR, plus `MyError`, an error
//! that carries MySQL's code, SQLSTATE and message to a client.

use bytes::{BufMut, BytesMut};
use std::fmt;

use super::packet::put_packet;

/// An error to report to one client as a MySQL ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl MyError {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        if state.len() == 5 {
            s.copy_from_slice(state.as_bytes());
        }
        Self {
            code,
            state: s,
            message: message.into(),
        }
    }

    /// ER_ACCESS_DENIED_ERROR, in MySQL's message shape.
    pub fn access_denied(user: &str, host: &str, using_password: bool) -> Self {
        let yes_no = if using_password { "YES" } else { "NO" };
        Self::new(
            1045,
            "28000",
            format!("Access denied for user '{user}'@'{host}' (using password: {yes_no})"),
        )
    }

    /// ER_SECURE_TRANSPORT_REQUIRED (MySQL 5.7+, MariaDB 11.4+): a client
    /// without TLS where `ssl = "required"`.
    pub fn insecure_transport() -> Self {
        Self::new(
            3159,
            "HY000",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }

    /// ER_HOST_NOT_PRIVILEGED: the client address is not in `client-ips`.
    pub fn host_not_allowed(host: &str) -> Self {
        Self::new(
            1130,
            "HY000",
            format!("Host '{host}' is not allowed to connect to this Gantry proxy"),
        )
    }

    /// ER_CONNECTION_KILLED (1927, 70100): the backend went away during a
    /// statement. A server-range code: libmariadb rejects client-range codes
    /// (2000-2999) in ERR packets as "2027 Malformed packet".
    pub fn backend_lost(addr: &str) -> Self {
        Self::new(
            1927,
            "70100",
            format!("Lost connection to backend server {addr} during query"),
        )
    }

    /// ER_UNKNOWN_ERROR (1105, HY000): no connection to a backend could be
    /// made. The server has no code for "cannot reach an upstream".
    pub fn backend_unreachable(addr: &str, why: &str) -> Self {
        Self::new(
            1105,
            "HY000",
            format!("Can't connect to backend server {addr}: {why}"),
        )
    }

    /// ER_UNKNOWN_ERROR: no primary is configured or known.
    /// The health loop marked the backend down: nothing is sent there.
    pub fn backend_down(addr: &str) -> Self {
        Self::new(
            1105,
            "HY000",
            format!("The backend server {addr} is down (health check); try again later"),
        )
    }

    pub fn no_primary() -> Self {
        Self::new(1105, "HY000", "No primary backend is available")
    }

    /// ER_SERVER_SHUTDOWN: Gantry is stopping.
    pub fn server_shutdown() -> Self {
        Self::new(1053, "08S01", "Server shutdown in progress")
    }

    /// ER_CON_COUNT_ERROR: a pool or the client limit is exhausted.
    pub fn too_many_connections(what: &str) -> Self {
        Self::new(1040, "08004", format!("Too many connections: {what}"))
    }

    /// ER_UNKNOWN_COM_ERROR.
    pub fn unknown_command(cmd: u8) -> Self {
        Self::new(
            1047,
            "08S01",
            format!("Unknown command 0x{cmd:02x} (not supported by Gantry)"),
        )
    }

    /// ER_NET_PACKETS_OUT_OF_ORDER-like: the client sent something malformed.
    pub fn malformed(what: &str) -> Self {
        Self::new(1835, "08S01", format!("Malformed packet: {what}"))
    }
}

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            String::from_utf8_lossy(&self.state),
            self.message
        )
    }
}

impl std::error::Error for MyError {}

/// Error codes a client library reserves for its own errors.
const CLIENT_RANGE: std::ops::RangeInclusive<u16> = 2000..=2999;

/// Appends an ERR packet (protocol 4.1 layout) with sequence id `seq`.
/// A code in the client range (2000-2999) is sent as 1105: clients built on
/// libmariadb would show "2027 Malformed packet" instead of the message.
pub fn err_packet(out: &mut BytesMut, seq: u8, err: &MyError) {
    let code = if CLIENT_RANGE.contains(&err.code) {
        1105
    } else {
        err.code
    };
    let mut payload = Vec::with_capacity(9 + err.message.len());
    payload.push(0xff);
    payload.extend_from_slice(&code.to_le_bytes());
    payload.push(b'#');
    payload.extend_from_slice(&err.state);
    payload.extend_from_slice(err.message.as_bytes());
    put_packet(out, seq, &payload);
}

/// Appends an OK packet with sequence id `seq`. `eof_header` writes the
/// 0xFE header that ends a result set under CLIENT_DEPRECATE_EOF.
pub fn ok_packet(out: &mut BytesMut, seq: u8, affected: u64, status: u16, eof_header: bool) {
    let mut payload = Vec::with_capacity(16);
    payload.push(if eof_header { 0xfe } else { 0x00 });
    put_lenenc(&mut payload, affected);
    put_lenenc(&mut payload, 0);
    payload.extend_from_slice(&status.to_le_bytes());
    payload.extend_from_slice(&0u16.to_le_bytes());
    put_packet(out, seq, &payload);
}

/// Appends a classic EOF packet.
pub fn eof_packet(out: &mut BytesMut, seq: u8, status: u16) {
    let mut payload = [0u8; 5];
    payload[0] = 0xfe;
    payload[3..5].copy_from_slice(&status.to_le_bytes());
    put_packet(out, seq, &payload);
}

pub fn put_lenenc(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.put_u8(v as u8);
    } else if v < 1 << 16 {
        out.put_u8(0xfc);
        out.put_uint_le(v, 2);
    } else if v < 1 << 24 {
        out.put_u8(0xfd);
        out.put_uint_le(v, 3);
    } else {
        out.put_u8(0xfe);
        out.put_u64_le(v);
    }
}

pub fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Parses an ERR packet payload into a `MyError`.
pub fn parse_err(payload: &[u8]) -> Option<MyError> {
    if payload.len() < 3 || payload[0] != 0xff {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let rest = &payload[3..];
    let (state, msg) = if rest.len() >= 6 && rest[0] == b'#' {
        (&rest[1..6], &rest[6..])
    } else {
        (&b"HY000"[..], rest)
    };
    let mut s = [0u8; 5];
    s.copy_from_slice(state);
    Some(MyError {
        code,
        state: s,
        message: String::from_utf8_lossy(msg).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_packet_round_trips() {
        let mut out = BytesMut::new();
        let e = MyError::access_denied("app", "127.0.0.1", true);
        err_packet(&mut out, 2, &e);
        assert_eq!(out[3], 2);
        let back = parse_err(&out[4..]).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            back.message,
            "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );
        assert_eq!(&back.state, b"28000");
    }

    #[test]
    fn client_range_codes_never_reach_the_wire() {
        let mut out = BytesMut::new();
        err_packet(&mut out, 1, &MyError::new(2003, "HY000", "no backend"));
        let back = parse_err(&out[4..]).unwrap();
        assert_eq!((back.code, back.message.as_str()), (1105, "no backend"));
        for e in [
            MyError::backend_lost("h:1"),
            MyError::backend_unreachable("h:1", "refused"),
            MyError::no_primary(),
            MyError::server_shutdown(),
        ] {
            assert!(!CLIENT_RANGE.contains(&e.code), "{e}");
        }
    }

    #[test]
    fn lenenc_encoding_sizes() {
        for (v, n) in [(250u64, 1), (251, 3), (65535, 3), (65536, 4), (1 << 24, 9)] {
            let mut b = Vec::new();
            put_lenenc(&mut b, v);
            assert_eq!(b.len(), n, "{v}");
            assert_eq!(super::super::packet::lenenc_int(&b), Some((v, n)));
        }
    }
}
