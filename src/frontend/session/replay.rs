//! Bringing the held connection to the session's state before a command.

use super::binding::Held;
use super::Session;
use crate::backend::sync::SyncError;
use crate::protocol::MyError;

impl Session {
    /// Brings the held connection to the session's schema and variables
    /// (and LAST_INSERT_ID() when the next statement reads it). A failure
    /// discards the connection.
    pub(super) async fn sync_state(&mut self) -> Result<(), MyError> {
        if self.state.schema.is_none()
            && self.binding.held().is_some_and(|h| h.conn.schema.is_some())
        {
            // A server cannot unselect a database: a session without one
            // gets a fresh connection in place of this one.
            let Some(Held { backend, conn }) = self.binding.take() else {
                return Ok(());
            };
            let mut conn = conn.reconnect(&self.password).await?;
            conn.owner = self.token;
            self.binding.hold(Held { backend, conn });
        }
        let Some(h) = self.binding.held_mut() else {
            return Ok(());
        };
        let addr = h.backend.addr.clone();
        let mut result = h.conn.sync_to(&self.state, self.token).await;
        if result.is_ok() && std::mem::take(&mut self.sync_insert_id) {
            result = h.conn.sync_insert_id(self.last_insert_id).await;
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(backend = %addr, error = %e, "could not bring a connection to the session's state");
                self.discard_held();
                Err(match e {
                    SyncError::Lost(_) => MyError::backend_lost(&addr),
                    SyncError::Server(e) => e,
                })
            }
        }
    }
}
