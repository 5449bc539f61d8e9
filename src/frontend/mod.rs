//! The client-facing side: accepting connections, the connection phase and
//! the per-client session.

pub mod client_stream;
pub mod forward;
pub mod login;
pub mod registry;
pub mod session;
pub mod state;
pub mod stmt;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

use crate::backend::PoolKey;
use crate::context::Context;
use crate::protocol::auth::CLIENT_COMPRESS;
use crate::protocol::packet::PacketReader;
use crate::protocol::MyError;
use registry::SessionInfo;
use session::{Session, SessionSetup};

/// Accepts clients until the listener fails.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    ctx.clients.fetch_add(1, Ordering::Relaxed);
                    handle_client(stream, peer, &ctx).await;
                    ctx.clients.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle_client(mut stream: TcpStream, peer: SocketAddr, ctx: &Arc<Context>) {
    let _ = stream.set_nodelay(true);
    ctx.stats.connections_total.fetch_add(1, Ordering::Relaxed);
    let host = peer.ip().to_string();
    let limit = ctx.settings.load().max_client_connections;
    if ctx.clients.load(Ordering::Relaxed) > limit {
        ctx.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let err = MyError::too_many_connections(&format!("Gantry's limit of {limit} clients"));
        let _ = login::send_error(&mut stream, 0, &err).await;
        return;
    }
    if !ctx.client_allowed(peer.ip()) {
        ctx.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(client = %host, "client refused by client-ips");
        let _ = login::send_error(&mut stream, 0, &MyError::host_not_allowed(&host)).await;
        return;
    }
    let id = ctx.next_connection_id();
    let identity = ctx.identity.load_full();
    let mut reader = PacketReader::new();
    let authed = login::authenticate(&mut stream, &mut reader, id, &identity, &host, |u| {
        ctx.password_of(u)
    })
    .await;
    let authed = match authed {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::info!(client = %host, "client failed authentication");
            return;
        }
        Err(e) => {
            tracing::debug!(client = %host, error = %e, "client left during login");
            return;
        }
    };
    let login = authed.login;
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
        tracing::debug!(id, user = %login.user, client = %peer, "session started");
        session.run().await;
    }
    ctx.sessions.remove(id);
}
