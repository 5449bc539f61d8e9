//! The admin port against a live Gantry on the real MariaDB topology: the
//! Atlas commands as operators' scripts use them (the `mysql` CLI), hot
//! swap under sysbench load, SAVE/RELOAD CONFIG, the client and account
//! lists, and the `admin-sql/` reference run as a transcript.
//!
//! Server ids: primary 1, replica1 2, replica2 3 (see tests/common).

mod common;
#[path = "admin/transcript.rs"]
mod transcript;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Gantry, Topology};
use mysql_async::prelude::Queryable;
use transcript::{realign, split_sql, transcript_matches};

// ---------------------------------------------------------------- helpers

/// `mysql -h127.0.0.1 -P<admin> -uadmin -padmin_pw <args>`, as scripts run it.
fn admin_cli(g: &Gantry, args: &[&str]) -> Output {
    Command::new("mysql")
        .arg("--no-defaults")
        .arg("-h127.0.0.1")
        .arg(format!("-P{}", g.admin_port))
        .args(["-uadmin", "-padmin_pw"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the mysql client")
}

/// Runs admin SQL in batch mode and returns stdout; panics on an error.
fn admin(g: &Gantry, sql: &str) -> String {
    let out = admin_cli(g, &["-e", sql]);
    assert!(
        out.status.success(),
        "admin `{sql}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs admin SQL expected to fail; returns the client's error line.
fn admin_err(g: &Gantry, sql: &str) -> String {
    let out = admin_cli(g, &["-e", sql]);
    assert!(!out.status.success(), "admin `{sql}` should fail");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Rows of an admin table as column → value maps (batch output).
fn admin_rows(g: &Gantry, sql: &str) -> Vec<BTreeMap<String, String>> {
    let out = admin(g, sql);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .map(|h| h.split('\t').collect())
        .unwrap_or_default();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

/// (address, state, type) of each row of `SELECT * FROM backends`.
fn backends(g: &Gantry) -> Vec<(String, String, String)> {
    admin_rows(g, "SELECT * FROM backends")
        .into_iter()
        .map(|r| (r["address"].clone(), r["state"].clone(), r["type"].clone()))
        .collect()
}

/// Waits until the health loop has judged every backend `up`.
fn wait_all_up(g: &Gantry) {
    common::wait_until(Duration::from_secs(15), "every backend to be up", || {
        backends(g).iter().all(|b| b.1 == "up")
    });
}

/// Connection options that skip mysql_async's settings query, so every
/// statement a test sends is one it wrote.
fn opts(url: &str) -> mysql_async::Opts {
    let base = mysql_async::Opts::from_url(url).expect("valid url");
    mysql_async::OptsBuilder::from_opts(base)
        .prefer_socket(false)
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28800))
        .into()
}

async fn proxy_conn(
    g: &Gantry,
    user: &str,
    pw: &str,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(opts(&g.url(user, pw, "test"))).await
}

/// Which servers `n` reads through one proxy connection reached
/// (server_id → count).
async fn read_servers(g: &Gantry, n: usize) -> BTreeMap<u32, usize> {
    let mut conn = proxy_conn(g, "app", "app_pw")
        .await
        .expect("connect to the proxy");
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let id: u32 = conn
            .query_first("SELECT @@server_id")
            .await
            .expect("read through the proxy")
            .expect("one row");
        *seen.entry(id).or_insert(0) += 1;
    }
    conn.disconnect().await.expect("disconnect");
    seen
}

fn ids(seen: &BTreeMap<u32, usize>) -> Vec<u32> {
    seen.keys().copied().collect()
}

fn server_error(e: &mysql_async::Error) -> Option<(u16, String)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.message.clone())),
        _ => None,
    }
}

/// A config file for tests of SAVE/RELOAD CONFIG, in a fresh directory.
fn write_config(topo: &Topology, dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create config dir");
    let path = dir.join("gantry.toml");
    let text = format!(
        "# Written by tests/admin.rs; this comment must survive SAVE CONFIG.\n\
         admin-username = \"admin\"\n\
         admin-password = \"admin_pw\"\n\
         proxy-backend-addresses = [\"{}\"]\n\
         proxy-read-only-backend-addresses = [\"{}\", \"{}\"]\n\
         pwds = [\"app:app_pw\"]\n\
         monitor-username = \"monitor\"\n\
         monitor-password = \"monitor_pw\"\n\
         log-level = \"info\"\n{extra}",
        topo.primary.addr(),
        topo.replicas[0].addr(),
        topo.replicas[1].addr()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name(name));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

// ------------------------------------------------------- the admin port

#[test]
fn backends_shows_the_topology_up_and_the_cli_works() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    assert_eq!(
        backends(&g),
        vec![
            (topo.primary.addr(), "up".into(), "rw".into()),
            (topo.replicas[0].addr(), "up".into(), "ro".into()),
            (topo.replicas[1].addr(), "up".into(), "ro".into()),
        ]
    );
    let rows = admin_rows(&g, "select * from BACKENDS;");
    let ndx: Vec<&str> = rows.iter().map(|r| r["backend_ndx"].as_str()).collect();
    assert_eq!(
        ndx,
        ["1", "2", "3"],
        "backend_ndx counts from 1; commands are case-insensitive"
    );
    let header = admin(&g, "SELECT * FROM backends");
    assert!(
        header.starts_with("backend_ndx\taddress\tstate\ttype\t"),
        "Atlas's four columns come first: {header}"
    );

    // What the CLI sends on an interactive connect, and \G output.
    assert_eq!(
        admin(&g, "select @@version_comment limit 1"),
        "@@version_comment\nGantry admin\n"
    );
    let vertical = admin(&g, "SELECT * FROM backends\\G");
    assert!(
        vertical.contains("*************************** 3. row"),
        "{vertical}"
    );
    assert!(
        vertical.contains(&format!("    address: {}", topo.replicas[1].addr())),
        "{vertical}"
    );
    assert_eq!(
        admin(&g, "SELECT VERSION"),
        format!("version\n{}\n", env!("CARGO_PKG_VERSION"))
    );

    let err = admin_err(&g, "SHOW DATABASES");
    assert!(
        err.contains("ERROR 1064") && err.contains("SELECT * FROM help"),
        "{err}"
    );
    let err = admin_err(&g, "REMOVE BACKEND 7");
    assert!(
        err.contains("backend_ndx 7 does not exist (there are 3 backends"),
        "{err}"
    );
    let help = admin(&g, "SELECT * FROM help");
    assert!(
        help.starts_with("command\tdescription\n") && help.contains("ADD SLAVE"),
        "{help}"
    );

    // Wrong admin credentials, and the data port's account, are refused.
    for (user, pw) in [("admin", "wrong"), ("app", "app_pw")] {
        let out = Command::new("mysql")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{}", g.admin_port),
            ])
            .args([format!("-u{user}"), format!("-p{pw}")])
            .args(["-e", "SELECT * FROM backends"])
            .output()
            .expect("run mysql");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ERROR 1045 (28000)"), "{user}: {err}");
    }
    // The data port never answers admin commands: they reach the server,
    // which knows no such table or statement.
    for (sql, code) in [
        ("SELECT * FROM backends", "ERROR 1146 (42S02)"),
        ("SET OFFLINE 1", "ERROR 1064 (42000)"),
        ("REMOVE BACKEND 1", "ERROR 1064 (42000)"),
    ] {
        let out = g.mariadb(&["-Dapp", "-e", sql]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{sql}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_and_garbage_on_the_admin_port() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    // mysql_async asks @@max_allowed_packet, @@wait_timeout, @@socket on connect.
    let mut conn = mysql_async::Conn::from_url(g.admin_url())
        .await
        .expect("mysql_async connects");
    let rows: Vec<mysql_async::Row> = conn.query("SELECT * FROM backends").await.expect("query");
    let rows: Vec<(u32, String, String, String)> = rows
        .iter()
        .map(|r| {
            let cell = |i: usize| r.get::<String, _>(i).expect("text cell");
            (
                r.get::<u32, _>(0).expect("backend_ndx"),
                cell(1),
                cell(2),
                cell(3),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], (1, topo.primary.addr(), "up".into(), "rw".into()));
    conn.ping().await.expect("COM_PING");
    let err = conn.query_drop("bogus").await.expect_err("unknown command");
    assert_eq!(server_error(&err).map(|e| e.0), Some(1064));
    conn.disconnect().await.expect("disconnect");

    // Garbage after the greeting: the port answers or hangs up, and stays up.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for junk in [
        &b"\xff\xff\xff\x00junk"[..],
        b"\x01\x00\x00\x00",
        b"\x00\x00\x00\x00\x00\x00",
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", g.admin_port))
            .await
            .expect("connect");
        let mut greeting = [0u8; 4];
        s.read_exact(&mut greeting).await.expect("greeting");
        let _ = s.write_all(junk).await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut sink)).await;
    }
    assert_eq!(
        backends(&g).len(),
        3,
        "the admin port survives malformed input"
    );
}

// ------------------------------------------------------------- hot swap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_offline_keeps_reads_off_and_set_online_brings_them_back() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    assert_eq!(
        ids(&read_servers(&g, 20).await),
        [2, 3],
        "reads are spread over both replicas"
    );

    assert_eq!(admin(&g, "SET OFFLINE 2"), "");
    assert_eq!(backends(&g)[1].1, "offline");
    assert_eq!(
        ids(&read_servers(&g, 30).await),
        [3],
        "no read reaches the offline replica"
    );

    admin(&g, "set online 2;");
    let state = backends(&g)[1].1.clone();
    assert!(
        state == "up" || state == "unknown",
        "SET ONLINE leaves offline: {state}"
    );
    common::wait_until(Duration::from_secs(10), "replica1 to be up again", || {
        backends(&g)[1].1 == "up"
    });
    assert_eq!(
        ids(&read_servers(&g, 20).await),
        [2, 3],
        "SET ONLINE brings the replica back"
    );

    // Both replicas offline: reads fall back to the primary.
    admin(&g, "SET OFFLINE 2; SET OFFLINE 3");
    assert_eq!(ids(&read_servers(&g, 10).await), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_statements_and_transactions_survive_a_swap() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    admin(&g, "REMOVE BACKEND 3"); // one replica left: we know where reads go
    let table = common::unique_name("swap");
    topo.primary
        .sql(&format!("CREATE TABLE test.{table} (id INT PRIMARY KEY)"));

    // A slow read on replica1 keeps running while replica1 is removed.
    let mut slow = proxy_conn(&g, "app", "app_pw").await.expect("connect");
    let reader = tokio::spawn(async move {
        let r: Option<(u32, u32)> = slow
            .query_first("SELECT @@server_id, SLEEP(2)")
            .await
            .expect("the running statement finishes");
        slow.disconnect().await.expect("disconnect");
        r
    });
    // A transaction in flight on the primary.
    let mut tx = proxy_conn(&g, "app", "app_pw").await.expect("connect");
    tx.query_drop("BEGIN").await.expect("begin");
    tx.query_drop(format!("INSERT INTO test.{table} VALUES (1)"))
        .await
        .expect("insert");

    tokio::time::sleep(Duration::from_millis(500)).await;
    admin(&g, "REMOVE BACKEND 2");
    assert_eq!(backends(&g).len(), 1);

    tx.query_drop(format!("INSERT INTO test.{table} VALUES (2)"))
        .await
        .expect("insert after the swap");
    let n: u32 = tx
        .query_first(format!("SELECT COUNT(*) FROM test.{table}"))
        .await
        .expect("read in the transaction")
        .expect("row");
    assert_eq!(n, 2, "the transaction sees its own rows on the primary");
    tx.query_drop("COMMIT").await.expect("commit");
    tx.disconnect().await.expect("disconnect");
    assert_eq!(
        reader.await.expect("join"),
        Some((2, 0)),
        "the slow read finished on replica1"
    );
    assert_eq!(
        topo.primary
            .sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "2"
    );
    assert_eq!(
        ids(&read_servers(&g, 5).await),
        [1],
        "no replica left: reads go to the primary"
    );
    topo.primary.sql(&format!("DROP TABLE test.{table}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_backends_pools_drain_and_close() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    // A user of its own, so other tests' connections do not count.
    let user = common::unique_name("drain");
    topo.primary.sql(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON test.* TO '{user}'@'127.0.0.1'"
    ));
    topo.wait_replicas_caught_up(Duration::from_secs(20));
    admin(&g, &format!("ADD PWD {user}:pw"));
    let on_replica1 = || {
        topo.replicas[0].sql(&format!(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{user}'"
        ))
    };
    let mut conns = Vec::new();
    for _ in 0..4 {
        let mut c = proxy_conn(&g, &user, "pw")
            .await
            .expect("connect as the new user");
        let _: Option<u32> = c.query_first("SELECT @@server_id").await.expect("read");
        conns.push(c);
    }
    common::wait_until(
        Duration::from_secs(5),
        "pooled connections on replica1",
        || on_replica1() != "0",
    );
    admin(&g, "REMOVE BACKEND 2");
    common::wait_until(Duration::from_secs(10), "replica1's pool to close", || {
        on_replica1() == "0"
    });
    for mut c in conns {
        let id: u32 = c
            .query_first("SELECT @@server_id")
            .await
            .expect("read")
            .expect("row");
        assert_ne!(id, 2, "no statement reaches a removed backend");
        c.disconnect().await.expect("disconnect");
    }
    topo.primary.sql(&format!("DROP USER '{user}'@'127.0.0.1'"));
}

// ---------------------------------------------------- sysbench under swaps

/// Parses `name: <number>` from sysbench's report.
fn sysbench_figure(report: &str, name: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.trim_start().starts_with(name))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn sysbench_read_only_sees_no_errors_while_admin_commands_run() {
    let topo = common::shared_topology();
    topo.primary.sql("CREATE DATABASE IF NOT EXISTS sbtest");
    let common_args = |port: u16| {
        vec![
            "oltp_read_only".to_string(),
            "--mysql-host=127.0.0.1".into(),
            format!("--mysql-port={port}"),
            "--mysql-user=app".into(),
            "--mysql-password=app_pw".into(),
            "--mysql-db=sbtest".into(),
            "--tables=2".into(),
            "--table-size=2000".into(),
        ]
    };
    let prep = common::sysbench_command()
        .args(common_args(topo.primary.port))
        .arg("prepare")
        .output()
        .expect("run sysbench prepare");
    let prep_err = String::from_utf8_lossy(&prep.stderr);
    assert!(
        prep.status.success() || prep_err.contains("already exists"),
        "sysbench prepare failed: {prep_err}"
    );
    topo.wait_replicas_caught_up(Duration::from_secs(30));

    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    let run = common::sysbench_command()
        .args(common_args(g.port))
        .args([
            "--threads=4",
            "--time=14",
            "--skip-trx=on",
            "--db-ps-mode=disable",
            "run",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sysbench run");

    let stats = |g: &Gantry| -> Vec<u64> {
        admin_rows(g, "SELECT * FROM stats")
            .iter()
            .map(|r| r["queries"].parse().unwrap_or(0))
            .collect()
    };
    let pause = || std::thread::sleep(Duration::from_millis(700));
    pause();
    let replica1 = topo.replicas[0].addr();
    let replica2 = topo.replicas[1].addr();
    // backend_ndx of an address in the current list.
    let ndx = |addr: &str| -> usize {
        backends(&g)
            .iter()
            .position(|b| b.0 == addr)
            .map(|i| i + 1)
            .expect("backend listed")
    };
    for round in 0..2 {
        let n = ndx(&replica1);
        admin(&g, &format!("SET OFFLINE {n}"));
        let before = stats(&g)[n - 1];
        pause();
        let after = stats(&g)[n - 1];
        // Statements already dispatched may still be counted (<= threads).
        assert!(
            after - before <= 4,
            "round {round}: offline replica got {} new statements",
            after - before
        );
        admin(&g, &format!("SET ONLINE {n}"));
        pause();
        admin(&g, &format!("REMOVE BACKEND {}", ndx(&replica2)));
        pause();
        admin(&g, &format!("ADD SLAVE {replica2}@2"));
        pause();
        admin(&g, &format!("REMOVE BACKEND {}", ndx(&replica1)));
        pause();
        admin(&g, &format!("ADD SLAVE {replica1}"));
        assert_eq!(backends(&g).len(), 3);
        pause();
    }
    let out = run.wait_with_output().expect("wait for sysbench");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sysbench failed ({}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sysbench_figure(&report, "ignored errors"),
        Some(0.0),
        "{report}"
    );
    let queries = sysbench_figure(&report, "queries:").unwrap_or(0.0);
    let tps = sysbench_figure(&report, "transactions:").unwrap_or(0.0);
    assert!(queries > 0.0 && tps > 0.0, "{report}");
    let per_backend = admin(&g, "SELECT * FROM stats");
    eprintln!("sysbench through gantry during admin swaps: {tps} transactions, {queries} queries, 0 errors\n{report}\n{per_backend}");
}

// ------------------------------------------------- save / reload config

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_backend_and_add_slave_change_reads_and_save_config_persists_them() {
    let topo = common::shared_topology();
    let dir = temp_dir("gantry-admin-save");
    let path = write_config(topo, &dir, "");
    let path_s = path.to_string_lossy().into_owned();
    let g = Gantry::start_with_args(&["--config", &path_s]);
    wait_all_up(&g);
    let r1_port = topo.replicas[0].port;

    admin(&g, "REMOVE BACKEND 2;");
    // Replica discovery still sees replica1 replicating from the primary; it
    // must not bring back what the operator removed.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(
        backends(&g).len(),
        2,
        "REMOVE BACKEND sticks: {:?}",
        backends(&g)
    );
    assert_eq!(
        ids(&read_servers(&g, 10).await),
        [3],
        "replica1 removed: reads go to replica2 only"
    );
    // A host name (not only dotted IPv4) with a weight.
    admin(&g, &format!("ADD SLAVE localhost:{r1_port}@3"));
    wait_all_up(&g);
    let seen = read_servers(&g, 40).await;
    assert_eq!(
        ids(&seen),
        [2, 3],
        "replica1 is back under its host name: {seen:?}"
    );
    assert!(seen[&2] > seen[&3], "weight 3 vs 1: {seen:?}");
    let err = admin_err(&g, &format!("ADD SLAVE LOCALHOST:{r1_port}"));
    assert!(err.contains("already in the backend list"), "{err}");

    assert_eq!(admin(&g, "SAVE CONFIG"), "");
    let saved = std::fs::read_to_string(&path).expect("read saved config");
    assert!(
        saved.contains("this comment must survive SAVE CONFIG"),
        "{saved}"
    );
    assert!(saved.contains("log-level = \"info\""), "{saved}");
    let cfg = gantry::config::load_file_only(&path).expect("the saved file loads");
    let ro: Vec<String> = cfg
        .proxy_read_only_backend_addresses
        .iter()
        .map(|a| a.to_config_string())
        .collect();
    assert_eq!(
        ro,
        [topo.replicas[1].addr(), format!("localhost:{r1_port}@3")],
        "{saved}"
    );
    assert_eq!(
        cfg.proxy_backend_addresses[0].to_string(),
        topo.primary.addr()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp file left next to the config");

    // A new Gantry started from the saved file sees the same backends.
    drop(g);
    let g2 = Gantry::start_with_args(&["--config", &path_s]);
    let rows = admin_rows(&g2, "SELECT * FROM backends");
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["address"].as_str(),
                r["type"].as_str(),
                r["weight"].as_str(),
            )
        })
        .collect();
    let want_r1 = format!("localhost:{r1_port}");
    assert_eq!(
        got,
        [
            (topo.primary.addr().as_str(), "rw", "1"),
            (topo.replicas[1].addr().as_str(), "ro", "1"),
            (want_r1.as_str(), "ro", "3"),
        ]
    );
    drop(g2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_config_without_a_config_file_is_a_clear_error() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    let err = admin_err(&g, "SAVE CONFIG");
    assert!(
        err.contains("SAVE CONFIG needs a configuration file: start gantry with --config"),
        "{err}"
    );
}

#[test]
fn reload_config_and_sighup_apply_the_file() {
    let topo = common::shared_topology();
    let dir = temp_dir("gantry-admin-reload");
    let path = write_config(topo, &dir, "");
    let g = Gantry::start_with_args(&["--config", &path.to_string_lossy()]);
    admin(&g, "SET OFFLINE 2");

    // Drop replica2 from the file, give replica1 a weight, allow one client.
    let text = std::fs::read_to_string(&path).expect("read");
    let r1 = topo.replicas[0].addr();
    let r2 = topo.replicas[1].addr();
    let edited = text
        .replace(&format!("[\"{r1}\", \"{r2}\"]"), &format!("[\"{r1}@4\"]"))
        .replace(
            "pwds = [\"app:app_pw\"]",
            "pwds = [\"app:app_pw\", \"admin:admin_pw\"]",
        );
    assert_ne!(edited, text);
    std::fs::write(&path, edited + "client-ips = [\"127.0.0.1\"]\n").expect("write");
    assert_eq!(admin(&g, "RELOAD CONFIG"), "");
    let rows = admin_rows(&g, "SELECT * FROM backends");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1]["address"].as_str(), rows[1]["weight"].as_str()),
        (r1.as_str(), "4")
    );
    assert_eq!(
        rows[1]["state"], "offline",
        "a kept backend keeps the operator's state"
    );
    assert_eq!(admin(&g, "SELECT * FROM clients"), "client\n127.0.0.1\n");
    assert!(admin(&g, "SELECT * FROM pwds").contains("admin\t******"));

    // SIGHUP does the same: put replica2 back.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(&format!("[\"{r1}@4\"]"), &format!("[\"{r1}@4\", \"{r2}\"]")),
    )
    .expect("write");
    let hup = Command::new("kill")
        .args(["-HUP", &g.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    common::wait_until(
        Duration::from_secs(10),
        "SIGHUP to add replica2, up",
        || backends(&g).get(2) == Some(&(r2.clone(), "up".into(), "ro".into())),
    );

    // A broken file is refused and nothing changes.
    std::fs::write(&path, "proxy-backend-addresses = [\"nope:99999\"]\n").expect("write");
    let err = admin_err(&g, "RELOAD CONFIG");
    assert!(
        err.contains("ERROR 1105") && err.contains("config: "),
        "{err}"
    );
    assert_eq!(backends(&g).len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------- clients and pwds

/// Logs in through the proxy with the CLI; Ok(()) or the error line.
fn cli_login(g: &Gantry, user: &str, pw: &str) -> Result<(), String> {
    let out = Command::new("mysql")
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{}", g.port)])
        .args([format!("-u{user}"), format!("-p{pw}")])
        .args(["-N", "-e", "SELECT 1"])
        .output()
        .expect("run mysql");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn clients_not_in_client_ips_are_refused_with_a_clear_error() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &["--client-ips", "10.0.0.0/8"]);
    let err = cli_login(&g, "app", "app_pw").expect_err("127.0.0.1 is not in client-ips");
    // The MariaDB client words an ERR before the greeting its own way.
    assert!(
        err.contains("1130")
            && err.contains("Host '127.0.0.1' is not allowed to connect to this Gantry proxy"),
        "{err}"
    );
    assert_eq!(admin(&g, "SELECT * FROM clients"), "client\n10.0.0.0/8\n");
    admin(&g, "ADD CLIENT 127.0.0.");
    cli_login(&g, "app", "app_pw").expect("a matching prefix lets the client in");
    admin(&g, "REMOVE CLIENT 127.0.0.");
    assert!(cli_login(&g, "app", "app_pw").is_err());
    admin(&g, "ADD CLIENT 127.0.0.1");
    cli_login(&g, "app", "app_pw").expect("an exact address lets the client in");
    let err = admin_err(&g, "ADD CLIENT localhost");
    assert!(err.contains("is not an IP address, IPv4 prefix"), "{err}");
    let err = admin_err(&g, "REMOVE CLIENT 192.168.9.9");
    assert!(err.contains("not in client-ips"), "{err}");
    // Removing every entry means everyone again.
    admin(&g, "REMOVE CLIENT 10.0.0.0/8; REMOVE CLIENT 127.0.0.1");
    assert_eq!(admin(&g, "SELECT * FROM clients"), "");
    cli_login(&g, "app", "app_pw").expect("an empty list allows everyone");
}

#[test]
fn add_pwd_and_remove_pwd_change_who_can_log_in() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    let err = cli_login(&g, "admin", "admin_pw").expect_err("admin is not in pwds yet");
    assert!(err.contains("ERROR 1045"), "{err}");

    admin(&g, "ADD PWD admin:admin_pw");
    cli_login(&g, "admin", "admin_pw").expect("an added account logs in");
    let pwds = admin(&g, "SELECT * FROM pwds");
    assert_eq!(pwds, "username\tpassword\napp\t******\nadmin\t******\n");
    assert!(
        !g.log().contains("admin_pw"),
        "passwords never reach the log"
    );
    let err = admin_err(&g, "ADD PWD admin:other");
    assert!(err.contains("already exists"), "{err}");

    admin(&g, "REMOVE PWD admin");
    let err = cli_login(&g, "admin", "admin_pw").expect_err("a removed account is refused");
    assert!(err.contains("ERROR 1045"), "{err}");
    cli_login(&g, "app", "app_pw").expect("other accounts are untouched");
    let err = admin_err(&g, "REMOVE PWD nobody");
    assert!(err.contains("not in pwds"), "{err}");
}

// ----------------------------------------------- the operators' scripts

/// The reference deployment's scripts, kept in admin-sql/operator-scripts.
fn operator_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("admin-sql/operator-scripts")
        .join(name)
}

fn run_script(name: &str, env: &[(&str, String)]) -> String {
    let out = Command::new("bash")
        .arg(operator_script(name))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the operator script");
    assert!(
        out.status.success(),
        "{name} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_operator_scripts_run_unchanged() {
    let topo = common::shared_topology();
    let g = Gantry::start(topo, &[]);
    wait_all_up(&g);
    let atlas = [
        ("ATLAS_HOST", "127.0.0.1".to_string()),
        ("ATLAS_PORT", g.admin_port.to_string()),
        ("ATLAS_USER", "admin".to_string()),
        ("ATLAS_PASSWORD", "admin_pw".to_string()),
    ];
    // Script 1: count the lines of `select * from backends` (header + 3).
    assert_eq!(run_script("count-backends.sh", &atlas).trim(), "4");

    // Script 2: re-add a replica once SHOW SLAVE STATUS says it caught up.
    let replica = &topo.replicas[0];
    admin(&g, "REMOVE BACKEND 2");
    assert_eq!(run_script("count-backends.sh", &atlas).trim(), "3");
    let mut env = atlas.to_vec();
    env.extend([
        ("SLAVE_HOST", "127.0.0.1".to_string()),
        ("SLAVE_PORT", replica.port.to_string()),
        ("SLAVE_USER", "monitor".to_string()),
        ("SLAVE_PASSWORD", "monitor_pw".to_string()),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The replica is idle, so its SQL thread reports the caught-up state.
    let mut out = String::new();
    while backends(&g).len() < 3 && Instant::now() < deadline {
        out = run_script("readd-slave.sh", &env);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(out.contains("added"), "{out}");
    assert_eq!(run_script("count-backends.sh", &atlas).trim(), "4");
    wait_all_up(&g);
    assert_eq!(backends(&g)[2], (replica.addr(), "up".into(), "ro".into()));
    // Run again: the replica is already there, the script says so and succeeds.
    let again = run_script("readd-slave.sh", &env);
    assert!(again.contains("already"), "{again}");
}

// --------------------------------------------- the admin-sql reference

/// Values that depend on the run, as placeholders in admin-sql files.
struct Placeholders(Vec<(String, String)>);

impl Placeholders {
    fn new(topo: &Topology, g: &Gantry) -> Self {
        let mut v = vec![
            ("{PRIMARY}".to_string(), topo.primary.addr()),
            ("{REPLICA1}".to_string(), topo.replicas[0].addr()),
            ("{REPLICA2}".to_string(), topo.replicas[1].addr()),
            ("{PRIMARY_PORT}".to_string(), topo.primary.port.to_string()),
            (
                "{REPLICA1_PORT}".to_string(),
                topo.replicas[0].port.to_string(),
            ),
            (
                "{REPLICA2_PORT}".to_string(),
                topo.replicas[1].port.to_string(),
            ),
            ("{PROXY_PORT}".to_string(), g.port.to_string()),
            ("{ADMIN_PORT}".to_string(), g.admin_port.to_string()),
            (
                "{VERSION}".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ];
        // Longest values first, so an address wins over its port.
        v.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        Placeholders(v)
    }

    fn fill(&self, s: &str) -> String {
        self.0
            .iter()
            .fold(s.to_string(), |acc, (k, v)| acc.replace(k, v))
    }

    fn abstract_out(&self, s: &str) -> String {
        self.0
            .iter()
            .fold(s.to_string(), |acc, (k, v)| acc.replace(v, k))
    }
}

/// Runs one statement like `mysql --table -vv` and renders it as a session
/// transcript: `mysql> stmt`, the output, then any error line.
fn transcript_of(g: &Gantry, stmt: &str) -> String {
    let out = admin_cli(g, &["--table", "-vv", "-e", stmt]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    // Drop the client's echo of the statement (between two dash lines).
    let dashes: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "--------------")
        .map(|(i, _)| i)
        .collect();
    if dashes.len() >= 2 {
        lines.drain(..=dashes[1]);
    }
    while matches!(lines.first(), Some(l) if l.is_empty()) {
        lines.remove(0);
    }
    while matches!(lines.last(), Some(l) if l.is_empty() || *l == "Bye") {
        lines.pop();
    }
    let mut t = format!("mysql> {}\n", stmt.replace('\n', "\n    -> "));
    for l in lines {
        t.push_str(l.trim_end());
        t.push('\n');
    }
    for l in String::from_utf8_lossy(&out.stderr).lines() {
        t.push_str(l.trim_end());
        t.push('\n');
    }
    t.push('\n');
    t
}

/// Runs every admin-sql/NN-*.sql in order against one Gantry (started with
/// a config file, so SAVE CONFIG works) and compares the transcript with
/// NN-*.expected. `GANTRY_BLESS=1` rewrites the .expected files that
/// differ instead (then put `{?}` back where values vary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sql_reference_matches_a_live_gantry() {
    let topo = common::shared_topology();
    let ref_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("admin-sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ref_dir)
        .expect("admin-sql/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "one example per command: {files:?}");

    let dir = temp_dir("gantry-admin-sql");
    let config = write_config(topo, &dir, "");
    let g = Gantry::start_with_args(&["--config", &config.to_string_lossy()]);
    wait_all_up(&g);
    let ph = Placeholders::new(topo, &g);
    let bless = std::env::var_os("GANTRY_BLESS").is_some();
    let mut holder = None;
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if name.contains("sessions") && holder.is_none() {
            // A client in a transaction, so sessions/pools/stats have a row to show.
            let mut c = proxy_conn(&g, "app", "app_pw").await.expect("connect");
            c.query_drop("BEGIN").await.expect("begin");
            c.query_drop("SELECT 1").await.expect("select");
            holder = Some(c);
        }
        let sql = std::fs::read_to_string(file).expect("read .sql");
        let mut actual = String::new();
        for (comments, stmt) in split_sql(&sql) {
            for c in comments {
                actual.push_str(&c);
                actual.push('\n');
            }
            actual.push_str(&ph.abstract_out(&transcript_of(&g, &ph.fill(&stmt))));
        }
        let actual = realign(&actual);
        let expected_path = file.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if let Err(why) = transcript_matches(&expected, &actual) {
            if bless {
                // Only files that differ are rewritten, so `{?}` stays elsewhere.
                std::fs::write(&expected_path, &actual).expect("write .expected");
            } else {
                failures.push(format!("{name}: {why}\n---- actual ----\n{actual}"));
            }
        }
    }
    if let Some(c) = holder {
        c.disconnect().await.expect("disconnect");
    }
    let saved = std::fs::read_to_string(&config).expect("config after SAVE CONFIG");
    assert!(
        saved.contains(&format!("\"{}@2\"", topo.replicas[1].addr())),
        "SAVE CONFIG kept the weight: {saved}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} admin-sql file(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
