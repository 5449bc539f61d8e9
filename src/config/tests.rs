use super::*;

use std::fs;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

const EXAMPLE: &str = include_str!("../../conf/gantry.toml");
const README: &str = include_str!("../../conf/README.md");

/// The command line from the brief: everything required, no file.
const CLI: &[&str] = &[
    "gantry",
    "--proxy-address",
    "127.0.0.1:1234",
    "--admin-address",
    "127.0.0.1:2345",
    "--admin-username",
    "admin",
    "--admin-password",
    "admin_pw",
    "--proxy-backend-addresses",
    "127.0.0.1:3306",
    "--proxy-read-only-backend-addresses",
    "127.0.0.1:3307@2,127.0.0.1:3308",
    "--pwds",
    "app:app_pw",
];

const MINIMAL: &str = r#"
admin-password = "admin_pw"
proxy-backend-addresses = ["127.0.0.1:3306"]
pwds = ["app:app_pw"]
"#;

/// A fresh scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gantry-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `contents` to `gantry.toml` in a fresh directory.
fn write_file(contents: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let path = dir.join("gantry.toml");
    fs::write(&path, contents).unwrap();
    (dir, path)
}

/// Loads from file contents (no command line).
fn from_str(contents: &str) -> Result<Config, ConfigError> {
    build(&file::parse(contents, Path::new("test.toml"))?, None)
}

/// `MINIMAL` with the options in `extra` added or replaced.
fn with(extra: &str) -> Result<Config, ConfigError> {
    let mut layer = file::parse(MINIMAL, Path::new("minimal.toml")).unwrap();
    layer.extend(file::parse(extra, Path::new("test.toml"))?);
    build(&layer, None)
}

fn err(extra: &str) -> String {
    match with(extra) {
        Ok(c) => panic!("expected an error for {extra:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn args(extra: &[&str]) -> Vec<String> {
    CLI.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn addr(host: &str, port: u16, weight: u32) -> BackendAddr {
    BackendAddr {
        host: host.to_string(),
        port,
        weight,
    }
}

#[test]
fn cli_only() {
    let c = load_from(CLI).unwrap();
    assert_eq!(c.config_path, None);
    assert_eq!(c.proxy_address, "127.0.0.1:1234");
    assert_eq!(c.admin_address, "127.0.0.1:2345");
    assert_eq!(c.admin_username, "admin");
    assert_eq!(c.admin_password, "admin_pw");
    assert_eq!(c.proxy_backend_addresses, vec![addr("127.0.0.1", 3306, 1)]);
    assert_eq!(
        c.proxy_read_only_backend_addresses,
        vec![addr("127.0.0.1", 3307, 2), addr("127.0.0.1", 3308, 1)]
    );
    assert_eq!(c.pwds, vec![UserPassword::new("app", "app_pw")]);
    // Defaults.
    assert!(c.client_ips.is_empty());
    assert!((1..=1024).contains(&c.event_threads));
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.pool_min_idle, 0);
    assert_eq!(c.pool_max_size, 256);
    assert_eq!(c.backend_max_connections, 1000);
    assert_eq!(c.connect_timeout_ms, 3000);
    assert_eq!(c.acquire_timeout_ms, 5000);
    assert_eq!(c.idle_release_ms, 1000);
    assert_eq!(c.max_client_connections, 20000);
    assert_eq!(c.monitor_username, "app");
    assert_eq!(c.monitor_password, "app_pw");
    assert_eq!(c.health_interval_ms, 500);
    assert_eq!(c.probe_timeout_ms, 1000);
    assert_eq!(c.down_after_milliseconds, 1500);
    assert_eq!(c.max_replica_lag, 10);
    assert!(c.auto_discover_replicas);
    assert_eq!(c.failover, FailoverMode::Follow);
    assert_eq!(c.notification_script, None);
    assert_eq!(c.consistency, Consistency::ReadYourWrites);
    assert_eq!(c.causal_read_timeout_ms, 1000);
    assert_eq!(c.metrics_address, None);
    assert_eq!(c.server_version, None);
}

#[test]
fn cli_every_option() {
    let c = load_from(args(&[
        "--client-ips",
        "127.0.0.1,192.168.1.",
        "--event-threads",
        "3",
        "--log-level",
        "debug",
        "--pool-min-idle=2",
        "--pool-max-size",
        "10",
        "--connect-timeout-ms",
        "100",
        "--acquire-timeout-ms",
        "200",
        "--idle-release-ms",
        "0",
        "--max-client-connections",
        "50",
        "--monitor-username",
        "monitor",
        "--monitor-password",
        "-starts-with-dash",
        "--health-interval-ms",
        "500",
        "--probe-timeout-ms",
        "400",
        "--down-after-milliseconds",
        "1500",
        "--max-replica-lag",
        "0",
        "--auto-discover-replicas",
        "false",
        "--auto-failover",
        "--notification-script",
        "/usr/local/bin/notify",
        "--consistency",
        "read-your-writes",
        "--causal-read-timeout-ms",
        "250",
        "--metrics-address",
        "127.0.0.1:9104",
        "--server-version",
        "8.0.36-gantry",
    ]))
    .unwrap();
    assert_eq!(c.client_ips, vec!["127.0.0.1", "192.168.1."]);
    assert_eq!(c.event_threads, 3);
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!((c.pool_min_idle, c.pool_max_size), (2, 10));
    assert_eq!(c.connect_timeout_ms, 100);
    assert_eq!(c.acquire_timeout_ms, 200);
    assert_eq!(c.idle_release_ms, 0);
    assert_eq!(c.max_client_connections, 50);
    assert_eq!(c.monitor_username, "monitor");
    assert_eq!(c.monitor_password, "-starts-with-dash");
    assert_eq!(c.health_interval_ms, 500);
    assert_eq!(c.probe_timeout_ms, 400);
    assert_eq!(c.down_after_milliseconds, 1500);
    assert_eq!(c.max_replica_lag, 0);
    assert!(!c.auto_discover_replicas);
    assert_eq!(c.failover, FailoverMode::Auto);
    assert_eq!(
        c.notification_script,
        Some(PathBuf::from("/usr/local/bin/notify"))
    );
    assert_eq!(c.consistency, Consistency::ReadYourWrites);
    assert_eq!(c.causal_read_timeout_ms, 250);
    assert_eq!(c.metrics_address.as_deref(), Some("127.0.0.1:9104"));
    assert_eq!(c.server_version.as_deref(), Some("8.0.36-gantry"));
}

#[test]
fn cli_repeated_list_flags_append_and_scalars_last_wins() {
    let c = load_from(args(&[
        "--pwds",
        "ro:ro_pw,x:y",
        "--pwds",
        "z:w",
        "--log-level",
        "warn",
        "--log-level",
        "error",
    ]))
    .unwrap();
    let users: Vec<_> = c.pwds.iter().map(|p| p.user.as_str()).collect();
    assert_eq!(users, ["app", "ro", "x", "z"]);
    assert_eq!(c.log_level, LogLevel::Error);
}

#[test]
fn example_file_loads() {
    // conf/gantry.toml must stay loadable and contain every option.
    let table: toml::Table = EXAMPLE.parse().unwrap();
    for o in OPTIONS {
        assert!(
            table.contains_key(o.key),
            "conf/gantry.toml lacks {}",
            o.key
        );
    }
    let c = from_str(EXAMPLE).unwrap();
    assert_eq!(c.proxy_backend_addresses, vec![addr("127.0.0.1", 13306, 1)]);
    assert_eq!(
        c.proxy_read_only_backend_addresses,
        vec![addr("127.0.0.1", 13307, 1), addr("127.0.0.1", 13308, 1)]
    );
    assert_eq!(c.pwds, vec![UserPassword::new("app", "app_pw")]);
    assert_eq!(
        (c.admin_username.as_str(), c.admin_password.as_str()),
        ("admin", "admin_pw")
    );
    assert_eq!(
        (c.monitor_username.as_str(), c.monitor_password.as_str()),
        ("monitor", "monitor_pw")
    );
    // Each option has a one-line comment right above it.
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for o in OPTIONS {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("{} =", o.key)))
            .unwrap();
        assert!(lines[i - 1].starts_with("# "), "{} has no comment", o.key);
    }
}

#[test]
fn readme_documents_every_option_with_its_default() {
    for o in OPTIONS {
        let prefix = format!("| `{}` | ", o.key);
        let row = README
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("conf/README.md has no row for {}", o.key));
        let default = row[prefix.len()..].split(" | ").next().unwrap();
        assert_eq!(
            default.replace('`', ""),
            o.default,
            "README default of {}",
            o.key
        );
    }
    let rows = README.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, OPTIONS.len(), "README has rows for unknown options");
}

#[test]
fn every_option_is_a_cli_flag_and_in_entries() {
    let cmd = cli::command();
    for o in OPTIONS {
        assert!(
            cmd.get_arguments().any(|a| a.get_long() == Some(o.key)),
            "--{} missing",
            o.key
        );
    }
    let c = load_from(CLI).unwrap();
    let keys: Vec<_> = c.entries().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, option_names().collect::<Vec<_>>());
    cmd.debug_assert();
}

#[test]
fn file_only() {
    let (_dir, path) = write_file(EXAMPLE);
    let c = load_file_only(&path).unwrap();
    assert_eq!(c.config_path.as_deref(), Some(path.as_path()));
    assert_eq!(c.proxy_backend_addresses[0].port, 13306);
    assert_eq!(c.metrics_address.as_deref(), Some("127.0.0.1:9104"));
    assert_eq!(c.event_threads, 4);

    let via_cli = load_from(["gantry", "--config", path.to_str().unwrap()]).unwrap();
    assert_eq!(via_cli, c);
    let short = load_from(["gantry", "-c", path.to_str().unwrap()]).unwrap();
    assert_eq!(short, c);
}

#[test]
fn cli_overrides_file() {
    let (_dir, path) = write_file(EXAMPLE);
    let c = load_from([
        "gantry",
        "--config",
        path.to_str().unwrap(),
        "--proxy-address",
        "0.0.0.0:4000",
        "--proxy-read-only-backend-addresses",
        "db9:3310@5",
        "--auto-failover",
        "true",
        "--event-threads",
        "7",
    ])
    .unwrap();
    assert_eq!(c.proxy_address, "0.0.0.0:4000");
    // A list on the command line replaces the file's list.
    assert_eq!(
        c.proxy_read_only_backend_addresses,
        vec![addr("db9", 3310, 5)]
    );
    assert_eq!(c.failover, FailoverMode::Auto);
    assert_eq!(c.event_threads, 7);
    // Untouched options still come from the file.
    assert_eq!(c.admin_password, "admin_pw");
    assert_eq!(c.monitor_username, "monitor");
    assert_eq!(c.proxy_backend_addresses, vec![addr("127.0.0.1", 13306, 1)]);

    // The file may lack required options that the command line supplies.
    let (_dir, path) = write_file("proxy-backend-addresses = \"127.0.0.1:3306\"\npwds = \"a:b\"\n");
    let c = load_from([
        "gantry",
        "-c",
        path.to_str().unwrap(),
        "--admin-password",
        "pw",
    ])
    .unwrap();
    assert_eq!(c.admin_password, "pw");
}

#[test]
fn comma_strings_and_arrays_are_equivalent() {
    let a = from_str(
        r#"
admin-password = "x"
proxy-backend-addresses = ["db1:3306"]
proxy-read-only-backend-addresses = ["db2:3306@3", "db3"]
pwds = ["app:app_pw", "ro:ro_pw"]
client-ips = ["127.0.0.1", "10.0.0.0/8"]
"#,
    )
    .unwrap();
    let b = from_str(
        r#"
admin-password = "x"
proxy-backend-addresses = "db1:3306"
proxy-read-only-backend-addresses = " db2:3306@3 , db3,"
pwds = "app:app_pw,ro:ro_pw"
client-ips = "127.0.0.1, 10.0.0.0/8"
"#,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.proxy_read_only_backend_addresses[1], addr("db3", 3306, 1));
    // An empty string is an empty list.
    assert!(with("client-ips = \"\"").unwrap().client_ips.is_empty());
}

#[test]
fn ipv6_and_hostnames() {
    let c = with(
        r#"proxy-read-only-backend-addresses = ["[::1]:3307", "[fe80::1]@4", "replica-1.db.internal:3308", "db_2", "localhost."]"#,
    )
    .unwrap();
    let ro = &c.proxy_read_only_backend_addresses;
    assert_eq!(ro[0], addr("::1", 3307, 1));
    assert_eq!(ro[1], addr("fe80::1", 3306, 4));
    assert_eq!(ro[2], addr("replica-1.db.internal", 3308, 1));
    assert_eq!(ro[3], addr("db_2", 3306, 1));
    assert_eq!(ro[0].to_string(), "[::1]:3307");
    assert_eq!(ro[1].to_string(), "[fe80::1]:3306");
    assert_eq!(ro[1].to_config_string(), "[fe80::1]:3306@4");
    assert_eq!(ro[2].to_string(), "replica-1.db.internal:3308");

    let c = with("proxy-address = \"[::1]:1234\"\nadmin-address = \"[::]:2345\"").unwrap();
    assert_eq!(c.proxy_address, "[::1]:1234");
}

#[test]
fn backend_addr_parse() {
    assert_eq!(
        BackendAddr::parse("127.0.0.1:3307@2"),
        Ok(addr("127.0.0.1", 3307, 2))
    );
    assert_eq!(BackendAddr::parse("db"), Ok(addr("db", 3306, 1)));
    assert_eq!(BackendAddr::parse("db@1000"), Ok(addr("db", 3306, 1000)));
    assert_eq!("[::1]".parse::<BackendAddr>(), Ok(addr("::1", 3306, 1)));
    let e = |s: &str| BackendAddr::parse(s).unwrap_err();
    assert_eq!(e("127.0.0.1:99999"), "port out of range");
    assert_eq!(e("127.0.0.1:0"), "port out of range");
    assert_eq!(e("127.0.0.1:"), "missing port");
    assert_eq!(e("127.0.0.1:x"), "port is not a number");
    assert_eq!(e("db:3306@0"), "weight out of range 1..=1000");
    assert_eq!(e("db:3306@1001"), "weight out of range 1..=1000");
    assert_eq!(e("db:3306@"), "weight is not a number");
    assert_eq!(e("db:3306@-1"), "weight is not a number");
    assert_eq!(
        e("::1"),
        "IPv6 address must be in brackets, e.g. [::1]:3306"
    );
    assert_eq!(e("[::1"), "missing ']' after IPv6 address");
    assert_eq!(e("[zz]:1"), "invalid IPv6 address");
    assert_eq!(e("[::1]3306"), "unexpected text after ']'");
    assert_eq!(e("256.1.1.1:3306"), "invalid IPv4 address");
    assert_eq!(e(":3306"), "empty host");
    assert_eq!(e("bad host:3306"), "invalid host name");
    assert_eq!(e("-db:3306"), "invalid host name");
    assert_eq!(e(""), "empty");
    assert_eq!(addr("db", 1, 1).to_config_string(), "db:1");
    assert_eq!(addr("db", 1, 7).to_config_string(), "db:1@7");
}

#[test]
fn weights() {
    let c = with(r#"proxy-read-only-backend-addresses = ["a:1@1", "b:2@1000", "c:3"]"#).unwrap();
    let w: Vec<u32> = c
        .proxy_read_only_backend_addresses
        .iter()
        .map(|b| b.weight)
        .collect();
    assert_eq!(w, [1, 1000, 1]);
    assert_eq!(
        err(r#"proxy-read-only-backend-addresses = ["a:1@1001"]"#),
        r#"config: proxy-read-only-backend-addresses: "a:1@1001" is not host:port[@weight] (weight out of range 1..=1000)"#
    );
    assert_eq!(
        load_from(args(&["--proxy-backend-addresses", "127.0.0.1:3306@2"]))
            .unwrap_err()
            .to_string(),
        r#"config: proxy-backend-addresses: "127.0.0.1:3306@2" is not host:port (a weight is only allowed for read-only backends)"#
    );
}

#[test]
fn password_with_colons() {
    let c = load_from(args(&["--pwds", "u:p:a:ss", "--admin-password", "a:b"])).unwrap();
    assert_eq!(c.pwds[1], UserPassword::new("u", "p:a:ss"));
    assert_eq!(c.admin_password, "a:b");
    // Arrays keep passwords verbatim (commas, spaces); empty passwords are allowed.
    let c = with("pwds = [\"app:a,b \", \"empty:\"]").unwrap();
    assert_eq!(c.pwds[0].password, "a,b ");
    assert_eq!(c.pwds[1].password, "");
}

#[test]
fn missing_required_keys() {
    let e = |args: &[&str]| load_from(args).unwrap_err().to_string();
    let without = |flag: &str| -> Vec<&str> {
        let i = CLI.iter().position(|a| *a == flag).unwrap();
        CLI.iter()
            .enumerate()
            .filter(|&(j, _)| j != i && j != i + 1)
            .map(|(_, a)| *a)
            .collect()
    };
    assert_eq!(
        e(&without("--admin-password")),
        "config: admin-password: required but not set (the admin interface password; set admin-password in the config file or --admin-password)"
    );
    assert_eq!(
        e(&without("--proxy-backend-addresses")),
        "config: proxy-backend-addresses: required but not set (at least one primary host:port; set proxy-backend-addresses in the config file or --proxy-backend-addresses)"
    );
    assert_eq!(
        e(&without("--pwds")),
        "config: pwds: required but not set (at least one user:password; set pwds in the config file or --pwds)"
    );
    // Nothing at all: the first missing option is reported.
    assert!(e(&["gantry"]).starts_with("config: admin-password: required"));
    assert_eq!(
        err("proxy-backend-addresses = []").to_string(),
        "config: proxy-backend-addresses: at least one primary host:port is required"
    );
    assert_eq!(
        err("pwds = \"\""),
        "config: pwds: at least one user:password is required"
    );
    assert_eq!(
        err("admin-password = \"\""),
        "config: admin-password: must not be empty"
    );
}

#[test]
fn unknown_keys_and_flags() {
    assert_eq!(
        err("proxy-adress = \"127.0.0.1:1\""),
        "config: proxy-adress: unknown option in test.toml (did you mean proxy-address?)"
    );
    assert_eq!(
        err("log_level = \"info\""),
        "config: log_level: unknown option in test.toml (did you mean log-level?)"
    );
    assert_eq!(
        err("frobnicate = 1"),
        "config: frobnicate: unknown option in test.toml"
    );
    assert_eq!(
        err("[pool]\nmax = 1"),
        "config: pool: unknown option in test.toml"
    );

    let e = load_from(args(&["--proxy-adress", "127.0.0.1:1"])).unwrap_err();
    assert!(matches!(e, ConfigError::Cli(_)));
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.starts_with("config: unexpected argument '--proxy-adress'"),
        "{msg}"
    );
    assert!(msg.contains("--proxy-address"), "{msg}");
    assert_eq!(e.exit_code(), 2);

    let msg = load_from(["gantry", "--proxy-address"])
        .unwrap_err()
        .to_string();
    assert!(
        !msg.contains('\n') && msg.contains("--proxy-address"),
        "{msg}"
    );
}

#[test]
fn help_and_version() {
    let e = load_from(["gantry", "--help"]).unwrap_err();
    assert!(matches!(e, ConfigError::Help(_)));
    assert_eq!(e.exit_code(), 0);
    let text = e.to_string();
    assert!(
        text.contains("--proxy-read-only-backend-addresses"),
        "{text}"
    );
    assert!(text.contains("[default: 127.0.0.1:1234]"), "{text}");
    let e = load_from(["gantry", "--version"]).unwrap_err();
    assert!(matches!(e, ConfigError::Help(_)));
    assert!(e.to_string().contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn exact_error_messages() {
    let cases: &[(&str, &str)] = &[
        (
            r#"proxy-read-only-backend-addresses = "127.0.0.1:99999""#,
            r#"config: proxy-read-only-backend-addresses: "127.0.0.1:99999" is not host:port[@weight] (port out of range)"#,
        ),
        (
            r#"proxy-backend-addresses = ["127.0.0.1:0"]"#,
            r#"config: proxy-backend-addresses: "127.0.0.1:0" is not host:port (port out of range)"#,
        ),
        (
            r#"proxy-read-only-backend-addresses = ["db:1", "DB:1"]"#,
            r#"config: proxy-read-only-backend-addresses: "DB:1" is listed twice"#,
        ),
        (
            r#"proxy-address = "localhost:1234""#,
            r#"config: proxy-address: "localhost:1234" is not ip:port"#,
        ),
        (
            r#"proxy-address = "127.0.0.1:70000""#,
            r#"config: proxy-address: "127.0.0.1:70000" is not ip:port"#,
        ),
        (
            r#"admin-address = "127.0.0.1:0""#,
            r#"config: admin-address: "127.0.0.1:0" is not ip:port (port out of range)"#,
        ),
        (
            r#"admin-address = "127.0.0.1:1234""#,
            r#"config: admin-address: "127.0.0.1:1234" is the same as proxy-address"#,
        ),
        (
            r#"metrics-address = "127.0.0.1:2345""#,
            r#"config: metrics-address: "127.0.0.1:2345" is the same as admin-address"#,
        ),
        (
            r#"log-level = "verbose""#,
            r#"config: log-level: "verbose" is not one of trace|debug|info|warn|error"#,
        ),
        (
            r#"consistency = "strong""#,
            r#"config: consistency: "strong" is not one of eventual|read-your-writes|global"#,
        ),
        (
            "event-threads = 0",
            "config: event-threads: 0 is out of range 1..=1024",
        ),
        (
            "event-threads = 2000",
            "config: event-threads: 2000 is out of range 1..=1024",
        ),
        (
            "pool-max-size = -1",
            "config: pool-max-size: -1 is out of range 1..=100000",
        ),
        (
            "backend-max-connections = 4",
            "config: backend-max-connections: 4 is out of range 8..=1000000",
        ),
        (
            r#"event-threads = "four""#,
            r#"config: event-threads: "four" is not an integer"#,
        ),
        (
            "event-threads = 1.5",
            "config: event-threads: expected an integer, found a float",
        ),
        (
            r#"max-replica-lag = "99999999999999999999""#,
            "config: max-replica-lag: 99999999999999999999 is out of range 0..=86400",
        ),
        (
            "pool-min-idle = 300",
            "config: pool-min-idle: 300 is larger than pool-max-size (256)",
        ),
        (
            r#"auto-failover = "maybe""#,
            r#"config: auto-failover: "maybe" is not a boolean (true or false)"#,
        ),
        (
            "auto-failover = 1",
            "config: auto-failover: expected a boolean, found an integer",
        ),
        (
            "proxy-address = 1234",
            "config: proxy-address: expected a string, found an integer",
        ),
        (
            "client-ips = [1, 2]",
            "config: client-ips: expected an array of strings, found an array with non-string elements",
        ),
        (
            r#"client-ips = ["192.168.1.300"]"#,
            r#"config: client-ips: "192.168.1.300" is not an IP address, IPv4 prefix or CIDR block"#,
        ),
        (
            r#"pwds = ["app:x", "nopassword"]"#,
            "config: pwds: entry #2 is not user:password (missing ':' between user and password)",
        ),
        (
            r#"pwds = [":secret"]"#,
            "config: pwds: entry #1 is not user:password (empty user name)",
        ),
        (
            r#"pwds = ["app:x", "app:y"]"#,
            r#"config: pwds: user "app" is listed twice"#,
        ),
        (
            r#"monitor-password = "m""#,
            "config: monitor-username: required when monitor-password is set",
        ),
        (
            r#"monitor-username = "monitor""#,
            r#"config: monitor-password: required because monitor-username "monitor" is not in pwds"#,
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(&err(extra), want, "for {extra}");
    }
    // The same validation applies to command-line values.
    assert_eq!(
        load_from(args(&["--event-threads", "0"]))
            .unwrap_err()
            .to_string(),
        "config: event-threads: 0 is out of range 1..=1024"
    );
    assert_eq!(
        load_from(args(&["--log-level", "loud"]))
            .unwrap_err()
            .to_string(),
        r#"config: log-level: "loud" is not one of trace|debug|info|warn|error"#
    );
}

#[test]
fn file_errors_are_one_line() {
    let e = from_str("proxy-address = \n").unwrap_err().to_string();
    assert!(
        e.starts_with("config: test.toml: TOML syntax error at line 1, column"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = from_str("a = 1\na = 2\n").unwrap_err().to_string();
    assert!(
        e.starts_with("config: test.toml: TOML syntax error at line 2"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");

    let dir = TempDir::new();
    let missing = dir.join("missing.toml");
    let e = load_from(["gantry", "--config", missing.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("config: {}: cannot read: ", missing.display())),
        "{e}"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn values_are_lenient_where_harmless() {
    let c = with(
        r#"
log-level = "WARN"
consistency = "Global"
event-threads = "8"
auto-discover-replicas = "off"
metrics-address = ""
server-version = " 5.7.99-gantry "
notification-script = ""
"#,
    )
    .unwrap();
    assert_eq!(c.log_level, LogLevel::Warn);
    assert_eq!(c.consistency, Consistency::Global);
    assert_eq!(c.event_threads, 8);
    assert!(!c.auto_discover_replicas);
    assert_eq!(c.metrics_address, None);
    assert_eq!(c.server_version.as_deref(), Some("5.7.99-gantry"));
    assert_eq!(c.notification_script, None);
    // monitor-username alone takes its password from pwds.
    let c = with(
        r#"pwds = ["app:app_pw", "mon:mon_pw"]
monitor-username = "mon""#,
    )
    .unwrap();
    assert_eq!(c.monitor_password, "mon_pw");
}

#[test]
fn debug_never_shows_passwords() {
    let c = load_from(args(&[
        "--pwds",
        "ro:S3cret-RO,x:S3cret:X",
        "--admin-password",
        "S3cret-ADMIN",
        "--monitor-username",
        "mon",
        "--monitor-password",
        "S3cret-MON",
    ]))
    .unwrap();
    for text in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", c.pwds),
        format!("{:?}", c.entries()),
    ] {
        assert!(!text.contains("S3cret"), "{text}");
        assert!(!text.contains("app_pw"), "{text}");
        assert!(!text.contains("admin_pw"), "{text}");
    }
    let dbg = format!("{c:?}");
    assert!(dbg.contains("admin_password: \"<redacted>\""), "{dbg}");
    assert!(dbg.contains("user: \"ro\""), "{dbg}");
    assert_eq!(
        format!("{:?}", UserPassword::new("u", "p")),
        r#"UserPassword { user: "u", password: "<redacted>" }"#
    );
    // Errors about pwds never echo the entry.
    let e = with(r#"pwds = ["S3cretWithoutColon"]"#)
        .unwrap_err()
        .to_string();
    assert!(!e.contains("S3cret"), "{e}");
}

#[test]
fn entries_render_values() {
    let c = load_from(CLI).unwrap();
    let map: BTreeMap<_, _> = c.entries().into_iter().collect();
    assert_eq!(
        map["proxy-read-only-backend-addresses"],
        "127.0.0.1:3307@2,127.0.0.1:3308"
    );
    assert_eq!(map["pwds"], "app:******");
    assert_eq!(map["admin-password"], "******");
    assert_eq!(map["metrics-address"], "");
}

#[test]
fn client_ip_matching() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(client_ip_allowed(&[], ip("8.8.8.8")));
    let allowed = list(&[
        "127.0.0.1",
        "192.168.1.",
        "10.1",
        "172.16.0.0/12",
        "fd00::/8",
        "::1",
    ]);
    for ok in [
        "127.0.0.1",
        "192.168.1.77",
        "10.1.2.3",
        "172.31.255.1",
        "fd12::5",
        "::1",
        "::ffff:192.168.1.9",
    ] {
        assert!(client_ip_allowed(&allowed, ip(ok)), "{ok}");
    }
    for no in [
        "127.0.0.2",
        "192.168.10.1",
        "10.10.0.1",
        "172.32.0.1",
        "fe80::1",
        "8.8.8.8",
    ] {
        assert!(!client_ip_allowed(&allowed, ip(no)), "{no}");
    }
    assert!(client_ip_matches("0.0.0.0/0", ip("1.2.3.4")));
    assert!(!client_ip_matches("not-an-ip", ip("1.2.3.4")));
    for bad in ["1.2.3.4.5", "1..2", "300.", "10.0.0.0/33", "host", ""] {
        assert!(addr::validate_client_ip(bad).is_err(), "{bad}");
    }
}

#[test]
fn save_runtime_keeps_comments_and_other_keys() {
    let original = format!(
        "# top comment\n{}\n# replicas comment\nproxy-read-only-backend-addresses = \"127.0.0.1:13307\" # trailing\n",
        EXAMPLE.replace(
            "proxy-read-only-backend-addresses = [\"127.0.0.1:13307\", \"127.0.0.1:13308\"]\n",
            ""
        )
    );
    let (_dir, path) = write_file(&original);
    let rw = [BackendAddr::new("127.0.0.1", 13306)];
    let ro = [addr("127.0.0.1", 13307, 3), addr("::1", 13308, 1)];
    let ips = ["127.0.0.1".to_string(), "10.0.0.0/8".to_string()];
    let pwds = [
        UserPassword::new("app", "app_pw"),
        UserPassword::new("new", "p:w,\"q\""),
    ];
    save_runtime(&path, &rw, &ro, &ips, &pwds).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# top comment\n"), "{text}");
    assert!(text.contains("# replicas comment\nproxy-read-only-backend-addresses = [\"127.0.0.1:13307@3\", \"[::1]:13308\"] # trailing\n"), "{text}");
    assert!(
        text.contains("# Worker threads, 1..=1024 (default: number of CPUs).\nevent-threads = 4\n"),
        "{text}"
    );
    assert!(
        text.contains("client-ips = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"),
        "{text}"
    );
    // Every other line of the file is unchanged.
    let changed = ["proxy-read-only-backend-addresses", "client-ips", "pwds"];
    for line in original.lines() {
        if !changed.iter().any(|k| line.starts_with(k)) {
            assert!(text.contains(line), "lost line {line:?}:\n{text}");
        }
    }
    // No temporary file is left behind.
    let dir = path.parent().unwrap();
    assert_eq!(fs::read_dir(dir).unwrap().count(), 1);

    let c = load_file_only(&path).unwrap();
    assert_eq!(c.proxy_backend_addresses, rw);
    assert_eq!(c.proxy_read_only_backend_addresses, ro);
    assert_eq!(c.client_ips, ips);
    assert_eq!(c.pwds, pwds);
    assert_eq!(c.monitor_username, "monitor");
    assert_eq!(c.event_threads, 4);

    // Saving again is stable.
    save_runtime(&path, &rw, &ro, &ips, &pwds).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn save_runtime_adds_missing_keys_and_validates() {
    let (_dir, path) = write_file("# only this\nadmin-password = \"pw\"\n");
    let rw = [BackendAddr::new("db1", 3306)];
    save_runtime(&path, &rw, &[], &[], &[UserPassword::new("a", "b")]).unwrap();
    let c = load_file_only(&path).unwrap();
    assert_eq!(c.proxy_backend_addresses, rw);
    assert!(c.proxy_read_only_backend_addresses.is_empty());
    assert!(fs::read_to_string(&path)
        .unwrap()
        .starts_with("# only this\n"));

    let before = fs::read_to_string(&path).unwrap();
    let e = save_runtime(&path, &[], &[], &[], &[UserPassword::new("a", "b")]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config: proxy-backend-addresses: refusing"),
        "{e}"
    );
    let e = save_runtime(
        &path,
        &rw,
        &[addr("db2", 3306, 0)],
        &[],
        &[UserPassword::new("a", "b")],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"config: proxy-read-only-backend-addresses: "db2:3306@0" is not host:port[@weight] (weight out of range 1..=1000)"#
    );
    let e = save_runtime(
        &path,
        &rw,
        &[],
        &["nope".to_string()],
        &[UserPassword::new("a", "b")],
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("config: client-ips: "), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), before);

    // A missing file is created.
    let dir = TempDir::new();
    let fresh = dir.join("new.toml");
    save_runtime(&fresh, &rw, &[], &[], &[UserPassword::new("a", "b")]).unwrap();
    assert!(fs::read_to_string(&fresh)
        .unwrap()
        .contains("pwds = [\"a:b\"]"));
}

#[cfg(unix)]
#[test]
fn save_runtime_keeps_permissions_and_follows_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = write_file(MINIMAL);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let link = path.with_file_name("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    save_runtime(
        &link,
        &[BackendAddr::new("db1", 3306)],
        &[],
        &[],
        &[UserPassword::new("a", "b")],
    )
    .unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(
        load_file_only(&link).unwrap().proxy_backend_addresses[0].host,
        "db1"
    );
}

#[test]
fn user_consistency_entries() {
    let c = with("user-consistency = [\"reports:eventual\", \"billing:global\"]\n").unwrap();
    assert_eq!(
        c.user_consistency,
        vec![
            ("reports".to_string(), Consistency::Eventual),
            ("billing".to_string(), Consistency::Global)
        ]
    );
    let e = err("user-consistency = [\"billing:sometimes\"]\n");
    assert!(e.starts_with("config: user-consistency: entry #1"), "{e}");
    let e = err("user-consistency = [\"billing\"]\n");
    assert!(e.contains("is not user:mode"), "{e}");
}

#[test]
fn client_tls_options_parse_and_need_a_certificate() {
    let base = [
        "gantry",
        "--admin-password",
        "x",
        "--proxy-backend-addresses",
        "127.0.0.1:3306",
        "--pwds",
        "app:pw",
    ];
    let load = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        load_from(args)
    };
    let c = load(&[]).unwrap();
    assert_eq!(c.client_tls, ClientTlsOptions::default());
    let c = load(&[
        "--ssl",
        "Required",
        "--admin-ssl",
        "optional",
        "--ssl-cert",
        "/c.pem",
        "--ssl-key",
        "/k.pem",
        "--require-ssl-users",
        "app, bob",
    ])
    .unwrap();
    assert_eq!(c.client_tls.ssl, SslMode::Required);
    assert_eq!(c.client_tls.admin_ssl, SslMode::Optional);
    assert_eq!(c.client_tls.require_ssl_users, ["app", "bob"]);
    let e = load(&["--ssl", "on"]).unwrap_err().to_string();
    assert!(e.contains("off|optional|required"), "{e}");
    let e = load(&["--ssl", "optional", "--ssl-cert", "/c.pem"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("ssl-key"), "{e}");
    let e = load(&["--require-ssl-users", "app"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("require-ssl-users"), "{e}");
    // caching_sha2_password keys: paths; a public key needs its private.
    let c = load(&[
        "--sha256-private-key",
        "/p.pem",
        "--sha256-public-key",
        "/q.pem",
    ])
    .unwrap();
    assert_eq!(
        c.client_tls.sha256_private_key.as_deref(),
        Some(std::path::Path::new("/p.pem"))
    );
    let e = load(&["--sha256-public-key", "/q.pem"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sha256-public-key") && e.contains("sha256-private-key"),
        "{e}"
    );
}

#[test]
fn backend_ssl_modes() {
    assert_eq!(with("").unwrap().backend_tls.mode, BackendSsl::Preferred);
    for (text, mode) in [
        ("off", BackendSsl::Off),
        ("PREFERRED", BackendSsl::Preferred),
        ("required", BackendSsl::Required),
    ] {
        let c = with(&format!("backend-ssl = {text:?}")).unwrap();
        assert_eq!(c.backend_tls.mode, mode);
        assert_eq!(c.backend_tls.client.is_some(), mode != BackendSsl::Off);
    }
    assert_eq!("verify_identity".parse(), Ok(BackendSsl::VerifyIdentity));
    let e = with("backend-ssl = \"on\"").unwrap_err().to_string();
    assert!(
        e.starts_with("config: backend-ssl: \"on\" is not one of"),
        "{e}"
    );
}

#[test]
fn backend_ssl_verifying_modes_need_a_ca() {
    for mode in ["verify-ca", "verify-identity"] {
        let e = with(&format!("backend-ssl = {mode:?}"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("config: backend-ssl-ca: required when backend-ssl is {mode}")
        );
    }
    let dir = TempDir::new();
    let ca = dir.join("ca.pem");
    fs::write(&ca, include_str!("testdata/ca.pem")).unwrap();
    let c = with(&format!(
        "backend-ssl = \"verify-ca\"\nbackend-ssl-ca = {:?}",
        ca.display().to_string()
    ))
    .unwrap();
    assert_eq!(c.backend_tls.ca.as_ref().unwrap().path, ca);
    let entries = c.entries();
    let row = |k: &str| entries.iter().find(|(n, _)| *n == k).unwrap().1.clone();
    assert_eq!(row("backend-ssl"), "verify-ca");
    assert_eq!(row("backend-ssl-ca"), ca.display().to_string());
    assert_eq!(row("backend-ssl-key"), "");

    // A file that is not PEM, and one that is missing, are named.
    let junk = dir.join("junk.pem");
    fs::write(&junk, "not a certificate").unwrap();
    let e = with(&format!(
        "backend-ssl = \"verify-identity\"\nbackend-ssl-ca = {:?}",
        junk.display().to_string()
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("backend-ssl-ca") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = with("backend-ssl = \"verify-ca\"\nbackend-ssl-ca = \"/nonexistent/ca.pem\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config: backend-ssl-ca: /nonexistent/ca.pem: "),
        "{e}"
    );
}

#[test]
fn backend_ssl_cert_and_key_go_together() {
    let e = with("backend-ssl-cert = \"/x/c.pem\"")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config: backend-ssl-key: required when backend-ssl-cert is set"
    );
    let e = with("backend-ssl-key = \"/x/c.key\"")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config: backend-ssl-cert: required when backend-ssl-key is set"
    );
}

#[test]
fn backend_ssl_key_is_not_in_debug() {
    let dir = TempDir::new();
    let key = dir.join("k.pem");
    fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let tls = BackendTls {
        key: Some(PemFile {
            path: key.clone(),
            pem: fs::read(&key).unwrap().into(),
        }),
        ..BackendTls::off()
    };
    let shown = format!("{tls:?}");
    assert!(
        shown.contains("k.pem") && !shown.contains("c2VjcmV0"),
        "{shown}"
    );
}
