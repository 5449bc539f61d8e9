//! Reliability under faults and hostile input (issue #11): Gantry's own
//! errors as libmariadb and PyMySQL see them, silent sockets and the login
//! timeout, running out of file descriptors, RELOAD CONFIG without a file,
//! failed-login logging, and graceful shutdown.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, shared_topology, Gantry};

/// The error line of a `mariadb` run that must have failed (the CLI may
/// echo the statement above it).
fn cli_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected an error, got {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.trim().lines().last().unwrap_or_default().to_string()
}

/// A virtualenv with PyMySQL, shared with drivers/pymysql/run.sh.
fn pymysql_python() -> String {
    let repo = env!("CARGO_MANIFEST_DIR");
    let script = format!(
        "source {repo}/drivers/lib.sh && drv_init pymysql && \
         drv_venv pymysql-venv PyMySQL==1.1.1 && echo \"$VENV/bin/python\""
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    assert!(out.status.success(), "PyMySQL venv: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What PyMySQL reports when connecting and running `SELECT 1`.
fn pymysql_error(python: &str, port: u16) -> String {
    let code = format!(
        "import pymysql\n\
         try:\n    c = pymysql.connect(host='127.0.0.1', port={port}, user='app', \
         password='app_pw', connect_timeout=5)\n    c.cursor().execute('SELECT 1')\n    \
         print('no error')\n\
         except pymysql.err.MySQLError as e:\n    print(e.args[0], e.args[1])\n"
    );
    let out = Command::new(python)
        .args(["-c", &code])
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn own_errors_reach_libmariadb_and_pymysql_with_code_and_message() {
    let t = shared_topology();
    let python = pymysql_python();

    // A limit: max-client-connections reached.
    let g = Gantry::start(t, &["--max-client-connections", "1"]);
    let _holder = Conn::new(Opts::from_url(&g.url("app", "app_pw", "test")).unwrap())
        .await
        .unwrap();
    let err = cli_error(&g.mariadb(&["-e", "SELECT 1"]));
    assert_eq!(
        err,
        "ERROR 1040 (08004): Too many connections: Gantry's limit of 1 clients"
    );
    assert_eq!(
        pymysql_error(&python, g.port),
        "1040 Too many connections: Gantry's limit of 1 clients"
    );
    drop(g);

    // A backend that cannot be reached.
    let dead = format!("127.0.0.1:{}", free_port());
    let g = Gantry::start(
        t,
        &[
            "--proxy-backend-addresses",
            &dead,
            "--proxy-read-only-backend-addresses",
            "",
            "--auto-discover-replicas",
            "false",
            "--connect-timeout-ms",
            "500",
        ],
    );
    let err = cli_error(&g.mariadb(&["-e", "SELECT 1"]));
    // Before the health loop marks it down, and after.
    assert!(
        err.starts_with("ERROR 1105 (HY000) at line 1: Can't connect to backend server")
            || err.starts_with("ERROR 1105 (HY000) at line 1: The backend server"),
        "{err}"
    );
    assert!(
        err.contains("backend") && !err.contains("2027") && !err.contains("alformed"),
        "{err}"
    );
    let py = pymysql_error(&python, g.port);
    assert!(py.starts_with("1105 ") && py.contains("backend"), "{py}");
    let sb = common::sysbench_command()
        .args([
            "oltp_point_select",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={}", g.port),
            "--mysql-user=app",
            "--mysql-password=app_pw",
            "--tables=1",
            "--table-size=10",
            "prepare",
        ])
        .output()
        .expect("sysbench is installed");
    let sb = String::from_utf8_lossy(&sb.stdout).to_string() + &String::from_utf8_lossy(&sb.stderr);
    let sb_line = sb
        .lines()
        .find(|l| l.contains("1105"))
        .unwrap_or_else(|| panic!("sysbench did not report 1105:\n{sb}"))
        .to_string();
    assert!(
        sb_line.contains("Can't connect to backend server") && !sb.contains("2027"),
        "{sb}"
    );
    eprintln!("mariadb CLI: {err}\nPyMySQL: {py}\nsysbench: {sb_line}");
}

/// Opens `n` connections that never send anything.
fn silent_sockets(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect()
}

/// Reads until EOF; the time it took, or `None` if the peer kept the
/// connection open past `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed())
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn silent_sockets_do_not_stop_logins_and_are_closed_at_the_login_timeout() {
    let t = shared_topology();
    let g = Gantry::start(
        t,
        &[
            "--login-timeout-ms",
            "2000",
            "--max-client-connections",
            "200",
        ],
    );
    let opened = Instant::now();
    let mut silent = silent_sockets(g.port, 300);
    std::thread::sleep(Duration::from_millis(300));

    let login = Instant::now();
    let out = g.mariadb(&["-N", "-e", "SELECT 1"]);
    let took = login.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert!(took < Duration::from_secs(1), "login took {took:?}");
    let admin = g.admin_mariadb(&["-e", "SELECT * FROM backends"]);
    assert!(admin.status.success(), "{admin:?}");

    let mut latest = Duration::ZERO;
    let mut earliest = Duration::MAX;
    for s in &mut silent {
        closed_within(s, Duration::from_secs(5)).expect("silent socket closed");
        latest = latest.max(opened.elapsed());
        earliest = earliest.min(opened.elapsed());
    }
    eprintln!("silent sockets closed between {earliest:?} and {latest:?} after opening");
    // A burst of 300 connects overflows the listen backlog, so some SYNs
    // are retried by the kernel 1 s (or 3 s) later: their timeout starts then.
    assert!(
        earliest >= Duration::from_millis(1900) && latest < Duration::from_millis(5500),
        "silent sockets closed between {earliest:?} and {latest:?}"
    );
    eprintln!("normal login with 300 silent sockets: {took:?}; all silent ones closed {latest:?} after opening");
}

#[test]
fn unauthenticated_connections_have_their_own_cap_and_admin_stays_reachable() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--max-unauthenticated-connections", "5"]);
    // The harness's readiness probe was a connection too: let Gantry see
    // it close before the cap is filled.
    std::thread::sleep(Duration::from_millis(300));
    let mut silent = silent_sockets(g.port, 5);
    // A greeting means Gantry counted the connection (also on a busy box).
    for s in &mut silent {
        let greeting = first_payload(s);
        assert_eq!(
            <[u8]>::first(&greeting),
            Some(&10),
            "a protocol-10 greeting"
        );
    }
    // Refused before the greeting, as a server refuses max_connections:
    // libmariadb (TLS on by default) wraps that error in its 2002.
    let err = cli_error(&g.mariadb(&["-e", "SELECT 1"]));
    assert!(
        err.contains(
            "1040 - Too many connections: Gantry's limit of 5 connections that have not logged in yet"
        ),
        "{err}"
    );
    let err = cli_error(&g.mariadb(&["--skip-ssl", "-e", "SELECT 1"]));
    assert_eq!(
        err,
        "ERROR 1040 (08004): Too many connections: Gantry's limit of 5 connections that have not logged in yet"
    );
    let admin = g.admin_mariadb(&["-e", "SELECT * FROM backends"]);
    assert!(admin.status.success(), "{admin:?}");
}

/// `Max open files` soft and hard limits of a process.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

#[test]
fn out_of_descriptors_is_refused_with_1040_and_the_admin_port_answers() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let (soft, hard) = open_file_limits(g.pid());
    assert_eq!(soft, hard, "soft limit raised to the hard limit at start");

    // Lower the running process's limit: 300 descriptors, 128 kept back.
    let st = Command::new("prlimit")
        .args(["--pid", &g.pid().to_string(), "--nofile=300:300"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut silent = silent_sockets(g.port, 250);
    // Each got its greeting or its 1040: all were seen by Gantry.
    for s in &mut silent {
        assert!(!first_payload(s).is_empty(), "no answer to a silent socket");
    }
    let start = Instant::now();
    let err = cli_error(&g.mariadb(&["--skip-ssl", "-e", "SELECT 1"]));
    assert_eq!(
        err,
        "ERROR 1040 (08004): Too many connections: not enough file descriptors left (limit 300)"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    let admin = g.admin_mariadb(&["-e", "SELECT * FROM backends"]);
    assert!(admin.status.success(), "{admin:?}");
    assert!(
        !g.log().contains("accept failed"),
        "clients were refused before accept() ran out:\n{}",
        g.log()
    );
}

#[test]
fn reload_config_without_a_file_is_refused_and_sighup_is_ignored() {
    let t = shared_topology();
    let mut g = Gantry::start(t, &[]);
    let out = g.admin_mariadb(&["-e", "ADD CLIENT 127.0.0.1"]);
    assert!(out.status.success(), "{out:?}");
    let err = cli_error(&g.admin_mariadb(&["-e", "RELOAD CONFIG"]));
    assert!(
        err.ends_with(
            "ERROR 1105 (HY000) at line 1: RELOAD CONFIG needs a configuration file: start gantry with --config FILE"
        ),
        "{err}"
    );
    let st = Command::new("kill")
        .args(["-HUP", &g.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    g.wait_for_log("SIGHUP ignored", Duration::from_secs(5));
    assert!(g.try_wait().is_none(), "gantry still runs");
    // The run-time change survived both.
    let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM clients"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1"),
        "{out:?}"
    );
}

/// The log without terminal colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn failed_logins_are_logged_with_the_user_and_no_secret() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let secret = "Wr0ng-S3cret-pw";
    for user in ["app", "intruder"] {
        let out = Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                &format!("-P{}", g.port),
                &format!("-u{user}"),
                &format!("-p{secret}"),
                "-e",
                "SELECT 1",
            ])
            .output()
            .unwrap();
        assert!(cli_error(&out).contains("ERROR 1045 (28000)"));
    }
    g.wait_for_log("intruder", Duration::from_secs(5));
    let log = strip_ansi(&g.log());
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("client login failed"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].contains("user=\"app\"") && lines[0].contains("wrong password"));
    assert!(lines[1].contains("user=\"intruder\"") && lines[1].contains("unknown user"));
    assert!(!log.contains(secret), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_transaction_commit_closes_idle_clients_and_exits_0() {
    // Its own servers: Aborted_clients counts every client of a server,
    // and other tests' proxies die while this one runs.
    let own = common::Topology::start();
    let t = &own;
    let table = common::unique_name("shutdown");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY) ENGINE=InnoDB"
    ));
    let mut g = Gantry::start(t, &["--shutdown-timeout-ms", "8000"]);
    let opts = Opts::from_url(&g.url("app", "app_pw", "test")).unwrap();
    let mut txn = Conn::new(opts.clone()).await.unwrap();
    let mut idle = Conn::new(opts.clone()).await.unwrap();
    let _: Option<u8> = idle.query_first("SELECT 1").await.unwrap();
    txn.query_drop("BEGIN").await.unwrap();
    txn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    // Earlier tests' proxies were killed: let the server count those first.
    std::thread::sleep(Duration::from_millis(500));
    let aborted_before = t.primary.sql("SHOW GLOBAL STATUS LIKE 'Aborted_clients'");

    // A statement running when the signal comes finishes with its result.
    let mut busy = Conn::new(opts.clone()).await.unwrap();
    let running = tokio::spawn(async move {
        let r: Result<Option<u8>, _> = busy.query_first("SELECT SLEEP(1)").await;
        r
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    let st = Command::new("kill")
        .args(["-TERM", &g.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    g.wait_for_log("shutting down", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));

    // No new clients.
    assert!(TcpStream::connect(("127.0.0.1", g.port)).is_err());
    // The idle client is told, as by a server shutting down.
    let idle_result = idle.query_drop("SELECT 1").await;
    assert!(
        matches!(idle_result, Err(mysql_async::Error::Server(ref e)) if e.code == 1053),
        "idle client after SIGTERM: {idle_result:?}"
    );
    assert_eq!(
        running.await.unwrap().unwrap(),
        Some(0),
        "SLEEP(1) finished"
    );
    // The transaction goes on and commits.
    txn.query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap();
    txn.query_drop("COMMIT").await.unwrap();

    let status = loop {
        if let Some(s) = g.try_wait() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "gantry still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    assert_eq!(
        t.primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "2"
    );
    std::thread::sleep(Duration::from_millis(500));
    let aborted_after = t.primary.sql("SHOW GLOBAL STATUS LIKE 'Aborted_clients'");
    eprintln!(
        "exit 0 {took:?} after SIGTERM; Aborted_clients {aborted_before:?} -> {aborted_after:?}"
    );
    // Pooled and probe connections all said COM_QUIT.
    assert_eq!(aborted_before, aborted_after);
    assert!(g.log().contains("shutdown complete"), "{}", g.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_left_open_is_cut_off_at_the_shutdown_timeout() {
    let t = shared_topology();
    let table = common::unique_name("cutoff");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY) ENGINE=InnoDB"
    ));
    let mut g = Gantry::start(t, &["--shutdown-timeout-ms", "1000"]);
    let opts = Opts::from_url(&g.url("app", "app_pw", "test")).unwrap();
    let mut txn = Conn::new(opts).await.unwrap();
    txn.query_drop("BEGIN").await.unwrap();
    txn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let sent = Instant::now();
    let status = g.terminate(Duration::from_secs(5));
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "exit took {took:?}"
    );
    assert!(txn.query_drop("COMMIT").await.is_err());
    common::wait_until(
        Duration::from_secs(5),
        "the transaction rolled back",
        || t.primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")) == "0",
    );
    eprintln!("open transaction cut off: exit 0 {took:?} after SIGTERM");
}

/// The payload of the first packet a server sends (empty if none came
/// within 5 s).
fn first_payload(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 4];
    if s.read_exact(&mut head).is_err() {
        return Vec::new();
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    if s.read_exact(&mut payload).is_err() {
        return Vec::new();
    }
    payload
}

/// The first packet a server sends, if it is an ERR: code and message.
fn first_packet_error(s: &mut TcpStream) -> Option<(u16, String)> {
    let payload = first_payload(s);
    if payload.len() < 9 || payload[0] != 0xff {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    Some((code, String::from_utf8_lossy(&payload[9..]).into_owned()))
}

#[test]
fn at_emfile_queued_clients_get_1040_and_the_log_line_is_rate_limited() {
    let t = shared_topology();
    // Slow probes: no probe connection opens or closes during the test.
    let g = Gantry::start(t, &["--health-interval-ms", "60000"]);
    // No descriptor left at all: accept() itself fails with EMFILE.
    let count = || {
        std::fs::read_dir(format!("/proc/{}/fd", g.pid()))
            .unwrap()
            .count()
    };
    // Wait for start-up's short-lived sockets to close.
    let mut open = count();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = count();
        if now == open {
            break;
        }
        open = now;
    }
    let st = Command::new("prlimit")
        .args([
            "--pid",
            &g.pid().to_string(),
            &format!("--nofile={open}:{open}"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let (mut refused, mut at_emfile) = (0, 0);
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", g.port)).unwrap();
        if let Some((code, msg)) = first_packet_error(&mut s) {
            assert_eq!(code, 1040, "{msg}");
            // Or, when a descriptor happened to be free, the check before
            // the greeting ("not enough file descriptors left").
            if msg == "Too many connections: Gantry is out of file descriptors" {
                at_emfile += 1;
            }
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "every queued client was told");
    assert!(at_emfile > 0, "accept() never hit EMFILE");
    eprintln!("{at_emfile} of 20 refused through the spare descriptor at EMFILE");
    let log = g.log();
    let lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert_eq!(lines, 1, "{log}");
}
