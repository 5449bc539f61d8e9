//! A client's connection below the MySQL framing: plain TCP, or TLS once
//! the client sent the SSL request of the connection phase.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::protocol::packet::ReadInto;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref().0,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The client presented a certificate that the configured CA verified
    /// (the verifier refuses the handshake otherwise).
    pub fn has_client_certificate(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(s) => s
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty()),
        }
    }

    /// The TLS protocol version, for the log.
    pub fn tls_version(&self) -> Option<&'static str> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(s) => s.get_ref().1.protocol_version().and_then(|v| v.as_str()),
        }
    }

    /// Runs the TLS handshake on a plain connection. `early` holds bytes
    /// the client sent right after its SSL request, already read from the
    /// socket (clients start the handshake without waiting for an answer).
    pub async fn start_tls(self, acceptor: &TlsAcceptor, early: &[u8]) -> io::Result<Transport> {
        let Transport::Plain(tcp) = self else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS requested twice",
            ));
        };
        let mut early = early;
        let tls = acceptor
            .accept_with(tcp, |conn| {
                if !early.is_empty() {
                    // Errors surface again when the handshake goes on.
                    while !early.is_empty() && conn.read_tls(&mut early).is_ok_and(|n| n > 0) {}
                    let _ = conn.process_new_packets();
                }
            })
            .await?;
        Ok(Transport::Tls(Box::new(tls)))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl ReadInto for Transport {
    async fn read_into(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        tokio::io::AsyncReadExt::read_buf(self, buf).await
    }
}
