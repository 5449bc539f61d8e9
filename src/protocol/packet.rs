//! Packet framing: 3-byte little-endian length, 1-byte sequence id, payload.
//! Payloads of 0xFFFFFF bytes continue in the next packet.

use bytes::{BufMut, BytesMut};
use std::borrow::Cow;
use std::io;
use tokio::io::AsyncReadExt;

/// Largest payload of one physical packet; a payload this long continues.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// `read_payload` serves the connection phase only: logins and auth
/// answers are far smaller than this.
pub const LOGIN_PACKET_LIMIT: usize = 64 * 1024;
/// Refuse client commands larger than this (the server's own limit is
/// max_allowed_packet; this only bounds Gantry's buffer).
pub const MAX_COMMAND: usize = 1 << 30;

#[inline]
pub fn header(buf: &[u8]) -> (usize, u8) {
    (
        buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16,
        buf[3],
    )
}

/// Length in bytes (headers included) of the first complete logical packet
/// in `buf`, or `None` if more bytes are needed.
pub fn complete_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        if buf.len() < pos + 4 {
            return None;
        }
        let (len, _) = header(&buf[pos..]);
        pos += 4 + len;
        if buf.len() < pos {
            return None;
        }
        if len < MAX_PAYLOAD {
            return Some(pos);
        }
    }
}

/// Payload bytes announced by the headers of the first logical packet in
/// `buf` that have arrived so far.
pub fn announced_payload(buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut total = 0;
    while buf.len() >= pos + 4 {
        let (len, _) = header(&buf[pos..]);
        total += len;
        if len < MAX_PAYLOAD {
            break;
        }
        pos += 4 + len;
    }
    total
}

/// Appends `payload` framed as packet(s) starting at sequence id `seq`;
/// returns the next sequence id.
pub fn put_packet(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.reserve(4 + n);
        out.put_uint_le(n as u64, 3);
        out.put_u8(seq);
        out.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}

/// Appends `v` as a length-encoded integer.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    match v {
        0..=250 => out.put_u8(v as u8),
        251..=0xffff => {
            out.put_u8(0xfc);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xff_ffff => {
            out.put_u8(0xfd);
            out.put_uint_le(v, 3);
        }
        _ => {
            out.put_u8(0xfe);
            out.put_u64_le(v);
        }
    }
}

/// Reads a length-encoded integer; returns the value and its size in bytes.
pub fn lenenc_int(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let size = match first {
        0xfc => 3,
        0xfd => 4,
        0xfe => 9,
        0xfb | 0xff => return None,
        v => return Some((v as u64, 1)),
    };
    if buf.len() < size {
        return None;
    }
    let mut v = 0u64;
    for (i, b) in buf[1..size].iter().enumerate() {
        v |= (*b as u64) << (8 * i);
    }
    Some((v, size))
}

/// A byte source packets are read from: a socket, or the client stream
/// that may be compressed.
#[allow(async_fn_in_trait)]
pub trait ReadInto {
    /// Appends what is available to `buf`; 0 at end of stream.
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize>;
}

impl ReadInto for tokio::net::TcpStream {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_buf(buf).await
    }
}

/// What is at the head of a client's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A complete command of this many bytes (headers included).
    Whole(usize),
    /// The start of a COM_QUERY longer than one physical packet.
    LongQuery,
    /// The start of a COM_STMT_EXECUTE longer than one physical packet.
    LongExecute,
    /// The start of a command whose headers announce at least the
    /// backends' max_allowed_packet: the server would refuse it (1153).
    TooLarge,
}

/// Follows a logical packet that is passed on in pieces: which bytes belong
/// to it, where it ends, its last sequence id.
#[derive(Debug, Default)]
pub struct PacketSpan {
    /// Payload bytes of the current physical packet still to come.
    remaining: usize,
    /// The current physical packet is full size: another one follows.
    continued: bool,
    started: bool,
    pub done: bool,
    pub last_seq: u8,
}

impl PacketSpan {
    /// How many leading bytes of `buf` (which continues where the last call
    /// stopped) belong to the packet; a header split across calls is left
    /// in `buf` until it is whole.
    pub fn advance(&mut self, buf: &[u8]) -> usize {
        let mut pos = 0;
        while !self.done {
            if self.remaining > 0 {
                let n = self.remaining.min(buf.len() - pos);
                pos += n;
                self.remaining -= n;
                if self.remaining > 0 {
                    break;
                }
            }
            if self.started && !self.continued {
                self.done = true;
                break;
            }
            if buf.len() - pos < 4 {
                break;
            }
            let (len, seq) = header(&buf[pos..]);
            pos += 4;
            self.started = true;
            self.last_seq = seq;
            self.remaining = len;
            self.continued = len == MAX_PAYLOAD;
        }
        pos
    }
}

/// Buffered reader of whole logical packets from one socket half, reusing
/// its buffer across packets.
pub struct PacketReader {
    pub buf: BytesMut,
}

impl Default for PacketReader {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketReader {
    pub fn new() -> Self {
        Self {
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// Waits until one complete logical packet is buffered and returns its
    /// length (headers included). `Ok(None)` on a clean EOF between packets.
    pub async fn fill_packet<R: ReadInto>(&mut self, src: &mut R) -> io::Result<Option<usize>> {
        self.fill_packet_limited(src, MAX_COMMAND).await
    }

    /// Like `fill_packet`, refusing packets larger than `limit` bytes (login
    /// packets are small; an unauthenticated peer must not make Gantry
    /// buffer a gigabyte).
    pub async fn fill_packet_limited<R: ReadInto>(
        &mut self,
        src: &mut R,
        limit: usize,
    ) -> io::Result<Option<usize>> {
        Ok(match self.fill(src, limit, None).await? {
            Some(Incoming::Whole(n)) => Some(n),
            // Not reported when not asked for.
            Some(Incoming::LongQuery | Incoming::LongExecute | Incoming::TooLarge) | None => None,
        })
    }

    /// Like `fill_packet` for a client command, except that a COM_QUERY or
    /// COM_STMT_EXECUTE longer than one physical packet is reported as soon
    /// as its first bytes are in (it is streamed to the backend),
    /// and so is a command announcing `max_packet` payload bytes or more
    /// (MariaDB refuses a payload of max_allowed_packet bytes).
    pub async fn fill_command<R: ReadInto>(
        &mut self,
        src: &mut R,
        max_packet: usize,
    ) -> io::Result<Option<Incoming>> {
        self.fill(src, MAX_COMMAND, Some(max_packet)).await
    }

    async fn fill<R: ReadInto>(
        &mut self,
        src: &mut R,
        limit: usize,
        command_limit: Option<usize>,
    ) -> io::Result<Option<Incoming>> {
        loop {
            if let Some(max_packet) = command_limit {
                if announced_payload(&self.buf) >= max_packet {
                    return Ok(Some(Incoming::TooLarge));
                }
                if self.buf.len() >= 5 && header(&self.buf).0 == MAX_PAYLOAD {
                    match self.buf[4] {
                        0x03 => return Ok(Some(Incoming::LongQuery)),
                        0x17 => return Ok(Some(Incoming::LongExecute)),
                        _ => {}
                    }
                }
            }
            if let Some(n) = complete_len(&self.buf) {
                return Ok(Some(Incoming::Whole(n)));
            }
            if self.buf.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "packet larger than allowed",
                ));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if src.read_into(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Gives a buffer that grew for one large packet back, keeping what it
    /// holds: memory per idle client stays small.
    pub fn shrink(&mut self) {
        const KEEP: usize = 256 * 1024;
        if self.buf.capacity() > KEEP && self.buf.len() < KEEP / 4 {
            let mut fresh = BytesMut::with_capacity(16 * 1024);
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
    }

    /// Reads one logical packet and returns its payload (continuations
    /// joined) and the sequence id of its last physical packet.
    pub async fn read_payload<R: ReadInto>(&mut self, src: &mut R) -> io::Result<(Vec<u8>, u8)> {
        let n = self
            .fill_packet_limited(src, LOGIN_PACKET_LIMIT)
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let raw = self.buf.split_to(n);
        let (payload, seq) = join_payload(&raw);
        Ok((payload.into_owned(), seq))
    }
}

/// Joins the payloads of a complete logical packet (headers included).
pub fn join_payload(raw: &[u8]) -> (Cow<'_, [u8]>, u8) {
    // One packet (nearly every command): its payload as it is, no copy.
    if raw.len() >= 4 {
        let (len, seq) = header(raw);
        if len < MAX_PAYLOAD && 4 + len == raw.len() {
            return (Cow::Borrowed(&raw[4..]), seq);
        }
    }
    let mut out = Vec::with_capacity(raw.len().saturating_sub(4));
    let mut pos = 0;
    let mut seq = 0;
    while pos + 4 <= raw.len() {
        let (len, s) = header(&raw[pos..]);
        seq = s;
        let end = (pos + 4 + len).min(raw.len());
        out.extend_from_slice(&raw[pos + 4..end]);
        pos = end;
    }
    (Cow::Owned(out), seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_joins_large_payloads() {
        let payload = vec![7u8; MAX_PAYLOAD + 10];
        let mut out = BytesMut::new();
        let next = put_packet(&mut out, 3, &payload);
        assert_eq!(next, 5);
        assert_eq!(complete_len(&out), Some(out.len()));
        assert_eq!(complete_len(&out[..out.len() - 1]), None);
        let (joined, seq) = join_payload(&out);
        assert_eq!(joined, payload);
        assert_eq!(seq, 4);
    }

    #[test]
    fn exact_max_payload_needs_empty_terminator() {
        let payload = vec![1u8; MAX_PAYLOAD];
        let mut out = BytesMut::new();
        assert_eq!(put_packet(&mut out, 0, &payload), 2);
        assert_eq!(out.len(), MAX_PAYLOAD + 8);
        assert_eq!(complete_len(&out[..MAX_PAYLOAD + 4]), None);
        assert_eq!(complete_len(&out), Some(out.len()));
    }

    #[test]
    fn a_packet_span_follows_continuations_in_pieces() {
        let mut raw = BytesMut::new();
        let payload = vec![7u8; MAX_PAYLOAD + 10];
        put_packet(&mut raw, 3, &payload);
        raw.extend_from_slice(b"next");
        let mut span = PacketSpan::default();
        let mut taken = 0;
        // Feed it in uneven pieces, as sockets deliver.
        for chunk in [2usize, 5, 1000, MAX_PAYLOAD, 3, 100] {
            let end = (taken + chunk).min(raw.len());
            let n = span.advance(&raw[taken..end]);
            taken += n;
            if span.done {
                break;
            }
        }
        while !span.done {
            let n = span.advance(&raw[taken..]);
            taken += n;
        }
        assert_eq!(taken, raw.len() - 4, "the next command's bytes stay");
        assert_eq!(span.last_seq, 4);
        // An exact multiple ends with an empty packet.
        let mut raw = BytesMut::new();
        put_packet(&mut raw, 0, &vec![1u8; MAX_PAYLOAD]);
        let mut span = PacketSpan::default();
        assert_eq!(span.advance(&raw), raw.len());
        assert!(span.done);
        assert_eq!(span.last_seq, 1);
    }

    #[test]
    fn announced_payload_counts_the_headers_that_arrived() {
        let mut raw = BytesMut::new();
        put_packet(&mut raw, 0, &vec![1u8; MAX_PAYLOAD + 10]);
        assert_eq!(announced_payload(&raw[..3]), 0);
        assert_eq!(announced_payload(&raw[..4]), MAX_PAYLOAD);
        assert_eq!(announced_payload(&raw[..MAX_PAYLOAD + 4]), MAX_PAYLOAD);
        assert_eq!(announced_payload(&raw[..MAX_PAYLOAD + 8]), MAX_PAYLOAD + 10);
        // The next command's header is not counted.
        raw.extend_from_slice(&[5, 0, 0, 0]);
        assert_eq!(announced_payload(&raw), MAX_PAYLOAD + 10);
    }

    #[test]
    fn lenenc_values() {
        assert_eq!(lenenc_int(&[0x05]), Some((5, 1)));
        assert_eq!(lenenc_int(&[0xfc, 0x01, 0x02]), Some((0x0201, 3)));
        assert_eq!(lenenc_int(&[0xfd, 1, 0, 1]), Some((0x010001, 4)));
        assert_eq!(lenenc_int(&[0xfe, 1, 0, 0, 0, 0, 0, 0, 0]), Some((1, 9)));
        assert_eq!(lenenc_int(&[0xfe, 1]), None);
        assert_eq!(lenenc_int(&[]), None);
    }
}
