//! connscale: opens N idle client connections through Gantry and reports
//! what they cost it — RSS per connection, open file descriptors, backend
//! connections (Gantry's `pools` table and each backend's
//! `Threads_connected`) — then closes them all and checks that Gantry let
//! go of everything: no sessions left, no backend connection in use, and
//! backends back to their baseline plus at most the idle pool.
//!
//! Phases: baseline → open (logged in, never queried) → touch (each
//! connection runs one statement, then stays idle past idle-release-ms) →
//! close. Prints a Markdown report on stdout; exit code 1 when a release
//! or bound check fails, 2 on a usage or setup error.

mod mysql;

use mysql::Conn;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const USAGE: &str = "\
usage: connscale --proxy HOST:PORT --gantry-pid PID [options]

  --proxy HOST:PORT          Gantry's data port
  --user U --password P      client account (default app / app_pw)
  --db NAME                  schema to log in to (default sbtest; empty:
                             none)
  --connections N            idle connections to open (default 10000)
  --concurrency N            connects/queries in flight at once (default 128)
  --query SQL                statement each connection runs in the touch
                             phase (default SELECT c FROM sbtest1 WHERE id=1;
                             empty = skip the phase)
  --gantry-pid PID           Gantry's process id (RSS and fds from /proc)
  --admin HOST:PORT          Gantry's admin port (pools and sessions tables)
  --admin-user U --admin-password P   (default admin / admin_pw)
  --backends A,B,...         MySQL servers to ask for Threads_connected
  --backend-user U --backend-password P  (default admin / admin_pw)
  --pool-max-size N          Gantry's pool-max-size, for the bound check
                             (default 256)
  --idle-wait-ms N           how long to stay idle after the touch phase
                             (default 2500: Gantry's idle-release-ms + 1.5 s)
  --settle-ms N              pause before each measurement (default 1000)
  --release-timeout-ms N     how long to wait for Gantry to release
                             everything after the close (default 15000)
  --summary FILE             also write the key figures as shell
                             assignments (key=value) to FILE
";

struct Args {
    proxy: String,
    user: String,
    password: String,
    db: String,
    connections: usize,
    concurrency: usize,
    query: String,
    gantry_pid: u32,
    admin: Option<String>,
    admin_user: String,
    admin_password: String,
    backends: Vec<String>,
    backend_user: String,
    backend_password: String,
    pool_max_size: u64,
    idle_wait: Duration,
    settle: Duration,
    release_timeout: Duration,
    summary: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        proxy: String::new(),
        user: "app".into(),
        password: "app_pw".into(),
        db: "sbtest".into(),
        connections: 10_000,
        concurrency: 128,
        query: "SELECT c FROM sbtest1 WHERE id=1".into(),
        gantry_pid: 0,
        admin: None,
        admin_user: "admin".into(),
        admin_password: "admin_pw".into(),
        backends: Vec::new(),
        backend_user: "admin".into(),
        backend_password: "admin_pw".into(),
        pool_max_size: 256,
        idle_wait: Duration::from_millis(2500),
        settle: Duration::from_millis(1000),
        release_timeout: Duration::from_millis(15_000),
        summary: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--proxy" => a.proxy = val,
            "--user" => a.user = val,
            "--password" => a.password = val,
            "--db" => a.db = val,
            "--connections" => a.connections = num(&val)? as usize,
            "--concurrency" => a.concurrency = (num(&val)? as usize).max(1),
            "--query" => a.query = val,
            "--gantry-pid" => a.gantry_pid = num(&val)? as u32,
            "--admin" => a.admin = Some(val),
            "--admin-user" => a.admin_user = val,
            "--admin-password" => a.admin_password = val,
            "--backends" => {
                a.backends = val
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--backend-user" => a.backend_user = val,
            "--backend-password" => a.backend_password = val,
            "--pool-max-size" => a.pool_max_size = num(&val)?,
            "--idle-wait-ms" => a.idle_wait = Duration::from_millis(num(&val)?),
            "--settle-ms" => a.settle = Duration::from_millis(num(&val)?),
            "--release-timeout-ms" => a.release_timeout = Duration::from_millis(num(&val)?),
            "--summary" => a.summary = Some(val),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.proxy.is_empty() || a.gantry_pid == 0 {
        return Err("--proxy and --gantry-pid are required".into());
    }
    Ok(a)
}

/// One backend's row of Gantry's `pools` table.
#[derive(Debug, Clone, Default)]
struct PoolRow {
    address: String,
    pools: u64,
    open: u64,
    idle: u64,
    in_use: u64,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    rss_kib: u64,
    fds: Option<usize>,
    sessions: Option<usize>,
    pools: Vec<PoolRow>,
    /// (backend address, Threads_connected)
    threads: Vec<(String, Option<u64>)>,
}

impl Snapshot {
    fn pool_open(&self) -> u64 {
        self.pools.iter().map(|p| p.open).sum()
    }
    fn pool_in_use(&self) -> u64 {
        self.pools.iter().map(|p| p.in_use).sum()
    }
    fn threads_total(&self) -> Option<u64> {
        self.threads.iter().map(|(_, t)| *t).sum()
    }
}

/// Connections used to observe Gantry and the backends; opened once so
/// they count the same in every phase.
struct Observer {
    pid: u32,
    admin: Option<Conn>,
    backends: Vec<(String, Option<Conn>)>,
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn count_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

impl Observer {
    async fn new(a: &Args) -> Result<Observer, String> {
        if proc_status_kib(a.gantry_pid, "VmRSS:").is_none() {
            return Err(format!(
                "no process {} (or no VmRSS in its /proc status)",
                a.gantry_pid
            ));
        }
        let admin = match &a.admin {
            Some(addr) => Some(
                Conn::connect(addr, &a.admin_user, &a.admin_password, None)
                    .await
                    .map_err(|e| format!("admin port {addr}: {e}"))?,
            ),
            None => None,
        };
        let mut backends = Vec::new();
        for addr in &a.backends {
            let c = Conn::connect(addr, &a.backend_user, &a.backend_password, None)
                .await
                .map_err(|e| format!("backend {addr}: {e}"))?;
            backends.push((addr.clone(), Some(c)));
        }
        Ok(Observer {
            pid: a.gantry_pid,
            admin,
            backends,
        })
    }

    async fn snapshot(&mut self) -> Snapshot {
        let mut s = Snapshot {
            rss_kib: proc_status_kib(self.pid, "VmRSS:").unwrap_or(0),
            fds: count_fds(self.pid),
            ..Default::default()
        };
        if let Some(admin) = self.admin.as_mut() {
            if let Ok(rs) = admin.query("SELECT * FROM sessions").await {
                s.sessions = Some(rs.rows.len());
            }
            if let Ok(rs) = admin.query("SELECT * FROM pools").await {
                let col = |n: &str| rs.column(n);
                let num = |row: &[Option<String>], i: Option<usize>| -> u64 {
                    i.and_then(|i| row.get(i)?.as_deref()?.parse().ok())
                        .unwrap_or(0)
                };
                for row in &rs.rows {
                    s.pools.push(PoolRow {
                        address: col("address")
                            .and_then(|i| row.get(i).cloned().flatten())
                            .unwrap_or_default(),
                        pools: num(row, col("pools")),
                        open: num(row, col("open")),
                        idle: num(row, col("idle")),
                        in_use: num(row, col("in_use")),
                    });
                }
            }
        }
        for (addr, conn) in self.backends.iter_mut() {
            let mut v = None;
            if let Some(c) = conn.as_mut() {
                if let Ok(rs) = c.query("SHOW GLOBAL STATUS LIKE 'Threads_connected'").await {
                    v = rs
                        .rows
                        .first()
                        .and_then(|r| r.get(1)?.as_deref()?.parse().ok());
                }
            }
            s.threads.push((addr.clone(), v));
        }
        s
    }
}

/// Opens `n` logged-in connections, at most `concurrency` handshakes at once.
async fn open_all(a: &Args) -> (Vec<Conn>, usize, Option<String>) {
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let mut set = JoinSet::new();
    for _ in 0..a.connections {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let (proxy, user, pw, db) = (
            a.proxy.clone(),
            a.user.clone(),
            a.password.clone(),
            a.db.clone(),
        );
        set.spawn(async move {
            let db = Some(db.as_str()).filter(|d| !d.is_empty());
            let r = Conn::connect(&proxy, &user, &pw, db).await;
            drop(permit);
            r
        });
    }
    let mut conns = Vec::with_capacity(a.connections);
    let (mut failed, mut first_err) = (0, None);
    while let Some(r) = set.join_next().await {
        match r.expect("connect task") {
            Ok(c) => conns.push(c),
            Err(e) => {
                failed += 1;
                first_err.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (conns, failed, first_err)
}

/// Every connection runs `sql` once; returns the survivors and failures.
async fn touch_all(
    conns: Vec<Conn>,
    sql: &str,
    concurrency: usize,
) -> (Vec<Conn>, usize, Option<String>) {
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    let n = conns.len();
    for mut c in conns {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let sql = sql.to_string();
        set.spawn(async move {
            let r = c.query(&sql).await;
            drop(permit);
            r.map(|_| c)
        });
    }
    let mut out = Vec::with_capacity(n);
    let (mut failed, mut first_err) = (0, None);
    while let Some(r) = set.join_next().await {
        match r.expect("query task") {
            Ok(c) => out.push(c),
            Err(e) => {
                failed += 1;
                first_err.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (out, failed, first_err)
}

async fn close_all(conns: Vec<Conn>, concurrency: usize) {
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    for c in conns {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        set.spawn(async move {
            let _ = c.quit().await;
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("n/a".into(), |v| v.to_string())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

struct Check {
    what: String,
    ok: bool,
    detail: String,
    /// A performance target (reported, does not fail the run) rather than
    /// a correctness check.
    target: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("connscale: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut obs = match Observer::new(&a).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("connscale: {e}");
            return ExitCode::from(2);
        }
    };

    let base = obs.snapshot().await;
    eprintln!(
        "connscale: baseline RSS {} MiB; opening {} connections",
        mib(base.rss_kib),
        a.connections
    );

    let t = Instant::now();
    let (conns, open_failed, open_err) = open_all(&a).await;
    let open_secs = t.elapsed().as_secs_f64();
    let opened = conns.len();
    tokio::time::sleep(a.settle).await;
    let after_open = obs.snapshot().await;
    eprintln!(
        "connscale: {opened} open in {open_secs:.1}s; RSS {} MiB",
        mib(after_open.rss_kib)
    );

    let mut touch = None;
    let conns = if a.query.is_empty() {
        conns
    } else {
        let t = Instant::now();
        let (conns, failed, err) = touch_all(conns, &a.query, a.concurrency).await;
        let secs = t.elapsed().as_secs_f64();
        let busy = obs.snapshot().await;
        tokio::time::sleep(a.idle_wait).await;
        let idle = obs.snapshot().await;
        eprintln!(
            "connscale: touched in {secs:.1}s; RSS {} MiB; pool open {}",
            mib(idle.rss_kib),
            idle.pool_open()
        );
        touch = Some((secs, failed, err, busy, idle));
        conns
    };
    let held = conns.len();

    let t = Instant::now();
    close_all(conns, a.concurrency).await;
    // Wait until Gantry has dropped every session and returned every
    // backend connection (or the timeout passes).
    let deadline = Instant::now() + a.release_timeout;
    let mut after_close;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after_close = obs.snapshot().await;
        let released = after_close.sessions.unwrap_or(0) == 0 && after_close.pool_in_use() == 0;
        if released || Instant::now() >= deadline {
            break;
        }
    }
    tokio::time::sleep(a.settle).await;
    after_close = obs.snapshot().await;
    let close_secs = t.elapsed().as_secs_f64();

    // ---------------------------------------------------------- report --
    let n = opened.max(1) as f64;
    let per_conn_open = after_open.rss_kib.saturating_sub(base.rss_kib) as f64 / n;
    let mut checks = Vec::new();
    checks.push(Check {
        what: format!("{} connections opened", a.connections),
        ok: open_failed == 0,
        detail: match &open_err {
            None => format!("{opened} in {open_secs:.1} s"),
            Some(e) => format!("{open_failed} failed, first: {e}"),
        },
        target: false,
    });
    checks.push(Check {
        what: "idle client RSS ≤ 16 KiB each (issue 6)".into(),
        ok: per_conn_open <= 16.0,
        detail: format!("{per_conn_open:.1} KiB per connection"),
        target: true,
    });
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Connection scale: {} idle client connections\n",
        a.connections
    );
    let _ = writeln!(
        md,
        "| phase | Gantry RSS MiB | Δ RSS KiB/conn | Gantry fds | sessions | pool open (in use) | backends Threads_connected |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    let row = |md: &mut String, name: &str, s: &Snapshot, conns: usize| {
        let per = if conns > 0 {
            format!(
                "{:.1}",
                (s.rss_kib as f64 - base.rss_kib as f64) / conns as f64
            )
        } else {
            "—".into()
        };
        let threads: Vec<String> = s
            .threads
            .iter()
            .map(|(a, t)| format!("{a}: {}", opt(*t)))
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {} | {per} | {} | {} | {} ({}) | {} |",
            mib(s.rss_kib),
            opt(s.fds),
            opt(s.sessions),
            s.pool_open(),
            s.pool_in_use(),
            if threads.is_empty() {
                "n/a".into()
            } else {
                threads.join(", ")
            }
        );
    };
    row(&mut md, "baseline", &base, 0);
    row(
        &mut md,
        &format!("{opened} open, never queried"),
        &after_open,
        opened,
    );
    if let Some((secs, failed, err, busy, idle)) = &touch {
        row(&mut md, "right after each ran one query", busy, held);
        row(
            &mut md,
            &format!("idle {} ms later", a.idle_wait.as_millis()),
            idle,
            held,
        );
        checks.push(Check {
            what: format!("each connection ran `{}`", a.query),
            ok: *failed == 0,
            detail: match err {
                None => format!("{held} queries in {secs:.1} s"),
                Some(e) => format!("{failed} failed, first: {e}"),
            },
            target: false,
        });
        let per_idle = idle.rss_kib.saturating_sub(base.rss_kib) as f64 / n;
        checks.push(Check {
            what: "RSS per connection after a query, idle (≤ 16 KiB)".into(),
            ok: per_idle <= 16.0,
            detail: format!("{per_idle:.1} KiB per connection"),
            target: true,
        });
        // The busiest moment is while the queries run; the idle snapshot
        // shows what the pool keeps afterwards.
        for p in &idle.pools {
            let peak = busy
                .pools
                .iter()
                .find(|b| b.address == p.address)
                .map_or(0, |b| b.open)
                .max(p.open);
            // pool-max-size per account (across its pools), plus Gantry's
            // reserve for logins and its own short connections.
            const RESERVE: u64 = 4;
            let bound = a.pool_max_size + RESERVE;
            checks.push(Check {
                what: format!(
                    "backend connections to {} bounded by pool-max-size",
                    p.address
                ),
                ok: peak <= bound,
                detail: format!(
                    "peak {peak} open, {} open ({} idle) when idle; bound {} ({} + a reserve of {RESERVE}; {} pool(s))",
                    p.open, p.idle, bound, a.pool_max_size, p.pools
                ),
                target: false,
            });
        }
        if let (Some(t_idle), Some(t_base)) = (idle.threads_total(), base.threads_total()) {
            let bound = a.pool_max_size
                * idle
                    .pools
                    .iter()
                    .map(|p| p.pools.max(1))
                    .sum::<u64>()
                    .max(1);
            let extra = t_idle.saturating_sub(t_base);
            checks.push(Check {
                what: "backend Threads_connected growth bounded by the pools".into(),
                ok: extra <= bound,
                detail: format!("+{extra} over baseline (bound {bound})"),
                target: false,
            });
        }
    }
    row(&mut md, "all closed", &after_close, 0);
    let _ = writeln!(md);

    checks.push(Check {
        what: "all sessions released after close".into(),
        ok: after_close.sessions.unwrap_or(0) == 0,
        detail: format!(
            "sessions: {} ({close_secs:.1} s after close)",
            opt(after_close.sessions)
        ),
        target: false,
    });
    checks.push(Check {
        what: "no backend connection in use after close".into(),
        ok: after_close.pool_in_use() == 0,
        detail: format!("in use: {}", after_close.pool_in_use()),
        target: false,
    });
    if let (Some(b), Some(c)) = (base.fds, after_close.fds) {
        let pooled = after_close.pool_open().saturating_sub(base.pool_open()) as usize;
        checks.push(Check {
            what: "Gantry's fds back to baseline (+ idle pooled backend connections)".into(),
            ok: c <= b + pooled,
            detail: format!("{c} fds, baseline {b}, +{pooled} pooled"),
            target: false,
        });
    }
    for ((addr, t_base), (_, t_after)) in base.threads.iter().zip(&after_close.threads) {
        if let (Some(tb), Some(ta)) = (t_base, t_after) {
            let pooled = after_close
                .pools
                .iter()
                .find(|p| p.address == *addr)
                .map_or(0, |p| p.open)
                .saturating_sub(
                    base.pools
                        .iter()
                        .find(|p| p.address == *addr)
                        .map_or(0, |p| p.open),
                );
            checks.push(Check {
                what: format!("{addr} Threads_connected back to baseline (+ idle pool)"),
                ok: *ta <= tb + pooled + 1, // +1: a health-probe reconnect in flight
                detail: format!("{ta}, baseline {tb}, +{pooled} pooled"),
                target: false,
            });
        }
    }
    let growth = after_open
        .rss_kib
        .max(touch.as_ref().map_or(0, |t| t.4.rss_kib))
        .saturating_sub(base.rss_kib);
    let retained = after_close.rss_kib.saturating_sub(base.rss_kib);
    let _ = writeln!(
        md,
        "RSS after close: {} MiB, {} KiB above baseline ({:.0}% of the peak growth of {} KiB; memory freed to the allocator need not return to the OS).\n",
        mib(after_close.rss_kib),
        retained,
        if growth > 0 { retained as f64 * 100.0 / growth as f64 } else { 0.0 },
        growth
    );
    let _ = writeln!(md, "| check | result | detail |\n|---|---|---|");
    for c in &checks {
        let result = match (c.target, c.ok) {
            (true, true) => "met",
            (true, false) => "**not met**",
            (false, true) => "ok",
            (false, false) => "**FAIL**",
        };
        let _ = writeln!(md, "| {} | {result} | {} |", c.what, c.detail);
    }
    print!("{md}");
    if let Some(path) = &a.summary {
        let snaps = [&after_open]
            .into_iter()
            .chain(touch.iter().flat_map(|t| [&t.3, &t.4]));
        let backend_max = snaps
            .flat_map(|s| s.pools.iter().map(|p| p.open))
            .max()
            .unwrap_or(0);
        let per_idle = touch.as_ref().map_or(f64::NAN, |t| {
            t.4.rss_kib.saturating_sub(base.rss_kib) as f64 / n
        });
        let bounded = checks
            .iter()
            .filter(|c| c.what.contains("bounded"))
            .all(|c| c.ok);
        let released = checks
            .iter()
            .filter(|c| c.what.contains("after close") || c.what.contains("back to baseline"))
            .all(|c| c.ok);
        let text = format!(
            "connections={}\nopened={opened}\nper_conn_kib={per_conn_open:.1}\nper_conn_kib_after_query={per_idle:.1}\nbackend_conns_max={backend_max}\nbackends_bounded={}\nreleased={}\nrss_base_kib={}\nrss_after_close_kib={}\n",
            a.connections,
            bounded as u8,
            released as u8,
            base.rss_kib,
            after_close.rss_kib,
        );
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("connscale: writing {path}: {e}");
        }
    }
    if checks.iter().all(|c| c.ok || c.target) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
