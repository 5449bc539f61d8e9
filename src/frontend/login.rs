//! The server side of the connection phase, shared by the data port and the
//! admin port: greeting, optional TLS (the client's SSL request, then the
//! handshake), login request, optional auth switch to
//! mysql_native_password, and the password check.

use bytes::BytesMut;
use rand::Rng;
use std::io;
use std::sync::Arc;

use super::sha2::{Attempt, Sha2Server};
use super::tls::{ClientTls, PortTls};
use super::transport::Transport;
use crate::protocol::auth::{self, ClientLogin, ServerIdentity, CLIENT_PLUGIN_AUTH};
use crate::protocol::credential::Credential;
use crate::protocol::packet::{put_packet, PacketReader};
use crate::protocol::reply::{err_packet, MyError};

/// A client that proved its password. The caller sends the final OK (or an
/// ERR, e.g. for an unknown database) with sequence id `next_seq`.
pub struct Authenticated {
    pub login: ClientLogin,
    /// What Gantry logs in to the backends with for this client.
    pub password: Arc<Credential>,
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

pub async fn send_error(stream: &mut Transport, seq: u8, err: &MyError) -> io::Result<()> {
    let mut out = BytesMut::new();
    err_packet(&mut out, seq, err);
    stream.send(&out).await
}

/// Where the connection phase finds accounts.
pub enum Accounts<'a> {
    /// The data port: `pwds`, then (`accounts-from-backend`) the
    /// servers' own accounts for this client address.
    Clients {
        ctx: &'a crate::context::Context,
        client: std::net::IpAddr,
    },
    /// The admin port: its one account.
    Admin { user: &'a str, password: &'a str },
}

impl Accounts<'_> {
    async fn find(&self, user: &str) -> Option<Arc<Credential>> {
        match self {
            Accounts::Clients { ctx, client } => {
                crate::accounts::credential_for(ctx, user, *client).await
            }
            Accounts::Admin {
                user: admin,
                password,
            } => (user == *admin).then(|| Arc::new(Credential::from_config(password))),
        }
    }
}

/// What the listener shows and requires of one connection.
pub struct Listener<'a> {
    pub connection_id: u32,
    pub identity: &'a ServerIdentity,
    /// The client's address, for access-denied messages.
    pub peer_host: &'a str,
    /// The rules (`require-ssl-users`, client certificates).
    pub tls: &'a ClientTls,
    /// The listener's acceptor and mode; `None` = no TLS offered.
    pub port: Option<PortTls<'a>>,
    /// caching_sha2_password done natively; `None`: such clients are
    /// switched to mysql_native_password.
    pub sha2: Option<&'a Sha2Server>,
    /// The method the greeting offers (`default-auth-plugin`).
    pub auth_plugin: &'a str,
}

/// Runs the connection phase up to (not including) the final OK; gives
/// the client's transport back (upgraded to TLS if the client asked).
pub async fn authenticate(
    mut stream: Transport,
    reader: &mut PacketReader,
    at: &Listener<'_>,
    lookup: Accounts<'_>,
) -> io::Result<(Transport, Outcome)> {
    let nonce = new_nonce();
    let mut out = BytesMut::with_capacity(128);
    put_packet(
        &mut out,
        0,
        &auth::server_greeting(
            at.identity,
            at.connection_id,
            &nonce,
            at.port.is_some(),
            at.auth_plugin,
        ),
    );
    stream.send(&out).await?;
    let (mut payload, mut seq) = reader.read_payload(&mut stream).await?;
    if let Some(port) = at.port.as_ref().filter(|_| auth::is_ssl_request(&payload)) {
        // Clients start the handshake at once: what was read past the
        // request belongs to it.
        let early = reader.buf.split();
        stream = stream.start_tls(port.acceptor, &early).await?;
        (payload, seq) = reader.read_payload(&mut stream).await?;
    }
    let first = (payload, seq);
    let outcome = check_login(&mut stream, reader, at, first, nonce, lookup).await?;
    Ok((stream, outcome))
}

/// The login request (`first`: its payload and sequence id) onwards, on
/// the final transport.
async fn check_login(
    stream: &mut Transport,
    reader: &mut PacketReader,
    at: &Listener<'_>,
    (payload, seq): (Vec<u8>, u8),
    nonce: [u8; 20],
    lookup: Accounts<'_>,
) -> io::Result<Outcome> {
    let identity = at.identity;
    let required = at.port.as_ref().is_some_and(|p| p.required);
    if required && !stream.is_tls() {
        send_error(stream, seq.wrapping_add(1), &MyError::insecure_transport()).await?;
        return Ok(Outcome::Refused(Refused {
            user: None,
            reason: "TLS required",
        }));
    }
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

    let plugin = login
        .auth_plugin
        .as_deref()
        .filter(|_| login.capabilities & CLIENT_PLUGIN_AUTH != 0);
    let known = lookup.find(&login.user).await;
    if let Some(server) = at.sha2.filter(|_| plugin == Some(auth::CACHING_SHA2)) {
        // Natively, when Gantry has the clear password (or the user is
        // unknown: refused after the same exchange).
        if known.as_deref().is_none_or(|c| c.clear().is_some()) {
            let password = known.as_deref().and_then(Credential::clear);
            let user = login.user.clone();
            let response = std::mem::take(&mut login.auth_response);
            let r = server
                .authenticate(
                    stream,
                    reader,
                    Attempt {
                        user: &user,
                        password,
                        nonce: &nonce,
                        response: &response,
                    },
                    seq,
                )
                .await?;
            tracing::debug!(user = %user, path = r.path, accepted = r.accepted, "caching_sha2 auth");
            login.auth_response = response;
            let learnt = known.as_deref().filter(|_| r.accepted).cloned();
            let check = (known, learnt, r.used_password);
            return finish(stream, at, login, check, r.next_seq, nonce).await;
        }
    }
    let wants_other_plugin = plugin.is_some_and(|p| p != auth::NATIVE_PASSWORD);
    if wants_other_plugin {
        // e.g. caching_sha2_password (MySQL 8 clients): ask for native.
        let mut out = BytesMut::with_capacity(64);
        put_packet(&mut out, seq, &auth::auth_switch_to_native(&nonce));
        stream.send(&out).await?;
        let (resp, s) = reader.read_payload(stream).await?;
        login.auth_response = resp;
        seq = s.wrapping_add(1);
    }

    let learnt = known
        .as_deref()
        .and_then(|c| c.verify(&nonce, &login.auth_response));
    let used_password = !login.auth_response.is_empty();
    finish(
        stream,
        at,
        login,
        (known, learnt, used_password),
        seq,
        nonce,
    )
    .await
}

/// The account (`None`: unknown), what the check learnt (`None`: wrong
/// password) and whether the client sent a password.
type Check = (Option<Arc<Credential>>, Option<Credential>, bool);

/// Accepts a client whose password checked out, if its transport suits
/// its account; otherwise sends the access-denied ERR.
async fn finish(
    stream: &mut Transport,
    at: &Listener<'_>,
    login: ClientLogin,
    (known, learnt, used_password): Check,
    seq: u8,
    nonce: [u8; 20],
) -> io::Result<Outcome> {
    // As for an account with REQUIRE SSL: the usual access denied.
    let transport_ok = at.tls.transport_allows(&login.user, stream);
    let ok = learnt.is_some();
    match learnt {
        Some(password) if transport_ok => Ok(Outcome::Accepted(Box::new(Authenticated {
            login,
            password: Arc::new(password),
            next_seq: seq,
            nonce,
        }))),
        _ => {
            let err = MyError::access_denied(&login.user, at.peer_host, used_password);
            send_error(stream, seq, &err).await?;
            Ok(Outcome::Refused(Refused {
                reason: match known {
                    None => "unknown user",
                    Some(_) if !ok => "wrong password",
                    Some(_) => {
                        "TLS (and with ssl-ca a client certificate) required for this account"
                    }
                },
                user: Some(login.user),
            }))
        }
    }
}
