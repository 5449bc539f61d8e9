//! A backend connection on loan from its pool. The lease is the one owner
//! of the pool slot: dropping it gives the connection back (or closes it
//! when it was marked as carrying state nobody else may see), so no early
//! return can leak a slot and no counter can drift.

use crate::protocol::credential::Credential;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::conn::BackendConn;
use super::pool::Pool;
use crate::protocol::MyError;

pub struct Lease {
    conn: Option<BackendConn>,
    pool: Arc<Pool>,
    /// Close on drop instead of pooling.
    discard: bool,
}

impl Lease {
    pub(super) fn new(conn: BackendConn, pool: Arc<Pool>) -> Self {
        Self {
            conn: Some(conn),
            pool,
            discard: false,
        }
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Closes the connection instead of pooling it when the lease ends (it
    /// carries state, or its state is unknown).
    pub fn discard_on_drop(&mut self) {
        self.discard = true;
    }

    /// Ends the lease now, closing the connection.
    pub fn discard(mut self) {
        self.discard = true;
    }

    /// A fresh connection in place of this one, in the same pool slot (for a
    /// session that needs what the old one cannot give back: no schema).
    pub async fn reconnect(mut self, password: &Credential) -> Result<Lease, MyError> {
        if let Some(old) = self.conn.take() {
            self.pool.forget(old);
        }
        // On failure the slot is freed and the empty lease drops quietly.
        let conn = self.pool.connect_into_slot(password, None).await?;
        self.conn = Some(conn);
        Ok(self)
    }
}

impl Deref for Lease {
    type Target = BackendConn;

    fn deref(&self) -> &BackendConn {
        // Only `reconnect` and `drop` empty it, and neither hands it out empty.
        self.conn.as_ref().expect("a lease holds a connection")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut BackendConn {
        self.conn.as_mut().expect("a lease holds a connection")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match self.conn.take() {
            Some(conn) if self.discard => self.pool.discard(conn),
            Some(conn) => self.pool.release(conn),
            // A failed reconnect already gave the slot back.
            None => {}
        }
    }
}
