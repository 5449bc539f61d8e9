//! What RELOAD CONFIG replaces — the configuration, the data-path settings,
//! the accounts and the client allowlist — as one snapshot behind one
//! `ArcSwap`, so a reload is one atomic swap: no reader sees the new
//! accounts with the old allowlist.
//!
//! Readers keep their old shape (`ctx.settings.load().idle_release`): each
//! field of `Context` is a [`View`] that projects one part of the snapshot
//! without touching a reference count. The topology is not part of it: the
//! health loop publishes topologies many times more often than anyone
//! reloads, and it must never overwrite a reload's accounts.

use arc_swap::{ArcSwap, Guard};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::context::Settings;
use crate::protocol::credential::Credential;

/// `pwds`: user → password (clear or its native hash).
pub type Users = HashMap<String, Arc<Credential>>;

#[derive(Debug, Clone)]
pub struct Runtime {
    /// The configuration as last loaded (file + command line).
    pub config: Arc<Config>,
    pub settings: Arc<Settings>,
    pub users: Arc<Users>,
    /// `client-ips` allowlist; empty means everyone.
    pub client_ips: Arc<Vec<String>>,
}

/// The shared, swappable snapshot.
pub type Shared = Arc<ArcSwap<Runtime>>;

/// One part of the runtime snapshot, read like an `ArcSwap` of its own.
pub struct View<T: 'static> {
    runtime: Shared,
    get: fn(&Runtime) -> &Arc<T>,
    set: fn(&mut Runtime, Arc<T>),
}

impl<T> View<T> {
    pub fn new(
        runtime: Shared,
        get: fn(&Runtime) -> &Arc<T>,
        set: fn(&mut Runtime, Arc<T>),
    ) -> Self {
        Self { runtime, get, set }
    }

    /// The current value, borrowed from the snapshot (no refcount traffic).
    pub fn load(&self) -> Projected<T> {
        Projected {
            guard: self.runtime.load(),
            get: self.get,
        }
    }

    pub fn load_full(&self) -> Arc<T> {
        (self.get)(&self.runtime.load()).clone()
    }

    /// Replaces this part only (admin commands such as ADD PWD); `edit`
    /// may run more than once if another writer races.
    pub fn rcu(&self, mut edit: impl FnMut(&T) -> T) {
        self.runtime.rcu(|current| {
            let mut next = Runtime::clone(current);
            (self.set)(&mut next, Arc::new(edit((self.get)(current))));
            next
        });
    }
}

/// A borrowed part of one snapshot.
pub struct Projected<T: 'static> {
    guard: Guard<Arc<Runtime>>,
    get: fn(&Runtime) -> &Arc<T>,
}

impl<T> Deref for Projected<T> {
    type Target = T;

    fn deref(&self) -> &T {
        (self.get)(&self.guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let cfg = crate::config::load_from([
            "gantry",
            "--admin-password",
            "x",
            "--proxy-backend-addresses",
            "127.0.0.1:3306",
            "--pwds",
            "app:pw",
        ])
        .unwrap();
        Arc::new(ArcSwap::from_pointee(Runtime {
            config: Arc::new(cfg),
            settings: Arc::new(Settings::default()),
            users: Arc::new(Users::new()),
            client_ips: Arc::new(Vec::new()),
        }))
    }

    #[test]
    fn views_read_and_edit_their_part_of_one_snapshot() {
        let rt = shared();
        let ips: View<Vec<String>> =
            View::new(rt.clone(), |r| &r.client_ips, |r, v| r.client_ips = v);
        let users: View<Users> = View::new(rt.clone(), |r| &r.users, |r, v| r.users = v);
        let before = rt.load_full();
        ips.rcu(|l| {
            let mut l = l.clone();
            l.push("10.0.0.1".into());
            l
        });
        assert_eq!(*ips.load(), vec!["10.0.0.1".to_string()]);
        assert!(users.load().is_empty());
        // The other parts are the same objects, the snapshot a new one.
        let after = rt.load_full();
        assert!(Arc::ptr_eq(&before.users, &after.users));
        assert!(!Arc::ptr_eq(&before, &after));
    }
}
