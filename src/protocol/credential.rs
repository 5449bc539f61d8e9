//! What Gantry knows of an account's password, and what that lets it do.
//!
//! mysql_native_password: the server stores `SHA1(SHA1(password))` (the
//! `*…` hash of `mysql.user`); a client answers a 20-byte nonce with
//! `SHA1(password) XOR SHA1(nonce ‖ SHA1(SHA1(password)))`. Knowing the
//! stored hash, Gantry can check an answer and recover `SHA1(password)`
//! from it — and `SHA1(password)` is all it takes to answer any backend's
//! nonce. So an account configured by its hash alone logs in through
//! Gantry with no clear password anywhere.

use sha1::{Digest, Sha1};
use std::fmt;

use super::auth::{scramble_for, NATIVE_PASSWORD};

/// An account's secret as configured, or as learnt from its client.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The clear password (from the config, or decrypted from `enc:`).
    Clear(Box<str>),
    /// `SHA1(SHA1(password))`, configured as `*` + 40 hex digits: checks
    /// clients, and yields `Stage1` from a client's answer.
    NativeHash([u8; 20]),
    /// `SHA1(password)`, recovered from a client's answer: answers backends
    /// that use mysql_native_password.
    Stage1([u8; 20]),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Clear(_) => "Credential::Clear(..)",
            Credential::NativeHash(_) => "Credential::NativeHash(..)",
            Credential::Stage1(_) => "Credential::Stage1(..)",
        })
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The 20 bytes of a nonce that native scrambles use (a trailing NUL and
/// anything beyond are not part of it).
fn nonce20(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(20)]
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses `*` + 40 hex digits (either case), as `mysql.user` shows it.
pub fn parse_native_hash(s: &str) -> Option<[u8; 20]> {
    let hex = s.strip_prefix('*')?;
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `*` + upper-case hex of `SHA1(SHA1(password))`: MySQL's `PASSWORD()`.
pub fn native_hash_text(password: &str) -> String {
    let hash = Credential::NativeHash(sha1(&[&sha1(&[password.as_bytes()])]));
    hash.config_text().unwrap_or_default()
}

impl Credential {
    /// A configured password: a native hash when it looks like one.
    pub fn from_config(value: &str) -> Credential {
        match parse_native_hash(value) {
            Some(h) => Credential::NativeHash(h),
            None => Credential::Clear(value.into()),
        }
    }

    /// Checks a client's mysql_native_password answer to `nonce`; on
    /// success, what Gantry logs in to the backends with for this client.
    pub fn verify(&self, nonce: &[u8], response: &[u8]) -> Option<Credential> {
        let ok = match self {
            Credential::Clear(pw) => super::auth::native_password_matches(nonce, pw, response),
            Credential::Stage1(s1) => constant_time_eq(&native_answer(s1, nonce), response),
            Credential::NativeHash(hash) => {
                let answer: &[u8; 20] = response.try_into().ok()?;
                let stage1 = xor(answer, &sha1(&[nonce20(nonce), hash]));
                return constant_time_eq(&sha1(&[&stage1]), hash)
                    .then_some(Credential::Stage1(stage1));
            }
        };
        ok.then(|| self.clone())
    }

    /// The answer to a backend's `plugin` challenge, or `None` when this
    /// credential cannot give it (a hash answers nobody; `SHA1(password)`
    /// only mysql_native_password).
    pub fn answer(&self, plugin: &str, nonce: &[u8]) -> Option<Vec<u8>> {
        match self {
            Credential::Clear(pw) => scramble_for(plugin, nonce, pw),
            Credential::Stage1(s1) if plugin == NATIVE_PASSWORD => {
                Some(native_answer(s1, nonce).to_vec())
            }
            _ => None,
        }
    }

    /// Whether Gantry can log in to a backend with it (a hash cannot).
    pub fn can_log_in(&self) -> bool {
        !matches!(self, Credential::NativeHash(_))
    }

    /// How it is written in a configuration file (`SAVE CONFIG`): clear,
    /// or `*` + hex; `None` for what was learnt from a client.
    pub fn config_text(&self) -> Option<String> {
        match self {
            Credential::Clear(pw) => Some(pw.to_string()),
            Credential::NativeHash(h) => {
                let mut s = String::with_capacity(41);
                s.push('*');
                for b in h {
                    s.push_str(&format!("{b:02X}"));
                }
                Some(s)
            }
            Credential::Stage1(_) => None,
        }
    }

    /// The clear password, when Gantry has it (full authentication of
    /// caching_sha2_password needs it).
    pub fn clear(&self) -> Option<&str> {
        match self {
            Credential::Clear(pw) => Some(pw),
            _ => None,
        }
    }
}

/// `SHA1(password) XOR SHA1(nonce ‖ SHA1(SHA1(password)))`.
fn native_answer(stage1: &[u8; 20], nonce: &[u8]) -> [u8; 20] {
    xor(stage1, &sha1(&[nonce20(nonce), &sha1(&[stage1])]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::scramble::scramble_native;

    const NONCE: &[u8; 20] = b"abcdefghij0123456789";

    #[test]
    fn the_hash_of_mysql_password_function() {
        // MySQL's documented example: PASSWORD('mypass').
        assert_eq!(
            native_hash_text("mypass"),
            "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"
        );
        assert_eq!(
            parse_native_hash("*6c8989366eaf75bb670ad8ea7a7fc1176a95cef4"),
            parse_native_hash("*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4")
        );
        assert!(parse_native_hash("*6C89").is_none());
        assert!(parse_native_hash("6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4").is_none());
        assert!(parse_native_hash("*6C8989366EAF75BB670AD8EA7A7FC1176A95CEFZ").is_none());
    }

    #[test]
    fn a_hash_checks_a_client_and_recovers_what_answers_backends() {
        let client = scramble_native(NONCE, b"s3cret").unwrap();
        let hashed = Credential::from_config(&native_hash_text("s3cret"));
        let learnt = hashed.verify(NONCE, &client).expect("right password");
        let wrong = scramble_native(NONCE, b"s3cres").unwrap();
        assert_eq!(hashed.verify(NONCE, &wrong), None);
        assert_eq!(hashed.verify(NONCE, b"short"), None);
        // What it learnt answers another nonce as the password would.
        let other: &[u8; 20] = b"zyxwvutsrq9876543210";
        assert_eq!(
            learnt.answer(NATIVE_PASSWORD, other).unwrap(),
            scramble_native(other, b"s3cret").unwrap().to_vec()
        );
        assert_eq!(learnt.answer(super::super::auth::CACHING_SHA2, other), None);
        assert_eq!(hashed.answer(NATIVE_PASSWORD, other), None);
        // And checks the next client of the same session (COM_CHANGE_USER).
        assert!(learnt
            .verify(other, &scramble_native(other, b"s3cret").unwrap())
            .is_some());
        assert_eq!(format!("{learnt:?}"), "Credential::Stage1(..)");
    }

    #[test]
    fn a_clear_password_behaves_as_before() {
        let clear = Credential::from_config("s3cret");
        let answer = scramble_native(NONCE, b"s3cret").unwrap();
        assert_eq!(clear.verify(NONCE, &answer), Some(clear.clone()));
        assert_eq!(clear.clear(), Some("s3cret"));
        assert_eq!(
            clear.answer(NATIVE_PASSWORD, NONCE).unwrap(),
            answer.to_vec()
        );
    }
}
