//! Causal reads: with one replica delayed by MASTER_DELAY=2, a session that
//! inserts a row and reads it back at once never misses it under
//! `read-your-writes`, and does under `eventual`; `global` reads see other
//! sessions' earlier writes.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::time::Duration;

use common::{Gantry, Topology};

async fn connect(g: &Gantry) -> Conn {
    Conn::new(Opts::from_url(&g.url("app", "app_pw", "test")).unwrap())
        .await
        .expect("connect through gantry")
}

/// Inserts rows `from..to` and reads each back immediately; returns
/// (misses, reads served by a replica).
async fn insert_then_read(
    c: &mut Conn,
    table: &str,
    from: u32,
    to: u32,
    primary: u16,
) -> (u32, u32) {
    let (mut misses, mut on_replica) = (0, 0);
    for i in from..to {
        c.query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
        let row: Option<(Option<u32>, u16)> = c
            .query_first(format!(
                "SELECT (SELECT id FROM {table} WHERE id = {i}), @@port"
            ))
            .await
            .unwrap();
        let (found, port) = row.expect("one row");
        if found.is_none() {
            misses += 1;
        }
        if port != primary {
            on_replica += 1;
        }
    }
    (misses, on_replica)
}

fn stats_row(g: &Gantry, mode: &str) -> Vec<u64> {
    let out = g.admin_mariadb(&["-N", "-B", "-e", "SELECT * FROM stats"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(mode))
        .unwrap_or_else(|| panic!("no {mode} row in stats:\n{text}"));
    line.split('\t')
        .skip(6)
        .map(|v| v.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn read_your_writes_never_misses_where_eventual_does() {
    let t = Topology::start();
    let delayed = &t.replicas[0];
    delayed.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=2; START SLAVE");
    let g = Gantry::start(&t, &["--consistency", "eventual"]);
    let mut c = connect(&g).await;
    let table = common::unique_name("ryw");
    c.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // eventual (Atlas's behaviour): reads that land on the delayed replica miss.
    let (missed, _) = insert_then_read(&mut c, &table, 0, 200, t.primary.port).await;
    assert!(
        missed > 0,
        "eventual consistency should show stale reads here"
    );

    c.query_drop("SET @@gantry_consistency = 'read-your-writes'")
        .await
        .unwrap();
    let (missed, on_replica) = insert_then_read(&mut c, &table, 1000, 1500, t.primary.port).await;
    assert_eq!(missed, 0, "read-your-writes missed {missed} of 500 rows");
    assert!(
        on_replica >= 400,
        "most reads still on replicas: {on_replica} of 500"
    );
    let served = stats_row(&g, "read-your-writes");
    assert_eq!(served.iter().sum::<u64>(), 500, "{served:?}");

    // Caught-up replicas: reads go to replicas at once or after a short wait.
    delayed.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE");
    t.wait_replicas_caught_up(Duration::from_secs(30));
    let (missed, on_replica) = insert_then_read(&mut c, &table, 2000, 2100, t.primary.port).await;
    assert_eq!(missed, 0);
    assert!(on_replica >= 90, "{on_replica} of 100 reads on replicas");

    // An unknown mode is refused and changes nothing.
    let err = c
        .query_drop("SET @@gantry_consistency = 'sometimes'")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1231"), "{err}");
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn global_reads_see_other_sessions_earlier_writes() {
    let t = Topology::start();
    t.replicas[0].sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=2; START SLAVE");
    // Per-user: app reads under global consistency.
    let g = Gantry::start(&t, &["--user-consistency", "app:global"]);
    let mut writer = connect(&g).await;
    writer
        .query_drop("SET @@gantry_consistency = 'eventual'")
        .await
        .unwrap();
    let mut reader = connect(&g).await;
    let table = common::unique_name("global");
    writer
        .query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut on_replica = 0;
    for i in 0..100u32 {
        writer
            .query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
        let (found, port): (Option<u32>, u16) = reader
            .query_first(format!(
                "SELECT (SELECT id FROM {table} WHERE id = {i}), @@port"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found,
            Some(i),
            "global read {i} missed the other session's write"
        );
        if port != t.primary.port {
            on_replica += 1;
        }
    }
    assert!(
        on_replica >= 50,
        "global reads mostly on replicas: {on_replica}"
    );
    let served = stats_row(&g, "global");
    assert!(served.iter().sum::<u64>() >= 100, "{served:?}");
    // A hint asks for eventual consistency for one statement: that read is
    // not a causal one; the next plain read is.
    let before: u64 = stats_row(&g, "global").iter().sum();
    let one: Option<u32> = reader
        .query_first("/* gantry:consistency=eventual */ SELECT 1")
        .await
        .unwrap();
    assert_eq!(one, Some(1));
    assert_eq!(stats_row(&g, "global").iter().sum::<u64>(), before);
    let two: Option<u32> = reader.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
    assert_eq!(stats_row(&g, "global").iter().sum::<u64>(), before + 1);
    writer
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
