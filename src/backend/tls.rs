//! The rustls side of TLS towards backends: the certificate checks of each
//! `backend-ssl` mode, and the settings in force for new connections.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::config::{BackendSsl, BackendTls};

/// The settings new backend connections use. One process serves one
/// configuration; it is replaced at start and by every reload, and the
/// pools (whose settings are fixed at creation) read it at connect time.
static CURRENT: std::sync::LazyLock<ArcSwap<BackendTls>> =
    std::sync::LazyLock::new(|| ArcSwap::from_pointee(BackendTls::default()));

pub fn install(tls: Arc<BackendTls>) {
    CURRENT.store(tls);
}

pub fn current() -> Arc<BackendTls> {
    CURRENT.load_full()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

/// The client configuration for `mode` (not `off`): trusting `roots` when
/// the mode verifies, presenting `identity` when given.
pub fn client_config(
    mode: BackendSsl,
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if mode.verifies() {
        let mut store = RootCertStore::empty();
        for cert in roots {
            store.add(cert)?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| Error::General(format!("backend-ssl-ca: {e}")))?;
        if mode == BackendSsl::VerifyIdentity {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        }
    } else {
        Arc::new(AnyCert(provider.clone()))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `verify-ca`: the chain must lead to the CA; the name is not looked at.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // webpki checks the name last, so a name error means the chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `preferred` and `required`: any certificate, as the mysql client does;
/// the handshake signatures are still checked, so the session key belongs
/// to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The name the certificate must carry for `host` (an IP or a DNS name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host:?}: {e}"))
}

/// The same settings for mysql_async (health probes, failover): `None` for
/// a plain connection. `preferred` asks for TLS too; the prober falls back
/// to plain when the server does not offer it.
pub fn mysql_ssl_opts(tls: &BackendTls) -> Option<mysql_async::SslOpts> {
    use mysql_async::{ClientIdentity, SslOpts};
    let buf = |pem: &Arc<[u8]>| pem.to_vec().into();
    let opts = match tls.mode {
        BackendSsl::Off => return None,
        BackendSsl::Preferred | BackendSsl::Required => {
            SslOpts::default().with_danger_accept_invalid_certs(true)
        }
        BackendSsl::VerifyCa | BackendSsl::VerifyIdentity => SslOpts::default()
            .with_root_certs(tls.ca.iter().map(|f| buf(&f.pem)).collect())
            .with_disable_built_in_roots(true)
            .with_danger_skip_domain_validation(tls.mode == BackendSsl::VerifyCa),
    };
    let identity = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => Some(ClientIdentity::new(buf(&c.pem), buf(&k.pem))),
        _ => None,
    };
    Some(opts.with_client_identity(identity))
}
