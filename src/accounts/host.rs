//! Host parts of MySQL accounts (`'user'@'host'`) matched against a
//! client's address, and ordered the way the server picks among several
//! accounts of one name: the most specific host first.

use std::net::IpAddr;

/// Whether `pattern` (a literal address or name, a `%`/`_` wildcard
/// pattern, `ip/netmask`, or `localhost`) covers `client`.
pub fn matches(pattern: &str, client: IpAddr) -> bool {
    let addr = client.to_string();
    if pattern.is_empty() || pattern == "%" {
        return true;
    }
    if pattern.eq_ignore_ascii_case("localhost") {
        return client.is_loopback();
    }
    if let Some((net, mask)) = pattern.split_once('/') {
        return match (net.parse::<IpAddr>(), mask.parse::<IpAddr>(), client) {
            (Ok(IpAddr::V4(n)), Ok(IpAddr::V4(m)), IpAddr::V4(c)) => {
                u32::from(c) & u32::from(m) == u32::from(n)
            }
            _ => false,
        };
    }
    like(pattern.as_bytes(), addr.as_bytes())
}

/// SQL LIKE without escapes: `%` any run, `_` one character, the rest
/// case-insensitively. Row by row over the subject, so a pattern full of
/// `%` costs pattern × subject steps, never more.
fn like(p: &[u8], s: &[u8]) -> bool {
    // matched[j]: the first j pattern bytes match the subject so far.
    let mut matched = vec![false; p.len() + 1];
    matched[0] = true;
    for j in 0..p.len() {
        matched[j + 1] = matched[j] && p[j] == b'%';
    }
    for &c in s {
        let mut next = vec![false; p.len() + 1];
        for j in 0..p.len() {
            next[j + 1] = match p[j] {
                b'%' => next[j] || matched[j + 1],
                b'_' => matched[j],
                x => matched[j] && x.eq_ignore_ascii_case(&c),
            };
        }
        matched = next;
    }
    matched[p.len()]
}

/// Sort key, smaller = more specific: literal hosts first, then patterns
/// by how long their literal prefix is, `%` and empty last (as the server
/// sorts its account list).
pub fn specificity(pattern: &str) -> (u8, usize) {
    if pattern.is_empty() || pattern == "%" {
        return (2, 0);
    }
    match pattern.find(['%', '_']) {
        None => (0, 0),
        Some(at) => (1, usize::MAX - at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_patterns_as_the_server_reads_them() {
        assert!(matches("%", ip("10.1.2.3")));
        assert!(matches("", ip("10.1.2.3")));
        assert!(matches("10.1.2.3", ip("10.1.2.3")));
        assert!(!matches("10.1.2.3", ip("10.1.2.4")));
        assert!(matches("10.1.2.%", ip("10.1.2.200")));
        assert!(!matches("10.1.2.%", ip("10.1.3.1")));
        assert!(matches("10.1.2._", ip("10.1.2.7")));
        assert!(!matches("10.1.2._", ip("10.1.2.70")));
        assert!(matches("10.1.0.0/255.255.0.0", ip("10.1.200.3")));
        assert!(!matches("10.1.0.0/255.255.0.0", ip("10.2.0.3")));
        assert!(matches("localhost", ip("127.0.0.1")));
        assert!(matches("localhost", ip("::1")));
        assert!(!matches("localhost", ip("10.0.0.1")));
        assert!(matches("1%.%.%3", ip("10.1.2.3")));
        assert!(!matches("1%.%.%4", ip("10.1.2.3")));
        // Quick even when built to be slow for a naive matcher.
        let hostile = format!("{}x", "%".repeat(200));
        assert!(!matches(&hostile, ip("255.255.255.255")));
    }

    #[test]
    fn the_most_specific_host_sorts_first() {
        let mut hosts = vec!["%", "10.%", "10.1.2.3", "10.1.%"];
        hosts.sort_by_key(|h| specificity(h));
        assert_eq!(hosts, ["10.1.2.3", "10.1.%", "10.%", "%"]);
    }
}
