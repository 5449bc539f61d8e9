//! Address-like values: backend `host:port[@weight]`, `user:password`
//! accounts and client-IP allow-list entries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Port used when a backend address has none (`db1` means `db1:3306`).
pub const DEFAULT_MYSQL_PORT: u16 = 3306;

/// Largest accepted replica weight (`host:port@1000`).
pub const MAX_WEIGHT: u32 = 1000;

/// A backend MySQL server: `host:port`, plus a weight for read-only replicas.
///
/// `host` is stored without brackets (`::1`, not `[::1]`); `Display` adds
/// them back and prints `host:port` (never the weight);
/// [`BackendAddr::to_config_string`] adds `@weight` when it is not 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendAddr {
    pub host: String,
    pub port: u16,
    pub weight: u32,
}

impl BackendAddr {
    /// `host:port` with weight 1.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BackendAddr {
            host: host.into(),
            port,
            weight: 1,
        }
    }

    /// Parses `host[:port][@weight]`: a host name, an IPv4 address or a
    /// bracketed IPv6 address (`[::1]:3306`). The port defaults to 3306 and
    /// the weight to 1; the weight must be 1..=1000.
    ///
    /// The error is the reason only (e.g. `port out of range`), so callers
    /// can embed it in a message that also names the option and the value.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".to_string());
        }
        let (hostport, weight) = match s.rsplit_once('@') {
            Some((hostport, weight)) => (hostport, parse_weight(weight)?),
            None => (s, 1),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(BackendAddr { host, port, weight })
    }

    /// `host:port`, or `host:port@weight` when the weight is not 1: the form
    /// written back to the configuration file.
    pub fn to_config_string(&self) -> String {
        if self.weight == 1 {
            self.to_string()
        } else {
            format!("{self}@{}", self.weight)
        }
    }
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for BackendAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendAddr::parse(s)
    }
}

fn parse_weight(w: &str) -> Result<u32, String> {
    let w = w.trim();
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
        return Err("weight is not a number".to_string());
    }
    match w.parse::<u32>() {
        Ok(n) if (1..=MAX_WEIGHT).contains(&n) => Ok(n),
        _ => Err(format!("weight out of range 1..={MAX_WEIGHT}")),
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after IPv6 address".to_string())?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address".to_string());
        }
        let port = if after.is_empty() {
            DEFAULT_MYSQL_PORT
        } else if let Some(port) = after.strip_prefix(':') {
            parse_port(port)?
        } else {
            return Err("unexpected text after ']'".to_string());
        };
        return Ok((host.to_string(), port));
    }
    let (host, port) = match s.matches(':').count() {
        0 => (s, DEFAULT_MYSQL_PORT),
        1 => {
            let (host, port) = s.split_once(':').unwrap_or((s, ""));
            (host, parse_port(port)?)
        }
        _ if s.parse::<Ipv6Addr>().is_ok() => {
            return Err("IPv6 address must be in brackets, e.g. [::1]:3306".to_string())
        }
        _ => return Err("too many ':'".to_string()),
    };
    validate_host(host)?;
    Ok((host.to_string(), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err("missing port".to_string());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err("port is not a number".to_string());
    }
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err("port out of range".to_string()),
    }
}

fn validate_host(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("empty host".to_string());
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match h.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err("invalid IPv4 address".to_string()),
        };
    }
    // Host names: RFC 1123 labels, plus '_' (common in container names);
    // a single trailing dot (fully qualified name) is allowed.
    let name = h.strip_suffix('.').unwrap_or(h);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("invalid host name".to_string());
    }
    Ok(())
}

/// A client account, `user:password`.
///
/// Parsing splits at the FIRST `:`, so passwords may contain colons.
/// `Debug` never shows the password, and there is deliberately no
/// `Display`: secrets must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPassword {
    pub user: String,
    pub password: String,
}

impl UserPassword {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        UserPassword {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Parses `user:password` (split at the first `:`; the password may be
    /// empty). The error never contains the password.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (user, password) = s
            .split_once(':')
            .ok_or_else(|| "missing ':' between user and password".to_string())?;
        if user.trim().is_empty() {
            return Err("empty user name".to_string());
        }
        Ok(UserPassword::new(user, password))
    }

    /// `user:password`, the form written back to the configuration file.
    pub fn to_config_string(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }
}

impl fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPassword")
            .field("user", &self.user)
            .field("password", &super::Redacted)
            .finish()
    }
}

/// Checks one `client-ips` entry: a full IPv4/IPv6 address, an IPv4 prefix
/// of whole octets (`192.168.1.` or `192.168.1`, `10.`), or a CIDR block
/// (`10.0.0.0/8`, `fd00::/8`).
pub(super) fn validate_client_ip(s: &str) -> Result<(), String> {
    match ClientPattern::parse(s) {
        Some(_) => Ok(()),
        None => Err("not an IP address, IPv4 prefix or CIDR block".to_string()),
    }
}

/// Whether `ip` matches one `client-ips` entry (see [`client_ip_allowed`]).
/// Invalid patterns match nothing.
pub fn client_ip_matches(pattern: &str, ip: IpAddr) -> bool {
    match ClientPattern::parse(pattern) {
        Some(p) => p.matches(normalize_ip(ip)),
        None => false,
    }
}

/// Whether a client connecting from `ip` is allowed by the `client-ips`
/// list: an empty list allows everyone; otherwise some entry must match.
/// Entries are full addresses (`127.0.0.1`), IPv4 prefixes of whole octets
/// (`192.168.1.` matches 192.168.1.0/24 — not 192.168.10.x), or CIDR blocks.
/// IPv4-mapped IPv6 client addresses (`::ffff:1.2.3.4`) match as IPv4.
pub fn client_ip_allowed(allowed: &[String], ip: IpAddr) -> bool {
    allowed.is_empty() || allowed.iter().any(|p| client_ip_matches(p, ip))
}

fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

enum ClientPattern {
    Exact(IpAddr),
    Prefix(Vec<u8>),
    Cidr(IpAddr, u8),
}

impl ClientPattern {
    fn parse(s: &str) -> Option<ClientPattern> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(ClientPattern::Exact(normalize_ip(ip)));
        }
        if let Some((ip, len)) = s.split_once('/') {
            let ip = ip.parse::<IpAddr>().ok()?;
            if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let len = len.parse::<u8>().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return (len <= max).then_some(ClientPattern::Cidr(ip, len));
        }
        let body = s.strip_suffix('.').unwrap_or(s);
        let octets = body
            .split('.')
            .map(|o| {
                if o.is_empty() || o.len() > 3 || !o.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    o.parse::<u8>().ok()
                }
            })
            .collect::<Option<Vec<u8>>>()?;
        (1..=3)
            .contains(&octets.len())
            .then_some(ClientPattern::Prefix(octets))
    }

    fn matches(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (ClientPattern::Exact(p), ip) => *p == ip,
            (ClientPattern::Prefix(octets), IpAddr::V4(v4)) => {
                v4.octets().starts_with(octets.as_slice())
            }
            (ClientPattern::Prefix(_), IpAddr::V6(_)) => false,
            (ClientPattern::Cidr(IpAddr::V4(net), len), IpAddr::V4(v4)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(v4) & mask
            }
            (ClientPattern::Cidr(IpAddr::V6(net), len), IpAddr::V6(v6)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(v6) & mask
            }
            (ClientPattern::Cidr(..), _) => false,
        }
    }
}
