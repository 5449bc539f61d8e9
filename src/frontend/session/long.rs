//! A COM_QUERY longer than one packet (16 MiB and more): streamed to the
//! backend as it arrives, so a client's memory in Gantry stays bounded
//! whatever it sends. It is not inspected, so it runs on the primary (or
//! the pinned connection); the server applies its own max_allowed_packet
//! (ERROR 1153, then it closes the connection, and so does Gantry).
//! A COM_STMT_EXECUTE longer than one packet is streamed the same way,
//! with its statement id changed on the way, where it goes by its
//! statement's route. Other commands (and an execute that relies on
//! parameter types bound earlier, which Gantry must insert) are buffered
//! whole, so Gantry refuses one that no backend would accept as soon as its
//! headers announce it, the way the server does.

use bytes::Buf;
use std::sync::atomic::Ordering;

use super::prepared::{unknown_statement, ExecuteBody};
use super::{effects, End, Session};
use crate::frontend::stmt::{long_data_too_large, set_statement_id, statement_id};
use crate::protocol::packet::{announced_payload, complete_len, PacketSpan, ReadInto};
use crate::protocol::reply::MyError;
use crate::protocol::Expect;
use crate::router;

/// ER_NET_PACKET_TOO_LARGE.
const PACKET_TOO_LARGE: u16 = 1153;

fn packet_too_large() -> MyError {
    MyError::new(
        PACKET_TOO_LARGE,
        "08S01",
        "Got a packet bigger than 'max_allowed_packet' bytes",
    )
}

impl Session {
    pub(super) async fn long_query(&mut self) -> Result<(), End> {
        self.info.queries.fetch_add(1, Ordering::Relaxed);
        let class = router::uninspected();
        let target = self.target_for(&class);
        let ready = match self.use_target(target).await {
            Ok(()) => self.sync_state().await,
            Err(e) => Err(e),
        };
        let mut span = PacketSpan::default();
        if let Err(e) = ready {
            self.pass_on(&mut span, false).await?;
            return self.send_err(span.last_seq.wrapping_add(1), &e).await;
        }
        // Even when a write failed, the server may have answered first
        // (ERROR 1153 before it closed): read what it said.
        self.pass_on(&mut span, true).await?;
        self.reader.shrink();
        let reported = self
            .relay_after(&[], Expect::Query, false, Some(span.last_seq))
            .await?;
        match reported {
            Some(r) if r.code == PACKET_TOO_LARGE => {
                // The server closed the connection after refusing it.
                self.discard_held();
                Err(End)
            }
            Some(r) => {
                self.statement_effects(&class, &[], r);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A COM_STMT_EXECUTE longer than one packet, at the head of the
    /// client buffer.
    pub(super) async fn long_execute(&mut self) -> Result<(), End> {
        self.info.queries.fetch_add(1, Ordering::Relaxed);
        // Answers given before the command was passed on wait for its end.
        self.streaming = Some(PacketSpan::default());
        let result = self.long_execute_streaming().await;
        if let Some(mut span) = self.streaming.take() {
            self.pass_on(&mut span, false).await?;
        }
        result
    }

    async fn long_execute_streaming(&mut self) -> Result<(), End> {
        // Header, command, statement id, flags, iteration count.
        self.read_at_least(4 + 10).await?;
        let id = statement_id(&self.reader.buf[4..]).unwrap_or(0);
        let flags = self.reader.buf[9];
        let Some(mut stmt) = self.stmts.remove(id) else {
            return self
                .send_err(1, &unknown_statement(id, "mysqld_stmt_execute"))
                .await;
        };
        let n = usize::from(stmt.params);
        let mut bound = false;
        if n > 0 {
            // The null bitmap, the "types bound" flag, and the types.
            let flag_at = 4 + 10 + n.div_ceil(8);
            self.read_at_least(flag_at + 1).await?;
            bound = self.reader.buf[flag_at] == 1;
            if bound {
                self.read_at_least(flag_at + 1 + 2 * n).await?;
                let types = &self.reader.buf[flag_at + 1..flag_at + 1 + 2 * n];
                stmt.param_types = Some(types.to_vec());
            }
        }
        let result = if stmt.long_data.overflow {
            self.send_err(1, &long_data_too_large()).await
        } else if n > 0 && !bound && stmt.param_types.is_some() {
            // The backend may need the types from an earlier execute, which
            // changes the packet's framing: buffered whole (bounded by the
            // backends' max_allowed_packet).
            self.stmts.put_back(id, stmt);
            self.streaming = None;
            return self.buffer_whole_command().await;
        } else {
            let long = self.stmts.take_long_data(&mut stmt);
            let body = ExecuteBody::Streamed { flags };
            self.execute_statement(body, &mut stmt, long.packets).await
        };
        self.stmts.put_back(id, stmt);
        result
    }

    /// Passes the streamed execute at the head of the client buffer to the
    /// held connection under the backend's statement id, then relays the
    /// answer.
    pub(super) async fn stream_execute(
        &mut self,
        backend_id: u32,
        is_read: bool,
    ) -> Result<Option<effects::Reported>, End> {
        set_statement_id(&mut self.reader.buf, backend_id);
        let mut span = self.streaming.take().unwrap_or_default();
        self.pass_on(&mut span, true).await?;
        self.reader.shrink();
        let reported = self
            .relay_after(&[], Expect::Execute, is_read, Some(span.last_seq))
            .await?;
        if reported
            .as_ref()
            .is_some_and(|r| r.code == PACKET_TOO_LARGE)
        {
            // The server closed the connection after refusing it.
            self.discard_held();
            return Err(End);
        }
        Ok(reported)
    }

    /// Reads until the client buffer holds at least `n` bytes.
    async fn read_at_least(&mut self, n: usize) -> Result<(), End> {
        while self.reader.buf.len() < n {
            self.reader.buf.reserve(n - self.reader.buf.len());
            if self.client.read_into(&mut self.reader.buf).await? == 0 {
                return Err(End);
            }
        }
        Ok(())
    }

    /// Buffers the command at the head of the client buffer whole, then
    /// runs it as any other.
    async fn buffer_whole_command(&mut self) -> Result<(), End> {
        let max_packet = self.ctx.topology.load().max_packet();
        loop {
            if announced_payload(&self.reader.buf) >= max_packet {
                return self.refuse_too_large().await;
            }
            if let Some(n) = complete_len(&self.reader.buf) {
                let result = self.dispatch(n).await;
                self.reader.shrink();
                return result;
            }
            self.reader.buf.reserve(64 * 1024);
            if self.client.read_into(&mut self.reader.buf).await? == 0 {
                return Err(End);
            }
        }
    }

    /// A command at least as large as the backends' max_allowed_packet:
    /// read to its end without keeping it (so that the client, still
    /// writing, reads the answer), refused with ERROR 1153, and the
    /// connection closed, as the server does. A transaction open on a
    /// held connection is rolled back with it.
    pub(super) async fn refuse_too_large(&mut self) -> Result<(), End> {
        let mut span = PacketSpan::default();
        self.pass_on(&mut span, false).await?;
        self.reader.shrink();
        self.send_err(span.last_seq.wrapping_add(1), &packet_too_large())
            .await?;
        self.discard_held();
        Err(End)
    }

    /// Moves the long packet from the client to the held connection (or
    /// drops it, with `send` false) in buffer-sized pieces. Returns whether
    /// every byte reached the backend.
    pub(super) async fn pass_on(&mut self, span: &mut PacketSpan, send: bool) -> Result<bool, End> {
        let mut backend_ok = send;
        loop {
            let n = span.advance(&self.reader.buf);
            if backend_ok && n > 0 {
                if let Some(h) = self.binding.held_mut() {
                    backend_ok = h.conn.send(&self.reader.buf[..n]).await.is_ok();
                }
            }
            self.reader.buf.advance(n);
            if span.done {
                return Ok(backend_ok);
            }
            if self.reader.buf.capacity() - self.reader.buf.len() < 4096 {
                self.reader.buf.reserve(64 * 1024);
            }
            if self.client.read_into(&mut self.reader.buf).await? == 0 {
                // The client left mid-statement: what reached the backend
                // is an incomplete packet; the connection is unusable.
                self.discard_held();
                return Err(End);
            }
        }
    }
}
