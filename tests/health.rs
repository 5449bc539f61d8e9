//! The health loop against a real MariaDB topology (issue 5): replicas
//! leave the read pool when their SQL or IO thread stops or they fall
//! behind, come back once caught up, and Gantry follows a failover behind a
//! moving primary address, finding the old primary again by discovery.
//!
//! Routing is observed with `SELECT @@port` through Gantry as `app`; the
//! state and reason columns through the admin port's `SELECT * FROM
//! backends`. Each test has its own topology (they stop threads, kill and
//! promote servers); the timed phases run one test at a time so the two
//! cores are not shared by several measurements.

mod common;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

use common::{Gantry, Server, Topology};

/// Timing phases of different tests do not overlap.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The harness's defaults include the monitor account.
fn start_gantry(topo: &Topology, extra: &[&str]) -> Gantry {
    Gantry::start(topo, extra)
}

/// One client connection through Gantry, reopened after errors (a backend
/// lost mid-statement ends the session).
struct Client {
    url: String,
    conn: Option<Conn>,
}

impl Client {
    fn new(url: String) -> Self {
        Self { url, conn: None }
    }

    async fn conn(&mut self) -> Result<&mut Conn, mysql_async::Error> {
        if self.conn.is_none() {
            self.conn = Some(Conn::from_url(self.url.as_str()).await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// The port of the server that ran a read, or None on error.
    async fn read_port(&mut self) -> Option<u16> {
        let r: Result<Option<u16>, _> = match self.conn().await {
            Ok(c) => c.query_first("SELECT @@port").await,
            Err(e) => Err(e),
        };
        match r {
            Ok(p) => p,
            Err(_) => {
                self.conn = None;
                None
            }
        }
    }

    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        let c = self.conn().await.map_err(|e| e.to_string())?;
        match c.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.conn = None;
                Err(e.to_string())
            }
        }
    }
}

/// Reads through Gantry until none has reached `port` for `quiet`; returns
/// how long after `since` the last read reached it (zero if none did) and
/// how many reads went elsewhere during the quiet stretch.
async fn wait_left(
    client: &mut Client,
    port: u16,
    since: Instant,
    quiet: Duration,
    limit: Duration,
) -> (Duration, usize) {
    let mut last_hit: Option<Instant> = None;
    let mut elsewhere = 0usize;
    loop {
        let now = Instant::now();
        match client.read_port().await {
            Some(p) if p == port => {
                last_hit = Some(now);
                elsewhere = 0;
            }
            Some(_) => elsewhere += 1,
            None => {}
        }
        let calm_since = last_hit.unwrap_or(since);
        if now.duration_since(calm_since) >= quiet && elsewhere >= 10 {
            return (calm_since.duration_since(since), elsewhere);
        }
        assert!(
            now.duration_since(since) < limit,
            "reads still reached port {port} {:?} after the change",
            now.duration_since(since)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until one reaches `port`; returns how long that took.
async fn wait_hit(client: &mut Client, port: u16, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        if client.read_port().await == Some(port) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "no read reached port {port} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads for `span` and asserts none reaches `port`; returns the number
/// of reads served elsewhere.
async fn assert_no_read_reaches(client: &mut Client, port: u16, span: Duration) -> usize {
    let t0 = Instant::now();
    let mut served = 0;
    while t0.elapsed() < span {
        if let Some(p) = client.read_port().await {
            assert_ne!(
                p, port,
                "a read reached port {port} while it should get none"
            );
            served += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served > 0, "no read was served at all in {span:?}");
    served
}

/// Inserts a row every 50 ms through `url` until dropped, so the primary's
/// position keeps moving.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Writer {
    fn start(rt: &Runtime, url: String, table: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = rt.spawn(async move {
            let mut c = Client::new(url);
            let mut ok = 0u64;
            while !flag.load(Ordering::Relaxed) {
                if c.exec(&format!("INSERT INTO test.{table} (v) VALUES (1)"))
                    .await
                    .is_ok()
                {
                    ok += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ok
        });
        Writer { stop, task }
    }

    /// Stops and returns how many inserts succeeded.
    fn stop(self, rt: &Runtime) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(self.task).expect("writer task")
    }
}

fn create_table(primary: &Server, prefix: &str) -> String {
    let table = common::unique_name(prefix);
    primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ));
    table
}

/// `SELECT * FROM backends` on the admin port, keyed by address.
async fn backends(admin_url: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut c = Conn::from_url(admin_url).await.expect("admin login");
    let rows: Vec<mysql_async::Row> = c
        .query("SELECT * FROM backends")
        .await
        .expect("SELECT * FROM backends");
    rows.into_iter()
        .map(|r| {
            let cols: Vec<String> = r
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            let vals: BTreeMap<String, String> = cols
                .into_iter()
                .zip(r.unwrap())
                .map(|(c, v)| {
                    let s = match v {
                        mysql_async::Value::NULL => "NULL".to_string(),
                        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => format!("{other:?}"),
                    };
                    (c, s)
                })
                .collect();
            (vals.get("address").cloned().unwrap_or_default(), vals)
        })
        .collect()
}

/// The admin row of `addr`, polled until `pred` holds.
async fn wait_backend(
    gantry: &Gantry,
    addr: &str,
    limit: Duration,
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let t0 = Instant::now();
    loop {
        let all = backends(&gantry.admin_url()).await;
        if let Some(row) = all.get(addr) {
            if pred(row) {
                return row.clone();
            }
        }
        assert!(
            t0.elapsed() < limit,
            "backend {addr} did not reach the expected state in {limit:?}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both replicas serve reads before a test changes anything.
async fn wait_both_replicas_read(client: &mut Client, topo: &Topology) {
    for r in &topo.replicas {
        wait_hit(client, r.port, Duration::from_secs(15)).await;
    }
}

#[test]
fn stopped_sql_thread_leaves_the_read_pool_and_returns_after_catching_up() {
    let topo = Topology::start();
    let rt = runtime();
    let table = create_table(&topo.primary, "hsql");
    let gantry = start_gantry(&topo, &[]);
    let _serial = serial();
    let writer = Writer::start(&rt, topo.primary.url("app", "app_pw", "test"), table);
    let replica = &topo.replicas[0];
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    rt.block_on(async {
        wait_both_replicas_read(&mut client, &topo).await;

        let t0 = Instant::now();
        replica.sql("STOP SLAVE SQL_THREAD");
        let (left, served) = wait_left(&mut client, replica.port, t0, Duration::from_secs(2), Duration::from_secs(10)).await;
        println!("SQL thread stopped: last read reached the replica {left:?} after STOP ({served} reads elsewhere since)");
        assert!(left <= Duration::from_secs(3), "replica left the pool only after {left:?}");
        let row = wait_backend(&gantry, &replica.addr(), Duration::from_secs(5), |r| r["state"] == "lagging").await;
        assert!(row["reason"].contains("SQL thread stopped"), "{row:?}");
        assert_no_read_reaches(&mut client, replica.port, Duration::from_secs(2)).await;

        replica.sql("START SLAVE SQL_THREAD");
        replica.wait_for_gtid(&topo.primary.gtid_current_pos(), Duration::from_secs(20));
        let back = wait_hit(&mut client, replica.port, Duration::from_secs(10)).await;
        println!("SQL thread restarted: back in the read pool {back:?} after catching up");
        assert!(back <= Duration::from_secs(3), "replica returned only {back:?} after catching up");
    });
    assert!(writer.stop(&rt) > 0, "the writer inserted nothing");
}

#[test]
fn delayed_replica_leaves_over_max_replica_lag_and_returns_without_delay() {
    let topo = Topology::start();
    let rt = runtime();
    let table = create_table(&topo.primary, "hdelay");
    let gantry = start_gantry(&topo, &["--max-replica-lag", "2"]);
    let _serial = serial();
    let writer = Writer::start(&rt, topo.primary.url("app", "app_pw", "test"), table);
    let replica = &topo.replicas[1];
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    rt.block_on(async {
        wait_both_replicas_read(&mut client, &topo).await;

        let t0 = Instant::now();
        replica.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=30; START SLAVE");
        // Lag must first grow past 2 s, then one probe notices.
        let (left, _) = wait_left(
            &mut client,
            replica.port,
            t0,
            Duration::from_secs(3),
            Duration::from_secs(20),
        )
        .await;
        println!("MASTER_DELAY=30: last read reached the replica {left:?} after the change");
        let row = wait_backend(&gantry, &replica.addr(), Duration::from_secs(5), |r| {
            r["state"] == "lagging"
        })
        .await;
        assert!(row["reason"].contains("max-replica-lag 2s"), "{row:?}");
        assert_no_read_reaches(&mut client, replica.port, Duration::from_secs(3)).await;
        let status = replica.slave_status().expect("replica status");
        assert_eq!(
            (
                status["Slave_IO_Running"].as_str(),
                status["Slave_SQL_Running"].as_str()
            ),
            ("Yes", "Yes")
        );

        replica.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE");
        replica.wait_for_gtid(&topo.primary.gtid_current_pos(), Duration::from_secs(20));
        let back = wait_hit(&mut client, replica.port, Duration::from_secs(10)).await;
        println!("MASTER_DELAY=0: back in the read pool {back:?} after catching up");
        assert!(
            back <= Duration::from_secs(3),
            "replica returned only {back:?} after catching up"
        );
    });
    assert!(writer.stop(&rt) > 0, "the writer inserted nothing");
}

#[test]
fn stopped_io_thread_leaves_even_when_seconds_behind_reads_zero() {
    let topo = Topology::start();
    let rt = runtime();
    let table = create_table(&topo.primary, "hio");
    let gantry = start_gantry(&topo, &[]);
    let _serial = serial();
    let writer = Writer::start(&rt, topo.primary.url("app", "app_pw", "test"), table);
    let replica = &topo.replicas[0];
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    rt.block_on(async {
        wait_both_replicas_read(&mut client, &topo).await;

        let t0 = Instant::now();
        replica.sql("STOP SLAVE IO_THREAD");
        let (left, _) = wait_left(&mut client, replica.port, t0, Duration::from_secs(2), Duration::from_secs(10)).await;
        let status = replica.slave_status().expect("replica status");
        println!(
            "IO thread stopped: last read reached the replica {left:?} after STOP; Seconds_Behind_Master={} \
             while the primary kept writing",
            status["Seconds_Behind_Master"]
        );
        assert!(left <= Duration::from_secs(3), "replica left the pool only after {left:?}");
        let row = wait_backend(&gantry, &replica.addr(), Duration::from_secs(5), |r| r["state"] == "lagging").await;
        assert!(row["reason"].contains("IO thread not running"), "{row:?}");
        assert_no_read_reaches(&mut client, replica.port, Duration::from_secs(2)).await;

        replica.sql("START SLAVE IO_THREAD");
        replica.wait_for_gtid(&topo.primary.gtid_current_pos(), Duration::from_secs(20));
        let back = wait_hit(&mut client, replica.port, Duration::from_secs(10)).await;
        println!("IO thread restarted: back in the read pool {back:?} after catching up");
        assert!(back <= Duration::from_secs(3), "replica returned only {back:?} after catching up");
    });
    assert!(writer.stop(&rt) > 0, "the writer inserted nothing");
}

/// A TCP forwarder standing in for a VIP: moving it drops every forwarded
/// connection, as a VIP leaving a dead host does.
struct Forwarder {
    port: u16,
    target: Arc<AtomicU16>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    fn start(rt: &Runtime, target: u16) -> Forwarder {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind forwarder");
        let port = listener.local_addr().expect("forwarder addr").port();
        let target = Arc::new(AtomicU16::new(target));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        let accept = rt.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = t.load(Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(task.abort_handle());
            }
        });
        Forwarder {
            port,
            target,
            conns,
            accept,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn move_to(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
        for c in self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            c.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        self.move_to(0);
    }
}

#[test]
fn failover_drill_behind_a_moving_primary_address() {
    let topo = Topology::start();
    let rt = runtime();
    let table = create_table(&topo.primary, "hfail");
    let vip = Forwarder::start(&rt, topo.primary.port);
    let gantry = start_gantry(
        &topo,
        &[
            "--proxy-backend-addresses",
            &vip.addr(),
            "--max-replica-lag",
            "2",
        ],
    );
    let _serial = serial();
    let (old, r1, r2) = (&topo.primary, &topo.replicas[0], &topo.replicas[1]);
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    rt.block_on(async {
        wait_both_replicas_read(&mut client, &topo).await;
        client.exec(&format!("INSERT INTO test.{table} (v) VALUES (0)")).await.expect("write through Gantry");
        topo.wait_replicas_caught_up(Duration::from_secs(20));

        // The reference deployment's drill: kill, promote, repoint, move the VIP.
        old.kill();
        r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
        r2.sql(&format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
             MASTER_PASSWORD='repl_pw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
            r1.port
        ));
        let moved = Instant::now();
        vip.move_to(r1.port);
        let mut attempts = 0;
        let resumed = loop {
            attempts += 1;
            match client.exec(&format!("INSERT INTO test.{table} (v) VALUES (1)")).await {
                Ok(()) => break moved.elapsed(),
                Err(e) => assert!(moved.elapsed() < Duration::from_secs(10), "writes did not resume: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!("failover: writes through Gantry succeeded {resumed:?} after the VIP moved ({attempts} attempts)");
        assert!(resumed <= Duration::from_secs(2), "writes resumed only {resumed:?} after the move");
        assert_eq!(r1.sql(&format!("SELECT COUNT(*) FROM test.{table} WHERE v = 1")), "1", "the write reached the new primary");
        // The promoted replica takes writes now, not replica reads.
        wait_backend(&gantry, &r1.addr(), Duration::from_secs(5), |r| r["type"] == "rw").await;

        // Writes keep flowing through Gantry from here on.
        let writer = Writer::start_here(gantry.url("app", "app_pw", "test"), table.clone());

        // The old primary comes back as a delayed replica of the new one.
        old.start();
        old.sql(&format!(
            "SET GLOBAL read_only=1; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
             MASTER_USER='repl', MASTER_PASSWORD='repl_pw', MASTER_USE_GTID=current_pos, \
             MASTER_CONNECT_RETRY=1, MASTER_DELAY=60; START SLAVE",
            r1.port
        ));
        let found = wait_backend(&gantry, &old.addr(), Duration::from_secs(10), |r| r["state"] != "unknown").await;
        println!("old primary discovered: {found:?}");
        assert_eq!(found["type"], "ro");
        assert_eq!(found["state"], "lagging", "a delayed replica must not join: {found:?}");
        let behind = !gtid_covers(&old.gtid_current_pos(), &r1.gtid_current_pos());
        assert!(behind, "the delayed old primary should be behind the new one");
        let served = assert_no_read_reaches(&mut client, old.port, Duration::from_secs(5)).await;
        println!("{served} reads in 5 s while the old primary was behind; none reached it");

        old.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE");
        old.wait_for_gtid(&r1.gtid_current_pos(), Duration::from_secs(30));
        let back = wait_hit(&mut client, old.port, Duration::from_secs(10)).await;
        println!("old primary joined the read pool by discovery {back:?} after catching up");
        writer.stop_here().await;
    });
}

impl Writer {
    /// Like `start`, from inside the runtime.
    fn start_here(url: String, table: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut c = Client::new(url);
            let mut ok = 0u64;
            while !flag.load(Ordering::Relaxed) {
                if c.exec(&format!("INSERT INTO test.{table} (v) VALUES (2)"))
                    .await
                    .is_ok()
                {
                    ok += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ok
        });
        Writer { stop, task }
    }

    async fn stop_here(self) {
        self.stop.store(true, Ordering::Relaxed);
        let ok = self.task.await.expect("writer task");
        assert!(
            ok > 0,
            "no write through Gantry succeeded after the failover"
        );
    }
}

/// MariaDB positions: `have` reached `want` in every domain of `want`.
fn gtid_covers(have: &str, want: &str) -> bool {
    let parse = |s: &str| -> BTreeMap<u64, u64> {
        s.split(',')
            .filter_map(|g| {
                let mut it = g.trim().split('-');
                let d = it.next()?.parse().ok()?;
                it.next()?;
                Some((d, it.next()?.parse().ok()?))
            })
            .collect()
    };
    let have = parse(have);
    parse(want)
        .iter()
        .all(|(d, s)| have.get(d).is_some_and(|h| h >= s))
}

#[test]
fn a_read_only_primary_decides_itself_and_writes_resume_when_it_is_writable() {
    let topo = Topology::start();
    let rt = runtime();
    let table = create_table(&topo.primary, "hro");
    let gantry = start_gantry(&topo, &["--pwds", "app:app_pw,admin:admin_pw"]);
    let _serial = serial();
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    let mut admin = Client::new(gantry.url("admin", "admin_pw", "test"));
    let insert = format!("INSERT INTO test.{table} (v) VALUES (1)");
    rt.block_on(async {
        client.exec(&insert).await.expect("write while writable");
        topo.primary.sql("SET GLOBAL read_only=1");
        // Gantry forwards; the server refuses the account it would refuse,
        // before and after the next probe alike.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            let e = client
                .exec(&insert)
                .await
                .expect_err("a write to a read-only primary must fail");
            assert!(
                e.contains("1290") && e.contains("read-only"),
                "the server's own error: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // An account the server lets write through read_only (READ_ONLY
        // ADMIN) writes, and can make the primary writable again.
        admin
            .exec(&insert)
            .await
            .expect("admin writes through read_only");
        admin
            .exec("SET GLOBAL read_only = 0")
            .await
            .expect("SET GLOBAL read_only = 0 through Gantry");
        let t1 = Instant::now();
        loop {
            match client.exec(&insert).await {
                Ok(()) => break,
                Err(e) => assert!(
                    t1.elapsed() < Duration::from_secs(5),
                    "writes did not resume: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("read_only=0: writes resumed {:?} later", t1.elapsed());
        let rows = topo
            .primary
            .sql(&format!("SELECT COUNT(*) FROM test.{table}"));
        assert_eq!(rows, "3", "the first write, admin's, and the resumed one");
    });
}

#[test]
fn monitor_without_replication_grants_keeps_replicas_out_of_the_read_pool() {
    let topo = common::shared_topology();
    let rt = runtime();
    // `app` may connect but not run SHOW SLAVE STATUS: pinging alone is not enough.
    let gantry = start_gantry(
        topo,
        &["--monitor-username", "app", "--monitor-password", "app_pw"],
    );
    let mut client = Client::new(gantry.url("app", "app_pw", "test"));
    rt.block_on(async {
        for r in &topo.replicas {
            let row = wait_backend(&gantry, &r.addr(), Duration::from_secs(10), |r| {
                r["state"] != "unknown"
            })
            .await;
            assert_eq!(row["state"], "lagging", "{row:?}");
            assert!(
                row["reason"].starts_with("cannot read replication status"),
                "{row:?}"
            );
        }
        for _ in 0..10 {
            assert_eq!(
                client.read_port().await,
                Some(topo.primary.port),
                "reads fall back to the primary"
            );
        }
    });
}
