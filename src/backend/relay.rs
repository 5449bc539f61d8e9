//! Streams one command to a backend connection and its response back to the
//! client, unchanged. Each read from the backend is followed by one write of
//! every complete-enough byte to the client; nothing is decoded but the
//! packet headers and terminators (see `ResponseScanner`).

use bytes::Buf;
use std::io;
use tokio::io::AsyncReadExt;

use super::{BackendConn, BackendRuntime};
use crate::frontend::client_stream::ClientStream;
use crate::protocol::packet::{header, PacketReader};
use crate::protocol::track;
use crate::protocol::{ResponseScanner, ScanState};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug)]
pub enum ForwardError {
    /// The backend failed or sent garbage. `clean`: the client stream is at a
    /// packet boundary, so an ERR packet with `next_seq` may still be sent.
    Backend {
        error: io::Error,
        clean: bool,
        next_seq: u8,
    },
    /// The client went away or sent garbage.
    Client(io::Error),
    /// The client closed its connection while the backend was still
    /// working on the statement (which must be stopped there).
    ClientGone,
}

/// What may cut a backend wait short besides the backend itself.
pub struct Watch<'a> {
    /// Notified when the health loop marks the backend down.
    pub backend_down: &'a Notify,
    pub backend: &'a BackendRuntime,
    /// `backend-read-timeout-ms`: the longest silence of the backend.
    pub read_timeout: Option<Duration>,
}

/// Why a wait for backend bytes ended.
enum Wait {
    Read(io::Result<usize>),
    ClientGone,
    BackendDown,
    /// Marked down earlier, and silent since.
    StillSilent,
    TimedOut,
}

/// A statement whose connection delivered bytes this recently when its
/// backend was marked down gets this long more before it fails.
const DOWN_GRACE: Duration = Duration::from_millis(1000);

/// A backend marked down or silent too long: the statement fails.
fn backend_gone(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

/// Sequence id of the last physical packet in a complete request.
pub fn last_seq(request: &[u8]) -> u8 {
    let mut pos = 0;
    let mut seq = 0;
    while pos + 4 <= request.len() {
        let (len, s) = header(&request[pos..]);
        seq = s;
        pos += 4 + len;
    }
    seq
}

impl BackendConn {
    /// Sends `request` (complete packets, headers included; empty when it
    /// was sent already) and relays the response to the client, scanned by
    /// `sc` (made by `scanner`), which then knows the final status flags
    /// and the session-tracking data.
    pub async fn forward(
        &mut self,
        client: &mut ClientStream,
        client_reader: &mut PacketReader,
        request: &[u8],
        sc: &mut ResponseScanner,
        watch: &Watch<'_>,
    ) -> Result<(), ForwardError> {
        forward(client, client_reader, self, request, sc, watch).await
    }
}

async fn forward(
    client: &mut ClientStream,
    client_reader: &mut PacketReader,
    conn: &mut BackendConn,
    request: &[u8],
    sc: &mut ResponseScanner,
    watch: &Watch<'_>,
) -> Result<(), ForwardError> {
    if !request.is_empty() {
        sc.last_seq = last_seq(request);
    }
    if watch.backend.is_down() {
        return Err(ForwardError::Backend {
            error: backend_gone("the backend is marked down"),
            clean: true,
            next_seq: sc.last_seq.wrapping_add(1),
        });
    }
    let backend_err = |sc: &ResponseScanner, error: io::Error| ForwardError::Backend {
        error,
        clean: sc.at_packet_boundary(),
        next_seq: sc.last_seq.wrapping_add(1),
    };
    if let Err(e) = conn.stream.write_all(request).await {
        return Err(backend_err(sc, e));
    }
    let mut last_progress = Instant::now();
    let mut suspect: Option<Instant> = None;
    loop {
        let (n, state) = match sc.scan(&conn.reader.buf) {
            Ok(r) => r,
            Err(e) => {
                return Err(backend_err(
                    sc,
                    io::Error::new(io::ErrorKind::InvalidData, e),
                ))
            }
        };
        if let Some(start) = sc.take_rewrite() {
            // An OK packet with tracking data the client would not get
            // directly: the bytes before it, then the packet rewritten (in
            // the connection's reused buffer).
            let mut out = std::mem::take(&mut conn.rewrite);
            out.clear();
            out.extend_from_slice(&conn.reader.buf[..start]);
            let packet = &conn.reader.buf[start..n];
            let (_, seq) = header(packet);
            let payload = &packet[4..];
            let at = out.len();
            out.extend_from_slice(&[0, 0, 0, seq]);
            match track::ok_layout(payload) {
                Some(layout) => track::filter_state(payload, &layout, sc.view.as_deref(), &mut out),
                None => out.extend_from_slice(payload),
            }
            // OK packets are far below 16 MiB: one physical packet.
            let len = (out.len() - at - 4) as u32;
            out[at..at + 3].copy_from_slice(&len.to_le_bytes()[..3]);
            let written = client.write_all(&out).await;
            conn.rewrite = out;
            written.map_err(ForwardError::Client)?;
            conn.reader.buf.advance(n);
            if state == ScanState::Done {
                return Ok(());
            }
            continue;
        }
        if n > 0 {
            client
                .write_all(&conn.reader.buf[..n])
                .await
                .map_err(ForwardError::Client)?;
            conn.reader.buf.advance(n);
        }
        match state {
            ScanState::Done => return Ok(()),
            ScanState::LocalInfile => {
                let seq = relay_local_infile(client, client_reader, conn).await?;
                sc.resume_after_local_infile(seq);
            }
            ScanState::More => {
                if conn.reader.buf.capacity() - conn.reader.buf.len() < 4096 {
                    conn.reader.buf.reserve(64 * 1024);
                }
                let wait = {
                    let timeout = async {
                        match watch.read_timeout {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending().await,
                        }
                    };
                    let suspect_over = async {
                        match suspect {
                            Some(at) => tokio::time::sleep_until(at.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        r = conn.stream.read_buf(&mut conn.reader.buf) => Wait::Read(r),
                        _ = client.closed() => Wait::ClientGone,
                        _ = watch.backend_down.notified() => Wait::BackendDown,
                        _ = suspect_over => Wait::StillSilent,
                        _ = timeout => Wait::TimedOut,
                    }
                };
                match wait {
                    Wait::Read(Ok(0)) => {
                        return Err(backend_err(sc, io::ErrorKind::UnexpectedEof.into()))
                    }
                    Wait::Read(Ok(_)) => {
                        last_progress = Instant::now();
                        suspect = None;
                    }
                    Wait::Read(Err(e)) => return Err(backend_err(sc, e)),
                    Wait::ClientGone => return Err(ForwardError::ClientGone),
                    // Marked down while this connection still delivers: a
                    // probe lost to load, not a hung server. It fails only
                    // if it stays silent a little longer.
                    Wait::BackendDown if last_progress.elapsed() < DOWN_GRACE => {
                        suspect = Some(last_progress + DOWN_GRACE);
                    }
                    Wait::BackendDown | Wait::StillSilent => {
                        return Err(backend_err(sc, backend_gone("the backend was marked down")))
                    }
                    Wait::TimedOut => {
                        return Err(backend_err(
                            sc,
                            backend_gone("backend-read-timeout-ms passed"),
                        ))
                    }
                }
            }
        }
    }
}

/// LOCAL INFILE: the client sends the file as packets ending with an empty
/// one; they go to the backend unchanged. Returns the last sequence id.
async fn relay_local_infile(
    client: &mut ClientStream,
    client_reader: &mut PacketReader,
    conn: &mut BackendConn,
) -> Result<u8, ForwardError> {
    loop {
        let n = client_reader
            .fill_packet(client)
            .await
            .map_err(ForwardError::Client)?
            .ok_or_else(|| ForwardError::Client(io::ErrorKind::UnexpectedEof.into()))?;
        let packet = client_reader.buf.split_to(n);
        let (len, seq) = header(&packet);
        conn.stream
            .write_all(&packet)
            .await
            .map_err(|error| ForwardError::Backend {
                error,
                clean: false,
                next_seq: seq.wrapping_add(1),
            })?;
        if len == 0 {
            return Ok(seq);
        }
    }
}
