//! A COM_QUERY longer than one packet (16 MiB and more): streamed to the
//! backend as it arrives, so a client's memory in Gantry stays bounded
//! whatever it sends. It is not inspected, so it runs on the primary (or
//! the pinned connection); the server applies its own max_allowed_packet
//! (ERROR 1153, then it closes the connection, and so does Gantry).

use bytes::Buf;
use std::sync::atomic::Ordering;

use super::{End, Session};
use crate::protocol::packet::{PacketSpan, ReadInto};
use crate::protocol::Expect;
use crate::router;

/// ER_NET_PACKET_TOO_LARGE.
const PACKET_TOO_LARGE: u16 = 1153;

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

    /// Moves the long packet from the client to the held connection (or
    /// drops it, with `send` false) in buffer-sized pieces. Returns whether
    /// every byte reached the backend.
    async fn pass_on(&mut self, span: &mut PacketSpan, send: bool) -> Result<bool, End> {
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
