//! caching_sha2_password as a server, for clients that ask for it: the
//! fast path from an in-memory cache, full authentication over TLS or
//! with Gantry's RSA key (see `protocol::sha2` for the exchange).

use bytes::BytesMut;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use super::client_stream::ClientStream;
use super::transport::Transport;
use crate::protocol::auth;
use crate::protocol::packet::{put_packet, PacketReader, ReadInto};
use crate::protocol::rsa_key::ServerKeys;
use crate::protocol::sha2::{self as s2, cache_digest};

/// The client side of a login exchange: packets out, and whether the
/// connection is encrypted (then the clear password may travel as is).
pub(crate) trait LoginIo: ReadInto {
    fn on_tls(&self) -> bool;
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
}

impl LoginIo for Transport {
    fn on_tls(&self) -> bool {
        self.is_tls()
    }
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        Transport::send(self, bytes).await
    }
}

impl LoginIo for ClientStream {
    fn on_tls(&self) -> bool {
        self.transport().is_tls()
    }
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await
    }
}

/// The cache and the key pair, one per Gantry.
#[derive(Default)]
pub struct Sha2Server {
    /// user → `SHA256(SHA256(password))` of its last full authentication.
    /// Compared with the account's current password at each use, so a
    /// changed password is never served from the cache.
    cache: Mutex<HashMap<String, [u8; 32]>>,
    /// Configured at start, or generated when first needed.
    keys: OnceCell<Arc<ServerKeys>>,
}

/// One login to check. No `Debug`: it holds the password.
pub(crate) struct Attempt<'a> {
    pub user: &'a str,
    /// The account's clear password; `None` for an unknown user (the
    /// exchange runs all the same, so that it does not tell which
    /// accounts exist).
    pub password: Option<&'a str>,
    pub nonce: &'a [u8; 20],
    /// The client's first answer: fast auth to `nonce`, or empty.
    pub response: &'a [u8],
}

/// How an exchange ended; the caller sends OK or ERR with `next_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sha2Outcome {
    pub accepted: bool,
    pub next_seq: u8,
    /// The client answered with something (for "using password: YES").
    pub used_password: bool,
    /// For the debug log: "fast", "full over TLS", "full over RSA"...
    pub path: &'static str,
}

impl Sha2Server {
    /// With the configured key pair (`sha256-private-key`).
    pub fn with_keys(keys: Arc<ServerKeys>) -> Self {
        Self {
            cache: Mutex::default(),
            keys: OnceCell::new_with(Some(keys)),
        }
    }

    async fn keys(&self) -> io::Result<Arc<ServerKeys>> {
        self.keys
            .get_or_try_init(|| async {
                let keys = tokio::task::spawn_blocking(ServerKeys::generate)
                    .await
                    .map_err(io::Error::other)?
                    .map_err(io::Error::other)?;
                tracing::info!(
                    "generated an RSA key pair for caching_sha2_password (no sha256-private-key configured)"
                );
                Ok(Arc::new(keys))
            })
            .await
            .cloned()
    }

    fn cached(&self, user: &str) -> Option<[u8; 32]> {
        self.cache.lock().ok()?.get(user).copied()
    }

    fn remember(&self, user: &str, digest: [u8; 32]) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(user.to_string(), digest);
        }
    }

    /// Runs the exchange after the client's login (or COM_CHANGE_USER)
    /// described by `a`; `seq` is the sequence id of Gantry's next packet.
    pub(crate) async fn authenticate<S: LoginIo>(
        &self,
        stream: &mut S,
        reader: &mut PacketReader,
        a: Attempt<'_>,
        seq: u8,
    ) -> io::Result<Sha2Outcome> {
        let Attempt {
            user,
            password,
            nonce,
            response,
        } = a;
        let mut response = response.to_vec();
        let mut seq = seq;
        if response.is_empty() && password != Some("") {
            // A client whose plugin differs from the greeting's (libmysql,
            // libmariadb) has no nonce for it yet and sends nothing: it
            // expects the switch request a server sends then.
            let mut out = BytesMut::with_capacity(64);
            put_packet(&mut out, seq, &auth::auth_switch(auth::CACHING_SHA2, nonce));
            stream.send(&out).await?;
            let (answer, s) = reader.read_payload(stream).await?;
            (response, seq) = (answer, s.wrapping_add(1));
        }
        let response = &response[..];
        let used_password = !response.is_empty();
        let done = |accepted, next_seq, path| Sha2Outcome {
            accepted,
            next_seq,
            used_password,
            path,
        };
        // An empty password is an empty answer, and nothing follows.
        if response.is_empty() || password == Some("") {
            let ok = response.is_empty() && password == Some("");
            return Ok(done(ok, seq, "empty password"));
        }
        let digest = password.map(cache_digest);
        if let (Some(d), Some(c)) = (digest, self.cached(user)) {
            if s2::constant_time_eq(&d, &c) {
                // As the server: a cached account with a wrong answer is
                // refused, not sent to full authentication.
                if !s2::fast_matches(&d, nonce, response) {
                    return Ok(done(false, seq, "fast"));
                }
                let mut out = BytesMut::with_capacity(6);
                put_packet(&mut out, seq, &s2::FAST_AUTH_OK);
                stream.send(&out).await?;
                return Ok(done(true, seq.wrapping_add(1), "fast"));
            }
        }
        let mut out = BytesMut::with_capacity(600);
        put_packet(&mut out, seq, &s2::PERFORM_FULL_AUTH);
        stream.send(&out).await?;
        let (mut packet, mut s) = reader.read_payload(stream).await?;
        let (ok, path) = if stream.on_tls() {
            let given = s2::parse_cleartext(&packet);
            let ok = password.is_some_and(|pw| s2::constant_time_eq(given, pw.as_bytes()));
            (ok, "full over TLS")
        } else {
            let keys = self.keys().await?;
            if packet == [s2::REQUEST_PUBLIC_KEY] {
                out.clear();
                put_packet(
                    &mut out,
                    s.wrapping_add(1),
                    &s2::public_key_packet(keys.public_pem()),
                );
                stream.send(&out).await?;
                (packet, s) = reader.read_payload(stream).await?;
            }
            let ok = match password {
                Some(pw) => {
                    let pw = pw.to_string();
                    let nonce = *nonce;
                    // A private-key operation: milliseconds, off the workers.
                    tokio::task::spawn_blocking(move || keys.password_matches(&packet, &nonce, &pw))
                        .await
                        .unwrap_or(false)
                }
                None => false,
            };
            (ok, "full over RSA")
        };
        if let (true, Some(d)) = (ok, digest) {
            self.remember(user, d);
        }
        Ok(done(ok, s.wrapping_add(1), path))
    }
}

#[cfg(test)]
mod tests;
