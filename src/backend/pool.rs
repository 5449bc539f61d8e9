//! A pool of backend connections for one (backend, user, capabilities,
//! collation). Idle connections sit in a lock-free queue; the number in use
//! is an atomic counter bounded by the pool size, and only callers that find
//! the pool full wait on a `Notify`.

use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::conn::{BackendConn, ConnectParams};
use super::lease::Lease;
use crate::protocol::MyError;

#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    pub min_idle: usize,
    pub max_size: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_idle: 0,
            max_size: 256,
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connections are interchangeable only with the same login and the same
/// format-affecting capabilities (MariaDB's extended ones, such as
/// EXTENDED_METADATA, in bits 32..63) and initial collation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub user: String,
    pub capabilities: u64,
    pub collation: u8,
}

/// Counters shown by the admin port.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub open: AtomicUsize,
    pub in_use: AtomicUsize,
    pub waiting: AtomicUsize,
    pub errors: AtomicU64,
    pub created: AtomicU64,
}

pub struct Pool {
    pub key: PoolKey,
    pub addr: String,
    cfg: PoolConfig,
    idle: ArrayQueue<BackendConn>,
    released: Notify,
    /// Notified when a caller starts waiting: sessions idling on a
    /// connection of this pool give it back.
    pub wanted: Notify,
    closed: AtomicBool,
    pub stats: PoolStats,
}

/// Idle connections older than this are probed before reuse.
const PROBE_AFTER: Duration = Duration::from_millis(500);

impl Pool {
    pub fn new(key: PoolKey, addr: String, cfg: PoolConfig) -> Self {
        Self {
            key,
            addr,
            idle: ArrayQueue::new(cfg.max_size.max(1)),
            cfg,
            released: Notify::new(),
            wanted: Notify::new(),
            closed: AtomicBool::new(false),
            stats: PoolStats::default(),
        }
    }

    pub fn config(&self) -> PoolConfig {
        self.cfg
    }

    /// Takes a connection, connecting a new one if none is idle; waits up to
    /// the acquire timeout when the pool is at its size limit. The lease
    /// gives it back when dropped.
    pub async fn acquire(
        self: &Arc<Self>,
        password: &str,
        database: Option<&str>,
    ) -> Result<Lease, MyError> {
        self.reserve_slot().await?;
        while let Some(mut conn) = self.idle.pop() {
            if conn.last_used.elapsed() < PROBE_AFTER || !conn.is_stale() {
                return Ok(Lease::new(conn, self.clone()));
            }
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
        let conn = self.connect_into_slot(password, database).await?;
        Ok(Lease::new(conn, self.clone()))
    }

    /// A new connection, never an idle one.
    pub async fn acquire_fresh(
        self: &Arc<Self>,
        password: &str,
        database: Option<&str>,
    ) -> Result<Lease, MyError> {
        self.reserve_slot().await?;
        let conn = self.connect_into_slot(password, database).await?;
        Ok(Lease::new(conn, self.clone()))
    }

    /// Connects for a slot already reserved; frees the slot on failure.
    pub(super) async fn connect_into_slot(
        &self,
        password: &str,
        database: Option<&str>,
    ) -> Result<BackendConn, MyError> {
        match BackendConn::connect(&self.params(password, database)).await {
            Ok(conn) => {
                self.stats.open.fetch_add(1, Ordering::Relaxed);
                self.stats.created.fetch_add(1, Ordering::Relaxed);
                Ok(conn)
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.free_slot();
                Err(e)
            }
        }
    }

    /// Closes a leased connection but keeps its slot (a replacement follows).
    pub(super) fn forget(&self, conn: BackendConn) {
        drop(conn);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }

    async fn reserve_slot(&self) -> Result<(), MyError> {
        let deadline = Instant::now() + self.cfg.acquire_timeout;
        loop {
            let cur = self.stats.in_use.load(Ordering::Acquire);
            if cur < self.cfg.max_size {
                if self
                    .stats
                    .in_use
                    .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            self.stats.waiting.fetch_add(1, Ordering::Relaxed);
            self.wanted.notify_waiters();
            let waited = tokio::time::timeout_at(deadline.into(), self.released.notified()).await;
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            if waited.is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Err(MyError::too_many_connections(&format!(
                    "pool for {} is full ({} connections in use)",
                    self.addr, self.cfg.max_size
                )));
            }
        }
    }

    fn free_slot(&self) {
        self.stats.in_use.fetch_sub(1, Ordering::AcqRel);
        if self.stats.waiting.load(Ordering::Relaxed) > 0 {
            self.released.notify_one();
        }
    }

    /// Returns a healthy connection whose session is clean enough to share.
    pub(super) fn release(&self, mut conn: BackendConn) {
        conn.last_used = Instant::now();
        if self.closed.load(Ordering::Relaxed) || self.idle.push(conn).is_err() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
        self.free_slot();
    }

    /// Drops a connection that is broken or carries state it must not share.
    pub(super) fn discard(&self, conn: BackendConn) {
        drop(conn);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.free_slot();
    }

    fn params<'a>(&'a self, password: &'a str, database: Option<&'a str>) -> ConnectParams<'a> {
        ConnectParams {
            addr: &self.addr,
            user: &self.key.user,
            password,
            database,
            client_capabilities: self.key.capabilities,
            collation: self.key.collation,
            timeout: self.cfg.connect_timeout,
        }
    }

    /// Opens connections until `min-idle` are idle (never beyond the pool
    /// size), so a burst does not pay for connects. Run by the keeper task.
    pub async fn fill_idle(&self, password: &str) {
        while !self.is_closed()
            && self.idle.len() < self.cfg.min_idle
            && self.stats.open.load(Ordering::Relaxed) < self.cfg.max_size
        {
            match BackendConn::connect(&self.params(password, None)).await {
                Ok(conn) => {
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    self.stats.created.fetch_add(1, Ordering::Relaxed);
                    if self.idle.push(conn).is_err() {
                        self.stats.open.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                }
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Closes idle connections unused for `max_idle`, keeping `min-idle`.
    /// (The queue is FIFO, so the oldest come out first.)
    pub fn shrink(&self, max_idle: Duration) {
        let mut checked = self.idle.len();
        while checked > 0 && self.idle.len() > self.cfg.min_idle {
            checked -= 1;
            let Some(conn) = self.idle.pop() else {
                return;
            };
            if conn.last_used.elapsed() >= max_idle {
                drop(conn);
                self.stats.open.fetch_sub(1, Ordering::Relaxed);
            } else if self.idle.push(conn).is_err() {
                self.stats.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The backend was removed: close idle connections now and the others as
    /// they come back.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        while self.idle.pop().is_some() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Three quarters of the pool in use, or callers waiting: idle sessions
    /// should be ready to hand their connections back.
    pub fn under_pressure(&self) -> bool {
        self.stats.waiting.load(Ordering::Relaxed) > 0
            || self.stats.in_use.load(Ordering::Relaxed) * 4 >= self.cfg.max_size * 3
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub fn idle_count(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::PacketReader;

    async fn idle_conn(listener: &tokio::net::TcpListener, age: Duration) -> BackendConn {
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        BackendConn {
            stream,
            reader: PacketReader::new(),
            capabilities: 0,
            thread_id: 1,
            schema: None,
            vars: Vec::new(),
            vars_hash: 0,
            last_insert_id: 0,
            prepared: Vec::new(),
            abort_on_drop: true,
            last_used: Instant::now() - age,
            owner: 0,
            mysql: false,
            names: String::new(),
            track_view: Default::default(),
        }
    }

    #[tokio::test]
    async fn shrink_closes_old_idle_connections_but_keeps_min_idle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = PoolConfig {
            min_idle: 1,
            ..PoolConfig::default()
        };
        let key = PoolKey {
            user: "app".into(),
            capabilities: 0,
            collation: 45,
        };
        let pool = Pool::new(key, "127.0.0.1:1".into(), cfg);
        for age in [120, 120, 120, 1] {
            let conn = idle_conn(&listener, Duration::from_secs(age)).await;
            pool.stats.open.fetch_add(1, Ordering::Relaxed);
            assert!(pool.idle.push(conn).is_ok());
        }
        pool.shrink(Duration::from_secs(60));
        // The three old ones go; the fresh one satisfies min-idle.
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(pool.stats.open.load(Ordering::Relaxed), 1);
        let left = pool.idle.pop().unwrap();
        assert!(left.last_used.elapsed() < Duration::from_secs(60));
    }
}
