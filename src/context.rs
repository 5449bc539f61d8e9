//! State shared by the data path, the admin port and the health loop. Every
//! field the data path reads per statement is an `arc-swap` snapshot or an
//! atomic; locks are only taken on connect/disconnect and by the admin port.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::frontend::tls::ClientTls;
use crate::protocol::credential::Credential;
use std::time::Duration;

use crate::backend::{BackendEntry, PoolConfig, Topology};
use crate::config::Config;
use crate::frontend::registry::SessionRegistry;
use crate::gtid::Gtid;
use crate::protocol::auth::ServerIdentity;
use crate::runtime::{self, Runtime, Users, View};
use crate::shutdown::Shutdown;

/// Data-path settings, replaced as a whole on RELOAD CONFIG.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pool: PoolConfig,
    /// An idle client gives its backend connection back after this long.
    pub idle_release: Duration,
    /// `backend-read-timeout-ms`: the longest a backend may stay silent
    /// during a statement.
    pub backend_read_timeout: Option<Duration>,
    pub max_client_connections: usize,
    /// A client must finish logging in within this.
    pub login_timeout: Duration,
    /// Connections still logging in, counted apart from logged-in clients.
    pub max_unauthenticated: usize,
    pub server_version: Option<String>,
    /// TLS towards clients (certificates read at load).
    pub tls: Arc<ClientTls>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pool: PoolConfig::default(),
            idle_release: Duration::from_millis(1000),
            backend_read_timeout: None,
            max_client_connections: 20_000,
            login_timeout: Duration::from_millis(10_000),
            max_unauthenticated: 1000,
            server_version: None,
            tls: Arc::default(),
        }
    }
}

/// Proxy-wide counters (per-backend ones live in `BackendRuntime`).
#[derive(Debug, Default)]
pub struct GlobalStats {
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub queries: AtomicU64,
    pub reads_on_replica: AtomicU64,
    pub reads_on_primary: AtomicU64,
    pub writes: AtomicU64,
    pub backend_errors: AtomicU64,
    /// Causal reads per mode (0 read-your-writes, 1 global) and outcome
    /// (`CausalOutcome`).
    pub causal: [[AtomicU64; 3]; 2],
}

/// How a causal read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CausalOutcome {
    /// A replica already known to have the writes.
    Immediate = 0,
    /// A replica, after waiting for it to apply them.
    AfterWait = 1,
    /// The primary: no replica caught up within causal-read-timeout.
    Fallback = 2,
}

pub struct Context {
    /// Configuration, settings, accounts and allowlist: one snapshot that
    /// RELOAD CONFIG replaces in one swap. The four views below read it.
    pub runtime: runtime::Shared,
    /// The configuration as last loaded (file + command line).
    pub config: View<Config>,
    /// The command line Gantry was started with, to re-apply its overrides
    /// on RELOAD CONFIG.
    pub launch_args: Vec<OsString>,
    pub settings: View<Settings>,
    pub topology: ArcSwap<Topology>,
    /// `pwds`: user → clear password.
    pub users: View<Users>,
    /// `client-ips` allowlist; empty means everyone.
    pub client_ips: View<Vec<String>>,
    /// Version and capabilities shown to clients (from the primary).
    pub identity: ArcSwap<ServerIdentity>,
    pub sessions: SessionRegistry,
    /// caching_sha2_password towards clients: cache and RSA key pair.
    pub sha2: crate::frontend::sha2::Sha2Server,
    /// The primary's last fetched GTID position and when the fetch began
    /// (`global` consistency shares one fetch among concurrent reads).
    pub primary_position: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Gtid>)>>,
    /// Backends an operator removed (address, server_id): replica discovery
    /// must not bring them back. ADD SLAVE/MASTER and RELOAD CONFIG clear it.
    pub removed_by_operator: ArcSwap<Vec<(String, Option<u32>)>>,
    /// Client connections, logging in or logged in.
    pub clients: AtomicUsize,
    /// Client connections that have not finished logging in.
    pub unauthenticated: AtomicUsize,
    pub shutdown: Shutdown,
    pub stats: GlobalStats,
    /// Built-in failover: the write hold, past failovers, suspension.
    pub failovers: crate::failover::status::Failovers,
    /// `accounts-from-backend`: the primary's accounts.
    pub backend_accounts: crate::accounts::BackendAccounts,
    next_connection_id: AtomicU32,
}

impl Context {
    pub fn new(
        config: Config,
        launch_args: Vec<OsString>,
        settings: Settings,
        topology: Topology,
        users: HashMap<String, Arc<Credential>>,
        sha2: crate::frontend::sha2::Sha2Server,
    ) -> Arc<Self> {
        let identity = ServerIdentity::fallback(settings.server_version.as_deref());
        let client_ips = config.client_ips.clone();
        let runtime: runtime::Shared = Arc::new(ArcSwap::from_pointee(Runtime {
            config: Arc::new(config),
            settings: Arc::new(settings),
            users: Arc::new(users),
            client_ips: Arc::new(client_ips),
        }));
        Arc::new(Self {
            config: View::new(runtime.clone(), |r| &r.config, |r, v| r.config = v),
            launch_args,
            settings: View::new(runtime.clone(), |r| &r.settings, |r, v| r.settings = v),
            topology: ArcSwap::from_pointee(topology),
            users: View::new(runtime.clone(), |r| &r.users, |r, v| r.users = v),
            client_ips: View::new(runtime.clone(), |r| &r.client_ips, |r, v| r.client_ips = v),
            runtime,
            identity: ArcSwap::from_pointee(identity),
            sessions: SessionRegistry::default(),
            sha2,
            primary_position: tokio::sync::Mutex::new(None),
            removed_by_operator: ArcSwap::from_pointee(Vec::new()),
            clients: AtomicUsize::new(0),
            unauthenticated: AtomicUsize::new(0),
            shutdown: Shutdown::default(),
            stats: GlobalStats::default(),
            failovers: Default::default(),
            backend_accounts: Default::default(),
            next_connection_id: AtomicU32::new(1),
        })
    }

    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether replica discovery must leave this server out.
    pub fn removed_by_operator(&self, addr: &str, server_id: Option<u32>) -> bool {
        self.removed_by_operator
            .load()
            .iter()
            .any(|(a, id)| a.eq_ignore_ascii_case(addr) || (id.is_some() && *id == server_id))
    }

    /// Backend connections open in every pool (each is a descriptor).
    /// Walks every pool: for connects and the admin port, not per statement.
    pub fn backend_connections(&self) -> usize {
        let topo = self.topology.load();
        let mut n = 0;
        for b in &topo.backends {
            for p in b.runtime.pools().iter() {
                n += p.stats.open.load(Ordering::Relaxed);
            }
        }
        n
    }

    pub fn password_of(&self, user: &str) -> Option<Arc<Credential>> {
        self.users.load().get(user).cloned()
    }

    /// `client-ips`: addresses, whole-octet prefixes or CIDR blocks.
    pub fn client_allowed(&self, ip: IpAddr) -> bool {
        crate::config::client_ip_allowed(&self.client_ips.load(), ip)
    }

    /// Publishes a new topology built from the current backends. `edit` may
    /// run more than once if another writer races (arc-swap's rcu).
    pub fn update_topology<F>(&self, mut edit: F) -> Arc<Topology>
    where
        F: FnMut(&[BackendEntry]) -> Vec<BackendEntry>,
    {
        let old = self
            .topology
            .rcu(|current| Topology::new(edit(&current.backends)));
        // Backends no longer listed lose their pools: idle connections close
        // now, busy ones when their statement finishes.
        let new = self.topology.load_full();
        for b in &old.backends {
            if new.by_id(b.runtime.id).is_none() {
                b.runtime.close_pools();
            }
        }
        new
    }
}
