//! The read-only tables of the admin port (`SELECT * FROM ...`), built from
//! one load of each snapshot so a table is consistent in itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::parse::Table;
use super::resultset::{Kind, ResultSet};
use crate::backend::{BackendEntry, Topology};
use crate::context::Context;
use crate::frontend::registry::pin;

const T: Kind = Kind::Text;
const I: Kind = Kind::Int;

/// What `@@version_comment` answers, so the CLI's banner says where it is.
pub const VERSION_COMMENT: &str = "Gantry admin";

pub const HELP: &[(&str, &str)] = &[
    ("SELECT * FROM help", "shows this help"),
    (
        "SELECT * FROM backends",
        "lists the backends and their state",
    ),
    (
        "SET OFFLINE $backend_ndx",
        "takes a backend out: it gets no new statements",
    ),
    (
        "SET ONLINE $backend_ndx",
        "brings an offline backend back (the health check decides when it is up)",
    ),
    ("ADD MASTER $host:$port", "adds a read/write backend"),
    (
        "ADD SLAVE $host:$port[@$weight]",
        "adds a read-only backend (weight 1..1000, default 1)",
    ),
    (
        "REMOVE BACKEND $backend_ndx",
        "removes a backend; running statements finish, its pools drain and close",
    ),
    (
        "SELECT * FROM clients",
        "lists client-ips, the allowed client addresses (empty: everyone)",
    ),
    (
        "ADD CLIENT $ip",
        "allows an address, IPv4 prefix (192.168.1.) or CIDR block",
    ),
    ("REMOVE CLIENT $ip", "removes an entry from client-ips"),
    (
        "SELECT * FROM pwds",
        "lists the client accounts (passwords hidden)",
    ),
    ("ADD PWD $user:$password", "adds a client account"),
    (
        "REMOVE PWD $user",
        "removes a client account (open sessions stay)",
    ),
    (
        "SAVE CONFIG",
        "writes backends (with weights), clients and pwds to the --config file",
    ),
    (
        "RELOAD CONFIG",
        "re-reads the config file and command line (SIGHUP does the same)",
    ),
    (
        "SELECT * FROM sessions",
        "lists client sessions: backend in use, transaction, pinning",
    ),
    (
        "SELECT * FROM pools",
        "shows backend connection pools per backend",
    ),
    ("SELECT * FROM stats", "shows statements routed per backend"),
    (
        "SELECT * FROM config",
        "shows the running configuration (passwords hidden)",
    ),
    ("SELECT VERSION", "shows the Gantry version"),
    (
        "SELECT * FROM failovers",
        "lists failovers: when, kind, from, to, write outage, outcome, lost writes",
    ),
    (
        "FAILOVER",
        "promotes a replica in place of a primary that is down",
    ),
    (
        "SWITCHOVER [TO $backend_ndx]",
        "hands the primary role to a replica: writes pause, none fails or is lost",
    ),
];

pub fn select(ctx: &Context, table: Table) -> ResultSet {
    match table {
        Table::Help => help(),
        Table::Backends => backends(&ctx.topology.load()),
        Table::Clients => clients(ctx),
        Table::Pwds => pwds(ctx),
        Table::Sessions => sessions(ctx),
        Table::Pools => pools(&ctx.topology.load()),
        Table::Stats => stats(ctx),
        Table::Failovers => failovers(ctx),
        Table::Config => config(ctx),
    }
}

fn s(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

fn help() -> ResultSet {
    let mut rs = ResultSet::new(&[("command", T), ("description", T)]);
    for (c, d) in HELP {
        rs.push(vec![s(c), s(d)]);
    }
    rs
}

pub fn version() -> ResultSet {
    let mut rs = ResultSet::new(&[("version", T)]);
    rs.push(vec![s(env!("CARGO_PKG_VERSION"))]);
    rs
}

fn failovers(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("started", T),
        ("kind", T),
        ("from", T),
        ("to", T),
        ("write_outage_ms", I),
        ("position", T),
        ("outcome", T),
        ("old_primary_lacked", T),
    ]);
    for r in ctx.failovers.records() {
        rs.push(vec![
            s(humantime::format_rfc3339_seconds(r.started)),
            s(r.kind.as_str()),
            s(&r.from),
            r.to.clone(),
            r.write_outage.map(|d| d.as_millis().to_string()),
            r.position.clone(),
            s(&r.outcome),
            r.lacked.clone(),
        ]);
    }
    rs
}

/// Answers `SELECT @@a, @@b`: the values connectors ask on connect; other
/// variables are NULL (the admin port has no server variables).
pub fn variables(ctx: &Context, names: &[String]) -> ResultSet {
    let cols: Vec<String> = names.iter().map(|n| format!("@@{n}")).collect();
    let kinds: Vec<(&str, Kind)> = cols.iter().map(|c| (c.as_str(), T)).collect();
    let mut rs = ResultSet::new(&kinds);
    let row = names
        .iter()
        .map(|n| match n.as_str() {
            "version_comment" => s(VERSION_COMMENT),
            "version" => s(super::server_version()),
            "max_allowed_packet" => s(crate::protocol::packet::MAX_COMMAND),
            "wait_timeout" | "interactive_timeout" => s(28800),
            "autocommit" => s(1),
            "character_set_client" | "character_set_connection" | "character_set_results" => {
                s("utf8mb4")
            }
            "server_id" => s(0),
            "hostname" => s(&ctx.config.load().admin_address),
            _ => None,
        })
        .collect();
    rs.push(row);
    rs
}

/// Open connections of a backend, over all its pools.
fn connections(b: &BackendEntry) -> usize {
    b.runtime
        .pools()
        .iter()
        .map(|p| p.stats.open.load(Ordering::Relaxed))
        .sum()
}

/// Atlas's four columns first, Gantry's after them.
pub fn backends(topo: &Topology) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("backend_ndx", I),
        ("address", T),
        ("state", T),
        ("type", T),
        ("weight", I),
        ("reason", T),
        ("lag", I),
        ("connections", I),
    ]);
    for (i, b) in topo.backends.iter().enumerate() {
        rs.push(vec![
            s(i + 1),
            s(b.addr()),
            s(b.state.as_str()),
            s(b.role.atlas_type()),
            s(b.weight),
            s(&b.reason),
            b.lag.map(|l| l.to_string()),
            s(connections(b)),
        ]);
    }
    rs
}

fn clients(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[("client", T)]);
    for c in ctx.client_ips.load().iter() {
        rs.push(vec![s(c)]);
    }
    rs
}

/// Atlas's `pwds` columns; the password is never shown.
fn pwds(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[("username", T), ("password", T)]);
    for p in super::commands::ordered_pwds(ctx) {
        rs.push(vec![s(p.user), s("******")]);
    }
    rs
}

fn sessions(ctx: &Context) -> ResultSet {
    let topo = ctx.topology.load();
    let mut rs = ResultSet::new(&[
        ("id", I),
        ("client", T),
        ("user", T),
        ("db", T),
        ("backend", T),
        ("in_transaction", T),
        ("pinned", T),
        ("pinned_by", T),
        ("queries", I),
    ]);
    let yes_no = |b: bool| s(if b { "yes" } else { "no" });
    for info in ctx.sessions.snapshot() {
        let user = info.user.lock().map(|u| u.clone()).unwrap_or_default();
        let db = info.schema.lock().ok().and_then(|d| d.clone());
        let backend = match info.backend.load(Ordering::Relaxed) {
            0 => None,
            id => Some(
                topo.by_id(id)
                    .map(|b| b.addr().to_string())
                    .unwrap_or_else(|| format!("(removed backend #{id})")),
            ),
        };
        let pins = info.pins();
        rs.push(vec![
            s(info.id),
            s(&info.client_addr),
            s(user),
            db,
            backend,
            yes_no(pins & pin::TRANSACTION != 0),
            yes_no(pins != 0),
            s(pin::describe(pins)),
            s(info.queries.load(Ordering::Relaxed)),
        ]);
    }
    rs
}

/// One row per backend, summed over its pools (one pool per user, client
/// capabilities and collation), then its limits: `max_open` is
/// `backend-max-connections`, `accounts` each account's open connections
/// over its pools against `pool-max-size`.
pub fn pools(topo: &Topology) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("backend_ndx", I),
        ("address", T),
        ("pools", I),
        ("open", I),
        ("idle", I),
        ("in_use", I),
        ("waiting", I),
        ("errors", I),
        ("created", I),
        ("max_open", I),
        ("accounts", T),
    ]);
    for (i, b) in topo.backends.iter().enumerate() {
        let pools = b.runtime.pools();
        let limits = &b.runtime.limits;
        let accounts = limits
            .accounts()
            .iter()
            .map(|(user, open)| format!("{user}={open}/{}", limits.account_max()))
            .collect::<Vec<_>>()
            .join(",");
        let sum =
            |f: &dyn Fn(&crate::backend::Pool) -> u64| pools.iter().map(|p| f(p)).sum::<u64>();
        let load = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed) as u64;
        rs.push(vec![
            s(i + 1),
            s(b.addr()),
            s(pools.len()),
            s(sum(&|p| load(&p.stats.open))),
            s(sum(&|p| p.idle_count() as u64)),
            s(sum(&|p| load(&p.stats.in_use))),
            s(sum(&|p| load(&p.stats.waiting))),
            s(sum(&|p| p.stats.errors.load(Ordering::Relaxed))),
            s(sum(&|p| p.stats.created.load(Ordering::Relaxed))),
            s(limits.total.max()),
            Some(accounts),
        ]);
    }
    rs
}

/// Statements routed per backend, then a `total` row (which also counts
/// backends removed since).
fn stats(ctx: &Context) -> ResultSet {
    let topo: Arc<Topology> = ctx.topology.load_full();
    let mut rs = ResultSet::new(&[
        ("backend_ndx", I),
        ("address", T),
        ("type", T),
        ("queries", I),
        ("reads", I),
        ("writes", I),
        ("causal_on_replica", I),
        ("causal_after_wait", I),
        ("causal_on_primary", I),
    ]);
    let n = |a: &std::sync::atomic::AtomicU64| s(a.load(Ordering::Relaxed));
    for (i, b) in topo.backends.iter().enumerate() {
        let st = &b.runtime.stats;
        rs.push(vec![
            s(i + 1),
            s(b.addr()),
            s(b.role.atlas_type()),
            n(&st.queries),
            n(&st.reads),
            n(&st.writes),
            None,
            None,
            None,
        ]);
    }
    let g = &ctx.stats;
    let reads =
        g.reads_on_replica.load(Ordering::Relaxed) + g.reads_on_primary.load(Ordering::Relaxed);
    rs.push(vec![
        None,
        s("total"),
        None,
        n(&g.queries),
        s(reads),
        n(&g.writes),
        None,
        None,
        None,
    ]);
    // How reads under each causal mode were served: on a replica at once,
    // on a replica after waiting for it, or on the primary by fallback.
    for (mode, counts) in ["read-your-writes", "global"].iter().zip(&g.causal) {
        let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        rs.push(vec![
            None,
            s(mode),
            s("causal"),
            None,
            s(total),
            None,
            n(&counts[0]),
            n(&counts[1]),
            n(&counts[2]),
        ]);
    }
    rs
}

fn config(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[("option", T), ("value", T)]);
    for (k, v) in ctx.config.load().entries() {
        rs.push(vec![s(k), s(v)]);
    }
    rs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendRuntime, BackendState, PoolConfig, Role};

    #[test]
    fn backends_table_has_atlas_columns_first() {
        let rt = |a: &str| BackendRuntime::new(a.into(), PoolConfig::default());
        let topo = Topology::new(vec![
            BackendEntry::new(rt("10.0.0.1:3306"), Role::Primary, 1, BackendState::Up),
            BackendEntry::new(rt("[::1]:3307"), Role::Replica, 5, BackendState::Offline),
        ]);
        let rs = backends(&topo);
        let names: Vec<&str> = rs.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[..4], ["backend_ndx", "address", "state", "type"]);
        assert_eq!(
            rs.rows[0][..4],
            [s(1), s("10.0.0.1:3306"), s("up"), s("rw")]
        );
        assert_eq!(
            rs.rows[1][..5],
            [s(2), s("[::1]:3307"), s("offline"), s("ro"), s(5)]
        );
        assert_eq!(rs.rows[1][6], None, "unknown lag is NULL");
    }

    #[test]
    fn help_lists_every_table() {
        for t in Table::ALL {
            let cmd = format!("SELECT * FROM {}", t.name());
            assert!(
                HELP.iter().any(|(c, _)| *c == cmd),
                "{cmd} missing from help"
            );
        }
    }
}
