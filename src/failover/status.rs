//! What the rest of Gantry sees of failovers: the write hold sessions wait
//! on, the record of past failovers (admin `failovers`), and whether
//! automatic failover was suspended by one that failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

use crate::health::probe::ProbeResult;

/// Writes that find no usable primary while a failover runs wait here.
#[derive(Debug, Default)]
pub struct WriteHold {
    running: AtomicBool,
    done: Notify,
}

impl WriteHold {
    /// Starts holding writes for one promotion, unless another one holds
    /// them already (a manual FAILOVER or SWITCHOVER and an automatic
    /// failover must never overlap). The hold ends when the lease drops.
    pub fn try_begin(&self) -> Option<HoldLease<'_>> {
        self.running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| HoldLease { hold: self })
    }

    fn end(&self) {
        self.running.store(false, Ordering::SeqCst);
        self.done.notify_waiters();
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Waits until the failover ends, at most `max`; true if it ended.
    pub async fn wait(&self, max: Duration) -> bool {
        let ended = self.done.notified();
        tokio::pin!(ended);
        // Registered before the check: an `end` in between is not missed.
        ended.as_mut().enable();
        if !self.is_running() {
            return true;
        }
        tokio::time::timeout(max, ended).await.is_ok()
    }
}

/// The one running promotion's hold on writes; released when dropped,
/// whatever path the promotion leaves by.
#[derive(Debug)]
pub struct HoldLease<'a> {
    hold: &'a WriteHold,
}

impl Drop for HoldLease<'_> {
    fn drop(&mut self) {
        self.hold.end();
    }
}

/// Why a promotion did not start.
pub const ALREADY_RUNNING: &str = "refused: another failover or switchover is running";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Auto,
    Manual,
    Switchover,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Auto => "auto",
            Kind::Manual => "manual",
            Kind::Switchover => "switchover",
        }
    }
}

/// One failover, for `SELECT * FROM failovers`.
#[derive(Debug, Clone)]
pub struct Record {
    pub started: SystemTime,
    pub kind: Kind,
    pub from: String,
    pub to: Option<String>,
    /// From the primary's failure being confirmed to writes taken again.
    pub write_outage: Option<Duration>,
    /// The promoted replica's GTID position when promoted.
    pub position: Option<String>,
    /// `ok`, or why it failed or was refused.
    pub outcome: String,
    /// What of the old primary's writes the new primary lacks, and how it
    /// is known: its last known position at the failover, its binlog once
    /// it answers again.
    pub lacked: Option<String>,
}

impl Record {
    /// A failover of `kind` from `from` that has only started.
    pub fn new(kind: Kind, from: impl Into<String>) -> Record {
        Record {
            started: SystemTime::now(),
            kind,
            from: from.into(),
            to: None,
            write_outage: None,
            position: None,
            outcome: String::new(),
            lacked: None,
        }
    }
}

/// Failovers so far and what they leave behind.
#[derive(Debug, Default)]
pub struct Failovers {
    pub hold: WriteHold,
    records: Mutex<Vec<Record>>,
    /// An automatic failover failed: no new one until an operator turns
    /// `failover = auto` on again (RELOAD CONFIG).
    suspended: AtomicBool,
    last_end: Mutex<Option<Instant>>,
    /// The last successful probe of each reachable backend (by runtime
    /// id), from the health tasks: what a failover decides from.
    probes: Mutex<HashMap<u64, ProbeResult>>,
    /// When each replica last showed it received something (a heartbeat
    /// or an event), by runtime id.
    activity: Mutex<HashMap<u64, Instant>>,
    /// Failovers by kind (`Kind` order) and outcome (`OUTCOMES` order).
    counts: [[AtomicU64; 3]; 3],
    /// When each diverged old primary was last compared with the new
    /// primary (by runtime id).
    divergence_checked: Mutex<HashMap<u64, Instant>>,
}

/// Outcomes counted for the metrics.
pub const OUTCOMES: [&str; 3] = ["ok", "refused", "failed"];

/// Past failovers kept for the admin table.
const KEEP: usize = 100;

impl Failovers {
    pub fn note_probe(&self, id: u64, probe: Option<&ProbeResult>) {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        match probe {
            Some(p) => {
                let received = |p: &ProbeResult| {
                    let pos = p.replication.as_ref().and_then(|r| r.received_gtid.clone());
                    (p.heartbeats, pos)
                };
                let moved = probes
                    .get(&id)
                    .is_none_or(|before| received(before) != received(p));
                if moved {
                    let mut activity = self.activity.lock().unwrap_or_else(|e| e.into_inner());
                    activity.insert(id, Instant::now());
                }
                probes.insert(id, p.clone());
            }
            None => {
                probes.remove(&id);
            }
        }
    }

    /// How long a replica has received nothing from its source, when its
    /// heartbeats are counted (else nothing can be said).
    pub fn silent_for(&self, id: u64) -> Option<Duration> {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.get(&id)?.heartbeats?;
        drop(probes);
        let activity = self.activity.lock().unwrap_or_else(|e| e.into_inner());
        activity.get(&id).map(|t| t.elapsed())
    }

    /// The last probe of a backend that answered its last probe.
    pub fn last_probe(&self, id: u64) -> Option<ProbeResult> {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.get(&id).cloned()
    }

    pub fn record(&self, r: Record) {
        let outcome = if r.outcome == "ok" {
            0
        } else if r.outcome.starts_with("refused") {
            1
        } else {
            2
        };
        self.counts[r.kind as usize][outcome].fetch_add(1, Ordering::Relaxed);
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() == KEEP {
            records.remove(0);
        }
        records.push(r);
    }

    /// What the last successful failover from `from` is now known to have
    /// lacked (the old primary answered again).
    pub fn note_lacked(&self, from: &str, lacked: String) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = records
            .iter_mut()
            .rev()
            .find(|r| r.outcome == "ok" && r.from == from && r.kind != Kind::Switchover)
        {
            r.lacked = Some(lacked);
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// (kind, outcome, count) of every pair, for the metrics.
    pub fn counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for kind in [Kind::Auto, Kind::Manual, Kind::Switchover] {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let n = self.counts[kind as usize][i].load(Ordering::Relaxed);
                out.push((kind.as_str(), *outcome, n));
            }
        }
        out
    }

    pub fn suspend(&self) {
        self.suspended.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.suspended.store(false, Ordering::SeqCst);
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::SeqCst)
    }

    /// True (and noted) if backend `id` was not checked in the last
    /// `every`.
    pub fn divergence_check_due(&self, id: u64, every: Duration) -> bool {
        let mut checked = self
            .divergence_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let due = checked.get(&id).is_none_or(|t| t.elapsed() >= every);
        if due {
            checked.insert(id, Instant::now());
        }
        due
    }

    pub fn ended_now(&self) {
        *self.last_end.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Whether a failover ended less than `block` ago.
    pub fn blocked(&self, block: Duration) -> bool {
        self.last_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_hold_releases_waiters_when_it_ends() {
        let hold = std::sync::Arc::new(WriteHold::default());
        assert!(
            hold.wait(Duration::from_millis(1)).await,
            "nothing to wait for"
        );
        let lease = hold.try_begin().expect("nothing holds writes");
        assert!(hold.try_begin().is_none(), "one promotion at a time");
        assert!(!hold.wait(Duration::from_millis(20)).await, "times out");
        let h = hold.clone();
        let waiter = tokio::spawn(async move { h.wait(Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(lease);
        assert!(waiter.await.unwrap());
        assert!(hold.try_begin().is_some(), "free again");
    }

    #[test]
    fn records_are_bounded_and_blocks_expire() {
        let f = Failovers::default();
        for i in 0..KEEP + 5 {
            f.record(Record {
                outcome: "ok".into(),
                ..Record::new(Kind::Auto, i.to_string())
            });
        }
        let r = f.records();
        assert_eq!(r.len(), KEEP);
        assert_eq!(r[0].from, "5");
        assert!(!f.blocked(Duration::from_secs(60)));
        f.ended_now();
        assert!(f.blocked(Duration::from_secs(60)));
        assert!(!f.blocked(Duration::ZERO));
    }

    #[test]
    fn a_diverged_server_is_compared_again_only_when_due() {
        let f = Failovers::default();
        let every = Duration::from_secs(60);
        assert!(f.divergence_check_due(7, every), "never checked");
        assert!(!f.divergence_check_due(7, every), "just checked");
        assert!(f.divergence_check_due(8, every), "per backend");
        assert!(f.divergence_check_due(7, Duration::ZERO));
    }
}
