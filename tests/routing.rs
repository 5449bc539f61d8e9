//! The routing contract, observed on the real topology: which server
//! answered is read from `@@port` through Gantry.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Opts};
use std::collections::BTreeSet;

use common::{shared_topology, Gantry};

async fn connect(g: &Gantry, db: &str) -> Conn {
    let opts = Opts::from_url(&g.url("app", "app_pw", db)).expect("valid url");
    Conn::new(opts).await.expect("connect through gantry")
}

async fn port(c: &mut Conn, sql: &str) -> u16 {
    c.query_first::<u16, _>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

struct Ports {
    primary: u16,
    replicas: BTreeSet<u16>,
}

fn ports() -> Ports {
    let t = shared_topology();
    Ports {
        primary: t.primary.port,
        replicas: t.replicas.iter().map(|r| r.port).collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_reads_reach_both_replicas_and_never_the_primary() {
    let g = Gantry::start(shared_topology(), &[]);
    let p = ports();
    let mut c = connect(&g, "test").await;
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        seen.insert(port(&mut c, "SELECT @@port").await);
    }
    assert_eq!(seen, p.replicas, "reads are spread over both replicas only");
    // SHOW and a read inside a comment-prefixed statement are reads too.
    let shown: Vec<(String, String)> = c.query("SHOW VARIABLES LIKE 'port'").await.unwrap();
    let shown_port: u16 = shown[0].1.parse().unwrap();
    assert!(
        p.replicas.contains(&shown_port),
        "SHOW went to {shown_port}"
    );
    assert!(p
        .replicas
        .contains(&port(&mut c, "/* report */ SELECT @@port").await));
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_stay_on_the_primary_until_they_end() {
    let g = Gantry::start(shared_topology(), &[]);
    let p = ports();
    let mut c = connect(&g, "test").await;
    for begin in ["BEGIN", "START TRANSACTION", "START TRANSACTION READ ONLY"] {
        c.query_drop(begin).await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                port(&mut c, "SELECT @@port").await,
                p.primary,
                "after {begin}"
            );
        }
        c.query_drop("COMMIT").await.unwrap();
        assert!(p.replicas.contains(&port(&mut c, "SELECT @@port").await));
    }
    c.query_drop("BEGIN").await.unwrap();
    assert_eq!(port(&mut c, "SELECT @@port").await, p.primary);
    c.query_drop("ROLLBACK").await.unwrap();
    assert!(p.replicas.contains(&port(&mut c, "SELECT @@port").await));
}

#[tokio::test(flavor = "multi_thread")]
async fn autocommit_off_keeps_every_statement_on_the_primary() {
    let g = Gantry::start(shared_topology(), &[]);
    let p = ports();
    let mut c = connect(&g, "test").await;
    c.query_drop("SET autocommit=0").await.unwrap();
    for _ in 0..5 {
        assert_eq!(port(&mut c, "SELECT @@port").await, p.primary);
    }
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        port(&mut c, "SELECT @@port").await,
        p.primary,
        "still autocommit=0"
    );
    c.query_drop("SET autocommit=1").await.unwrap();
    assert!(p.replicas.contains(&port(&mut c, "SELECT @@port").await));
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_reads_hints_and_session_functions_go_to_the_primary() {
    let t = shared_topology();
    let table = common::unique_name("route");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY); INSERT INTO test.{table} VALUES (1)"
    ));
    t.wait_replicas_caught_up(std::time::Duration::from_secs(20));
    let g = Gantry::start(t, &[]);
    let p = ports();
    let mut c = connect(&g, "test").await;
    let primary_cases = [
        "/*master*/ SELECT @@port".to_string(),
        "/* master */ SELECT @@port".to_string(),
        "/* gantry:primary */ SELECT @@port".to_string(),
        format!("SELECT @@port FROM test.{table} WHERE id = 1 FOR UPDATE"),
        format!("SELECT @@port FROM test.{table} WHERE id = 1 LOCK IN SHARE MODE"),
        // (FOR SHARE is MySQL 8 syntax, unknown to MariaDB 10.11: the
        // classifier's unit tests cover it.)
        "SELECT @@port + 0 * LAST_INSERT_ID()".to_string(),
        format!("SELECT SQL_CALC_FOUND_ROWS @@port FROM test.{table}"),
    ];
    for sql in &primary_cases {
        // A plain read first, so the session's last connection is a replica.
        assert!(p.replicas.contains(&port(&mut c, "SELECT @@port").await));
        assert_eq!(port(&mut c, sql).await, p.primary, "{sql}");
    }
    // FOUND_ROWS() asks about the previous statement: same connection.
    let found: u32 = c.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(found, 1, "FOUND_ROWS() after SQL_CALC_FOUND_ROWS");
    // GET_LOCK holds the session on the primary until it ends.
    assert_eq!(
        port(
            &mut c,
            "SELECT @@port + 0 * GET_LOCK('gantry_route_lock', 0)"
        )
        .await,
        p.primary
    );
    assert_eq!(
        port(&mut c, "SELECT @@port").await,
        p.primary,
        "held by GET_LOCK"
    );
    let released: u8 = c
        .query_first("SELECT RELEASE_LOCK('gantry_route_lock')")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        released, 1,
        "the lock is released on the connection that holds it"
    );
    // Assigning a user variable from an expression runs on the primary and
    // keeps the session there (Gantry cannot replay the value elsewhere).
    let mut c3 = connect(&g, "test").await;
    assert_eq!(
        port(&mut c3, "SELECT @@port FROM (SELECT @v := 1) AS x").await,
        p.primary
    );
    assert_eq!(port(&mut c3, "SELECT @@port + 0 * @v").await, p.primary);
    // Another session reads from replicas.
    let mut c2 = connect(&g, "test").await;
    assert!(p.replicas.contains(&port(&mut c2, "SELECT @@port").await));
    t.primary.sql(&format!("DROP TABLE test.{table}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_reach_the_primary_and_last_insert_id_survives_the_split() {
    let t = shared_topology();
    let table = common::unique_name("writes");
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))"
    ))
    .await
    .expect("DDL through gantry (replicas would refuse it: read_only)");
    for i in 1..=3u64 {
        c.query_drop(format!("INSERT INTO {table} (v) VALUES ('x')"))
            .await
            .expect("INSERT through gantry");
        let id: u64 = c
            .query_first("SELECT LAST_INSERT_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, i, "LAST_INSERT_ID after insert {i}");
        // A plain read in between must not break the next statement's view.
        let _: Option<u16> = c.query_first("SELECT @@port").await.unwrap();
    }
    assert_eq!(
        t.primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "3",
        "the rows are on the primary"
    );
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn use_schema_follows_the_session_to_every_backend() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "").await;
    c.query_drop("USE sbtest").await.unwrap();
    for _ in 0..6 {
        let db: String = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(db, "sbtest");
    }
    c.query_drop("USE test").await.unwrap();
    for _ in 0..6 {
        let db: String = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(db, "test");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_reach_the_client_unchanged() {
    let g = Gantry::start(shared_topology(), &[]);
    let mut c = connect(&g, "test").await;
    match c.query_drop("SELECT * FROM no_such_table").await {
        Err(Error::Server(e)) => {
            assert_eq!(e.code, 1146);
            assert_eq!(e.state, "42S02");
            assert!(e.message.contains("no_such_table"), "{}", e.message);
        }
        other => panic!("expected server error 1146, got {other:?}"),
    }
    match c.query_drop("SELEC 1").await {
        Err(Error::Server(e)) => assert_eq!(e.code, 1064),
        other => panic!("expected syntax error 1064, got {other:?}"),
    }
    // The session is still usable.
    let one: u8 = c.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_get_access_denied() {
    let g = Gantry::start(shared_topology(), &[]);
    for (user, pw) in [("app", "wrong"), ("nobody", "app_pw"), ("app", "")] {
        let opts = Opts::from_url(&g.url(user, pw, "test")).unwrap();
        match Conn::new(opts).await {
            Err(Error::Server(e)) => {
                assert_eq!(e.code, 1045, "{user}/{pw}");
                assert_eq!(e.state, "28000");
                assert!(
                    e.message
                        .starts_with(&format!("Access denied for user '{user}'@'127.0.0.1'")),
                    "{}",
                    e.message
                );
            }
            other => panic!("{user}/{pw}: expected 1045, got {other:?}"),
        }
    }
    let opts = Opts::from_url(&g.url("app", "app_pw", "no_such_db")).unwrap();
    match Conn::new(opts).await {
        Err(Error::Server(e)) => assert!(e.code == 1049 || e.code == 1044, "{e:?}"),
        other => panic!("expected unknown database error, got {other:?}"),
    }
}
