//! The admin port: Atlas's operator commands over the MySQL protocol, so
//! `mysql -h127.0.0.1 -P2345 -uadmin -p -e "SELECT * FROM backends"` works.
//! The connection phase is the data port's (`frontend::login`); only the
//! accepted user differs. Commands build their own result sets.

pub mod commands;
pub mod parse;
pub mod reload;
pub mod resultset;
pub mod tables;

use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::context::Context;
use crate::fdlimit::LogLimiter;
use crate::frontend::login::{self, Outcome};
use crate::frontend::transport::Transport;
use crate::protocol::auth::{ServerIdentity, CLIENT_DEPRECATE_EOF, PROXY_CAPABILITIES};
use crate::protocol::packet::PacketReader;
use crate::protocol::reply::{err_packet, ok_packet};
use crate::protocol::{cmd, status, MyError};
use commands::Reply;

/// Operators, scripts and monitoring: a handful at a time. Beyond this,
/// new admin connections wait for a slot instead of piling up tasks.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Capabilities the admin port offers: no multi-statements (the CLI splits
/// statements itself), no session tracking, no LOCAL INFILE.
const ADMIN_CAPABILITIES: u32 = PROXY_CAPABILITIES
    & !(0x0001_0000 // MULTI_STATEMENTS
        | 0x0080_0000 // SESSION_TRACK
        | 0x0000_0080); // LOCAL_FILES

/// The version in the admin port's greeting.
pub fn server_version() -> String {
    format!("5.7.99-gantry-{}-admin", env!("CARGO_PKG_VERSION"))
}

/// Accepts admin clients for as long as the process runs (also while a
/// shutdown drains, so operators can watch it).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let mut log_limit = LogLimiter::new(Duration::from_secs(5));
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, peer, &ctx).await {
                        tracing::debug!(client = %peer, error = %e, "admin connection ended");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                if let Some(left_out) = log_limit.allow(Instant::now()) {
                    tracing::warn!(error = %e, similar_left_out = left_out, "admin accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(stream: TcpStream, peer: SocketAddr, ctx: &Arc<Context>) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let host = peer.ip().to_string();
    let identity = ServerIdentity {
        version: server_version(),
        capabilities: ADMIN_CAPABILITIES,
        // Plain column definitions: the admin port builds its result sets.
        mariadb_capabilities: 0,
        collation: 45, // utf8mb4_general_ci
    };
    let mut reader = PacketReader::new();
    let cfg = ctx.config.load_full();
    let lookup = login::Accounts::Admin {
        user: &cfg.admin_username,
        password: &cfg.admin_password,
    };
    let id = ctx.next_connection_id();
    // A silent client must not keep one of the few admin slots.
    let settings = ctx.settings.load_full();
    let listener = login::Listener {
        connection_id: id,
        identity: &identity,
        peer_host: &host,
        tls: &settings.tls,
        port: settings.tls.port(true),
        sha2: None,
        auth_plugin: crate::protocol::auth::NATIVE_PASSWORD,
    };
    let login = login::authenticate(Transport::Plain(stream), &mut reader, &listener, lookup);
    let (mut stream, authed) = match tokio::time::timeout(settings.login_timeout, login).await {
        Ok(outcome) => match outcome? {
            (stream, Outcome::Accepted(a)) => (stream, a),
            (_, Outcome::Refused(r)) => {
                tracing::info!(client = %host, user = ?r.user.as_deref().unwrap_or("?"), reason = r.reason, "admin login failed");
                return Ok(());
            }
        },
        Err(_) => {
            tracing::debug!(client = %host, "admin client did not log in within login-timeout-ms");
            return Ok(());
        }
    };
    drop(cfg);
    let deprecate_eof = authed.login.capabilities & CLIENT_DEPRECATE_EOF != 0;
    let mut out = BytesMut::with_capacity(4096);
    ok_packet(&mut out, authed.next_seq, 0, status::AUTOCOMMIT, false);
    stream.send(&out).await?;
    tracing::debug!(client = %peer, user = %authed.login.user, "admin session started");

    loop {
        let (payload, seq) = match reader.read_payload(&mut stream).await {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let seq = seq.wrapping_add(1);
        out.clear();
        match payload.first().copied() {
            Some(cmd::QUIT) => return Ok(()),
            Some(cmd::PING | cmd::INIT_DB | cmd::RESET_CONNECTION) => {
                ok_packet(&mut out, seq, 0, status::AUTOCOMMIT, false)
            }
            Some(cmd::QUERY) => {
                let text = String::from_utf8_lossy(&payload[1..]);
                match commands::run(ctx, &text).await {
                    Ok(Reply::Rows(rs)) => rs.write(&mut out, seq, deprecate_eof),
                    Ok(Reply::Done(n)) => ok_packet(&mut out, seq, n, status::AUTOCOMMIT, false),
                    Err(e) => err_packet(&mut out, seq, &e.to_my_error()),
                }
            }
            Some(other) => err_packet(&mut out, seq, &MyError::unknown_command(other)),
            None => err_packet(&mut out, seq, &MyError::malformed("empty command")),
        }
        stream.send(&out).await?;
    }
}
