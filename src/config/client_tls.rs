//! TLS towards clients: `ssl`, `admin-ssl`, `ssl-cert`, `ssl-key`,
//! `ssl-ca`, `require-ssl-users`. Only paths and modes here; the
//! certificates are read when the runtime is built (`frontend::tls`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{ConfigError, Values};

/// Whether a listener offers TLS and whether it insists on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    #[default]
    Off,
    Optional,
    Required,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Off => "off",
            SslMode::Optional => "optional",
            SslMode::Required => "required",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [SslMode::Off, SslMode::Optional, SslMode::Required]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not one of off|optional|required"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTlsOptions {
    /// The data port.
    pub ssl: SslMode,
    /// The admin port (same certificate).
    pub admin_ssl: SslMode,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    /// CA of client certificates: with it, clients may present one (and
    /// `require-ssl-users` must).
    pub ssl_ca: Option<PathBuf>,
    /// Accounts that must log in over TLS (with `ssl-ca`: and with a
    /// certificate it verified), as `REQUIRE SSL` / `REQUIRE X509`.
    pub require_ssl_users: Vec<String>,
    /// caching_sha2_password's RSA key pair for clients without TLS
    /// (PEM files); `None`: generated when first needed.
    pub sha256_private_key: Option<PathBuf>,
    pub sha256_public_key: Option<PathBuf>,
}

impl ClientTlsOptions {
    pub fn enabled(&self) -> bool {
        self.ssl != SslMode::Off || self.admin_ssl != SslMode::Off
    }
}

pub(super) fn parse(v: &Values<'_>) -> Result<ClientTlsOptions, ConfigError> {
    let mode = |key: &'static str| -> Result<SslMode, ConfigError> {
        match v.string(key)? {
            None => Ok(SslMode::Off),
            Some(s) => s.parse().map_err(|e: String| ConfigError::invalid(key, e)),
        }
    };
    let path = |key: &'static str| -> Result<Option<PathBuf>, ConfigError> {
        Ok(v.string(key)?.map(PathBuf::from))
    };
    let o = ClientTlsOptions {
        ssl: mode("ssl")?,
        admin_ssl: mode("admin-ssl")?,
        ssl_cert: path("ssl-cert")?,
        ssl_key: path("ssl-key")?,
        ssl_ca: path("ssl-ca")?,
        require_ssl_users: v
            .list("require-ssl-users")?
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        sha256_private_key: path("sha256-private-key")?,
        sha256_public_key: path("sha256-public-key")?,
    };
    if o.sha256_public_key.is_some() && o.sha256_private_key.is_none() {
        return Err(ConfigError::invalid(
            "sha256-public-key",
            "needs sha256-private-key (Gantry decrypts with it)",
        ));
    }
    if o.enabled() && (o.ssl_cert.is_none() || o.ssl_key.is_none()) {
        let key = if o.ssl_cert.is_none() {
            "ssl-cert"
        } else {
            "ssl-key"
        };
        return Err(ConfigError::invalid(
            key,
            "ssl or admin-ssl is on: ssl-cert and ssl-key are required",
        ));
    }
    if !o.require_ssl_users.is_empty() && o.ssl == SslMode::Off {
        return Err(ConfigError::invalid(
            "require-ssl-users",
            "needs ssl = \"optional\" or \"required\"",
        ));
    }
    Ok(o)
}
