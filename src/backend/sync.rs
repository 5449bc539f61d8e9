//! Bringing a backend connection to a client session's state: its schema
//! and replayable variables, from a reset when the connection has state the
//! session does not. The connection remembers what it was brought to, so
//! only differences are sent.

use std::io;

use super::conn::BackendConn;
use crate::frontend::state::SessionState;
use crate::protocol::{cmd, MyError};

/// Why a connection could not be brought to a session's state.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connection failed: it is unusable.
    #[error("lost the backend connection: {0}")]
    Lost(#[from] io::Error),
    /// The server refused a statement of Gantry's own: the connection's
    /// state is not known any more.
    #[error("{0}")]
    Server(MyError),
}

impl From<MyError> for SyncError {
    fn from(e: MyError) -> Self {
        SyncError::Server(e)
    }
}

impl BackendConn {
    /// Brings this connection to `state` for the session `owner`.
    pub async fn sync_to(&mut self, state: &SessionState, owner: u64) -> Result<(), SyncError> {
        if state.schema.is_some() && self.schema != state.schema {
            let schema = state.schema.clone().unwrap_or_default();
            self.run(cmd::INIT_DB, schema.as_bytes()).await??;
            self.schema = Some(schema);
        }
        if self.vars_hash == state.vars_hash {
            return Ok(());
        }
        if !state.extends(&self.vars) {
            self.reset_for(owner).await??;
        }
        if let Some(sql) = state.replay_sql(&self.vars) {
            self.run(cmd::QUERY, sql.as_bytes()).await??;
        }
        self.vars.clone_from(&state.vars);
        self.vars_hash = state.vars_hash;
        Ok(())
    }

    /// Makes LAST_INSERT_ID() answer `want` here, as on the connection the
    /// session's insert ran on.
    pub async fn sync_insert_id(&mut self, want: u64) -> Result<(), SyncError> {
        if want != 0 && self.last_insert_id != want {
            let sql = format!("DO LAST_INSERT_ID({want})");
            self.run(cmd::QUERY, sql.as_bytes()).await??;
            self.last_insert_id = want;
        }
        Ok(())
    }
}
