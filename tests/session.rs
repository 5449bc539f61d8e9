//! Session fidelity: a session whose statements are spread over several
//! backends behaves as it does on one direct connection.

mod common;

use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn, Error, Opts, Row};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{shared_topology, Gantry};

async fn connect(g: &Gantry, db: &str) -> Conn {
    Conn::new(Opts::from_url(&g.url("app", "app_pw", db)).unwrap())
        .await
        .expect("connect through gantry")
}

/// Runs `sql` `n` times and returns (values, ports that answered).
async fn repeated(c: &mut Conn, sql: &str, n: usize) -> (BTreeSet<String>, BTreeSet<u16>) {
    let mut values = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for _ in 0..n {
        let row: Row = c
            .query_first(format!("SELECT ({sql}), @@port"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap();
        let v: Option<String> = row.get(0).unwrap();
        values.insert(v.unwrap_or_else(|| "NULL".into()));
        ports.insert(row.get::<u16, _>(1).unwrap());
    }
    (values, ports)
}

/// Inserts `blob` as row 1 with a prepared statement and reads it back in a
/// transaction (so from the primary, whatever the replicas have applied).
async fn blob_round_trip(c: &mut Conn, table: &str, blob: &[u8]) -> Vec<u8> {
    c.exec_drop(
        format!("INSERT INTO {table} VALUES (1, ?)"),
        (blob.to_vec(),),
    )
    .await
    .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    let back: Vec<u8> = c
        .query_first(format!("SELECT b FROM {table} WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread")]
async fn set_statements_hold_on_every_backend() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    c.query_drop("SET @a = 42").await.unwrap();
    c.query_drop("SET time_zone = '+03:00'").await.unwrap();
    c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    let (v, ports) = repeated(&mut c, "@a", 8).await;
    assert_eq!(v, BTreeSet::from(["42".to_string()]));
    assert!(ports.len() >= 2, "spread over several backends: {ports:?}");
    let (v, _) = repeated(&mut c, "@@time_zone", 6).await;
    assert_eq!(v, BTreeSet::from(["+03:00".to_string()]));
    let (v, _) = repeated(&mut c, "@@sql_mode", 6).await;
    assert_eq!(v, BTreeSet::from(["ANSI_QUOTES".to_string()]));
    // Changing a value replays the new one; a failing SET changes nothing.
    c.query_drop("SET @a = 'x'").await.unwrap();
    let err = c
        .query_drop("SET time_zone = 'Nowhere/Atlantis'")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1298),
        "{err:?}"
    );
    let (v, _) = repeated(&mut c, "@a", 6).await;
    assert_eq!(v, BTreeSet::from(["x".to_string()]));
    let (v, _) = repeated(&mut c, "@@time_zone", 6).await;
    assert_eq!(v, BTreeSet::from(["+03:00".to_string()]));
}

#[tokio::test(flavor = "multi_thread")]
async fn set_names_and_a_four_byte_emoji_round_trip() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    c.query_drop("SET NAMES latin1").await.unwrap();
    let (v, _) = repeated(&mut c, "@@character_set_client", 6).await;
    assert_eq!(v, BTreeSet::from(["latin1".to_string()]));
    c.query_drop("SET NAMES utf8mb4").await.unwrap();
    let (v, _) = repeated(&mut c, "@@character_set_results", 6).await;
    assert_eq!(v, BTreeSet::from(["utf8mb4".to_string()]));
    let table = common::unique_name("emoji");
    c.query_drop(format!(
        "CREATE TABLE {table} (v VARCHAR(10)) CHARSET utf8mb4"
    ))
    .await
    .unwrap();
    c.query_drop(format!("INSERT INTO {table} VALUES ('\u{1F600}')"))
        .await
        .unwrap();
    t.wait_replicas_caught_up(Duration::from_secs(20));
    for _ in 0..4 {
        let row: Row = c
            .query_first(format!("SELECT HEX(v), v, @@port FROM {table}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<String, _>(0).unwrap(), "F09F9880");
        let raw: Vec<u8> = row.get(1).unwrap();
        assert_eq!(raw, vec![0xF0, 0x9F, 0x98, 0x80]);
    }
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn temporary_tables_pin_the_session_until_dropped() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    c.query_drop("CREATE TEMPORARY TABLE tmp_fidelity (id INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO tmp_fidelity VALUES (1), (2)")
        .await
        .unwrap();
    for _ in 0..5 {
        let row: Row = c
            .query_first("SELECT COUNT(*), @@port FROM tmp_fidelity")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<u32, _>(0).unwrap(), 2);
        assert_eq!(row.get::<u16, _>(1).unwrap(), t.primary.port);
    }
    c.query_drop("DROP TEMPORARY TABLE tmp_fidelity")
        .await
        .unwrap();
    let (_, ports) = repeated(&mut c, "1", 6).await;
    assert!(
        !ports.contains(&t.primary.port),
        "unpinned after DROP: {ports:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_query_from_a_second_client_stops_a_sleep() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut victim = connect(&g, "test").await;
    let victim_id = victim.id();
    let sleeper = tokio::spawn(async move {
        let started = Instant::now();
        let r: Result<Option<u8>, _> = victim.query_first("SELECT SLEEP(30)").await;
        (r, started.elapsed(), victim)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killer = connect(&g, "test").await;
    let asked = Instant::now();
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (r, _, mut victim) = sleeper.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?}",
        asked.elapsed()
    );
    // A killed SLEEP returns 1 (MariaDB) or an interrupted error.
    match r {
        Ok(Some(v)) => assert_eq!(v, 1),
        Err(Error::Server(e)) => assert_eq!(e.code, 1317, "{e:?}"),
        other => panic!("unexpected {other:?}"),
    }
    let one: u8 = victim.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1, "the victim's session goes on");
    // Unknown ids are refused like the server does.
    let err = killer.query_drop("KILL QUERY 999999").await.unwrap_err();
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1094),
        "{err:?}"
    );
    // KILL CONNECTION under a running statement: the victim sees its
    // connection lost (as on a direct connection), not "query interrupted".
    let mut busy = connect(&g, "test").await;
    let busy_id = busy.id();
    let running = tokio::spawn(async move { busy.query_drop("SELECT SLEEP(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    killer
        .query_drop(format!("KILL CONNECTION {busy_id}"))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the killed statement returns promptly")
        .unwrap()
        .unwrap_err();
    assert!(
        !matches!(err, Error::Server(_)),
        "expected a lost connection, got {err:?}"
    );
    // KILL CONNECTION ends the other session.
    let victim_id = victim.id();
    killer
        .query_drop(format!("KILL {victim_id}"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the killed session is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_without_a_database_does_not_inherit_one() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    for _ in 0..3 {
        let mut with_db = connect(&g, "test").await;
        let (v, _) = repeated(&mut with_db, "DATABASE()", 4).await;
        assert_eq!(v, BTreeSet::from(["test".to_string()]));
        drop(with_db);
        let mut without = connect(&g, "").await;
        let (v, _) = repeated(&mut without, "DATABASE()", 4).await;
        assert_eq!(
            v,
            BTreeSet::from(["NULL".to_string()]),
            "no database selected"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_mib_longblob_round_trips_byte_identical() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    let table = common::unique_name("blob");
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)"
    ))
    .await
    .unwrap();
    let blob: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    // Binary protocol: the parameter travels in a >16 MiB multi-packet.
    let back = blob_round_trip(&mut c, &table, &blob).await;
    assert_eq!(back.len(), blob.len());
    assert!(back == blob, "blob differs");
    // And through the text protocol on a replica, once replicated.
    t.wait_replicas_caught_up(Duration::from_secs(60));
    let (len, md5): (u64, String) = c
        .query_first(format!("SELECT LENGTH(b), MD5(b) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len, blob.len() as u64);
    let direct = t.primary.sql(&format!("SELECT MD5(b) FROM test.{table}"));
    assert_eq!(md5, direct);
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn procedures_with_two_result_sets_and_out_parameters() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g, "test").await;
    let p = common::unique_name("proc");
    c.query_drop(format!("CREATE PROCEDURE {p}(OUT total INT) BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; SET total = 7; END"))
        .await
        .unwrap();
    let mut result = c.query_iter(format!("CALL {p}(@out)")).await.unwrap();
    let first: Vec<u8> = result.collect().await.unwrap();
    let second: Vec<(u8, u8)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!(first, vec![1]);
    assert_eq!(second, vec![(2, 3)]);
    let out: u32 = c.query_first("SELECT @out").await.unwrap().unwrap();
    assert_eq!(out, 7, "the OUT parameter is visible to the next statement");
    // Multi-statements: several result sets in one round trip.
    let mut result = c.query_iter("SELECT 10; SELECT 20, 30").await.unwrap();
    let a: Vec<u8> = result.collect().await.unwrap();
    let b: Vec<(u8, u8)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((a, b), (vec![10], vec![(20, 30)]));
    c.query_drop(format!("DROP PROCEDURE {p}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_prepared_statements_run_reads_on_replicas() {
    let t = shared_topology();
    // Routing only: reads after the session's own writes may wait for (and
    // stay on) one replica under the default read-your-writes.
    let g = Gantry::start(t, &["--consistency", "eventual"]);
    let mut c = connect(&g, "test").await;
    let table = common::unique_name("ps");
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    let insert = c
        .prep(format!("INSERT INTO {table} VALUES (?, ?)"))
        .await
        .unwrap();
    for i in 1..=5u32 {
        c.exec_drop(&insert, (i, format!("v{i}"))).await.unwrap();
    }
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let select = c
        .prep(format!("SELECT v, @@port FROM {table} WHERE id = ?"))
        .await
        .unwrap();
    let mut ports = BTreeSet::new();
    for i in 1..=5u32 {
        for _ in 0..3 {
            let (v, port): (String, u16) = c.exec_first(&select, (i,)).await.unwrap().unwrap();
            assert_eq!(v, format!("v{i}"));
            ports.insert(port);
        }
    }
    let replicas: BTreeSet<u16> = t.replicas.iter().map(|r| r.port).collect();
    assert_eq!(
        ports, replicas,
        "read-only prepared statements run on the replicas"
    );
    // Errors of prepare and execute reach the client.
    let err = c
        .prep("SELECT * FROM no_such_table WHERE id = ?")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1146),
        "{err:?}"
    );
    let err = c.exec_drop(&insert, (1u32, "dup")).await.unwrap_err();
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1062),
        "{err:?}"
    );
    c.close(insert).await.unwrap();
    c.close(select).await.unwrap();
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn change_user_and_reset_connection() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--pwds", "app:app_pw,admin:admin_pw"]);
    let mut c = connect(&g, "test").await;
    c.query_drop("SET @before = 1").await.unwrap();
    c.reset().await.unwrap();
    let v: Option<u8> = c.query_first("SELECT @before").await.unwrap().unwrap();
    assert_eq!(v, None, "COM_RESET_CONNECTION clears user variables");
    c.change_user(
        ChangeUserOpts::default()
            .with_user(Some("admin".into()))
            .with_pass(Some("admin_pw".into()))
            .with_db_name(Some("mysql".into())),
    )
    .await
    .unwrap();
    let (user, db): (String, String) = c
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert!(user.starts_with("admin@"), "{user}");
    assert_eq!(db, "mysql");
    let err = c
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some("admin".into()))
                .with_pass(Some("wrong".into())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1045),
        "{err:?}"
    );
}

#[test]
fn load_data_local_infile_loads_rows() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let table = common::unique_name("load");
    let file = std::env::temp_dir().join(format!("{table}.csv"));
    let rows: String = (1..=1000).map(|i| format!("{i},name{i}\n")).collect();
    std::fs::write(&file, rows).unwrap();
    let sql = format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20));
         LOAD DATA LOCAL INFILE '{}' INTO TABLE {table} FIELDS TERMINATED BY ',';
         SELECT COUNT(*), SUM(id) FROM {table} FOR UPDATE;
         DROP TABLE {table};",
        file.display()
    );
    let out = g.mariadb(&["--local-infile=1", "-N", "-B", "test", "-e", &sql]);
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000\t500500");
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_protocol_clients_work() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let opts = mysql_async::OptsBuilder::from_opts(
        Opts::from_url(&g.url("app", "app_pw", "test")).unwrap(),
    )
    .compression(Some(mysql_async::Compression::fast()));
    let mut c = Conn::new(opts)
        .await
        .expect("compressed connection through gantry");
    let table = common::unique_name("zip");
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)"
    ))
    .await
    .unwrap();
    // Larger than one compressed frame, and compressible.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let back = blob_round_trip(&mut c, &table, &blob).await;
    assert!(back == blob, "blob differs after compression both ways");
    let mut ports = BTreeSet::new();
    for _ in 0..6 {
        let (n, port): (u64, u16) = c.query_first("SELECT 7, @@port").await.unwrap().unwrap();
        assert_eq!(n, 7);
        ports.insert(port);
    }
    assert!(
        !ports.contains(&t.primary.port),
        "reads still split: {ports:?}"
    );
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
    // The CLI's --compress too.
    let out = g.mariadb(&[
        "-C",
        "-N",
        "-B",
        "test",
        "-e",
        "SELECT LENGTH(REPEAT('ab', 100000)), 1+1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200000\t2");
}
