//! Gantry configuration.
//!
//! Every option can be given in a TOML file (`gantry --config conf/gantry.toml`)
//! and on the command line under the same name (`--proxy-address 127.0.0.1:1234`);
//! the command line overrides the file. Option names follow Atlas where Atlas
//! has one. List options take a TOML array or a comma-separated string (on the
//! command line: a comma-separated value, and/or the flag repeated).
//!
//! Unknown keys in the file and unknown flags are errors, so typos are never
//! silently ignored. Every [`ConfigError`] displays as one line naming the
//! option and the problem. Passwords never appear in `Debug` output or in
//! error messages.
//!
//! See `conf/README.md` for the option table and `conf/gantry.toml` for an
//! example.

mod addr;
mod backend_tls;
mod cli;
mod client_tls;
mod file;
mod save;
pub mod secret;
#[cfg(test)]
mod tests;

pub use addr::{
    client_ip_allowed, client_ip_matches, BackendAddr, UserPassword, DEFAULT_MYSQL_PORT, MAX_WEIGHT,
};
pub use backend_tls::{BackendSsl, BackendTls, PemFile};
pub use save::save_runtime;

pub use crate::failover::mode::FailoverMode;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use client_tls::{ClientTlsOptions, SslMode};

/// How a value of an option is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string.
    Str,
    /// A string that is a secret: never echoed in errors or `Debug`.
    Secret,
    /// An unsigned integer in `min..=max`.
    Int { min: u64, max: u64 },
    /// `true` / `false` (a bare `--flag` on the command line means `true`).
    Bool,
    /// A TOML array of strings or a comma-separated string.
    List,
}

/// One option: its name (TOML key and `--long` flag), kind, documented
/// default and one-line meaning. The single source for the CLI definition,
/// unknown-key detection and the drift tests against `conf/`.
struct OptSpec {
    key: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
}

const fn opt(key: &'static str, kind: Kind, default: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        key,
        kind,
        default,
        help,
    }
}

const fn int(min: u64, max: u64) -> Kind {
    Kind::Int { min, max }
}

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

#[rustfmt::skip]
const OPTIONS: &[OptSpec] = &[
    opt("proxy-address", Kind::Str, "127.0.0.1:1234", "Address (ip:port) the proxy listens on for MySQL clients"),
    opt("admin-address", Kind::Str, "127.0.0.1:2345", "Address (ip:port) of the admin interface"),
    opt("admin-username", Kind::Str, "admin", "User name for the admin interface"),
    opt("admin-password", Kind::Secret, "(required)", "Password for the admin interface"),
    opt("proxy-backend-addresses", Kind::List, "(required)", "Primary (read/write) backend, host:port (port 3306 if omitted; IPv6 as [::1]:3306)"),
    opt("proxy-read-only-backend-addresses", Kind::List, "(none)", "Read-only replicas, host:port[@weight] (weight 1..=1000, default 1)"),
    opt("pwds", Kind::List, "(required)", "Client accounts user:password (split at the first ':'); Gantry logs in to the backends with them"),
    opt("client-ips", Kind::List, "(everyone)", "Allowed client IPs, IPv4 prefixes (192.168.1.) or CIDR blocks; empty = everyone"),
    opt("event-threads", int(1, 1024), "number of CPUs", "Worker threads (1..=1024)"),
    opt("log-level", Kind::Str, "info", "Log level: trace|debug|info|warn|error"),
    opt("pool-min-idle", int(0, 100_000), "0", "Idle connections kept open per backend per user"),
    opt("pool-max-size", int(1, 100_000), "256", "Maximum connections per backend per user"),
    opt("backend-max-connections", int(8, 1_000_000), "1000", "Maximum connections to one backend over all users; keep it below the servers' max_connections"),
    opt("connect-timeout-ms", int(1, HOUR_MS), "3000", "Timeout for opening a backend connection (ms)"),
    opt("acquire-timeout-ms", int(1, HOUR_MS), "5000", "How long a client waits for a pooled backend connection (ms)"),
    opt("idle-release-ms", int(0, DAY_MS), "1000", "How long an idle client keeps its backend connection before it returns to the pool (ms)"),
    opt("backend-read-timeout-ms", int(0, DAY_MS), "0", "A statement whose backend sends nothing for this long fails (ms; 0 = no limit)"),
    opt("backend-ssl", Kind::Str, "preferred", "TLS towards the backends: off | preferred (when the server offers it) | required (no certificate check) | verify-ca (chain to backend-ssl-ca) | verify-identity (verify-ca and the backend's host name)"),
    opt("backend-ssl-ca", Kind::Str, "(none)", "PEM file of the CA certificates that signed the backends' certificates; required by verify-ca and verify-identity"),
    opt("backend-ssl-cert", Kind::Str, "(none)", "PEM client certificate (chain) Gantry presents to backends that ask for one"),
    opt("backend-ssl-key", Kind::Str, "(none)", "PEM private key of backend-ssl-cert"),
    opt("max-client-connections", int(1, 1_000_000), "20000", "Maximum concurrent client connections (logged in)"),
    opt("login-timeout-ms", int(1, HOUR_MS), "10000", "A client that has not finished logging in after this long is disconnected (ms)"),
    opt("max-unauthenticated-connections", int(1, 1_000_000), "1000", "Maximum client connections still logging in, counted apart from max-client-connections"),
    opt("shutdown-timeout-ms", int(0, HOUR_MS), "10000", "On SIGTERM/SIGINT, how long running statements and open transactions may finish (ms)"),
    opt("monitor-username", Kind::Str, "first pwds user", "Account used for health checks and replica discovery"),
    opt("monitor-password", Kind::Secret, "first pwds password", "Password of monitor-username"),
    opt("health-interval-ms", int(10, HOUR_MS), "500", "Interval between health probes of each backend (ms)"),
    opt("probe-timeout-ms", int(1, HOUR_MS), "1000", "Timeout of one health probe (ms)"),
    opt("down-after-milliseconds", int(0, DAY_MS), "1500", "A backend failing probes for this long is marked down (ms)"),
    opt("max-replica-lag", int(0, 86_400), "10", "Replicas lagging more than this many seconds get no reads; 0 = unbounded"),
    opt("auto-discover-replicas", Kind::Bool, "true", "Find replicas of the primary and add them automatically"),
    opt("failover", Kind::Str, "follow", "Who changes roles: follow (an external tool's failover) | auto (Gantry promotes a replica when the primary failed) | off"),
    opt("auto-failover", Kind::Bool, "false", "Older form of failover: true means failover = auto"),
    opt("auto-rejoin", Kind::Bool, "true", "failover = auto: an old primary that returns is made a replica of the new one when it holds no transactions the new one lacks"),
    opt("replication-username", Kind::Str, "monitor-username", "Account replicas use to replicate from a promoted primary (CHANGE MASTER TO)"),
    opt("replication-password", Kind::Secret, "monitor-password", "Password of replication-username"),
    opt("failover-timeout-ms", int(100, HOUR_MS), "10000", "How long a promotion waits for the chosen replica to apply what it received; on timeout the failover is aborted (ms)"),
    opt("failover-max-lag", int(0, 86_400), "60", "Replicas behind by more than this many seconds are never promoted; 0 = no bound"),
    opt("failover-write-hold-ms", int(0, HOUR_MS), "3000", "Writes arriving while a failover runs wait this long for the new primary, then fail (ms)"),
    opt("failover-block-ms", int(0, DAY_MS), "60000", "After a failover, no automatic one for this long (ms)"),
    opt("replica-heartbeat-ms", int(0, HOUR_MS), "500", "failover = auto: the heartbeat period Gantry sets on replicas (MASTER_HEARTBEAT_PERIOD), so that a silent primary is noticed; 0 = leave it as configured"),
    opt("primary-failure-timeout-ms", int(100, HOUR_MS), "2000", "failover = auto: a replica that received nothing (no event, no heartbeat) for this long confirms the primary failed (ms)"),
    opt("notification-script", Kind::Str, "(none)", "Program run on health events and failovers, with Sentinel's <event-type> <description>; empty = none"),
    opt("client-reconfig-script", Kind::Str, "(none)", "Program run after Gantry moved the primary, with Sentinel's arguments: <name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>; empty = none"),
    opt("consistency", Kind::Str, "read-your-writes", "Read consistency: eventual|read-your-writes|global"),
    opt("causal-read-timeout-ms", int(0, HOUR_MS), "1000", "How long a read waits for a replica to catch up before going to the primary (ms)"),
    opt("user-consistency", Kind::List, "(none)", "Per-user read consistency, user:mode (overrides consistency for that user)"),
    opt("metrics-address", Kind::Str, "(off)", "Prometheus metrics address (ip:port); empty = off"),
    opt("server-version", Kind::Str, "(none)", "Server version string shown to clients; empty = the primary's version"),
    opt("accounts-from-backend", Kind::Bool, "false", "Load client accounts (names, hosts, mysql_native_password hashes) from the primary with the monitor account"),
    opt("accounts-refresh-ms", int(100, DAY_MS), "60000", "How often accounts-from-backend reloads the accounts (ms); an unknown user reloads at once"),
    opt("secret-key-file", Kind::Str, "(none)", "File with the 256-bit key (64 hex digits) that decrypts enc: passwords (gantry encrypt makes both)"),
    opt("ssl", Kind::Str, "off", "TLS for clients on the data port: off | optional | required (clients without TLS are refused)"),
    opt("admin-ssl", Kind::Str, "off", "TLS on the admin port: off | optional | required (same certificate)"),
    opt("ssl-cert", Kind::Str, "(none)", "PEM certificate chain Gantry presents to clients (required when ssl or admin-ssl is on)"),
    opt("ssl-key", Kind::Str, "(none)", "PEM private key of ssl-cert"),
    opt("ssl-ca", Kind::Str, "(none)", "PEM CA of client certificates: clients may present one; require-ssl-users must"),
    opt("require-ssl-users", Kind::List, "(none)", "Accounts that must log in over TLS (with ssl-ca: with a verified client certificate)"),
    opt("default-auth-plugin", Kind::Str, "mysql_native_password", "Authentication method the greeting offers clients: mysql_native_password | caching_sha2_password (as MySQL 8.4)"),
    opt("sha256-private-key", Kind::Str, "(generated)", "PEM RSA private key for caching_sha2_password clients without TLS (read at start); empty = a 2048-bit pair generated in memory"),
    opt("sha256-public-key", Kind::Str, "(derived)", "PEM public key of sha256-private-key, checked against it; empty = derived from the private key"),
];

fn spec(key: &str) -> &'static OptSpec {
    OPTIONS
        .iter()
        .find(|o| o.key == key)
        .unwrap_or_else(|| panic!("config: option {key} is not in OPTIONS"))
}

/// Every option name (TOML key and `--long` flag), in documentation order.
pub fn option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|o| o.key)
}

/// Log verbosity (`log-level`). [`LogLevel::as_str`] is a valid `tracing`
/// filter directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    /// Case-insensitive; the error lists the accepted values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not one of trace|debug|info|warn|error"))
    }
}

/// Read consistency (`consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Consistency {
    /// Reads go to any healthy replica within `max-replica-lag` (Atlas).
    Eventual,
    /// A session's reads see that session's own earlier writes: the
    /// default, since it costs no extra round trip (the write position
    /// comes from the session tracker).
    #[default]
    ReadYourWrites,
    /// Reads see every write acknowledged before they started.
    Global,
}

impl Consistency {
    pub const ALL: [Consistency; 3] = [
        Consistency::Eventual,
        Consistency::ReadYourWrites,
        Consistency::Global,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::ReadYourWrites => "read-your-writes",
            Consistency::Global => "global",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Consistency {
    type Err = String;

    /// Case-insensitive; the error lists the accepted values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Consistency::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not one of eventual|read-your-writes|global"))
    }
}

/// The validated configuration. Field names are the option names in
/// snake_case; durations are milliseconds unless the name says otherwise.
/// `Debug` never shows passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The `--config` file, made absolute; `None` when there was none.
    pub config_path: Option<PathBuf>,
    /// Client listener, a socket address `ip:port` (validated).
    pub proxy_address: String,
    /// Admin listener, a socket address `ip:port` (validated).
    pub admin_address: String,
    pub admin_username: String,
    pub admin_password: String,
    /// Primary (read/write) backends; at least one; weights are always 1.
    pub proxy_backend_addresses: Vec<BackendAddr>,
    /// Read-only replicas with their weights (1..=1000).
    pub proxy_read_only_backend_addresses: Vec<BackendAddr>,
    /// Client accounts; at least one; user names are unique.
    pub pwds: Vec<UserPassword>,
    /// Allowed clients (see [`client_ip_allowed`]); empty = everyone.
    pub client_ips: Vec<String>,
    pub event_threads: usize,
    pub log_level: LogLevel,
    pub pool_min_idle: usize,
    pub pool_max_size: usize,
    pub backend_max_connections: usize,
    pub connect_timeout_ms: u64,
    pub acquire_timeout_ms: u64,
    pub idle_release_ms: u64,
    pub backend_read_timeout_ms: u64,
    /// `backend-ssl*`, with the files read and the client configuration
    /// built at load.
    pub backend_tls: std::sync::Arc<BackendTls>,
    pub max_client_connections: usize,
    pub login_timeout_ms: u64,
    pub max_unauthenticated_connections: usize,
    pub shutdown_timeout_ms: u64,
    pub monitor_username: String,
    pub monitor_password: String,
    pub health_interval_ms: u64,
    pub probe_timeout_ms: u64,
    pub down_after_milliseconds: u64,
    /// Seconds; 0 = unbounded.
    pub max_replica_lag: u64,
    pub auto_discover_replicas: bool,
    pub failover: FailoverMode,
    pub auto_rejoin: bool,
    pub replication_username: String,
    pub replication_password: String,
    pub failover_timeout_ms: u64,
    /// Seconds; 0 = unbounded.
    pub failover_max_lag: u64,
    pub failover_write_hold_ms: u64,
    pub failover_block_ms: u64,
    pub replica_heartbeat_ms: u64,
    pub primary_failure_timeout_ms: u64,
    pub notification_script: Option<PathBuf>,
    pub client_reconfig_script: Option<PathBuf>,
    pub consistency: Consistency,
    /// `user-consistency`: per-user overrides of `consistency`.
    pub user_consistency: Vec<(String, Consistency)>,
    pub causal_read_timeout_ms: u64,
    /// Prometheus listener `ip:port` (validated); `None` = off.
    pub metrics_address: Option<String>,
    /// TLS towards clients.
    pub client_tls: ClientTlsOptions,
    /// `default-auth-plugin`: one of the two plugin names.
    pub default_auth_plugin: &'static str,
    pub accounts_from_backend: bool,
    pub accounts_refresh_ms: u64,
    /// `secret-key-file`, and the key it holds (for `enc:` values).
    pub secret_key_file: Option<PathBuf>,
    pub secret_key: Option<secret::SecretKey>,
    /// Options that hold a password in clear (warned about at start).
    pub clear_secrets: Vec<&'static str>,
    /// Version string shown to clients; `None` = the primary's own.
    pub server_version: Option<String>,
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("config_path", &self.config_path)
            .field("proxy_address", &self.proxy_address)
            .field("admin_address", &self.admin_address)
            .field("admin_username", &self.admin_username)
            .field("admin_password", &Redacted)
            .field("proxy_backend_addresses", &self.proxy_backend_addresses)
            .field(
                "proxy_read_only_backend_addresses",
                &self.proxy_read_only_backend_addresses,
            )
            .field("pwds", &self.pwds)
            .field("client_ips", &self.client_ips)
            .field("event_threads", &self.event_threads)
            .field("log_level", &self.log_level)
            .field("pool_min_idle", &self.pool_min_idle)
            .field("pool_max_size", &self.pool_max_size)
            .field("backend_max_connections", &self.backend_max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("idle_release_ms", &self.idle_release_ms)
            .field("backend_read_timeout_ms", &self.backend_read_timeout_ms)
            .field("backend_tls", &self.backend_tls)
            .field("max_client_connections", &self.max_client_connections)
            .field("login_timeout_ms", &self.login_timeout_ms)
            .field(
                "max_unauthenticated_connections",
                &self.max_unauthenticated_connections,
            )
            .field("shutdown_timeout_ms", &self.shutdown_timeout_ms)
            .field("monitor_username", &self.monitor_username)
            .field("monitor_password", &Redacted)
            .field("health_interval_ms", &self.health_interval_ms)
            .field("probe_timeout_ms", &self.probe_timeout_ms)
            .field("down_after_milliseconds", &self.down_after_milliseconds)
            .field("max_replica_lag", &self.max_replica_lag)
            .field("auto_discover_replicas", &self.auto_discover_replicas)
            .field("failover", &self.failover)
            .field("auto_rejoin", &self.auto_rejoin)
            .field("replication_username", &self.replication_username)
            .field("replication_password", &Redacted)
            .field("failover_timeout_ms", &self.failover_timeout_ms)
            .field("failover_max_lag", &self.failover_max_lag)
            .field("failover_write_hold_ms", &self.failover_write_hold_ms)
            .field("failover_block_ms", &self.failover_block_ms)
            .field("replica_heartbeat_ms", &self.replica_heartbeat_ms)
            .field(
                "primary_failure_timeout_ms",
                &self.primary_failure_timeout_ms,
            )
            .field("notification_script", &self.notification_script)
            .field("client_reconfig_script", &self.client_reconfig_script)
            .field("consistency", &self.consistency)
            .field("user_consistency", &self.user_consistency)
            .field("causal_read_timeout_ms", &self.causal_read_timeout_ms)
            .field("metrics_address", &self.metrics_address)
            .field("server_version", &self.server_version)
            .field("client_tls", &self.client_tls)
            .field("default_auth_plugin", &self.default_auth_plugin)
            .field("accounts_from_backend", &self.accounts_from_backend)
            .field("accounts_refresh_ms", &self.accounts_refresh_ms)
            .field("secret_key_file", &self.secret_key_file)
            .finish()
    }
}

impl Config {
    /// The clear password an option value stands for (`enc:` values
    /// decrypted; they were checked when the configuration was loaded).
    pub fn reveal(&self, value: &str) -> String {
        secret::reveal(self.secret_key.as_ref(), value).unwrap_or_else(|_| value.to_string())
    }

    /// Every option with its effective value as it would be written in the
    /// file (lists comma-separated), in documentation order; passwords
    /// (`admin-password`, `monitor-password`, the password part of `pwds`)
    /// are replaced by `******`. Meant for the admin interface and logs.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        fn join<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
            items.iter().map(f).collect::<Vec<_>>().join(",")
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let pem = |f: &Option<PemFile>| {
            f.as_ref()
                .map(|f| f.path.display().to_string())
                .unwrap_or_default()
        };
        let secret = "******".to_string();
        vec![
            ("proxy-address", self.proxy_address.clone()),
            ("admin-address", self.admin_address.clone()),
            ("admin-username", self.admin_username.clone()),
            ("admin-password", secret.clone()),
            (
                "proxy-backend-addresses",
                join(&self.proxy_backend_addresses, |b| b.to_string()),
            ),
            (
                "proxy-read-only-backend-addresses",
                join(&self.proxy_read_only_backend_addresses, |b| {
                    b.to_config_string()
                }),
            ),
            ("pwds", join(&self.pwds, |p| format!("{}:******", p.user))),
            ("client-ips", self.client_ips.join(",")),
            ("event-threads", self.event_threads.to_string()),
            ("log-level", self.log_level.to_string()),
            ("pool-min-idle", self.pool_min_idle.to_string()),
            ("pool-max-size", self.pool_max_size.to_string()),
            (
                "backend-max-connections",
                self.backend_max_connections.to_string(),
            ),
            ("connect-timeout-ms", self.connect_timeout_ms.to_string()),
            ("acquire-timeout-ms", self.acquire_timeout_ms.to_string()),
            ("idle-release-ms", self.idle_release_ms.to_string()),
            (
                "backend-read-timeout-ms",
                self.backend_read_timeout_ms.to_string(),
            ),
            ("backend-ssl", self.backend_tls.mode.to_string()),
            ("backend-ssl-ca", pem(&self.backend_tls.ca)),
            ("backend-ssl-cert", pem(&self.backend_tls.cert)),
            ("backend-ssl-key", pem(&self.backend_tls.key)),
            (
                "max-client-connections",
                self.max_client_connections.to_string(),
            ),
            ("login-timeout-ms", self.login_timeout_ms.to_string()),
            (
                "max-unauthenticated-connections",
                self.max_unauthenticated_connections.to_string(),
            ),
            ("shutdown-timeout-ms", self.shutdown_timeout_ms.to_string()),
            ("monitor-username", self.monitor_username.clone()),
            ("monitor-password", secret.clone()),
            ("health-interval-ms", self.health_interval_ms.to_string()),
            ("probe-timeout-ms", self.probe_timeout_ms.to_string()),
            (
                "down-after-milliseconds",
                self.down_after_milliseconds.to_string(),
            ),
            ("max-replica-lag", self.max_replica_lag.to_string()),
            (
                "auto-discover-replicas",
                self.auto_discover_replicas.to_string(),
            ),
            ("failover", self.failover.to_string()),
            (
                "auto-failover",
                (self.failover == FailoverMode::Auto).to_string(),
            ),
            ("auto-rejoin", self.auto_rejoin.to_string()),
            ("replication-username", self.replication_username.clone()),
            ("replication-password", secret),
            ("failover-timeout-ms", self.failover_timeout_ms.to_string()),
            ("failover-max-lag", self.failover_max_lag.to_string()),
            (
                "failover-write-hold-ms",
                self.failover_write_hold_ms.to_string(),
            ),
            ("failover-block-ms", self.failover_block_ms.to_string()),
            (
                "replica-heartbeat-ms",
                self.replica_heartbeat_ms.to_string(),
            ),
            (
                "primary-failure-timeout-ms",
                self.primary_failure_timeout_ms.to_string(),
            ),
            (
                "notification-script",
                self.notification_script
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "client-reconfig-script",
                self.client_reconfig_script
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("consistency", self.consistency.to_string()),
            (
                "causal-read-timeout-ms",
                self.causal_read_timeout_ms.to_string(),
            ),
            (
                "user-consistency",
                self.user_consistency
                    .iter()
                    .map(|(u, m)| format!("{u}:{m}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("metrics-address", opt(&self.metrics_address)),
            ("server-version", opt(&self.server_version)),
            (
                "accounts-from-backend",
                self.accounts_from_backend.to_string(),
            ),
            ("accounts-refresh-ms", self.accounts_refresh_ms.to_string()),
            ("secret-key-file", path(&self.secret_key_file)),
            ("ssl", self.client_tls.ssl.to_string()),
            ("admin-ssl", self.client_tls.admin_ssl.to_string()),
            ("ssl-cert", path(&self.client_tls.ssl_cert)),
            ("ssl-key", path(&self.client_tls.ssl_key)),
            ("ssl-ca", path(&self.client_tls.ssl_ca)),
            (
                "require-ssl-users",
                self.client_tls.require_ssl_users.join(","),
            ),
            ("default-auth-plugin", self.default_auth_plugin.to_string()),
            (
                "sha256-private-key",
                path(&self.client_tls.sha256_private_key),
            ),
            (
                "sha256-public-key",
                path(&self.client_tls.sha256_public_key),
            ),
        ]
    }
}

/// A configuration problem. `Display` is one line starting with `config: `
/// that names the option (or file) and the problem, except for
/// [`ConfigError::Help`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An option has a bad or missing value, or is unknown.
    #[error("config: {key}: {msg}")]
    Invalid { key: String, msg: String },
    /// The file cannot be read, parsed or written.
    #[error("config: {}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// The command line cannot be parsed (unknown flag, missing value...).
    #[error("config: {0}")]
    Cli(String),
    /// `--help` or `--version` was given: not an error. The text (help or
    /// version) should be printed to stdout and the process exit with 0.
    #[error("{0}")]
    Help(String),
}

impl ConfigError {
    fn invalid(key: &str, msg: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            msg: msg.into(),
        }
    }

    /// The process exit code: 0 for [`ConfigError::Help`], 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Help(_) => 0,
            _ => 2,
        }
    }

    /// Prints the help/version text to stdout, or the error to stderr, and
    /// exits with [`ConfigError::exit_code`]:
    /// `let cfg = config::load().unwrap_or_else(|e| e.exit());`
    pub fn exit(&self) -> ! {
        match self {
            ConfigError::Help(text) => print!("{text}"),
            err => eprintln!("{err}"),
        }
        std::process::exit(self.exit_code())
    }
}

/// Loads the configuration from the process's command line
/// (`std::env::args_os()`) and the `--config` file it names, if any.
pub fn load() -> Result<Config, ConfigError> {
    load_from(std::env::args_os())
}

/// Like [`load`], with explicit arguments; the first one is the program
/// name. Calling it again with the same arguments re-reads the file and
/// re-applies the command-line overrides.
pub fn load_from<I, T>(args: I) -> Result<Config, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let (config_path, cli_layer) = cli::parse(args)?;
    let mut layer = match &config_path {
        Some(path) => file::read(path)?,
        None => Layer::new(),
    };
    // The command line's word on the failover mode, in either form,
    // replaces the file's.
    if cli_layer.contains_key("failover") || cli_layer.contains_key("auto-failover") {
        layer.remove("failover");
        layer.remove("auto-failover");
    }
    layer.extend(cli_layer);
    build(&layer, config_path.as_deref())
}

/// Loads the configuration from the file alone, ignoring the command line
/// (for `RELOAD CONFIG`). Options not in the file take their defaults; to
/// keep command-line overrides, call [`load_from`] with the original
/// arguments instead.
pub fn load_file_only(path: &Path) -> Result<Config, ConfigError> {
    build(&file::read(path)?, Some(path))
}

/// Builds a configuration from the text of a TOML file alone (the fuzz
/// target's entry; `path` is not read, only named in messages).
#[doc(hidden)]
pub fn from_toml_text(text: &str) -> Result<Config, ConfigError> {
    build(&file::parse(text, Path::new("fuzz.toml"))?, None)
}

/// A raw option value, before validation.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
    /// A TOML value of another type, named for the error message.
    Other(&'static str),
}

impl Raw {
    fn type_name(&self) -> &'static str {
        match self {
            Raw::Str(_) => "a string",
            Raw::Int(_) => "an integer",
            Raw::Bool(_) => "a boolean",
            Raw::List(_) => "an array",
            Raw::Other(t) => t,
        }
    }
}

/// Option values from one source (file or command line), or merged.
type Layer = BTreeMap<&'static str, Raw>;

fn wrong_type(key: &str, expected: &str, raw: &Raw) -> ConfigError {
    ConfigError::invalid(
        key,
        format!("expected {expected}, found {}", raw.type_name()),
    )
}

/// Typed access to a merged layer, with the option's validation.
struct Values<'a>(&'a Layer);

impl Values<'_> {
    fn raw(&self, key: &'static str) -> Option<&Raw> {
        debug_assert!(OPTIONS.iter().any(|o| o.key == key), "unknown key {key}");
        self.0.get(key)
    }

    /// A string option; an empty (all-blank) value counts as unset.
    fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Raw::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(Raw::Str(s)) => Ok(Some(s.clone())),
            Some(raw) => Err(wrong_type(key, "a string", raw)),
        }
    }

    /// A secret string: taken verbatim (no trimming), never echoed.
    fn secret(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Raw::Str(s)) => Ok(Some(s.clone())),
            Some(raw) => Err(wrong_type(key, "a string", raw)),
        }
    }

    fn int(&self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        let Kind::Int { min, max } = spec(key).kind else {
            panic!("config: {key} is not an integer option");
        };
        let n = match self.raw(key) {
            None => return Ok(default),
            Some(Raw::Int(n)) => *n,
            Some(Raw::Str(s)) => {
                let t = s.trim();
                match t.parse::<i64>() {
                    Ok(n) => n,
                    Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                        return Err(ConfigError::invalid(
                            key,
                            format!("{t} is out of range {min}..={max}"),
                        ))
                    }
                    Err(_) => {
                        return Err(ConfigError::invalid(
                            key,
                            format!("{s:?} is not an integer"),
                        ))
                    }
                }
            }
            Some(raw) => return Err(wrong_type(key, "an integer", raw)),
        };
        match u64::try_from(n) {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::invalid(
                key,
                format!("{n} is out of range {min}..={max}"),
            )),
        }
    }

    fn bool(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(Raw::Bool(b)) => Ok(*b),
            Some(Raw::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("{s:?} is not a boolean (true or false)"),
                )),
            },
            Some(raw) => Err(wrong_type(key, "a boolean", raw)),
        }
    }

    /// A list option: an array is taken element by element (verbatim), a
    /// string is split at commas (pieces trimmed, empty pieces dropped).
    fn list(&self, key: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Raw::List(items)) => Ok(Some(items.clone())),
            Some(Raw::Str(s)) => Ok(Some(split_list(s))),
            Some(raw) => Err(wrong_type(key, "an array of strings", raw)),
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

fn required(key: &str, what: &str) -> ConfigError {
    ConfigError::invalid(
        key,
        format!("required but not set ({what}; set {key} in the config file or --{key})"),
    )
}

/// Validates an `ip:port` listen address (port 1..=65535).
fn socket_addr(key: &str, s: &str) -> Result<String, ConfigError> {
    let s = s.trim();
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(s.to_string()),
        Ok(_) => Err(ConfigError::invalid(
            key,
            format!("{s:?} is not ip:port (port out of range)"),
        )),
        Err(_) => Err(ConfigError::invalid(key, format!("{s:?} is not ip:port"))),
    }
}

/// Parses a backend list; `weighted` allows `@weight` (replicas only).
fn backend_list(
    key: &str,
    items: &[String],
    weighted: bool,
) -> Result<Vec<BackendAddr>, ConfigError> {
    let form = if weighted {
        "host:port[@weight]"
    } else {
        "host:port"
    };
    let mut out: Vec<BackendAddr> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        let bad = |why: &str| ConfigError::invalid(key, format!("{item:?} is not {form} ({why})"));
        if !weighted && item.contains('@') {
            return Err(bad("a weight is only allowed for read-only backends"));
        }
        let addr = BackendAddr::parse(item).map_err(|why| bad(&why))?;
        if out
            .iter()
            .any(|a| a.host.eq_ignore_ascii_case(&addr.host) && a.port == addr.port)
        {
            return Err(ConfigError::invalid(
                key,
                format!("{item:?} is listed twice"),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

fn pwds_list(key: &str, items: &[String]) -> Result<Vec<UserPassword>, ConfigError> {
    let mut out: Vec<UserPassword> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // The message names the entry by position: it must not echo a password.
        let entry = UserPassword::parse(item).map_err(|why| {
            ConfigError::invalid(
                key,
                format!("entry #{} is not user:password ({why})", i + 1),
            )
        })?;
        if out.iter().any(|p| p.user == entry.user) {
            return Err(ConfigError::invalid(
                key,
                format!("user {:?} is listed twice", entry.user),
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

fn client_ip_list(key: &str, items: &[String]) -> Result<Vec<String>, ConfigError> {
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            addr::validate_client_ip(item)
                .map(|()| item.to_string())
                .map_err(|why| ConfigError::invalid(key, format!("{item:?} is {why}")))
        })
        .collect()
}

fn default_event_threads() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
        .clamp(1, 1024)
}

/// Validates the merged values and builds the [`Config`].
fn build(layer: &Layer, config_path: Option<&Path>) -> Result<Config, ConfigError> {
    let v = Values(layer);
    let listen = |key: &'static str, default: &str| -> Result<String, ConfigError> {
        socket_addr(key, &v.string(key)?.unwrap_or_else(|| default.to_string()))
    };
    let proxy_address = listen("proxy-address", "127.0.0.1:1234")?;
    let admin_address = listen("admin-address", "127.0.0.1:2345")?;
    let metrics_address = match v.string("metrics-address")? {
        Some(s) => Some(socket_addr("metrics-address", &s)?),
        None => None,
    };
    let same = |a: &str, b: &str| a.parse::<SocketAddr>().ok() == b.parse::<SocketAddr>().ok();
    if same(&admin_address, &proxy_address) {
        return Err(ConfigError::invalid(
            "admin-address",
            format!("{admin_address:?} is the same as proxy-address"),
        ));
    }
    if let Some(m) = &metrics_address {
        for (other_key, other) in [
            ("proxy-address", &proxy_address),
            ("admin-address", &admin_address),
        ] {
            if same(m, other) {
                return Err(ConfigError::invalid(
                    "metrics-address",
                    format!("{m:?} is the same as {other_key}"),
                ));
            }
        }
    }

    let admin_username = v
        .string("admin-username")?
        .unwrap_or_else(|| "admin".to_string())
        .trim()
        .to_string();
    let secret_key_file = v.string("secret-key-file")?.map(PathBuf::from);
    let secret_key = match &secret_key_file {
        None => None,
        Some(path) => Some(
            secret::SecretKey::load(path)
                .map_err(|e| ConfigError::invalid("secret-key-file", e.to_string()))?,
        ),
    };
    // `enc:` values are decrypted here; what cannot be is a config error.
    let reveal = |key: &'static str, value: &str| -> Result<String, ConfigError> {
        secret::reveal(secret_key.as_ref(), value)
            .map_err(|e| ConfigError::invalid(key, e.to_string()))
    };
    let admin_password = match v.secret("admin-password")? {
        None => return Err(required("admin-password", "the admin interface password")),
        Some(p) if p.is_empty() => {
            return Err(ConfigError::invalid("admin-password", "must not be empty"))
        }
        Some(p) => reveal("admin-password", &p)?,
    };

    let key = "proxy-backend-addresses";
    let rw = v
        .list(key)?
        .ok_or_else(|| required(key, "at least one primary host:port"))?;
    if rw.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "at least one primary host:port is required",
        ));
    }
    let proxy_backend_addresses = backend_list(key, &rw, false)?;

    let key = "proxy-read-only-backend-addresses";
    let ro = v.list(key)?.unwrap_or_default();
    let proxy_read_only_backend_addresses = backend_list(key, &ro, true)?;

    let pwds = v
        .list("pwds")?
        .ok_or_else(|| required("pwds", "at least one user:password"))?;
    if pwds.is_empty() {
        return Err(ConfigError::invalid(
            "pwds",
            "at least one user:password is required",
        ));
    }
    let pwds = pwds_list("pwds", &pwds)?;
    for (i, p) in pwds.iter().enumerate() {
        reveal("pwds", &p.password).map_err(|e| {
            ConfigError::invalid("pwds", format!("entry #{} ({}): {e}", i + 1, p.user))
        })?;
    }

    let client_ips = client_ip_list("client-ips", &v.list("client-ips")?.unwrap_or_default())?;

    let event_threads = v.int("event-threads", default_event_threads())? as usize;
    let log_level = match v.string("log-level")? {
        None => LogLevel::default(),
        Some(s) => s
            .parse()
            .map_err(|e: String| ConfigError::invalid("log-level", e))?,
    };

    let pool_min_idle = v.int("pool-min-idle", 0)? as usize;
    let pool_max_size = v.int("pool-max-size", 256)? as usize;
    if pool_min_idle > pool_max_size {
        return Err(ConfigError::invalid(
            "pool-min-idle",
            format!("{pool_min_idle} is larger than pool-max-size ({pool_max_size})"),
        ));
    }
    let backend_max_connections = v.int("backend-max-connections", 1000)? as usize;
    let connect_timeout_ms = v.int("connect-timeout-ms", 3000)?;
    let acquire_timeout_ms = v.int("acquire-timeout-ms", 5000)?;
    let idle_release_ms = v.int("idle-release-ms", 1000)?;
    let backend_read_timeout_ms = v.int("backend-read-timeout-ms", 0)?;
    let backend_ssl = match v.string("backend-ssl")? {
        None => BackendSsl::default(),
        Some(s) => s
            .parse()
            .map_err(|e: String| ConfigError::invalid("backend-ssl", e))?,
    };
    let file = |key| -> Result<Option<PathBuf>, ConfigError> {
        Ok(v.string(key)?.map(|s| PathBuf::from(s.trim())))
    };
    let backend_tls = std::sync::Arc::new(BackendTls::load(
        backend_ssl,
        file("backend-ssl-ca")?.as_deref(),
        file("backend-ssl-cert")?.as_deref(),
        file("backend-ssl-key")?.as_deref(),
    )?);
    let max_client_connections = v.int("max-client-connections", 20_000)? as usize;
    let login_timeout_ms = v.int("login-timeout-ms", 10_000)?;
    let max_unauthenticated_connections = v.int("max-unauthenticated-connections", 1000)? as usize;
    let shutdown_timeout_ms = v.int("shutdown-timeout-ms", 10_000)?;

    let monitor_username = v.string("monitor-username")?.map(|u| u.trim().to_string());
    let monitor_password = match v.secret("monitor-password")? {
        Some(p) => Some(reveal("monitor-password", &p)?),
        None => None,
    };
    let (monitor_username, monitor_password) = match (monitor_username, monitor_password) {
        (Some(u), Some(p)) => (u, p),
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "monitor-username",
                "required when monitor-password is set",
            ))
        }
        (Some(u), None) => match pwds.iter().find(|p| p.user == u) {
            Some(p) => (u, reveal("pwds", &p.password)?),
            None => {
                return Err(ConfigError::invalid(
                    "monitor-password",
                    format!("required because monitor-username {u:?} is not in pwds"),
                ))
            }
        },
        (None, None) => (pwds[0].user.clone(), reveal("pwds", &pwds[0].password)?),
    };

    let health_interval_ms = v.int("health-interval-ms", 500)?;
    let probe_timeout_ms = v.int("probe-timeout-ms", 1000)?;
    let down_after_milliseconds = v.int("down-after-milliseconds", 1500)?;
    let max_replica_lag = v.int("max-replica-lag", 10)?;
    let auto_discover_replicas = v.bool("auto-discover-replicas", true)?;
    let legacy_auto = match v.raw("auto-failover") {
        None => None,
        Some(_) => Some(v.bool("auto-failover", false)?),
    };
    let failover = FailoverMode::from_options(v.string("failover")?.as_deref(), legacy_auto)
        .map_err(|e| ConfigError::invalid("failover", e.to_string()))?;
    let auto_rejoin = v.bool("auto-rejoin", true)?;
    let replication_username = v
        .string("replication-username")?
        .map(|u| u.trim().to_string());
    let replication_password = match v.secret("replication-password")? {
        Some(p) => Some(reveal("replication-password", &p)?),
        None => None,
    };
    let (replication_username, replication_password) =
        match (replication_username, replication_password) {
            (Some(u), Some(p)) => (u, p),
            (None, None) => (monitor_username.clone(), monitor_password.clone()),
            _ => {
                return Err(ConfigError::invalid(
                    "replication-username",
                    "replication-username and replication-password go together",
                ))
            }
        };
    // Gantry logs in with these itself: no client answer to learn
    // SHA1(password) from, so a hash is not enough.
    for (key, pw) in [
        ("monitor-password", &monitor_password),
        ("replication-password", &replication_password),
    ] {
        if crate::protocol::credential::parse_native_hash(pw).is_some() {
            return Err(ConfigError::invalid(
                key,
                "is a native-password hash; Gantry logs in with it itself and needs the \
                 password (clear or enc:), or set it apart from pwds",
            ));
        }
    }
    let failover_timeout_ms = v.int("failover-timeout-ms", 10_000)?;
    let failover_max_lag = v.int("failover-max-lag", 60)?;
    let failover_write_hold_ms = v.int("failover-write-hold-ms", 3000)?;
    let failover_block_ms = v.int("failover-block-ms", 60_000)?;
    let replica_heartbeat_ms = v.int("replica-heartbeat-ms", 500)?;
    let primary_failure_timeout_ms = v.int("primary-failure-timeout-ms", 2000)?;
    let notification_script = v.string("notification-script")?.map(PathBuf::from);
    let client_reconfig_script = v.string("client-reconfig-script")?.map(PathBuf::from);

    let consistency = match v.string("consistency")? {
        None => Consistency::default(),
        Some(s) => s
            .parse()
            .map_err(|e: String| ConfigError::invalid("consistency", e))?,
    };
    let causal_read_timeout_ms = v.int("causal-read-timeout-ms", 1000)?;
    let mut user_consistency = Vec::new();
    for (i, entry) in v
        .list("user-consistency")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let bad = |why: String| {
            ConfigError::invalid(
                "user-consistency",
                format!("entry #{}: {entry:?} {why}", i + 1),
            )
        };
        let (user, mode) = entry
            .rsplit_once(':')
            .ok_or_else(|| bad("is not user:mode".to_string()))?;
        let mode: Consistency = mode.parse().map_err(bad)?;
        user_consistency.push((user.to_string(), mode));
    }
    let server_version = v.string("server-version")?.map(|s| s.trim().to_string());

    let client_tls = client_tls::parse(&v)?;
    let default_auth_plugin = match v.string("default-auth-plugin")?.as_deref().map(str::trim) {
        None | Some("mysql_native_password") => crate::protocol::auth::NATIVE_PASSWORD,
        Some("caching_sha2_password") => crate::protocol::auth::CACHING_SHA2,
        Some(other) => {
            return Err(ConfigError::invalid(
                "default-auth-plugin",
                format!("{other:?} is not one of mysql_native_password|caching_sha2_password"),
            ))
        }
    };
    let accounts_from_backend = v.bool("accounts-from-backend", false)?;
    let accounts_refresh_ms = v.int("accounts-refresh-ms", 60_000)?;
    let is_clear = |t: &str| {
        !secret::is_encrypted(t) && crate::protocol::credential::parse_native_hash(t).is_none()
    };
    let mut clear_secrets = Vec::new();
    for key in ["admin-password", "monitor-password", "replication-password"] {
        if v.secret(key)?.is_some_and(|t| is_clear(&t)) {
            clear_secrets.push(key);
        }
    }
    if pwds.iter().any(|p| is_clear(&p.password)) {
        clear_secrets.push("pwds");
    }
    Ok(Config {
        config_path: config_path
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
        proxy_address,
        admin_address,
        admin_username,
        admin_password,
        proxy_backend_addresses,
        proxy_read_only_backend_addresses,
        pwds,
        client_ips,
        event_threads,
        log_level,
        pool_min_idle,
        pool_max_size,
        backend_max_connections,
        connect_timeout_ms,
        acquire_timeout_ms,
        idle_release_ms,
        backend_read_timeout_ms,
        backend_tls,
        max_client_connections,
        login_timeout_ms,
        max_unauthenticated_connections,
        shutdown_timeout_ms,
        monitor_username,
        monitor_password,
        health_interval_ms,
        probe_timeout_ms,
        down_after_milliseconds,
        max_replica_lag,
        auto_discover_replicas,
        failover,
        auto_rejoin,
        replication_username,
        replication_password,
        failover_timeout_ms,
        failover_max_lag,
        failover_write_hold_ms,
        failover_block_ms,
        replica_heartbeat_ms,
        primary_failure_timeout_ms,
        notification_script,
        client_reconfig_script,
        consistency,
        user_consistency,
        causal_read_timeout_ms,
        metrics_address,
        client_tls,
        default_auth_plugin,
        accounts_from_backend,
        accounts_refresh_ms,
        secret_key_file,
        secret_key,
        clear_secrets,
        server_version,
    })
}
