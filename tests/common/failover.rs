//! Helpers of the failover drills (tests/failover.rs,
//! tests/failover_sessions.rs): semi-sync, Gantry's `auto` options, and the
//! admin port's `backends` and `failovers` tables, and a read load.

use mysql_async::prelude::Queryable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{wait_until, Gantry, Topology, FAST_HEALTH};

/// Turns on semi-synchronous replication: a commit is acknowledged only
/// once a replica received it, so a crash of the primary loses nothing
/// acknowledged.
pub fn semi_sync(t: &Topology) {
    for s in t.servers() {
        if s.name == "primary" {
            s.sql("SET GLOBAL rpl_semi_sync_master_enabled = ON");
            s.sql("SET GLOBAL rpl_semi_sync_master_timeout = 10000");
        } else {
            s.sql("SET GLOBAL rpl_semi_sync_slave_enabled = ON");
            s.sql("STOP SLAVE IO_THREAD");
            s.sql("START SLAVE IO_THREAD");
        }
    }
    let primary = t.server("primary");
    wait_until(Duration::from_secs(10), "semi-sync replicas", || {
        primary
            .sql("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
            .ends_with("\t2")
    });
}

/// Gantry's options for these tests: fast health checks, `auto`.
pub fn auto_args() -> Vec<&'static str> {
    let mut args: Vec<&str> = FAST_HEALTH.to_vec();
    args.extend(AUTO);
    args
}

/// `auto` with the replication account; the health timings as configured.
pub const AUTO: [&str; 6] = [
    "--failover",
    "auto",
    "--replication-username",
    "repl",
    "--replication-password",
    "repl_pw",
];

/// `SELECT * FROM backends` on the admin port: (address, state, type, reason).
pub fn backends(g: &Gantry) -> Vec<(String, String, String, String)> {
    let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM backends"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            (get(1), get(2), get(3), get(5))
        })
        .collect()
}

/// `SELECT * FROM failovers`: (kind, from, to, write_outage_ms, outcome).
pub fn failovers(g: &Gantry) -> Vec<(String, String, String, String, String)> {
    let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM failovers"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            (get(1), get(2), get(3), get(4), get(6))
        })
        .collect()
}

/// The `old_primary_lacked` column of `SELECT * FROM failovers`.
pub fn lacked(g: &Gantry) -> Vec<String> {
    let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM failovers"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').nth(7).unwrap_or("").to_string())
        .collect()
}

/// Reads through Gantry until `stop`; returns (reads, errors).
pub async fn read_load(url: String, table: String, stop: Arc<AtomicBool>) -> (u64, u64) {
    let sql = format!("SELECT COUNT(*) FROM test.{table}");
    let (mut reads, mut errors) = (0, 0);
    let mut conn: Option<mysql_async::Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match mysql_async::Conn::from_url(url.as_str()).await {
                Ok(c) => conn = Some(c),
                Err(e) if errors < 3 => println!("read login failed: {e}"),
                Err(_) => {}
            }
        }
        let ok = match conn.as_mut() {
            Some(c) => match c.query_first::<u64, _>(sql.as_str()).await {
                Ok(_) => true,
                Err(e) => {
                    if errors < 3 {
                        println!("read failed: {e}");
                    }
                    false
                }
            },
            None => false,
        };
        if ok {
            reads += 1;
        } else {
            errors += 1;
            conn = None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (reads, errors)
}
