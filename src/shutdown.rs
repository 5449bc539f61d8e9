//! Graceful shutdown: a flag every task can check cheaply, and the drain
//! that lets running statements and open transactions finish.
//!
//! Sessions end through their registry entry's kill signal, which a session
//! obeys at its next command boundary: a statement that is running finishes
//! and its result reaches the client first. Sessions inside a transaction
//! are left alone until they commit or roll back, or the timeout passes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

use crate::context::Context;
use crate::frontend::registry::pin;

/// How often the drain looks at the sessions.
const DRAIN_TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub struct Shutdown {
    started: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    pub fn begin(&self) {
        self.started.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// One atomic load: cheap enough to check between commands.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Resolves once [`Shutdown::begin`] was called (at once if it was).
    pub async fn started(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a begin() in between is not lost.
        notified.as_mut().enable();
        if self.is_started() {
            return;
        }
        notified.await;
    }
}

/// What the drain saw, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DrainSummary {
    /// Sessions still open when the timeout passed (ended without waiting).
    pub cut_off: usize,
}

/// Ends every session: idle ones and those between statements at once,
/// those inside a transaction once it ends or after `timeout`. `force`
/// (e.g. a second SIGTERM) ends the wait early. Returns when no session is
/// left or `timeout` plus one tick has passed.
pub async fn drain(
    ctx: &Context,
    timeout: Duration,
    force: impl Future<Output = ()>,
) -> DrainSummary {
    let deadline = tokio::time::Instant::now() + timeout;
    tokio::pin!(force);
    loop {
        let sessions = ctx.sessions.snapshot();
        if sessions.is_empty() {
            return DrainSummary::default();
        }
        let late = tokio::time::Instant::now() >= deadline;
        for s in &sessions {
            if late || s.pins() & pin::TRANSACTION == 0 {
                s.kill();
            }
        }
        if late {
            // Sessions obey between commands; one still running a statement
            // is not waited for.
            tokio::time::sleep(DRAIN_TICK).await;
            return DrainSummary {
                cut_off: ctx.sessions.len(),
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_TICK) => {}
            _ = &mut force => {
                for s in &ctx.sessions.snapshot() {
                    s.kill();
                }
                return DrainSummary { cut_off: ctx.sessions.len() };
            }
        }
    }
}

/// Closes every pool: idle backend connections say COM_QUIT now, busy ones
/// when their session lets them go.
pub fn close_backends(ctx: &Context) {
    for b in &ctx.topology.load().backends {
        b.runtime.close_pools();
    }
}
