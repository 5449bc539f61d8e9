//! Backend pools: `pool-min-idle` keeps connections ready, `pool-max-size`
//! bounds them, and a full pool answers with a clear error after
//! `acquire-timeout-ms` instead of hanging.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Opts};
use std::time::Duration;

use common::{shared_topology, Gantry};

fn app_connections(s: &common::Server) -> u32 {
    s.sql("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'app'")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn min_idle_connections_are_kept_ready() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--pool-min-idle", "3"]);
    let mut c = Conn::new(Opts::from_url(&g.url("app", "app_pw", "test")).unwrap())
        .await
        .unwrap();
    for _ in 0..4 {
        let _: Option<u16> = c.query_first("SELECT @@port").await.unwrap();
    }
    drop(c);
    common::wait_until(
        Duration::from_secs(10),
        "3 idle connections per replica",
        || t.replicas.iter().all(|r| app_connections(r) >= 3),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_gives_a_clear_error_not_a_hang() {
    let t = shared_topology();
    let g = Gantry::start(t, &["--pool-max-size", "1", "--acquire-timeout-ms", "300"]);
    let url = g.url("app", "app_pw", "");
    let mut holder = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    holder.query_drop("BEGIN").await.unwrap();
    let mut other = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    let err = other
        .query_drop("INSERT INTO test.nothing VALUES (1)")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match err {
        Error::Server(e) => {
            assert_eq!(e.code, 1040, "{e:?}");
            assert!(e.message.contains("pool"), "{}", e.message);
        }
        other => panic!("expected ER_CON_COUNT_ERROR, got {other:?}"),
    }
    holder.query_drop("COMMIT").await.unwrap();
    // Once the connection is back, the other client proceeds.
    let one: u8 = other
        .query_first("SELECT 1 FROM DUAL FOR UPDATE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_backend_connections_say_goodbye() {
    // Its own servers: other tests' Gantry processes are killed when they
    // end, which the shared servers would count as aborted clients.
    let topo = common::Topology::start();
    let t = &topo;
    let aborted = || -> u64 {
        t.primary
            .sql("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'ABORTED_CLIENTS'")
            .parse()
            .unwrap()
    };
    let g = Gantry::start(t, &[]);
    let before = aborted();
    for _ in 0..5 {
        let mut c = Conn::new(Opts::from_url(&g.url("app", "app_pw", "test")).unwrap())
            .await
            .unwrap();
        // A temporary table pins the session: its connection is closed, not
        // pooled, when the session ends.
        c.query_drop("CREATE TEMPORARY TABLE bye (id INT)")
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        aborted(),
        before,
        "backend connections closed with COM_QUIT"
    );
}
