//! A client's connection below the MySQL framing: plain TCP, or TLS once
//! the client sent the SSL request of the connection phase.

use std::io;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::protocol::tls_stream::MaybeTls;

pub type Transport = MaybeTls<TlsStream<TcpStream>>;

impl Transport {
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

    /// Writes all of `buf` and, over TLS, flushes: tokio-rustls may keep
    /// the tail of a write in the session when the socket is full, and
    /// nothing else would send it while the client waits for it.
    pub async fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf).await?;
        if self.is_tls() {
            self.flush().await?;
        }
        Ok(())
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
