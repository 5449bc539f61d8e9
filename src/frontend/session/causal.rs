//! Causal reads over asynchronous replicas (`consistency`): a read under
//! `read-your-writes` sees the session's own committed writes, under
//! `global` every write the primary acknowledged before the read began.
//! Gantry learns each write's GTID from the session tracker in the OK
//! packet that commits it (no extra round trip; see `effects`), then sends the read to a replica known to have it, or waits on one
//! (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET) up to
//! `causal-read-timeout-ms`, or falls back to the primary.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{End, Session, Target};
use crate::backend::BackendRuntime;
use crate::backend::Purpose;
use crate::config::Consistency;
use crate::context::CausalOutcome;
use crate::gtid::Gtid;
pub(crate) use crate::health::probe::Flavor;
use crate::protocol::reply::MyError;

fn mode_index(mode: Consistency) -> usize {
    usize::from(mode == Consistency::Global)
}

impl Session {
    fn flavor(&self) -> Flavor {
        if self.ctx.identity.load().version.contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// `SET @@gantry_consistency = …`: Gantry's own session variable.
    pub(super) async fn set_consistency(&mut self, value: &str) -> Result<(), End> {
        match Consistency::from_str(value) {
            Ok(mode) => {
                self.consistency = mode;
                self.ok(1).await
            }
            Err(_) => {
                let err = MyError::new(
                    1231,
                    "42000",
                    format!(
                        "Variable 'gantry_consistency' can't be set to the value of '{value}' \
                         (eventual, read-your-writes, global)"
                    ),
                );
                self.send_err(1, &err).await
            }
        }
    }

    /// Picks the backend for a read under `mode` and makes it `held`. On
    /// failure the client has been sent the error and `false` is returned.
    pub(super) async fn prepare_causal_read(&mut self, mode: Consistency) -> Result<bool, End> {
        let want = match mode {
            Consistency::Eventual => None,
            Consistency::ReadYourWrites => self.causal.clone(),
            Consistency::Global => self.primary_position().await.map(|g| (*g).clone()),
        };
        let Some(want) = want.filter(|w| !w.is_empty()) else {
            return self.prepare_conn(Target::Replica).await;
        };
        let Some((backend, wait)) = self.causal_candidate(&want) else {
            self.count_causal(mode, CausalOutcome::Fallback);
            return self.prepare_conn(Target::Primary).await;
        };
        if self.use_backend(backend.clone()).await.is_err() {
            self.count_causal(mode, CausalOutcome::Fallback);
            return self.prepare_conn(Target::Primary).await;
        }
        if !wait {
            self.count_causal(mode, CausalOutcome::Immediate);
            return self.prepare_conn(Target::Current).await;
        }
        let secs = self.ctx.config.load().causal_read_timeout_ms as f64 / 1000.0;
        let sql = self.flavor().wait_sql(&want, secs);
        let held = self.binding.held_mut().expect("use_backend sets held");
        match held.conn.query_value(&sql).await {
            Ok(Ok(Some(v))) if v == "0" => {
                if mode == Consistency::ReadYourWrites {
                    self.verified_on = Some(backend.id);
                }
                self.count_causal(mode, CausalOutcome::AfterWait);
                self.prepare_conn(Target::Current).await
            }
            Ok(_) => {
                self.count_causal(mode, CausalOutcome::Fallback);
                self.prepare_conn(Target::Primary).await
            }
            Err(_) => {
                self.discard_held();
                self.count_causal(mode, CausalOutcome::Fallback);
                self.prepare_conn(Target::Primary).await
            }
        }
    }

    /// A replica for a read that must see `want`, and whether Gantry must
    /// wait for it: one whose last probed position covers `want` (in turn,
    /// so reads spread), one already verified, else the most advanced one.
    fn causal_candidate(&mut self, want: &Gtid) -> Option<(Arc<BackendRuntime>, bool)> {
        let topo = self.ctx.topology.load();
        let serving: Vec<&Arc<BackendRuntime>> = topo
            .backends
            .iter()
            .filter(|b| b.serves_reads())
            .map(|b| &b.runtime)
            .collect();
        let covering: Vec<&&Arc<BackendRuntime>> = serving
            .iter()
            .filter(|rt| {
                rt.position
                    .load()
                    .as_ref()
                    .is_some_and(|p| p.covers(want) == Some(true))
            })
            .collect();
        if !covering.is_empty() {
            self.ticket = self.ticket.wrapping_add(1);
            let rt = covering[self.ticket as usize % covering.len()];
            return Some(((*rt).clone(), false));
        }
        if let Some(rt) = serving.iter().find(|rt| Some(rt.id) == self.verified_on) {
            return Some(((*rt).clone(), false));
        }
        serving
            .iter()
            .min_by_key(|rt| {
                rt.position
                    .load()
                    .as_ref()
                    .and_then(|p| p.missing(want))
                    .unwrap_or(u64::MAX)
            })
            .map(|rt| ((*rt).clone(), true))
    }

    /// The primary's current position, fetched once for all reads that
    /// began before the fetch did.
    async fn primary_position(&mut self) -> Option<Arc<Gtid>> {
        let asked = Instant::now();
        let mut cached = self.ctx.primary_position.lock().await;
        if let Some((at, pos)) = cached.as_ref() {
            if *at >= asked {
                return Some(pos.clone());
            }
        }
        let started = Instant::now();
        let primary = self.ctx.topology.load().primary()?.runtime.clone();
        let pool = primary.pool(&self.pool_key);
        let mut conn = pool
            .acquire_for(&self.password, None, Purpose::Reserved)
            .await
            .ok()?;
        let flavor = self.flavor();
        match conn.query_value(flavor.position_sql()).await {
            Ok(Ok(Some(text))) => {
                let pos = Arc::new(flavor.parse(&text));
                *cached = Some((started, pos.clone()));
                Some(pos)
            }
            Ok(_) => None,
            Err(_) => {
                conn.discard();
                None
            }
        }
    }

    fn count_causal(&self, mode: Consistency, outcome: CausalOutcome) {
        self.ctx.stats.causal[mode_index(mode)][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statements_per_flavor() {
        let g = Flavor::MariaDb.parse("0-1-42");
        assert_eq!(
            Flavor::MariaDb.wait_sql(&g, 1.0),
            "SELECT MASTER_GTID_WAIT('0-1-42', 1.000)"
        );
        let s = Flavor::MySql.parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77");
        assert_eq!(
            Flavor::MySql.wait_sql(&s, 0.5),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77', 0.500)"
        );
    }
}
