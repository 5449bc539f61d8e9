//! Replica lag measured against the primary's GTID history, so that a
//! replica is not trusted on `Seconds_Behind_Master` alone (it reads 0 or
//! NULL while the IO thread is down, whatever the primary wrote since).
//!
//! The primary's probe records its position each time it changes, with the
//! time it was first seen. A replica whose position does not cover a sample
//! taken at time `t` (before the replica's probe started) lacks a
//! transaction that existed at `t`: it is at least `now - t` behind. The
//! estimate is a lower bound, accurate to about one probe interval.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::gtid::Gtid;
use super::probe::Identity;

/// Samples kept at most (at one per second: over an hour).
const MAX_SAMPLES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidLag {
    /// Age of the oldest primary position the replica lacks (zero: none).
    pub behind: Duration,
    /// Transactions missing from the newest such position.
    pub missing: u64,
}

#[derive(Debug, Default)]
pub struct PrimaryHistory {
    identity: Option<Identity>,
    samples: VecDeque<(Instant, Gtid)>,
}

impl PrimaryHistory {
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Records the primary's position at `at`; a different server behind
    /// the primary starts a new history (old positions mean nothing to
    /// it). Returns true when that happened.
    pub fn record(
        &mut self,
        at: Instant,
        who: &Identity,
        pos: Option<Gtid>,
        keep: Duration,
    ) -> bool {
        let moved = self.identity.as_ref().is_some_and(|i| !i.same_server(who));
        if moved || self.identity.is_none() {
            self.samples.clear();
            self.identity = Some(who.clone());
        }
        if let Some(pos) = pos {
            if self.samples.back().is_none_or(|(_, last)| *last != pos) {
                self.samples.push_back((at, pos));
            }
        }
        // Keep the newest sample whatever its age: it is the current position.
        while self.samples.len() > 1
            && (self.samples.len() > MAX_SAMPLES
                || self
                    .samples
                    .front()
                    .is_some_and(|(t, _)| at.duration_since(*t) > keep))
        {
            self.samples.pop_front();
        }
        moved
    }

    /// How far `replica` (read by a probe that started at `started`) is
    /// behind; `None` when there is nothing to compare with.
    pub fn lag_of(&self, replica: &Gtid, started: Instant) -> Option<GtidLag> {
        let usable = self.samples.iter().take_while(|(t, _)| *t <= started);
        let mut newest = None;
        let mut oldest_missing = None;
        for (t, pos) in usable {
            newest = Some(pos);
            // Positions only grow: once one is not covered, none after is.
            if oldest_missing.is_none() && !replica.covers(pos)? {
                oldest_missing = Some(*t);
            }
        }
        let newest = newest?;
        Some(match oldest_missing {
            None => GtidLag {
                behind: Duration::ZERO,
                missing: 0,
            },
            Some(t) => GtidLag {
                behind: started.saturating_duration_since(t),
                missing: replica.missing(newest).unwrap_or(0),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::gtid::MariaPos;

    fn pos(s: &str) -> Option<Gtid> {
        Some(Gtid::MariaDb(MariaPos::parse(s)))
    }

    fn id(n: u32) -> Identity {
        Identity {
            server_id: n,
            uuid: None,
        }
    }

    const KEEP: Duration = Duration::from_secs(60);

    #[test]
    fn lag_is_the_age_of_the_oldest_missing_position() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut h = PrimaryHistory::default();
        h.record(s(0), &id(1), pos("0-1-10"), KEEP);
        h.record(s(1), &id(1), pos("0-1-10"), KEEP); // unchanged: not a new sample
        h.record(s(2), &id(1), pos("0-1-12"), KEEP);
        h.record(s(3), &id(1), pos("0-1-20"), KEEP);
        let r = pos("0-1-10").unwrap();
        // Probed at 3.5 s: lacks what the primary had at 2 s.
        let lag = h.lag_of(&r, s(3) + Duration::from_millis(500)).unwrap();
        assert_eq!(lag.behind, Duration::from_millis(1500));
        assert_eq!(lag.missing, 10);
        // A probe that started before the 3 s sample does not see it.
        let lag = h
            .lag_of(&pos("0-1-12").unwrap(), s(2) + Duration::from_millis(900))
            .unwrap();
        assert_eq!(
            lag,
            GtidLag {
                behind: Duration::ZERO,
                missing: 0
            }
        );
        // Caught up with everything.
        let lag = h.lag_of(&pos("0-1-20").unwrap(), s(9)).unwrap();
        assert_eq!(lag.behind, Duration::ZERO);
    }

    #[test]
    fn io_thread_down_while_primary_writes_grows_lag() {
        // Seconds_Behind_Master would read NULL or 0 here; GTID does not.
        let t0 = Instant::now();
        let mut h = PrimaryHistory::default();
        for i in 0..10u64 {
            h.record(
                t0 + Duration::from_secs(i),
                &id(1),
                pos(&format!("0-1-{}", 100 + i)),
                KEEP,
            );
        }
        let stuck = pos("0-1-101").unwrap();
        let lag = h.lag_of(&stuck, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(lag.behind, Duration::from_secs(8));
        assert_eq!(lag.missing, 8);
    }

    #[test]
    fn a_new_server_behind_the_primary_resets_history() {
        let t0 = Instant::now();
        let mut h = PrimaryHistory::default();
        assert!(!h.record(t0, &id(1), pos("0-1-50"), KEEP));
        assert!(h.record(t0 + Duration::from_secs(5), &id(2), pos("0-2-48"), KEEP));
        assert_eq!(h.identity(), Some(&id(2)));
        // 0-1-50 from the old primary is forgotten: 48 is caught up.
        let lag = h
            .lag_of(&pos("0-2-48").unwrap(), t0 + Duration::from_secs(6))
            .unwrap();
        assert_eq!(lag.behind, Duration::ZERO);
        assert!(h
            .lag_of(&pos("0-2-48").unwrap(), t0 + Duration::from_secs(1))
            .is_none());
    }

    #[test]
    fn old_samples_are_pruned_but_the_newest_is_kept() {
        let t0 = Instant::now();
        let mut h = PrimaryHistory::default();
        let keep = Duration::from_secs(10);
        h.record(t0, &id(1), pos("0-1-1"), keep);
        h.record(t0 + Duration::from_secs(5), &id(1), pos("0-1-2"), keep);
        h.record(t0 + Duration::from_secs(30), &id(1), None, keep);
        assert_eq!(h.samples.len(), 1);
        let lag = h
            .lag_of(&pos("0-1-1").unwrap(), t0 + Duration::from_secs(30))
            .unwrap();
        assert_eq!(lag.behind, Duration::from_secs(25));
    }
}
