//! Handshake packets and password checks, on top of mysql_common's packet
//! types and scrambles. Both sides live here: Gantry as a server (to its
//! clients) and as a client (to its backends).

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};
use mysql_common::scramble::{scramble_native, scramble_sha256};

use super::reply::MyError;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// Capabilities Gantry can offer its clients, before intersecting with the
/// primary's. Left out: SSL, query attributes, optional
/// metadata and expired-password handling (not implemented by the proxy).
pub const PROXY_CAPABILITIES: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0002 // FOUND_ROWS
    | 0x0000_0004 // LONG_FLAG
    | 0x0000_0008 // CONNECT_WITH_DB
    | 0x0000_0010 // NO_SCHEMA
    | 0x0000_0020 // COMPRESS (client side only; backends are not compressed)
    | 0x0000_0040 // ODBC
    | 0x0000_0080 // LOCAL_FILES
    | 0x0000_0100 // IGNORE_SPACE
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_0400 // INTERACTIVE
    | 0x0000_1000 // IGNORE_SIGPIPE
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0001_0000 // MULTI_STATEMENTS
    | 0x0002_0000 // MULTI_RESULTS
    | 0x0004_0000 // PS_MULTI_RESULTS
    | 0x0008_0000 // PLUGIN_AUTH
    | 0x0010_0000 // CONNECT_ATTRS
    | 0x0020_0000 // PLUGIN_AUTH_LENENC_CLIENT_DATA
    | 0x0080_0000 // SESSION_TRACK
    | 0x0100_0000; // DEPRECATE_EOF

/// Client capabilities that change what the server sends or accepts, so a
/// backend connection must have the same ones as the client it serves.
pub const FORWARDED_CAPABILITIES: u32 = 0x0000_0002 // FOUND_ROWS
    | 0x0000_0004 // LONG_FLAG
    | 0x0000_0010 // NO_SCHEMA
    | 0x0000_0040 // ODBC
    | 0x0000_0080 // LOCAL_FILES
    | 0x0000_0100 // IGNORE_SPACE
    | 0x0000_0400 // INTERACTIVE
    | 0x0001_0000 // MULTI_STATEMENTS
    | 0x0002_0000 // MULTI_RESULTS
    | 0x0004_0000 // PS_MULTI_RESULTS
    | 0x0080_0000 // SESSION_TRACK
    | 0x0100_0000; // DEPRECATE_EOF

/// Capabilities Gantry always uses towards a backend.
const BACKEND_BASE_CAPABILITIES: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0008_0000 // PLUGIN_AUTH
    | 0x0020_0000; // PLUGIN_AUTH_LENENC_CLIENT_DATA

pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_SSL: u32 = 0x0000_0800;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;
pub const CLIENT_MULTI_STATEMENTS: u32 = 0x0001_0000;

/// What Gantry tells clients about itself (taken from the primary).
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub version: String,
    pub capabilities: u32,
    pub collation: u8,
}

impl ServerIdentity {
    /// Identity to use before the primary has been reached.
    pub fn fallback(version: Option<&str>) -> Self {
        Self {
            version: version.unwrap_or("5.7.99-gantry").to_string(),
            capabilities: PROXY_CAPABILITIES,
            collation: 45, // utf8mb4_general_ci
        }
    }

    /// Identity derived from a backend's greeting.
    pub fn from_backend(greeting: &BackendGreeting, version_override: Option<&str>) -> Self {
        Self {
            version: version_override
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-gantry", greeting.version)),
            capabilities: (greeting.capabilities & PROXY_CAPABILITIES) | CLIENT_COMPRESS,
            collation: greeting.collation,
        }
    }
}

/// Builds Gantry's initial handshake (protocol 10) payload.
pub fn server_greeting(id: &ServerIdentity, connection_id: u32, nonce: &[u8; 20]) -> Vec<u8> {
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&nonce[..8]);
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let packet = HandshakePacket::new(
        10,
        id.version.as_bytes(),
        connection_id,
        scramble_1,
        Some(scramble_2),
        CapabilityFlags::from_bits_truncate(id.capabilities),
        id.collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(NATIVE_PASSWORD.as_bytes()),
    );
    let mut out = Vec::with_capacity(128);
    packet.serialize(&mut out);
    out
}

/// A client's login request, owned.
#[derive(Clone)]
pub struct ClientLogin {
    pub capabilities: u32,
    pub collation: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
}

impl std::fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLogin")
            .field("capabilities", &format_args!("{:#x}", self.capabilities))
            .field("user", &self.user)
            .field("database", &self.database)
            .field("auth_plugin", &self.auth_plugin)
            .finish_non_exhaustive()
    }
}

/// Parses a HandshakeResponse41 payload.
pub fn parse_login(payload: &[u8]) -> Result<ClientLogin, MyError> {
    if payload.len() >= 4 {
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if caps & CLIENT_SSL != 0 && payload.len() == 32 {
            return Err(MyError::new(
                1043,
                "08S01",
                "SSL is not supported by this Gantry listener",
            ));
        }
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Err(MyError::new(
                1043,
                "08S01",
                "Client does not support protocol 4.1",
            ));
        }
    }
    let resp = HandshakeResponse::deserialize((), &mut ParseBuf(payload))
        .map_err(|_| MyError::new(1043, "08S01", "Bad handshake"))?;
    Ok(ClientLogin {
        capabilities: resp.capabilities().bits(),
        collation: resp.collation(),
        user: String::from_utf8_lossy(resp.user()).into_owned(),
        auth_response: resp.scramble_buf().to_vec(),
        database: resp
            .db_name()
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        auth_plugin: resp
            .auth_plugin()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
    })
}

/// Checks a mysql_native_password response against the clear password.
pub fn native_password_matches(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    match scramble_native(nonce, password.as_bytes()) {
        None => response.is_empty(),
        Some(expected) => constant_time_eq(&expected, response),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Auth switch request asking the client for mysql_native_password.
pub fn auth_switch_to_native(nonce: &[u8; 20]) -> Vec<u8> {
    let mut data = nonce.to_vec();
    data.push(0);
    let mut out = Vec::with_capacity(48);
    AuthSwitchRequest::new(NATIVE_PASSWORD.as_bytes(), data).serialize(&mut out);
    out
}

/// The parts of a backend's greeting Gantry uses.
#[derive(Debug, Clone)]
pub struct BackendGreeting {
    pub version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    pub collation: u8,
    pub nonce: Vec<u8>,
    pub auth_plugin: String,
}

pub fn parse_backend_greeting(payload: &[u8]) -> Result<BackendGreeting, MyError> {
    if payload.first() == Some(&0xff) {
        return Err(super::reply::parse_err(payload)
            .unwrap_or_else(|| MyError::new(2013, "HY000", "backend refused connection")));
    }
    // mysql_common computes `len as i8 - 8` from the auth-plugin-data length
    // byte, which overflows (a panic with overflow checks) for 0x80..=0x87;
    // servers send 21.
    if auth_data_len(payload).is_some_and(|n| n >= 0x80) {
        return Err(MyError::new(2027, "HY000", "Malformed backend handshake"));
    }
    let hs = HandshakePacket::deserialize((), &mut ParseBuf(payload))
        .map_err(|_| MyError::new(2027, "HY000", "Malformed backend handshake"))?;
    Ok(BackendGreeting {
        version: hs.server_version_str().into_owned(),
        connection_id: hs.connection_id(),
        capabilities: hs.capabilities().bits(),
        collation: hs.default_collation(),
        nonce: hs.nonce(),
        auth_plugin: hs
            .auth_plugin_name_str()
            .map(|s| s.into_owned())
            .unwrap_or_else(|| NATIVE_PASSWORD.to_string()),
    })
}

/// The greeting's auth-plugin-data length byte: after the protocol version,
/// the NUL-terminated server version and 20 fixed bytes.
fn auth_data_len(payload: &[u8]) -> Option<u8> {
    let nul = payload.get(1..)?.iter().position(|b| *b == 0)?;
    payload.get(1 + nul + 1 + 20).copied()
}

/// Scrambles a password for the named plugin; `None` if unsupported.
pub fn scramble_for(plugin: &str, nonce: &[u8], password: &str) -> Option<Vec<u8>> {
    let pw = password.as_bytes();
    match plugin {
        NATIVE_PASSWORD => Some(scramble_native(nonce, pw).map_or(Vec::new(), |s| s.to_vec())),
        CACHING_SHA2 => Some(scramble_sha256(nonce, pw).map_or(Vec::new(), |s| s.to_vec())),
        _ => None,
    }
}

/// Capabilities to request from a backend for a client with `client_caps`.
pub fn backend_capabilities(client_caps: u32, server_caps: u32, with_db: bool) -> u32 {
    let mut caps =
        (BACKEND_BASE_CAPABILITIES | (client_caps & FORWARDED_CAPABILITIES)) & server_caps;
    caps |= BACKEND_BASE_CAPABILITIES & server_caps;
    if with_db {
        caps |= CLIENT_CONNECT_WITH_DB;
    }
    caps
}

/// HandshakeResponse41 payload to a backend.
pub fn backend_login(
    greeting: &BackendGreeting,
    caps: u32,
    collation: u8,
    user: &str,
    password: &str,
    database: Option<&str>,
) -> Result<Vec<u8>, MyError> {
    let scramble = scramble_for(&greeting.auth_plugin, &greeting.nonce, password)
        // Unknown plugin: answer for native and let the server switch us.
        .unwrap_or_else(|| {
            scramble_for(NATIVE_PASSWORD, &greeting.nonce, password).unwrap_or_default()
        });
    let plugin = if scramble_for(&greeting.auth_plugin, &greeting.nonce, "").is_some() {
        AuthPlugin::from_bytes(greeting.auth_plugin.as_bytes())
    } else {
        AuthPlugin::MysqlNativePassword
    };
    let resp = HandshakeResponse::new(
        Some(scramble),
        (8, 0, 0),
        Some(user.as_bytes()),
        database.map(str::as_bytes),
        Some(plugin),
        CapabilityFlags::from_bits_truncate(caps),
        None,
        16 * 1024 * 1024,
    );
    let mut out = Vec::with_capacity(128);
    resp.serialize(&mut out);
    // mysql_common always writes utf8mb4_general_ci; use the client's.
    out[8] = collation;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips_through_mysql_common() {
        let id = ServerIdentity::fallback(Some("10.11.14-MariaDB-gantry"));
        let nonce = [b'a'; 20];
        let payload = server_greeting(&id, 42, &nonce);
        let g = parse_backend_greeting(&payload).unwrap();
        assert_eq!(g.version, "10.11.14-MariaDB-gantry");
        assert_eq!(g.connection_id, 42);
        assert_eq!(g.nonce, nonce.to_vec());
        assert_eq!(g.auth_plugin, NATIVE_PASSWORD);
        assert_eq!(g.capabilities & PROXY_CAPABILITIES, PROXY_CAPABILITIES);
    }

    #[test]
    fn greeting_with_a_negative_auth_data_length_is_refused_not_a_panic() {
        // Found by the handshake fuzz target: mysql_common's `len as i8 - 8`
        // overflowed for 0x80..=0x87.
        let id = ServerIdentity::fallback(Some("10.11"));
        let good = server_greeting(&id, 7, &[b'a'; 20]);
        let at = good.iter().position(|b| *b == 0).unwrap() + 1 + 20;
        assert_eq!(good[at], 21);
        for n in 0x80..=0xffu8 {
            let mut bad = good.clone();
            bad[at] = n;
            assert_eq!(parse_backend_greeting(&bad).unwrap_err().code, 2027);
        }
        let crash = b"\x85\xa2\x29\x81\x41\x0a\x74\x2f\x7b\x00\x00\x3a\x05\x00\x00\x00\xff\x00\xff\xff\x40\x00\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81";
        let _ = parse_backend_greeting(crash);
        assert!(parse_backend_greeting(&good).is_ok());
    }

    #[test]
    fn login_round_trip_and_native_check() {
        let greeting = BackendGreeting {
            version: "10.11".into(),
            connection_id: 1,
            capabilities: PROXY_CAPABILITIES,
            collation: 45,
            nonce: b"0123456789abcdefghij".to_vec(),
            auth_plugin: NATIVE_PASSWORD.into(),
        };
        let caps = backend_capabilities(PROXY_CAPABILITIES, PROXY_CAPABILITIES, true);
        let payload = backend_login(&greeting, caps, 33, "app", "app_pw", Some("sbtest")).unwrap();
        let login = parse_login(&payload).unwrap();
        assert_eq!(login.user, "app");
        assert_eq!(login.database.as_deref(), Some("sbtest"));
        assert_eq!(login.collation, 33);
        assert_eq!(login.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
        assert!(native_password_matches(
            &greeting.nonce,
            "app_pw",
            &login.auth_response
        ));
        assert!(!native_password_matches(
            &greeting.nonce,
            "wrong",
            &login.auth_response
        ));
        assert!(native_password_matches(&greeting.nonce, "", &[]));
        assert!(!native_password_matches(&greeting.nonce, "x", &[]));
    }

    #[test]
    fn caching_sha2_scramble_is_32_bytes() {
        // MySQL 8's default plugin: the fast-path scramble is
        // XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce)).
        let s = scramble_for(CACHING_SHA2, b"0123456789abcdefghij", "secret").unwrap();
        assert_eq!(s.len(), 32);
        assert!(scramble_for("client_ed25519", b"x", "y").is_none());
    }

    #[test]
    fn backend_caps_follow_client_format_flags() {
        let server = PROXY_CAPABILITIES;
        let with = backend_capabilities(
            CLIENT_DEPRECATE_EOF | CLIENT_MULTI_STATEMENTS,
            server,
            false,
        );
        assert_ne!(with & CLIENT_DEPRECATE_EOF, 0);
        assert_ne!(with & CLIENT_MULTI_STATEMENTS, 0);
        let without = backend_capabilities(0, server, false);
        assert_eq!(without & CLIENT_DEPRECATE_EOF, 0);
        assert_ne!(without & CLIENT_PROTOCOL_41, 0);
        assert_eq!(without & CLIENT_CONNECT_WITH_DB, 0);
    }

    #[test]
    fn malformed_logins_are_errors_not_panics() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len as u8).collect();
            let _ = parse_login(&junk);
            let _ = parse_backend_greeting(&junk);
        }
    }
}
