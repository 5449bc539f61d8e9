//! The backend connection a session holds, and why it must keep it (pins):
//! one owner for both, so the admin port's view (`SessionInfo`) and the
//! connection's fate at release always agree. Which connection to take for
//! a statement (primary, a replica, the one held) is decided here too.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Session, Target};
use crate::backend::{BackendRuntime, Lease};
use crate::frontend::registry::SessionInfo;
use crate::frontend::stmt::Statements;
use crate::protocol::MyError;

/// A backend connection the session is using.
pub(super) struct Held {
    pub backend: Arc<BackendRuntime>,
    /// Back to its pool (or closed, if marked) when dropped.
    pub conn: Lease,
}

pub(super) struct Binding {
    held: Option<Held>,
    /// `pin` bits: while non-zero the session stays on `held`.
    pins: u32,
    info: Arc<SessionInfo>,
}

impl Binding {
    pub fn new(info: Arc<SessionInfo>) -> Self {
        Self {
            held: None,
            pins: 0,
            info,
        }
    }

    pub fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }

    pub fn held_mut(&mut self) -> Option<&mut Held> {
        self.held.as_mut()
    }

    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    pub fn pinned(&self) -> bool {
        self.pins != 0
    }

    pub fn set_pin(&mut self, bit: u32, on: bool) {
        let next = if on {
            self.pins | bit
        } else {
            self.pins & !bit
        };
        if next != self.pins {
            self.pins = next;
            self.info.pins.store(next, Ordering::Relaxed);
        }
    }

    /// Forgets every pin (the state they stood for is gone).
    pub fn clear_pins(&mut self) {
        self.pins = 0;
        self.info.pins.store(0, Ordering::Relaxed);
    }

    /// Makes `held` the session's connection, visible to KILL and the admin.
    pub fn hold(&mut self, held: Held) {
        self.info.backend.store(held.backend.id, Ordering::Relaxed);
        self.info
            .backend_thread
            .store(held.conn.thread_id, Ordering::Relaxed);
        self.held = Some(held);
    }

    /// Takes the held connection out (its fate is the caller's).
    pub fn take(&mut self) -> Option<Held> {
        self.info.backend.store(0, Ordering::Relaxed);
        self.held.take()
    }

    /// Gives the held connection back to its pool unless it carries state
    /// (`carries_state`) or its statements cannot all be closed.
    pub fn release(&mut self, carries_state: bool, stmts: &Statements) {
        if let Some(mut h) = self.take() {
            // Statements the session no longer uses count against the
            // server's global max_prepared_stmt_count: close them.
            if carries_state || !h.conn.close_unused(|key| stmts.uses_key(key)) {
                h.conn.discard_on_drop();
            }
        }
    }

    /// Closes the held connection, and with it whatever was pinned there.
    pub fn discard(&mut self) {
        if let Some(h) = self.take() {
            h.conn.discard();
        }
        self.clear_pins();
    }
}

impl Session {
    /// Makes `held` a connection to the backend `target` resolves to. A
    /// write that finds no usable primary while a failover runs waits for
    /// it, up to `failover-write-hold-ms`, and tries the new primary.
    pub(super) async fn use_target(&mut self, target: Target) -> Result<(), MyError> {
        if target != Target::Replica && !self.binding.pinned() {
            // A failover or switchover is moving the primary: a statement
            // that would start on it waits, holding no connection there.
            if self.ctx.failovers.hold.is_running() {
                self.release_held();
                self.wait_for_primary().await;
            }
            let first = self.use_target_now(target).await;
            if first.is_err()
                && self.ctx.failovers.hold.is_running()
                && self.wait_for_primary().await
            {
                return self.use_target_now(target).await;
            }
            return first;
        }
        self.use_target_now(target).await
    }

    /// Waits for the failover that runs to end, at most
    /// `failover-write-hold-ms`; true if it ended.
    async fn wait_for_primary(&self) -> bool {
        let max = self.ctx.config.load().failover_write_hold_ms;
        self.ctx
            .failovers
            .hold
            .wait(std::time::Duration::from_millis(max))
            .await
    }

    async fn use_target_now(&mut self, target: Target) -> Result<(), MyError> {
        let topo = self.ctx.topology.load();
        let chosen = match target {
            Target::Current if self.binding.is_held() => return Ok(()),
            Target::Current | Target::Primary => topo.primary(),
            Target::Replica => {
                self.ticket = self.ticket.wrapping_add(1);
                topo.pick_replica(self.ticket)
                    .or_else(|| topo.pick_reachable_replica(self.ticket))
                    .or_else(|| topo.primary())
            }
        };
        let Some(entry) = chosen else {
            return Err(MyError::no_primary());
        };
        if self.binding.pinned() && self.binding.is_held() {
            return Ok(());
        }
        if entry.runtime.is_down() && target != Target::Replica {
            // Known to be down: no client waits for a connect there.
            return Err(MyError::backend_down(entry.addr()));
        }
        let backend = entry.runtime.clone();
        let fallback = topo.primary().map(|p| p.runtime.clone());
        // The primary just died and the replicas' links with it: a read
        // that cannot reach it is served stale rather than failed.
        let stale = topo
            .pick_lagging_replica(self.ticket)
            .map(|r| r.runtime.clone());
        drop(topo);
        match self.use_backend(backend.clone()).await {
            Ok(()) => Ok(()),
            Err(e) if target == Target::Replica => match (fallback, stale) {
                // A replica that cannot be reached: the read goes to the primary.
                (Some(p), _) if p.id != backend.id => {
                    tracing::debug!(replica = %backend.addr, error = %e, "read falls back to the primary");
                    self.acquire(p).await
                }
                (_, Some(r)) if r.id != backend.id => {
                    tracing::debug!(primary = %backend.addr, error = %e, "read falls back to a lagging replica");
                    self.acquire(r).await
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Makes `held` a connection to `backend` (the one held, if it is).
    pub(super) async fn use_backend(
        &mut self,
        backend: Arc<BackendRuntime>,
    ) -> Result<(), MyError> {
        if self
            .binding
            .held()
            .is_some_and(|h| h.backend.id == backend.id)
        {
            return Ok(());
        }
        self.release_held();
        self.acquire(backend).await
    }

    /// A connection of `backend`'s pool for this session, reset first when
    /// it may carry another session's values or older defaults.
    async fn acquire(&mut self, backend: Arc<BackendRuntime>) -> Result<(), MyError> {
        let pool = backend.pool(&self.pool_key);
        let schema = self.state.schema.as_deref();
        let mut conn = pool
            .acquire_for(&self.password, schema, self.purpose)
            .await?;
        // A connection that served another session is reset unless it has
        // nothing this session lacks and its defaults are no older than
        // the session (it was reset, or opened, since the session began):
        // one reset per connection and session at most, never per statement.
        let stale = conn.defaults_at < self.started || !self.state.extends(&conn.vars);
        if conn.owner == self.token || !stale {
            conn.owner = self.token;
        } else {
            let reset = match conn.reset_for(self.token).await {
                Ok(r) => r,
                Err(_) => Err(MyError::backend_lost(&backend.addr)),
            };
            if let Err(e) = reset {
                tracing::warn!(backend = %backend.addr, error = %e, "a pooled connection failed its reset; closed");
                conn.discard();
                conn = pool.acquire_fresh(&self.password, schema).await?;
                conn.owner = self.token;
            }
        }
        self.binding.hold(Held { backend, conn });
        Ok(())
    }

    /// Gives the held connection back to its pool if its state is shareable.
    pub(super) fn release_held(&mut self) {
        let carries_state = self.carries_state();
        self.binding.release(carries_state, &self.stmts);
    }

    /// Closes the held connection; what lived on it is gone.
    pub(super) fn discard_held(&mut self) {
        self.binding.discard();
        self.temp_tables = 0;
        self.last_status = crate::protocol::status::AUTOCOMMIT;
    }
}
