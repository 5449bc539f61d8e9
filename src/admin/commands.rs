//! Executes admin commands against the shared context. Topology changes
//! publish a new snapshot (`Context::update_topology`); the data path picks
//! it up on its next statement, so statements already running finish where
//! they are and removed backends' pools drain as connections come back.

use std::collections::HashMap;
use std::sync::Arc;

use super::parse::{self, Command, ParseError};
use super::tables;
use crate::backend::{BackendEntry, BackendRuntime, BackendState, Role};
use crate::config::{self, BackendAddr, ConfigError, UserPassword};
use crate::context::Context;
use crate::protocol::credential::Credential;
use crate::protocol::MyError;

use super::resultset::ResultSet;

/// State given to a backend that is added or set online: the health loop
/// probes it and decides (`up`, `lagging`, `down`); until then the data
/// path sends it nothing.
pub const NEW_BACKEND_STATE: BackendState = BackendState::Unknown;

/// What a successful command sends back.
#[derive(Debug)]
pub enum Reply {
    Rows(ResultSet),
    /// OK with this many affected rows.
    Done(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "backend_ndx {n} does not exist (there are {count} backends; see SELECT * FROM backends)"
    )]
    NoSuchBackend { n: usize, count: usize },
    #[error("backend {0} is already in the backend list")]
    DuplicateBackend(String),
    #[error("{0:?} is not an IP address, IPv4 prefix (192.168.1.) or CIDR block")]
    BadClient(String),
    #[error("client {0} is already in client-ips")]
    DuplicateClient(String),
    #[error("client {0} is not in client-ips (see SELECT * FROM clients)")]
    NoSuchClient(String),
    #[error("user {0} already exists; REMOVE PWD {0} first to change the password")]
    DuplicateUser(String),
    #[error("user {0} is not in pwds (see SELECT * FROM pwds)")]
    NoSuchUser(String),
    /// SAVE/RELOAD CONFIG without `--config`: there is no file to write or
    /// read (reloading the command line alone would silently undo every
    /// change made at run time).
    #[error("{0} needs a configuration file: start gantry with --config FILE")]
    NoConfigFile(&'static str),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("config: {0}")]
    Tls(#[from] crate::frontend::tls::TlsError),
    #[error("backend address {0:?} cannot be saved: {1}")]
    Unsaveable(String, String),
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    pub fn to_my_error(&self) -> MyError {
        match self {
            // ER_PARSE_ERROR, what a server says about an unknown statement.
            AdminError::Parse(ParseError::Unknown(_)) => {
                MyError::new(1064, "42000", self.to_string())
            }
            // ER_UNKNOWN_ERROR with the reason.
            _ => MyError::new(1105, "HY000", self.to_string()),
        }
    }
}

/// Parses and runs one statement.
pub async fn run(ctx: &Arc<Context>, text: &str) -> Result<Reply, AdminError> {
    let cmd = parse::parse(text)?;
    if is_change(&cmd) {
        // `Debug` of the command never shows a password.
        tracing::info!(command = ?cmd, "admin command");
    }
    execute(ctx, cmd).await
}

fn is_change(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Select(_) | Command::Version | Command::Variables(_) | Command::Empty
    )
}

pub async fn execute(ctx: &Arc<Context>, cmd: Command) -> Result<Reply, AdminError> {
    match cmd {
        Command::Select(t) => Ok(Reply::Rows(tables::select(ctx, t))),
        Command::Version => Ok(Reply::Rows(tables::version())),
        Command::Variables(names) => Ok(Reply::Rows(tables::variables(ctx, &names))),
        Command::Empty => Ok(Reply::Done(0)),
        Command::SetOffline(n) => set_state(ctx, n, true),
        Command::SetOnline(n) => set_state(ctx, n, false),
        Command::AddMaster(addr) => add_backend(ctx, addr, Role::Primary),
        Command::AddSlave(addr) => add_backend(ctx, addr, Role::Replica),
        Command::RemoveBackend(n) => remove_backend(ctx, n),
        Command::AddClient(ip) => add_client(ctx, ip),
        Command::RemoveClient(ip) => remove_client(ctx, &ip),
        Command::AddPwd(p) => add_pwd(ctx, p),
        Command::RemovePwd(user) => remove_pwd(ctx, &user),
        Command::SaveConfig => save_config(ctx).await,
        Command::ReloadConfig => super::reload::reload(ctx).await.map(|_| Reply::Done(0)),
        Command::Failover => manual_failover(ctx).await,
        Command::Switchover(to) => switchover(ctx, to).await,
    }
}

/// `FAILOVER`: as the automatic one, by hand, whatever `failover` says
/// (except `off`), for a primary that is down.
async fn manual_failover(ctx: &Arc<Context>) -> Result<Reply, AdminError> {
    use crate::failover::status::Kind;
    let cfg = ctx.config.load_full();
    if cfg.failover == config::FailoverMode::Off {
        return Err(AdminError::Internal(
            "failover = off: roles never change".into(),
        ));
    }
    let primary_up = ctx
        .topology
        .load()
        .primary()
        .is_some_and(|p| p.state != BackendState::Down);
    if primary_up {
        return Err(AdminError::Internal(
            "the primary is not down; FAILOVER replaces a failed primary".into(),
        ));
    }
    let record = crate::failover::run::failover(ctx, &cfg, Kind::Manual).await;
    let outcome = record.outcome.clone();
    ctx.failovers.record(record);
    if outcome == "ok" {
        Ok(Reply::Done(1))
    } else {
        Err(AdminError::Internal(format!("failover failed: {outcome}")))
    }
}

/// `SWITCHOVER [TO n]`: a planned move of the primary role.
async fn switchover(ctx: &Arc<Context>, to: Option<usize>) -> Result<Reply, AdminError> {
    let cfg = ctx.config.load_full();
    if cfg.failover == config::FailoverMode::Off {
        return Err(AdminError::Internal(
            "failover = off: roles never change".into(),
        ));
    }
    let target = match to {
        None => None,
        Some(n) => {
            let topo = ctx.topology.load();
            let count = topo.backends.len();
            let b = topo
                .backends
                .get(n - 1)
                .ok_or(AdminError::NoSuchBackend { n, count })?;
            Some(b.runtime.id)
        }
    };
    let record = crate::failover::switchover::switchover(ctx, &cfg, target).await;
    let outcome = record.outcome.clone();
    ctx.failovers.record(record);
    if outcome == "ok" {
        Ok(Reply::Done(1))
    } else {
        Err(AdminError::Internal(format!(
            "switchover failed: {outcome}"
        )))
    }
}

/// Publishes a topology edited by `edit`, which may refuse with an error
/// (then nothing changes). `edit` may run more than once when the health
/// loop publishes at the same time; it always sees the latest snapshot.
fn edit_topology<F>(ctx: &Context, mut edit: F) -> Result<(), AdminError>
where
    F: FnMut(&[BackendEntry]) -> Result<Vec<BackendEntry>, AdminError>,
{
    // Refuse before publishing anything in the common case; a race with the
    // health loop is caught again inside the rcu below.
    edit(&ctx.topology.load().backends)?;
    let mut outcome = Ok(());
    ctx.update_topology(|current| match edit(current) {
        Ok(next) => {
            outcome = Ok(());
            next
        }
        Err(e) => {
            outcome = Err(e);
            current.to_vec()
        }
    });
    outcome
}

fn check_index(n: usize, backends: &[BackendEntry]) -> Result<usize, AdminError> {
    if n == 0 || n > backends.len() {
        return Err(AdminError::NoSuchBackend {
            n,
            count: backends.len(),
        });
    }
    Ok(n - 1)
}

/// SET OFFLINE / SET ONLINE. Online only lifts an operator's offline: a
/// backend the health loop judged down stays its business.
fn set_state(ctx: &Context, n: usize, offline: bool) -> Result<Reply, AdminError> {
    let mut changed = 0;
    edit_topology(ctx, |current| {
        let i = check_index(n, current)?;
        let mut next = current.to_vec();
        let b = &mut next[i];
        changed = 0;
        if offline && b.state != BackendState::Offline {
            b.state = BackendState::Offline;
            b.reason = "SET OFFLINE by admin".into();
            changed = 1;
        } else if !offline && b.state == BackendState::Offline {
            b.state = NEW_BACKEND_STATE;
            b.reason = "SET ONLINE by admin".into();
            changed = 1;
        }
        Ok(next)
    })?;
    Ok(Reply::Done(changed))
}

/// Whether two backend addresses name the same server endpoint.
fn same_endpoint(a: &BackendAddr, addr: &str) -> bool {
    BackendAddr::parse(addr).is_ok_and(|b| b.host.eq_ignore_ascii_case(&a.host) && b.port == a.port)
}

fn add_backend(ctx: &Context, addr: BackendAddr, role: Role) -> Result<Reply, AdminError> {
    // Created once, outside the edit, so a retried edit adds the same one.
    let runtime = BackendRuntime::new(addr.to_string(), ctx.settings.load().pool);
    let added = addr.to_string();
    ctx.removed_by_operator.rcu(|list| {
        list.iter()
            .filter(|(a, _)| !a.eq_ignore_ascii_case(&added))
            .cloned()
            .collect::<Vec<_>>()
    });
    edit_topology(ctx, |current| {
        if current.iter().any(|b| same_endpoint(&addr, b.addr())) {
            return Err(AdminError::DuplicateBackend(addr.to_string()));
        }
        let mut entry = BackendEntry::new(runtime.clone(), role, addr.weight, NEW_BACKEND_STATE);
        entry.reason = format!(
            "ADD {} by admin",
            if role == Role::Primary {
                "MASTER"
            } else {
                "SLAVE"
            }
        );
        let mut next = current.to_vec();
        next.push(entry);
        Ok(next)
    })?;
    Ok(Reply::Done(1))
}

fn remove_backend(ctx: &Context, n: usize) -> Result<Reply, AdminError> {
    let mut removed = None;
    edit_topology(ctx, |current| {
        let i = check_index(n, current)?;
        let mut next = current.to_vec();
        let gone = next.remove(i);
        removed = Some((gone.addr().to_string(), gone.server_id));
        Ok(next)
    })?;
    // Discovery would otherwise find a still-replicating replica again.
    if let Some(r) = removed {
        ctx.removed_by_operator.rcu(|list| {
            let mut next = Vec::clone(list);
            next.push(r.clone());
            next
        });
    }
    Ok(Reply::Done(1))
}

/// Validates a `client-ips` entry with the matcher the listener uses: a
/// valid entry matches at least the address built from its own digits.
fn valid_client_pattern(p: &str) -> bool {
    if p.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let base = p.split('/').next().unwrap_or(p);
    let candidate = if p.contains('/') {
        base.to_string()
    } else {
        let mut octets: Vec<&str> = base.trim_end_matches('.').split('.').collect();
        octets.resize(4, "0");
        octets.join(".")
    };
    candidate
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| config::client_ip_matches(p, ip))
}

fn add_client(ctx: &Context, ip: String) -> Result<Reply, AdminError> {
    if !valid_client_pattern(&ip) {
        return Err(AdminError::BadClient(ip));
    }
    let mut outcome = Ok(());
    ctx.client_ips.rcu(|list| {
        let mut next = Vec::clone(list);
        outcome = if next.contains(&ip) {
            Err(AdminError::DuplicateClient(ip.clone()))
        } else {
            next.push(ip.clone());
            Ok(())
        };
        next
    });
    outcome.map(|()| Reply::Done(1))
}

fn remove_client(ctx: &Context, ip: &str) -> Result<Reply, AdminError> {
    let mut found = false;
    ctx.client_ips.rcu(|list| {
        let next: Vec<String> = list.iter().filter(|p| *p != ip).cloned().collect();
        found = next.len() != list.len();
        next
    });
    if found {
        Ok(Reply::Done(1))
    } else {
        Err(AdminError::NoSuchClient(ip.to_string()))
    }
}

fn add_pwd(ctx: &Context, p: UserPassword) -> Result<Reply, AdminError> {
    let mut exists = false;
    let secret = crate::config::secret::reveal(ctx.config.load().secret_key.as_ref(), &p.password)
        .map_err(|e| AdminError::Internal(format!("ADD PWD {}: {e}", p.user)))?;
    let pw = Arc::new(Credential::from_config(&secret));
    ctx.users.rcu(|users| {
        let mut next = HashMap::clone(users);
        exists = next.contains_key(&p.user);
        if !exists {
            next.insert(p.user.clone(), pw.clone());
        }
        next
    });
    if exists {
        return Err(AdminError::DuplicateUser(p.user));
    }
    Ok(Reply::Done(1))
}

fn remove_pwd(ctx: &Context, user: &str) -> Result<Reply, AdminError> {
    let mut found = false;
    ctx.users.rcu(|users| {
        let mut next = HashMap::clone(users);
        found = next.remove(user).is_some();
        next
    });
    if found {
        Ok(Reply::Done(1))
    } else {
        Err(AdminError::NoSuchUser(user.to_string()))
    }
}

/// The running accounts, in the configuration's order first, then new
/// ones by name, so a saved file diffs cleanly.
pub fn ordered_pwds(ctx: &Context) -> Vec<UserPassword> {
    let users = ctx.users.load();
    let cfg = ctx.config.load();
    let mut out: Vec<UserPassword> = cfg
        .pwds
        .iter()
        .filter_map(|p| {
            // Unchanged since loaded: as the file had it (an `enc:` value
            // stays encrypted).
            let now = users.get(&p.user)?;
            if **now == Credential::from_config(&cfg.reveal(&p.password)) {
                return Some(p.clone());
            }
            now.config_text()
                .map(|text| UserPassword::new(&p.user, text))
        })
        .collect();
    let mut added: Vec<UserPassword> = users
        .iter()
        .filter(|(u, _)| !out.iter().any(|p| &p.user == *u))
        .filter_map(|(u, pw)| pw.config_text().map(|text| UserPassword::new(u, text)))
        .collect();
    added.sort_by(|a, b| a.user.cmp(&b.user));
    out.extend(added);
    out
}

/// SAVE CONFIG: the running backends (with weights), clients and pwds go
/// back to the `--config` file; `config::save_runtime` writes atomically
/// and keeps every other option and comment.
async fn save_config(ctx: &Arc<Context>) -> Result<Reply, AdminError> {
    let path = ctx
        .config
        .load()
        .config_path
        .clone()
        .ok_or(AdminError::NoConfigFile("SAVE CONFIG"))?;
    let topo = ctx.topology.load_full();
    let (mut rw, mut ro) = (Vec::new(), Vec::new());
    for b in &topo.backends {
        let mut addr = BackendAddr::parse(b.addr())
            .map_err(|why| AdminError::Unsaveable(b.addr().to_string(), why))?;
        match b.role {
            Role::Primary => rw.push(addr),
            Role::Replica => {
                addr.weight = b.weight.clamp(1, config::MAX_WEIGHT);
                ro.push(addr);
            }
        }
    }
    let ips = Vec::clone(&ctx.client_ips.load());
    let pwds = ordered_pwds(ctx);
    let saved = tokio::task::spawn_blocking(move || {
        config::save_runtime(&path, &rw, &ro, &ips, &pwds).map(|()| path)
    })
    .await
    .map_err(|e| AdminError::Internal(format!("SAVE CONFIG task failed: {e}")))??;
    tracing::info!(file = %saved.display(), "configuration saved");
    Ok(Reply::Done(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_patterns_follow_the_listener_matcher() {
        for ok in [
            "127.0.0.1",
            "192.168.1.",
            "192.168.1",
            "10.",
            "10.0.0.0/8",
            "::1",
            "fd00::/8",
        ] {
            assert!(valid_client_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "x",
            "300.1.",
            "10.0.0.0/33",
            "1.2.3.4.5",
            "localhost",
            "1..2",
        ] {
            assert!(!valid_client_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn errors_map_to_mysql_codes() {
        let e: AdminError = ParseError::Unknown("x".into()).into();
        assert_eq!(e.to_my_error().code, 1064);
        assert!(e.to_my_error().message.contains("SELECT * FROM help"));
        let e = AdminError::NoSuchBackend { n: 9, count: 3 };
        assert_eq!(e.to_my_error().code, 1105);
        assert!(e.to_string().contains("backend_ndx 9 does not exist"));
    }
}
