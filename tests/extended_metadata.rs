//! MariaDB extended metadata (MARIADB_CLIENT_EXTENDED_METADATA): a client
//! that requests it gets column definitions with the extended type info
//! (e.g. format "json" for a JSON column), through Gantry byte for byte as
//! directly; a client that does not gets plain definitions, also through a
//! Gantry whose pools hold connections of the other kind. mysql_async never
//! requests MariaDB's extended capabilities, so this test speaks the
//! protocol itself.

mod common;

use bytes::BytesMut;
use gantry::protocol::packet::{put_packet, PacketReader};
use mysql_common::scramble::scramble_native;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::{shared_topology, Gantry};

const CLIENT_MYSQL: u32 = 0x0000_0001;
const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;
const EXTENDED_METADATA: u32 = 1 << 3;

/// The parts of a greeting this test looks at.
struct Greeting {
    capabilities: u32,
    /// The last 4 of the 10 reserved bytes (MariaDB's extended capabilities
    /// when CLIENT_MYSQL is clear).
    extended: u32,
    nonce: Vec<u8>,
}

fn parse_greeting(p: &[u8]) -> Greeting {
    assert_eq!(p[0], 10, "protocol 10 greeting: {p:?}");
    let mut at = 1 + p[1..].iter().position(|&b| b == 0).unwrap() + 1;
    at += 4; // connection id
    let mut nonce = p[at..at + 8].to_vec();
    at += 8 + 1;
    let lo = u16::from_le_bytes([p[at], p[at + 1]]) as u32;
    at += 2 + 1 + 2; // capabilities, collation, status
    let hi = u16::from_le_bytes([p[at], p[at + 1]]) as u32;
    at += 2;
    let auth_len = p[at] as usize;
    at += 1 + 6;
    let extended = u32::from_le_bytes(p[at..at + 4].try_into().unwrap());
    at += 4;
    let rest = auth_len.saturating_sub(8).max(13);
    nonce.extend_from_slice(&p[at..at + rest - 1]); // without its NUL
    Greeting {
        capabilities: lo | hi << 16,
        extended,
        nonce,
    }
}

/// A raw-protocol client logged in as app/app_pw with mysql_native_password.
struct Client {
    stream: TcpStream,
    reader: PacketReader,
    greeting: Greeting,
}

impl Client {
    /// Logs in to `port`; with `extended_metadata`, as a MariaDB client
    /// (CLIENT_MYSQL clear) requesting EXTENDED_METADATA, otherwise as a
    /// MySQL-flavoured client (CLIENT_MYSQL set, filler zero).
    async fn login(port: u16, extended_metadata: bool) -> Client {
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
            | CLIENT_DEPRECATE_EOF;
        let extended = if extended_metadata {
            assert_eq!(greeting.capabilities & CLIENT_MYSQL, 0, "MariaDB greeting");
            assert_ne!(greeting.extended & EXTENDED_METADATA, 0, "offered");
            EXTENDED_METADATA
        } else {
            caps |= CLIENT_MYSQL;
            0
        };
        let mut login = Vec::new();
        login.extend_from_slice(&caps.to_le_bytes());
        login.extend_from_slice(&(16u32 << 20).to_le_bytes());
        login.push(45); // utf8mb4_general_ci
        login.extend_from_slice(&[0; 19]);
        login.extend_from_slice(&extended.to_le_bytes());
        login.extend_from_slice(b"app\0");
        let scramble = scramble_native(&greeting.nonce, b"app_pw").unwrap();
        login.push(scramble.len() as u8);
        login.extend_from_slice(&scramble);
        login.extend_from_slice(b"test\0mysql_native_password\0");
        let mut out = BytesMut::new();
        put_packet(&mut out, 1, &login);
        stream.write_all(&out).await.unwrap();
        let (reply, _) = reader.read_payload(&mut stream).await.unwrap();
        assert_eq!(reply.first(), Some(&0x00), "login OK on {port}: {reply:?}");
        Client {
            stream,
            reader,
            greeting,
        }
    }

    /// Runs `sql`; returns its column definition packets and text rows.
    async fn query(&mut self, sql: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut cmd = vec![0x03];
        cmd.extend_from_slice(sql.as_bytes());
        let mut out = BytesMut::new();
        put_packet(&mut out, 0, &cmd);
        self.stream.write_all(&out).await.unwrap();
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

    /// COM_QUIT, so Gantry pools the session's backend connections.
    async fn quit(mut self) {
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

    async fn read(&mut self) -> (Vec<u8>, u8) {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.reader.read_payload(&mut self.stream),
        )
        .await
        .expect("answer within 10 s")
        .unwrap()
    }
}

/// The value of the last column of a text row (lengths < 251).
fn last_value(row: &[u8]) -> String {
    let mut at = 0;
    let mut last = &row[0..0];
    while at < row.len() {
        let len = row[at] as usize;
        assert!(len < 251, "short values only: {row:?}");
        last = &row[at + 1..at + 1 + len];
        at += 1 + len;
    }
    String::from_utf8_lossy(last).into_owned()
}

/// Column definitions of `sql` on a fresh connection to `port`.
async fn direct_defs(port: u16, extended_metadata: bool, sql: &str) -> Vec<Vec<u8>> {
    let mut c = Client::login(port, extended_metadata).await;
    let (defs, _) = c.query(sql).await;
    c.quit().await;
    defs
}

fn mentions_json(def: &[u8]) -> bool {
    def.windows(4).any(|w| w == b"json")
}

#[tokio::test(flavor = "multi_thread")]
async fn json_column_definition_is_byte_identical_with_and_without_extended_metadata() {
    let t = shared_topology();
    let table = common::unique_name("extmeta");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY, j JSON); \
         INSERT INTO test.{table} VALUES (1, '{{\"a\": 1}}')"
    ));
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let g = Gantry::start(t, &[]);
    let on_primary = format!("/*master*/ SELECT j FROM {table}");
    let on_replica = format!("SELECT j, @@port FROM {table}");
    let replica_ports: Vec<String> = t.replicas.iter().map(|r| r.port.to_string()).collect();

    // Directly: the extended definition names the format, the plain one not.
    let mut direct = Client::login(t.primary.port, true).await;
    assert_ne!(
        direct.greeting.extended & !EXTENDED_METADATA,
        0,
        "the server offers more than Gantry passes on"
    );
    let (direct_ext, _) = direct.query(&on_primary).await;
    assert!(mentions_json(&direct_ext[0]), "{:?}", direct_ext[0]);
    direct.quit().await;
    let direct_ext_replica = direct_defs(t.replicas[0].port, true, &on_replica).await;
    let direct_plain = direct_defs(t.primary.port, false, &on_primary).await;
    assert!(!mentions_json(&direct_plain[0]), "{:?}", direct_plain[0]);
    assert_ne!(direct_plain[0], direct_ext[0]);
    let direct_plain_replica = direct_defs(t.replicas[0].port, false, &on_replica).await;

    // Through Gantry, requesting it: only EXTENDED_METADATA is offered.
    let mut ext = Client::login(g.port, true).await;
    assert_eq!(ext.greeting.extended, EXTENDED_METADATA);
    let (defs, _) = ext.query(&on_primary).await;
    assert_eq!(defs, direct_ext, "through Gantry to the primary");
    let (defs, rows) = ext.query(&on_replica).await;
    assert!(
        replica_ports.contains(&last_value(&rows[0])),
        "read on a replica: {rows:?}"
    );
    assert_eq!(defs, direct_ext_replica, "through Gantry from a replica");
    ext.quit().await; // its backend connections go back to the pools

    // Not requesting it: plain definitions, not a pooled extended connection.
    for _ in 0..2 {
        let mut plain = Client::login(g.port, false).await;
        let (defs, _) = plain.query(&on_primary).await;
        assert_eq!(defs, direct_plain, "plain through Gantry to the primary");
        let (defs, rows) = plain.query(&on_replica).await;
        assert!(replica_ports.contains(&last_value(&rows[0])), "{rows:?}");
        assert_eq!(defs, direct_plain_replica, "plain from a replica");
        plain.quit().await;
        let mut ext = Client::login(g.port, true).await;
        let (defs, _) = ext.query(&on_primary).await;
        assert_eq!(defs, direct_ext, "extended again after a plain session");
        ext.quit().await;
    }
    t.primary.sql(&format!("DROP TABLE test.{table}"));
}

/// The `mariadb` CLI (Connector/C, which requests EXTENDED_METADATA itself)
/// prints the same column type info through Gantry as directly:
/// `Type: BLOB (format=json)` (`--table`: batch output prints no types).
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_cli_sees_the_json_format_through_gantry() {
    let t = shared_topology();
    let table = common::unique_name("extmeta_cli");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (j JSON); INSERT INTO test.{table} VALUES ('[1]')"
    ));
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let g = Gantry::start(t, &[]);
    let sql = format!("SELECT j FROM test.{table}");
    let args = ["--column-type-info", "--table", "-e", sql.as_str()];
    let through = g.mariadb(&args);
    let direct = std::process::Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", t.primary.port)])
        .args(["-uapp", "-papp_pw"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the mariadb client is installed");
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(direct.status.success(), "{direct:?}");
    assert!(text(&direct).contains("(format=json)"), "{}", text(&direct));
    assert_eq!(text(&through), text(&direct), "{through:?}");
    t.primary.sql(&format!("DROP TABLE test.{table}"));
}
