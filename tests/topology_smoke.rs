//! Smoke test of the test harness itself: the shared MariaDB topology comes
//! up, the three servers are distinct, and replication works.

mod common;

use std::time::Duration;

#[test]
fn shared_topology_replicates() {
    let topo = common::shared_topology();
    // The servers are the ones the run asked for (processes or containers).
    let status = topo.status();
    for name in ["primary", "replica1", "replica2"] {
        assert!(status.contains(name), "{name} in the status:\n{status}");
    }
    if common::compose::selected() {
        assert!(status.contains("mariadb-primary"), "containers:\n{status}");
    }

    let ids: Vec<String> = topo
        .servers()
        .map(|s| s.sql("SELECT @@server_id"))
        .collect();
    assert_eq!(ids, ["1", "2", "3"], "each server has its own server_id");
    assert_eq!(topo.primary.sql("SELECT @@read_only"), "0");
    for replica in &topo.replicas {
        assert_eq!(
            replica.sql("SELECT @@read_only"),
            "1",
            "{} is read-only",
            replica.name
        );
    }

    let table = common::unique_name("smoke");
    topo.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO test.{table} VALUES (1, 'one'), (2, 'two');"
    ));
    topo.wait_replicas_caught_up(Duration::from_secs(20));
    for replica in &topo.replicas {
        assert_eq!(
            replica.sql(&format!(
                "SELECT GROUP_CONCAT(v ORDER BY id) FROM test.{table}"
            )),
            "one,two",
            "{} has the rows written on the primary",
            replica.name
        );
        let status = replica.slave_status().expect("replica has slave status");
        assert_eq!(status["Slave_IO_Running"], "Yes");
        assert_eq!(status["Slave_SQL_Running"], "Yes");
        assert_eq!(status["Master_Port"], topo.primary.port.to_string());
    }
    topo.primary.sql(&format!("DROP TABLE test.{table}"));
}
