//! Built-in failover (`failover = "auto"`) against real MariaDB servers:
//! the primary is killed under a continuous write load through Gantry; a
//! replica is promoted, the other follows it, no acknowledged write is
//! lost (semi-synchronous replication), and the old primary, restarted,
//! is fenced read-only and rejoins as a replica.

mod common;

use mysql_async::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_name, wait_until, Gantry, Topology, FAST_HEALTH};

/// Turns on semi-synchronous replication: a commit is acknowledged only
/// once a replica received it, so a crash of the primary loses nothing
/// acknowledged.
fn semi_sync(t: &Topology) {
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

struct Writes {
    acked: Mutex<Vec<u64>>,
    /// Longest time between two acknowledged writes.
    longest_gap: Mutex<Duration>,
    errors: AtomicU64,
}

/// Inserts sequential ids through Gantry until `stop`, reconnecting after
/// an error, and logs each acknowledged one.
async fn write_load(url: String, table: String, stop: Arc<AtomicBool>, w: Arc<Writes>) {
    let mut next = 1u64;
    let mut last_ack = Instant::now();
    let mut conn: Option<mysql_async::Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = mysql_async::Conn::from_url(url.as_str()).await.ok();
            if conn.is_none() {
                w.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        let c = conn.as_mut().unwrap();
        let sql = format!("INSERT INTO test.{table} (id) VALUES ({next})");
        match tokio::time::timeout(Duration::from_secs(15), c.query_drop(sql)).await {
            Ok(Ok(())) => {
                w.acked.lock().unwrap().push(next);
                let gap = last_ack.elapsed();
                let mut longest = w.longest_gap.lock().unwrap();
                if gap > *longest {
                    *longest = gap;
                }
                last_ack = Instant::now();
                next += 1;
            }
            _ => {
                // Not acknowledged: it may or may not have been written;
                // the next attempt uses a new id.
                w.errors.fetch_add(1, Ordering::Relaxed);
                next += 1;
                conn = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Reads through Gantry until `stop`; returns (reads, errors).
async fn read_load(url: String, table: String, stop: Arc<AtomicBool>) -> (u64, u64) {
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

/// `SELECT * FROM backends` on the admin port: (address, state, type, reason).
fn backends(g: &Gantry) -> Vec<(String, String, String, String)> {
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

#[tokio::test(flavor = "multi_thread")]
async fn the_primary_dies_a_replica_takes_over_and_the_old_primary_rejoins() {
    let t = Topology::start();
    semi_sync(&t);
    let table = unique_name("failover");
    let primary = t.server("primary");
    primary.sql(&format!("CREATE TABLE test.{table} (id BIGINT PRIMARY KEY)"));
    t.wait_replicas_caught_up(Duration::from_secs(10));
    let mut args: Vec<&str> = FAST_HEALTH.to_vec();
    args.extend([
        "--failover",
        "auto",
        "--replication-username",
        "repl",
        "--replication-password",
        "repl_pw",
    ]);
    let g = Gantry::start(&t, &args);
    let url = g.url("app", "app_pw", "test");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Writes {
        acked: Mutex::new(Vec::new()),
        longest_gap: Mutex::new(Duration::ZERO),
        errors: AtomicU64::new(0),
    });
    let writer = tokio::spawn(write_load(
        url.clone(),
        table.clone(),
        stop.clone(),
        writes.clone(),
    ));
    let reader = tokio::spawn(read_load(url.clone(), table.clone(), stop.clone()));
    wait_until(Duration::from_secs(10), "writes flowing", || {
        writes.acked.lock().unwrap().len() > 50
    });

    primary.kill();
    let killed = Instant::now();
    let acked_at_kill = writes.acked.lock().unwrap().len();
    wait_until(Duration::from_secs(20), "writes again after the crash", || {
        writes.acked.lock().unwrap().len() > acked_at_kill + 50
    });
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let (reads, read_errors) = reader.await.unwrap();
    let outage = *writes.longest_gap.lock().unwrap();
    println!(
        "kill -9 of the primary: longest write gap {} ms ({} ms after the kill until 50 more writes), \
         {} failed write attempts; {reads} reads, {read_errors} failed",
        outage.as_millis(),
        killed.elapsed().as_millis(),
        writes.errors.load(Ordering::Relaxed),
    );
    assert!(outage < Duration::from_secs(10), "write outage {outage:?}");
    assert_eq!(read_errors, 0, "reads never stopped");

    // One replica is the primary now; the other replicates from it.
    let rows = backends(&g);
    let promoted: Vec<_> = rows.iter().filter(|r| r.2 == "rw").collect();
    assert_eq!(promoted.len(), 1, "one primary: {rows:?}");
    let new_primary = t
        .servers()
        .find(|s| promoted[0].0.ends_with(&format!(":{}", s.port)))
        .expect("the new primary is one of the servers");
    assert_ne!(new_primary.name, "primary");
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
    assert_eq!(new_primary.sql("SELECT @@read_only"), "0");

    // Every acknowledged write is on the new primary.
    let acked = writes.acked.lock().unwrap().clone();
    let present: std::collections::HashSet<u64> = new_primary
        .sql(&format!("SELECT id FROM test.{table}"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost: Vec<u64> = acked.iter().copied().filter(|id| !present.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // The old primary comes back writable: fenced, then a replica of the
    // new primary, caught up.
    primary.start();
    wait_until(Duration::from_secs(20), "old primary rejoined", || {
        primary.try_sql("SELECT @@read_only").is_ok_and(|r| r == "1")
            && primary.slave_status().is_some_and(|s| {
                s.get("Master_Port") == Some(&new_primary.port.to_string())
                    && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
            })
    });
    let target = new_primary.gtid_current_pos();
    primary.wait_for_gtid(&target, Duration::from_secs(20));
    let count = primary.sql(&format!("SELECT COUNT(*) FROM test.{table}"));
    assert_eq!(count, new_primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")));
    wait_until(Duration::from_secs(10), "old primary serves reads", || {
        backends(&g)
            .iter()
            .any(|r| r.0.ends_with(&format!(":{}", primary.port)) && r.1 == "up" && r.2 == "ro")
    });
    let events = g.log();
    assert!(events.contains("old primary fenced"), "{events}");
}
