//! MariaDB extended metadata (MARIADB_CLIENT_EXTENDED_METADATA): a client
//! that requests it gets column definitions with the extended type info
//! (e.g. format "json" for a JSON column), through Gantry byte for byte as
//! directly; a client that does not gets plain definitions, also through a
//! Gantry whose pools hold connections of the other kind. mysql_async never
//! requests MariaDB's extended capabilities, so this test speaks the
//! protocol itself.

mod common;

use common::raw::{Login, RawClient};
use common::{shared_topology, Gantry};
use std::time::Duration;

const EXTENDED_METADATA: u32 = 1 << 3;

/// A raw client logged in as app/app_pw: with `extended_metadata`, as a
/// MariaDB client (CLIENT_MYSQL clear) requesting EXTENDED_METADATA,
/// otherwise as a MySQL-flavoured one.
async fn login(port: u16, extended_metadata: bool) -> RawClient {
    let extended = if extended_metadata {
        EXTENDED_METADATA
    } else {
        0
    };
    let c = RawClient::login(
        port,
        &Login {
            extended,
            ..Login::default()
        },
    )
    .await;
    if extended_metadata {
        assert_ne!(c.greeting.extended & EXTENDED_METADATA, 0, "offered");
    }
    c
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
    let mut c = login(port, extended_metadata).await;
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
    let mut direct = login(t.primary.port, true).await;
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
    let mut ext = login(g.port, true).await;
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
        let mut plain = login(g.port, false).await;
        let (defs, _) = plain.query(&on_primary).await;
        assert_eq!(defs, direct_plain, "plain through Gantry to the primary");
        let (defs, rows) = plain.query(&on_replica).await;
        assert!(replica_ports.contains(&last_value(&rows[0])), "{rows:?}");
        assert_eq!(defs, direct_plain_replica, "plain from a replica");
        plain.quit().await;
        let mut ext = login(g.port, true).await;
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
