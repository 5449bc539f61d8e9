//! The server side of the connection phase, shared by the data port and the
//! admin port: greeting, login request, optional auth switch to
//! mysql_native_password, and the password check.

use bytes::BytesMut;
use rand::Rng;
use std::io;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::protocol::auth::{self, ClientLogin, ServerIdentity, CLIENT_PLUGIN_AUTH};
use crate::protocol::packet::{put_packet, PacketReader};
use crate::protocol::reply::{err_packet, MyError};

/// A client that proved its password. The caller sends the final OK (or an
/// ERR, e.g. for an unknown database) with sequence id `next_seq`.
pub struct Authenticated {
    pub login: ClientLogin,
    pub password: Arc<str>,
    pub next_seq: u8,
    /// The nonce of the greeting (COM_CHANGE_USER answers are scrambled
    /// with it).
    pub nonce: [u8; 20],
}

/// A login that was refused; the ERR has been sent. For the log: the user
/// name as the client sent it, never its password or scramble.
#[derive(Debug)]
pub struct Refused {
    /// `None` when the login request could not be read.
    pub user: Option<String>,
    pub reason: &'static str,
}

/// How the connection phase ended (an I/O error aside).
pub enum Outcome {
    Accepted(Box<Authenticated>),
    Refused(Refused),
}

/// Random printable nonce, as MySQL servers send.
pub fn new_nonce() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut nonce = [0u8; 20];
    for b in nonce.iter_mut() {
        *b = rng.random_range(0x21u8..0x7f);
    }
    nonce
}

pub async fn send_error(stream: &mut TcpStream, seq: u8, err: &MyError) -> io::Result<()> {
    let mut out = BytesMut::new();
    err_packet(&mut out, seq, err);
    stream.write_all(&out).await
}

/// Runs the connection phase up to (not including) the final OK.
pub async fn authenticate<F>(
    stream: &mut TcpStream,
    reader: &mut PacketReader,
    connection_id: u32,
    identity: &ServerIdentity,
    peer_host: &str,
    lookup: F,
) -> io::Result<Outcome>
where
    F: Fn(&str) -> Option<Arc<str>>,
{
    let nonce = new_nonce();
    let mut out = BytesMut::with_capacity(128);
    put_packet(
        &mut out,
        0,
        &auth::server_greeting(identity, connection_id, &nonce),
    );
    stream.write_all(&out).await?;

    let (payload, seq) = reader.read_payload(stream).await?;
    let mut login = match auth::parse_login(&payload) {
        Ok(l) => l,
        Err(e) => {
            send_error(stream, seq.wrapping_add(1), &e).await?;
            return Ok(Outcome::Refused(Refused {
                user: None,
                reason: "malformed login request",
            }));
        }
    };
    login.capabilities &= identity.capabilities | auth::CLIENT_SSL;
    // Only the extended capabilities the greeting offered.
    login.mariadb_capabilities &= identity.mariadb_capabilities;
    let mut seq = seq.wrapping_add(1);

    let wants_other_plugin = login.capabilities & CLIENT_PLUGIN_AUTH != 0
        && login
            .auth_plugin
            .as_deref()
            .is_some_and(|p| p != auth::NATIVE_PASSWORD);
    if wants_other_plugin {
        // e.g. caching_sha2_password (MySQL 8 clients): ask for native.
        out.clear();
        put_packet(&mut out, seq, &auth::auth_switch_to_native(&nonce));
        stream.write_all(&out).await?;
        let (resp, s) = reader.read_payload(stream).await?;
        login.auth_response = resp;
        seq = s.wrapping_add(1);
    }

    let password = lookup(&login.user);
    let ok = password
        .as_deref()
        .is_some_and(|pw| auth::native_password_matches(&nonce, pw, &login.auth_response));
    match password {
        Some(password) if ok => Ok(Outcome::Accepted(Box::new(Authenticated {
            login,
            password,
            next_seq: seq,
            nonce,
        }))),
        known => {
            let err =
                MyError::access_denied(&login.user, peer_host, !login.auth_response.is_empty());
            send_error(stream, seq, &err).await?;
            Ok(Outcome::Refused(Refused {
                reason: if known.is_some() {
                    "wrong password"
                } else {
                    "unknown user"
                },
                user: Some(login.user),
            }))
        }
    }
}
