//! Pool limits hold whatever the pool keys: `pool-max-size` bounds an
//! account's connections to a backend over all its pools (one per client
//! collation), `backend-max-connections` bounds a backend over all
//! accounts, and one account at its limit does not block the others.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Opts};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{shared_topology, Gantry, Server};

/// An account of its own (other tests' connections do not count), allowed
/// to write to `test`.
fn new_account(t: &common::Topology, prefix: &str) -> String {
    let user = common::unique_name(prefix);
    t.primary.sql(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT ALL ON test.* TO '{user}'@'127.0.0.1'"
    ));
    user
}

fn connections_of(s: &Server, users: &[&str]) -> usize {
    let list = users
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(",");
    s.sql(&format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE user IN ({list})"
    ))
    .parse()
    .unwrap()
}

/// A `mariadb` CLI session with `charset` as its handshake collation,
/// holding a transaction on the primary for `secs`.
fn hold_transaction(g: &Gantry, user: &str, charset: &str, secs: u32) -> Child {
    Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            &format!("-u{user}"),
            "-ppw",
            &format!("--default-character-set={charset}"),
            "-e",
            &format!("BEGIN; DO SLEEP({secs}); COMMIT;"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client is installed (scripts/install-deps.sh)")
}

/// Waits for the sessions; returns how many failed and their messages.
fn finish(children: Vec<Child>) -> (usize, String) {
    let mut failed = 0;
    let mut errors = String::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        if !out.status.success() {
            failed += 1;
            errors.push_str(&String::from_utf8_lossy(&out.stderr));
        }
    }
    (failed, errors)
}

/// The largest count seen while `children` run (sampled every 50 ms), at
/// most `max_wait`.
fn peak_while(
    s: &Server,
    users: &[&str],
    children: &mut [Child],
    max_wait: Duration,
    mut during: impl FnMut(usize),
) -> usize {
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < max_wait && children.iter_mut().any(|c| c.try_wait().unwrap().is_none())
    {
        let n = connections_of(s, users);
        peak = peak.max(n);
        during(n);
        std::thread::sleep(Duration::from_millis(50));
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_exceed_its_limit_over_collations() {
    let t = shared_topology();
    let a = new_account(t, "lim_a");
    let b = new_account(t, "lim_b");
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let pwds = format!("{a}:pw,{b}:pw");
    let g = Gantry::start(
        t,
        &[
            "--pwds",
            &pwds,
            "--pool-max-size",
            "3",
            "--backend-max-connections",
            "100",
            "--acquire-timeout-ms",
            "1500",
        ],
    );

    // Nine transactions of one account over three collations (three pools):
    // before, each pool allowed 3, so 9 connections to the primary.
    let mut children = Vec::new();
    for charset in ["utf8mb4", "latin1", "utf8mb3"] {
        for _ in 0..3 {
            children.push(hold_transaction(&g, &a, charset, 4));
        }
    }
    // Meanwhile another account logs in (with a schema, validated on a
    // backend) and queries, without waiting for the first one's pools.
    let mut b_checked = false;
    let mut b_login_times = Vec::new();
    let url = g.url(&b, "pw", "test");
    let peak = {
        let mut check_b = |n: usize| {
            if n >= 3 && !b_checked {
                b_checked = true;
                let url = url.clone();
                let started = Instant::now();
                let r = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async move {
                            let mut c = Conn::new(Opts::from_url(&url).unwrap()).await?;
                            let _: Option<u32> = c.query_first("SELECT @@server_id").await?;
                            c.query_drop("BEGIN").await?;
                            c.query_drop("DO 1").await?;
                            c.query_drop("COMMIT").await?;
                            c.disconnect().await
                        })
                })
                .join()
                .unwrap();
                r.expect("another account logs in and queries");
                b_login_times.push(started.elapsed());
            }
        };
        peak_while(
            &t.primary,
            &[&a],
            &mut children,
            Duration::from_secs(15),
            &mut check_b,
        )
    };
    let (failed, errors) = finish(children);
    assert!(
        peak <= 3,
        "account {a} held {peak} connections to the primary"
    );
    assert!(peak >= 3, "the transactions did run ({peak})");
    assert!(
        b_checked,
        "account {b} was tried while {a} was at its limit"
    );
    // Under the acquire timeout (1.5 s): it did not wait for a's pools.
    assert!(
        b_login_times[0] < Duration::from_millis(1400),
        "the other account waited {:?}",
        b_login_times[0]
    );
    // Those that found the account full were told so, by name.
    assert!(failed >= 3, "{failed} failed: {errors}");
    assert!(errors.contains("1040"), "{errors}");
    assert!(errors.contains("pool-max-size (3)"), "{errors}");

    // The account's idle connections (in the pools of three collations) make
    // room for a fourth collation: its transactions run, still within 3.
    assert!(connections_of(&t.primary, &[&a]) <= 3);
    let mut children: Vec<Child> = (0..3)
        .map(|_| hold_transaction(&g, &a, "ascii", 2))
        .collect();
    let peak = peak_while(
        &t.primary,
        &[&a],
        &mut children,
        Duration::from_secs(10),
        |_| {},
    );
    let (failed, errors) = finish(children);
    assert_eq!(
        failed, 0,
        "idle connections of other pools make room: {errors}"
    );
    assert!(peak <= 3, "{peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_total_holds_across_accounts() {
    let t = shared_topology();
    let users: Vec<String> = ["tot_a", "tot_b", "tot_c"]
        .iter()
        .map(|p| new_account(t, p))
        .collect();
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let pwds = users
        .iter()
        .map(|u| format!("{u}:pw"))
        .collect::<Vec<_>>()
        .join(",");
    // 10 in total, of which 4 are kept for logins and Gantry's helpers:
    // sessions may hold 6.
    let g = Gantry::start(
        t,
        &[
            "--pwds",
            &pwds,
            "--pool-max-size",
            "3",
            "--backend-max-connections",
            "10",
            "--acquire-timeout-ms",
            "1000",
        ],
    );
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut holders = Vec::new();
    for u in &names[..2] {
        for _ in 0..3 {
            let mut c = Conn::new(Opts::from_url(&g.url(u, "pw", "")).unwrap())
                .await
                .unwrap();
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop("DO 1").await.unwrap();
            holders.push(c);
        }
    }
    assert_eq!(connections_of(&t.primary, &names), 6);
    // A third account, below its own limit, meets the backend's.
    let mut c = Conn::new(Opts::from_url(&g.url(names[2], "pw", "")).unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    // (BEGIN takes the primary connection at once.)
    match c.query_drop("BEGIN").await {
        Err(Error::Server(e)) => {
            assert_eq!((e.code, e.state.as_str()), (1040, "08004"), "{e:?}");
            assert!(
                e.message.contains("backend-max-connections (10)"),
                "{}",
                e.message
            );
        }
        other => panic!("expected ERROR 1040, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(connections_of(&t.primary, &names), 6);
    // One transaction ends: its connection goes idle, and is closed to make
    // room for the third account.
    let mut first = holders.remove(0);
    first.query_drop("COMMIT").await.unwrap();
    first.disconnect().await.unwrap();
    drop(c);
    let mut c = Conn::new(Opts::from_url(&g.url(names[2], "pw", "")).unwrap())
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("DO 1").await.unwrap();
    assert!(connections_of(&t.primary, &names) <= 6);
    c.query_drop("COMMIT").await.unwrap();
    for mut h in holders {
        h.query_drop("COMMIT").await.unwrap();
    }
}
