//! A connection below the MySQL framing: plain TCP, or TLS over it once
//! the connection phase asked for it. One type for both sides (clients'
//! server-side TLS, backends' client-side TLS); each side adds its own
//! methods (`frontend::transport`, `backend::stream`).

use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::packet::ReadInto;

pub enum MaybeTls<T> {
    Plain(TcpStream),
    /// Boxed: the TLS state is large, and many connections are plain.
    Tls(Box<T>),
}

/// A TLS stream over TCP, either side.
pub trait OverTcp: AsyncRead + AsyncWrite + Unpin {
    fn tcp(&self) -> &TcpStream;
}

impl OverTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl OverTcp for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl<T: OverTcp> MaybeTls<T> {
    /// The socket underneath (readiness, peeking, addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(s) => s.tcp(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The peer closed the socket or sent bytes nobody read yet, asked of
    /// the kernel itself (a peek: nothing is consumed). Tokio's readiness
    /// can lag behind a peer that just died, and a statement sent on such
    /// a connection would fail instead of going to a live server.
    ///
    /// When there is nothing, tokio's read readiness is cleared too: it can
    /// stay set after a read that took exactly what had arrived, and a task
    /// waiting on `readable()` would then wake at once, again and again.
    pub fn peer_closed_or_spoke(&self) -> bool {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match socket2::SockRef::from(self.tcp()).peek(&mut probe) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ = self.tcp().try_io(tokio::io::Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
                false
            }
            Err(e) => e.kind() != io::ErrorKind::Interrupted,
        }
    }
}

impl<T: OverTcp> AsyncRead for MaybeTls<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: OverTcp> AsyncWrite for MaybeTls<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl<T: OverTcp> ReadInto for MaybeTls<T> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_buf(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::time::timeout;

    type Stream = MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;

    #[tokio::test]
    async fn finding_nothing_clears_a_readiness_left_by_an_exact_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        peer.write_all(b"x").await.unwrap();
        ours.readable().await.unwrap();
        let mut one = [0u8; 1];
        assert_eq!(ours.try_read(&mut one).unwrap(), 1);
        let s: Stream = MaybeTls::Plain(ours);
        // The read took exactly what was there: tokio still says readable.
        let stale = timeout(Duration::from_millis(50), s.tcp().readable()).await;
        assert!(stale.is_ok(), "tokio's readiness outlives the data");

        assert!(!s.peer_closed_or_spoke());
        let wait = timeout(Duration::from_millis(100), s.tcp().readable()).await;
        assert!(wait.is_err(), "readable() now waits for the next byte");

        peer.write_all(b"y").await.unwrap();
        timeout(Duration::from_secs(5), s.tcp().readable())
            .await
            .expect("readable once a byte arrives")
            .unwrap();
        assert!(s.peer_closed_or_spoke());
        drop(peer);
        let mut rest = [0u8; 1];
        assert_eq!(s.tcp().try_read(&mut rest).unwrap(), 1);
        timeout(Duration::from_secs(5), s.tcp().readable())
            .await
            .expect("readable at the peer's close")
            .unwrap();
        assert!(s.peer_closed_or_spoke(), "a closed peer counts");
    }
}
