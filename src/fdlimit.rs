//! File descriptors: every client and backend connection is one. The usual
//! soft limit (1024) is far below `max-client-connections`, so Gantry raises
//! it to the hard limit at start and refuses new clients with 1040 while a
//! reserve is still free, instead of letting accept() fail with EMFILE.

use std::time::{Duration, Instant};

/// Descriptors kept for the admin port, health probes, listeners, logs and
/// the connect of a backend for a client that was just admitted.
pub const RESERVE: u64 = 128;

/// The soft RLIMIT_NOFILE now (0 if it cannot be read).
pub fn soft_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

/// Raises the soft limit to the hard limit; returns the soft limit in force
/// afterwards.
pub fn raise_to_hard() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// Whether `in_use` descriptors (client plus backend connections) leave
/// the reserve free under `limit`; 0 means the limit is unknown.
pub fn has_room(in_use: u64, limit: u64) -> bool {
    limit == 0 || in_use + RESERVE < limit
}

/// Accept errors come in bursts (EMFILE repeats for every queued client):
/// one log line per interval, with the number left out.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now (`n` lines were left out
    /// since the last one), `None` when this one should be left out.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// True for the errors that mean "out of descriptors".
pub fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_logs_once_per_interval_and_counts_the_rest() {
        let mut l = LogLimiter::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        for i in 1..=20 {
            assert_eq!(l.allow(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(6)), Some(20));
    }

    #[test]
    fn room_keeps_the_reserve() {
        assert!(has_room(0, 1024));
        assert!(!has_room(1024 - RESERVE, 1024));
        assert!(has_room(10, 0));
    }

    #[test]
    fn raising_never_lowers() {
        let before = soft_limit();
        assert!(raise_to_hard() >= before);
    }
}
