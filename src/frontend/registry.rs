//! Registry of live client sessions, for the admin port's `sessions` table
//! and for KILL. Touched on connect and disconnect; per-statement facts are
//! atomics inside each `SessionInfo`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a session is held on one backend connection (bit set).
pub mod pin {
    pub const TRANSACTION: u32 = 1;
    pub const AUTOCOMMIT_OFF: u32 = 1 << 1;
    pub const TEMP_TABLE: u32 = 1 << 2;
    pub const LOCK_TABLES: u32 = 1 << 3;
    pub const USER_LOCK: u32 = 1 << 4;
    pub const SQL_PREPARE: u32 = 1 << 5;
    pub const USER_VARIABLE: u32 = 1 << 6;
    pub const FOUND_ROWS: u32 = 1 << 7;
    pub const CURSOR: u32 = 1 << 8;
    pub const SESSION_OPTION: u32 = 1 << 9;
    pub const SERVER_STATE: u32 = 1 << 10;
    pub const HANDLER: u32 = 1 << 11;
    pub const BACKUP_STAGE: u32 = 1 << 12;
    pub const XA: u32 = 1 << 13;
    pub const SYSTEM_VARIABLE: u32 = 1 << 14;

    const NAMES: [(u32, &str); 15] = [
        (TRANSACTION, "transaction"),
        (AUTOCOMMIT_OFF, "autocommit=0"),
        (TEMP_TABLE, "temporary table"),
        (LOCK_TABLES, "LOCK TABLES"),
        (USER_LOCK, "GET_LOCK"),
        (SQL_PREPARE, "PREPARE"),
        (USER_VARIABLE, "user variable expression"),
        (FOUND_ROWS, "SQL_CALC_FOUND_ROWS"),
        (CURSOR, "open cursor"),
        (SESSION_OPTION, "COM_SET_OPTION"),
        (SERVER_STATE, "session state reported by the server"),
        (HANDLER, "HANDLER"),
        (BACKUP_STAGE, "BACKUP STAGE"),
        (XA, "XA transaction"),
        (SYSTEM_VARIABLE, "variable that cannot be replayed"),
    ];

    pub fn describe(bits: u32) -> String {
        NAMES
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug)]
pub struct SessionInfo {
    pub id: u32,
    pub client_addr: String,
    pub user: Mutex<String>,
    pub schema: Mutex<Option<String>>,
    /// Backend runtime id of the held connection, 0 = none.
    pub backend: AtomicU64,
    /// Server thread id of the held connection (for KILL).
    pub backend_thread: AtomicU32,
    /// `pin` bits.
    pub pins: AtomicU32,
    pub queries: AtomicU64,
    /// A command is running (a switchover waits for those on the primary).
    pub busy: AtomicBool,
    /// Set by KILL [CONNECTION] from another session.
    pub killed: AtomicBool,
    pub kill_signal: Notify,
    /// The health loop marked the held connection's backend down: a
    /// statement waiting on it fails at once.
    pub backend_down: Notify,
}

impl SessionInfo {
    pub fn new(id: u32, client_addr: String, user: String) -> Self {
        Self {
            id,
            client_addr,
            user: Mutex::new(user),
            schema: Mutex::new(None),
            backend: AtomicU64::new(0),
            backend_thread: AtomicU32::new(0),
            pins: AtomicU32::new(0),
            queries: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
            backend_down: Notify::new(),
        }
    }

    /// KILL CONNECTION: the session ends at its next command boundary.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill_signal.notify_one();
    }

    pub fn pins(&self) -> u32 {
        self.pins.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct SessionRegistry {
    inner: Mutex<BTreeMap<u32, Arc<SessionInfo>>>,
}

impl SessionRegistry {
    pub fn insert(&self, info: Arc<SessionInfo>) {
        self.lock().insert(info.id, info);
    }

    pub fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }

    pub fn get(&self, id: u32) -> Option<Arc<SessionInfo>> {
        self.lock().get(&id).cloned()
    }

    /// Tells every session holding a connection to `backend` that it is
    /// down (rare: the health loop's verdict), so statements in flight
    /// there fail now instead of when the server answers.
    pub fn backend_down(&self, backend: u64) {
        for s in self.lock().values() {
            if s.backend.load(Ordering::Relaxed) == backend {
                s.backend_down.notify_waiters();
            }
        }
    }

    pub fn snapshot(&self) -> Vec<Arc<SessionInfo>> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Arc<SessionInfo>>> {
        // A panic elsewhere must not take the registry down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
