//! The RSA step of caching_sha2_password full authentication without TLS:
//! `RSA-OAEP(SHA-1, MGF1-SHA-1)` of `(password ‖ NUL) XOR nonce`, as MySQL
//! 8.0.5+ servers and clients do it.

use std::fmt;
use std::path::Path;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;

use super::sha2::{cleartext_packet, constant_time_eq, xor_with_nonce};

/// Size of a key Gantry generates (MySQL's default too).
pub const GENERATED_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum RsaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not an RSA private key in PEM (PKCS#1 or PKCS#8)")]
    BadPrivateKey(String),
    #[error("{0}: not an RSA public key in PEM (SubjectPublicKeyInfo or PKCS#1)")]
    BadPublicKey(String),
    #[error("{0} is not the public key of the private key")]
    Mismatch(String),
    #[error("the server's public key is not an RSA public key in PEM")]
    BadServerKey,
    #[error("RSA: {0}")]
    Rsa(#[from] rsa::Error),
    #[error("RSA: {0}")]
    Encode(String),
}

/// Gantry's key pair for its clients (`sha256-private-key` /
/// `sha256-public-key`, or generated).
pub struct ServerKeys {
    private: RsaPrivateKey,
    /// What clients get on `0x02`.
    public_pem: String,
}

/// Never the key, not even its modulus.
impl fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKeys(..)")
    }
}

impl ServerKeys {
    fn from_private(private: RsaPrivateKey) -> Result<Self, RsaError> {
        let public_pem = RsaPublicKey::from(&private)
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| RsaError::Encode(e.to_string()))?;
        Ok(Self {
            private,
            public_pem,
        })
    }

    /// A fresh key pair (slow: about a second, so off the async workers).
    pub fn generate() -> Result<Self, RsaError> {
        Self::from_private(RsaPrivateKey::new(&mut OsRng, GENERATED_BITS)?)
    }

    /// The configured key files; the public one, when given, must match.
    pub fn load(private: &Path, public: Option<&Path>) -> Result<Self, RsaError> {
        let shown = private.display().to_string();
        let text = read(private)?;
        let key = RsaPrivateKey::from_pkcs8_pem(&text)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&text))
            .map_err(|_| RsaError::BadPrivateKey(shown))?;
        let keys = Self::from_private(key)?;
        if let Some(path) = public {
            let shown = path.display().to_string();
            let given = parse_public(&read(path)?).ok_or(RsaError::BadPublicKey(shown.clone()))?;
            if given != RsaPublicKey::from(&keys.private) {
                return Err(RsaError::Mismatch(shown));
            }
        }
        Ok(keys)
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Decrypts a client's full-auth packet and checks it is `password`
    /// (NUL-terminated, XORed with `nonce`).
    pub fn password_matches(&self, cipher: &[u8], nonce: &[u8], password: &str) -> bool {
        let Ok(mut plain) = self.private.decrypt(Oaep::new::<Sha1>(), cipher) else {
            return false;
        };
        xor_with_nonce(&mut plain, nonce);
        let ok = constant_time_eq(&plain, &cleartext_packet(password));
        plain.fill(0);
        ok
    }
}

fn read(path: &Path) -> Result<String, RsaError> {
    std::fs::read_to_string(path).map_err(|source| RsaError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, what MySQL sends) or PKCS#1.
fn parse_public(pem: &str) -> Option<RsaPublicKey> {
    let pem = pem.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .ok()
}

/// The client's side: `password` encrypted for the server whose PEM key
/// is `server_pem` (the bytes after the `0x01` of its AuthMoreData).
pub fn encrypt_password(
    server_pem: &[u8],
    password: &str,
    nonce: &[u8],
) -> Result<Vec<u8>, RsaError> {
    let pem = std::str::from_utf8(server_pem).map_err(|_| RsaError::BadServerKey)?;
    let key = parse_public(pem).ok_or(RsaError::BadServerKey)?;
    let mut plain = cleartext_packet(password);
    xor_with_nonce(&mut plain, nonce);
    let out = key.encrypt(&mut OsRng, Oaep::new::<Sha1>(), &plain);
    plain.fill(0);
    Ok(out?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, OnceLock};

    /// One generated pair for all tests (generation is the slow part).
    pub(crate) fn test_keys() -> Arc<ServerKeys> {
        static KEYS: OnceLock<Arc<ServerKeys>> = OnceLock::new();
        KEYS.get_or_init(|| Arc::new(ServerKeys::generate().unwrap()))
            .clone()
    }

    const NONCE: &[u8; 20] = b"abcdefghij0123456789";

    #[test]
    fn encrypted_password_decrypts_back_only_for_its_nonce() {
        let keys = test_keys();
        let pem = keys.public_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let cipher = encrypt_password(pem.as_bytes(), "app_pw", NONCE).unwrap();
        assert_eq!(cipher.len(), GENERATED_BITS / 8);
        assert!(keys.password_matches(&cipher, NONCE, "app_pw"));
        assert!(!keys.password_matches(&cipher, NONCE, "app_pwx"));
        assert!(!keys.password_matches(&cipher, b"zyxwvutsrq9876543210", "app_pw"));
        // Decrypted by hand: (password ‖ NUL) XOR nonce.
        let mut plain = keys.private.decrypt(Oaep::new::<Sha1>(), &cipher).unwrap();
        let mut expected = b"app_pw\0".to_vec();
        xor_with_nonce(&mut expected, NONCE);
        assert_eq!(plain, expected);
        xor_with_nonce(&mut plain, NONCE);
        assert_eq!(plain, b"app_pw\0");
        // OAEP is randomised: two encryptions differ.
        assert_ne!(
            cipher,
            encrypt_password(pem.as_bytes(), "app_pw", NONCE).unwrap()
        );
    }

    #[test]
    fn junk_is_refused_not_a_panic() {
        let keys = test_keys();
        assert!(!keys.password_matches(b"", NONCE, ""));
        assert!(!keys.password_matches(&[0u8; 256], NONCE, "x"));
        assert!(!keys.password_matches(&[0xffu8; 300], NONCE, "x"));
        assert!(encrypt_password(b"not a key", "x", NONCE).is_err());
        assert!(encrypt_password(&[0xff, 0xfe], "x", NONCE).is_err());
        // Too long for one OAEP block of a 2048-bit key.
        let long = "p".repeat(300);
        assert!(encrypt_password(keys.public_pem().as_bytes(), &long, NONCE).is_err());
        // A PEM with MySQL's trailing NUL still parses.
        let mut pem = keys.public_pem().as_bytes().to_vec();
        pem.push(0);
        assert!(encrypt_password(&pem, "x", NONCE).is_ok());
    }

    #[test]
    fn key_files_load_and_must_match() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let keys = test_keys();
        let dir = std::env::temp_dir().join(format!("gantry-rsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("private_key.pem");
        let public = dir.join("public_key.pem");
        let pkcs1 = keys.private.to_pkcs1_pem(LineEnding::LF).unwrap();
        std::fs::write(&private, pkcs1.as_bytes()).unwrap();
        std::fs::write(&public, keys.public_pem()).unwrap();
        let loaded = ServerKeys::load(&private, Some(&public)).unwrap();
        assert_eq!(loaded.public_pem(), keys.public_pem());
        assert_eq!(format!("{loaded:?}"), "ServerKeys(..)");
        std::fs::write(&public, "junk").unwrap();
        assert!(matches!(
            ServerKeys::load(&private, Some(&public)),
            Err(RsaError::BadPublicKey(_))
        ));
        std::fs::write(&private, "junk").unwrap();
        assert!(matches!(
            ServerKeys::load(&private, None),
            Err(RsaError::BadPrivateKey(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
