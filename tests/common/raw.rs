//! A raw-protocol client for tests that look at bytes the drivers hide
//! (capability negotiation, column definitions, session-tracking data).
//! It logs in with mysql_native_password.

use bytes::BytesMut;
use gantry::protocol::packet::{put_packet, PacketReader};
use mysql_common::scramble::scramble_native;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub const CLIENT_MYSQL: u32 = 0x0000_0001;
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub const CLIENT_SESSION_TRACK: u32 = 0x0080_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;

/// The parts of a greeting tests look at.
pub struct Greeting {
    pub capabilities: u32,
    /// The last 4 of the 10 reserved bytes (MariaDB's extended capabilities
    /// when CLIENT_MYSQL is clear).
    pub extended: u32,
    pub nonce: Vec<u8>,
}

pub fn parse_greeting(p: &[u8]) -> Greeting {
    assert_eq!(p[0], 10, "protocol 10 greeting: {p:?}");
    let nul = 1 + p[1..].iter().position(|b| *b == 0).unwrap();
    let mut at = nul + 1 + 4; // version NUL, connection id
    let mut nonce = p[at..at + 8].to_vec();
    at += 8 + 1; // auth data part 1, filler
    let low = u16::from_le_bytes([p[at], p[at + 1]]) as u32;
    at += 2 + 1 + 2; // capabilities low, charset, status
    let high = u16::from_le_bytes([p[at], p[at + 1]]) as u32;
    at += 2;
    let auth_len = p[at] as usize;
    at += 1 + 6; // auth data length, 6 reserved bytes
    let extended = u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
    at += 4;
    let rest = auth_len.saturating_sub(9).max(12);
    nonce.extend_from_slice(&p[at..at + rest]);
    Greeting {
        capabilities: low | (high << 16),
        extended,
        nonce,
    }
}

/// How to log in.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    /// Capabilities beyond the base set (PROTOCOL_41, SECURE_CONNECTION,
    /// PLUGIN_AUTH, TRANSACTIONS, MULTI_RESULTS, DEPRECATE_EOF).
    pub capabilities: u32,
    /// MariaDB extended capabilities; when non-zero the client presents
    /// itself as MariaDB (CLIENT_MYSQL clear).
    pub extended: u32,
}

impl Default for Login<'_> {
    fn default() -> Self {
        Self {
            user: "app",
            password: "app_pw",
            database: "test",
            capabilities: 0,
            extended: 0,
        }
    }
}

pub struct RawClient {
    pub stream: TcpStream,
    reader: PacketReader,
    pub greeting: Greeting,
}

impl RawClient {
    pub async fn login(port: u16, l: &Login<'_>) -> RawClient {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut reader = PacketReader::new();
        let (payload, _) = reader.read_payload(&mut stream).await.unwrap();
        let greeting = parse_greeting(&payload);
        let mut caps = CLIENT_CONNECT_WITH_DB
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH
            | CLIENT_DEPRECATE_EOF
            | l.capabilities;
        if l.extended == 0 {
            caps |= CLIENT_MYSQL;
        } else {
            assert_eq!(greeting.capabilities & CLIENT_MYSQL, 0, "MariaDB greeting");
        }
        let mut login = Vec::new();
        login.extend_from_slice(&caps.to_le_bytes());
        login.extend_from_slice(&(16u32 << 20).to_le_bytes());
        login.push(45); // utf8mb4_general_ci
        login.extend_from_slice(&[0; 19]);
        login.extend_from_slice(&l.extended.to_le_bytes());
        login.extend_from_slice(l.user.as_bytes());
        login.push(0);
        let scramble = scramble_native(&greeting.nonce, l.password.as_bytes()).unwrap();
        login.push(scramble.len() as u8);
        login.extend_from_slice(&scramble);
        login.extend_from_slice(l.database.as_bytes());
        login.extend_from_slice(b"\0mysql_native_password\0");
        let mut out = BytesMut::new();
        put_packet(&mut out, 1, &login);
        stream.write_all(&out).await.unwrap();
        let (reply, _) = reader.read_payload(&mut stream).await.unwrap();
        assert_eq!(reply.first(), Some(&0x00), "login OK on {port}: {reply:?}");
        RawClient {
            stream,
            reader,
            greeting,
        }
    }

    /// Sends COM_QUERY `sql`.
    pub async fn send_query(&mut self, sql: &str) {
        let mut cmd = vec![0x03];
        cmd.extend_from_slice(sql.as_bytes());
        let mut out = BytesMut::new();
        put_packet(&mut out, 0, &cmd);
        self.stream.write_all(&out).await.unwrap();
    }

    /// Runs a statement answered by OK (or ERR); returns that packet.
    pub async fn execute(&mut self, sql: &str) -> Vec<u8> {
        self.send_query(sql).await;
        self.read().await.0
    }

    /// Runs `sql`; returns its column definition packets and text rows.
    pub async fn query(&mut self, sql: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        self.send_query(sql).await;
        let (count, _) = self.read().await;
        assert!(count.len() == 1 && count[0] > 0, "{sql}: {count:?}");
        let mut defs = Vec::new();
        for _ in 0..count[0] {
            defs.push(self.read().await.0);
        }
        let mut rows = Vec::new();
        loop {
            let (p, _) = self.read().await;
            assert_ne!(p.first(), Some(&0xff), "{sql}: {p:?}");
            if p.first() == Some(&0xfe) && p.len() < 9 {
                return (defs, rows); // DEPRECATE_EOF: OK with an 0xFE header
            }
            rows.push(p);
        }
    }

    /// Sends one command (payload `body`) in as many packets as it needs;
    /// a write error is ignored (the peer may refuse and close before it
    /// read everything).
    pub async fn send_command(&mut self, body: &[u8]) {
        let mut out = BytesMut::new();
        put_packet(&mut out, 0, body);
        let _ = self.stream.write_all(&out).await;
    }

    /// COM_STMT_PREPARE of `sql`; returns the statement id. Expects
    /// DEPRECATE_EOF (the default login) and no result columns.
    pub async fn prepare(&mut self, sql: &str) -> u32 {
        let mut body = vec![0x16];
        body.extend_from_slice(sql.as_bytes());
        self.send_command(&body).await;
        let (ok, _) = self.read().await;
        assert_eq!(ok.first(), Some(&0), "prepare {sql}: {ok:?}");
        let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
        let columns = u16::from_le_bytes([ok[5], ok[6]]);
        let params = u16::from_le_bytes([ok[7], ok[8]]);
        for _ in 0..columns + params {
            self.read().await;
        }
        id
    }

    /// COM_QUIT, so Gantry pools the session's backend connections.
    pub async fn quit(mut self) {
        let mut out = BytesMut::new();
        put_packet(&mut out, 0, &[0x01]);
        let _ = self.stream.write_all(&out).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut self.stream, &mut rest),
        )
        .await;
    }

    pub async fn read(&mut self) -> (Vec<u8>, u8) {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.reader.read_payload(&mut self.stream),
        )
        .await
        .expect("answer within 10 s")
        .unwrap()
    }
}
