//! `accounts-from-backend`: client accounts read from the primary itself
//! (MaxScale does the same; Atlas and ProxySQL need them configured), so
//! an operator creates or drops an account on the server and Gantry
//! follows. Names, host patterns and `mysql_native_password` hashes are
//! loaded with the monitor account every `accounts-refresh-ms`, and at
//! once when a client names an account Gantry does not know (at most once
//! a second). Gantry checks a client against the hash and learns from its
//! answer what it needs to log in to the servers (`Credential`): no
//! password of these accounts is configured anywhere.

pub mod host;

use arc_swap::ArcSwap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::health::probe::{Credentials, Prober};
use crate::protocol::credential::{parse_native_hash, Credential};

/// One `'user'@'host'` account of the server.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub host: String,
    pub credential: Arc<Credential>,
}

/// MariaDB 10.4+: accounts live in `mysql.global_priv` as JSON.
pub const MARIADB_ACCOUNTS: &str = "SELECT User, Host, \
    JSON_VALUE(Priv, '$.authentication_string'), JSON_VALUE(Priv, '$.plugin'), \
    IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false'), \
    IFNULL(JSON_VALUE(Priv, '$.is_role'), 'false') FROM mysql.global_priv";
/// MySQL: `mysql.user` (roles are locked accounts there).
pub const MYSQL_ACCOUNTS: &str = "SELECT User, Host, authentication_string, plugin, \
    IF(account_locked = 'Y', 'true', 'false'), 'false' FROM mysql.user";

/// Rows of either query as accounts Gantry can check: native-password
/// ones that can log in, most specific host first within a name.
pub fn from_rows(rows: &[Vec<Option<String>>]) -> Vec<Account> {
    let mut out: Vec<Account> = rows
        .iter()
        .filter_map(|r| {
            let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let (user, host, plugin) = (col(0), col(1), col(3));
            // Strict: anything but a native-password account with its
            // hash present (NULL is not "no password") is left out.
            let auth = r.get(2).cloned().flatten()?;
            let usable = !user.is_empty()
                && col(4) != "true"
                && col(5) != "true"
                && plugin == "mysql_native_password";
            if !usable {
                return None;
            }
            let credential = if auth.is_empty() {
                // No password: the client answers with nothing.
                Credential::Clear("".into())
            } else {
                Credential::NativeHash(parse_native_hash(&auth)?)
            };
            Some(Account {
                user,
                host,
                credential: Arc::new(credential),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.user
            .cmp(&b.user)
            .then(host::specificity(&a.host).cmp(&host::specificity(&b.host)))
    });
    out
}

/// The accounts last loaded, and when a load last ran.
#[derive(Default)]
pub struct BackendAccounts {
    accounts: ArcSwap<Vec<Account>>,
    /// The last load, and the last one an unknown user asked for (a
    /// periodic load must not hold back a client's).
    last_load: Mutex<Option<Instant>>,
    last_on_demand: Mutex<Option<Instant>>,
    /// One load at a time; others wait for it instead of loading again.
    loading: tokio::sync::Mutex<()>,
}

/// On-demand loads (an unknown user) are at most this frequent.
const ON_DEMAND_EVERY: Duration = Duration::from_secs(1);

impl BackendAccounts {
    /// The account `user` logs in with from `client`: the most specific
    /// host that matches, as the server picks.
    pub fn find(&self, user: &str, client: IpAddr) -> Option<Arc<Credential>> {
        self.accounts
            .load()
            .iter()
            .filter(|a| a.user == user)
            .find(|a| host::matches(&a.host, client))
            .map(|a| a.credential.clone())
    }

    pub fn count(&self) -> usize {
        self.accounts.load().len()
    }

    /// Loads the accounts from the primary now, unless a load of the same
    /// kind (`on_demand` or periodic) ran less than `every` ago.
    pub async fn load(
        &self,
        ctx: &Context,
        every: Duration,
        on_demand: bool,
    ) -> Result<(), String> {
        let _one = self.loading.lock().await;
        let clock = if on_demand {
            &self.last_on_demand
        } else {
            &self.last_load
        };
        {
            let mut last = clock.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < every) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let Some(primary) = ctx.topology.load().primary().map(|p| p.addr().to_string()) else {
            return Err("no primary".into());
        };
        let cfg = ctx.config.load_full();
        let creds = Credentials::monitor(&cfg);
        let mut prober = Prober::new(primary);
        let timeout = Duration::from_millis(cfg.probe_timeout_ms.max(1000));
        let mut rows =
            tokio::time::timeout(timeout, prober.text_rows(&creds, MARIADB_ACCOUNTS)).await;
        if !matches!(rows, Ok(Ok(_))) {
            rows = tokio::time::timeout(timeout, prober.text_rows(&creds, MYSQL_ACCOUNTS)).await;
        }
        prober.close().await;
        match rows {
            Ok(Ok(rows)) => {
                let accounts = from_rows(&rows);
                tracing::debug!(
                    accounts = accounts.len(),
                    "accounts loaded from the primary"
                );
                self.accounts.store(Arc::new(accounts));
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// The credential of `user` connecting from `client`: `pwds` first, then
/// (with `accounts-from-backend`) the server's accounts, loaded again once
/// if the user is not among them.
pub async fn credential_for(ctx: &Context, user: &str, client: IpAddr) -> Option<Arc<Credential>> {
    if let Some(c) = ctx.password_of(user) {
        return Some(c);
    }
    if !ctx.config.load().accounts_from_backend {
        return None;
    }
    let accounts = &ctx.backend_accounts;
    if let Some(c) = accounts.find(user, client) {
        return Some(c);
    }
    if let Err(e) = accounts.load(ctx, ON_DEMAND_EVERY, true).await {
        tracing::warn!(error = %e, "cannot load accounts from the primary");
    }
    accounts.find(user, client)
}

/// Reloads the accounts every `accounts-refresh-ms` while
/// `accounts-from-backend` is on.
pub async fn refresh(ctx: Arc<Context>) {
    let mut warned = false;
    loop {
        let cfg = ctx.config.load_full();
        let every = Duration::from_millis(cfg.accounts_refresh_ms.max(100));
        if cfg.accounts_from_backend {
            match ctx.backend_accounts.load(&ctx, every, false).await {
                Ok(()) => warned = false,
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "cannot load accounts from the primary; the monitor account needs SELECT on mysql.global_priv (MariaDB) or mysql.user (MySQL)");
                    warned = true;
                }
                Err(_) => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = ctx.shutdown.started() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[&str]) -> Vec<Option<String>> {
        cols.iter().map(|c| Some(c.to_string())).collect()
    }

    #[test]
    fn native_accounts_that_can_log_in_most_specific_first() {
        let hash = "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4";
        let rows = vec![
            row(&["app", "%", hash, "mysql_native_password", "false", "false"]),
            row(&[
                "app",
                "10.0.0.%",
                hash,
                "mysql_native_password",
                "false",
                "false",
            ]),
            row(&[
                "locked",
                "%",
                hash,
                "mysql_native_password",
                "true",
                "false",
            ]),
            row(&["role", "", "", "", "false", "true"]),
            row(&[
                "sha2",
                "%",
                "$A$005$xyz",
                "caching_sha2_password",
                "false",
                "false",
            ]),
            row(&["nopw", "%", "", "mysql_native_password", "false", "false"]),
            vec![Some("null".into()), None, None, None, None, None],
        ];
        let accounts = from_rows(&rows);
        let names: Vec<(&str, &str)> = accounts
            .iter()
            .map(|a| (a.user.as_str(), a.host.as_str()))
            .collect();
        assert_eq!(names, [("app", "10.0.0.%"), ("app", "%"), ("nopw", "%")]);
        let store = BackendAccounts::default();
        store.accounts.store(Arc::new(accounts));
        assert!(store.find("app", "10.0.0.7".parse().unwrap()).is_some());
        assert!(store.find("app", "192.168.0.7".parse().unwrap()).is_some());
        assert!(store.find("locked", "10.0.0.7".parse().unwrap()).is_none());
        assert_eq!(
            *store.find("nopw", "10.0.0.7".parse().unwrap()).unwrap(),
            Credential::Clear("".into())
        );
    }
}
