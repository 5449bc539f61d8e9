//! `enc:` values: passwords in the configuration encrypted with
//! AES-256-GCM under the key in `secret-key-file`, so that the file can be
//! shared or versioned without the passwords. The form is `enc:` +
//! base64 (standard, padded) of a random 12-byte nonce followed by the
//! ciphertext and its 16-byte tag. `gantry encrypt` makes them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use std::fmt;
use std::path::Path;

pub const PREFIX: &str = "enc:";

/// The 32-byte key, read from a file of 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("cannot read the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the key file {0} must hold 64 hexadecimal digits (a 256-bit key)")]
    BadKey(String),
    #[error("an enc: value needs secret-key-file")]
    NoKey,
    #[error("not a valid enc: value (bad base64 or too short)")]
    Malformed,
    #[error("cannot be decrypted with this secret-key-file (another key, or altered)")]
    WrongKey,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SecretKey {
    pub fn from_hex(text: &str, path: &str) -> Result<SecretKey, SecretError> {
        let t = text.trim();
        if t.len() != 64 {
            return Err(SecretError::BadKey(path.to_string()));
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)
                .map_err(|_| SecretError::BadKey(path.to_string()))?;
        }
        Ok(SecretKey(key))
    }

    pub fn load(path: &Path) -> Result<SecretKey, SecretError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::KeyFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        SecretKey::from_hex(&text, &shown)
    }

    /// A new random key, as the file holds it (64 hex digits and a newline).
    pub fn generate_file_text() -> String {
        let key: [u8; 32] = rand::random();
        format!("{}\n", hex(&key))
    }

    pub fn encrypt(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new((&self.0).into());
        let nonce: [u8; 12] = rand::random();
        // Encrypting a byte string in memory cannot fail.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    pub fn decrypt(&self, value: &str) -> Result<String, SecretError> {
        let body = value.strip_prefix(PREFIX).ok_or(SecretError::Malformed)?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| SecretError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(12);
        let cipher = Aes256Gcm::new((&self.0).into());
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SecretError::WrongKey)
    }
}

pub fn is_encrypted(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The clear password an option value stands for.
pub fn reveal(key: Option<&SecretKey>, value: &str) -> Result<String, SecretError> {
    if !is_encrypted(value) {
        return Ok(value.to_string());
    }
    key.ok_or(SecretError::NoKey)?.decrypt(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_hex(&"0123456789abcdef".repeat(4), "k").unwrap()
    }

    #[test]
    fn encrypted_values_round_trip_and_fail_cleanly() {
        let k = key();
        let sealed = k.encrypt("p@ss:wörd");
        assert!(is_encrypted(&sealed));
        assert_ne!(k.encrypt("p@ss:wörd"), sealed, "a fresh nonce each time");
        assert_eq!(k.decrypt(&sealed).unwrap(), "p@ss:wörd");
        assert_eq!(reveal(Some(&k), "clear").unwrap(), "clear");
        assert_eq!(reveal(None, &sealed), Err(SecretError::NoKey));
        let other = SecretKey::from_hex(&"f".repeat(64), "k").unwrap();
        assert_eq!(other.decrypt(&sealed), Err(SecretError::WrongKey));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(k.decrypt(&altered).is_err());
        assert_eq!(k.decrypt("enc:!!"), Err(SecretError::Malformed));
        assert_eq!(k.decrypt("enc:AAAA"), Err(SecretError::Malformed));
        assert_eq!(format!("{k:?}"), "SecretKey(..)");
    }

    #[test]
    fn key_files_hold_64_hex_digits() {
        assert!(SecretKey::from_hex("abc", "k").is_err());
        assert!(SecretKey::from_hex(&"g".repeat(64), "k").is_err());
        let text = SecretKey::generate_file_text();
        assert!(SecretKey::from_hex(&text, "k").is_ok());
    }
}
