//! The statements Gantry sends to change roles, per flavour.
//!
//! MySQL 8.4 removed `STOP SLAVE`, `RESET SLAVE`, `CHANGE MASTER TO` and the
//! `MASTER_*` option names, so nothing here emits them for MySQL; MariaDB
//! (10.11 is the test backend) still speaks only those forms for `CHANGE
//! MASTER`, so it gets them.
//!
//! String literals are escaped for the default `sql_mode`; with
//! `NO_BACKSLASH_ESCAPES` a backslash would be taken literally, so the
//! connection that runs these must first run [`NORMAL_ESCAPES`].

use std::fmt;
use std::time::Duration;

pub use crate::health::probe::Flavor;

/// Run once on the connection before any builder's statements: makes a
/// backslash an escape character again whatever the server's global
/// `sql_mode` says.
pub const NORMAL_ESCAPES: &str =
    "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";

/// Longest heartbeat period both servers accept (seconds).
const MAX_HEARTBEAT_SECS: u64 = 4_294_967;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("replication source host {0:?} is not a host name or IP address")]
    BadHost(String),
    #[error("replication source port 0 is not a port")]
    BadPort,
    #[error("replication user name is empty")]
    EmptyUser,
    #[error("heartbeat period {0:?} is not 0 or whole milliseconds up to 4294967 s")]
    BadHeartbeat(Duration),
}

/// One statement, with the text that may be logged: the same text, or with
/// the password replaced when there is one.
#[derive(Clone, PartialEq, Eq)]
struct Statement {
    sql: String,
    shown: Option<String>,
}

impl Statement {
    fn plain(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            shown: None,
        }
    }

    fn shown(&self) -> &str {
        self.shown.as_deref().unwrap_or(&self.sql)
    }
}

/// Statements to run in order on one server. `Debug` and `Display` never
/// show a password, so a plan can be logged as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Statements(Vec<Statement>);

impl Statements {
    fn plain(list: &[&str]) -> Statements {
        Statements(list.iter().map(|s| Statement::plain(*s)).collect())
    }

    /// The SQL to send, secrets included.
    pub fn sql(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.sql.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Statements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{}", s.shown())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Statements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(Statement::shown))
            .finish()
    }
}

/// Turns a replica into a writable primary: replication stopped and
/// forgotten (so a restart does not resume it), then writes allowed.
/// The first half of a promotion, which never waits on the old primary:
/// the applier stops (nothing more from the old source is applied) and the
/// server takes writes. The receiver may still hang on a hung source —
/// it only fills the relay log — until [`forget_source`].
pub fn take_writes(flavor: Flavor) -> Statements {
    match flavor {
        Flavor::MariaDb => {
            Statements::plain(&["STOP SLAVE SQL_THREAD", "SET GLOBAL read_only = 0"])
        }
        Flavor::MySql => Statements::plain(&[
            "STOP REPLICA SQL_THREAD",
            "SET GLOBAL super_read_only = 0, read_only = 0",
        ]),
    }
}

/// The second half: the replication threads stop (STOP SLAVE may wait a
/// couple of seconds for a receiver blocked on a hung source) and the
/// replication configuration is removed.
pub fn forget_source(flavor: Flavor) -> Statements {
    match flavor {
        Flavor::MariaDb => Statements::plain(&["STOP SLAVE", "RESET SLAVE ALL"]),
        Flavor::MySql => Statements::plain(&["STOP REPLICA", "RESET REPLICA ALL"]),
    }
}

pub fn promote(flavor: Flavor) -> Statements {
    match flavor {
        Flavor::MariaDb => {
            Statements::plain(&["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"])
        }
        Flavor::MySql => Statements::plain(&[
            "STOP REPLICA",
            "RESET REPLICA ALL",
            "SET GLOBAL super_read_only = 0, read_only = 0",
        ]),
    }
}

/// Makes a server refuse writes; the first thing sent to an old primary.
///
/// MySQL's `super_read_only = 1` also sets `read_only` and stops accounts
/// with SUPER / CONNECTION_ADMIN too. MariaDB has no `super_read_only`:
/// accounts with READ ONLY ADMIN (SUPER before 10.5.2) can still write, so
/// Gantry must also kill their sessions (switchover does). Either statement
/// waits for sessions holding table locks: run it with a timeout.
pub fn fence(flavor: Flavor) -> Statements {
    match flavor {
        Flavor::MariaDb => Statements::plain(&["SET GLOBAL read_only = 1"]),
        Flavor::MySql => Statements::plain(&["SET GLOBAL super_read_only = 1"]),
    }
}

/// Where a replica should replicate from, and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct Source<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    /// MySQL only: `GET_SOURCE_PUBLIC_KEY = 1`, needed when the replication
    /// account uses `caching_sha2_password` (8.4's default) and the link has
    /// no TLS: the replica then asks the source for its RSA key to send the
    /// password. The key itself is not authenticated, so prefer TLS or a
    /// configured key path on untrusted networks; MariaDB ignores this.
    pub get_public_key: bool,
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("get_public_key", &self.get_public_key)
            .finish()
    }
}

/// Which server is being repointed: it decides where MariaDB starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// A replica that only ever applied what it received: its
    /// `gtid_slave_pos` is exact.
    Replica,
    /// An old primary rejoining: its own writes are in `gtid_binlog_pos`,
    /// not in its (stale or empty) `gtid_slave_pos`.
    OldPrimary,
}

/// Points a replica at a new primary with GTID auto-positioning and starts
/// it.
///
/// MariaDB starts from `slave_pos` in both cases. `current_pos` would also
/// count an old primary's own binlog, but it is deprecated since 10.10
/// (MDEV-20122) because any local write later moves the position.
/// For an old primary `MASTER_DEMOTE_TO_SLAVE = 1` (10.10+) merges its
/// `gtid_binlog_pos` into `gtid_slave_pos` once, at CHANGE MASTER time; a
/// bare `slave_pos` would re-request from its stale replica position. Only
/// repoint an old primary whose set the new primary contains (see
/// [`crate::failover::rejoin`]).
///
/// MySQL needs no such choice: `SOURCE_AUTO_POSITION = 1` sends the
/// replica's whole `gtid_executed`, its own writes included.
pub fn repoint(
    flavor: Flavor,
    source: &Source<'_>,
    joining: Joining,
) -> Result<Statements, SqlError> {
    check_host(source.host)?;
    if source.port == 0 {
        return Err(SqlError::BadPort);
    }
    if source.user.is_empty() {
        return Err(SqlError::EmptyUser);
    }
    let change = |password: &str| match flavor {
        Flavor::MariaDb => {
            let demote = match joining {
                Joining::Replica => "",
                Joining::OldPrimary => ", MASTER_DEMOTE_TO_SLAVE = 1",
            };
            format!(
                "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {}, MASTER_USER = {}, \
                 MASTER_PASSWORD = {password}, MASTER_USE_GTID = slave_pos{demote}",
                quote(source.host),
                source.port,
                quote(source.user),
            )
        }
        Flavor::MySql => {
            let key = if source.get_public_key {
                ", GET_SOURCE_PUBLIC_KEY = 1"
            } else {
                ""
            };
            format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST = {}, SOURCE_PORT = {}, \
                 SOURCE_USER = {}, SOURCE_PASSWORD = {password}, SOURCE_AUTO_POSITION = 1{key}",
                quote(source.host),
                source.port,
                quote(source.user),
            )
        }
    };
    let change = Statement {
        sql: change(&quote(source.password)),
        shown: Some(change("'<redacted>'")),
    };
    let (stop, start) = stop_start(flavor);
    Ok(Statements(vec![
        Statement::plain(stop),
        change,
        Statement::plain(start),
    ]))
}

/// Sets how often the primary sends a heartbeat when it has nothing else
/// to send, so that a silent link means a lost primary
/// ([`crate::failover::detect`]). `Duration::ZERO` turns heartbeats off.
///
/// Both servers take seconds with millisecond resolution, and refuse a
/// period above `slave_net_timeout` / `replica_net_timeout`. The replica is
/// stopped around the change because a running one may refuse it (MariaDB
/// answers ER_SLAVE_MUST_STOP; MySQL 8.4 wants at least the receiver
/// stopped for receiver options: from memory, not checked against the
/// docs); stopping an already stopped replica is only a warning. So only
/// send this to a replica that is meant to be replicating.
pub fn heartbeat(flavor: Flavor, period: Duration) -> Result<Statements, SqlError> {
    let ms = period.as_millis();
    let sub_ms = !period.subsec_nanos().is_multiple_of(1_000_000);
    if sub_ms || ms > u128::from(MAX_HEARTBEAT_SECS) * 1000 {
        return Err(SqlError::BadHeartbeat(period));
    }
    let secs = format!("{}.{:03}", ms / 1000, ms % 1000);
    let change = match flavor {
        Flavor::MariaDb => format!("CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = {secs}"),
        Flavor::MySql => format!("CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = {secs}"),
    };
    let (stop, start) = stop_start(flavor);
    Ok(Statements(vec![
        Statement::plain(stop),
        Statement::plain(change),
        Statement::plain(start),
    ]))
}

fn stop_start(flavor: Flavor) -> (&'static str, &'static str) {
    match flavor {
        Flavor::MariaDb => ("STOP SLAVE", "START SLAVE"),
        Flavor::MySql => ("STOP REPLICA", "START REPLICA"),
    }
}

/// A host name or IP address (IPv6 without brackets, as both servers take
/// it), at most 255 characters: anything else is refused rather than
/// quoted, since a host is never expected to need escaping.
fn check_host(host: &str) -> Result<(), SqlError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.chars().all(ok_char)
        && !host.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(SqlError::BadHost(host.to_string()))
    }
}

/// A single-quoted SQL string literal: backslash, quote and NUL escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &Statements) -> Vec<&str> {
        s.sql().collect()
    }

    fn source<'a>(password: &'a str) -> Source<'a> {
        Source {
            host: "10.0.0.2",
            port: 3307,
            user: "repl",
            password,
            get_public_key: false,
        }
    }

    #[test]
    fn promote_uses_each_flavours_own_forms() {
        assert_eq!(
            sql(&promote(Flavor::MariaDb)),
            ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"]
        );
        assert_eq!(
            sql(&promote(Flavor::MySql)),
            [
                "STOP REPLICA",
                "RESET REPLICA ALL",
                "SET GLOBAL super_read_only = 0, read_only = 0"
            ]
        );
    }

    #[test]
    fn fence_uses_super_read_only_on_mysql() {
        assert_eq!(sql(&fence(Flavor::MariaDb)), ["SET GLOBAL read_only = 1"]);
        assert_eq!(
            sql(&fence(Flavor::MySql)),
            ["SET GLOBAL super_read_only = 1"]
        );
    }

    #[test]
    fn repoint_mariadb_replica_and_old_primary() {
        let r = repoint(Flavor::MariaDb, &source("s3cret"), Joining::Replica).unwrap();
        assert_eq!(
            sql(&r),
            [
                "STOP SLAVE",
                "CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3307, \
                 MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_USE_GTID = slave_pos",
                "START SLAVE"
            ]
        );
        let old = repoint(Flavor::MariaDb, &source("s3cret"), Joining::OldPrimary).unwrap();
        let change = old.sql().nth(1).unwrap();
        assert!(change.ends_with("MASTER_USE_GTID = slave_pos, MASTER_DEMOTE_TO_SLAVE = 1"));
        assert!(!change.contains("current_pos"));
    }

    #[test]
    fn repoint_mysql_uses_8_4_names_only() {
        for joining in [Joining::Replica, Joining::OldPrimary] {
            let r = repoint(Flavor::MySql, &source("s3cret"), joining).unwrap();
            assert_eq!(
                sql(&r),
                [
                    "STOP REPLICA",
                    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.2', SOURCE_PORT = 3307, \
                     SOURCE_USER = 'repl', SOURCE_PASSWORD = 's3cret', SOURCE_AUTO_POSITION = 1",
                    "START REPLICA"
                ]
            );
            assert!(r
                .sql()
                .all(|s| !s.contains("MASTER") && !s.contains("SLAVE")));
        }
        let keyed = Source {
            get_public_key: true,
            ..source("x")
        };
        let r = repoint(Flavor::MySql, &keyed, Joining::Replica).unwrap();
        assert!(r
            .sql()
            .nth(1)
            .unwrap()
            .ends_with("SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1"));
        // MariaDB has no such option.
        let m = repoint(Flavor::MariaDb, &keyed, Joining::Replica).unwrap();
        assert!(!m.to_string().contains("PUBLIC_KEY"));
    }

    #[test]
    fn passwords_are_escaped_and_never_shown() {
        let pw = r"it's a \secret";
        for flavor in [Flavor::MariaDb, Flavor::MySql] {
            let r = repoint(flavor, &source(pw), Joining::Replica).unwrap();
            assert!(r.sql().nth(1).unwrap().contains(r"'it\'s a \\secret'"));
            let shown = format!("{r} {r:?} {:?}", source(pw));
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("<redacted>"));
        }
        assert_eq!(quote("a\0b"), r"'a\0b'");
        let user = Source {
            user: "o'brien",
            ..source("x")
        };
        let r = repoint(Flavor::MySql, &user, Joining::Replica).unwrap();
        assert!(r.to_string().contains(r"SOURCE_USER = 'o\'brien'"));
    }

    #[test]
    fn bad_source_is_refused() {
        let bad_host = |host| Source {
            host,
            ..source("x")
        };
        let long = "h".repeat(256);
        for host in ["", "a b", "h'; DROP", "-x", "a\\b", &long] {
            assert_eq!(
                repoint(Flavor::MariaDb, &bad_host(host), Joining::Replica),
                Err(SqlError::BadHost(host.to_string()))
            );
        }
        for host in ["db-1.example.com", "::1", "fe80::1", "127.0.0.1", "db_2"] {
            assert!(repoint(Flavor::MySql, &bad_host(host), Joining::Replica).is_ok());
        }
        let no_port = Source {
            port: 0,
            ..source("x")
        };
        assert_eq!(
            repoint(Flavor::MySql, &no_port, Joining::Replica),
            Err(SqlError::BadPort)
        );
        let no_user = Source {
            user: "",
            ..source("x")
        };
        assert_eq!(
            repoint(Flavor::MariaDb, &no_user, Joining::Replica),
            Err(SqlError::EmptyUser)
        );
    }

    #[test]
    fn heartbeat_in_seconds_with_millisecond_resolution() {
        let hb = heartbeat(Flavor::MariaDb, Duration::from_millis(500)).unwrap();
        assert_eq!(
            sql(&hb),
            [
                "STOP SLAVE",
                "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 0.500",
                "START SLAVE"
            ]
        );
        let hb = heartbeat(Flavor::MySql, Duration::from_millis(2250)).unwrap();
        assert_eq!(
            sql(&hb),
            [
                "STOP REPLICA",
                "CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = 2.250",
                "START REPLICA"
            ]
        );
        assert!(heartbeat(Flavor::MySql, Duration::ZERO)
            .unwrap()
            .to_string()
            .contains("= 0.000"));
        assert!(heartbeat(Flavor::MySql, Duration::from_secs(MAX_HEARTBEAT_SECS)).is_ok());
        for bad in [
            Duration::from_micros(1500),
            Duration::from_secs(MAX_HEARTBEAT_SECS + 1),
            Duration::MAX,
        ] {
            assert_eq!(
                heartbeat(Flavor::MariaDb, bad),
                Err(SqlError::BadHeartbeat(bad))
            );
        }
    }

    #[test]
    fn statements_list_and_display() {
        let p = promote(Flavor::MySql);
        assert_eq!(p.len(), 3);
        assert!(!p.is_empty());
        assert_eq!(
            p.to_string(),
            "STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only = 0, read_only = 0"
        );
        assert!(NORMAL_ESCAPES.contains("NO_BACKSLASH_ESCAPES"));
    }

    #[test]
    fn a_promotion_in_two_halves_never_names_slave_on_mysql() {
        assert_eq!(
            take_writes(Flavor::MariaDb).to_string(),
            "STOP SLAVE SQL_THREAD; SET GLOBAL read_only = 0"
        );
        assert_eq!(
            forget_source(Flavor::MariaDb).to_string(),
            "STOP SLAVE; RESET SLAVE ALL"
        );
        assert_eq!(
            take_writes(Flavor::MySql).to_string(),
            "STOP REPLICA SQL_THREAD; SET GLOBAL super_read_only = 0, read_only = 0"
        );
        assert_eq!(
            forget_source(Flavor::MySql).to_string(),
            "STOP REPLICA; RESET REPLICA ALL"
        );
        for s in [take_writes(Flavor::MySql), forget_source(Flavor::MySql)] {
            assert!(!s.to_string().contains("SLAVE") && !s.to_string().contains("MASTER"));
        }
    }
}
