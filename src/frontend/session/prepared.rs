//! COM_STMT_* under Gantry's statement ids (see `frontend::stmt`).

use std::sync::Arc;

use super::{End, Session, Target};
use crate::config::Consistency;
use crate::frontend::registry::pin;
use crate::frontend::stmt::{
    long_data_too_large, rewrite_execute, set_statement_id, statement_id, statement_key,
    ClientStatement, LongData, CURSOR_READ_ONLY,
};
use crate::protocol::packet::{header, join_payload};
use crate::protocol::reply::MyError;
use crate::protocol::MAX_PAYLOAD;
use crate::protocol::{cmd, status, Expect};
use crate::router::{self, Route};
use bytes::BytesMut;

pub(super) fn unknown_statement(id: u32, what: &str) -> MyError {
    MyError::new(
        1243,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {what}"),
    )
}

impl Session {
    fn statement_target(&self, route: Route) -> Target {
        if self.binding.pinned() {
            Target::Current
        } else if route == Route::Replica {
            Target::Replica
        } else {
            Target::Primary
        }
    }

    /// The held connection is to a replica that serves reads.
    fn holds_serving_replica(&self) -> bool {
        self.binding.held().is_some_and(|h| {
            self.ctx
                .topology
                .load()
                .by_id(h.backend.id)
                .is_some_and(|b| b.serves_reads())
        })
    }

    /// COM_STMT_PREPARE: prepared on the backend its statements will mostly
    /// run on; the answer goes back with Gantry's statement id.
    pub(super) async fn stmt_prepare(&mut self, request: &[u8]) -> Result<(), End> {
        let (payload, _) = join_payload(request);
        let mut sql: Arc<[u8]> = Arc::from(&payload[1..]);
        let class = if header(request).0 == MAX_PAYLOAD {
            router::uninspected()
        } else {
            router::classify(&sql)
        };
        let rewritten;
        let mut request = request;
        if class.connection_id {
            sql = Arc::from(router::with_connection_id(&sql, self.info.id));
            rewritten = super::command_packet(cmd::STMT_PREPARE, &sql);
            request = &rewritten;
        }
        let mut target = self.statement_target(class.route);
        if target == Target::Replica && self.holds_serving_replica() {
            // Prepare where the session is: the execute picks its replica.
            target = Target::Current;
        }
        if !self.prepare_conn(target).await? {
            return Ok(());
        }
        let key = statement_key(self.state.schema.as_deref(), &sql);
        let held = self.binding.held_mut().expect("prepare_conn sets held");
        let backend = held.backend.clone();
        let mut out = std::mem::take(&mut self.scratch);
        let result = held.conn.prepare(request, key, &mut out).await;
        let sc = match result {
            Ok(sc) => sc,
            Err(e) => {
                self.scratch = out;
                return self.backend_failed(&backend, &e, true, 1).await.map(|_| ());
            }
        };
        if let Some(info) = sc.prepared.filter(|_| !sc.error) {
            let id = self.stmts.insert(ClientStatement {
                key,
                sql,
                class,
                params: info.params,
                param_types: None,
                long_data: LongData::default(),
                cursor: None,
            });
            set_statement_id(&mut out, id);
        }
        let written = self.client.write_all(&out).await;
        self.scratch = out;
        Ok(written?)
    }

    /// COM_STMT_EXECUTE: on a replica for read-only statements, preparing
    /// the statement on that connection first if it has not seen it.
    pub(super) async fn stmt_execute(&mut self, request: &[u8]) -> Result<(), End> {
        let (payload, _) = join_payload(request);
        let Some(id) = statement_id(&payload) else {
            return self
                .send_err(1, &MyError::malformed("COM_STMT_EXECUTE"))
                .await;
        };
        let Some(mut stmt) = self.stmts.remove(id) else {
            return self
                .send_err(1, &unknown_statement(id, "mysqld_stmt_execute"))
                .await;
        };
        // As on the server: long data is used by one execute; after an
        // overflow, every execute fails until COM_STMT_RESET.
        let result = if stmt.long_data.overflow {
            self.send_err(1, &long_data_too_large()).await
        } else {
            let long = self.stmts.take_long_data(&mut stmt);
            let body = ExecuteBody::Whole(&payload);
            self.execute_statement(body, &mut stmt, long.packets).await
        };
        self.stmts.put_back(id, stmt);
        result
    }

    pub(super) async fn execute_statement(
        &mut self,
        body: ExecuteBody<'_>,
        stmt: &mut ClientStatement,
        long_data: Vec<BytesMut>,
    ) -> Result<(), End> {
        let target = self.statement_target(stmt.class.route);
        let ready = if target == Target::Replica && self.consistency != Consistency::Eventual {
            self.prepare_causal_read(self.consistency).await?
        } else {
            self.prepare_conn(target).await?
        };
        if !ready {
            return Ok(());
        }
        let backend_id = match self.prepared_on_held(stmt).await? {
            Some(b) => b,
            None => return Ok(()),
        };
        // Long data waits in Gantry until the connection is known.
        let held = self.binding.held_mut().expect("prepare_conn sets held");
        for mut packet in long_data {
            set_statement_id(&mut packet, backend_id);
            if let Err(e) = held.conn.send(&packet).await {
                let backend = held.backend.clone();
                return self.backend_failed(&backend, &e, true, 1).await.map(|_| ());
            }
        }
        let is_read = stmt.class.route == Route::Replica;
        let (result, flags) = match body {
            ExecuteBody::Whole(payload) => {
                let mut out = std::mem::take(&mut self.scratch);
                if !rewrite_execute(payload, backend_id, stmt, &mut out) {
                    self.scratch = out;
                    return self
                        .send_err(1, &MyError::malformed("COM_STMT_EXECUTE"))
                        .await;
                }
                let result = self.relay(&out, Expect::Execute, is_read).await;
                self.scratch = out;
                (result, payload[5])
            }
            ExecuteBody::Streamed { flags } => {
                (self.stream_execute(backend_id, is_read).await, flags)
            }
        };
        let opened_cursor =
            flags & CURSOR_READ_ONLY != 0 && self.last_status & status::CURSOR_EXISTS != 0;
        let Some(reported) = result? else {
            return Ok(());
        };
        if reported.ok && opened_cursor {
            stmt.cursor = Some(backend_id);
            self.binding.set_pin(pin::CURSOR, true);
        }
        self.statement_effects(&stmt.class, &stmt.sql, reported);
        Ok(())
    }
}

/// How the COM_STMT_EXECUTE reaches the backend.
pub(super) enum ExecuteBody<'a> {
    /// Buffered whole: its payload, rewritten for the backend.
    Whole(&'a [u8]),
    /// Longer than one packet, at the head of the client buffer: passed on
    /// as it arrives (see `long`), with only its statement id changed.
    Streamed { flags: u8 },
}

impl Session {
    /// The held connection's server id for `stmt`, preparing it there if
    /// needed. `None`: the client has been sent an error.
    async fn prepared_on_held(&mut self, stmt: &ClientStatement) -> Result<Option<u32>, End> {
        let held = self.binding.held_mut().expect("prepare_conn sets held");
        if let Some(b) = held.conn.prepared_id(stmt.key) {
            return Ok(Some(b));
        }
        let request = super::command_packet(cmd::STMT_PREPARE, &stmt.sql);
        let mut out = std::mem::take(&mut self.scratch);
        let result = held.conn.prepare(&request, stmt.key, &mut out).await;
        let backend = held.backend.clone();
        let outcome = match result {
            Ok(sc) => match sc.prepared.filter(|_| !sc.error) {
                Some(info) => Ok(info.statement_id),
                None => Err(Ok(crate::backend::conn::last_error(&out))),
            },
            Err(e) => Err(Err(e)),
        };
        self.scratch = out;
        match outcome {
            Ok(b) => Ok(Some(b)),
            Err(Ok(err)) => {
                self.send_err(1, &err).await?;
                Ok(None)
            }
            Err(Err(e)) => self
                .backend_failed(&backend, &e, true, 1)
                .await
                .map(|_| None),
        }
    }

    /// COM_STMT_FETCH: only where the cursor is open.
    pub(super) async fn stmt_fetch(&mut self, request: &[u8]) -> Result<(), End> {
        let id = statement_id(&request[4..]).unwrap_or(0);
        let cursor = self.stmts.get_mut(id).and_then(|s| s.cursor);
        let (Some(backend_id), true) = (cursor, self.binding.is_held()) else {
            let err = MyError::new(
                1421,
                "HY000",
                format!("The statement ({id}) has no open cursor."),
            );
            return self.send_err(1, &err).await;
        };
        let mut packet = request.to_vec();
        set_statement_id(&mut packet, backend_id);
        self.relay(&packet, Expect::Fetch, false).await?;
        Ok(())
    }

    /// COM_STMT_RESET: drops pending long data; closes an open cursor.
    pub(super) async fn stmt_reset(&mut self, request: &[u8]) -> Result<(), End> {
        let id = statement_id(&request[4..]).unwrap_or(0);
        let Some(mut stmt) = self.stmts.remove(id) else {
            return self
                .send_err(1, &unknown_statement(id, "mysqld_stmt_reset"))
                .await;
        };
        let cursor = stmt.cursor.take();
        self.stmts.take_long_data(&mut stmt);
        self.stmts.put_back(id, stmt);
        match cursor {
            Some(backend_id) if self.binding.is_held() => {
                let mut packet = request.to_vec();
                set_statement_id(&mut packet, backend_id);
                self.relay(&packet, Expect::Single, false).await?;
            }
            _ => self.ok(1).await?,
        }
        self.update_cursor_pin();
        Ok(())
    }

    /// COM_STMT_CLOSE (no response). The backend statement is closed on
    /// the held connection unless another statement of the session shares
    /// it (statements count against the server's global limit); other
    /// connections close theirs when the session gives them back.
    pub(super) async fn stmt_close(&mut self, request: &[u8]) {
        let id = statement_id(&request[4..]).unwrap_or(0);
        if let Some(stmt) = self.stmts.close(id) {
            let shared = self.stmts.uses_key(stmt.key);
            if let (false, Some(h)) = (shared, self.binding.held_mut()) {
                if let Some(backend_id) = h.conn.prepared_id(stmt.key) {
                    if h.conn.close_statement(backend_id).await.is_err() {
                        self.discard_held();
                    }
                }
            }
        }
        self.update_cursor_pin();
    }

    /// COM_STMT_SEND_LONG_DATA (no response): kept for the next execute.
    pub(super) fn stmt_long_data(&mut self, request: BytesMut) {
        let max_packet = self.ctx.topology.load().max_packet();
        self.stmts.add_long_data(request, max_packet);
    }

    fn update_cursor_pin(&mut self) {
        let open = self.stmts.any_cursor();
        self.binding.set_pin(pin::CURSOR, open);
    }
}
