//! The client's byte stream: plain TCP, or the MySQL compression protocol
//! (CLIENT_COMPRESS) when the client asked for it. Compressed frames carry
//! a 7-byte header (compressed length, sequence id, uncompressed length; an
//! uncompressed length of 0 means the payload was sent as is) and may hold
//! several packets or part of one, so the layer sits below packet framing.

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use tokio::io::AsyncReadExt;

use super::transport::Transport;

use crate::protocol::packet::ReadInto;

/// Payloads shorter than this are not worth compressing.
const MIN_COMPRESS: usize = 50;
const MAX_FRAME: usize = 0xFF_FFFF;

pub struct ClientStream {
    stream: Transport,
    compression: Option<Box<Compression>>,
}

/// Compression protocol state.
struct Compression {
    /// Received bytes not yet decompressed.
    raw: BytesMut,
    /// Next compressed-frame sequence id.
    seq: u8,
    out: Vec<u8>,
}

impl ClientStream {
    pub fn new(stream: Transport) -> Self {
        Self {
            stream,
            compression: None,
        }
    }

    /// Resolves when the client has closed its side of the connection.
    /// Bytes it sent ahead (a pipelined command) stay unread, and then this
    /// never resolves.
    pub async fn closed(&self) {
        let mut probe = [0u8; 1];
        // On TLS the socket is peeked below the encryption: a close_notify
        // or any other record counts as data, only the end of the stream
        // as closed.
        match self.stream.tcp().peek(&mut probe).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.stream
    }

    /// From now on every frame is compressed (after the login's OK).
    pub fn enable_compression(&mut self) {
        self.compression = Some(Box::new(Compression::new()));
    }

    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self.compression.as_mut() {
            None => self.stream.send(data).await,
            Some(c) => {
                c.frame(data)?;
                self.stream.send(&c.out).await
            }
        }
    }
}

impl ReadInto for ClientStream {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let Some(c) = self.compression.as_mut() else {
            return self.stream.read_buf(buf).await;
        };
        loop {
            if let Some(n) = c.take_frame(buf)? {
                return Ok(n);
            }
            if self.stream.read_buf(&mut c.raw).await? == 0 {
                return Ok(0);
            }
        }
    }
}

/// The compression layer without a socket, for the fuzz targets: bytes as
/// received go in through `receive`, decompressed payloads come out of
/// `take_frame`, and `frame` is what Gantry would send.
#[doc(hidden)]
pub struct FrameCodec(Compression);

impl Default for FrameCodec {
    fn default() -> Self {
        Self(Compression::new())
    }
}

impl FrameCodec {
    pub fn receive(&mut self, bytes: &[u8]) {
        self.0.raw.extend_from_slice(bytes);
    }

    pub fn take_frame(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        self.0.take_frame(buf)
    }

    pub fn frame(&mut self, data: &[u8]) -> io::Result<&[u8]> {
        self.0.frame(data)?;
        Ok(&self.0.out)
    }
}

impl Compression {
    fn new() -> Self {
        Self {
            raw: BytesMut::with_capacity(16 * 1024),
            seq: 0,
            out: Vec::new(),
        }
    }

    /// Moves the payload of one complete received frame into `buf`.
    fn take_frame(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        if self.raw.len() < 7 {
            return Ok(None);
        }
        let clen = u24(&self.raw[0..3]);
        if self.raw.len() < 7 + clen {
            return Ok(None);
        }
        let ulen = u24(&self.raw[4..7]);
        let frame = self.raw.split_to(7 + clen);
        self.seq = frame[3].wrapping_add(1);
        let payload = &frame[7..];
        if ulen == 0 {
            buf.extend_from_slice(payload);
            return Ok(Some(payload.len()));
        }
        inflate(payload, ulen, buf)?;
        Ok(Some(ulen))
    }

    /// Frames `data` into `self.out`.
    fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.clear();
        for chunk in data.chunks(MAX_FRAME) {
            let start = self.out.len();
            self.out.extend_from_slice(&[0; 7]);
            let mut ulen = 0;
            if chunk.len() >= MIN_COMPRESS {
                deflate(chunk, &mut self.out)?;
                ulen = chunk.len();
                // Incompressible data goes as is (and the 3-byte length
                // field cannot overflow).
                if self.out.len() - start - 7 >= chunk.len() {
                    self.out.truncate(start + 7);
                    ulen = 0;
                }
            }
            if ulen == 0 {
                self.out.extend_from_slice(chunk);
            }
            let clen = self.out.len() - start - 7;
            let header = &mut self.out[start..start + 7];
            header[..3].copy_from_slice(&(clen as u32).to_le_bytes()[..3]);
            header[3] = self.seq;
            header[4..7].copy_from_slice(&(ulen as u32).to_le_bytes()[..3]);
            self.seq = self.seq.wrapping_add(1);
        }
        Ok(())
    }
}

fn u24(b: &[u8]) -> usize {
    b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16
}

fn inflate(input: &[u8], ulen: usize, out: &mut BytesMut) -> io::Result<()> {
    let mut d = Decompress::new(true);
    let mut plain = Vec::with_capacity(ulen);
    d.decompress_vec(input, &mut plain, FlushDecompress::Finish)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if plain.len() != ulen {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "compressed frame has the wrong length",
        ));
    }
    out.put_slice(&plain);
    Ok(())
}

fn deflate(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut c = Compress::new(flate2::Compression::fast(), true);
    out.reserve(input.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if status == Status::StreamEnd {
            return Ok(());
        }
        out.reserve(out.capacity().max(4096));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_reader() {
        let mut c = Compression {
            raw: BytesMut::new(),
            seq: 3,
            out: Vec::new(),
        };
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
        c.frame(&big).unwrap();
        assert_eq!(c.out[3], 3, "frame carries the sequence id");
        assert!(c.out.len() < big.len(), "compressed");
        let framed = c.out.clone();
        c.frame(b"tiny").unwrap();
        assert_eq!(u24(&c.out[4..7]), 0, "short payloads go uncompressed");
        let tiny = c.out.clone();
        c.raw.extend_from_slice(&framed);
        c.raw.extend_from_slice(&tiny[..5]);
        let mut buf = BytesMut::new();
        assert_eq!(c.take_frame(&mut buf).unwrap(), Some(big.len()));
        assert_eq!(&buf[..], &big[..]);
        assert_eq!(c.take_frame(&mut buf).unwrap(), None, "partial frame waits");
        c.raw.extend_from_slice(&tiny[5..]);
        buf.clear();
        assert_eq!(c.take_frame(&mut buf).unwrap(), Some(4));
        assert_eq!(&buf[..], b"tiny");
        assert_eq!(c.seq, 5);
    }

    #[test]
    fn deflate_then_inflate() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 97) as u8).collect();
        let mut z = Vec::new();
        deflate(&data, &mut z).unwrap();
        assert!(z.len() < data.len());
        let mut back = BytesMut::new();
        inflate(&z, data.len(), &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        assert!(inflate(&z, data.len() + 1, &mut BytesMut::new()).is_err());
        assert!(inflate(b"garbage", 10, &mut BytesMut::new()).is_err());
    }
}
