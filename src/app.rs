//! The one owner of start-up, reload (SIGHUP) and shutdown (SIGTERM,
//! SIGINT): builds the shared context from the configuration, starts the
//! listeners and background tasks, and drains on the way out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::backend::{BackendEntry, BackendRuntime, BackendState, PoolConfig, Role, Topology};
use crate::config::Config;
use crate::context::{Context, Settings};
use crate::frontend::tls::{ClientTls, TlsError};
use crate::protocol::auth::{parse_backend_greeting, ServerIdentity};
use crate::protocol::credential::Credential;
use crate::protocol::packet::PacketReader;
use crate::{admin, fdlimit, frontend, health, metrics, shutdown};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Tls(#[from] TlsError),
}

/// The data-path settings of a configuration; reads the TLS certificate
/// files, hence fallible.
pub fn settings_from(cfg: &Config) -> Result<Settings, TlsError> {
    Ok(Settings {
        pool: PoolConfig {
            min_idle: cfg.pool_min_idle,
            max_size: cfg.pool_max_size,
            backend_max_connections: cfg.backend_max_connections,
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            acquire_timeout: Duration::from_millis(cfg.acquire_timeout_ms),
        },
        idle_release: Duration::from_millis(cfg.idle_release_ms),
        backend_read_timeout: (cfg.backend_read_timeout_ms > 0)
            .then(|| Duration::from_millis(cfg.backend_read_timeout_ms)),
        max_client_connections: cfg.max_client_connections,
        login_timeout: Duration::from_millis(cfg.login_timeout_ms),
        max_unauthenticated: cfg.max_unauthenticated_connections,
        server_version: cfg.server_version.clone(),
        tls: Arc::new(ClientTls::from_options(&cfg.client_tls)?),
    })
}

pub fn users_from(cfg: &Config) -> HashMap<String, Arc<Credential>> {
    cfg.pwds
        .iter()
        .map(|p| {
            (
                p.user.clone(),
                Arc::new(Credential::from_config(&cfg.reveal(&p.password))),
            )
        })
        .collect()
}

/// The configured backends, `unknown` until the health loop's first probe
/// decides (reads go to the primary meanwhile).
pub fn topology_from(cfg: &Config, pool: PoolConfig) -> Topology {
    let mut backends = Vec::new();
    for (list, role) in [
        (&cfg.proxy_backend_addresses, Role::Primary),
        (&cfg.proxy_read_only_backend_addresses, Role::Replica),
    ] {
        for addr in list {
            let rt = BackendRuntime::new(addr.to_string(), pool);
            backends.push(BackendEntry::new(
                rt,
                role,
                addr.weight,
                BackendState::Unknown,
            ));
        }
    }
    Topology::new(backends)
}

pub fn context_from(
    cfg: &Config,
    launch_args: Vec<std::ffi::OsString>,
) -> Result<Arc<Context>, TlsError> {
    let settings = settings_from(cfg)?;
    crate::backend::tls::install(cfg.backend_tls.clone());
    let topology = topology_from(cfg, settings.pool);
    let sha2 = match &cfg.client_tls.sha256_private_key {
        Some(private) => {
            let public = cfg.client_tls.sha256_public_key.as_deref();
            let keys = crate::protocol::rsa_key::ServerKeys::load(private, public)?;
            crate::frontend::sha2::Sha2Server::with_keys(Arc::new(keys))
        }
        None => Default::default(),
    };
    Ok(Context::new(
        cfg.clone(),
        launch_args,
        settings,
        topology,
        users_from(cfg),
        sha2,
    ))
}

/// Reads the primary's greeting (no login) so clients see its version and
/// capabilities.
pub async fn learn_identity(ctx: &Context) -> Option<ServerIdentity> {
    let primary = ctx.topology.load().primary()?.runtime.clone();
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(&primary.addr).await.ok()?;
        let (payload, _) = PacketReader::new().read_payload(&mut s).await.ok()?;
        parse_backend_greeting(&payload).ok()
    };
    let greeting = tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .ok()??;
    let version = ctx.settings.load().server_version.clone();
    Some(ServerIdentity::from_backend(&greeting, version.as_deref()))
}

/// Idle pooled connections unused this long are closed (beyond
/// `pool-min-idle`), so a burst's connections do not stay forever.
const POOL_IDLE_CLOSE: Duration = Duration::from_secs(60);

/// Keeps `pool-min-idle` connections ready in every pool of a backend that
/// is up (pools exist per user and client flavour once a client used them),
/// and closes connections idle for longer than `POOL_IDLE_CLOSE`.
async fn pool_keeper(ctx: Arc<Context>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let topo = ctx.topology.load_full();
        for b in &topo.backends {
            for pool in b.runtime.pools().iter() {
                pool.shrink(POOL_IDLE_CLOSE);
                if b.state != BackendState::Up || pool.config().min_idle == 0 {
                    continue;
                }
                // An account known by its hash alone logs in only for a
                // client of it (that client's answer tells Gantry how).
                if let Some(pw) = ctx.password_of(&pool.key.user).filter(|c| c.can_log_in()) {
                    pool.fill_idle(&pw).await;
                }
            }
        }
    }
}

/// Keeps trying to learn the primary's identity until it succeeds.
async fn identity_task(ctx: Arc<Context>) {
    loop {
        if let Some(id) = learn_identity(&ctx).await {
            tracing::info!(version = %id.version, "serving clients as the primary's version");
            ctx.identity.store(Arc::new(id));
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Warns once when the descriptor limit cannot hold the configured clients
/// plus full pools (Gantry still refuses clients with 1040 before it runs
/// out).
fn check_fd_budget(cfg: &Config, limit: u64) {
    let backends = cfg.proxy_backend_addresses.len() + cfg.proxy_read_only_backend_addresses.len();
    let per_backend = (cfg.pool_max_size * cfg.pwds.len().max(1)).min(cfg.backend_max_connections);
    let pools = (backends * per_backend) as u64;
    let clients = (cfg.max_client_connections + cfg.max_unauthenticated_connections) as u64;
    let needed = clients + pools + fdlimit::RESERVE;
    if limit != 0 && needed > limit {
        tracing::warn!(
            limit,
            needed,
            "the open-file limit (RLIMIT_NOFILE) cannot hold max-client-connections + \
             max-unauthenticated-connections + full pools; clients beyond it get ERROR 1040 \
             (raise the hard limit, e.g. LimitNOFILE= in systemd, or lower the options)"
        );
    }
}

/// The process's signals: SIGHUP reloads, SIGTERM/SIGINT stop.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn stop_requested(terminate: &mut Signal, interrupt: &mut Signal) -> &'static str {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    }
}

/// SIGHUP = RELOAD CONFIG. Without `--config` it is refused (logged and
/// ignored), like the admin command.
async fn reload_on_hangup(mut hangup: Signal, ctx: Arc<Context>) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        if let Err(e) = admin::reload::reload(&ctx).await {
            // ConfigError messages never contain passwords.
            tracing::warn!(error = %e, "SIGHUP ignored; the running configuration is unchanged");
        }
    }
}

/// Starts everything and runs until SIGTERM or SIGINT, then drains (see
/// `shutdown`) and returns.
pub async fn run(cfg: Config, launch_args: Vec<std::ffi::OsString>) -> Result<(), StartError> {
    let fd_limit = fdlimit::raise_to_hard();
    check_fd_budget(&cfg, fd_limit);
    let Signals {
        hangup,
        mut terminate,
        mut interrupt,
    } = Signals::install().map_err(StartError::Signals)?;
    if !cfg.clear_secrets.is_empty() {
        tracing::warn!(options = ?cfg.clear_secrets, "passwords in clear in the configuration: use a native hash (gantry hash) or an enc: value (gantry encrypt)");
    }
    let ctx = context_from(&cfg, launch_args)?;
    tokio::spawn(reload_on_hangup(hangup, ctx.clone()));
    if let Some(id) = learn_identity(&ctx).await {
        ctx.identity.store(Arc::new(id));
    } else {
        tracing::warn!("primary not reachable at start; will keep trying");
        tokio::spawn(identity_task(ctx.clone()));
    }
    let proxy = bind(&cfg.proxy_address).await?;
    let admin_listener = bind(&cfg.admin_address).await?;
    if let Some(addr) = &cfg.metrics_address {
        let listener = bind(addr).await?;
        tokio::spawn(metrics::serve(listener, ctx.clone()));
    }
    let health = health::spawn(ctx.clone());
    tokio::spawn(pool_keeper(ctx.clone()));
    tokio::spawn(crate::accounts::refresh(ctx.clone()));
    tokio::spawn(admin::serve(admin_listener, ctx.clone()));
    // Bounded by the probe timeout: replicas are judged before clients come.
    health::first_round(&ctx).await;
    tracing::info!(proxy = %cfg.proxy_address, admin = %cfg.admin_address, fd_limit, "listening");
    let serving = tokio::spawn(frontend::serve(proxy, ctx.clone()));

    let why = Signals::stop_requested(&mut terminate, &mut interrupt).await;
    let timeout = Duration::from_millis(ctx.config.load().shutdown_timeout_ms);
    tracing::info!(
        signal = why,
        ?timeout,
        "shutting down: no new clients; waiting for running statements and transactions"
    );
    ctx.shutdown.begin();
    // The accept loop returns and drops the listener.
    let _ = serving.await;
    let again = async {
        Signals::stop_requested(&mut terminate, &mut interrupt).await;
    };
    let summary = shutdown::drain(&ctx, timeout, again).await;
    shutdown::close_backends(&ctx);
    // Probe connections close politely too (bounded by the probe timeout).
    let probe_timeout = Duration::from_millis(ctx.config.load().probe_timeout_ms);
    let _ = tokio::time::timeout(probe_timeout + Duration::from_secs(1), health).await;
    tracing::info!(sessions_cut_off = summary.cut_off, "shutdown complete");
    Ok(())
}
