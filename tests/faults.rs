//! Fault drills against real MariaDB servers: a hung (SIGSTOPped) backend
//! fails the statements in flight on it once the health loop marks it
//! down, new clients never wait on it, a silent backend hits
//! `backend-read-timeout-ms`, and a statement whose client went away is
//! stopped on the server as a direct connection's would be.

mod common;

use mysql_async::prelude::*;
use mysql_async::Error;
use std::time::{Duration, Instant};

use common::raw::{Login, RawClient};
use common::{unique_name, Gantry, Topology};

use common::{connect_app as connect, server_code, FAST_HEALTH};

/// Resumes a paused server even when the test fails.
struct Resume<'a>(&'a common::Server);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_backend_fails_its_statements_at_detection_and_nobody_waits_for_it() {
    let t = Topology::start();
    let g = Gantry::start(&t, &FAST_HEALTH);
    let hung = &t.replicas[0];
    // Eight clients with a slow read each; about half land on the replica
    // that will hang.
    let mut running = Vec::new();
    for _ in 0..8 {
        let mut c = connect(&g).await;
        running.push(tokio::spawn(async move {
            let r: Result<Option<(u16, u8)>, Error> =
                c.query_first("SELECT @@port, SLEEP(4)").await;
            (r, c, Instant::now())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    hung.pause();
    let _resume = Resume(hung);
    let paused = Instant::now();
    let mut failed = 0;
    let mut last = Duration::ZERO;
    for r in running {
        let (r, mut c, at) = tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .expect("no statement hangs")
            .unwrap();
        if r.is_err() {
            last = last.max(at - paused);
        }
        match r {
            Ok(Some((port, _))) => assert_ne!(port, hung.port, "answered by the hung server?"),
            Ok(None) => panic!("no row"),
            Err(e) => {
                failed += 1;
                assert_eq!(server_code(&e), Some(1927), "{e:?}");
                assert!(e.to_string().contains("Lost connection to backend"), "{e}");
                // The session goes on, on a healthy backend.
                let one: u8 = c.query_first("SELECT 1").await.unwrap().unwrap();
                assert_eq!(one, 1);
            }
        }
    }
    println!("hung replica: {failed} of 8 statements failed, the last {last:?} after SIGSTOP");
    assert!(failed > 0, "some statements were on the hung replica");
    assert!(
        last < Duration::from_secs(3),
        "failed at detection, not at SIGCONT: {last:?}"
    );

    // The primary hangs: the write in flight fails at detection, and a new
    // write fails at once instead of waiting for a connect.
    let table = unique_name("hung");
    let mut w = connect(&g).await;
    w.query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    w.query_drop("BEGIN").await.unwrap();
    t.primary.pause();
    let _resume_primary = Resume(&t.primary);
    let paused = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        w.query_drop(format!("INSERT INTO {table} VALUES (1)")),
    )
    .await
    .expect("the write does not hang")
    .unwrap_err();
    println!(
        "hung primary: the write failed {:?} after SIGSTOP: {err}",
        paused.elapsed()
    );
    assert!(paused.elapsed() < Duration::from_secs(4));
    let mut fresh = connect(&g).await;
    let asked = Instant::now();
    let err = fresh
        .query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(server_code(&err), Some(1105), "{err:?}");
    assert!(err.to_string().contains("is down"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_read_timeout_bounds_a_silent_backend() {
    let t = common::shared_topology();
    let g = Gantry::start(t, &["--backend-read-timeout-ms", "500"]);
    let mut c = connect(&g).await;
    let started = Instant::now();
    let err = c.query_drop("SELECT SLEEP(3)").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server_code(&err), Some(1927), "{err:?}");
    let one: u8 = c.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

/// Statements on any server of `t` whose text contains `marker`.
fn running_with(t: &Topology, marker: &str) -> usize {
    t.servers()
        .map(|s| {
            s.sql(&format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'"
            ))
            .parse::<usize>()
            .unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_whose_client_went_away_is_stopped() {
    let t = common::shared_topology();
    let g = Gantry::start(t, &[]);
    let table = unique_name("gone");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY, v INT)"
    ));
    t.primary
        .sql(&format!("INSERT INTO test.{table} VALUES (1, 0)"));
    for in_transaction in [false, true] {
        let marker = unique_name("abandoned");
        let mut c = RawClient::login(g.port, &Login::default()).await;
        if in_transaction {
            assert_eq!(c.execute("BEGIN").await[0], 0);
            let ok = c
                .execute(&format!("UPDATE {table} SET v = 1 WHERE id = 1"))
                .await;
            assert_eq!(ok[0], 0, "{ok:?}");
        }
        c.send_query(&format!("SELECT SLEEP(15) /* {marker} */"))
            .await;
        common::wait_until(Duration::from_secs(5), "the statement runs", || {
            running_with(t, &marker) == 1
        });
        let gone = Instant::now();
        drop(c);
        common::wait_until(Duration::from_secs(5), "the statement is stopped", || {
            running_with(t, &marker) == 0
        });
        println!(
            "client gone (in transaction: {in_transaction}): statement stopped {:?} later",
            gone.elapsed()
        );
    }
    // The abandoned transaction was rolled back: its row lock is free and
    // its update gone.
    let mut c = connect(&g).await;
    c.query_drop("SET innodb_lock_wait_timeout = 2")
        .await
        .unwrap();
    c.query_drop(format!("UPDATE {table} SET v = 2 WHERE id = 1"))
        .await
        .unwrap();
    let v: i32 = c
        .query_first(format!("/*master*/ SELECT v FROM {table} WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 2);
}

/// A figure from /proc/PID/status, in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Sends one command of `total` bytes in full-size packets, from a small
/// reused buffer: a COM_QUERY, or (`execute`) a COM_STMT_EXECUTE of a
/// statement with one BLOB parameter. Returns the first packet of the
/// answer (or None if the connection was closed).
async fn send_long_command(port: u16, execute: bool, total: usize) -> Option<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    const MAX: usize = 0xFF_FFFF;
    let mut c = RawClient::login(port, &Login::default()).await;
    let start = if execute {
        let id = c.prepare("SELECT LENGTH(?)").await;
        let mut start = vec![0x17];
        start.extend_from_slice(&id.to_le_bytes());
        // flags, one iteration, null bitmap, types bound: BLOB, then the
        // value's length (lenenc, 8 bytes).
        start.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xfc, 0, 0xfe]);
        start.extend_from_slice(&((total - start.len() - 8) as u64).to_le_bytes());
        start
    } else {
        b"\x03SELECT 1 /* ".to_vec()
    };
    let filler = vec![b' '; 1 << 20];
    let mut left = total;
    let mut seq = 0u8;
    let mut first = true;
    loop {
        let len = left.min(MAX);
        let header = [len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        if c.stream.write_all(&header).await.is_err() {
            return None;
        }
        let mut body = len;
        if first && len > 0 {
            if c.stream.write_all(&start).await.is_err() {
                return None;
            }
            body -= start.len();
            first = false;
        }
        while body > 0 {
            let n = body.min(filler.len());
            if c.stream.write_all(&filler[..n]).await.is_err() {
                return None;
            }
            body -= n;
        }
        left -= len;
        seq = seq.wrapping_add(1);
        if len < MAX {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), async { Some(c.read().await.0) })
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_clients_sending_300_mib_commands_each_keep_gantry_small() {
    let t = common::shared_topology();
    let g = Gantry::start(t, &[]);
    let pid = g.pid();
    let started = Instant::now();
    let mut clients = Vec::new();
    // Half statements, half executes of a prepared statement: both are
    // streamed to a backend as they arrive.
    for i in 0..10 {
        let port = g.port;
        clients.push(tokio::spawn(send_long_command(port, i % 2 == 1, 300 << 20)));
    }
    let mut refused = 0;
    for c in clients {
        let answer = tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("every long statement is answered")
            .unwrap();
        // The servers' max_allowed_packet is 256M: ERROR 1153, as directly.
        if let Some(p) = answer {
            assert_eq!(p[0], 0xff, "{:?}", &p[..p.len().min(64)]);
            assert_eq!(
                u16::from_le_bytes([p[1], p[2]]),
                1153,
                "{}",
                String::from_utf8_lossy(&p)
            );
            refused += 1;
        }
    }
    let peak = status_kib(pid, "VmHWM");
    println!(
        "10 x 300 MiB commands in {:?}: {refused} answered 1153; Gantry peak RSS {} MiB",
        started.elapsed(),
        peak / 1024
    );
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    // Gantry still serves.
    let mut c = connect(&g).await;
    let one: u8 = c.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_with_a_schema_work_while_the_primary_is_down() {
    let t = Topology::start();
    let g = Gantry::start(&t, &FAST_HEALTH);
    t.primary.kill();
    let primary = t.primary.addr();
    let admin_sees_down = || {
        let out = g.admin_mariadb(&["-N", "-B", "-e", "SELECT * FROM backends"]);
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            cols.get(1) == Some(&primary.as_str()) && cols.get(2) == Some(&"down")
        })
    };
    common::wait_until(
        Duration::from_secs(10),
        "the primary marked down",
        admin_sees_down,
    );
    let asked = Instant::now();
    let mut c = connect(&g).await;
    println!("login with a schema, primary down: {:?}", asked.elapsed());
    let db: String = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, "test");
    let port: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_ne!(port, t.primary.port);
    // Writes fail at once with a clear error.
    let err = c.query_drop("CREATE TABLE nope (a INT)").await.unwrap_err();
    assert_eq!(server_code(&err), Some(1105), "{err:?}");
    t.primary.start();
}
