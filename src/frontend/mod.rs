//! The client-facing side: accepting connections, the connection phase and
//! the per-client session.

pub mod client_stream;
pub mod login;
pub mod registry;
pub mod session;
pub mod sha2;
pub mod state;
pub mod stmt;
pub mod tls;
pub mod transport;

use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

use crate::backend::PoolKey;
use crate::context::Context;
use crate::fdlimit::{self, LogLimiter};
use crate::protocol::auth::CLIENT_COMPRESS;
use crate::protocol::packet::PacketReader;
use crate::protocol::reply::err_packet;
use crate::protocol::MyError;
use login::Outcome;
use registry::SessionInfo;
use session::{Session, SessionSetup};
use transport::Transport;

/// How often a burst of accept errors may be logged.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Accepts clients until shutdown begins (the listener is dropped then, so
/// new clients are refused by the kernel).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let mut log_limit = LogLimiter::new(ACCEPT_LOG_INTERVAL);
    // Held so that, out of descriptors, one can be freed to accept a queued
    // client and tell it why instead of leaving it in the backlog.
    let mut spare = std::fs::File::open("/dev/null").ok();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.started() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    ctx.clients.fetch_add(1, Ordering::Relaxed);
                    handle_client(stream, peer, &ctx).await;
                    ctx.clients.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                if let Some(left_out) = log_limit.allow(Instant::now()) {
                    tracing::warn!(error = %e, similar_left_out = left_out, "accept failed");
                }
                if fdlimit::is_fd_exhaustion(&e) && spare.take().is_some() {
                    refuse_queued(&listener, &ctx).await;
                    spare = std::fs::File::open("/dev/null").ok();
                } else {
                    // Back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Out of descriptors with the spare one just freed: accept one queued
/// client and refuse it with 1040 rather than leave it hanging.
async fn refuse_queued(listener: &TcpListener, ctx: &Context) {
    let accepted = tokio::time::timeout(Duration::from_millis(10), listener.accept()).await;
    if let Ok(Ok((stream, _))) = accepted {
        ctx.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let mut out = BytesMut::new();
        err_packet(
            &mut out,
            0,
            &MyError::too_many_connections("Gantry is out of file descriptors"),
        );
        // Best effort: the socket buffer of a fresh connection has room.
        let _ = stream.try_write(&out);
    }
}

/// Decrements the count of connections still logging in when dropped.
struct Unauthenticated<'a>(&'a AtomicUsize);

impl Drop for Unauthenticated<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a new connection is refused before the greeting, if it is. (Like
/// the server's own refusal; libmariadb with TLS enabled then reports
/// "2002 … error packet before completion of TLS handshake … 1040 - …".)
fn admission(ctx: &Context, peer: &SocketAddr) -> Option<MyError> {
    let settings = ctx.settings.load();
    let all = ctx.clients.load(Ordering::Relaxed);
    let unauthenticated = ctx.unauthenticated.load(Ordering::Relaxed);
    // Connections still logging in have their own cap, so silent sockets
    // cannot take the logged-in clients' places.
    if unauthenticated >= settings.max_unauthenticated {
        let limit = settings.max_unauthenticated;
        return Some(MyError::too_many_connections(&format!(
            "Gantry's limit of {limit} connections that have not logged in yet"
        )));
    }
    let limit = fdlimit::soft_limit();
    if !fdlimit::has_room((all + ctx.backend_connections()) as u64, limit) {
        return Some(MyError::too_many_connections(&format!(
            "not enough file descriptors left (limit {limit})"
        )));
    }
    if !ctx.client_allowed(peer.ip()) {
        tracing::info!(client = %peer.ip(), "client refused by client-ips");
        return Some(MyError::host_not_allowed(&peer.ip().to_string()));
    }
    None
}

/// Refusals sent in reply to the login request, where every client reads
/// code and message as they are.
fn refusal_after_login(ctx: &Context) -> Option<MyError> {
    if ctx.shutdown.is_started() {
        return Some(MyError::server_shutdown());
    }
    let limit = ctx.settings.load().max_client_connections;
    // This connection is counted in `clients` and no longer unauthenticated.
    let logged_in = ctx
        .clients
        .load(Ordering::Relaxed)
        .saturating_sub(ctx.unauthenticated.load(Ordering::Relaxed));
    if logged_in > limit {
        return Some(MyError::too_many_connections(&format!(
            "Gantry's limit of {limit} clients"
        )));
    }
    None
}

async fn handle_client(stream: TcpStream, peer: SocketAddr, ctx: &Arc<Context>) {
    let _ = stream.set_nodelay(true);
    let mut stream = Transport::Plain(stream);
    ctx.stats.connections_total.fetch_add(1, Ordering::Relaxed);
    let host = peer.ip().to_string();
    if let Some(err) = admission(ctx, &peer) {
        ctx.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let _ = login::send_error(&mut stream, 0, &err).await;
        return;
    }
    ctx.unauthenticated.fetch_add(1, Ordering::Relaxed);
    let pending = Unauthenticated(&ctx.unauthenticated);
    let id = ctx.next_connection_id();
    let identity = ctx.identity.load_full();
    let mut reader = PacketReader::new();
    let settings = ctx.settings.load_full();
    let listener = login::Listener {
        connection_id: id,
        identity: &identity,
        peer_host: &host,
        tls: &settings.tls,
        port: settings.tls.port(false),
        sha2: Some(&ctx.sha2),
        auth_plugin: ctx.config.load().default_auth_plugin,
    };
    let accounts = login::Accounts::Clients {
        ctx,
        client: peer.ip(),
    };
    let authed = login::authenticate(stream, &mut reader, &listener, accounts);
    let (mut stream, authed) = match tokio::time::timeout(settings.login_timeout, authed).await {
        Ok(Ok((stream, Outcome::Accepted(a)))) => (stream, a),
        Ok(Ok((_, Outcome::Refused(r)))) => {
            // The user name shows which account is attacked; the password
            // and scramble are never logged.
            tracing::info!(client = %host, user = ?r.user.as_deref().unwrap_or("?"), reason = r.reason, "client login failed");
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(client = %host, error = %e, "client left during login");
            return;
        }
        Err(_) => {
            tracing::debug!(client = %host, timeout = ?settings.login_timeout, "client did not log in within login-timeout-ms");
            return;
        }
    };
    drop(pending);
    if let Some(err) = refusal_after_login(ctx) {
        ctx.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let _ = login::send_error(&mut stream, authed.next_seq, &err).await;
        return;
    }
    let login = authed.login;
    let session_tls = stream.tls_version();
    let info = Arc::new(SessionInfo::new(id, peer.to_string(), login.user.clone()));
    ctx.sessions.insert(info.clone());
    let mut session = Session::new(SessionSetup {
        ctx: ctx.clone(),
        info: info.clone(),
        client: stream,
        reader,
        password: authed.password,
        pool_key: PoolKey {
            user: login.user.clone(),
            capabilities: login.forwarded_capabilities(),
            collation: login.collation,
        },
        schema: login.database.clone(),
        nonce: authed.nonce,
        user: login.user.clone(),
        compress: login.capabilities & CLIENT_COMPRESS != 0,
    });
    if let Ok(mut s) = info.schema.lock() {
        s.clone_from(&login.database);
    }
    if session.finish_login(authed.next_seq).await.is_ok() {
        tracing::debug!(id, user = %login.user, client = %peer, tls = ?session_tls, "session started");
        session.run().await;
    }
    ctx.sessions.remove(id);
}
