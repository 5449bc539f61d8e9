//! A backend connection's byte stream: plain TCP or TLS over it. The
//! readiness and non-blocking calls the pool makes on idle connections
//! look at the TCP socket underneath.

use bytes::BytesMut;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::protocol::packet::ReadInto;

pub enum BackendStream {
    Plain(TcpStream),
    /// Boxed: the TLS state is large, and most connections may be plain.
    Tls(Box<TlsStream<TcpStream>>),
}

impl BackendStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            BackendStream::Plain(s) => s,
            BackendStream::Tls(s) => s.get_ref().0,
        }
    }

    /// Writes all of `buf` and, over TLS, flushes: tokio-rustls may keep the
    /// tail of a write in the session when the socket is full, and nothing
    /// else would send it while Gantry waits for the answer. (Shadows
    /// `AsyncWriteExt::write_all` so that no caller forgets.)
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            BackendStream::Plain(s) => AsyncWriteExt::write_all(s, buf).await,
            BackendStream::Tls(s) => {
                AsyncWriteExt::write_all(s.as_mut(), buf).await?;
                s.flush().await
            }
        }
    }

    /// Resolves when the socket has something to read (or was closed).
    pub async fn readable(&self) -> io::Result<()> {
        self.tcp().readable().await
    }

    /// Writes what fits without waiting. Over TLS the bytes are accepted
    /// whole and what the socket does not take now goes out, in order,
    /// before the next write.
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BackendStream::Plain(s) => s.try_write(buf),
            BackendStream::Tls(s) => {
                let (tcp, tls) = s.get_mut();
                tls.writer().write_all(buf)?;
                while tls.wants_write() {
                    match tls.write_tls(&mut TryWriter(tcp)) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(buf.len())
            }
        }
    }

    /// True when the socket has data or was closed, without blocking or
    /// consuming anything a TLS session still needs. (On a plain socket
    /// the byte read is lost: unexpected data makes the connection stale.)
    pub fn has_input(&mut self) -> bool {
        match self {
            BackendStream::Plain(s) => {
                let mut probe = [0u8; 1];
                !matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            BackendStream::Tls(s) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(Waker::noop());
                !matches!(s.get_ref().0.poll_peek(&mut cx, &mut buf), Poll::Pending)
            }
        }
    }
}

/// `std::io::Write` for rustls's `write_tls`, without waiting.
struct TryWriter<'a>(&'a TcpStream);

impl Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for BackendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BackendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_flush(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            BackendStream::Plain(s) => s.is_write_vectored(),
            BackendStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl ReadInto for BackendStream {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_buf(buf).await
    }
}
