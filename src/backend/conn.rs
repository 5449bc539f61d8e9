//! One raw protocol connection to a backend server: connect and
//! authenticate, then carry forwarded commands. It remembers the session
//! state it has been brought to, so replay only sends differences.

use bytes::{Buf, BytesMut};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::stream::BackendStream;
use super::tls;
use crate::config::{BackendAddr, BackendSsl, BackendTls};

use crate::frontend::state::Var;
use crate::protocol::auth::{self, BackendGreeting};
use crate::protocol::credential::Credential;
use crate::protocol::packet::{header, lenenc_int, put_packet, PacketReader};
use crate::protocol::reply::{parse_err, MyError};
use crate::protocol::track::TrackView;
use crate::protocol::{cmd, Expect, ResponseScanner, ScanState};
use std::sync::Arc;

/// Prepared statements kept per backend connection: well below any sane
/// `max_prepared_stmt_count` (a global limit, default 16382).
pub const PREPARED_CACHE: usize = 64;

/// How to log in to a backend on behalf of a client.
#[derive(Clone)]
pub struct ConnectParams<'a> {
    pub addr: &'a str,
    pub user: &'a str,
    pub password: &'a Credential,
    pub database: Option<&'a str>,
    /// Standard capabilities in bits 0..31, MariaDB's extended ones in 32..63.
    pub client_capabilities: u64,
    pub collation: u8,
    pub timeout: Duration,
}

pub struct BackendConn {
    pub(super) stream: BackendStream,
    pub(super) reader: PacketReader,
    /// Capabilities negotiated with the server (MariaDB's extended ones in
    /// bits 32..63).
    pub capabilities: u64,
    /// The server's thread id for this connection (for KILL).
    pub thread_id: u32,
    /// Session state applied on this connection.
    pub schema: Option<String>,
    pub vars: Vec<(Var, String)>,
    pub vars_hash: u64,
    /// LAST_INSERT_ID() on this connection, as seen in OK packets.
    pub last_insert_id: u64,
    /// Prepared statements on this connection: (statement key, server id),
    /// oldest first, bounded by `PREPARED_CACHE`.
    pub prepared: Vec<(u64, u32)>,
    /// Close without COM_QUIT: the client this connection's session belonged
    /// to vanished without one, and the server should see that too.
    pub abort_on_drop: bool,
    pub last_used: Instant,
    /// The session token (see `Session`) whose state this connection
    /// carries; 0 for a fresh connection that served nobody yet.
    pub owner: u64,
    /// When its session values were last the servers' defaults (connect or
    /// reset): a session that began later must reset it first.
    pub defaults_at: Instant,
    /// MySQL rather than MariaDB (the session-tracking setup differs).
    pub mysql: bool,
    /// The login character set, `SET NAMES` form, restored after a reset.
    pub(super) names: String,
    /// What a client asking for session tracking would see directly.
    pub track_view: Arc<TrackView>,
    /// Reused buffer for OK packets rewritten on their way to the client.
    pub(super) rewrite: BytesMut,
}

/// COM_QUIT, sequence 0.
const QUIT_PACKET: [u8; 5] = [1, 0, 0, 0, cmd::QUIT];

/// Closing politely: a socket dropped without COM_QUIT counts as an aborted
/// client on the server (`Aborted_clients`, a warning in its error log).
impl Drop for BackendConn {
    fn drop(&mut self) {
        if !self.abort_on_drop {
            let _ = self.stream.try_write(&QUIT_PACKET);
        }
    }
}

impl BackendConn {
    pub fn deprecate_eof(&self) -> bool {
        self.capabilities & u64::from(auth::CLIENT_DEPRECATE_EOF) != 0
    }

    /// Connects and authenticates. Server errors (wrong password, unknown
    /// database) come back as the server's own `MyError`.
    pub async fn connect(p: &ConnectParams<'_>) -> Result<Self, MyError> {
        match tokio::time::timeout(p.timeout, Self::connect_inner(p)).await {
            Ok(r) => r,
            Err(_) => Err(MyError::backend_unreachable(p.addr, "connect timeout")),
        }
    }

    async fn connect_inner(p: &ConnectParams<'_>) -> Result<Self, MyError> {
        let unreachable = |e: io::Error| MyError::backend_unreachable(p.addr, &e.to_string());
        let tcp = TcpStream::connect(p.addr).await.map_err(unreachable)?;
        tcp.set_nodelay(true).map_err(unreachable)?;
        let mut stream = BackendStream::Plain(tcp);
        let mut reader = PacketReader::new();
        let (payload, _) = reader
            .read_payload(&mut stream)
            .await
            .map_err(unreachable)?;
        let greeting = auth::parse_backend_greeting(&payload)?;
        let caps =
            auth::backend_capabilities(p.client_capabilities, &greeting, p.database.is_some());
        let tls = tls::current();
        let mut seq = 1;
        let mut login_caps = caps;
        if let Some(config) = use_tls(&tls, &greeting, p.addr)? {
            stream = start_tls(stream, config, caps, p).await?;
            seq = 2;
            login_caps |= u64::from(auth::CLIENT_SSL);
        }
        let login = auth::backend_login(
            &greeting,
            login_caps,
            p.collation,
            p.user,
            p.password,
            p.database,
        )?;
        let mut out = BytesMut::with_capacity(login.len() + 4);
        put_packet(&mut out, seq, &login);
        stream.write_all(&out).await.map_err(unreachable)?;
        authenticate(&mut stream, &mut reader, &greeting, p).await?;
        let mut conn = Self {
            stream,
            reader,
            capabilities: caps,
            thread_id: greeting.connection_id,
            schema: p.database.map(str::to_string),
            vars: Vec::new(),
            vars_hash: 0,
            last_insert_id: 0,
            prepared: Vec::new(),
            abort_on_drop: false,
            last_used: Instant::now(),
            owner: 0,
            defaults_at: Instant::now(),
            mysql: !greeting.version.contains("MariaDB"),
            names: String::new(),
            track_view: Arc::default(),
            rewrite: BytesMut::new(),
        };
        conn.start_tracking(p.addr).await?;
        Ok(conn)
    }

    /// Asks the server to report every session-state change in its OK
    /// packets (the authority for the session's state), and remembers the
    /// login character set so a reset can restore it.
    async fn start_tracking(&mut self, addr: &str) -> Result<(), MyError> {
        let lost = |e: io::Error| MyError::backend_unreachable(addr, &e.to_string());
        let gtids = if self.mysql {
            "@@session.session_track_gtids"
        } else {
            "''"
        };
        let sql = format!(
            "SELECT CONCAT_WS(CHAR(1), @@character_set_client, @@collation_connection, \
             @@session.session_track_schema, @@session.session_track_state_change, {gtids}, \
             @@session.session_track_system_variables)"
        );
        let settings = self
            .query_value(&sql)
            .await
            .map_err(lost)??
            .unwrap_or_default();
        let parts: Vec<&str> = settings.split('\u{1}').collect();
        if let [cs, coll, schema, state, gtids, vars] = parts[..] {
            self.names = format!("NAMES '{cs}' COLLATE '{coll}', ");
            self.track_view = Arc::new(TrackView::from_settings(schema, state, gtids, vars));
        }
        let setup = self.tracking_setup();
        self.run(cmd::QUERY, setup.as_bytes()).await.map_err(lost)?
    }

    /// The statement that turns session tracking on (after a reset, also
    /// the login character set).
    fn tracking_setup(&self) -> String {
        let gtids = if self.mysql {
            ", SESSION session_track_gtids = OWN_GTID"
        } else {
            ""
        };
        format!(
            "SET {}SESSION session_track_schema = ON, SESSION session_track_state_change = ON, \
             SESSION session_track_system_variables = '*'{gtids}",
            self.names
        )
    }

    /// Brings the connection back to a new session's defaults — the
    /// servers' current global values, no user variables, temporary tables,
    /// locks or statements — with COM_RESET_CONNECTION, and tracking back
    /// on, in one round trip. `Ok(Err)`: the server refused.
    pub async fn reset_for(&mut self, owner: u64) -> io::Result<Result<(), MyError>> {
        let setup = self.tracking_setup();
        let mut request = BytesMut::with_capacity(setup.len() + 16);
        put_packet(&mut request, 0, &[cmd::RESET_CONNECTION]);
        let mut query = Vec::with_capacity(setup.len() + 1);
        query.push(cmd::QUERY);
        query.extend_from_slice(setup.as_bytes());
        put_packet(&mut request, 0, &query);
        self.stream.write_all(&request).await?;
        let mut out = BytesMut::new();
        let reset = self.read_response(Expect::Single, &mut out).await?;
        let reset_err = reset.error.then(|| last_error(&out));
        let setup = self.read_response(Expect::Query, &mut out).await?;
        if let Some(e) = reset_err {
            return Ok(Err(e));
        }
        if setup.error {
            return Ok(Err(last_error(&out)));
        }
        self.forget_session_state();
        self.owner = owner;
        self.defaults_at = Instant::now();
        Ok(Ok(()))
    }

    pub fn prepared_id(&self, key: u64) -> Option<u32> {
        self.prepared
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, id)| *id)
    }

    /// Records a statement prepared here; closes the oldest one when the
    /// cache is full so the server's statement count stays bounded.
    pub async fn remember_prepared(&mut self, key: u64, id: u32) -> io::Result<()> {
        if self.prepared.len() >= PREPARED_CACHE {
            let (_, old) = self.prepared.remove(0);
            self.close_statement(old).await?;
        }
        self.prepared.push((key, id));
        Ok(())
    }

    /// Sends a COM_STMT_PREPARE and collects its answer into `out`; a
    /// statement the server accepted is remembered here under `key`.
    pub async fn prepare(
        &mut self,
        request: &[u8],
        key: u64,
        out: &mut BytesMut,
    ) -> io::Result<ResponseScanner> {
        let sc = self.exchange(request, Expect::Prepare, out).await?;
        if let Some(info) = sc.prepared.filter(|_| !sc.error) {
            self.remember_prepared(key, info.statement_id).await?;
        }
        Ok(sc)
    }

    /// COM_STMT_CLOSE (no response) and forgets the statement.
    pub async fn close_statement(&mut self, id: u32) -> io::Result<()> {
        self.prepared.retain(|(_, i)| *i != id);
        let mut payload = [0u8; 5];
        payload[0] = cmd::STMT_CLOSE;
        payload[1..5].copy_from_slice(&id.to_le_bytes());
        let mut out = BytesMut::with_capacity(9);
        put_packet(&mut out, 0, &payload);
        self.stream.write_all(&out).await
    }

    /// Resolves when the server sent something or closed the connection
    /// (for an idle connection: it went away, see `is_stale`).
    pub async fn readable(&self) {
        let _ = self.stream.readable().await;
    }

    /// Writes raw packet bytes (a request passed on in pieces).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Before the connection goes back to its pool: closes the prepared
    /// statements `keep` does not want (without waiting: COM_STMT_CLOSE has
    /// no answer). False if they could not all be sent.
    pub fn close_unused(&mut self, keep: impl Fn(u64) -> bool) -> bool {
        let mut all_sent = true;
        self.prepared.retain(|&(key, id)| {
            if keep(key) {
                return true;
            }
            let mut packet = [5, 0, 0, 0, cmd::STMT_CLOSE, 0, 0, 0, 0];
            packet[5..].copy_from_slice(&id.to_le_bytes());
            all_sent &= matches!(self.stream.try_write(&packet), Ok(9));
            false
        });
        all_sent
    }

    /// The server dropped its session state (COM_RESET_CONNECTION).
    pub fn forget_session_state(&mut self) {
        self.vars.clear();
        self.vars_hash = 0;
        self.prepared.clear();
        self.last_insert_id = 0;
    }

    /// True if the server closed this idle connection (wait_timeout,
    /// restart) or sent something unexpected, without blocking.
    pub fn is_stale(&mut self) -> bool {
        if !self.reader.buf.is_empty() {
            return true;
        }
        self.stream.has_input()
    }

    /// Sends `request` (complete packets) and collects the whole response
    /// into `out`, for the answers Gantry reads or edits itself.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        expect: Expect,
        out: &mut BytesMut,
    ) -> io::Result<ResponseScanner> {
        self.stream.write_all(request).await?;
        self.read_response(expect, out).await
    }

    /// A scanner for a response on this connection.
    pub fn scanner(&self, expect: Expect) -> ResponseScanner {
        let mut sc = ResponseScanner::new(expect, self.deprecate_eof());
        sc.session_track = self.capabilities & u64::from(auth::CLIENT_SESSION_TRACK) != 0;
        sc
    }

    /// Collects one whole response into `out`.
    async fn read_response(
        &mut self,
        expect: Expect,
        out: &mut BytesMut,
    ) -> io::Result<ResponseScanner> {
        out.clear();
        let mut sc = self.scanner(expect);
        loop {
            let (n, st) = sc
                .scan(&self.reader.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            out.extend_from_slice(&self.reader.buf[..n]);
            self.reader.buf.advance(n);
            match st {
                ScanState::Done => return Ok(sc),
                ScanState::LocalInfile => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected LOCAL INFILE request",
                    ))
                }
                ScanState::More => {
                    if self.stream.read_buf(&mut self.reader.buf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
    }

    /// Sends one command of Gantry's own and collects its answer.
    async fn command(
        &mut self,
        command: u8,
        arg: &[u8],
    ) -> io::Result<(ResponseScanner, BytesMut)> {
        let mut payload = Vec::with_capacity(arg.len() + 1);
        payload.push(command);
        payload.extend_from_slice(arg);
        let mut request = BytesMut::with_capacity(payload.len() + 4);
        put_packet(&mut request, 0, &payload);
        let expect = if command == cmd::QUERY {
            Expect::Query
        } else {
            Expect::Single
        };
        let mut out = BytesMut::new();
        let sc = self.exchange(&request, expect, &mut out).await?;
        Ok((sc, out))
    }

    /// Runs one statement of Gantry's own (state replay) and discards any
    /// result. `Ok(Err(e))` is the server's error for it.
    pub async fn run(&mut self, command: u8, arg: &[u8]) -> io::Result<Result<(), MyError>> {
        let (sc, out) = self.command(command, arg).await?;
        Ok(if sc.error {
            Err(last_error(&out))
        } else {
            Ok(())
        })
    }

    /// Runs a query of Gantry's own and returns the first column of its
    /// first row (`Ok(Ok(None))` for NULL or no row).
    pub async fn query_value(&mut self, sql: &str) -> io::Result<Result<Option<String>, MyError>> {
        let (sc, response) = self.command(cmd::QUERY, sql.as_bytes()).await?;
        if sc.error {
            return Ok(Err(last_error(&response)));
        }
        let packets = split_packets(&response);
        let Some((columns, _)) = packets.first().and_then(|p| lenenc_int(p)) else {
            return Ok(Ok(None));
        };
        // column count, definitions, [EOF], first row, terminator.
        let row_at = 1 + columns as usize + usize::from(!self.deprecate_eof());
        if packets.len() <= row_at + 1 {
            return Ok(Ok(None));
        }
        let row = packets[row_at];
        if row.first() == Some(&0xfb) {
            return Ok(Ok(None));
        }
        let value = lenenc_int(row).and_then(|(len, n)| {
            let bytes = row.get(n..n + len as usize)?;
            Some(String::from_utf8_lossy(bytes).into_owned())
        });
        Ok(Ok(value))
    }
}

/// Payloads of the (single-packet) packets in `buf`.
fn split_packets(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let (len, _) = header(&buf[pos..]);
        let end = (pos + 4 + len).min(buf.len());
        out.push(&buf[pos + 4..end]);
        pos = end;
    }
    out
}

/// The server's error in a collected response (its last packet).
pub fn last_error(response: &[u8]) -> MyError {
    split_packets(response)
        .last()
        .and_then(|p| parse_err(p))
        .unwrap_or_else(|| MyError::new(1043, "08S01", "Malformed error from backend"))
}

/// The TLS client configuration to use with this server, if any: `off`
/// never, `preferred` when the greeting offers TLS, the others always (a
/// server that does not offer it is an error).
fn use_tls(
    tls: &BackendTls,
    greeting: &BackendGreeting,
    addr: &str,
) -> Result<Option<Arc<rustls::ClientConfig>>, MyError> {
    let offered = greeting.capabilities & auth::CLIENT_SSL != 0;
    match (tls.mode, &tls.client) {
        (BackendSsl::Off, _) | (_, None) => Ok(None),
        (BackendSsl::Preferred, _) if !offered => Ok(None),
        (mode, _) if !offered => {
            tracing::warn!(backend = addr, backend_ssl = %mode, "backend does not offer TLS");
            Err(MyError::backend_unreachable(
                addr,
                &format!("the server does not offer TLS, which backend-ssl = {mode} requires"),
            ))
        }
        (_, Some(config)) => Ok(Some(config.clone())),
    }
}

/// Sends the SSL request (sequence 1) and runs the TLS handshake; the login
/// follows over TLS with sequence 2.
async fn start_tls(
    mut stream: BackendStream,
    config: Arc<rustls::ClientConfig>,
    caps: u64,
    p: &ConnectParams<'_>,
) -> Result<BackendStream, MyError> {
    let failed = |why: String| {
        // The reason (untrusted issuer, wrong name...) is for the operator.
        tracing::warn!(backend = p.addr, error = %why, "TLS towards the backend failed");
        MyError::backend_unreachable(p.addr, &format!("TLS: {why}"))
    };
    let host = BackendAddr::parse(p.addr)
        .map_err(|e| failed(e.to_string()))?
        .host;
    let name = tls::server_name(&host).map_err(failed)?;
    let mut out = BytesMut::with_capacity(36);
    put_packet(&mut out, 1, &auth::ssl_request(caps, p.collation));
    stream
        .write_all(&out)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let BackendStream::Plain(tcp) = stream else {
        return Ok(stream);
    };
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(BackendStream::Tls(Box::new(tls)))
}

/// Finishes the login exchange after the HandshakeResponse was sent.
async fn authenticate(
    stream: &mut BackendStream,
    reader: &mut PacketReader,
    greeting: &BackendGreeting,
    p: &ConnectParams<'_>,
) -> Result<(), MyError> {
    let io_err = |e: io::Error| MyError::backend_unreachable(p.addr, &e.to_string());
    let mut plugin = greeting.auth_plugin.clone();
    let mut nonce = greeting.nonce.clone();
    for _ in 0..4 {
        let (payload, seq) = reader.read_payload(stream).await.map_err(io_err)?;
        match payload.first() {
            Some(0x00) => return Ok(()),
            Some(0xff) => {
                return Err(parse_err(&payload)
                    .unwrap_or_else(|| MyError::new(1045, "28000", "backend refused login")))
            }
            Some(0xfe) => {
                // Auth switch: plugin name, NUL, new nonce.
                let body = &payload[1..];
                let nul = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                plugin = String::from_utf8_lossy(&body[..nul]).into_owned();
                nonce = body.get(nul + 1..).unwrap_or(&[]).to_vec();
                if nonce.last() == Some(&0) {
                    nonce.pop();
                }
                let resp = p.password.answer(&plugin, &nonce).ok_or_else(|| {
                    MyError::new(
                        1251,
                        "08004",
                        format!(
                            "backend {} asked for auth plugin {plugin}, which Gantry cannot \
                             answer for this account (unknown plugin, or only the password's \
                             native hash is known)",
                            p.addr
                        ),
                    )
                })?;
                let mut out = BytesMut::new();
                put_packet(&mut out, seq.wrapping_add(1), &resp);
                stream.write_all(&out).await.map_err(io_err)?;
            }
            Some(0x01) if plugin == auth::CACHING_SHA2 => match payload.get(1) {
                Some(3) => continue, // fast auth succeeded; OK follows
                Some(4) => {
                    let password = p.password.clear();
                    super::full_auth::send_password(stream, reader, seq, &nonce, password, p.addr)
                        .await?;
                }
                _ => {
                    return Err(MyError::new(
                        1043,
                        "08S01",
                        "unexpected caching_sha2_password packet during backend login",
                    ))
                }
            },
            _ => {
                return Err(MyError::new(
                    1043,
                    "08S01",
                    "unexpected packet during backend login",
                ))
            }
        }
    }
    Err(MyError::new(1043, "08S01", "backend login did not finish"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting(capabilities: u32) -> BackendGreeting {
        BackendGreeting {
            version: "10.11.14-MariaDB".into(),
            connection_id: 1,
            capabilities,
            mariadb_capabilities: 0,
            collation: 45,
            nonce: vec![0; 20],
            auth_plugin: auth::NATIVE_PASSWORD.into(),
        }
    }

    #[test]
    fn tls_follows_the_mode_and_the_greeting() {
        let tls = |mode| BackendTls::load(mode, None, None, None).unwrap();
        let plain = greeting(auth::CLIENT_PROTOCOL_41);
        let offers = greeting(auth::CLIENT_PROTOCOL_41 | auth::CLIENT_SSL);
        let uses = |mode, g: &BackendGreeting| use_tls(&tls(mode), g, "h:1").map(|c| c.is_some());
        assert!(!uses(BackendSsl::Off, &offers).unwrap());
        assert!(!uses(BackendSsl::Preferred, &plain).unwrap());
        assert!(uses(BackendSsl::Preferred, &offers).unwrap());
        assert!(uses(BackendSsl::Required, &offers).unwrap());
        let e = uses(BackendSsl::Required, &plain).unwrap_err();
        assert_eq!(e.code, 1105);
        assert!(e.message.contains("does not offer TLS"), "{}", e.message);
    }
}
