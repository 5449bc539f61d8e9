//! Planned switchover (admin `SWITCHOVER [TO n]`): the primary is healthy
//! and hands over without losing or failing a write. New writes wait at
//! the write hold; the ones running on the old primary finish; the old
//! primary is made read-only; the target applies everything it wrote; the
//! target is promoted, the old primary and the other replicas follow it;
//! the held writes go on to the new primary.

use std::time::{Duration, Instant};

use super::candidate::Candidate;
use super::run::{
    candidate_of, caught_up, publish, replicas, repoint_others, repoint_to, step, with_escapes,
    OldPrimary,
};
use super::sql::{self, Joining};
use super::status::{Kind, Record};
use crate::backend::{BackendEntry, BackendState, Topology};
use crate::config::Config;
use crate::context::Context;
use crate::frontend::registry::pin;
use crate::health::probe::{Credentials, Prober};

/// Hands the primary role to the replica with runtime id `to` (or the
/// best candidate). Writes pause meanwhile; the record says how long.
pub async fn switchover(ctx: &Context, cfg: &Config, to: Option<u64>) -> Record {
    let started = Instant::now();
    let topo = ctx.topology.load_full();
    let mut record = Record::new(Kind::Switchover, "-");
    let Some(old) = topo
        .primary()
        .filter(|p| p.state == BackendState::Up)
        .cloned()
    else {
        record.outcome = "no primary is up; FAILOVER replaces a failed one".into();
        return record;
    };
    record.from = old.addr().to_string();
    let Some(hold) = ctx.failovers.hold.try_begin() else {
        record.outcome = super::status::ALREADY_RUNNING.into();
        return record;
    };
    let result = switch(ctx, cfg, &topo, &old, to, &mut record).await;
    drop(hold);
    super::run::conclude(cfg, &mut record, started, result);
    record
}

async fn switch(
    ctx: &Context,
    cfg: &Config,
    topo: &Topology,
    old: &BackendEntry,
    to: Option<u64>,
    record: &mut Record,
) -> Result<(), String> {
    let candidates: Vec<Candidate> = replicas(&topo.backends)
        .filter(|r| r.state != BackendState::Down && to.is_none_or(|id| r.runtime.id == id))
        .filter_map(|r| {
            ctx.failovers
                .last_probe(r.runtime.id)
                .map(|p| candidate_of(r, &p))
        })
        .collect();
    if to.is_some() && candidates.is_empty() {
        return Err("the target is not a reachable replica".into());
    }
    let chosen = super::run::choose(cfg, &candidates, record)?;
    let creds = Credentials::monitor(cfg);
    let timeout = Duration::from_millis(cfg.failover_timeout_ms);

    // What runs on the old primary finishes; what would start there waits.
    let stragglers = drain(ctx, old.runtime.id, timeout).await;
    let mut old_conn = Prober::new(old.addr().to_string());
    let fence = sql::fence(chosen.flavor);
    let fence: Vec<&str> = fence.sql().collect();
    step(old_conn.execute(&creds, &fence))
        .await
        .map_err(|e| format!("making {} read-only: {e}", old.addr()))?;
    // Transactions that did not end in time would write past read_only
    // (accounts with READ ONLY ADMIN or SUPER): ended.
    for thread in stragglers {
        let kill = format!("KILL CONNECTION {thread}");
        let _ = step(old_conn.execute(&creds, &[kill.as_str()])).await;
    }
    let result = hand_over(ctx, cfg, topo, old, chosen, &mut old_conn, timeout, record).await;
    if result.is_err() {
        // Nothing moved: the old primary takes writes again.
        let undo = sql::promote(chosen.flavor);
        let undo: Vec<&str> = undo.sql().collect();
        let _ = step(old_conn.execute(&creds, &undo)).await;
    }
    old_conn.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn hand_over(
    ctx: &Context,
    cfg: &Config,
    topo: &Topology,
    old: &BackendEntry,
    chosen: &Candidate,
    old_conn: &mut Prober,
    timeout: Duration,
    record: &mut Record,
) -> Result<(), String> {
    let creds = Credentials::monitor(cfg);
    let last = step(old_conn.value(&creds, chosen.flavor.position_sql()))
        .await?
        .unwrap_or_default();
    let last = chosen.flavor.parse(&last);
    let mut conn = Prober::new(chosen.address.clone());
    caught_up(&mut conn, &creds, &last, timeout).await?;
    let promote = sql::promote(chosen.flavor);
    let promote: Vec<&str> = promote.sql().collect();
    let promoted = step(conn.execute(&creds, &promote)).await;
    record.position = Some(last.to_string());
    conn.close().await;
    promoted.map_err(|e| format!("promoting {}: {e}", chosen.address))?;
    publish(ctx, old.runtime.id, chosen.id, OldPrimary::Demoted);
    // The old primary follows the new one (its writes are all there).
    match repoint_to(cfg, chosen.flavor, &chosen.address, Joining::OldPrimary) {
        Ok(s) => {
            if let Err(e) = step(old_conn.execute(&creds, &with_escapes(&s))).await {
                tracing::error!(backend = %old.addr(), error = %e, "could not repoint the old primary");
            }
        }
        Err(e) => {
            tracing::error!(backend = %old.addr(), error = %e, "cannot repoint the old primary")
        }
    }
    repoint_others(&topo.backends, cfg, chosen, old.runtime.id).await;
    Ok(())
}

/// Waits until no session runs a statement or holds a transaction on
/// `backend`, at most `timeout`; returns the backend threads of those
/// still there.
async fn drain(ctx: &Context, backend: u64, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let writing: Vec<u32> = ctx
            .sessions
            .snapshot()
            .iter()
            .filter(|s| {
                s.backend.load(std::sync::atomic::Ordering::Relaxed) == backend
                    && (s.busy.load(std::sync::atomic::Ordering::Relaxed)
                        || s.pins() & pin::TRANSACTION != 0)
            })
            .map(|s| s.backend_thread.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        if writing.is_empty() || Instant::now() >= deadline {
            return writing;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
