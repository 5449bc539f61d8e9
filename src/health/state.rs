//! The per-backend state machine: probe outcomes + time + limits → state,
//! reason and lag. Pure, so every rule is unit-tested.
//!
//! - Unreachable: marked down once probes have failed for
//!   `down-after-milliseconds` (at once if it was never seen up).
//! - A replica leaves the read pool (lagging) on its first failed check:
//!   a replication thread not running, or lag above `max-replica-lag`.
//! - It comes back only once caught up (hysteresis): lag at most half the
//!   bound, or no GTID missing at all.

use std::time::{Duration, Instant};

use super::lag::GtidLag;
use super::replication::ReplicaStatus;
use crate::backend::BackendState;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Seconds; 0 = unbounded.
    pub max_lag: u64,
    pub down_after: Duration,
}

pub enum Observation<'a> {
    Unreachable(&'a str),
    Primary { read_only: bool },
    Replica(ReplicaView<'a>),
}

pub struct ReplicaView<'a> {
    /// `None`: no replication configured on it.
    pub status: Option<&'a ReplicaStatus>,
    /// Why its replication status could not be read.
    pub status_error: Option<&'a str>,
    /// `None`: no primary position to compare with.
    pub gtid: Option<GtidLag>,
    /// It is the very server the primary address reaches.
    pub is_primary_server: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: BackendState,
    pub reason: String,
    pub lag: Option<u64>,
}

#[derive(Debug)]
pub struct Tracker {
    /// The state as the health loop sees it (kept while an operator has
    /// the backend offline).
    pub state: BackendState,
    last: Verdict,
    failing_since: Option<Instant>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            state: BackendState::Unknown,
            last: Verdict {
                state: BackendState::Unknown,
                reason: String::new(),
                lag: None,
            },
            failing_since: None,
        }
    }
}

impl Tracker {
    pub fn observe(&mut self, now: Instant, obs: &Observation<'_>, limits: &Limits) -> Verdict {
        let v = match obs {
            Observation::Unreachable(err) => {
                let since = *self.failing_since.get_or_insert(now);
                let never_up = matches!(self.state, BackendState::Unknown | BackendState::Down);
                if never_up || now.duration_since(since) >= limits.down_after {
                    Verdict {
                        state: BackendState::Down,
                        reason: format!("unreachable: {err}"),
                        lag: None,
                    }
                } else {
                    // Not yet down: keep what it was (Sentinel's "subjectively down").
                    Verdict {
                        state: self.state,
                        ..self.last.clone()
                    }
                }
            }
            Observation::Primary { read_only } => {
                self.failing_since = None;
                let reason = if *read_only {
                    "read_only=1: writes are refused until it is writable".to_string()
                } else {
                    String::new()
                };
                Verdict {
                    state: BackendState::Up,
                    reason,
                    lag: None,
                }
            }
            Observation::Replica(view) => {
                self.failing_since = None;
                replica_verdict(self.state == BackendState::Up, view, limits)
            }
        };
        self.state = v.state;
        self.last = v.clone();
        v
    }
}

fn replica_verdict(was_up: bool, view: &ReplicaView<'_>, limits: &Limits) -> Verdict {
    let lagging = |reason: String, lag| Verdict {
        state: BackendState::Lagging,
        reason,
        lag,
    };
    if view.is_primary_server {
        return lagging(
            "same server as the primary: it takes writes, not replica reads".into(),
            None,
        );
    }
    if let Some(err) = view.status_error {
        // Unverifiable is not healthy: pinging alone is Atlas's mistake.
        return lagging(format!("cannot read replication status: {err}"), None);
    }
    let Some(status) = view.status else {
        return lagging("not replicating (no replication configured)".into(), None);
    };
    if let Some(why) = status.thread_problem() {
        return lagging(why, None);
    }
    let sbm = status.seconds_behind;
    let gtid_secs = view.gtid.map_or(0.0, |g| g.behind.as_secs_f64());
    let lag = (sbm.unwrap_or(0) as f64).max(gtid_secs);
    let lag_s = lag as u64;
    if limits.max_lag == 0 {
        return up(lag_s);
    }
    let max = limits.max_lag as f64;
    let detail = || describe(sbm, view.gtid);
    let lacks_nothing = view
        .gtid
        .is_some_and(|g| g.missing == 0 && g.behind.is_zero());
    // A deliberately delayed replica (MASTER_DELAY) falls its delay behind
    // as soon as the primary writes, though it may read as close just
    // after a restart: it serves reads only while it lacks nothing.
    if let Some(delay) = status.sql_delay.filter(|d| *d > limits.max_lag) {
        if !lacks_nothing {
            return lagging(
                format!(
                    "delayed replica: SQL_Delay {delay}s > max-replica-lag {}s ({})",
                    limits.max_lag,
                    detail()
                ),
                Some(lag_s),
            );
        }
    }
    if lag > max {
        return lagging(
            format!(
                "lag {lag:.1}s > max-replica-lag {}s ({})",
                limits.max_lag,
                detail()
            ),
            Some(lag_s),
        );
    }
    if was_up {
        return up(lag_s);
    }
    // Rejoining: well inside the bound, or nothing missing by GTID.
    let caught_up = lag <= max / 2.0 || (lacks_nothing && (sbm.unwrap_or(0) as f64) <= max);
    if caught_up {
        up(lag_s)
    } else {
        lagging(
            format!(
                "catching up: lag {lag:.1}s, rejoins at <= {:.1}s ({})",
                max / 2.0,
                detail()
            ),
            Some(lag_s),
        )
    }
}

fn up(lag: u64) -> Verdict {
    Verdict {
        state: BackendState::Up,
        reason: String::new(),
        lag: Some(lag),
    }
}

fn describe(sbm: Option<u64>, gtid: Option<GtidLag>) -> String {
    let sbm = sbm.map_or("NULL".to_string(), |s| format!("{s}s"));
    match gtid {
        Some(g) if g.missing > 0 || !g.behind.is_zero() => format!(
            "Seconds_Behind_Master {sbm}; GTID: {} transactions missing, {:.1}s behind",
            g.missing,
            g.behind.as_secs_f64()
        ),
        Some(_) => format!("Seconds_Behind_Master {sbm}; GTID caught up"),
        None => format!("Seconds_Behind_Master {sbm}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_lag: 10,
        down_after: Duration::from_secs(3),
    };

    fn status(io: &str, sql: &str, sbm: Option<u64>) -> ReplicaStatus {
        ReplicaStatus {
            io_running: io.into(),
            sql_running: sql.into(),
            seconds_behind: sbm,
            ..Default::default()
        }
    }

    fn gtid(behind_ms: u64, missing: u64) -> Option<GtidLag> {
        Some(GtidLag {
            behind: Duration::from_millis(behind_ms),
            missing,
        })
    }

    fn replica<'a>(s: &'a ReplicaStatus, g: Option<GtidLag>) -> Observation<'a> {
        Observation::Replica(ReplicaView {
            status: Some(s),
            status_error: None,
            gtid: g,
            is_primary_server: false,
        })
    }

    fn up_tracker() -> Tracker {
        let mut t = Tracker::default();
        let ok = status("Yes", "Yes", Some(0));
        assert_eq!(
            t.observe(Instant::now(), &replica(&ok, gtid(0, 0)), &LIMITS)
                .state,
            BackendState::Up
        );
        t
    }

    #[test]
    fn healthy_replica_is_up() {
        let t = up_tracker();
        assert_eq!(t.state, BackendState::Up);
    }

    #[test]
    fn stopped_sql_thread_leaves_at_once() {
        let mut t = up_tracker();
        let s = status("Yes", "No", None);
        let v = t.observe(Instant::now(), &replica(&s, gtid(0, 0)), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert_eq!(v.reason, "SQL thread stopped");
    }

    #[test]
    fn io_thread_down_is_not_zero_behind() {
        let mut t = up_tracker();
        let s = status("No", "Yes", Some(0));
        let v = t.observe(Instant::now(), &replica(&s, None), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert!(
            v.reason.starts_with("IO thread not running"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn gtid_lag_counts_even_when_seconds_behind_reads_zero() {
        // Threads claim to run, SBM says 0, but the primary moved on 12 s ago.
        let mut t = up_tracker();
        let s = status("Yes", "Yes", Some(0));
        let v = t.observe(Instant::now(), &replica(&s, gtid(12_000, 40)), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert_eq!(v.lag, Some(12));
        assert!(v.reason.contains("40 transactions missing"), "{}", v.reason);
        // NULL SBM with running threads: GTID still decides.
        let mut t = up_tracker();
        let s = status("Yes", "Yes", None);
        assert_eq!(
            t.observe(Instant::now(), &replica(&s, gtid(11_000, 1)), &LIMITS)
                .state,
            BackendState::Lagging
        );
    }

    #[test]
    fn a_delayed_replica_reads_only_while_it_lacks_nothing() {
        let delayed = ReplicaStatus {
            sql_delay: Some(60),
            ..status("Yes", "Yes", Some(1))
        };
        // Just restarted: one second behind, but the primary writes.
        let v =
            Tracker::default().observe(Instant::now(), &replica(&delayed, gtid(1_000, 3)), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert!(
            v.reason
                .starts_with("delayed replica: SQL_Delay 60s > max-replica-lag 10s"),
            "{}",
            v.reason
        );
        // The primary is idle and it has everything: it may serve reads.
        let idle = ReplicaStatus {
            seconds_behind: Some(0),
            ..delayed.clone()
        };
        let v = Tracker::default().observe(Instant::now(), &replica(&idle, gtid(0, 0)), &LIMITS);
        assert_eq!(v.state, BackendState::Up);
        // A delay within the bound is ordinary lag.
        let short = ReplicaStatus {
            sql_delay: Some(5),
            ..delayed
        };
        let v =
            Tracker::default().observe(Instant::now(), &replica(&short, gtid(1_000, 3)), &LIMITS);
        assert_eq!(v.state, BackendState::Up);
    }

    #[test]
    fn lag_hysteresis_prevents_flapping() {
        let mut t = up_tracker();
        let now = Instant::now();
        let at = |lag| status("Yes", "Yes", Some(lag));
        assert_eq!(
            t.observe(now, &replica(&at(10), gtid(0, 0)), &LIMITS).state,
            BackendState::Up
        );
        assert_eq!(
            t.observe(now, &replica(&at(11), None), &LIMITS).state,
            BackendState::Lagging
        );
        // Back under the bound but not under half of it: stays out.
        let v = t.observe(now, &replica(&at(9), gtid(9_000, 3)), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert!(v.reason.starts_with("catching up"), "{}", v.reason);
        let v = t.observe(now, &replica(&at(12), None), &LIMITS);
        assert!(
            v.reason.starts_with("lag 12.0s > max-replica-lag 10s"),
            "{}",
            v.reason
        );
        assert_eq!(
            t.observe(now, &replica(&at(6), gtid(6_000, 1)), &LIMITS)
                .state,
            BackendState::Lagging
        );
        assert_eq!(
            t.observe(now, &replica(&at(5), gtid(4_000, 1)), &LIMITS)
                .state,
            BackendState::Up
        );
    }

    #[test]
    fn caught_up_by_gtid_rejoins_even_with_a_stale_seconds_behind() {
        let mut t = up_tracker();
        let now = Instant::now();
        let s = status("Yes", "No", None);
        t.observe(now, &replica(&s, gtid(0, 0)), &LIMITS);
        let s = status("Yes", "Yes", Some(7));
        assert_eq!(
            t.observe(now, &replica(&s, gtid(0, 0)), &LIMITS).state,
            BackendState::Up
        );
    }

    #[test]
    fn new_replica_joins_only_when_caught_up() {
        // A discovered replica replaying with MASTER_DELAY: 4 s behind, max 10.
        let mut t = Tracker::default();
        let s = status("Yes", "Yes", Some(6));
        let v = t.observe(Instant::now(), &replica(&s, gtid(6_000, 12)), &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        let s = status("Yes", "Yes", Some(0));
        assert_eq!(
            t.observe(Instant::now(), &replica(&s, gtid(0, 0)), &LIMITS)
                .state,
            BackendState::Up
        );
    }

    #[test]
    fn unbounded_lag_only_checks_threads() {
        let limits = Limits {
            max_lag: 0,
            ..LIMITS
        };
        let mut t = Tracker::default();
        let s = status("Yes", "Yes", Some(5000));
        let v = t.observe(Instant::now(), &replica(&s, gtid(5_000_000, 9)), &limits);
        assert_eq!((v.state, v.lag), (BackendState::Up, Some(5000)));
        let s = status("Yes", "No", None);
        assert_eq!(
            t.observe(Instant::now(), &replica(&s, None), &limits).state,
            BackendState::Lagging
        );
    }

    #[test]
    fn unreachable_is_down_after_the_grace_period() {
        let mut t = up_tracker();
        let t0 = Instant::now();
        let v = t.observe(t0, &Observation::Unreachable("refused"), &LIMITS);
        assert_eq!(
            v.state,
            BackendState::Up,
            "one failed probe is not down yet"
        );
        let v = t.observe(
            t0 + Duration::from_millis(2900),
            &Observation::Unreachable("refused"),
            &LIMITS,
        );
        assert_eq!(v.state, BackendState::Up);
        let v = t.observe(
            t0 + Duration::from_secs(3),
            &Observation::Unreachable("refused"),
            &LIMITS,
        );
        assert_eq!(v.state, BackendState::Down);
        assert_eq!(v.reason, "unreachable: refused");
        // Reachable again: the failure clock restarts.
        let ok = status("Yes", "Yes", Some(0));
        assert_eq!(
            t.observe(t0, &replica(&ok, gtid(0, 0)), &LIMITS).state,
            BackendState::Up
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            t.observe(later, &Observation::Unreachable("x"), &LIMITS)
                .state,
            BackendState::Up
        );
    }

    #[test]
    fn never_seen_up_is_down_at_once() {
        let mut t = Tracker::default();
        let v = t.observe(
            Instant::now(),
            &Observation::Unreachable("timeout"),
            &LIMITS,
        );
        assert_eq!(v.state, BackendState::Down);
    }

    #[test]
    fn lagging_replica_unreachable_for_a_moment_stays_lagging() {
        let mut t = up_tracker();
        let s = status("Yes", "No", None);
        t.observe(Instant::now(), &replica(&s, None), &LIMITS);
        let v = t.observe(Instant::now(), &Observation::Unreachable("reset"), &LIMITS);
        assert_eq!(
            (v.state, v.reason.as_str()),
            (BackendState::Lagging, "SQL thread stopped")
        );
    }

    #[test]
    fn primary_and_special_replicas() {
        let mut t = Tracker::default();
        let v = t.observe(
            Instant::now(),
            &Observation::Primary { read_only: true },
            &LIMITS,
        );
        assert_eq!(v.state, BackendState::Up);
        assert!(v.reason.starts_with("read_only=1"));
        let mut t = up_tracker();
        let denied = Observation::Replica(ReplicaView {
            status: None,
            status_error: Some("Access denied; you need the SLAVE MONITOR privilege"),
            gtid: gtid(0, 0),
            is_primary_server: false,
        });
        let v = t.observe(Instant::now(), &denied, &LIMITS);
        assert_eq!(v.state, BackendState::Lagging);
        assert!(
            v.reason
                .starts_with("cannot read replication status: Access denied"),
            "{}",
            v.reason
        );
        let none = Observation::Replica(ReplicaView {
            status: None,
            status_error: None,
            gtid: None,
            is_primary_server: false,
        });
        assert_eq!(
            t.observe(Instant::now(), &none, &LIMITS).reason,
            "not replicating (no replication configured)"
        );
        let ok = status("Yes", "Yes", Some(0));
        let same = Observation::Replica(ReplicaView {
            status: Some(&ok),
            status_error: None,
            gtid: gtid(0, 0),
            is_primary_server: true,
        });
        assert_eq!(
            t.observe(Instant::now(), &same, &LIMITS).state,
            BackendState::Lagging
        );
    }
}
