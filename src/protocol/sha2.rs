//! caching_sha2_password (MySQL 8's default plugin), the parts both sides
//! share: hashes, the fast-auth check and the small packets of the
//! exchange.
//!
//! Fast authentication: the client answers the 20-byte nonce with
//! `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce)`; a server that has
//! `SHA256(SHA256(pw))` in its cache checks it and sends `0x01 0x03`, then
//! OK. Otherwise it sends `0x01 0x04` (perform full authentication) and the
//! client sends its clear password: as is (NUL-terminated) over TLS, or
//! RSA-OAEP encrypted after XOR with the nonce, first asking for the
//! server's public key with `0x02` (answered by `0x01` + PEM).

use sha2::{Digest, Sha256};

/// AuthMoreData: fast authentication succeeded, OK follows.
pub const FAST_AUTH_OK: [u8; 2] = [0x01, 0x03];
/// AuthMoreData: the server wants the clear password.
pub const PERFORM_FULL_AUTH: [u8; 2] = [0x01, 0x04];
/// The client asks for the server's RSA public key.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
/// AuthMoreData's status byte (before the key's PEM, or 0x03/0x04).
pub const MORE_DATA: u8 = 0x01;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The 20 bytes of the nonce the scrambles use (no trailing NUL).
fn nonce20(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(20)]
}

/// `SHA256(SHA256(password))`: what a server caches after a full
/// authentication, and all that the fast check needs.
pub fn cache_digest(password: &str) -> [u8; 32] {
    sha256(&[&sha256(&[password.as_bytes()])])
}

/// Checks a fast-auth answer against the cached digest: recovers
/// `SHA256(pw)` from it and hashes that again.
pub fn fast_matches(digest: &[u8; 32], nonce: &[u8], response: &[u8]) -> bool {
    let Ok(answer) = <&[u8; 32]>::try_from(response) else {
        return false;
    };
    let mask = sha256(&[digest, nonce20(nonce)]);
    let stage1: [u8; 32] = std::array::from_fn(|i| answer[i] ^ mask[i]);
    constant_time_eq(&sha256(&[&stage1]), digest)
}

/// The fast-auth answer a client computes (what Gantry sends a backend).
pub fn fast_answer(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha256(&[password.as_bytes()]);
    let mask = sha256(&[&sha256(&[&stage1]), nonce20(nonce)]);
    stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
}

/// Full authentication over TLS: the password and a NUL.
pub fn cleartext_packet(password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(password.len() + 1);
    out.extend_from_slice(password.as_bytes());
    out.push(0);
    out
}

/// The password of a cleartext full-auth packet (the NUL stripped; some
/// clients leave it out).
pub fn parse_cleartext(packet: &[u8]) -> &[u8] {
    packet.strip_suffix(&[0]).unwrap_or(packet)
}

/// The answer to `0x02`: `0x01` + the public key's PEM.
pub fn public_key_packet(pem: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(pem.len() + 1);
    out.push(MORE_DATA);
    out.extend_from_slice(pem.as_bytes());
    out
}

/// XORs `data` with the nonce repeated, as both sides do around the RSA
/// step (it binds the encrypted password to this connection).
pub fn xor_with_nonce(data: &mut [u8], nonce: &[u8]) {
    let nonce = nonce20(nonce);
    if nonce.is_empty() {
        return;
    }
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::scramble::scramble_sha256;

    const NONCE: &[u8; 20] = b"abcdefghij0123456789";

    #[test]
    fn fast_answer_is_mysql_commons_scramble_and_checks() {
        for pw in ["secret", "app_pw", "\u{e9}t\u{e9}", "x"] {
            let ours = fast_answer(pw, NONCE);
            let theirs = scramble_sha256(NONCE, pw.as_bytes()).unwrap();
            assert_eq!(ours, theirs.to_vec(), "{pw}");
            assert!(fast_matches(&cache_digest(pw), NONCE, &ours));
            assert!(!fast_matches(&cache_digest("other"), NONCE, &ours));
            assert!(!fast_matches(
                &cache_digest(pw),
                b"zyxwvutsrq9876543210",
                &ours
            ));
            assert!(!fast_matches(&cache_digest(pw), NONCE, &ours[..31]));
        }
        // A trailing NUL after the nonce (as greetings carry it) is no part
        // of it.
        let mut with_nul = NONCE.to_vec();
        with_nul.push(0);
        assert_eq!(fast_answer("pw", &with_nul), fast_answer("pw", NONCE));
        assert!(fast_answer("", NONCE).is_empty());
    }

    #[test]
    fn known_digest_vector() {
        // SHA256("password") and SHA256 of that, the published values.
        let stage1 = sha256(&[b"password"]);
        assert_eq!(
            hex(&stage1),
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
        assert_eq!(cache_digest("password"), sha256(&[&stage1]));
    }

    #[test]
    fn exchange_packets_byte_for_byte() {
        assert_eq!(FAST_AUTH_OK, [0x01, 0x03]);
        assert_eq!(PERFORM_FULL_AUTH, [0x01, 0x04]);
        assert_eq!(cleartext_packet("app_pw"), b"app_pw\0");
        assert_eq!(parse_cleartext(b"app_pw\0"), b"app_pw");
        assert_eq!(parse_cleartext(b"app_pw"), b"app_pw");
        let pem = "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n";
        let p = public_key_packet(pem);
        assert_eq!(p[0], 0x01);
        assert_eq!(&p[1..], pem.as_bytes());
    }

    #[test]
    fn nonce_xor_repeats_and_undoes_itself() {
        let mut data = cleartext_packet("a-password-longer-than-twenty");
        let orig = data.clone();
        xor_with_nonce(&mut data, NONCE);
        assert_eq!(data[0], b'a' ^ b'a');
        assert_eq!(data[20], orig[20] ^ NONCE[0], "the nonce repeats");
        xor_with_nonce(&mut data, NONCE);
        assert_eq!(data, orig);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
