//! Session fidelity, part two: Gantry knows session state from what the
//! server reports (session tracking) on both protocols, so no state leaks
//! between clients and every session behaves as on a direct connection.
//! `query*` calls use the text protocol, `exec*` the binary one
//! (COM_STMT_PREPARE/EXECUTE); error paths also go through the `mariadb`
//! CLI (libmariadb).

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Opts, OptsBuilder, Row};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{shared_topology, unique_name, Gantry, Topology};

/// One pooled backend connection per backend, so every new session reuses
/// the connection the previous one left: the setting where state leaks.
const ONE_CONNECTION: [&str; 4] = [
    "--pool-max-size",
    "1",
    "--pwds",
    "app:app_pw,admin:admin_pw,monitor:monitor_pw",
];

async fn connect_as(g: &Gantry, user: &str, pw: &str, db: &str) -> Conn {
    let opts =
        OptsBuilder::from_opts(Opts::from_url(&g.url(user, pw, db)).unwrap()).stmt_cache_size(0);
    Conn::new(opts).await.expect("connect through gantry")
}

async fn connect(g: &Gantry) -> Conn {
    connect_as(g, "app", "app_pw", "test").await
}

fn code(e: &Error) -> Option<u16> {
    match e {
        Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Creates `table (a INT)` through Gantry, in a session of its own.
async fn create_table(g: &Gantry, table: &str) {
    let mut c = connect(g).await;
    c.query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    leave(c).await;
}

/// Closes a session and gives Gantry a moment to hand its connection back.
async fn leave(c: Conn) {
    c.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_state_never_reaches_the_next_session() {
    let t = shared_topology();
    let g = Gantry::start(t, &ONE_CONNECTION);
    let table = unique_name("tt");
    let mut a = connect(&g).await;
    a.exec_drop(format!("CREATE TEMPORARY TABLE {table} (a INT)"), ())
        .await
        .unwrap();
    a.exec_drop(format!("INSERT INTO {table} VALUES (?)"), (7,))
        .await
        .unwrap();
    // A read right after the prepared CREATE sees the table (the session
    // stays on its connection).
    let n: u32 = a
        .exec_first(format!("SELECT COUNT(*) FROM {table}"), ())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    a.exec_drop("SET @leak = ?", (42,)).await.unwrap();
    let got: i64 = a
        .exec_first("SELECT GET_LOCK(?, 0)", ("gantry_leak",))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 1);
    leave(a).await;
    for binary in [false, true] {
        let mut b = connect(&g).await;
        let sql = format!("SELECT * FROM {table}");
        let err = if binary {
            b.exec_drop(sql, ()).await.unwrap_err()
        } else {
            b.query_drop(sql).await.unwrap_err()
        };
        assert_eq!(code(&err), Some(1146), "binary={binary}: {err:?}");
        let v: Option<i64> = b.query_first("SELECT @leak").await.unwrap().unwrap();
        assert_eq!(v, None, "a user variable leaked");
        let free: i64 = b
            .exec_first("SELECT IS_FREE_LOCK(?)", ("gantry_leak",))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(free, 1, "a user lock leaked");
        // The same name can be created again, as directly.
        b.exec_drop(format!("CREATE TEMPORARY TABLE {table} (a INT)"), ())
            .await
            .unwrap();
        leave(b).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_set_holds_on_the_replicas() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g).await;
    c.exec_drop("SET time_zone = ?", ("+05:00",)).await.unwrap();
    c.exec_drop("SET character_set_results = ?", ("latin1",))
        .await
        .unwrap();
    let mut zones = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for _ in 0..12 {
        let row: Row = c
            .exec_first("SELECT @@time_zone, @@character_set_results, @@port", ())
            .await
            .unwrap()
            .unwrap();
        zones.insert(format!(
            "{} {}",
            row.get::<String, _>(0).unwrap(),
            row.get::<String, _>(1).unwrap()
        ));
        ports.insert(row.get::<u16, _>(2).unwrap());
    }
    assert_eq!(zones, BTreeSet::from(["+05:00 latin1".to_string()]));
    assert!(ports.len() >= 2, "reads spread over replicas: {ports:?}");
    assert!(
        !ports.contains(&t.primary.port),
        "not pinned to the primary: {ports:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_current_schema_is_seen() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--pwds", "app:app_pw,admin:admin_pw"]);
    let s = unique_name("s");
    let mut c = connect_as(&g, "admin", "admin_pw", "test").await;
    c.query_drop(format!("CREATE SCHEMA {s}")).await.unwrap();
    c.query_drop(format!("USE {s}")).await.unwrap();
    c.query_drop(format!("DROP SCHEMA {s}")).await.unwrap();
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, None);
    c.query_drop(format!("CREATE SCHEMA {s}")).await.unwrap();
    c.query_drop(format!("USE {s}")).await.unwrap();
    c.query_drop("CREATE TABLE t1 (a INT)").await.unwrap();
    c.query_drop(format!("DROP SCHEMA {s}")).await.unwrap();
    // The same with prepared statements.
    for sql in [
        format!("CREATE SCHEMA {s}"),
        format!("USE {s}"),
        format!("DROP SCHEMA {s}"),
    ] {
        c.exec_drop(sql, ()).await.unwrap();
    }
    let db: Option<String> = c
        .exec_first("SELECT DATABASE()", ())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db, None, "binary protocol");
    c.exec_drop(format!("CREATE SCHEMA {s}"), ()).await.unwrap();
    c.exec_drop(format!("USE {s}"), ()).await.unwrap();
    c.exec_drop("CREATE TABLE t1 (a INT)", ()).await.unwrap();
    c.exec_drop(format!("DROP SCHEMA {s}"), ()).await.unwrap();
    // The same through libmariadb, in one session.
    let sql = format!(
        "CREATE SCHEMA {s}; USE {s}; DROP SCHEMA {s}; SELECT IFNULL(DATABASE(), 'none'); \
         CREATE SCHEMA {s}; USE {s}; CREATE TABLE t1 (a INT); DROP SCHEMA {s}"
    );
    let out = g.mariadb(&["-uadmin", "-padmin_pw", "-N", "-e", &sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "none");
}

#[tokio::test(flavor = "multi_thread")]
async fn row_count_and_warnings_follow_the_client_statement() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--consistency", "read-your-writes"]);
    let table = unique_name("rc");
    let mut c = connect(&g).await;
    c.query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let n: i64 = c.query_first("SELECT ROW_COUNT()").await.unwrap().unwrap();
    assert_eq!(n, 1, "text protocol");
    c.exec_drop(format!("INSERT INTO {table} VALUES (?), (?)"), (2, 3))
        .await
        .unwrap();
    let n: i64 = c
        .exec_first("SELECT ROW_COUNT()", ())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2, "binary protocol");
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_checks_ownership_and_works_in_multi_statements() {
    let t = shared_topology();
    let g = Gantry::start(t, &ONE_CONNECTION[2..]);
    let mut victim = connect(&g).await;
    let victim_id = victim.id();
    let mut other = connect_as(&g, "monitor", "monitor_pw", "").await;
    let err = other
        .query_drop(format!("KILL {victim_id}"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(1095), "{err:?}");
    let one: u8 = victim.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1, "the victim was not touched");
    // KILL inside a multi-statement, as connection pools send it.
    let mut killer = connect(&g).await;
    let running = tokio::spawn(async move {
        let r = victim.query_drop("SELECT SLEEP(20)").await;
        (r, victim)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    let mut results = killer
        .query_iter(format!("KILL QUERY {victim_id}; SELECT SLEEP(0.05)"))
        .await
        .unwrap();
    let _: Vec<Row> = results.collect().await.unwrap();
    let slept: Vec<u8> = results.collect().await.unwrap();
    drop(results);
    assert_eq!(slept, vec![0]);
    let (r, mut victim) = tokio::time::timeout(Duration::from_secs(3), running)
        .await
        .expect("the killed statement returns")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    // SLEEP() interrupted by KILL QUERY returns 1 or an interruption error.
    if let Err(e) = r {
        assert_eq!(code(&e), Some(1317), "{e:?}");
    }
    let one: u8 = victim.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
    // An account the server lets kill others may.
    let mut admin = connect_as(&g, "admin", "admin_pw", "").await;
    admin
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    // Through libmariadb: the code and message arrive.
    let out = g.mariadb(&[
        "-umonitor",
        "-pmonitor_pw",
        "-e",
        &format!("KILL {victim_id}"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR 1095") && stderr.contains("not owner"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_id_is_the_id_kill_takes() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g).await;
    let id = u64::from(c.id());
    let text: u64 = c
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let binary: u64 = c
        .exec_first("SELECT CONNECTION_ID()", ())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((text, binary), (id, id));
    let row: Row = c
        .query_first("SELECT connection_id(), 'CONNECTION_ID()' AS s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.columns_ref()[0].name_str(), "connection_id()");
    assert_eq!(row.get::<u64, _>(0), Some(id));
    assert_eq!(row.get::<String, _>(1).as_deref(), Some("CONNECTION_ID()"));
    // The id another client reads is the one KILL takes.
    let mut other = connect(&g).await;
    let running = tokio::spawn(async move { c.query_drop("SELECT SLEEP(20)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other
        .query_drop(format!("KILL QUERY {text}"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(3), running)
        .await
        .expect("killed by the id CONNECTION_ID() gave")
        .unwrap()
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_change_user_keeps_the_connection() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g).await;
    c.query_drop("SET @kept = 5").await.unwrap();
    for _ in 0..2 {
        let err = c
            .change_user(
                mysql_async::ChangeUserOpts::default()
                    .with_user(Some("nobody".into()))
                    .with_pass(Some("nope".into())),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(1045), "{err:?}");
    }
    // Still connected, as the old user with its state.
    let kept: i64 = c.query_first("SELECT @kept").await.unwrap().unwrap();
    assert_eq!(kept, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_timeout_closes_the_idle_client_as_the_server_would() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    for binary in [false, true] {
        let mut c = connect(&g).await;
        if binary {
            c.exec_drop("SET wait_timeout = ?", (1,)).await.unwrap();
        } else {
            c.query_drop("SET wait_timeout = 1").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let err = c.query_drop("SELECT 1").await.unwrap_err();
        assert_eq!(code(&err), None, "the connection is gone: {err:?}");
    }
    // A session that pinned its connection to the primary and lost it to
    // the server's timeout is closed too.
    let mut c = connect(&g).await;
    c.query_drop("CREATE TEMPORARY TABLE wt (a INT)")
        .await
        .unwrap();
    c.query_drop("SET wait_timeout = 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(c.query_drop("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_longer_than_one_packet_goes_to_the_primary() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let mut c = connect(&g).await;
    let pad = "x".repeat(17 * 1024 * 1024);
    let port: u16 = c
        .query_first(format!("SELECT @@port /* {pad} */"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(port, t.primary.port);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_bound_state_pins_and_is_never_pooled() {
    let t = shared_topology();
    let g = Gantry::start(t, &ONE_CONNECTION);
    let table = unique_name("hd");
    create_table(&g, &table).await;
    // HANDLER … OPEN held on a pooled connection would block DROP TABLE.
    let mut a = connect(&g).await;
    a.query_drop(format!("HANDLER {table} OPEN")).await.unwrap();
    leave(a).await;
    let mut b = connect(&g).await;
    tokio::time::timeout(
        Duration::from_secs(5),
        b.query_drop(format!("DROP TABLE {table}")),
    )
    .await
    .expect("DROP TABLE does not wait for a leftover HANDLER")
    .unwrap();
    leave(b).await;
    // BACKUP STAGE left active would refuse the next session's DDL.
    let mut a = connect_as(&g, "admin", "admin_pw", "test").await;
    a.query_drop("BACKUP STAGE START").await.unwrap();
    a.query_drop("BACKUP STAGE BLOCK_DDL").await.unwrap();
    leave(a).await;
    let mut b = connect_as(&g, "admin", "admin_pw", "test").await;
    b.query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    leave(b).await;
    // An XA transaction left open is rolled back with its connection.
    let mut a = connect(&g).await;
    a.query_drop("XA START 'gantry_xa'").await.unwrap();
    a.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    leave(a).await;
    let mut b = connect(&g).await;
    b.query_drop("BEGIN").await.unwrap();
    let n: u32 = b
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    b.query_drop("COMMIT").await.unwrap();
    assert_eq!(n, 0);
    b.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_replay_never_poisons_the_pool() {
    let t = shared_topology();
    let g = Gantry::start(t, &ONE_CONNECTION);
    let mut a = connect(&g).await;
    a.query_drop("SET @@RAND_SEED1 = 12345, @@RAND_SEED2 = 678")
        .await
        .unwrap();
    for _ in 0..4 {
        let _: Row = a
            .query_first("SELECT RAND(), @@port")
            .await
            .unwrap()
            .unwrap();
    }
    leave(a).await;
    for _ in 0..3 {
        let mut b = connect(&g).await;
        let one: u8 = b.query_first("SELECT 1").await.unwrap().unwrap();
        assert_eq!(one, 1);
        leave(b).await;
    }
}

/// What one session leaves behind, and how a later one would see it.
#[derive(Clone, Copy, Debug)]
enum Leftover {
    TempTable,
    UserVariable,
    UserLock,
    SessionVariable,
    SqlPrepare,
    LockTables,
    OpenTransaction,
    Schema,
}

const LEFTOVERS: [Leftover; 8] = [
    Leftover::TempTable,
    Leftover::UserVariable,
    Leftover::UserLock,
    Leftover::SessionVariable,
    Leftover::SqlPrepare,
    Leftover::LockTables,
    Leftover::OpenTransaction,
    Leftover::Schema,
];

async fn run(c: &mut Conn, binary: bool, sql: &str) {
    let r = if binary {
        c.exec_drop(sql, ()).await
    } else {
        c.query_drop(sql).await
    };
    r.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_sessions_leave_nothing_behind() {
    let t = shared_topology();
    let g = Gantry::start(t, &ONE_CONNECTION);
    let table = unique_name("lo");
    create_table(&g, &table).await;
    for i in 0..200 {
        let kind = LEFTOVERS[i % LEFTOVERS.len()];
        // Statements that cannot be prepared use the text protocol.
        let binary = (i / LEFTOVERS.len()) % 2 == 1
            && !matches!(kind, Leftover::SqlPrepare | Leftover::LockTables);
        let mut a = connect(&g).await;
        match kind {
            Leftover::TempTable => {
                run(&mut a, binary, "CREATE TEMPORARY TABLE leftover (a INT)").await
            }
            Leftover::UserVariable => run(&mut a, binary, "SET @leftover = 1").await,
            Leftover::UserLock => run(&mut a, binary, "SELECT GET_LOCK('leftover', 0)").await,
            Leftover::SessionVariable => run(&mut a, binary, "SET time_zone = '+07:00'").await,
            Leftover::SqlPrepare => run(&mut a, false, "PREPARE leftover FROM 'SELECT 1'").await,
            Leftover::LockTables => run(&mut a, false, &format!("LOCK TABLES {table} WRITE")).await,
            Leftover::OpenTransaction => {
                run(&mut a, false, "BEGIN").await;
                run(&mut a, binary, &format!("INSERT INTO {table} VALUES ({i})")).await;
            }
            Leftover::Schema => run(&mut a, binary, "USE app").await,
        }
        leave(a).await;
        let mut b = connect(&g).await;
        let what = format!("session {i} ({kind:?}, binary={binary})");
        let row: Row = b
            .query_first(
                "SELECT @leftover, IS_FREE_LOCK('leftover'), @@session.time_zone = @@global.time_zone, DATABASE()",
            )
            .await
            .unwrap()
            .unwrap();
        let (var, free, tz, db): (Option<i64>, i64, i64, Option<String>) =
            mysql_async::from_row(row);
        assert_eq!(var, None, "{what}: user variable");
        assert_eq!(free, 1, "{what}: user lock");
        assert_eq!(tz, 1, "{what}: time_zone");
        assert_eq!(db.as_deref(), Some("test"), "{what}: schema");
        let err = b.query_drop("SELECT * FROM leftover").await.unwrap_err();
        assert_eq!(code(&err), Some(1146), "{what}: temporary table");
        let err = b.query_drop("EXECUTE leftover").await.unwrap_err();
        assert_eq!(code(&err), Some(1243), "{what}: prepared statement");
        b.query_drop("BEGIN").await.unwrap();
        let n: u32 = b
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "{what}: open transaction");
        // Not blocked by a leftover LOCK TABLES.
        tokio::time::timeout(
            Duration::from_secs(5),
            b.query_drop(format!("DELETE FROM {table} WHERE a < 0")),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: table still locked"))
        .unwrap();
        b.query_drop("COMMIT").await.unwrap();
        leave(b).await;
    }
}

/// Tests that change global settings get a topology of their own.
#[tokio::test(flavor = "multi_thread")]
async fn global_settings_statement_limits_read_only_and_default_consistency() {
    let t = Topology::start();
    let g = Gantry::start(&t, &ONE_CONNECTION);
    // New sessions see today's global defaults.
    let mut a = connect(&g).await;
    let _: Row = a
        .query_first("SELECT @@session.max_sort_length")
        .await
        .unwrap()
        .unwrap();
    leave(a).await;
    for s in t.servers() {
        s.sql("SET GLOBAL max_sort_length = 2000");
    }
    let mut b = connect(&g).await;
    let v: u64 = b
        .query_first("/*master*/ SELECT @@session.max_sort_length")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 2000);
    leave(b).await;

    // 500 prepare/close cycles under a global statement limit of 10.
    for s in t.servers() {
        s.sql("SET GLOBAL max_prepared_stmt_count = 10");
    }
    let mut c = connect(&g).await;
    for i in 0..500 {
        let sql = if i % 2 == 0 {
            format!("SELECT {i} AS n")
        } else {
            format!("/*master*/ SELECT {i} AS n")
        };
        let stmt = c
            .prep(&sql)
            .await
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        let n: i64 = c.exec_first(&stmt, ()).await.unwrap().unwrap();
        assert_eq!(n, i);
        c.close(stmt).await.unwrap();
    }
    leave(c).await;

    // A read-only primary: the server decides who may write.
    let table = unique_name("ro");
    let mut admin = connect_as(&g, "admin", "admin_pw", "test").await;
    admin
        .query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    t.primary.sql("SET GLOBAL read_only = 1");
    let mut app = connect(&g).await;
    let err = app
        .query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(1290), "{err:?}");
    admin
        .query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap();
    admin.query_drop("SET GLOBAL read_only = 0").await.unwrap();
    app.query_drop(format!("INSERT INTO {table} VALUES (3)"))
        .await
        .unwrap();
    leave(app).await;
    leave(admin).await;

    // Replicas a second behind; no consistency option: a session reads
    // its own writes.
    for r in &t.replicas {
        r.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 1; START SLAVE");
    }
    let g = Gantry::start(&t, &[]);
    let mut c = connect(&g).await;
    for i in 1..=50u32 {
        c.query_drop(format!("INSERT INTO {table} VALUES (100 + {i})"))
            .await
            .unwrap();
        let n: u32 = c
            .query_first(format!("SELECT COUNT(*) FROM {table} WHERE a > 100"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, i, "read {i} misses the session's own insert");
    }
}
