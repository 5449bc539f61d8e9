//! TLS towards the backends (`backend-ssl*`): the mode, and the PEM files it
//! names, read once per configuration load so that `RELOAD CONFIG` picks
//! up renewed certificates. The rustls client configuration is built here
//! too, once, and shared by every backend connection.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ConfigError;

/// `backend-ssl`, with the mysql client's `--ssl-mode` meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackendSsl {
    /// Never TLS.
    Off,
    /// TLS when the server offers it, else plain; certificates unchecked.
    #[default]
    Preferred,
    /// TLS or no connection; certificates unchecked.
    Required,
    /// TLS with a chain to `backend-ssl-ca`; any host name.
    VerifyCa,
    /// `VerifyCa`, and the certificate names the backend's host.
    VerifyIdentity,
}

impl BackendSsl {
    pub const ALL: [BackendSsl; 5] = [
        BackendSsl::Off,
        BackendSsl::Preferred,
        BackendSsl::Required,
        BackendSsl::VerifyCa,
        BackendSsl::VerifyIdentity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendSsl::Off => "off",
            BackendSsl::Preferred => "preferred",
            BackendSsl::Required => "required",
            BackendSsl::VerifyCa => "verify-ca",
            BackendSsl::VerifyIdentity => "verify-identity",
        }
    }

    /// Whether the server's certificate is checked against the CA.
    pub fn verifies(self) -> bool {
        matches!(self, BackendSsl::VerifyCa | BackendSsl::VerifyIdentity)
    }
}

impl fmt::Display for BackendSsl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendSsl {
    type Err = String;

    /// Case-insensitive; `_` may stand for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().replace('_', "-");
        BackendSsl::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(&s))
            .ok_or_else(|| {
                format!("{s:?} is not one of off|preferred|required|verify-ca|verify-identity")
            })
    }
}

/// A PEM file's path and the bytes read from it at load time.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    pub path: PathBuf,
    pub pem: Arc<[u8]>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the path: the key file's bytes are a secret.
        fmt::Debug::fmt(&self.path, f)
    }
}

/// The backend TLS settings of one configuration load.
#[derive(Clone)]
pub struct BackendTls {
    pub mode: BackendSsl,
    pub ca: Option<PemFile>,
    pub cert: Option<PemFile>,
    pub key: Option<PemFile>,
    /// `None` when `mode` is `off`.
    pub client: Option<Arc<rustls::ClientConfig>>,
}

impl Default for BackendTls {
    /// `preferred` without files (its client configuration cannot fail).
    fn default() -> Self {
        BackendTls::load(BackendSsl::default(), None, None, None)
            .unwrap_or_else(|_| BackendTls::off())
    }
}

impl BackendTls {
    pub fn off() -> Self {
        BackendTls {
            mode: BackendSsl::Off,
            ca: None,
            cert: None,
            key: None,
            client: None,
        }
    }

    /// Reads the files and builds the client configuration. A verifying
    /// mode needs a CA; a certificate needs its key and the other way round.
    pub fn load(
        mode: BackendSsl,
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        if mode.verifies() && ca.is_none() {
            return Err(ConfigError::invalid(
                "backend-ssl-ca",
                format!("required when backend-ssl is {mode}"),
            ));
        }
        match (cert, key) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "backend-ssl-key",
                    "required when backend-ssl-cert is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "backend-ssl-cert",
                    "required when backend-ssl-key is set",
                ))
            }
            _ => {}
        }
        let ca = ca.map(|p| read("backend-ssl-ca", p)).transpose()?;
        let cert = cert.map(|p| read("backend-ssl-cert", p)).transpose()?;
        let key = key.map(|p| read("backend-ssl-key", p)).transpose()?;
        let roots = match &ca {
            Some(f) => certificates("backend-ssl-ca", f)?,
            None => Vec::new(),
        };
        let identity = match (&cert, &key) {
            (Some(c), Some(k)) => {
                let chain = certificates("backend-ssl-cert", c)?;
                let key = PrivateKeyDer::from_pem_slice(&k.pem).map_err(|_| {
                    ConfigError::invalid(
                        "backend-ssl-key",
                        format!("{}: no PEM private key", k.path.display()),
                    )
                })?;
                Some((chain, key))
            }
            _ => None,
        };
        let client = if mode == BackendSsl::Off {
            None
        } else {
            let config = crate::backend::tls::client_config(mode, roots, identity)
                .map_err(|e| ConfigError::invalid("backend-ssl", e.to_string()))?;
            Some(Arc::new(config))
        };
        Ok(BackendTls {
            mode,
            ca,
            cert,
            key,
            client,
        })
    }
}

fn read(key: &str, path: &Path) -> Result<PemFile, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::invalid(key, format!("{}: {e}", path.display())))?;
    Ok(PemFile {
        path: path.to_path_buf(),
        pem: pem.into(),
    })
}

fn certificates(key: &str, f: &PemFile) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bad = || ConfigError::invalid(key, format!("{}: no PEM certificate", f.path.display()));
    let certs = CertificateDer::pem_slice_iter(&f.pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if certs.is_empty() {
        return Err(bad());
    }
    Ok(certs)
}

/// Equal when the mode, the paths and the files' contents are: the client
/// configuration follows from them.
impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode
            && self.ca == other.ca
            && self.cert == other.cert
            && self.key == other.key
    }
}

impl Eq for BackendTls {}

impl fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendTls")
            .field("mode", &self.mode)
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}
