//! The health loop: one task per backend probes it with the monitor account
//! every `health-interval-ms`, decides its state (`state.rs`), follows a
//! primary that moved (`failover.rs`), discovers replicas
//! (`discovery.rs`) and publishes a new topology snapshot only when
//! something changed. A supervisor starts and stops the tasks as backends
//! appear in or leave the topology (admin port, discovery).

pub mod discovery;
pub mod events;
pub mod failover;
pub use crate::gtid;
pub mod lag;
pub mod probe;
pub mod replication;
pub mod state;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::backend::{BackendState, Topology};
use crate::context::Context;
use lag::PrimaryHistory;

/// How often the supervisor looks for added or removed backends.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);

/// What the backend tasks share: the primary's GTID history, which every
/// replica's lag is measured against.
#[derive(Default)]
pub(crate) struct Shared {
    primary: Mutex<PrimaryHistory>,
}

impl Shared {
    fn history(&self) -> std::sync::MutexGuard<'_, PrimaryHistory> {
        // A panic elsewhere must not stop health checks: take the data.
        self.primary.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the health tasks in the background. The handle finishes once
/// shutdown began and every task closed its probe connection.
pub fn spawn(ctx: Arc<Context>) -> JoinHandle<()> {
    let shared = Arc::new(Shared::default());
    let coordinator = tokio::spawn(crate::failover::run::coordinate(ctx.clone()));
    tokio::spawn(async move {
        supervise(ctx, shared).await;
        let _ = coordinator.await;
    })
}

/// Waits until every backend has had its first probe (none is `unknown`
/// any more), at most one probe timeout plus a little: clients connecting
/// right after start then find replicas already judged.
pub async fn first_round(ctx: &Context) {
    let timeout =
        Duration::from_millis(ctx.config.load().probe_timeout_ms) + Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let pending = ctx
            .topology
            .load()
            .backends
            .iter()
            .any(|b| b.state == BackendState::Unknown);
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn supervise(ctx: Arc<Context>, shared: Arc<Shared>) {
    let mut tasks: HashMap<u64, JoinHandle<()>> = HashMap::new();
    let mut seen: Option<Arc<Topology>> = None;
    loop {
        let topo = ctx.topology.load_full();
        let changed = !seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &topo));
        // A finished task (it should not finish) is restarted too.
        if changed || tasks.values().any(|h| h.is_finished()) {
            tasks.retain(|id, h| {
                let keep = topo.by_id(*id).is_some() && !h.is_finished();
                if !keep {
                    h.abort();
                }
                keep
            });
            for b in &topo.backends {
                let id = b.runtime.id;
                tasks.entry(id).or_insert_with(|| {
                    tokio::spawn(task::run(ctx.clone(), shared.clone(), b.runtime.clone()))
                });
            }
            seen = Some(topo);
        }
        tokio::select! {
            _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
            _ = ctx.shutdown.started() => break,
        }
    }
    // Each task sees the shutdown too and says COM_QUIT on its way out.
    for (_, h) in tasks {
        let _ = h.await;
    }
}
