//! The probe loop of one backend: probe, judge, publish on change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::discovery::{unknown_replicas, Known, ReplicaHost};
use super::events::{self, Event, EventKind};
use super::failover::role_change;
use super::probe::{Credentials, Identity, ProbeError, ProbeResult, Prober};
use super::state::{Limits, Observation, ReplicaView, Tracker, Verdict};
use super::Shared;
use crate::backend::{BackendEntry, BackendRuntime, BackendState, Role};
use crate::config::Config;
use crate::context::Context;

/// Replica probe connections are kept this long; the primary's are
/// renewed more often (see `max_conn_age`).
const REPLICA_CONN_MAX_AGE: Duration = Duration::from_secs(3600);

struct Backend {
    ctx: Arc<Context>,
    shared: Arc<Shared>,
    runtime: Arc<BackendRuntime>,
    prober: Prober,
    tracker: Tracker,
    identity: Option<Identity>,
    creds: Option<Credentials>,
    /// The role the current round started with.
    round_role: Role,
    /// Said once that this server is a second writable primary.
    warned_rival: bool,
}

pub(super) async fn run(ctx: Arc<Context>, shared: Arc<Shared>, runtime: Arc<BackendRuntime>) {
    let mut b = Backend {
        prober: Prober::new(runtime.addr.clone()),
        ctx,
        shared,
        runtime,
        tracker: Tracker::default(),
        identity: None,
        creds: None,
        round_role: Role::Replica,
        warned_rival: false,
    };
    loop {
        let started = tokio::time::Instant::now();
        let cfg = b.ctx.config.load_full();
        if !b.round(&cfg).await {
            return; // the backend left the topology
        }
        let interval = Duration::from_millis(cfg.health_interval_ms.max(10));
        tokio::select! {
            _ = tokio::time::sleep_until(started + interval) => {}
            _ = b.ctx.shutdown.started() => {
                b.prober.close().await;
                return;
            }
        }
    }
}

/// The primary's probe connection is renewed every few intervals, so that
/// an address (VIP, DNS name) now reaching another server is noticed even
/// if the old connection survived the move.
fn max_conn_age(cfg: &Config, role: Role) -> Duration {
    match role {
        Role::Primary => Duration::from_millis(cfg.health_interval_ms.saturating_mul(5))
            .max(Duration::from_secs(1)),
        Role::Replica => REPLICA_CONN_MAX_AGE,
    }
}

impl Backend {
    /// One probe and its consequences; false when the backend is gone.
    async fn round(&mut self, cfg: &Config) -> bool {
        let creds = Credentials::monitor(cfg);
        if self.creds.as_ref() != Some(&creds) {
            self.prober.reset();
            self.creds = Some(creds.clone());
        }
        let topo = self.ctx.topology.load_full();
        let Some(entry) = topo.by_id(self.runtime.id) else {
            return false;
        };
        let role = entry.role;
        self.round_role = role;
        let failed_primary = entry.failed_primary;
        let is_current_primary = topo
            .primary()
            .is_some_and(|p| p.runtime.id == self.runtime.id);
        drop(topo);
        let want_hosts = is_current_primary && cfg.auto_discover_replicas;
        let timeout = Duration::from_millis(cfg.probe_timeout_ms.max(1));
        let started = Instant::now();
        let probe = self
            .prober
            .probe(&creds, want_hosts, max_conn_age(cfg, role));
        let outcome = match tokio::time::timeout(timeout, probe).await {
            Ok(r) => r,
            Err(_) => {
                self.prober.reset();
                Err(ProbeError::Timeout(timeout))
            }
        };
        let limits = Limits {
            max_lag: cfg.max_replica_lag,
            down_after: Duration::from_millis(cfg.down_after_milliseconds),
        };
        let script = cfg.notification_script.clone();
        match outcome {
            Err(e) => {
                self.ctx.failovers.note_probe(self.runtime.id, None);
                tracing::debug!(backend = %self.runtime.addr, error = %e, "probe failed");
                let msg = e.to_string();
                let v = self.judge(&Observation::Unreachable(&msg), &limits);
                self.publish(v, None, None, script);
            }
            Ok(p) if failed_primary => {
                // Fenced before anything else, whatever it says of itself.
                self.runtime.position.store(p.gtid.clone().map(Arc::new));
                crate::failover::run::fence_and_rejoin(
                    &self.ctx,
                    self.runtime.id,
                    &mut self.prober,
                    &creds,
                    &p,
                )
                .await;
            }
            Ok(p) => {
                self.ctx.failovers.note_probe(self.runtime.id, Some(&p));
                if role == Role::Replica {
                    crate::failover::run::keep_heartbeat(
                        cfg,
                        &mut self.prober,
                        &creds,
                        &p,
                        &self.runtime.addr,
                    )
                    .await;
                }
                self.runtime.position.store(p.gtid.clone().map(Arc::new));
                if let Some(max) = p.max_allowed_packet {
                    self.runtime.set_max_packet(max);
                }
                self.note_identity(&p.identity, script.clone());
                let mut new_role = role_change(role, &p).filter(|_| cfg.failover.follows());
                // Never two primaries: a second writable, non-replicating
                // server takes no writes while the primary is up and
                // writable; it is flagged instead.
                let rival = new_role
                    .filter(|(r, _)| *r == Role::Primary)
                    .and_then(|_| self.writable_primary_besides(p.identity.server_id));
                if rival.is_some() {
                    new_role = None;
                }
                let role_now = new_role.map_or(role, |(r, _)| r);
                if is_current_primary && role_now == Role::Primary {
                    let keep = Duration::from_secs(cfg.max_replica_lag.saturating_mul(2).max(60));
                    let moved = self.shared.history().record(
                        Instant::now(),
                        &p.identity,
                        p.gtid.clone(),
                        keep,
                    );
                    if moved {
                        tracing::info!(backend = %self.runtime.addr, server = %p.identity, "primary is now a different server; lag history restarted");
                    }
                }
                let mut v = self.judge_reachable(role_now, &p, started, &limits);
                if let Some(primary) = &rival {
                    v.reason = format!(
                        "writable and not replicating while {primary} is the primary: two \
                         primaries; it takes no writes (make it read-only or remove it)"
                    );
                    if !self.warned_rival {
                        tracing::error!(backend = %self.runtime.addr, %primary, "two writable primaries: this one takes no writes");
                    }
                }
                self.warned_rival = rival.is_some();
                self.publish(
                    v,
                    Some((role_now, new_role.map(|r| r.1))),
                    Some(&p),
                    script.clone(),
                );
                if let (true, Some(hosts)) = (want_hosts, p.replica_hosts.as_deref()) {
                    self.discover(hosts, &p.identity, script);
                }
            }
        }
        true
    }

    /// The address of the primary, if it is another server (not this
    /// backend, nor the same server behind another address, as when a VIP
    /// moved to it) and up and writable.
    fn writable_primary_besides(&self, my_server_id: u32) -> Option<String> {
        let topo = self.ctx.topology.load();
        topo.primary()
            .filter(|p| {
                p.runtime.id != self.runtime.id
                    && p.server_id != Some(my_server_id)
                    && p.state == BackendState::Up
                    && !p.read_only
            })
            .map(|p| p.addr().to_string())
    }

    fn judge(&mut self, obs: &Observation<'_>, limits: &Limits) -> Verdict {
        // The published state is the truth (an operator may have set it
        // online again); while offline, keep judging in the shadows.
        if let Some(e) = self.ctx.topology.load().by_id(self.runtime.id) {
            if e.state != BackendState::Offline {
                self.tracker.state = e.state;
            }
        }
        self.tracker.observe(Instant::now(), obs, limits)
    }

    fn judge_reachable(
        &mut self,
        role: Role,
        p: &ProbeResult,
        started: Instant,
        limits: &Limits,
    ) -> Verdict {
        if role == Role::Primary {
            return self.judge(
                &Observation::Primary {
                    read_only: p.read_only,
                },
                limits,
            );
        }
        let (gtid, is_primary_server) = {
            let h = self.shared.history();
            let gtid = p.gtid.as_ref().and_then(|g| h.lag_of(g, started));
            let same = h.identity().is_some_and(|i| i.same_server(&p.identity));
            (gtid, same)
        };
        let view = ReplicaView {
            status: p.replication.as_ref(),
            status_error: p.replication_error.as_deref(),
            gtid,
            is_primary_server,
        };
        self.judge(&Observation::Replica(view), limits)
    }

    /// A different server behind the same address: connections pooled to
    /// the old one must not be reused.
    fn note_identity(&mut self, now: &Identity, script: Option<std::path::PathBuf>) {
        if let Some(prev) = &self.identity {
            if !prev.same_server(now) {
                self.runtime.close_pools();
                events::emit(
                    Event {
                        kind: EventKind::ServerChanged,
                        backend: self.runtime.addr.clone(),
                        primary: self.round_role == Role::Primary,
                        old: prev.to_string(),
                        new: now.to_string(),
                        reason: "a different server answers at this address; pools closed".into(),
                    },
                    script,
                );
            }
        }
        self.identity = Some(now.clone());
    }

    /// Publishes the verdict (and role/info fields) if anything changed.
    fn publish(
        &self,
        v: Verdict,
        role: Option<(Role, Option<&'static str>)>,
        p: Option<&ProbeResult>,
        script: Option<std::path::PathBuf>,
    ) {
        let id = self.runtime.id;
        let apply = |e: &BackendEntry| -> BackendEntry {
            let mut n = e.clone();
            if n.state != BackendState::Offline {
                n.state = v.state;
                n.reason.clone_from(&v.reason);
            }
            n.lag = v.lag;
            if let Some((r, _)) = role {
                n.role = r;
            }
            if let Some(p) = p {
                n.read_only = p.read_only;
                n.server_id = Some(p.identity.server_id);
            }
            n
        };
        let Some(before) = self.ctx.topology.load().by_id(id).cloned() else {
            return;
        };
        if before.role != self.round_role || before.failed_primary {
            // A failover changed it while this probe ran: the verdict is
            // about a role it no longer has.
            return;
        }
        if same(&before, &apply(&before)) {
            return;
        }
        self.ctx.update_topology(|backends| {
            backends
                .iter()
                .map(|e| {
                    if e.runtime.id == id && e.role == self.round_role && !e.failed_primary {
                        apply(e)
                    } else {
                        e.clone()
                    }
                })
                .collect()
        });
        let after = apply(&before);
        let addr = &self.runtime.addr;
        let down = after.state == BackendState::Down;
        self.runtime.set_down(down);
        if down && before.state != BackendState::Down {
            self.ctx.sessions.backend_down(id);
        }
        if before.role != after.role {
            let why = role.and_then(|r| r.1).unwrap_or("");
            emit(
                EventKind::Role,
                addr,
                after.role == Role::Primary,
                before.role.atlas_type(),
                after.role.atlas_type(),
                why,
                script.clone(),
            );
        }
        if before.state != after.state {
            emit(
                EventKind::State,
                addr,
                after.role == Role::Primary,
                before.state.as_str(),
                after.state.as_str(),
                &after.reason,
                script,
            );
        }
        if before.read_only != after.read_only && after.role == Role::Primary {
            tracing::warn!(backend = %addr, read_only = after.read_only, "backend read_only changed");
        }
    }

    /// Adds the primary's replicas that the topology does not list yet.
    fn discover(
        &self,
        hosts: &[ReplicaHost],
        primary: &Identity,
        script: Option<std::path::PathBuf>,
    ) {
        let topo = self.ctx.topology.load();
        // Until every backend has been probed, a listed replica may lack
        // the server_id that tells it apart from a reported one.
        if topo
            .backends
            .iter()
            .any(|b| b.state == BackendState::Unknown)
        {
            return;
        }
        let known: Vec<Known<'_>> = topo
            .backends
            .iter()
            .map(|b| Known {
                addr: b.addr(),
                // A down backend's server_id may be stale (the server
                // behind its address changed): match it by address only.
                server_id: b.server_id.filter(|_| b.state != BackendState::Down),
            })
            .collect();
        let mut new = unknown_replicas(hosts, &known, primary.server_id);
        new.retain(|h| !self.ctx.removed_by_operator(&h.addr(), h.server_id));
        drop(known);
        drop(topo);
        if new.is_empty() {
            return;
        }
        let pool = self.ctx.settings.load().pool;
        // Built once: the rcu closure may run more than once.
        let entries: Vec<BackendEntry> = new
            .iter()
            .map(|h| {
                let rt = BackendRuntime::new(h.addr(), pool);
                let mut e = BackendEntry::new(rt, Role::Replica, 1, BackendState::Unknown);
                e.discovered = true;
                e.server_id = h.server_id;
                e.reason = format!("discovered as a replica of {}", self.runtime.addr);
                e
            })
            .collect();
        self.ctx.update_topology(|backends| {
            let mut v = backends.to_vec();
            for e in &entries {
                if !v.iter().any(|b| b.addr().eq_ignore_ascii_case(e.addr())) {
                    v.push(e.clone());
                }
            }
            v
        });
        for e in &entries {
            emit(
                EventKind::Discovered,
                e.addr(),
                false,
                "-",
                "unknown",
                &e.reason,
                script.clone(),
            );
        }
    }
}

fn same(a: &BackendEntry, b: &BackendEntry) -> bool {
    a.state == b.state
        && a.reason == b.reason
        && a.lag == b.lag
        && a.role == b.role
        && a.read_only == b.read_only
        && a.server_id == b.server_id
}

fn emit(
    kind: EventKind,
    backend: &str,
    primary: bool,
    old: &str,
    new: &str,
    reason: &str,
    script: Option<std::path::PathBuf>,
) {
    events::emit(
        Event {
            kind,
            backend: backend.to_string(),
            primary,
            old: old.to_string(),
            new: new.to_string(),
            reason: reason.to_string(),
        },
        script,
    );
}
