//! A pool of backend connections for one (backend, user, capabilities,
//! collation). Idle connections sit in a lock-free queue; the number in use
//! is an atomic counter bounded by the pool size, and only callers that find
//! the pool full wait on a `Notify`. Open connections also count against the
//! account's and the backend's budgets (`limits`), shared by all pools of
//! the backend, so the limits hold whatever the pool keys.

use crate::protocol::credential::Credential;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::conn::{BackendConn, ConnectParams};
use super::lease::Lease;
use super::limits::{Budget, Full, Limits, Purpose, RESERVE};
use super::topology::BackendRuntime;
use crate::protocol::MyError;

#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    pub min_idle: usize,
    /// Per account and backend, over all the account's pools.
    pub max_size: usize,
    /// Open connections to one backend, over all pools.
    pub backend_max_connections: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_idle: 0,
            max_size: 256,
            backend_max_connections: 1000,
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
    /// The backend's budgets, shared with its other pools.
    limits: Arc<Limits>,
    /// This account's budget on this backend.
    account: Arc<Budget>,
    /// The other pools of the backend, whose idle connections may be closed
    /// to make room.
    backend: Weak<BackendRuntime>,
}

impl Pool {
    /// A pool with budgets of its own (tests, tools).
    pub fn new(key: PoolKey, addr: String, cfg: PoolConfig) -> Self {
        let limits = Arc::new(Limits::new(cfg.backend_max_connections, cfg.max_size));
        Self::in_backend(key, addr, cfg, limits, Weak::new())
    }

    /// A pool of `backend`, counted against its budgets.
    pub(super) fn in_backend(
        key: PoolKey,
        addr: String,
        cfg: PoolConfig,
        limits: Arc<Limits>,
        backend: Weak<BackendRuntime>,
    ) -> Self {
        let account = limits.account(&key.user);
        Self {
            key,
            addr,
            // Idle connections are bounded by the budgets; the queue only
            // needs room for what the pool may hold.
            idle: ArrayQueue::new((cfg.max_size + RESERVE).max(1)),
            cfg,
            released: Notify::new(),
            wanted: Notify::new(),
            closed: AtomicBool::new(false),
            stats: PoolStats::default(),
            limits,
            account,
            backend,
        }
    }

    pub fn config(&self) -> PoolConfig {
        self.cfg
    }

    /// Open connections of this pool's account to this backend, over all
    /// its pools.
    pub fn account_open(&self) -> usize {
        self.account.used()
    }

    /// Takes a connection, connecting a new one if none is idle; waits up to
    /// the acquire timeout when the pool, the account or the backend is at
    /// its limit. The lease gives it back when dropped.
    pub async fn acquire(
        self: &Arc<Self>,
        password: &Credential,
        database: Option<&str>,
    ) -> Result<Lease, MyError> {
        self.acquire_for(password, database, Purpose::Session).await
    }

    /// [`Pool::acquire`] for a login or one of Gantry's helpers
    /// ([`Purpose::Reserved`] may use the reserve).
    pub async fn acquire_for(
        self: &Arc<Self>,
        password: &Credential,
        database: Option<&str>,
        purpose: Purpose,
    ) -> Result<Lease, MyError> {
        let deadline = Instant::now() + self.cfg.acquire_timeout;
        self.reserve_slot(deadline, purpose).await?;
        while let Some(mut conn) = self.idle.pop() {
            // Every checkout looks for a close the server sent meanwhile (a
            // killed server's connections are all closed at once); for a
            // quiet socket the check is a readiness flag, no system call.
            if !conn.is_stale() {
                return Ok(Lease::new(conn, self.clone()));
            }
            self.close_counted(conn);
        }
        let conn = self
            .connect_new(password, database, purpose, deadline)
            .await?;
        Ok(Lease::new(conn, self.clone()))
    }

    /// A new connection, never an idle one.
    pub async fn acquire_fresh(
        self: &Arc<Self>,
        password: &Credential,
        database: Option<&str>,
    ) -> Result<Lease, MyError> {
        let deadline = Instant::now() + self.cfg.acquire_timeout;
        self.reserve_slot(deadline, Purpose::Session).await?;
        let conn = self
            .connect_new(password, database, Purpose::Session, deadline)
            .await?;
        Ok(Lease::new(conn, self.clone()))
    }

    /// Connects for a pool slot already reserved, taking the account and
    /// backend budgets first; frees all of them on failure.
    async fn connect_new(
        &self,
        password: &Credential,
        database: Option<&str>,
        purpose: Purpose,
        deadline: Instant,
    ) -> Result<BackendConn, MyError> {
        if let Err(e) = self.take_budget(purpose, deadline).await {
            self.free_slot();
            return Err(e);
        }
        self.connect_into_slot(password, database).await
    }

    /// Connects for a slot and budget already held (a new connection, or
    /// the replacement of one `forget` closed); gives both back on failure.
    pub(super) async fn connect_into_slot(
        &self,
        password: &Credential,
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
                self.limits.closed(&self.account);
                self.free_slot();
                Err(e)
            }
        }
    }

    /// Closes a leased connection but keeps its slot and budget (a
    /// replacement follows).
    pub(super) fn forget(&self, conn: BackendConn) {
        drop(conn);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes a connection this pool opened, giving its budget back.
    fn close_counted(&self, conn: BackendConn) {
        drop(conn);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.limits.closed(&self.account);
    }

    async fn reserve_slot(&self, deadline: Instant, purpose: Purpose) -> Result<(), MyError> {
        let max = match purpose {
            Purpose::Session => self.cfg.max_size,
            Purpose::Reserved => self.cfg.max_size + RESERVE,
        };
        loop {
            let cur = self.stats.in_use.load(Ordering::Acquire);
            if cur < max {
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
                    "account {} has pool-max-size ({}) connections to {} in use",
                    self.key.user, self.cfg.max_size, self.addr
                )));
            }
        }
    }

    /// Takes one unit of the account's and the backend's budget for a new
    /// connection. When either is exhausted, an idle connection in the way
    /// (of another pool of the account, or of any pool of the backend) is
    /// closed to make room; failing that, sessions idling on connections
    /// are asked to give them back, and the caller waits until `deadline`.
    async fn take_budget(&self, purpose: Purpose, deadline: Instant) -> Result<(), MyError> {
        loop {
            let full = match self.limits.try_open(&self.account, purpose) {
                Ok(()) => return Ok(()),
                Err(full) => full,
            };
            if self.close_idle_in_the_way(full) {
                continue;
            }
            let waiter = self.limits.waiter();
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Again, now that no wake-up can be missed.
            let full = match self.limits.try_open(&self.account, purpose) {
                Ok(()) => return Ok(()),
                Err(full) => full,
            };
            if self.close_idle_in_the_way(full) {
                continue;
            }
            self.ask_for_connections(full);
            self.stats.waiting.fetch_add(1, Ordering::Relaxed);
            let waited = tokio::time::timeout_at(deadline.into(), notified).await;
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            if waited.is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Err(MyError::too_many_connections(&match full {
                    Full::Account => format!(
                        "account {} has pool-max-size ({}) connections open to {}",
                        self.key.user,
                        self.account.max(),
                        self.addr
                    ),
                    Full::Backend => format!(
                        "{} is at backend-max-connections ({})",
                        self.addr,
                        self.limits.total.max()
                    ),
                }));
            }
        }
    }

    /// The pools that share the budget that is full.
    fn sharing(&self, full: Full) -> Vec<Arc<Pool>> {
        let Some(backend) = self.backend.upgrade() else {
            return Vec::new();
        };
        let pools = backend.pools();
        pools
            .iter()
            .filter(|p| full == Full::Backend || p.key.user == self.key.user)
            .cloned()
            .collect()
    }

    /// Closes one idle connection counted against the full budget.
    fn close_idle_in_the_way(&self, full: Full) -> bool {
        if let Some(conn) = self.idle.pop() {
            self.close_counted(conn);
            return true;
        }
        for p in self.sharing(full) {
            if let Some(conn) = p.idle.pop() {
                p.close_counted(conn);
                return true;
            }
        }
        false
    }

    /// Sessions idling on connections that count against the full budget
    /// give them back.
    fn ask_for_connections(&self, full: Full) {
        self.wanted.notify_waiters();
        for p in self.sharing(full) {
            p.wanted.notify_waiters();
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
        if self.closed.load(Ordering::Relaxed) {
            self.close_counted(conn);
        } else if let Err(conn) = self.idle.push(conn) {
            self.close_counted(conn);
        } else {
            // An idle connection can make room for a waiter of another pool.
            self.limits.wake();
        }
        self.free_slot();
    }

    /// Drops a connection that is broken or carries state it must not share.
    pub(super) fn discard(&self, conn: BackendConn) {
        self.close_counted(conn);
        self.free_slot();
    }

    fn params<'a>(
        &'a self,
        password: &'a Credential,
        database: Option<&'a str>,
    ) -> ConnectParams<'a> {
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

    /// Opens connections until `min-idle` are idle (never beyond the
    /// account's or the backend's budget), so a burst does not pay for
    /// connects. Run by the keeper task.
    pub async fn fill_idle(&self, password: &Credential) {
        while !self.is_closed() && self.idle.len() < self.cfg.min_idle {
            if self
                .limits
                .try_open(&self.account, Purpose::Session)
                .is_err()
            {
                return;
            }
            match BackendConn::connect(&self.params(password, None)).await {
                Ok(conn) => {
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    self.stats.created.fetch_add(1, Ordering::Relaxed);
                    if let Err(conn) = self.idle.push(conn) {
                        self.close_counted(conn);
                        return;
                    }
                    self.limits.wake();
                }
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.limits.closed(&self.account);
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
                self.close_counted(conn);
            } else if let Err(conn) = self.idle.push(conn) {
                self.close_counted(conn);
            }
        }
    }

    /// The backend was removed: close idle connections now and the others as
    /// they come back.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        while let Some(conn) = self.idle.pop() {
            self.close_counted(conn);
        }
    }

    /// Three quarters of the pool, of the account's or of the backend's
    /// budget in use, or callers waiting: idle sessions should be ready to
    /// hand their connections back.
    pub fn under_pressure(&self) -> bool {
        let high = |used: usize, max: usize| used * 4 >= max * 3;
        self.stats.waiting.load(Ordering::Relaxed) > 0
            || high(self.stats.in_use.load(Ordering::Relaxed), self.cfg.max_size)
            || high(self.account.used(), self.account.max())
            || high(self.limits.total.used(), self.limits.total.max())
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
            stream: crate::backend::stream::BackendStream::Plain(stream),
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
            defaults_at: Instant::now(),
            mysql: false,
            names: String::new(),
            track_view: Default::default(),
            rewrite: bytes::BytesMut::new(),
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
            pool.limits
                .try_open(&pool.account, Purpose::Session)
                .unwrap();
            pool.stats.open.fetch_add(1, Ordering::Relaxed);
            assert!(pool.idle.push(conn).is_ok());
        }
        pool.shrink(Duration::from_secs(60));
        // The three old ones go; the fresh one satisfies min-idle.
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(pool.stats.open.load(Ordering::Relaxed), 1);
        // The budgets follow the closes.
        assert_eq!((pool.account_open(), pool.limits.total.used()), (1, 1));
        let left = pool.idle.pop().unwrap();
        assert!(left.last_used.elapsed() < Duration::from_secs(60));
    }

    fn key(collation: u8) -> PoolKey {
        PoolKey {
            user: "app".into(),
            capabilities: 0,
            collation,
        }
    }

    #[tokio::test]
    async fn a_full_account_closes_idle_connections_of_its_other_pools() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = PoolConfig {
            max_size: 2,
            acquire_timeout: Duration::from_millis(50),
            ..PoolConfig::default()
        };
        let rt = BackendRuntime::new("127.0.0.1:1".into(), cfg);
        let latin1 = rt.pool(&key(8));
        for _ in 0..2 {
            latin1
                .limits
                .try_open(&latin1.account, Purpose::Session)
                .unwrap();
            latin1.stats.open.fetch_add(1, Ordering::Relaxed);
            assert!(latin1
                .idle
                .push(idle_conn(&listener, Duration::ZERO).await)
                .is_ok());
        }
        let utf8 = rt.pool(&key(45));
        assert_eq!(utf8.account_open(), 2, "the account's budget is shared");
        // Room is made by closing the other pool's idle connections.
        let deadline = Instant::now() + cfg.acquire_timeout;
        utf8.take_budget(Purpose::Session, deadline).await.unwrap();
        utf8.take_budget(Purpose::Session, deadline).await.unwrap();
        assert_eq!(latin1.idle_count(), 0);
        assert_eq!(latin1.stats.open.load(Ordering::Relaxed), 0);
        assert_eq!((utf8.account_open(), rt.limits.total.used()), (2, 2));
        // Nothing idle left: a third waits, then is refused naming the limit.
        let err = utf8
            .take_budget(Purpose::Session, Instant::now() + cfg.acquire_timeout)
            .await
            .unwrap_err();
        assert_eq!(err.code, 1040);
        assert!(err.message.contains("pool-max-size (2)"), "{}", err.message);
        // Logins and helpers still get one from the reserve.
        utf8.take_budget(Purpose::Reserved, Instant::now())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_waiter_gets_the_room_a_release_makes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = PoolConfig {
            max_size: 1,
            acquire_timeout: Duration::from_secs(5),
            ..PoolConfig::default()
        };
        let rt = BackendRuntime::new("127.0.0.1:1".into(), cfg);
        let a = rt.pool(&key(8));
        let b = rt.pool(&key(45));
        a.reserve_slot(Instant::now(), Purpose::Session)
            .await
            .unwrap();
        a.take_budget(Purpose::Session, Instant::now())
            .await
            .unwrap();
        a.stats.open.fetch_add(1, Ordering::Relaxed);
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                b.take_budget(Purpose::Session, Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        let started = Instant::now();
        // The lease of `a` ends: its connection goes idle, the waiter closes it.
        a.release(idle_conn(&listener, Duration::ZERO).await);
        waiter.await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!((a.idle_count(), b.account_open()), (0, 1));
    }
}
