//! Handshake packets and password checks, on top of mysql_common's packet
//! types and scrambles. Both sides live here: Gantry as a server (to its
//! clients) and as a client (to its backends).

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};
use mysql_common::scramble::{scramble_native, scramble_sha256};

use super::credential::Credential;

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

/// MariaDB's extended capabilities (the 4 bytes a MariaDB server puts in the
/// greeting's filler, and a MariaDB client in its login's filler, when
/// CLIENT_MYSQL is clear). In a combined `u64` they are bits 32..63, as in
/// MariaDB's own code.
pub const MARIADB_CLIENT_PROGRESS: u32 = 1 << 0;
pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u32 = 1 << 2;
pub const MARIADB_CLIENT_EXTENDED_METADATA: u32 = 1 << 3;
pub const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

/// Extended capabilities Gantry can offer, before intersecting with the
/// primary's. EXTENDED_METADATA only adds type information inside column
/// definitions, which are forwarded unchanged. Not offered, because their
/// wire effects are not handled end to end:
/// - PROGRESS: 0xFF progress packets in the middle of a response, which the
///   response scanner would take for the final ERR;
/// - COM_MULTI (bit 1): obsolete;
/// - STMT_BULK_OPERATIONS and BULK_UNIT_RESULTS (bit 5): COM_STMT_BULK_EXECUTE
///   (0xFA) is not routed, its statement id not rewritten, its answer not
///   scanned;
/// - CACHE_METADATA: COM_STMT_EXECUTE result sets get a "metadata follows"
///   byte and may omit column definitions, which the scanner does not expect,
///   and the client's cache would have to hold across backend connections.
pub const PROXY_MARIADB_CAPABILITIES: u32 = MARIADB_CLIENT_EXTENDED_METADATA;

/// Client capabilities that change what the server sends or accepts, so a
/// backend connection must have the same ones as the client it serves (and
/// pools are keyed by them). Bits 32..63 are MariaDB's extended ones.
pub const FORWARDED_CAPABILITIES: u64 = 0x0000_0002 // FOUND_ROWS
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
    | 0x0100_0000 // DEPRECATE_EOF
    | (MARIADB_CLIENT_EXTENDED_METADATA as u64) << 32;

/// Capabilities Gantry always uses towards a backend.
const BACKEND_BASE_CAPABILITIES: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0008_0000 // PLUGIN_AUTH
    | 0x0020_0000 // PLUGIN_AUTH_LENENC_CLIENT_DATA
    | 0x0080_0000; // SESSION_TRACK: the server reports state changes

/// CLIENT_LONG_PASSWORD, called CLIENT_MYSQL by MariaDB: a MariaDB server
/// clears it in its greeting to say the extended capabilities follow, and a
/// MariaDB client clears it to send its own.
pub const CLIENT_MYSQL: u32 = 0x0000_0001;
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_SSL: u32 = 0x0000_0800;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;
pub const CLIENT_SESSION_TRACK: u32 = 0x0080_0000;
pub const CLIENT_MULTI_STATEMENTS: u32 = 0x0001_0000;

/// What Gantry tells clients about itself (taken from the primary).
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub version: String,
    pub capabilities: u32,
    /// MariaDB extended capabilities offered; non-zero only for a
    /// MariaDB-flavoured greeting (CLIENT_MYSQL clear).
    pub mariadb_capabilities: u32,
    pub collation: u8,
}

impl ServerIdentity {
    /// Identity to use before the primary has been reached.
    pub fn fallback(version: Option<&str>) -> Self {
        Self {
            version: version.unwrap_or("5.7.99-gantry").to_string(),
            capabilities: PROXY_CAPABILITIES,
            mariadb_capabilities: 0,
            collation: 45, // utf8mb4_general_ci
        }
    }

    /// Identity derived from a backend's greeting.
    pub fn from_backend(greeting: &BackendGreeting, version_override: Option<&str>) -> Self {
        Self {
            version: version_override
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-gantry", greeting.version)),
            // CLIENT_MYSQL as the primary has it: clear for MariaDB.
            capabilities: (greeting.capabilities & PROXY_CAPABILITIES) | CLIENT_COMPRESS,
            mariadb_capabilities: greeting.mariadb_capabilities & PROXY_MARIADB_CAPABILITIES,
            collation: greeting.collation,
        }
    }
}

/// Builds Gantry's initial handshake (protocol 10) payload. With MariaDB
/// extended capabilities to offer, CLIENT_MYSQL is cleared and they go in
/// the last 4 of the 10 reserved bytes.
/// `tls`: the listener offers TLS (CLIENT_SSL), whatever the primary does;
/// `plugin`: the authentication method the nonce is offered for.
pub fn server_greeting(
    id: &ServerIdentity,
    connection_id: u32,
    nonce: &[u8; 20],
    tls: bool,
    plugin: &str,
) -> Vec<u8> {
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&nonce[..8]);
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let mut caps = id.capabilities & !CLIENT_SSL;
    if tls {
        caps |= CLIENT_SSL;
    }
    if id.mariadb_capabilities != 0 {
        caps &= !CLIENT_MYSQL;
    }
    let packet = HandshakePacket::new(
        10,
        id.version.as_bytes(),
        connection_id,
        scramble_1,
        Some(scramble_2),
        CapabilityFlags::from_bits_truncate(caps),
        id.collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(plugin.as_bytes()),
    )
    .with_mariadb_ext_capabilities(MariadbCapabilities::from_bits_truncate(
        id.mariadb_capabilities,
    ));
    let mut out = Vec::with_capacity(128);
    packet.serialize(&mut out);
    out
}

/// A client's login request, owned.
#[derive(Clone)]
pub struct ClientLogin {
    pub capabilities: u32,
    /// MariaDB extended capabilities; 0 when the client set CLIENT_MYSQL.
    pub mariadb_capabilities: u32,
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
            .field(
                "mariadb_capabilities",
                &format_args!("{:#x}", self.mariadb_capabilities),
            )
            .field("user", &self.user)
            .field("database", &self.database)
            .field("auth_plugin", &self.auth_plugin)
            .finish_non_exhaustive()
    }
}

/// Parses a HandshakeResponse41 payload.
/// The SSL request: the first 32 bytes of a login request, CLIENT_SSL set.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & CLIENT_SSL != 0
}

pub fn parse_login(payload: &[u8]) -> Result<ClientLogin, MyError> {
    if payload.len() >= 4 {
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if is_ssl_request(payload) {
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
    let capabilities = resp.capabilities().bits();
    // mysql_common reads the last 4 filler bytes whatever the flags say; they
    // carry extended capabilities only from a client without CLIENT_MYSQL.
    let mariadb_capabilities = if capabilities & CLIENT_MYSQL == 0 {
        resp.mariadb_ext_capabilities().bits()
    } else {
        0
    };
    Ok(ClientLogin {
        capabilities,
        mariadb_capabilities,
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

impl ClientLogin {
    /// The capabilities a backend connection serving this client must share
    /// with it (standard ones in bits 0..31, MariaDB's in 32..63).
    pub fn forwarded_capabilities(&self) -> u64 {
        combined(self.capabilities, self.mariadb_capabilities) & FORWARDED_CAPABILITIES
    }
}

/// Standard and MariaDB extended capabilities in one `u64`.
pub fn combined(capabilities: u32, mariadb_capabilities: u32) -> u64 {
    u64::from(capabilities) | u64::from(mariadb_capabilities) << 32
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
    auth_switch(NATIVE_PASSWORD, nonce)
}

/// Auth switch request: 0xfe, plugin name, NUL, nonce, NUL.
pub fn auth_switch(plugin: &str, nonce: &[u8; 20]) -> Vec<u8> {
    let mut data = nonce.to_vec();
    data.push(0);
    let mut out = Vec::with_capacity(48);
    AuthSwitchRequest::new(plugin.as_bytes(), data).serialize(&mut out);
    out
}

/// The parts of a backend's greeting Gantry uses.
#[derive(Debug, Clone)]
pub struct BackendGreeting {
    pub version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    /// MariaDB extended capabilities; 0 unless CLIENT_MYSQL is clear.
    pub mariadb_capabilities: u32,
    pub collation: u8,
    pub nonce: Vec<u8>,
    pub auth_plugin: String,
}

pub fn parse_backend_greeting(payload: &[u8]) -> Result<BackendGreeting, MyError> {
    if payload.first() == Some(&0xff) {
        return Err(super::reply::parse_err(payload)
            .unwrap_or_else(|| MyError::new(1105, "HY000", "backend refused connection")));
    }
    // mysql_common computes `len as i8 - 8` from the auth-plugin-data length
    // byte, which overflows (a panic with overflow checks) for 0x80..=0x87;
    // servers send 21.
    if auth_data_len(payload).is_some_and(|n| n >= 0x80) {
        return Err(MyError::new(2027, "HY000", "Malformed backend handshake"));
    }
    let hs = HandshakePacket::deserialize((), &mut ParseBuf(payload))
        .map_err(|_| MyError::new(1043, "08S01", "Malformed backend handshake"))?;
    let capabilities = hs.capabilities().bits();
    let mariadb_capabilities = if capabilities & CLIENT_MYSQL == 0 {
        hs.mariadb_ext_capabilities().bits()
    } else {
        0
    };
    Ok(BackendGreeting {
        version: hs.server_version_str().into_owned(),
        connection_id: hs.connection_id(),
        capabilities,
        mariadb_capabilities,
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

/// Capabilities to request from a backend for a client with `client_caps`
/// (both combined: MariaDB's extended ones in bits 32..63). Extended ones
/// are requested only from a server that offers them, and then without
/// CLIENT_MYSQL so the server reads them.
pub fn backend_capabilities(client_caps: u64, greeting: &BackendGreeting, with_db: bool) -> u64 {
    let server_caps = combined(greeting.capabilities, greeting.mariadb_capabilities);
    let base = u64::from(BACKEND_BASE_CAPABILITIES);
    let mut caps = (base | (client_caps & FORWARDED_CAPABILITIES)) & server_caps;
    caps |= base & server_caps;
    if caps >> 32 != 0 {
        caps &= !u64::from(CLIENT_MYSQL);
    }
    if with_db {
        caps |= u64::from(CLIENT_CONNECT_WITH_DB);
    }
    caps
}

/// HandshakeResponse41 payload to a backend.
pub fn backend_login(
    greeting: &BackendGreeting,
    caps: u64,
    collation: u8,
    user: &str,
    password: &Credential,
    database: Option<&str>,
) -> Result<Vec<u8>, MyError> {
    // A plugin this credential cannot answer: answer for native and let
    // the server switch us (or refuse).
    let (scramble, plugin) = match password.answer(&greeting.auth_plugin, &greeting.nonce) {
        Some(s) => (s, AuthPlugin::from_bytes(greeting.auth_plugin.as_bytes())),
        None => (
            password
                .answer(NATIVE_PASSWORD, &greeting.nonce)
                .unwrap_or_default(),
            AuthPlugin::MysqlNativePassword,
        ),
    };
    let resp = HandshakeResponse::new(
        Some(scramble),
        (8, 0, 0),
        Some(user.as_bytes()),
        database.map(str::as_bytes),
        Some(plugin),
        CapabilityFlags::from_bits_truncate(caps as u32),
        None,
        16 * 1024 * 1024,
    )
    .with_mariadb_ext_capabilities(MariadbCapabilities::from_bits_truncate((caps >> 32) as u32));
    let mut out = Vec::with_capacity(128);
    resp.serialize(&mut out);
    // mysql_common always writes utf8mb4_general_ci; use the client's.
    out[8] = collation;
    Ok(out)
}

/// The SSL request a client sends before starting TLS: the first 32 bytes
/// of its HandshakeResponse41 (capabilities with CLIENT_SSL, max packet,
/// collation, 19 zero bytes and MariaDB's extended capabilities), so the
/// layout mirrors [`backend_login`].
pub fn ssl_request(caps: u64, collation: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[0..4].copy_from_slice(&(caps as u32 | CLIENT_SSL).to_le_bytes());
    out[4..8].copy_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    out[8] = collation;
    out[28..32].copy_from_slice(&((caps >> 32) as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXT_META: u64 = (MARIADB_CLIENT_EXTENDED_METADATA as u64) << 32;

    fn mysql_greeting() -> BackendGreeting {
        BackendGreeting {
            version: "8.0.40".into(),
            connection_id: 1,
            capabilities: PROXY_CAPABILITIES,
            mariadb_capabilities: 0,
            collation: 45,
            nonce: b"0123456789abcdefghij".to_vec(),
            auth_plugin: NATIVE_PASSWORD.into(),
        }
    }

    /// What MariaDB 10.11 offers: CLIENT_MYSQL clear, extended capabilities
    /// PROGRESS, STMT_BULK_OPERATIONS, EXTENDED_METADATA, CACHE_METADATA and
    /// BULK_UNIT_RESULTS (bit 5).
    fn mariadb_greeting() -> BackendGreeting {
        BackendGreeting {
            version: "5.5.5-10.11.14-MariaDB".into(),
            capabilities: PROXY_CAPABILITIES & !CLIENT_MYSQL,
            mariadb_capabilities: MARIADB_CLIENT_PROGRESS
                | MARIADB_CLIENT_STMT_BULK_OPERATIONS
                | MARIADB_CLIENT_EXTENDED_METADATA
                | MARIADB_CLIENT_CACHE_METADATA
                | 1 << 5,
            ..mysql_greeting()
        }
    }

    /// Offset of the greeting's 10 reserved bytes in `payload`.
    fn greeting_reserved_at(payload: &[u8]) -> usize {
        let version_end = payload[1..].iter().position(|&b| b == 0).unwrap() + 1;
        // NUL, connection id 4, scramble 8, filler 1, caps 2, collation 1,
        // status 2, caps 2, auth data length 1.
        version_end + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1
    }

    /// A HandshakeResponse41 header (no plugin auth) with `caps` and the 4
    /// bytes after the 19 zero filler bytes set to `last4`.
    fn login_payload(caps: u32, last4: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 19]);
        p.extend_from_slice(&last4.to_le_bytes());
        p.extend_from_slice(b"app\0");
        p.push(0); // empty auth response (SECURE_CONNECTION: length byte)
        p
    }

    #[test]
    fn mariadb_greeting_offers_extended_metadata_only() {
        let id = ServerIdentity::from_backend(&mariadb_greeting(), None);
        assert_eq!(id.mariadb_capabilities, MARIADB_CLIENT_EXTENDED_METADATA);
        let payload = server_greeting(&id, 7, &[b'n'; 20], false, NATIVE_PASSWORD);
        let at = greeting_reserved_at(&payload);
        assert_eq!(&payload[at..at + 6], &[0; 6]);
        assert_eq!(
            &payload[at + 6..at + 10],
            &MARIADB_CLIENT_EXTENDED_METADATA.to_le_bytes()
        );
        let g = parse_backend_greeting(&payload).unwrap();
        assert_eq!(g.capabilities & CLIENT_MYSQL, 0, "CLIENT_MYSQL cleared");
        assert_eq!(g.mariadb_capabilities, MARIADB_CLIENT_EXTENDED_METADATA);
        assert_eq!(g.connection_id, 7);
        assert_eq!(g.nonce, vec![b'n'; 20]);
    }

    #[test]
    fn mysql_greeting_has_no_extended_capabilities() {
        let id = ServerIdentity::from_backend(&mysql_greeting(), None);
        assert_eq!(id.mariadb_capabilities, 0);
        let payload = server_greeting(&id, 7, &[b'n'; 20], false, NATIVE_PASSWORD);
        let at = greeting_reserved_at(&payload);
        assert_eq!(&payload[at..at + 10], &[0; 10]);
        let g = parse_backend_greeting(&payload).unwrap();
        assert_ne!(g.capabilities & CLIENT_MYSQL, 0);
        assert_eq!(g.mariadb_capabilities, 0);
        // Filler bytes from a server that set CLIENT_MYSQL mean nothing.
        let mut odd = payload.clone();
        odd[at + 6] = 0xff;
        assert_eq!(
            parse_backend_greeting(&odd).unwrap().mariadb_capabilities,
            0
        );
    }

    #[test]
    fn login_extended_capabilities_read_only_without_client_mysql() {
        let base = CLIENT_PROTOCOL_41 | 0x0000_8000; // SECURE_CONNECTION
        let ext = MARIADB_CLIENT_EXTENDED_METADATA | MARIADB_CLIENT_PROGRESS;
        // A MariaDB client: CLIENT_MYSQL clear, extended capabilities read.
        let maria = parse_login(&login_payload(base, ext)).unwrap();
        assert_eq!(maria.user, "app");
        assert_eq!(maria.mariadb_capabilities, ext);
        assert_eq!(
            maria.forwarded_capabilities() >> 32,
            u64::from(MARIADB_CLIENT_EXTENDED_METADATA),
            "only EXTENDED_METADATA is forwarded"
        );
        // A MySQL-flavoured client: CLIENT_MYSQL set, the bytes are filler.
        let mysql = parse_login(&login_payload(base | CLIENT_MYSQL, ext)).unwrap();
        assert_eq!(mysql.mariadb_capabilities, 0);
        assert_eq!(mysql.forwarded_capabilities() >> 32, 0);
    }

    #[test]
    fn backend_login_requests_extended_metadata_from_mariadb_only() {
        let client = EXT_META | u64::from(CLIENT_DEPRECATE_EOF);
        // MariaDB: requested, CLIENT_MYSQL cleared, in the last 4 filler bytes.
        let maria = mariadb_greeting();
        let caps = backend_capabilities(client, &maria, false);
        assert_eq!(caps >> 32, u64::from(MARIADB_CLIENT_EXTENDED_METADATA));
        assert_eq!(caps & u64::from(CLIENT_MYSQL), 0);
        let payload = backend_login(
            &maria,
            caps,
            45,
            "app",
            &Credential::Clear("app_pw".into()),
            None,
        )
        .unwrap();
        assert_eq!(payload[0] & 1, 0);
        assert_eq!(
            &payload[28..32],
            &MARIADB_CLIENT_EXTENDED_METADATA.to_le_bytes()
        );
        let login = parse_login(&payload).unwrap();
        assert_eq!(login.forwarded_capabilities() & EXT_META, EXT_META);
        // A client without it gets none, and no server-only extras either.
        let plain = backend_capabilities(u64::from(CLIENT_DEPRECATE_EOF), &maria, false);
        assert_eq!(plain >> 32, 0);
        let payload = backend_login(
            &maria,
            plain,
            45,
            "app",
            &Credential::Clear("app_pw".into()),
            None,
        )
        .unwrap();
        assert_eq!(&payload[28..32], &[0; 4]);
        // A MySQL server: never requested, CLIENT_MYSQL kept.
        let mysql = backend_capabilities(client, &mysql_greeting(), false);
        assert_eq!(mysql >> 32, 0);
        assert_ne!(mysql & u64::from(CLIENT_MYSQL), 0);
    }

    #[test]
    fn greeting_round_trips_through_mysql_common() {
        let id = ServerIdentity::fallback(Some("10.11.14-MariaDB-gantry"));
        let nonce = [b'a'; 20];
        let payload = server_greeting(&id, 42, &nonce, false, NATIVE_PASSWORD);
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
        let good = server_greeting(&id, 7, &[b'a'; 20], false, NATIVE_PASSWORD);
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
        let greeting = mysql_greeting();
        let caps = backend_capabilities(PROXY_CAPABILITIES.into(), &greeting, true);
        let payload = backend_login(
            &greeting,
            caps,
            33,
            "app",
            &Credential::Clear("app_pw".into()),
            Some("sbtest"),
        )
        .unwrap();
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
        let server = mysql_greeting();
        let with = backend_capabilities(
            (CLIENT_DEPRECATE_EOF | CLIENT_MULTI_STATEMENTS).into(),
            &server,
            false,
        );
        assert_ne!(with & u64::from(CLIENT_DEPRECATE_EOF), 0);
        assert_ne!(with & u64::from(CLIENT_MULTI_STATEMENTS), 0);
        let without = backend_capabilities(0, &server, false);
        assert_eq!(without & u64::from(CLIENT_DEPRECATE_EOF), 0);
        assert_ne!(without & u64::from(CLIENT_PROTOCOL_41), 0);
        assert_eq!(without & u64::from(CLIENT_CONNECT_WITH_DB), 0);
    }

    #[test]
    fn malformed_logins_are_errors_not_panics() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len as u8).collect();
            let _ = parse_login(&junk);
            let _ = parse_backend_greeting(&junk);
        }
    }

    #[test]
    fn ssl_request_is_the_login_prefix_with_client_ssl() {
        let g = mariadb_greeting();
        let caps = backend_capabilities(EXT_META | u64::from(PROXY_CAPABILITIES), &g, false)
            | u64::from(CLIENT_SSL);
        let login =
            backend_login(&g, caps, 33, "app", &Credential::Clear("pw".into()), None).unwrap();
        let req = ssl_request(caps & !u64::from(CLIENT_SSL), 33);
        assert_eq!(&req[..], &login[..32]);
        assert_ne!(
            u32::from_le_bytes(req[0..4].try_into().unwrap()) & CLIENT_SSL,
            0
        );
        assert_eq!(req[8], 33);
        assert_eq!(&req[4..8], &[0, 0, 0, 1], "16 MiB max packet");
        assert!(req[9..28].iter().all(|b| *b == 0));
        assert_eq!(
            u32::from_le_bytes(req[28..32].try_into().unwrap()),
            MARIADB_CLIENT_EXTENDED_METADATA
        );
    }
}
