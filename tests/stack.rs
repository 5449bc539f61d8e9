//! The Gantry of the compose stack: `docker-compose.test.yml`'s `gantry`
//! service, with that file's options. Under `scripts/compose-test.sh` it is
//! the container; in the local topology a Gantry started here with the same
//! options, read from the file.

mod common;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::collections::BTreeSet;
use std::time::Duration;

use common::{mysql_url, shared_topology, Gantry, Topology};

/// Where the stack's Gantry listens; `_local` keeps a local one running.
struct Stack {
    port: u16,
    admin_port: u16,
    _local: Option<Gantry>,
}

fn stack(topo: &Topology) -> Stack {
    if common::compose::selected() {
        // The compose file's variables, and its defaults.
        let port = |var: &str, default: u16| -> u16 {
            std::env::var(var).map_or(default, |v| {
                v.parse().unwrap_or_else(|e| panic!("{var}: {e}"))
            })
        };
        return Stack {
            port: port("GANTRY_PORT", 1234),
            admin_port: port("GANTRY_ADMIN_PORT", 2345),
            _local: None,
        };
    }
    let vars = [
        ("GANTRY_PRIMARY_PORT", topo.primary.port),
        ("GANTRY_REPLICA1_PORT", topo.replicas[0].port),
        ("GANTRY_REPLICA2_PORT", topo.replicas[1].port),
        ("GANTRY_PORT", 0),
        ("GANTRY_ADMIN_PORT", 0),
    ];
    // The listening addresses come from the harness (fresh ports).
    let args: Vec<String> = compose_file_options(&vars)
        .into_iter()
        .filter(|o| !o.starts_with("--proxy-address=") && !o.starts_with("--admin-address="))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let g = Gantry::start_with_args(&args);
    Stack {
        port: g.port,
        admin_port: g.admin_port,
        _local: Some(g),
    }
}

/// The `gantry` service's `command:` list from `docker-compose.test.yml`,
/// with `${VAR:-default}` replaced from `vars`.
fn compose_file_options(vars: &[(&str, u16)]) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.test.yml");
    let text = std::fs::read_to_string(path).expect("docker-compose.test.yml");
    gantry_block(&text)
        .lines()
        .skip(1) // `command:`
        .map_while(|l| l.strip_prefix("      - "))
        .map(|option| {
            let mut option = option.to_string();
            while let Some(start) = option.find("${") {
                let end = start + option[start..].find('}').expect("a closing brace");
                let name = option[start + 2..end].split(":-").next().unwrap_or("");
                let value = vars
                    .iter()
                    .find(|(var, _)| *var == name)
                    .unwrap_or_else(|| panic!("no value for {name}"))
                    .1;
                option.replace_range(start..=end, &value.to_string());
            }
            option
        })
        .collect()
}

async fn connect(port: u16) -> Conn {
    let opts = Opts::from_url(&mysql_url("app", "app_pw", port, "test")).expect("valid url");
    Conn::new(opts)
        .await
        .expect("connect to the stack's gantry")
}

/// `SELECT * FROM backends` on the admin port, as (address, state, type).
async fn backends(admin_port: u16) -> Vec<(String, String, String)> {
    let url = mysql_url("admin", "admin_pw", admin_port, "");
    let mut admin = Conn::new(Opts::from_url(&url).unwrap())
        .await
        .expect("admin port");
    let rows: Vec<mysql_async::Row> = admin.query("SELECT * FROM backends").await.unwrap();
    rows.into_iter()
        .map(|r| {
            let text = |i: usize| r.get::<String, _>(i).unwrap_or_default();
            (text(1), text(2), text(3))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_splits_reads_and_writes_over_both_protocols() {
    let topo = shared_topology();
    let s = stack(topo);
    let primary = topo.primary.addr();
    let replicas: BTreeSet<String> = topo.replicas.iter().map(|r| r.addr()).collect();

    common::wait_until(Duration::from_secs(20), "all three backends up", || {
        let rt = tokio::runtime::Handle::current();
        let rows = tokio::task::block_in_place(|| rt.block_on(backends(s.admin_port)));
        rows.len() == 3 && rows.iter().all(|(_, state, _)| state == "up")
    });
    let rows = backends(s.admin_port).await;
    let rw: Vec<&str> = rows
        .iter()
        .filter(|r| r.2 == "rw")
        .map(|r| r.0.as_str())
        .collect();
    assert_eq!(
        rw,
        [primary.as_str()],
        "the primary is the read/write backend: {rows:?}"
    );

    let table = common::unique_name("stack");
    let mut c = connect(s.port).await;
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10))"
    ))
    .await
    .unwrap();
    // Text and binary writes reach the primary.
    c.query_drop(format!("INSERT INTO {table} VALUES (1, 'text')"))
        .await
        .unwrap();
    c.exec_drop(format!("INSERT INTO {table} VALUES (?, ?)"), (2, "binary"))
        .await
        .unwrap();
    assert_eq!(
        topo.primary.sql(&format!(
            "SELECT GROUP_CONCAT(v ORDER BY id) FROM test.{table}"
        )),
        "text,binary"
    );

    // Plain reads, text and prepared, go to the replicas only.
    topo.wait_replicas_caught_up(Duration::from_secs(20));
    let mut fresh = connect(s.port).await;
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let text: Option<u16> = fresh.query_first("SELECT @@port").await.unwrap();
        let binary: Option<u16> = fresh.exec_first("SELECT @@port", ()).await.unwrap();
        for port in [text, binary] {
            seen.insert(format!("127.0.0.1:{}", port.expect("a row")));
        }
    }
    assert_eq!(seen, replicas, "reads are spread over both replicas");

    // Inside a transaction everything stays on the primary.
    c.query_drop("BEGIN").await.unwrap();
    let port: Option<u16> = c.exec_first("SELECT @@port", ()).await.unwrap();
    assert_eq!(port, Some(topo.primary.port));
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[test]
fn the_stack_answers_libmariadb_with_server_errors() {
    let topo = shared_topology();
    let s = stack(topo);
    let out = std::process::Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{}", s.port)])
        .args([
            "-uapp",
            "-papp_pw",
            "test",
            "-e",
            "SELECT * FROM no_such_table_here",
        ])
        .output()
        .expect("the mariadb client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ERROR 1146 (42S02)"),
        "the replica's own error comes back: {stderr}"
    );
}

/// The gantry service's options and health check, as the file spells them.
fn gantry_block(text: &str) -> &str {
    let service = text
        .split("\n  gantry:\n")
        .nth(1)
        .expect("a gantry service");
    let start = service.find("    command:\n").expect("its command");
    let end = service.find("\nvolumes:\n").unwrap_or(service.len());
    &service[start..end]
}

/// The servers' health check, with the client's name made the same.
fn server_health(text: &str) -> String {
    text.lines()
        .find(|l| l.contains("\"CMD-SHELL\""))
        .expect("a server health check")
        .replace("\"mysql ", "\"mariadb ")
}

#[test]
fn the_compose_files_agree_and_are_valid() {
    let read = |name: &str| {
        let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
        (
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
            path,
        )
    };
    let (test_file, _) = read("docker-compose.test.yml");
    for user_file in ["docker-compose.yml", "docker-compose.mariadb.yml"] {
        let (text, path) = read(user_file);
        assert_eq!(
            gantry_block(&text),
            gantry_block(&test_file),
            "{user_file} gives Gantry the test file's options and health check"
        );
        assert_eq!(
            server_health(&text),
            server_health(&test_file),
            "{user_file}"
        );
        // Compose checks the file against the compose specification's
        // schema, interpolation included.
        let out = common::compose::compose_command()
            .args(["-f", &path, "config", "-q"])
            .output()
            .expect("docker-compose is installed (scripts/install-deps.sh)");
        assert!(
            out.status.success(),
            "{user_file} is invalid: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
