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

use common::failover::{auto_args, backends, failovers, lacked, read_load, semi_sync, AUTO};
use common::{unique_name, wait_until, Gantry, Topology, FAST_HEALTH};

/// A fresh topology with semi-sync on and an empty table of ids on it.
fn semi_sync_topology_with_table(prefix: &str) -> (Topology, String) {
    let t = Topology::start();
    semi_sync(&t);
    let table = unique_name(prefix);
    t.server("primary").sql(&format!(
        "CREATE TABLE test.{table} (id BIGINT PRIMARY KEY)"
    ));
    t.wait_replicas_caught_up(Duration::from_secs(10));
    (t, table)
}

#[derive(Default)]
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

#[tokio::test(flavor = "multi_thread")]
async fn the_primary_dies_a_replica_takes_over_and_the_old_primary_rejoins() {
    let (t, table) = semi_sync_topology_with_table("failover");
    let primary = t.server("primary");
    // The default health timings: the "writes within 3 s" is
    // about them (bench/failover.sh measures it; this bounds it loosely).
    let dir = std::env::temp_dir().join(unique_name("gantry-notify"));
    let (notify, notified) = recording_script(&dir, "$1|$2|$GANTRY_REASON");
    let mut args = AUTO.to_vec();
    args.extend(["--notification-script", &notify]);
    let g = Gantry::start(&t, &args);
    let url = g.url("app", "app_pw", "test");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Writes::default());
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
    wait_until(
        Duration::from_secs(20),
        "writes again after the crash",
        || writes.acked.lock().unwrap().len() > acked_at_kill + 50,
    );
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
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // The old primary comes back writable: fenced, then a replica of the
    // new primary, caught up — unless the crash left it a transaction no
    // replica received (semi-sync commits to the binlog before the ack):
    // then it stays out, diverged, and that transaction was never
    // acknowledged.
    // What the new primary lacks, against the old one's last known position.
    let at_failover = lacked(&g);
    assert!(
        at_failover[0].contains(" (of its last known position "),
        "{at_failover:?}"
    );
    primary.start();
    let rejoined = || {
        primary.slave_status().is_some_and(|s| {
            s.get("Master_Port") == Some(&new_primary.port.to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        })
    };
    let diverged = || {
        backends(&g)
            .iter()
            .any(|r| r.0.ends_with(&format!(":{}", primary.port)) && r.3.contains("diverged"))
    };
    wait_until(
        Duration::from_secs(20),
        "old primary fenced, then rejoined or diverged",
        || {
            primary
                .try_sql("SELECT @@read_only")
                .is_ok_and(|r| r == "1")
                && (rejoined() || diverged())
        },
    );
    let ids = |s: &common::Server| -> std::collections::HashSet<u64> {
        s.sql(&format!("SELECT id FROM test.{table}"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    // Once it answered again, from its binlog.
    wait_until(
        Duration::from_secs(10),
        "what it lacked, from its binlog",
        || lacked(&g)[0].ends_with("(its binlog, when it answered again)"),
    );
    let from_binlog = lacked(&g)[0].clone();
    if diverged() {
        assert!(!from_binlog.starts_with("none"), "{from_binlog}");
        let extra: Vec<u64> = ids(primary)
            .difference(&ids(new_primary))
            .copied()
            .collect();
        println!("old primary diverged by unacknowledged writes {extra:?}");
        assert!(!extra.is_empty(), "diverged without an extra write");
        assert!(
            extra.iter().all(|id| !acked.contains(id)),
            "{extra:?} were acknowledged"
        );
    } else {
        assert!(from_binlog.starts_with("none "), "{from_binlog}");
        let target = new_primary.gtid_current_pos();
        primary.wait_for_gtid(&target, Duration::from_secs(20));
        assert_eq!(ids(primary), ids(new_primary));
        wait_until(Duration::from_secs(10), "old primary serves reads", || {
            backends(&g)
                .iter()
                .any(|r| r.0.ends_with(&format!(":{}", primary.port)) && r.1 == "up" && r.2 == "ro")
        });
    }
    let events = g.log();
    assert!(events.contains("old primary fenced"), "{events}");
    let history = failovers(&g);
    assert_eq!(history.len(), 1, "{history:?}");
    let (kind, from, to, outage, outcome) = &history[0];
    assert_eq!(
        (kind.as_str(), outcome.as_str()),
        ("auto", "ok"),
        "{history:?}"
    );
    assert!(from.ends_with(&format!(":{}", primary.port)), "{from}");
    assert!(to.ends_with(&format!(":{}", new_primary.port)), "{to}");
    assert!(outage.parse::<u64>().is_ok_and(|ms| ms < 5000), "{outage}");
    // The notification script heard it with Sentinel's arguments.
    let old_at = format!("127.0.0.1 {}", primary.port);
    let new_at = format!("127.0.0.1 {}", new_primary.port);
    wait_until(Duration::from_secs(10), "notified", || {
        let said = lines_of(&notified);
        said.iter()
            .any(|l| l.starts_with(&format!("+sdown|master gantry {old_at}|")))
            && said.contains(&format!("+switch-master|gantry {old_at} {new_at}|auto ok"))
    });

    // The new primary dies too, inside failover-block-ms: refused, said.
    new_primary.kill();
    wait_until(Duration::from_secs(20), "second failover refused", || {
        failovers(&g)
            .iter()
            .any(|f| f.4.contains("failover-block-ms"))
    });
    assert_eq!(failovers(&g).len(), 2, "nothing promoted");
    assert!(
        backends(&g).iter().all(|r| !(r.2 == "rw" && r.1 == "up")),
        "no primary up"
    );
    wait_until(Duration::from_secs(10), "the refusal notified", || {
        lines_of(&notified).iter().any(|l| {
            l.starts_with(&format!(
                "-failover-abort|master gantry {new_at}|auto refused"
            ))
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// An operator's script that appends `line` (shell words, e.g. `$*`) to a
/// file: (the script, the file it writes). Both live in `dir`.
fn recording_script(dir: &std::path::Path, line: &str) -> (String, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.join(unique_name("script"));
    let said = dir.join(unique_name("said"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"{line}\" >> {}\n", said.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    (script.to_str().unwrap().to_string(), said)
}

fn lines_of(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// A TCP relay from a local port to `target`, which the test can cut:
/// Gantry loses the primary while the replicas still reach it.
struct Forwarder {
    port: u16,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(target: u16) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut2 = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let cut = cut2.clone();
                tokio::spawn(async move {
                    if cut.load(Ordering::SeqCst) {
                        return; // refused: closed at once
                    }
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    // Copy both ways until either side closes or the cut.
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let watch = async {
                        while !cut.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = watch => {}
                    }
                });
            }
        });
        Forwarder { port, cut, task }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gantry_cut_from_a_primary_the_replicas_still_reach_does_not_fail_over() {
    let t = Topology::start();
    let primary = t.server("primary");
    let fwd = Forwarder::start(primary.port).await;
    let via = format!("127.0.0.1:{}", fwd.port);
    let mut args = auto_args();
    args.extend(["--proxy-backend-addresses", &via]);
    let g = Gantry::start(&t, &args);
    let table = unique_name("cut");
    let mut c = mysql_async::Conn::from_url(g.url("app", "app_pw", "test"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE TABLE test.{table} (id INT)"))
        .await
        .unwrap();
    drop(c);

    fwd.set_cut(true);
    wait_until(Duration::from_secs(10), "primary marked down", || {
        backends(&g).iter().any(|r| r.0 == via && r.1 == "down")
    });
    // Well past down-after and a few probes of the replicas: no failover.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(failovers(&g).is_empty(), "{:?}", failovers(&g));
    for s in t.servers().filter(|s| s.name != "primary") {
        assert_eq!(s.sql("SELECT @@read_only"), "1", "{} untouched", s.name);
    }
    let log = g.log();
    assert!(log.contains("no failover"), "the reason is logged");
    // Writes fail clearly meanwhile, and work again once the path is back.
    let url = g.url("app", "app_pw", "test");
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let err = c
        .query_drop(format!("INSERT INTO test.{table} VALUES (1)"))
        .await
        .unwrap_err();
    assert_eq!(common::server_code(&err), Some(1105), "{err}");
    // The same error as libmariadb reads it, and reads still answer.
    let cli = g.mariadb(&["-e", &format!("INSERT INTO test.{table} VALUES (1)")]);
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli.status.success() && said.contains("ERROR 1105 (HY000)"),
        "{cli:?}"
    );
    let read = g.mariadb(&["-N", "-e", &format!("SELECT COUNT(*) FROM test.{table}")]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        "0",
        "{read:?}"
    );
    fwd.set_cut(false);
    wait_until(Duration::from_secs(10), "primary up again", || {
        backends(&g).iter().any(|r| r.0 == via && r.1 == "up")
    });
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    c.query_drop(format!("INSERT INTO test.{table} VALUES (2)"))
        .await
        .unwrap();
    assert!(failovers(&g).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_the_replica_takes_over_and_the_old_primary_rejoins() {
    // The seed's story: one primary, one replica, no scripts.
    let t = Topology::start();
    let primary = t.server("primary");
    let replica = t.server("replica1");
    let mut args = auto_args();
    let replica_addr = replica.addr();
    // The operator's scripts hear of it, with Sentinel's arguments.
    let dir = std::env::temp_dir().join(unique_name("gantry-reconfig"));
    let (reconfig_arg, said) = recording_script(&dir, "$*");
    args.extend([
        "--proxy-read-only-backend-addresses",
        &replica_addr,
        "--auto-discover-replicas",
        "false",
        "--client-reconfig-script",
        &reconfig_arg,
    ]);
    let g = Gantry::start(&t, &args);
    let table = unique_name("pair");
    let url = g.url("app", "app_pw", "test");
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    c.query_drop(format!("CREATE TABLE test.{table} (id INT)"))
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO test.{table} VALUES (1)"))
        .await
        .unwrap();
    drop(c);
    t.wait_replicas_caught_up(Duration::from_secs(10));

    primary.kill();
    wait_until(Duration::from_secs(15), "the replica promoted", || {
        backends(&g)
            .iter()
            .any(|r| r.0 == replica_addr && r.2 == "rw" && r.1 == "up")
    });
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    c.query_drop(format!("INSERT INTO test.{table} VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(
        replica.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "2"
    );
    let expected = format!(
        "gantry leader failover-end 127.0.0.1 {} 127.0.0.1 {}",
        primary.port, replica.port
    );
    wait_until(
        Duration::from_secs(10),
        "client-reconfig-script ran",
        || std::fs::read_to_string(&said).is_ok_and(|s| s.trim() == expected),
    );
    let _ = std::fs::remove_dir_all(&dir);

    primary.start();
    wait_until(Duration::from_secs(20), "the old primary rejoined", || {
        primary.slave_status().is_some_and(|s| {
            s.get("Master_Port") == Some(&replica.port.to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        })
    });
    primary.wait_for_gtid(&replica.gtid_current_pos(), Duration::from_secs(20));
    assert_eq!(
        primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "2"
    );
    assert_eq!(primary.sql("SELECT @@read_only"), "1");
    wait_until(Duration::from_secs(10), "it serves reads", || {
        backends(&g)
            .iter()
            .any(|r| r.0.ends_with(&format!(":{}", primary.port)) && r.1 == "up" && r.2 == "ro")
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_primary_with_errant_transactions_is_fenced_and_left_out() {
    let t = Topology::start();
    let primary = t.server("primary");
    let dir = std::env::temp_dir().join(unique_name("gantry-errant"));
    let (notify, notified) = recording_script(&dir, "$1|$2|$GANTRY_REASON");
    let metrics_port = common::free_port().to_string();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut args = auto_args();
    args.extend([
        "--notification-script",
        &notify,
        "--metrics-address",
        &metrics,
    ]);
    let g = Gantry::start(&t, &args);
    let table = unique_name("errant");
    primary.sql(&format!("CREATE TABLE test.{table} (id INT)"));
    t.wait_replicas_caught_up(Duration::from_secs(10));
    // A transaction only the primary has: the replicas stop receiving.
    let replicas: Vec<&common::Server> = t.servers().filter(|s| s.name != "primary").collect();
    for r in &replicas {
        r.sql("STOP SLAVE IO_THREAD");
    }
    primary.sql(&format!("INSERT INTO test.{table} VALUES (1)"));
    let errant = primary.gtid_current_pos();
    primary.kill();
    for r in &replicas {
        r.sql("START SLAVE IO_THREAD");
    }
    wait_until(Duration::from_secs(15), "failover", || {
        failovers(&g).iter().any(|f| f.4 == "ok")
    });

    primary.start();
    wait_until(
        Duration::from_secs(20),
        "old primary fenced and diverged",
        || {
            primary
                .try_sql("SELECT @@read_only")
                .is_ok_and(|r| r == "1")
                && backends(&g).iter().any(|r| {
                    r.0.ends_with(&format!(":{}", primary.port)) && r.3.contains("diverged")
                })
        },
    );
    let row = backends(&g)
        .into_iter()
        .find(|r| r.0.ends_with(&format!(":{}", primary.port)))
        .unwrap();
    assert!(
        row.3.contains(&errant),
        "the errant GTID {errant} is shown: {row:?}"
    );
    assert_ne!(row.1, "up", "it serves nothing: {row:?}");
    let said = lacked(&g);
    assert!(
        said[0].starts_with(&errant) && said[0].ends_with("(its binlog, when it answered again)"),
        "the record names what the new primary lacks: {said:?}"
    );
    // Said to the operator's script and in the metrics.
    let at = format!("127.0.0.1:{}", primary.port);
    wait_until(Duration::from_secs(10), "divergence notified", || {
        lines_of(&notified).iter().any(|l| {
            l.starts_with(&format!(
                "+diverged|slave {at} 127.0.0.1 {}|diverged: ",
                primary.port
            )) && l.contains(&errant)
        })
    });
    let exposition = common::scrape(metrics_port.parse().unwrap(), "/metrics");
    let gauge = format!("gantry_backend{{address=\"{at}\",metric=\"diverged\"");
    assert!(
        exposition
            .lines()
            .any(|l| l.starts_with(&gauge) && l.ends_with(" 1")),
        "{exposition}"
    );
    assert!(
        exposition.lines().any(
            |l| l.starts_with("gantry_health_events_total{kind=\"diverged\"} ")
                && !l.ends_with(" 0")
        ),
        "{exposition}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Never repointed, and no write reached it.
    assert!(primary.slave_status().is_none(), "not made a replica");
    assert_eq!(
        primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "1"
    );
}

fn sysbench(port: u16, args: &[&str]) -> String {
    common::sysbench(port, 2000, args)
}

#[tokio::test(flavor = "multi_thread")]
async fn switchover_under_write_load_fails_and_loses_nothing() {
    let t = Topology::start();
    let primary = t.server("primary");
    let mut args: Vec<&str> = FAST_HEALTH.to_vec();
    args.extend([
        "--replication-username",
        "repl",
        "--replication-password",
        "repl_pw",
    ]);
    let g = Gantry::start(&t, &args);
    sysbench(g.port, &["oltp_write_only", "prepare"]);
    t.wait_replicas_caught_up(Duration::from_secs(20));
    wait_until(Duration::from_secs(10), "replicas up", || {
        backends(&g)
            .iter()
            .filter(|r| r.2 == "ro" && r.1 == "up")
            .count()
            == 2
    });

    let port = g.port;
    let load = std::thread::spawn(move || {
        // Deadlocks between sysbench's own transactions are retried by it
        // (its default); anything else ends the run with an error.
        sysbench(
            port,
            &[
                "oltp_write_only",
                "--threads=8",
                "--time=8",
                "--mysql-ignore-errors=1213,1205,1020",
                "run",
            ],
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    let out = g.admin_mariadb(&["-e", "SWITCHOVER"]);
    assert!(out.status.success(), "SWITCHOVER: {out:?}");
    let report = load.join().unwrap();
    let history = failovers(&g);
    assert_eq!(history.len(), 1, "{history:?}");
    let (kind, from, to, pause, outcome) = &history[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("switchover", "ok"));
    assert!(from.ends_with(&format!(":{}", primary.port)));
    println!(
        "SWITCHOVER under oltp_write_only (8 threads): write pause {pause} ms\n{}",
        report
            .lines()
            .filter(|l| l.contains("transactions:") || l.contains("errors:"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let new_primary = t
        .servers()
        .find(|s| to.ends_with(&format!(":{}", s.port)))
        .unwrap();
    assert_eq!(new_primary.sql("SELECT @@read_only"), "0");
    assert_eq!(primary.sql("SELECT @@read_only"), "1");
    // The old primary follows the new one and holds the same data: no
    // write committed through Gantry is missing from the new primary.
    wait_until(Duration::from_secs(10), "old primary replicates", || {
        primary.slave_status().is_some_and(|s| {
            s.get("Master_Port") == Some(&new_primary.port.to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
                && s.get("Slave_SQL_Running").map(String::as_str) == Some("Yes")
        })
    });
    for s in t.servers().filter(|s| s.name != new_primary.name) {
        s.wait_for_gtid(&new_primary.gtid_current_pos(), Duration::from_secs(20));
    }
    let sums = |s: &common::Server| s.sql("CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2");
    for s in t.servers() {
        assert_eq!(sums(s), sums(new_primary), "{} has the same rows", s.name);
    }
}

/// A SWITCHOVER while another one runs (it waits for a slow write on the
/// old primary) is refused; the first goes on and the write lands.
#[tokio::test(flavor = "multi_thread")]
async fn one_promotion_at_a_time() {
    let t = Topology::start();
    let primary = t.server("primary");
    let mut args: Vec<&str> = FAST_HEALTH.to_vec();
    args.extend(&AUTO[2..]);
    let g = Gantry::start(&t, &args);
    wait_until(Duration::from_secs(10), "replicas up", || {
        backends(&g)
            .iter()
            .filter(|r| r.2 == "ro" && r.1 == "up")
            .count()
            == 2
    });
    let table = unique_name("one_at_a_time");
    let mut c = mysql_async::Conn::from_url(g.url("app", "app_pw", "test").as_str())
        .await
        .unwrap();
    c.query_drop(format!("CREATE TABLE test.{table} (x INT)"))
        .await
        .unwrap();
    let slow_sql = format!("INSERT INTO test.{table} SELECT SLEEP(1.5)");
    let slow = tokio::spawn(async move { c.query_drop(slow_sql).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| g.admin_mariadb(&["-e", "SWITCHOVER"]));
        std::thread::sleep(Duration::from_millis(300));
        let second = g.admin_mariadb(&["-e", "SWITCHOVER"]);
        (first.join().unwrap(), second)
    });
    let refusal = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && refusal.contains("another failover or switchover is running"),
        "second SWITCHOVER: {second:?}"
    );
    assert!(first.status.success(), "first SWITCHOVER: {first:?}");
    slow.await.unwrap().expect("the slow write finished");
    let history = failovers(&g);
    let outcomes: Vec<&str> = history.iter().map(|f| f.4.as_str()).collect();
    assert_eq!(outcomes.len(), 2, "{history:?}");
    assert!(outcomes.contains(&"ok"), "{history:?}");
    assert_eq!(primary.sql("SELECT @@read_only"), "1");
    let promoted = t
        .servers()
        .find(|s| {
            history
                .iter()
                .any(|f| f.4 == "ok" && f.2.ends_with(&format!(":{}", s.port)))
        })
        .expect("the new primary");
    // The switchover waited for the write, and the target applied it.
    assert_eq!(
        promoted.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_primary_is_failed_over_and_fenced_when_it_wakes() {
    let (t, table) = semi_sync_topology_with_table("hung");
    let primary = t.server("primary");
    let mut args = auto_args();
    args.extend(["--log-level", "debug"]);
    let g = Gantry::start(&t, &args);
    // Gantry gives the replicas a short heartbeat, so silence means something.
    for s in t.servers().filter(|s| s.name != "primary") {
        wait_until(Duration::from_secs(10), "heartbeat period set", || {
            s.sql("SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'")
                .ends_with("\t0.500")
        });
    }
    semi_sync(&t); // the heartbeat change restarted the replication threads
    let url = g.url("app", "app_pw", "test");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Writes::default());
    let writer = tokio::spawn(write_load(url, table.clone(), stop.clone(), writes.clone()));
    wait_until(Duration::from_secs(10), "writes flowing", || {
        writes.acked.lock().unwrap().len() > 50
    });

    primary.pause();
    let resume = scopeguard(primary);
    let acked_at_stop = writes.acked.lock().unwrap().len();
    wait_until(
        Duration::from_secs(20),
        "writes again after the hang",
        || writes.acked.lock().unwrap().len() > acked_at_stop + 50,
    );
    let gap = *writes.longest_gap.lock().unwrap();
    println!(
        "SIGSTOP of the primary: longest write gap {} ms",
        gap.as_millis()
    );
    drop(resume); // SIGCONT
                  // Making it read-only waits for the commits it was running when it
                  // froze: they wait for semi-sync acknowledgements that no replica sends
                  // any more, up to rpl_semi_sync_master_timeout (10 s) after it wakes.
    wait_until(Duration::from_secs(25), "old primary fenced", || {
        primary
            .try_sql("SELECT @@read_only")
            .is_ok_and(|r| r == "1")
    });
    // Fenced, it takes no write while the load goes on elsewhere: nothing
    // more under its own server_id in its binlog (as a rejoined replica it
    // does log what it replicates from the new primary).
    let own = |state: String| -> String {
        state
            .split(',')
            .find(|g| g.split('-').nth(1) == Some(&primary.server_id.to_string()))
            .unwrap_or("")
            .to_string()
    };
    let fenced_at = own(primary.sql("SELECT @@gtid_binlog_state"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(
        own(primary.sql("SELECT @@gtid_binlog_state")),
        fenced_at,
        "no write of its own after the fence"
    );
    // Whatever only the old primary has was never acknowledged.
    let ids = |s: &common::Server| -> std::collections::HashSet<u64> {
        s.sql(&format!("SELECT id FROM test.{table}"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let new_primary_addr = backends(&g)
        .into_iter()
        .find(|r| r.2 == "rw")
        .expect("a primary")
        .0;
    let new_primary = t
        .servers()
        .find(|s| new_primary_addr.ends_with(&format!(":{}", s.port)))
        .unwrap();
    assert_ne!(new_primary.name, "primary");
    let acked = writes.acked.lock().unwrap().clone();
    let on_new = ids(new_primary);
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !on_new.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let extra: Vec<u64> = ids(primary).difference(&on_new).copied().collect();
    assert!(extra.iter().all(|id| !acked.contains(id)), "{extra:?}");
    println!("only on the old primary (never acknowledged): {extra:?}");
    if std::env::var_os("GANTRY_TEST_LOG").is_some() {
        println!("{}", g.log());
    }
}

/// Resumes a paused server when dropped (also when the test fails).
fn scopeguard(s: &common::Server) -> impl Drop + '_ {
    struct Resume<'a>(&'a common::Server);
    impl Drop for Resume<'_> {
        fn drop(&mut self) {
            self.0.resume();
        }
    }
    Resume(s)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writable_primary_takes_no_writes_in_follow_mode() {
    let t = Topology::start();
    let primary = t.server("primary");
    let rogue = t.server("replica2");
    let g = Gantry::start(&t, &FAST_HEALTH);
    let table = unique_name("rival");
    primary.sql(&format!("CREATE TABLE test.{table} (id INT)"));
    t.wait_replicas_caught_up(Duration::from_secs(10));
    // Someone promotes replica2 by hand while the primary is fine.
    rogue.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0");
    wait_until(Duration::from_secs(10), "the rival flagged", || {
        backends(&g).iter().any(|r| {
            r.0.ends_with(&format!(":{}", rogue.port))
                && r.2 == "ro"
                && r.3.contains("two primaries")
        })
    });
    let mut c = mysql_async::Conn::from_url(g.url("app", "app_pw", "test"))
        .await
        .unwrap();
    for i in 0..20 {
        c.query_drop(format!("INSERT INTO test.{table} VALUES ({i})"))
            .await
            .unwrap();
    }
    assert_eq!(
        primary.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "20"
    );
    assert_eq!(
        rogue.sql(&format!("SELECT COUNT(*) FROM test.{table}")),
        "0"
    );
    let rows = backends(&g);
    assert_eq!(rows.iter().filter(|r| r.2 == "rw").count(), 1, "{rows:?}");
    assert!(g.log().contains("two writable primaries"));
}
