//! What built-in failover (`failover = "auto"`) does to client sessions,
//! against real MariaDB servers and real drivers (conf/README.md,
//! *Failover* item 3): a session inside a transaction on the dead primary
//! gets an error and its connection is closed (the transaction is gone);
//! idle sessions carry on, on the new primary, with their session state
//! replayed — text protocol (mysql_async, PyMySQL) and binary protocol
//! (mysql-connector-python `cursor(prepared=True)`, mysql2 `execute()`)
//! with statements prepared before the failover; reads keep flowing.
//!
//! The driver sessions are `drivers/failover-sessions/sessions.{py,js}`:
//! each sets up its session, prints `ready`, and waits on its stdin while
//! the test kills the primary (kill -9) and waits for the promotion; then
//! it goes on, on the same connection, and prints what it saw.
//!
//! How "gets an error" looks depends on how the primary died: after a
//! crash its sockets close, and Gantry closes at once the client
//! connection of a session whose transaction was there (the client's next
//! statement fails as a lost connection, 2013); a statement running there
//! at the crash, or sent to a hung primary, gets ERROR 1927 (70100), then
//! the connection is closed.

mod common;

use mysql_async::prelude::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::clients::{self, Script};
use common::failover::{auto_args, backends, failovers, read_load, semi_sync};
use common::{unique_name, wait_until, Gantry, Server, Topology};

const STEP: Duration = Duration::from_secs(20);
/// What every idle session sets, as `SELECT @v, @@session.sql_mode,
/// DATABASE()` shows it.
const STATE: &str = "42|ANSI_QUOTES|app";

fn python() -> std::path::PathBuf {
    // The versions tests/drivers.rs pins (drivers/pymysql, drivers/connector-python).
    clients::python_venv(
        "sessions-venv",
        &["PyMySQL==1.1.1", "mysql-connector-python==9.7.0"],
    )
}

/// `sessions.py DRIVER MODE` through `g` on `table`, rows from `id`.
fn py_session(
    py: &std::path::Path,
    driver: &str,
    mode: &str,
    g: &Gantry,
    table: &str,
    id: u32,
) -> Script {
    let mut cmd = Command::new(py);
    cmd.arg(clients::repo().join("drivers/failover-sessions/sessions.py"))
        .args([
            driver,
            mode,
            "127.0.0.1",
            &g.port.to_string(),
            table,
            &id.to_string(),
        ]);
    Script::spawn(&format!("{driver} {mode}"), cmd)
}

/// `sessions.js MODE` (mysql2) through `g` on `table`, rows from `id`.
fn node_session(modules: &std::path::Path, mode: &str, g: &Gantry, table: &str, id: u32) -> Script {
    let mut cmd = Command::new("node");
    cmd.arg(clients::repo().join("drivers/failover-sessions/sessions.js"))
        .args([
            mode,
            "127.0.0.1",
            &g.port.to_string(),
            table,
            &id.to_string(),
        ])
        .env("NODE_PATH", modules);
    Script::spawn(&format!("mysql2 {mode}"), cmd)
}

/// A topology with semi-sync (nothing acknowledged is lost in the crash),
/// a table `test.<table> (id, note)` everywhere, and Gantry in `auto`.
fn setup(prefix: &str, extra: &[&str]) -> (Topology, Gantry, String) {
    let t = Topology::start();
    semi_sync(&t);
    let table = unique_name(prefix);
    t.server("primary").sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY, note VARCHAR(64))"
    ));
    t.wait_replicas_caught_up(Duration::from_secs(10));
    let mut args = auto_args();
    args.extend(extra);
    // GANTRY_TEST_LOG=1: Gantry logs at debug level (the log's tail is
    // printed when a test fails).
    if std::env::var_os("GANTRY_TEST_LOG").is_some() {
        args.extend(["--log-level", "debug"]);
    }
    let g = Gantry::start(&t, &args);
    wait_until(Duration::from_secs(10), "replicas up in gantry", || {
        backends(&g)
            .iter()
            .filter(|r| r.2 == "ro" && r.1 == "up")
            .count()
            == 2
    });
    (t, g, table)
}

/// Kills the primary (-9), waits for the automatic failover to complete
/// and returns the promoted server.
fn kill_primary_and_wait_for_failover<'t>(t: &'t Topology, g: &Gantry) -> &'t Server {
    t.server("primary").kill();
    wait_until(STEP, "a replica promoted", || {
        failovers(g).iter().any(|f| f.4 == "ok")
            && backends(g).iter().any(|r| r.2 == "rw" && r.1 == "up")
    });
    let history = failovers(g);
    let to = &history.iter().find(|f| f.4 == "ok").unwrap().2;
    let new_primary = t
        .servers()
        .find(|s| to.ends_with(&format!(":{}", s.port)))
        .unwrap_or_else(|| panic!("the new primary {to} is one of the servers"));
    assert_ne!(new_primary.name, "primary");
    assert_eq!(new_primary.sql("SELECT @@read_only"), "0");
    new_primary
}

/// `id note` rows of `table` on `s`, one per line.
fn rows(s: &Server, table: &str, ids: &str) -> String {
    s.sql(&format!(
        "SELECT id, note FROM test.{table} WHERE id IN ({ids}) ORDER BY id"
    ))
}

/// `SELECT * FROM sessions` on the admin port: (backend, in_transaction,
/// pinned) of each client session.
fn sessions(g: &Gantry) -> Vec<(String, String, String)> {
    let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM sessions"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            (get(4), get(5), get(6))
        })
        .collect()
}

async fn state(c: &mut mysql_async::Conn) -> String {
    let row: (Option<String>, String, Option<String>) = c
        .query_first("SELECT @v, @@session.sql_mode, DATABASE()")
        .await
        .unwrap()
        .unwrap();
    format!(
        "{}|{}|{}",
        row.0.as_deref().unwrap_or("NULL"),
        row.1,
        row.2.as_deref().unwrap_or("NULL")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_carry_on_on_the_new_primary_with_their_state() {
    let py = python();
    let modules = clients::mysql2_modules();
    // Idle sessions keep their last connection (to the primary, after a
    // write) until the kill: the case where it dies under them.
    let (t, g, table) = setup("idle", &["--idle-release-ms", "60000"]);
    let url = g.url("app", "app_pw", "test");

    // Text protocol from Rust.
    let mut text = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    text.query_drop("SET @v = 42").await.unwrap();
    text.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    text.query_drop("USE app").await.unwrap();
    text.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (400, 'mysql_async before')"
    ))
    .await
    .unwrap();
    assert_eq!(state(&mut text).await, STATE);
    // The drivers.
    let mut scripts = vec![
        py_session(&py, "pymysql", "idle", &g, &table, 100),
        py_session(&py, "connector", "idle", &g, &table, 200),
        node_session(&modules, "idle", &g, &table, 300),
    ];
    for s in &mut scripts {
        s.wait_for("ready", STEP);
        assert_eq!(s.get("state_before"), STATE, "{}", s.output());
    }
    // The three driver sessions hold a connection to the primary, pinned
    // by nothing; the Rust one holds a replica's (its last was a read).
    let primary_addr = t.server("primary").addr();
    let on_primary = sessions(&g)
        .into_iter()
        .filter(|s| s.0 == primary_addr)
        .collect::<Vec<_>>();
    assert_eq!(on_primary.len(), 3, "{:?}", sessions(&g));
    assert!(
        on_primary.iter().all(|s| s.1 == "no" && s.2 == "no"),
        "{on_primary:?}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_load(url.clone(), table.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let new_primary = kill_primary_and_wait_for_failover(&t, &g);

    // Same connections, no reconnect: writes go to the new primary, with
    // the session's state.
    text.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (401, 'mysql_async after')"
    ))
    .await
    .expect("the idle text session writes after the failover");
    assert_eq!(state(&mut text).await, STATE, "mysql_async state replayed");
    for s in &mut scripts {
        s.go_on();
        s.wait_for("done", STEP);
        let out = s.output();
        assert!(!s.seen.contains_key("error_after"), "{out}");
        assert_eq!(s.get("insert_after"), "1", "{out}");
        assert_eq!(s.get("state_after"), STATE, "state replayed: {out}");
        if let Some(before) = s.seen.get("ids_before") {
            // The statements prepared before the failover, not new ones.
            assert!(!before.is_empty() && before != ",", "{out}");
            assert_eq!(s.get("ids_after"), before, "{out}");
        }
    }
    for s in &scripts[1..] {
        assert!(s.seen.contains_key("ids_before"), "{}", s.output());
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, read_errors) = reader.await.unwrap();
    println!("reads through the failover: {reads}, failed {read_errors}");
    assert!(reads > 0);
    assert_eq!(read_errors, 0, "reads kept flowing");

    assert_eq!(
        rows(new_primary, &table, "100,101,200,201,300,301,400,401"),
        "100\tpymysql before\n101\tpymysql after\n\
         200\tconnector before\n201\tconnector after\n\
         300\tmysql2 before\n301\tmysql2 after\n\
         400\tmysql_async before\n401\tmysql_async after",
        "every write is on the new primary"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_on_the_dead_primary_gets_an_error_and_its_connection_closed() {
    let py = python();
    let modules = clients::mysql2_modules();
    let (t, g, table) = setup("txn", &[]);
    let url = g.url("app", "app_pw", "test");

    let mut text = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    text.query_drop("BEGIN").await.unwrap();
    text.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (400, 'mysql_async in a transaction')"
    ))
    .await
    .unwrap();
    let mut scripts = vec![
        py_session(&py, "pymysql", "txn", &g, &table, 100),
        py_session(&py, "connector", "txn", &g, &table, 200),
        node_session(&modules, "txn", &g, &table, 300),
    ];
    for s in &mut scripts {
        s.wait_for("ready", STEP);
    }
    // A statement running in a transaction when the primary dies.
    let mut busy = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    busy.query_drop("BEGIN").await.unwrap();
    busy.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (600, 'running')"
    ))
    .await
    .unwrap();
    let running = tokio::spawn(async move {
        let r = busy.query_drop("SELECT SLEEP(30)").await;
        (r, busy)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An idle session next to them, and a fresh one after: unaffected.
    let mut idle = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    idle.query_drop("SELECT 1").await.unwrap();
    let primary_addr = t.server("primary").addr();
    let in_txn = sessions(&g)
        .into_iter()
        .filter(|s| s.0 == primary_addr && s.1 == "yes" && s.2 == "yes")
        .count();
    assert_eq!(
        in_txn,
        5,
        "five transactions on the primary: {:?}",
        sessions(&g)
    );

    let new_primary = kill_primary_and_wait_for_failover(&t, &g);

    // The dead primary's sockets closed with it: Gantry closed the
    // sessions in a transaction there at once (their state exists nowhere
    // else), so their next statement fails as a lost connection — not a
    // server answer, never run elsewhere — and so does any after it.
    for n in [401, 402] {
        let err = text
            .query_drop(format!(
                "INSERT INTO test.{table} (id, note) VALUES ({n}, 'mysql_async after')"
            ))
            .await
            .expect_err("the transaction is gone");
        assert!(
            matches!(&err, mysql_async::Error::Io(_)),
            "a closed connection, not a server answer: {err:?}"
        );
    }
    // A statement running in a transaction on the primary when it dies
    // gets Gantry's error for the lost backend, 1927 (70100), then the
    // connection is closed.
    let running = running.await.unwrap();
    let (err, mut c) = running;
    match &err {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!((e.code, e.state.as_str()), (1927, "70100"), "{e:?}")
        }
        other => panic!("expected a server error 1927, got {other:?}"),
    }
    let err = c
        .query_drop("SELECT 1")
        .await
        .expect_err("closed after 1927");
    assert!(matches!(&err, mysql_async::Error::Io(_)), "{err:?}");

    for s in &mut scripts {
        s.go_on();
        s.wait_for("done", STEP);
        println!("{}", s.output());
    }
    let [pymysql, connector, mysql2] = &scripts[..] else {
        unreachable!()
    };
    // PyMySQL (text): OperationalError 2013 (lost during the query) or
    // 2006 (gone); after it PyMySQL knows the connection is closed.
    let lost = |e: &str| {
        e.starts_with("OperationalError 2013 ") || e.starts_with("OperationalError 2006 ")
    };
    assert!(lost(pymysql.get("first_error")), "{}", pymysql.output());
    let e = pymysql.get("second_error");
    assert!(
        lost(e) || e.starts_with("InterfaceError 0 "),
        "{}",
        pymysql.output()
    );
    // mysql-connector-python (binary, the INSERT prepared in the
    // transaction re-executed): a lost connection (2013, 2055 or 2006).
    for step in ["first_error", "second_error"] {
        let e = connector.get(step);
        assert!(
            [" 2013 ", " 2055 ", " 2006 "].iter().any(|c| e.contains(c)),
            "{}",
            connector.output()
        );
    }
    // mysql2 execute() (binary): the connection was closed under it (seen
    // before the test let it go on), then its statements fail.
    assert!(
        mysql2
            .get("connection_error")
            .starts_with("PROTOCOL_CONNECTION_LOST "),
        "{}",
        mysql2.output()
    );
    for step in ["first_error", "second_error"] {
        let e = mysql2.get(step);
        assert!(
            e.contains("closed state") || e.contains("PROTOCOL_CONNECTION_LOST"),
            "{}",
            mysql2.output()
        );
    }
    for s in &scripts {
        assert!(
            !s.seen.contains_key("first_ok") && !s.seen.contains_key("second_ok"),
            "{}",
            s.output()
        );
    }

    // The idle session and a new one write on the new primary.
    idle.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (500, 'idle')"
    ))
    .await
    .expect("an idle session carries on");
    let mut fresh = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    fresh
        .query_drop(format!(
            "INSERT INTO test.{table} (id, note) VALUES (501, 'fresh')"
        ))
        .await
        .unwrap();

    // The uncommitted rows are nowhere: not on the new primary, not on the
    // replica that follows it.
    let other = t
        .servers()
        .find(|s| s.name != "primary" && s.name != new_primary.name)
        .unwrap();
    wait_until(Duration::from_secs(10), "the other replica follows", || {
        other.slave_status().is_some_and(|s| {
            s.get("Master_Port") == Some(&new_primary.port.to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        })
    });
    other.wait_for_gtid(&new_primary.gtid_current_pos(), Duration::from_secs(10));
    let all = "100,101,102,200,201,202,300,301,302,400,401,402,500,501,600";
    for s in [new_primary, other] {
        assert_eq!(rows(s, &table, all), "500\tidle\n501\tfresh", "{}", s.name);
    }
}

/// Resumes a paused server when dropped (also when the test fails).
struct Resume<'a>(&'a Server);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_on_a_hung_primary_gets_an_error_after_the_failover() {
    let (t, g, table) = setup("hung", &[]);
    let primary = t.server("primary");
    let url = g.url("app", "app_pw", "test");
    let mut text = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    text.query_drop("BEGIN").await.unwrap();
    text.query_drop(format!(
        "INSERT INTO test.{table} (id, note) VALUES (1, 'in a transaction')"
    ))
    .await
    .unwrap();
    // Gantry gives the replicas a short heartbeat, so silence means
    // something; that restarted their replication threads: semi-sync again.
    for s in t.servers().filter(|s| s.name != "primary") {
        wait_until(Duration::from_secs(10), "heartbeat period set", || {
            s.sql("SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'")
                .ends_with("\t0.500")
        });
    }
    semi_sync(&t);

    // SIGSTOP: its sockets stay open, nothing closes the session's
    // connection; the failover happens while the primary hangs.
    primary.pause();
    let _resume = Resume(primary);
    wait_until(STEP, "a replica promoted", || {
        failovers(&g).iter().any(|f| f.4 == "ok")
    });
    // The session's next statement fails (the transaction is gone on a
    // primary that is no longer one), promptly, not when the old primary
    // wakes up; and the connection is closed.
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        text.query_drop(format!(
            "INSERT INTO test.{table} (id, note) VALUES (2, 'after')"
        )),
    )
    .await;
    println!("after the failover, in the transaction: {next:?}");
    match next {
        Ok(Err(mysql_async::Error::Server(e))) => {
            assert_eq!((e.code, e.state.as_str()), (1927, "70100"), "{e:?}")
        }
        Ok(Err(mysql_async::Error::Io(_))) => {}
        Ok(other) => panic!("the transaction's next statement: {other:?}"),
        Err(_) => panic!("the transaction's next statement hangs on the hung old primary"),
    }
    let err = text
        .query_drop("SELECT 1")
        .await
        .expect_err("the connection is closed");
    assert!(matches!(&err, mysql_async::Error::Io(_)), "{err:?}");
}
