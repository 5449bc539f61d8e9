//! A backend that dies under a running statement: the client gets an ERR
//! packet promptly, not a hang, and its next statement works.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Opts};
use std::time::{Duration, Instant};

use common::{Gantry, Topology};

fn sleeping_on(server: &common::Server) -> bool {
    server.sql(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(20)%'",
    ) != "0"
}

#[tokio::test(flavor = "multi_thread")]
async fn replica_killed_mid_query_gives_an_error_and_the_session_goes_on() {
    let t = Topology::start();
    let g = Gantry::start(&t, &[]);
    let opts = Opts::from_url(&g.url("app", "app_pw", "test")).unwrap();
    let mut c = Conn::new(opts).await.unwrap();
    let slow = tokio::spawn(async move {
        let r = c.query_drop("SELECT SLEEP(20)").await;
        (r, Instant::now(), c)
    });
    // Find the replica running it and kill that server outright.
    let deadline = Instant::now() + Duration::from_secs(10);
    let victim = loop {
        if let Some(r) = t.replicas.iter().find(|r| sleeping_on(r)) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the SLEEP never reached a replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed_at = Instant::now();
    victim.kill();
    let (result, failed_at, mut c) = slow.await.unwrap();
    match result {
        Err(Error::Server(e)) => {
            assert_eq!(e.code, 1927, "{e:?}");
            assert!(
                e.message.contains(&victim.port.to_string()),
                "{}",
                e.message
            );
        }
        other => panic!("expected an ERR packet from Gantry, got {other:?}"),
    }
    assert!(
        failed_at.duration_since(killed_at) < Duration::from_secs(2),
        "error took {:?}",
        failed_at.duration_since(killed_at)
    );
    // The same session carries on: reads land on a live server.
    for _ in 0..6 {
        let port: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
        assert_ne!(port, victim.port);
    }
    victim.start();
}

#[tokio::test(flavor = "multi_thread")]
async fn primary_lost_inside_a_transaction_ends_the_session_with_an_error() {
    let t = Topology::start();
    let g = Gantry::start(&t, &[]);
    let opts = Opts::from_url(&g.url("app", "app_pw", "test")).unwrap();
    let mut c = Conn::new(opts.clone()).await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    let port: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_eq!(port, t.primary.port);
    // Kill the backend connection (not the server): the transaction is gone.
    let thread = t.primary.sql(
        "SELECT id FROM information_schema.processlist WHERE user = 'app' AND info IS NULL ORDER BY id DESC LIMIT 1",
    );
    t.primary.sql(&format!("KILL CONNECTION {thread}"));
    let err = c
        .query_drop("SELECT 1")
        .await
        .expect_err("the transaction's connection is gone");
    assert!(
        matches!(err, Error::Server(ref e) if e.code == 1927) || matches!(err, Error::Io(_)),
        "{err:?}"
    );
    // A new session works at once.
    let mut c2 = Conn::new(opts).await.unwrap();
    let one: u8 = c2.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}
