//! Connection budgets shared by the pools of one backend. Pools are keyed by
//! (account, capabilities, collation), so a limit per pool multiplies with
//! the keys; these counters bound the *open* connections (leased and idle)
//! per account and per backend whatever the keys. A new connection takes one
//! unit of its account's budget, then one of the backend's (rolled back when
//! the second fails); closing it gives both back. Plain atomics: no lock on
//! the data path, and only callers that open connections touch them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Connections of the backend total that sessions' ordinary acquires
/// cannot take: left for logins that validate a schema and for Gantry's own
/// short-lived connections (KILL helper, causal position fetch). Health
/// probes use their own connections, outside every budget.
pub const RESERVE: usize = 4;

/// Who asks for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A session's statements: bounded by the account limit and by the
    /// backend total minus [`RESERVE`].
    Session,
    /// A login or one of Gantry's helpers: may use the reserve, at the
    /// account and at the backend level.
    Reserved,
}

/// A count bounded by a maximum, taken and given back one at a time.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes one unit while fewer than `limit` are used.
    fn try_take(&self, limit: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        while cur < limit {
            match self
                .used
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }

    fn give(&self) {
        let before = self.used.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "a budget was given back more than taken");
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// Which limit refused a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `pool-max-size` connections of this account to this backend.
    Account,
    /// `backend-max-connections` to this backend.
    Backend,
}

/// The budgets of one backend: its total and one per account.
#[derive(Debug)]
pub struct Limits {
    pub total: Budget,
    account_max: usize,
    /// Touched only when a pool is created.
    accounts: Mutex<HashMap<String, Arc<Budget>>>,
    /// Woken when a connection closes or goes idle (an idle one can be
    /// closed to make room).
    freed: Notify,
    waiting: AtomicUsize,
}

impl Limits {
    pub fn new(backend_max: usize, account_max: usize) -> Self {
        Self {
            total: Budget::new(backend_max),
            account_max,
            accounts: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The budget of `user`, shared by all of its pools on this backend.
    pub fn account(&self, user: &str) -> Arc<Budget> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry(user.to_string())
            .or_insert_with(|| Arc::new(Budget::new(self.account_max)))
            .clone()
    }

    /// `pool-max-size`: the limit of each account.
    pub fn account_max(&self) -> usize {
        self.account_max
    }

    /// Open connections per account, for the admin port.
    pub fn accounts(&self) -> Vec<(String, usize)> {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = accounts
            .iter()
            .map(|(u, b)| (u.clone(), b.used()))
            .collect();
        v.sort();
        v
    }

    /// Takes one connection of `account`'s budget and one of the backend's.
    pub fn try_open(&self, account: &Budget, purpose: Purpose) -> Result<(), Full> {
        let (account_limit, total_limit) = match purpose {
            Purpose::Session => (account.max, self.total.max.saturating_sub(RESERVE).max(1)),
            Purpose::Reserved => (account.max + RESERVE, self.total.max),
        };
        if !account.try_take(account_limit) {
            return Err(Full::Account);
        }
        if !self.total.try_take(total_limit) {
            account.give();
            return Err(Full::Backend);
        }
        Ok(())
    }

    /// A connection taken by [`Limits::try_open`] was closed.
    pub fn closed(&self, account: &Budget) {
        account.give();
        self.total.give();
        self.wake();
    }

    /// Something may have room now (a connection closed or went idle).
    pub fn wake(&self) {
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.freed.notify_waiters();
        }
    }

    /// Registers a waiter; the future must be enabled before the caller
    /// checks the budgets again, so no wake-up is lost in between.
    pub(super) fn waiter(&self) -> Waiter<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiter { limits: self }
    }
}

/// A caller waiting for room; counted while it lives.
pub(super) struct Waiter<'a> {
    limits: &'a Limits,
}

impl Waiter<'_> {
    pub(super) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.limits.freed.notified()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.limits.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_budget_is_shared_and_bounded() {
        let l = Limits::new(100, 3);
        let a = l.account("app");
        let a2 = l.account("app");
        assert!(Arc::ptr_eq(&a, &a2));
        for _ in 0..3 {
            assert_eq!(l.try_open(&a, Purpose::Session), Ok(()));
        }
        assert_eq!(l.try_open(&a2, Purpose::Session), Err(Full::Account));
        // Another account is unaffected.
        let b = l.account("other");
        assert_eq!(l.try_open(&b, Purpose::Session), Ok(()));
        assert_eq!(l.total.used(), 4);
        assert_eq!(a.used(), 3);
        l.closed(&a);
        assert_eq!(l.try_open(&a, Purpose::Session), Ok(()));
        assert_eq!(l.accounts(), vec![("app".into(), 3), ("other".into(), 1)]);
    }

    #[test]
    fn backend_total_keeps_a_reserve_and_rolls_back_the_account() {
        let l = Limits::new(10, 100);
        let a = l.account("a");
        let b = l.account("b");
        for _ in 0..(10 - RESERVE) {
            assert_eq!(l.try_open(&a, Purpose::Session), Ok(()));
        }
        // Sessions of every account stop at total - reserve ...
        assert_eq!(l.try_open(&b, Purpose::Session), Err(Full::Backend));
        assert_eq!(b.used(), 0, "the account unit is given back");
        // ... logins and helpers may use the reserve, never beyond the total.
        for _ in 0..RESERVE {
            assert_eq!(l.try_open(&b, Purpose::Reserved), Ok(()));
        }
        assert_eq!(l.try_open(&b, Purpose::Reserved), Err(Full::Backend));
        assert_eq!(l.total.used(), 10);
        assert_eq!(b.used(), RESERVE);
    }

    #[test]
    fn reserved_purpose_may_exceed_the_account_by_the_reserve_only() {
        let l = Limits::new(1000, 2);
        let a = l.account("a");
        for _ in 0..2 {
            assert_eq!(l.try_open(&a, Purpose::Session), Ok(()));
        }
        for _ in 0..RESERVE {
            assert_eq!(l.try_open(&a, Purpose::Reserved), Ok(()));
        }
        assert_eq!(l.try_open(&a, Purpose::Reserved), Err(Full::Account));
    }

    #[test]
    fn concurrent_takers_never_exceed_the_limits() {
        let l = Arc::new(Limits::new(50, 20));
        let taken = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let l = l.clone();
                let taken = taken.clone();
                std::thread::spawn(move || {
                    let acc = l.account(&format!("u{}", i % 4));
                    for _ in 0..1000 {
                        if l.try_open(&acc, Purpose::Session).is_ok() {
                            taken.fetch_add(1, Ordering::Relaxed);
                            assert!(acc.used() <= 20);
                            assert!(l.total.used() <= 50 - RESERVE);
                            l.closed(&acc);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(taken.load(Ordering::Relaxed) > 0);
        assert_eq!(l.total.used(), 0);
    }
}
