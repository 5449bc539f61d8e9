//! One health probe of one backend over a kept `mysql_async` connection
//! with the monitor account.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, OptsBuilder, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::tls::mysql_ssl_opts;
use crate::config::{BackendSsl, BackendTls};

use super::discovery::{parse_hosts, ReplicaHost};
use super::gtid::{Gtid, GtidSet, MariaPos};
use super::replication::{ReplicaStatus, Row};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("bad backend address {0:?}")]
    BadAddress(String),
    #[error("cannot connect: {0}")]
    Connect(mysql_async::Error),
    #[error("probe query failed: {0}")]
    Query(mysql_async::Error),
    #[error("probe answered without {0}")]
    Incomplete(&'static str),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// MariaDB and MySQL name their GTID variables and functions differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    /// A GTID position as this server writes it.
    pub fn parse(self, text: &str) -> Gtid {
        match self {
            Flavor::MariaDb => Gtid::MariaDb(MariaPos::parse(text)),
            Flavor::MySql => Gtid::MySql(GtidSet::parse(text)),
        }
    }

    /// The query answering the server's executed position.
    pub fn position_sql(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SELECT @@GLOBAL.gtid_current_pos",
            Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
        }
    }

    /// A query answering 0 once `want` is applied, within `secs`.
    pub fn wait_sql(self, want: &Gtid, secs: f64) -> String {
        match self {
            Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{want}', {secs:.3})"),
            Flavor::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{want}', {secs:.3})"),
        }
    }
}

/// Which server answers: MySQL's `server_uuid` when there is one (MariaDB
/// has none), else `server_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub server_id: u32,
    pub uuid: Option<String>,
}

impl Identity {
    pub fn same_server(&self, other: &Identity) -> bool {
        match (&self.uuid, &other.uuid) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => self.server_id == other.server_id,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.uuid {
            Some(u) => write!(f, "server_id {} ({u})", self.server_id),
            None => write!(f, "server_id {}", self.server_id),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub flavor: Flavor,
    pub read_only: bool,
    pub identity: Identity,
    pub gtid: Option<Gtid>,
    /// `None`: the server is no replica (no status row), or see below.
    pub replication: Option<ReplicaStatus>,
    /// The server refused `SHOW SLAVE STATUS` (e.g. the monitor account
    /// lacks REPLICATION CLIENT / SLAVE MONITOR).
    pub replication_error: Option<String>,
    /// Its replicas, when asked for and permitted.
    pub replica_hosts: Option<Vec<ReplicaHost>>,
    /// `@@global.max_allowed_packet`: what new connections may send.
    pub max_allowed_packet: Option<usize>,
    /// A replica's heartbeats received from its source so far, and the
    /// period it asked for (seconds), when the server says.
    pub heartbeats: Option<u64>,
    pub heartbeat_period: Option<f64>,
}

/// The first DNS name a certificate was "only valid for", from rustls's
/// name-mismatch message (`... is only valid for DnsName("db.example")`).
fn presented_dns_name(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("not valid for name")?;
    let (_, rest) = rest.split_once("DnsName(\"")?;
    let (name, _) = rest.split_once("\")")?;
    Some(name.to_string())
}

/// Monitor credentials, read from the config before each probe.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// `backend-ssl*`, as for the data path.
    pub tls: Arc<BackendTls>,
}

impl Credentials {
    /// The monitor account of `cfg` (health probes, failover, account
    /// loading all log in with it).
    pub fn monitor(cfg: &crate::config::Config) -> Credentials {
        Credentials {
            user: cfg.monitor_username.clone(),
            password: cfg.monitor_password.clone(),
            tls: cfg.backend_tls.clone(),
        }
    }
}

struct Open {
    conn: Conn,
    flavor: Flavor,
    /// MySQL 8.0.22+: `SHOW REPLICA STATUS` / `SHOW REPLICAS`.
    modern: bool,
    since: Instant,
}

/// Keeps one connection to a backend and reconnects when it breaks.
pub struct Prober {
    addr: String,
    open: Option<Open>,
    warned_hosts: bool,
    /// `preferred` and the server offered no TLS: plain connections for
    /// these settings, without asking each time (until they are reloaded).
    plain_for: Option<Arc<BackendTls>>,
}

impl Prober {
    pub fn new(addr: String) -> Self {
        Self {
            addr,
            open: None,
            warned_hosts: false,
            plain_for: None,
        }
    }

    /// Forgets the connection (after a timeout or a credentials change).
    pub fn reset(&mut self) {
        self.open = None;
    }

    /// Closes the connection with COM_QUIT (at shutdown), waiting at most
    /// a second for the server.
    pub async fn close(&mut self) {
        if let Some(old) = self.open.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), old.conn.disconnect()).await;
        }
    }

    /// Probes once; a connection older than `max_age` is replaced first, so
    /// a VIP or DNS name that now points elsewhere is noticed.
    pub async fn probe(
        &mut self,
        creds: &Credentials,
        want_hosts: bool,
        max_age: Duration,
    ) -> Result<ProbeResult, ProbeError> {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.since.elapsed() >= max_age)
        {
            if let Some(old) = self.open.take() {
                // A polite COM_QUIT: a dropped socket counts as an aborted
                // client on the server and fills its error log.
                let _ = tokio::time::timeout(
                    max_age.min(Duration::from_secs(1)),
                    old.conn.disconnect(),
                )
                .await;
            }
        }
        let mut open = self.take_open(creds).await?;
        let result = self.run(&mut open, want_hosts).await?;
        self.open = Some(open);
        Ok(result)
    }

    /// Runs statements in order on the probe connection (opened if there
    /// is none): the failover's commands to this server. A failed one
    /// closes the connection.
    pub async fn execute(
        &mut self,
        creds: &Credentials,
        statements: &[&str],
    ) -> Result<(), ProbeError> {
        let mut open = self.take_open(creds).await?;
        for sql in statements {
            open.conn
                .query_drop(*sql)
                .await
                .map_err(ProbeError::Query)?;
        }
        self.open = Some(open);
        Ok(())
    }

    /// `SHOW SLAVE STATUS` (`SHOW REPLICA STATUS`): `None` if the server
    /// is no replica.
    pub async fn replica_status(
        &mut self,
        creds: &Credentials,
    ) -> Result<Option<ReplicaStatus>, ProbeError> {
        let mut open = self.take_open(creds).await?;
        let sql = if open.modern {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        };
        let rows = rows(&mut open.conn, sql).await?;
        self.open = Some(open);
        Ok(rows.first().map(ReplicaStatus::from_row))
    }

    /// The first column of the first row of `sql`, as text.
    pub async fn value(
        &mut self,
        creds: &Credentials,
        sql: &str,
    ) -> Result<Option<String>, ProbeError> {
        let mut open = self.take_open(creds).await?;
        let row = first_row(&mut open.conn, sql).await?;
        self.open = Some(open);
        Ok(text(&row, 0))
    }

    /// Every row of `sql`, each column as text (`None` for NULL).
    pub async fn text_rows(
        &mut self,
        creds: &Credentials,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ProbeError> {
        let mut open = self.take_open(creds).await?;
        let found = rows(&mut open.conn, sql).await?;
        self.open = Some(open);
        Ok(found
            .iter()
            .map(|r| r.iter().map(|(_, v)| v.clone()).collect())
            .collect())
    }

    /// The open connection, taken out while in use (a failed or abandoned
    /// use leaves none), or a new one.
    async fn take_open(&mut self, creds: &Credentials) -> Result<Open, ProbeError> {
        match self.open.take() {
            Some(o) => Ok(o),
            None => self.connect(creds).await,
        }
    }

    async fn connect(&mut self, creds: &Credentials) -> Result<Open, ProbeError> {
        let (host, port) =
            split_host_port(&self.addr).ok_or_else(|| ProbeError::BadAddress(self.addr.clone()))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(creds.user.clone()))
            .pass(Some(creds.password.clone()))
            .prefer_socket(false);
        let plain = self
            .plain_for
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, &creds.tls));
        let ssl = mysql_ssl_opts(&creds.tls).filter(|_| !plain);
        let mut conn = match ssl {
            None => Conn::new(opts).await,
            Some(ssl) => match Conn::new(opts.clone().ssl_opts(ssl.clone())).await {
                Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))
                    if creds.tls.mode == BackendSsl::Preferred =>
                {
                    self.plain_for = Some(creds.tls.clone());
                    Conn::new(opts).await
                }
                // mysql_async 0.37 does not recognise rustls's current
                // name-mismatch error, so its "skip domain validation"
                // fails; checking against the name the certificate carries
                // gives what verify-ca promises (a chain to the CA).
                Err(e) if creds.tls.mode == BackendSsl::VerifyCa => {
                    match presented_dns_name(&e.to_string()) {
                        Some(name) => {
                            let ssl = ssl.with_danger_tls_hostname_override(Some(name));
                            Conn::new(opts.ssl_opts(ssl)).await
                        }
                        None => Err(e),
                    }
                }
                other => other,
            },
        }
        .map_err(ProbeError::Connect)?;
        let row = first_row(&mut conn, "SELECT @@version, @@version_comment").await?;
        let version = text(&row, 0).unwrap_or_default();
        let comment = text(&row, 1).unwrap_or_default();
        let maria = version.to_ascii_lowercase().contains("mariadb")
            || comment.to_ascii_lowercase().contains("mariadb");
        let flavor = if maria {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        let modern = !maria && version_at_least(&version, (8, 0, 22));
        Ok(Open {
            conn,
            flavor,
            modern,
            since: Instant::now(),
        })
    }

    async fn run(&mut self, o: &mut Open, want_hosts: bool) -> Result<ProbeResult, ProbeError> {
        let vars = match o.flavor {
            Flavor::MariaDb => {
                "SELECT @@read_only, @@server_id, NULL, @@gtid_current_pos, @@global.max_allowed_packet"
            }
            Flavor::MySql => {
                "SELECT @@read_only, @@server_id, @@server_uuid, @@gtid_executed, @@global.max_allowed_packet"
            }
        };
        let row = first_row(&mut o.conn, vars).await?;
        let read_only = text(&row, 0).ok_or(ProbeError::Incomplete("@@read_only"))?;
        let server_id = text(&row, 1)
            .and_then(|s| s.trim().parse().ok())
            .ok_or(ProbeError::Incomplete("@@server_id"))?;
        let uuid = text(&row, 2).filter(|s| !s.is_empty());
        let gtid = text(&row, 3).map(|s| o.flavor.parse(&s));
        let max_allowed_packet = text(&row, 4).and_then(|s| s.trim().parse().ok());
        let status_sql = if o.modern {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        };
        // A refusal (usually a missing grant) is reported, not fatal: the
        // server is reachable, its replication state is just unknown.
        let (replication, replication_error) = match rows(&mut o.conn, status_sql).await {
            Ok(r) => (r.first().map(ReplicaStatus::from_row), None),
            Err(ProbeError::Query(mysql_async::Error::Server(e))) => (None, Some(e.message)),
            Err(e) => return Err(e),
        };
        let (heartbeats, heartbeat_period) = if replication.is_some() {
            heartbeat_counters(&mut o.conn, o.flavor).await
        } else {
            (None, None)
        };
        let replica_hosts = if want_hosts {
            let sql = if o.modern {
                "SHOW REPLICAS"
            } else {
                "SHOW SLAVE HOSTS"
            };
            match rows(&mut o.conn, sql).await {
                Ok(r) => Some(parse_hosts(&r)),
                // Usually a missing privilege: discovery is off, probing is not.
                Err(e) => {
                    if !self.warned_hosts {
                        self.warned_hosts = true;
                        tracing::warn!(backend = %self.addr, error = %e, "cannot list replicas; discovery disabled for this backend");
                    }
                    None
                }
            }
        } else {
            None
        };
        Ok(ProbeResult {
            flavor: o.flavor,
            read_only: read_only.trim() != "0",
            identity: Identity { server_id, uuid },
            gtid,
            replication,
            replication_error,
            replica_hosts,
            max_allowed_packet,
            heartbeats,
            heartbeat_period,
        })
    }
}

/// Heartbeats a replica received, and its heartbeat period; unknown when
/// the server will not say (then silence is not judged).
async fn heartbeat_counters(conn: &mut Conn, flavor: Flavor) -> (Option<u64>, Option<f64>) {
    let sql = match flavor {
        Flavor::MariaDb => {
            "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'SLAVE_RECEIVED_HEARTBEATS'), \
             (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'SLAVE_HEARTBEAT_PERIOD')"
        }
        Flavor::MySql => {
            "SELECT (SELECT COUNT_RECEIVED_HEARTBEATS FROM \
             performance_schema.replication_connection_status LIMIT 1), \
             (SELECT HEARTBEAT_INTERVAL FROM \
             performance_schema.replication_connection_configuration LIMIT 1)"
        }
    };
    match first_row(conn, sql).await {
        Ok(row) => (
            text(&row, 0).and_then(|s| s.trim().parse().ok()),
            text(&row, 1).and_then(|s| s.trim().parse().ok()),
        ),
        Err(_) => (None, None),
    }
}

async fn rows(conn: &mut Conn, sql: &str) -> Result<Vec<Row>, ProbeError> {
    let raw: Vec<mysql_async::Row> = conn.query(sql).await.map_err(ProbeError::Query)?;
    Ok(raw.into_iter().map(to_named).collect())
}

async fn first_row(conn: &mut Conn, sql: &str) -> Result<Row, ProbeError> {
    rows(conn, sql)
        .await?
        .into_iter()
        .next()
        .ok_or(ProbeError::Incomplete("a result row"))
}

fn to_named(row: mysql_async::Row) -> Row {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    names
        .into_iter()
        .zip(row.unwrap().into_iter().map(value_text))
        .collect()
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn text(row: &Row, i: usize) -> Option<String> {
    row.get(i).and_then(|(_, v)| v.clone())
}

/// `host:port`, `[v6]:port`; no port means 3306.
pub fn split_host_port(addr: &str) -> Option<(String, u16)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => 3306,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((addr.to_string(), 3306)),
    }
    .filter(|(h, _)| !h.is_empty())
}

/// `8.0.35-log` ≥ (8, 0, 22)?
fn version_at_least(version: &str, want: (u32, u32, u32)) -> bool {
    let mut nums = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let v = (
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
    );
    v >= want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split() {
        assert_eq!(
            split_host_port("127.0.0.1:3307"),
            Some(("127.0.0.1".into(), 3307))
        );
        assert_eq!(
            split_host_port("db.example"),
            Some(("db.example".into(), 3306))
        );
        assert_eq!(split_host_port("[::1]:3308"), Some(("::1".into(), 3308)));
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), 3306)));
        assert_eq!(split_host_port("::1:3306"), None);
        assert_eq!(split_host_port("h:notaport"), None);
        assert_eq!(split_host_port(":3306"), None);
    }

    #[test]
    fn versions_compare() {
        assert!(version_at_least("8.0.22", (8, 0, 22)));
        assert!(version_at_least("8.4.0-commercial", (8, 0, 22)));
        assert!(!version_at_least("8.0.21-log", (8, 0, 22)));
        assert!(!version_at_least("5.7.44", (8, 0, 22)));
        assert!(!version_at_least("", (8, 0, 22)));
    }

    #[test]
    fn identities_prefer_uuid() {
        let a = Identity {
            server_id: 1,
            uuid: Some("AB".into()),
        };
        let b = Identity {
            server_id: 1,
            uuid: Some("cd".into()),
        };
        assert!(
            !a.same_server(&b),
            "same server_id, different uuid: different servers"
        );
        assert!(a.same_server(&Identity {
            server_id: 9,
            uuid: Some("ab".into())
        }));
        let m = Identity {
            server_id: 2,
            uuid: None,
        };
        assert!(m.same_server(&Identity {
            server_id: 2,
            uuid: None
        }));
        assert!(!m.same_server(&Identity {
            server_id: 3,
            uuid: None
        }));
    }

    #[test]
    fn presented_name_of_a_mismatch() {
        let m = "Input/output error: invalid peer certificate: certificate not valid for \
                 name \"127.0.0.1\"; certificate is only valid for DnsName(\"db.x.example\") \
                 or DnsName(\"b\")";
        assert_eq!(presented_dns_name(m).as_deref(), Some("db.x.example"));
        assert_eq!(
            presented_dns_name("invalid peer certificate: UnknownIssuer"),
            None
        );
    }
}
