//! The topology snapshot: which backends exist, their role, state and
//! weight. A snapshot is immutable; the admin port and the health loop
//! publish new ones through `arc-swap` and the data path only loads them.
//! What must outlive a snapshot (pools, counters) sits in `BackendRuntime`,
//! shared by every snapshot that lists the backend.

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::gtid::Gtid;
use crate::protocol::packet::MAX_COMMAND;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::limits::Limits;
use super::pool::{Pool, PoolConfig, PoolKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes (Atlas type `rw`).
    Primary,
    /// Serves reads (Atlas type `ro`).
    Replica,
}

impl Role {
    pub fn atlas_type(self) -> &'static str {
        match self {
            Role::Primary => "rw",
            Role::Replica => "ro",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    /// Not yet checked (new, or just set online).
    Unknown,
    Up,
    /// Reachable but too far behind (or not replicating): no reads.
    Lagging,
    Down,
    /// Taken out by an operator (`SET OFFLINE`).
    Offline,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Unknown => "unknown",
            BackendState::Up => "up",
            BackendState::Lagging => "lagging",
            BackendState::Down => "down",
            BackendState::Offline => "offline",
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

/// Per-backend counters.
#[derive(Debug, Default)]
pub struct BackendStats {
    pub queries: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

/// The long-lived part of a backend: its pools and counters.
pub struct BackendRuntime {
    pub id: u64,
    pub addr: String,
    pool_cfg: PoolConfig,
    pools: ArcSwap<Vec<Arc<Pool>>>,
    /// Open connections per account and in total, over all pools.
    pub limits: Arc<Limits>,
    /// Given to the pools, which close each other's idle connections to
    /// make room.
    me: Weak<BackendRuntime>,
    pub stats: BackendStats,
    /// The server's executed GTID position at the last health probe (read
    /// by causal reads without a new snapshot per probe).
    pub position: ArcSwapOption<Gtid>,
    /// The health loop's verdict is `down`: nothing new is sent there.
    down: AtomicBool,
    /// The server's max_allowed_packet at the last probe; 0 until known.
    max_packet: AtomicUsize,
}

impl fmt::Debug for BackendRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backend#{}({})", self.id, self.addr)
    }
}

impl BackendRuntime {
    pub fn new(addr: String, pool_cfg: PoolConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id: NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed),
            addr,
            pool_cfg,
            pools: ArcSwap::from_pointee(Vec::new()),
            limits: Arc::new(Limits::new(
                pool_cfg.backend_max_connections,
                pool_cfg.max_size,
            )),
            me: me.clone(),
            stats: BackendStats::default(),
            position: ArcSwapOption::empty(),
            down: AtomicBool::new(false),
            max_packet: AtomicUsize::new(0),
        })
    }

    pub fn set_max_packet(&self, bytes: usize) {
        self.max_packet.store(bytes, Ordering::Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// The pool for `key`, created on first use.
    pub fn pool(&self, key: &PoolKey) -> Arc<Pool> {
        if let Some(p) = self.pools.load().iter().find(|p| &p.key == key) {
            return p.clone();
        }
        let created = Arc::new(Pool::in_backend(
            key.clone(),
            self.addr.clone(),
            self.pool_cfg,
            self.limits.clone(),
            self.me.clone(),
        ));
        // The pool a racing creator published wins; `rcu` may run this twice.
        let mut chosen = created.clone();
        self.pools.rcu(|pools| {
            let mut next = Vec::clone(pools);
            match next.iter().find(|p| &p.key == key) {
                Some(existing) => chosen = existing.clone(),
                None => {
                    chosen = created.clone();
                    next.push(created.clone());
                }
            }
            next
        });
        chosen
    }

    pub fn pools(&self) -> Arc<Vec<Arc<Pool>>> {
        self.pools.load_full()
    }

    /// Closes idle connections of every pool (after a failover or removal).
    pub fn close_pools(&self) {
        for p in self.pools.load().iter() {
            p.close();
        }
        self.pools.store(Arc::new(Vec::new()));
    }
}

/// One backend as a snapshot sees it.
#[derive(Debug, Clone)]
pub struct BackendEntry {
    pub runtime: Arc<BackendRuntime>,
    pub role: Role,
    pub state: BackendState,
    pub weight: u32,
    /// Why the state is what it is (health loop or operator).
    pub reason: String,
    /// Replication lag in seconds, when known.
    pub lag: Option<u64>,
    /// Found by replica discovery rather than configured.
    pub discovered: bool,
    /// The server answered `@@read_only=1` at the last probe: writes to
    /// it are refused by the session instead of being sent.
    pub read_only: bool,
    /// `@@server_id` of the server behind the address, once probed.
    pub server_id: Option<u32>,
    /// A primary Gantry failed over from: whenever it answers again it is
    /// made read-only before anything else, then rejoins as a replica or
    /// stays out (`diverged`). It serves nothing meanwhile.
    pub failed_primary: bool,
}

impl BackendEntry {
    pub fn new(runtime: Arc<BackendRuntime>, role: Role, weight: u32, state: BackendState) -> Self {
        Self {
            runtime,
            role,
            state,
            weight,
            reason: String::new(),
            lag: None,
            discovered: false,
            read_only: false,
            server_id: None,
            failed_primary: false,
        }
    }

    pub fn addr(&self) -> &str {
        &self.runtime.addr
    }

    pub fn serves_reads(&self) -> bool {
        self.role == Role::Replica
            && self.state == BackendState::Up
            && self.weight > 0
            && !self.failed_primary
    }
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub backends: Vec<BackendEntry>,
    /// Cumulative weights of the replicas that serve reads.
    read_set: Vec<(u32, usize)>,
    total_weight: u32,
    primary: Option<usize>,
}

impl Topology {
    pub fn new(backends: Vec<BackendEntry>) -> Self {
        let mut read_set = Vec::new();
        let mut total = 0u32;
        for (i, b) in backends.iter().enumerate() {
            if b.serves_reads() {
                total = total.saturating_add(b.weight);
                read_set.push((total, i));
            }
        }
        let usable =
            |b: &BackendEntry| b.role == Role::Primary && !matches!(b.state, BackendState::Offline);
        let primary = backends
            .iter()
            .position(|b| usable(b) && b.state == BackendState::Up)
            .or_else(|| backends.iter().position(usable));
        Self {
            backends,
            read_set,
            total_weight: total,
            primary,
        }
    }

    pub fn primary(&self) -> Option<&BackendEntry> {
        self.primary.map(|i| &self.backends[i])
    }

    /// The largest command a backend accepts: the greatest max_allowed_packet
    /// the probes saw (Gantry refuses only what every server would), or
    /// Gantry's own bound while none is known.
    pub fn max_packet(&self) -> usize {
        let known = self
            .backends
            .iter()
            .map(|b| b.runtime.max_packet.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        if known == 0 {
            MAX_COMMAND
        } else {
            known.min(MAX_COMMAND)
        }
    }

    /// Weighted choice among serving replicas; `ticket` is any counter the
    /// caller advances (each session keeps its own, so no shared atomics).
    pub fn pick_replica(&self, ticket: u32) -> Option<&BackendEntry> {
        if self.total_weight == 0 {
            return None;
        }
        let point = ticket % self.total_weight;
        let slot = self.read_set.partition_point(|(cum, _)| *cum <= point);
        self.read_set.get(slot).map(|(_, i)| &self.backends[*i])
    }

    /// When no replica serves reads and the primary is down: a replica that
    /// is reachable though behind (it lost the primary), so reads and
    /// logins go on, stale, rather than fail.
    pub fn pick_reachable_replica(&self, ticket: u32) -> Option<&BackendEntry> {
        if self
            .primary()
            .is_some_and(|p| p.state != BackendState::Down)
        {
            return None;
        }
        self.pick_lagging_replica(ticket)
    }

    /// A replica that answers probes though it serves no reads (behind, or
    /// its replication broke): the last resort of a read.
    pub fn pick_lagging_replica(&self, ticket: u32) -> Option<&BackendEntry> {
        let reachable: Vec<&BackendEntry> = self
            .backends
            .iter()
            .filter(|b| {
                b.role == Role::Replica
                    && b.state == BackendState::Lagging
                    && b.weight > 0
                    && !b.failed_primary
            })
            .collect();
        (!reachable.is_empty()).then(|| reachable[ticket as usize % reachable.len()])
    }

    pub fn readable_count(&self) -> usize {
        self.read_set.len()
    }

    pub fn by_id(&self, id: u64) -> Option<&BackendEntry> {
        self.backends.iter().find(|b| b.runtime.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addr: &str, role: Role, weight: u32, state: BackendState) -> BackendEntry {
        BackendEntry::new(
            BackendRuntime::new(addr.into(), PoolConfig::default()),
            role,
            weight,
            state,
        )
    }

    #[test]
    fn behind_replicas_serve_only_while_the_primary_is_down() {
        let lagging = || entry("r:1", Role::Replica, 1, BackendState::Lagging);
        let t = Topology::new(vec![
            entry("p:1", Role::Primary, 1, BackendState::Up),
            lagging(),
        ]);
        assert!(t.pick_reachable_replica(0).is_none());
        let t = Topology::new(vec![
            entry("p:1", Role::Primary, 1, BackendState::Down),
            lagging(),
        ]);
        assert_eq!(t.pick_reachable_replica(7).map(|b| b.addr()), Some("r:1"));
        let t = Topology::new(vec![
            entry("p:1", Role::Primary, 1, BackendState::Down),
            entry("r:2", Role::Replica, 1, BackendState::Down),
        ]);
        assert!(t.pick_reachable_replica(0).is_none());
    }

    #[test]
    fn weighted_pick_follows_weights_and_skips_unhealthy() {
        let t = Topology::new(vec![
            entry("p:1", Role::Primary, 1, BackendState::Up),
            entry("r:1", Role::Replica, 3, BackendState::Up),
            entry("r:2", Role::Replica, 1, BackendState::Up),
            entry("r:3", Role::Replica, 5, BackendState::Down),
            entry("r:4", Role::Replica, 5, BackendState::Offline),
        ]);
        let mut counts = std::collections::HashMap::new();
        for t_ in 0..400 {
            *counts
                .entry(t.pick_replica(t_).unwrap().addr().to_string())
                .or_insert(0) += 1;
        }
        assert_eq!(counts["r:1"], 300);
        assert_eq!(counts["r:2"], 100);
        assert_eq!(counts.len(), 2);
        assert_eq!(t.primary().unwrap().addr(), "p:1");
    }

    #[test]
    fn no_serving_replica_means_none() {
        let t = Topology::new(vec![
            entry("p:1", Role::Primary, 1, BackendState::Up),
            entry("r:1", Role::Replica, 1, BackendState::Lagging),
        ]);
        assert!(t.pick_replica(7).is_none());
        let t = Topology::new(vec![entry("p:1", Role::Primary, 1, BackendState::Offline)]);
        assert!(t.primary().is_none());
    }

    #[test]
    fn pools_are_shared_per_key() {
        let rt = BackendRuntime::new("h:1".into(), PoolConfig::default());
        let k = PoolKey {
            user: "app".into(),
            capabilities: 1,
            collation: 45,
        };
        let a = rt.pool(&k);
        let b = rt.pool(&k);
        assert!(Arc::ptr_eq(&a, &b));
        let c = rt.pool(&PoolKey {
            collation: 33,
            ..k.clone()
        });
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(rt.pools().len(), 2);
    }
}
