//! Real clients through Gantry: the `mariadb` CLI (batch and interactive,
//! which also exercises COM_FIELD_LIST for tab completion) and sysbench.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{shared_topology, Gantry};

fn mariadb(g: &Gantry, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", g.port), "-uapp", "-papp_pw"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client is installed (scripts/install-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mariadb_cli_batch_mode() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let (ok, out, err) = mariadb(
        &g,
        &["-N", "-B", "test", "-e", "SELECT 1+1; SELECT @@server_id"],
        "",
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2");
    assert!(
        lines[1] == "2" || lines[1] == "3",
        "a replica answered: {out}"
    );

    let (ok, out, err) = mariadb(&g, &["test", "-e", "SELECT 'x' AS a, 42 AS b\\G"], "");
    assert!(ok, "{err}");
    assert!(out.contains("a: x") && out.contains("b: 42"), "{out}");

    let (ok, _, err) = mariadb(&g, &["test", "-e", "SELECT * FROM missing_table"], "");
    assert!(!ok);
    assert!(err.contains("ERROR 1146 (42S02)"), "{err}");
}

#[test]
fn mariadb_cli_interactive_session() {
    let t = shared_topology();
    let table = common::unique_name("cli");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY, name VARCHAR(20))"
    ));
    t.wait_replicas_caught_up(std::time::Duration::from_secs(20));
    let g = Gantry::start(t, &[]);
    // `script` gives the client a terminal, so it runs interactively: the
    // banner query, table-name completion (COM_FIELD_LIST) and the prompt.
    let cmd = format!("mariadb -h127.0.0.1 -P{} -uapp -papp_pw test", g.port);
    let input = format!(
        "INSERT INTO {table} VALUES (1, 'alice');\nBEGIN;\nSELECT name FROM {table} WHERE id = 1;\nSELECT @@port;\nCOMMIT;\nquit\n"
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Welcome to the MariaDB monitor"), "{text}");
    assert!(
        text.contains("-gantry"),
        "server version shows the proxy: {text}"
    );
    assert!(text.contains("Query OK, 1 row affected"), "{text}");
    assert!(
        text.contains("| alice |"),
        "read back inside the transaction: {text}"
    );
    assert!(
        text.contains(&format!("|  {} |", t.primary.port)),
        "the read inside BEGIN ran on the primary: {text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    t.primary.sql(&format!("DROP TABLE test.{table}"));
}

fn sysbench(port: u16, args: &[&str]) -> String {
    common::sysbench(port, 10_000, args)
}

/// "queries: N (x per sec.)" and "ignored errors: N" from sysbench's report.
fn report_number(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in sysbench output:\n{report}"))
}

#[test]
fn sysbench_runs_through_gantry_without_errors() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    // prepare through Gantry too: DDL, bulk INSERTs and CREATE INDEX.
    sysbench(g.port, &["oltp_read_write", "cleanup"]);
    sysbench(g.port, &["oltp_read_write", "prepare"]);
    t.wait_replicas_caught_up(std::time::Duration::from_secs(30));
    // oltp_read_write with one thread: with several, InnoDB deadlocks
    // between sysbench's own transactions (direct connections too) show up
    // as "ignored errors", which would hide errors of Gantry's.
    for (workload, threads) in [
        ("oltp_read_write", "--threads=1"),
        ("oltp_point_select", "--threads=4"),
    ] {
        let report = sysbench(
            g.port,
            &[workload, "run", threads, "--time=4", "--db-ps-mode=disable"],
        );
        assert_eq!(
            report_number(&report, "ignored errors:"),
            0,
            "{workload}:\n{report}"
        );
        assert!(!report.contains("FATAL"), "{workload}:\n{report}");
        assert!(
            report_number(&report, "queries:") > 500,
            "{workload}:\n{report}"
        );
    }

    // Server-side prepared statements (--db-ps-mode=auto): no errors, and
    // the reads outside transactions are served by the replicas.
    let report = sysbench(
        g.port,
        &[
            "oltp_read_write",
            "run",
            "--threads=1",
            "--time=4",
            "--db-ps-mode=auto",
        ],
    );
    assert_eq!(report_number(&report, "ignored errors:"), 0, "{report}");
    assert!(!report.contains("FATAL"), "{report}");
    let executes = |s: &common::Server| -> u64 {
        s.sql(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'COM_STMT_EXECUTE'",
        )
        .parse()
        .unwrap()
    };
    let before: Vec<u64> = t.replicas.iter().map(executes).collect();
    // (oltp_read_write's reads run inside BEGIN…COMMIT, which belongs on the
    // primary; --skip-trx=on takes the transactions away.)
    let report = sysbench(
        g.port,
        &[
            "oltp_read_only",
            "run",
            "--threads=4",
            "--time=4",
            "--db-ps-mode=auto",
            "--skip-trx=on",
        ],
    );
    assert_eq!(report_number(&report, "ignored errors:"), 0, "{report}");
    let reads = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("read:"))
        .and_then(|r| r.trim().parse::<u64>().ok())
        .expect("sysbench reports its reads");
    let after: Vec<u64> = t.replicas.iter().map(executes).collect();
    let on_replicas: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    assert!(reads > 500, "{report}");
    assert!(
        on_replicas >= reads,
        "prepared reads ran on replicas: {on_replicas} executes there for {reads} reads"
    );
    for (r, (a, b)) in t.replicas.iter().zip(after.iter().zip(&before)) {
        assert!(a > b, "{} served prepared reads", r.name);
    }
    sysbench(g.port, &["oltp_read_write", "cleanup"]);
}
