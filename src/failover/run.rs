//! The failover coordinator (`failover = "auto"`): one task, the only one
//! that promotes. It watches the published topology; when the primary is
//! down and the replicas confirm it (`detect`), it holds writes, promotes
//! the most advanced replica (`candidate`), repoints the others, publishes
//! the new roles in one swap and releases the writes. The old primary is
//! fenced by its own health task whenever it answers again
//! (`fence_and_rejoin`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::candidate::{self, Candidate};
use super::detect::{self, Link, ReplicaView, Timing};
use super::rejoin;
use super::sql::{self, Joining, Source, NORMAL_ESCAPES};
use super::status::{Kind, Record};
use crate::backend::{BackendEntry, BackendState, Role};
use crate::config::{Config, FailoverMode};
use crate::context::Context;
use crate::gtid::Gtid;
use crate::health::probe::{split_host_port, Credentials, Flavor, ProbeResult, Prober};

/// How often the coordinator looks at the topology.
const TICK: Duration = Duration::from_millis(50);
/// Bound of each command sent to a server during a failover.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Repointing a replica: its STOP SLAVE waits for a receiver that may be
/// stuck on a dead or hung source.
const REPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a diverged old primary is compared with the new primary
/// again (an operator may have re-seeded it).
const DIVERGED_RECHECK: Duration = Duration::from_secs(10);

pub(crate) async fn coordinate(ctx: Arc<Context>) {
    // The primary judged down, and since when (by runtime id).
    let mut down: Option<(u64, Instant)> = None;
    let mut said: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = ctx.shutdown.started() => return,
        }
        let cfg = ctx.config.load_full();
        if cfg.failover != FailoverMode::Auto || ctx.failovers.is_suspended() {
            down = None;
            continue;
        }
        let topo = ctx.topology.load_full();
        let Some(primary) = topo.primary().filter(|p| p.state == BackendState::Down) else {
            down = None;
            said = None;
            continue;
        };
        let id = primary.runtime.id;
        let since = match down {
            Some((d, t)) if d == id => t,
            _ => {
                let now = Instant::now();
                down = Some((id, now));
                now
            }
        };
        // Down already means probes failed for down-after.
        let timing = timing(&cfg);
        let down_for = timing.down_after + since.elapsed();
        let views: Vec<ReplicaView> = replicas(&topo.backends)
            .map(|r| {
                let mut v = view(r, ctx.failovers.last_probe(r.runtime.id).as_ref(), primary);
                // Silence means something only with a short heartbeat.
                if cfg.replica_heartbeat_ms > 0 {
                    v.since_last_event = ctx.failovers.silent_for(r.runtime.id);
                }
                v
            })
            .collect();
        let verdict = detect::verdict(down_for, &views, &timing);
        if !verdict.failed() {
            let text = verdict.to_string();
            if said.as_deref() != Some(text.as_str()) {
                tracing::warn!(primary = %primary.addr(), verdict = %text, "primary down; no failover");
                said = Some(text);
            }
            continue;
        }
        let block = Duration::from_millis(cfg.failover_block_ms);
        if ctx.failovers.blocked(block) {
            let text =
                "refused: another failover ended less than failover-block-ms ago".to_string();
            if said.as_deref() != Some(text.as_str()) {
                tracing::error!(primary = %primary.addr(), "automatic failover {text}");
                let record = refused(primary, &text);
                announce(&cfg, &record);
                ctx.failovers.record(record);
                said = Some(text);
            }
            continue;
        }
        if ctx.failovers.hold.is_running() {
            // A manual FAILOVER or a SWITCHOVER is promoting already.
            continue;
        }
        let record = failover(&ctx, &cfg, Kind::Auto).await;
        if record.outcome != "ok" && !record.outcome.starts_with("refused") {
            // As MaxScale does: a failed automatic failover turns it off
            // until an operator looks (RELOAD CONFIG turns it on again).
            ctx.failovers.suspend();
            tracing::error!(outcome = %record.outcome, "automatic failover failed; automatic failover suspended");
        }
        ctx.failovers.record(record);
        down = None;
        said = None;
    }
}

fn timing(cfg: &Config) -> Timing {
    Timing {
        down_after: Duration::from_millis(cfg.down_after_milliseconds),
        primary_failure_timeout: Duration::from_millis(cfg.primary_failure_timeout_ms),
    }
}

pub(super) fn replicas(backends: &[BackendEntry]) -> impl Iterator<Item = &BackendEntry> {
    backends.iter().filter(|b| {
        b.role == Role::Replica && b.state != BackendState::Offline && !b.failed_primary
    })
}

/// What a replica's last probe says of its link to `primary`.
fn view(
    replica: &BackendEntry,
    probe: Option<&ProbeResult>,
    primary: &BackendEntry,
) -> ReplicaView {
    let status = probe.and_then(|p| p.replication.as_ref());
    let source_is_primary = status.is_some_and(|s| {
        let by_id = s.source_server_id.is_some() && s.source_server_id == primary.server_id;
        let by_addr = split_host_port(primary.addr()).is_some_and(|(h, p)| {
            s.source_host.eq_ignore_ascii_case(&h) && s.source_port == Some(p)
        });
        by_id || by_addr
    });
    ReplicaView {
        id: replica.runtime.id,
        link: status.map_or(Link::Stopped, |s| {
            Link::from_status(&s.io_running, &s.last_io_error)
        }),
        since_last_event: None,
        source_is_primary,
    }
}

fn refused(primary: &BackendEntry, why: &str) -> Record {
    Record {
        outcome: why.to_string(),
        ..Record::new(Kind::Auto, primary.addr())
    }
}

/// Promotes a replica in place of the primary, whatever its state (the
/// caller decided). Writes are held meanwhile.
pub async fn failover(ctx: &Context, cfg: &Config, kind: Kind) -> Record {
    let started = Instant::now();
    let topo = ctx.topology.load_full();
    let Some(old) = topo.primary().cloned() else {
        return Record {
            outcome: "no primary to fail over from".into(),
            ..Record::new(kind, "-")
        };
    };
    let mut record = Record::new(kind, old.addr());
    let Some(hold) = ctx.failovers.hold.try_begin() else {
        record.outcome = super::status::ALREADY_RUNNING.into();
        return record;
    };
    let outcome = promote_one(ctx, cfg, &old, &mut record).await;
    // Writes go on as soon as the new primary is published; the other
    // replicas are repointed after (STOP SLAVE may wait on a hung source).
    drop(hold);
    ctx.failovers.ended_now();
    if let Some(chosen) = conclude(cfg, &mut record, started, outcome) {
        // In the background: a replica's STOP SLAVE may wait on its dead
        // source, and the coordinator must stay free to notice the next
        // failure.
        let backends = topo.backends.clone();
        let cfg = cfg.clone();
        let old_id = old.runtime.id;
        tokio::spawn(async move {
            repoint_others(&backends, &cfg, &chosen, old_id).await;
        });
    }
    record
}

/// Closes a record: the write outage since `started` and `ok`, said in
/// the log and to the operator's scripts; or why it failed.
pub(super) fn conclude<T>(
    cfg: &Config,
    record: &mut Record,
    started: Instant,
    result: Result<T, String>,
) -> Option<T> {
    let what = record.kind.as_str();
    match result {
        Ok(v) => {
            record.write_outage = Some(started.elapsed());
            record.outcome = "ok".into();
            tracing::warn!(kind = what, from = %record.from, to = ?record.to, write_pause_ms = started.elapsed().as_millis() as u64, "primary moved");
            announce(cfg, record);
            Some(v)
        }
        Err(why) => {
            tracing::error!(kind = what, from = %record.from, %why, "primary not moved");
            record.outcome = why;
            announce(cfg, record);
            None
        }
    }
}

/// Chooses, catches up, promotes and publishes; returns the promoted one.
async fn promote_one(
    ctx: &Context,
    cfg: &Config,
    old: &BackendEntry,
    record: &mut Record,
) -> Result<Candidate, String> {
    let topo = ctx.topology.load_full();
    let mut candidates: Vec<Candidate> = replicas(&topo.backends)
        .filter(|r| r.state != BackendState::Down)
        .filter_map(|r| {
            ctx.failovers
                .last_probe(r.runtime.id)
                .map(|p| candidate_of(r, &p))
        })
        .collect();
    let creds = Credentials::monitor(cfg);
    for c in &mut candidates {
        refresh_positions(c, &creds).await;
    }
    let chosen = choose(cfg, &candidates, record)?;
    let mut conn = Prober::new(chosen.address.clone());
    // It applies what it received from the old primary first.
    let wait = Duration::from_millis(cfg.failover_timeout_ms);
    let t = Instant::now();
    relay_log_applied(&mut conn, &creds, wait).await?;
    tracing::debug!(replica = %chosen.address, ms = t.elapsed().as_millis() as u64, "relay log applied");
    let t = Instant::now();
    let promote = sql::take_writes(chosen.flavor);
    let statements: Vec<&str> = promote.sql().collect();
    step(conn.execute(&creds, &statements))
        .await
        .map_err(|e| format!("promoting {}: {e}", chosen.address))?;
    tracing::debug!(replica = %chosen.address, ms = t.elapsed().as_millis() as u64, "promoted");
    record.position = step(conn.value(&creds, chosen.flavor.position_sql()))
        .await
        .ok()
        .flatten();
    record.lacked = lacked_at_failover(chosen, record.position.as_deref(), old);
    publish(ctx, old.runtime.id, chosen.id, OldPrimary::Failed);
    // Its replication configuration goes once writes flow (STOP SLAVE may
    // wait on a receiver blocked on a hung old primary).
    let forget: Vec<String> = sql::forget_source(chosen.flavor)
        .sql()
        .map(String::from)
        .collect();
    let address = chosen.address.clone();
    tokio::spawn(async move {
        let statements: Vec<&str> = forget.iter().map(String::as_str).collect();
        let forgotten =
            tokio::time::timeout(STEP_TIMEOUT * 4, conn.execute(&creds, &statements)).await;
        if !matches!(forgotten, Ok(Ok(()))) {
            tracing::error!(primary = %address, "could not remove the new primary's replication configuration");
        }
        conn.close().await;
    });
    Ok(chosen.clone())
}

/// How many transactions of the old primary's last known position the
/// promoted one lacks (what was committed there and is now gone, unless
/// the old primary comes back with it).
fn lacked_at_failover(
    chosen: &Candidate,
    promoted_at: Option<&str>,
    old: &BackendEntry,
) -> Option<String> {
    let old_at = old.runtime.position.load_full()?;
    let missing = chosen.flavor.parse(promoted_at?).missing(&old_at)?;
    Some(format!("{missing} (of its last known position {old_at})"))
}

/// The replica to promote (`failover-max-lag` applies), named in the
/// record.
pub(super) fn choose<'a>(
    cfg: &Config,
    candidates: &'a [Candidate],
    record: &mut Record,
) -> Result<&'a Candidate, String> {
    let max_lag = match cfg.failover_max_lag {
        0 => Duration::MAX,
        s => Duration::from_secs(s),
    };
    let choice = candidate::choose(candidates, max_lag).map_err(|e| e.to_string())?;
    record.to = Some(choice.chosen.address.clone());
    Ok(choice.chosen)
}

/// Positions read now rather than at the last probe: with the source
/// gone, what each replica received is final, and probes taken at
/// different moments would favour whichever was probed last (maybe one
/// with a long relay log still to apply).
async fn refresh_positions(c: &mut Candidate, creds: &Credentials) {
    let mut conn = Prober::new(c.address.clone());
    let quick = Duration::from_secs(1);
    if let Ok(Ok(Some(status))) = tokio::time::timeout(quick, conn.replica_status(creds)).await {
        if let Some(received) = status.received_gtid.as_deref() {
            c.received = Some(c.flavor.parse(received));
        }
        if let Ok(Ok(Some(applied))) =
            tokio::time::timeout(quick, conn.value(creds, c.flavor.position_sql())).await
        {
            c.applied = Some(c.flavor.parse(&applied));
        }
    }
    conn.close().await;
}

pub(super) fn candidate_of(r: &BackendEntry, p: &ProbeResult) -> Candidate {
    let status = p.replication.as_ref();
    let parse = |s: &str| p.flavor.parse(s);
    Candidate {
        id: r.runtime.id,
        address: r.addr().to_string(),
        flavor: p.flavor,
        no_promotion: false,
        // The IO thread's error is expected (its primary died), unless the
        // source refused it before; the SQL thread's is not.
        replication_error: status
            .and_then(|s| {
                if !s.last_sql_error.is_empty() {
                    Some(s.last_sql_error.clone())
                } else if s.last_io_error.contains("fatal error 1236") {
                    // Its source refused it: it was not replicating.
                    Some(s.last_io_error.clone())
                } else {
                    None
                }
            })
            .or_else(|| p.replication_error.clone()),
        lag: r.lag.map(Duration::from_secs),
        received: status.and_then(|s| s.received_gtid.as_deref()).map(parse),
        applied: p.gtid.clone(),
    }
}

pub(super) async fn step<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {STEP_TIMEOUT:?}")),
    }
}

/// Waits until the replica executed everything it received (its source
/// is gone: nothing more will come), at most `wait`.
async fn relay_log_applied(
    conn: &mut Prober,
    creds: &Credentials,
    wait: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    loop {
        match step(conn.replica_status(creds)).await? {
            None => return Ok(()),
            Some(s) if s.relay_log_applied() => return Ok(()),
            Some(s) if !s.sql_ok() => {
                return Err(format!(
                    "the chosen replica's SQL thread is stopped: {}",
                    s.last_sql_error
                ))
            }
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the chosen replica did not apply its relay log within failover-timeout-ms ({} ms)",
                wait.as_millis()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the replica applied `received`, at most `wait`.
pub(super) async fn caught_up(
    conn: &mut Prober,
    creds: &Credentials,
    received: &Gtid,
    wait: Duration,
) -> Result<(), String> {
    let pos = received.to_string();
    if pos.is_empty() {
        return Ok(());
    }
    // Positions are digits, dashes, colons, commas and hex: nothing to escape.
    if !pos
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-,".contains(&b))
    {
        return Err(format!("unexpected GTID position {pos:?}"));
    }
    let flavor = match received {
        Gtid::MariaDb(_) => Flavor::MariaDb,
        Gtid::MySql(_) => Flavor::MySql,
    };
    let sql = flavor.wait_sql(received, wait.as_secs_f64());
    let answer = tokio::time::timeout(wait + STEP_TIMEOUT, conn.value(creds, &sql))
        .await
        .map_err(|_| "no answer while waiting for the relay log".to_string())?
        .map_err(|e| e.to_string())?;
    match answer.as_deref().map(str::trim) {
        Some("0") => Ok(()),
        _ => Err(format!(
            "the chosen replica did not apply its relay log within failover-timeout-ms ({} ms)",
            wait.as_millis()
        )),
    }
}

/// What becomes of the old primary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OldPrimary {
    /// Failed: it serves nothing until fenced (failover).
    Failed,
    /// Already read-only and repointed (switchover): a replica.
    Demoted,
}

/// The new roles, in one swap: the chosen replica takes writes.
pub(super) fn publish(ctx: &Context, old: u64, chosen: u64, fate: OldPrimary) {
    let topo = ctx.update_topology(|backends| {
        let old_addr = backends
            .iter()
            .find(|b| b.runtime.id == old)
            .map(|b| b.addr().to_string())
            .unwrap_or_default();
        let new_addr = backends
            .iter()
            .find(|b| b.runtime.id == chosen)
            .map(|b| b.addr().to_string())
            .unwrap_or_default();
        backends
            .iter()
            .map(|b| {
                let mut n = b.clone();
                if b.runtime.id == chosen {
                    n.role = Role::Primary;
                    n.state = BackendState::Up;
                    n.read_only = false;
                    n.lag = None;
                    n.reason = format!("promoted by Gantry in place of {old_addr}");
                } else if b.runtime.id == old && fate == OldPrimary::Failed {
                    n.role = Role::Replica;
                    n.state = BackendState::Down;
                    n.failed_primary = true;
                    n.reason =
                        format!("failed primary, replaced by {new_addr}; fenced when it answers");
                } else if b.runtime.id == old {
                    n.role = Role::Replica;
                    n.state = BackendState::Unknown;
                    n.read_only = true;
                    n.reason = format!("demoted by SWITCHOVER; replica of {new_addr}");
                }
                n
            })
            .collect()
    });
    if let Some(b) = topo.by_id(chosen) {
        b.runtime.set_down(false);
    }
    if let Some(b) = topo.by_id(old) {
        b.runtime.set_down(fate == OldPrimary::Failed);
    }
}

/// Tells the operator's scripts how a failover ended: the
/// `notification-script` gets a `failover` event whatever the outcome
/// (`+switch-master` or `-failover-abort…`), the `client-reconfig-script`
/// Sentinel's arguments when the primary moved.
pub(super) fn announce(cfg: &Config, record: &Record) {
    let to = record.to.clone().unwrap_or_default();
    crate::health::events::emit(
        crate::health::events::Event {
            kind: crate::health::events::EventKind::Failover,
            backend: to.clone(),
            primary: true,
            old: record.from.clone(),
            new: to.clone(),
            reason: format!("{} {}", record.kind.as_str(), record.outcome),
        },
        cfg.notification_script.clone(),
    );
    if record.outcome != "ok" {
        return;
    }
    let Some(script) = cfg.client_reconfig_script.clone() else {
        return;
    };
    let (Some((from_ip, from_port)), Some((to_ip, to_port))) =
        (split_host_port(&record.from), split_host_port(&to))
    else {
        return;
    };
    let state = match record.kind {
        Kind::Switchover => "switchover-end",
        _ => "failover-end",
    };
    let args = [
        "gantry",
        "leader",
        state,
        &from_ip,
        &from_port.to_string(),
        &to_ip,
        &to_port.to_string(),
    ];
    crate::health::events::reconfigure_clients(script, args.map(String::from).to_vec());
}

/// The statements that point a replica (or an old primary) at the primary
/// at `addr`, with the replication account.
pub(super) fn repoint_to(
    cfg: &Config,
    flavor: Flavor,
    addr: &str,
    joining: Joining,
) -> Result<sql::Statements, String> {
    let (host, port) = split_host_port(addr).ok_or_else(|| format!("bad address {addr}"))?;
    let source = Source {
        host: &host,
        port,
        user: &cfg.replication_username,
        password: &cfg.replication_password,
        get_public_key: false,
    };
    sql::repoint(flavor, &source, joining).map_err(|e| e.to_string())
}

/// `statements` after the one that makes their string escapes mean what
/// the builders meant.
pub(super) fn with_escapes(statements: &sql::Statements) -> Vec<&str> {
    std::iter::once(NORMAL_ESCAPES)
        .chain(statements.sql())
        .collect()
}

/// Every other replica follows the new primary (failures are logged: the
/// health loop shows them as not replicating).
pub(super) async fn repoint_others(
    backends: &[BackendEntry],
    cfg: &Config,
    chosen: &Candidate,
    old: u64,
) {
    let creds = Credentials::monitor(cfg);
    let others: Vec<&BackendEntry> = replicas(backends)
        .filter(|r| r.runtime.id != chosen.id && r.runtime.id != old)
        .collect();
    for r in others {
        let statements = match repoint_to(cfg, chosen.flavor, &chosen.address, Joining::Replica) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(replica = %r.addr(), error = %e, "cannot repoint");
                return;
            }
        };
        let mut conn = Prober::new(r.addr().to_string());
        let sent = tokio::time::timeout(
            REPOINT_TIMEOUT,
            conn.execute(&creds, &with_escapes(&statements)),
        )
        .await
        .map_err(|_| format!("no answer within {REPOINT_TIMEOUT:?}"))
        .and_then(|r| r.map_err(|e| e.to_string()));
        conn.close().await;
        match sent {
            Ok(()) => {
                tracing::info!(replica = %r.addr(), primary = %chosen.address, "replica repointed")
            }
            Err(e) => {
                tracing::error!(replica = %r.addr(), primary = %chosen.address, error = %e, "could not repoint replica")
            }
        }
    }
}

/// With `failover = auto`, a replica gets the heartbeat period Gantry
/// needs to tell a silent primary from a quiet one (this restarts its
/// replication threads once).
pub(crate) async fn keep_heartbeat(
    cfg: &Config,
    prober: &mut Prober,
    creds: &Credentials,
    probe: &ProbeResult,
    addr: &str,
) {
    if cfg.failover != FailoverMode::Auto || cfg.replica_heartbeat_ms == 0 {
        return;
    }
    let (Some(status), Some(period)) = (probe.replication.as_ref(), probe.heartbeat_period) else {
        return;
    };
    let want = Duration::from_millis(cfg.replica_heartbeat_ms);
    if (period - want.as_secs_f64()).abs() < 0.001 || !status.io_ok() {
        return;
    }
    let Ok(statements) = sql::heartbeat(probe.flavor, want) else {
        return;
    };
    let statements: Vec<&str> = statements.sql().collect();
    match step(prober.execute(creds, &statements)).await {
        Ok(()) => {
            tracing::info!(replica = %addr, period_ms = cfg.replica_heartbeat_ms, "replica heartbeat period set")
        }
        Err(e) => {
            tracing::warn!(replica = %addr, error = %e, "could not set the replica heartbeat period")
        }
    }
}

/// An old primary answers again: read-only first, then (with auto-rejoin)
/// a replica of the new primary if it holds nothing the new one lacks,
/// else left out as `diverged`.
pub(crate) async fn fence_and_rejoin(
    ctx: &Context,
    id: u64,
    prober: &mut Prober,
    creds: &Credentials,
    probe: &ProbeResult,
) {
    let topo = ctx.topology.load_full();
    let Some(me) = topo.by_id(id) else {
        return;
    };
    if !probe.read_only {
        let fence = sql::fence(probe.flavor);
        let statements: Vec<&str> = fence.sql().collect();
        if let Err(e) = step(prober.execute(creds, &statements)).await {
            tracing::error!(backend = %me.addr(), error = %e, "could not fence the old primary");
            return;
        }
        tracing::warn!(backend = %me.addr(), "old primary fenced (read-only)");
    }
    let cfg = ctx.config.load_full();
    let Some(primary) = topo.primary().filter(|p| p.runtime.id != id) else {
        return;
    };
    let note = |reason: String, rejoined: bool| {
        ctx.update_topology(|backends| {
            backends
                .iter()
                .map(|b| {
                    let mut n = b.clone();
                    if b.runtime.id == id {
                        n.reason.clone_from(&reason);
                        if rejoined {
                            n.failed_primary = false;
                            n.state = BackendState::Unknown;
                        }
                    }
                    n
                })
                .collect()
        });
    };
    if !cfg.auto_rejoin {
        let reason = "fenced old primary (read-only); auto-rejoin is off".to_string();
        if me.reason != reason {
            note(reason, false);
        }
        return;
    }
    // Comparing opens a connection to the new primary: a diverged server,
    // which only an operator mends, is not compared at every probe.
    if me.reason.starts_with("diverged")
        && !ctx.failovers.divergence_check_due(id, DIVERGED_RECHECK)
    {
        return;
    }
    let verdict = match probe.flavor {
        // Positions keep one GTID per domain: the binlog states tell more.
        Flavor::MariaDb => {
            const STATE: &str = "SELECT @@gtid_binlog_state";
            let mine = step(prober.value(creds, STATE)).await;
            let mut other = Prober::new(primary.addr().to_string());
            let theirs = step(other.value(creds, STATE)).await;
            other.close().await;
            match (mine, theirs) {
                (Ok(m), Ok(t)) => rejoin::check_binlog_states(
                    m.as_deref().unwrap_or(""),
                    t.as_deref().unwrap_or(""),
                ),
                _ => return,
            }
        }
        Flavor::MySql => {
            let (Some(mine), Some(theirs)) =
                (probe.gtid.as_ref(), primary.runtime.position.load_full())
            else {
                return;
            };
            rejoin::check(mine, &theirs)
        }
    };
    let known = match &verdict {
        rejoin::Rejoin::Rejoin => Some("none".to_string()),
        rejoin::Rejoin::Diverged { errant } => Some(errant.clone()),
        rejoin::Rejoin::Incomparable => None,
    };
    if let Some(known) = known {
        let lacked = format!("{known} (its binlog, when it answered again)");
        ctx.failovers.note_lacked(me.addr(), lacked);
    }
    if !verdict.may_rejoin() {
        let reason = format!("diverged: {verdict}");
        if me.reason != reason {
            tracing::error!(backend = %me.addr(), %verdict, "old primary not rejoined");
            crate::health::events::emit(
                crate::health::events::Event {
                    kind: crate::health::events::EventKind::Diverged,
                    backend: me.addr().to_string(),
                    primary: false,
                    old: me.reason.clone(),
                    new: "diverged".into(),
                    reason: reason.clone(),
                },
                cfg.notification_script.clone(),
            );
            note(reason, false);
        }
        return;
    }
    let statements = match repoint_to(&cfg, probe.flavor, primary.addr(), Joining::OldPrimary) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(backend = %me.addr(), error = %e, "cannot rejoin");
            return;
        }
    };
    let sent = step(prober.execute(creds, &with_escapes(&statements))).await;
    match sent {
        Ok(()) => {
            tracing::warn!(backend = %me.addr(), primary = %primary.addr(), "old primary rejoined as a replica");
            note(format!("rejoined as a replica of {}", primary.addr()), true);
        }
        Err(e) => {
            tracing::error!(backend = %me.addr(), error = %e, "could not rejoin the old primary")
        }
    }
}
