//! Harness for Gantry's integration tests: a real MariaDB replication
//! topology (one primary, two read-only replicas), either `mariadbd`
//! processes driven by `scripts/topology.sh` or, with
//! `GANTRY_TEST_TOPOLOGY=compose`, containers of `docker-compose.test.yml`
//! (see `compose.rs`), and a spawner for the `gantry` binary.
//!
//! Every test file does `mod common;` and then, for example:
//!
//! ```ignore
//! let topo = common::shared_topology();          // one per test binary
//! let proxy = common::Gantry::start(topo, &[]);  // killed on drop
//! let url = proxy.url("app", "app_pw", "app");   // for mysql_async
//! ```
//!
//! Accounts on every server (from `topology.sh`): `app`/`app_pw` (ALL on
//! `app.*`, `sbtest.*`, `test.*`), `monitor`/`monitor_pw`, `repl`/`repl_pw`,
//! `admin`/`admin_pw` (ALL on `*.*`); root without password over the unix
//! socket (in compose: `root`/`root_pw` at 127.0.0.1), used by
//! [`Server::sql`].
//!
//! Failures panic with the script's or the proxy's output: a missing
//! MariaDB is a failing test, never a skipped one.
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod clients;
pub mod compose;
pub mod failover;
mod gantry;
pub mod raw;
mod topology;

pub use gantry::Gantry;
pub use topology::{shared_topology, Server, Topology};

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A loopback TCP port that was free a moment ago. Ports are never handed
/// out twice within one test process, so tests running in parallel threads
/// do not collide with each other.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("free_port: cannot bind 127.0.0.1:0: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("free_port: no unused port found");
}

/// A name unique within this test process (and across concurrently running
/// test processes), usable as a database or table name: `prefix_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), next_id())
}

/// Polls `cond` every 50 ms until it returns true; panics with `what` after
/// `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn next_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A fresh, empty directory under the system temp dir, unique per process
/// and call: `<tmp>/<prefix>-<pid>-<n>`.
fn fresh_temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), next_id()));
    // A leftover from an earlier process with the same pid is stale.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", dir.display()));
    dir
}

/// Percent-encodes a URL user-info component.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `mysql://user:pw@127.0.0.1:port/db`, the URL form mysql_async parses.
/// prefer_socket=false: otherwise mysql_async asks the server for its unix
/// socket and reconnects there, bypassing Gantry.
pub fn mysql_url(user: &str, pw: &str, port: u16, db: &str) -> String {
    format!(
        "mysql://{}:{}@127.0.0.1:{port}/{db}?prefer_socket=false",
        url_escape(user),
        url_escape(pw)
    )
}

/// Fast health checks for drills: a dead or hung server is marked down
/// about 1 s after it stops answering, and probed back up as quickly.
pub const FAST_HEALTH: [&str; 8] = [
    "--health-interval-ms",
    "200",
    "--probe-timeout-ms",
    "300",
    "--down-after-milliseconds",
    "1000",
    "--consistency",
    "eventual",
];

/// A mysql_async session through `g` as app/app_pw on `test`.
pub async fn connect_app(g: &Gantry) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&g.url("app", "app_pw", "test")).unwrap())
        .await
        .expect("connect through gantry")
}

/// The server error code of a mysql_async error (None: not a server error).
pub fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// `sysbench`, killed after 5 minutes: a statement that never gets an
/// answer fails the test instead of hanging the run.
pub fn sysbench_command() -> std::process::Command {
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["--kill-after=10", "300", "sysbench"]);
    cmd
}

/// Runs sysbench through `port` as app/app_pw on database `sbtest` (2
/// tables of `table_size` rows); panics with its output if it fails, else
/// returns its report.
pub fn sysbench(port: u16, table_size: u32, args: &[&str]) -> String {
    let out = sysbench_command()
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={port}"),
            "--mysql-user=app",
            "--mysql-password=app_pw",
            "--mysql-db=sbtest",
            "--tables=2",
            &format!("--table-size={table_size}"),
        ])
        .args(args)
        .output()
        .expect("sysbench is installed (scripts/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sysbench {args:?} failed:\n{text}");
    text
}

/// An HTTP GET of `path` on the metrics port: the whole response.
#[allow(dead_code)]
pub fn scrape(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
