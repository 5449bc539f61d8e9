//! A backend connection's byte stream: plain TCP or TLS over it. The
//! readiness and non-blocking calls the pool makes on idle connections
//! look at the TCP socket underneath.

use std::io::{self, Write};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::protocol::tls_stream::MaybeTls;

pub type BackendStream = MaybeTls<TlsStream<TcpStream>>;

impl BackendStream {
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
    /// consuming anything (a TLS session may still need it).
    pub fn has_input(&mut self) -> bool {
        self.peer_closed_or_spoke()
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
