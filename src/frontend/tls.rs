//! TLS towards clients, built from `ssl-cert`, `ssl-key` and `ssl-ca`
//! whenever the configuration is loaded (start, RELOAD CONFIG, SIGHUP), so
//! renewed certificate files are picked up by a reload.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::transport::Transport;
use crate::config::{ClientTlsOptions, SslMode};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{option} {path}: {source}")]
    Read {
        option: &'static str,
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{option} {path}: no certificate in the file")]
    NoCertificate { option: &'static str, path: PathBuf },
    #[error("ssl-ca {path}: {source}")]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("ssl-ca: {0}")]
    Verifier(String),
    #[error("ssl-cert/ssl-key: {0}")]
    Certificate(rustls::Error),
    #[error("sha256-private-key/sha256-public-key: {0}")]
    Sha256Key(#[from] crate::protocol::rsa_key::RsaError),
}

/// What the listeners need: the acceptor (when either port has TLS on)
/// and the rules of the connection phase.
#[derive(Clone, Default)]
pub struct ClientTls {
    acceptor: Option<Arc<TlsAcceptor>>,
    pub data: SslMode,
    pub admin: SslMode,
    /// `ssl-ca` is set: a client certificate, when presented, was verified.
    pub verifies_certificates: bool,
    pub require_users: Vec<String>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("data", &self.data)
            .field("admin", &self.admin)
            .field("verifies_certificates", &self.verifies_certificates)
            .field("require_users", &self.require_users)
            .finish()
    }
}

/// How one listener treats TLS.
pub struct PortTls<'a> {
    pub acceptor: &'a TlsAcceptor,
    pub required: bool,
}

impl ClientTls {
    pub fn from_options(o: &ClientTlsOptions) -> Result<ClientTls, TlsError> {
        let acceptor = match (o.enabled(), &o.ssl_cert, &o.ssl_key) {
            (true, Some(cert), Some(key)) => Some(Arc::new(TlsAcceptor::from(Arc::new(
                server_config(cert, key, o.ssl_ca.as_deref())?,
            )))),
            _ => None,
        };
        Ok(ClientTls {
            acceptor,
            data: o.ssl,
            admin: o.admin_ssl,
            verifies_certificates: o.ssl_ca.is_some(),
            require_users: o.require_ssl_users.clone(),
        })
    }

    /// The data port's (or the admin port's) TLS, if it has any.
    pub fn port(&self, admin: bool) -> Option<PortTls<'_>> {
        let mode = if admin { self.admin } else { self.data };
        match (mode, &self.acceptor) {
            (SslMode::Off, _) | (_, None) => None,
            (mode, Some(a)) => Some(PortTls {
                acceptor: a,
                required: mode == SslMode::Required,
            }),
        }
    }

    /// `require-ssl-users`: `user` may log in over `transport` (TLS, and
    /// with `ssl-ca` a verified client certificate), as an account with
    /// REQUIRE SSL (REQUIRE X509) on the server.
    pub fn transport_allows(&self, user: &str, transport: &Transport) -> bool {
        !self.require_users.iter().any(|u| u == user)
            || (transport.is_tls()
                && (!self.verifies_certificates || transport.has_client_certificate()))
    }
}

fn certificates(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        option,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            option,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn server_config(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("ssl-cert", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
        option: "ssl-key",
        path: key.to_path_buf(),
        source,
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Certificate)?;
    let builder = match ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates("ssl-ca", ca)? {
                roots.add(c).map_err(|source| TlsError::BadCa {
                    path: ca.to_path_buf(),
                    source,
                })?;
            }
            // Optional for the handshake; `require-ssl-users` insist.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(TlsError::Certificate)
}
