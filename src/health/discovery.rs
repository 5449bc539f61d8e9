//! Replica discovery: the primary's `SHOW SLAVE HOSTS` / `SHOW REPLICAS`
//! lists each connected replica's `report_host`/`report_port`; those not
//! yet known join the topology as `ro` backends (state unknown, so they
//! serve reads only once a probe finds them caught up).

use super::replication::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaHost {
    pub server_id: Option<u32>,
    pub host: String,
    pub port: u16,
}

impl ReplicaHost {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Rows with columns `Server_id, Host, Port, …`; replicas without a
/// `report_host` (empty Host) or with port 0 cannot be reached and are
/// skipped.
pub fn parse_hosts(rows: &[Row]) -> Vec<ReplicaHost> {
    rows.iter()
        .filter_map(|row| {
            let get = |name: &str| {
                row.iter()
                    .find(|(c, _)| c.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.as_deref())
                    .map(str::trim)
            };
            let host = get("Host").filter(|h| !h.is_empty())?.to_string();
            let port = get("Port")?.parse::<u16>().ok().filter(|p| *p != 0)?;
            let server_id = get("Server_id").and_then(|s| s.parse().ok());
            Some(ReplicaHost {
                server_id,
                host,
                port,
            })
        })
        .collect()
}

/// A backend already in the topology.
pub struct Known<'a> {
    pub addr: &'a str,
    pub server_id: Option<u32>,
}

/// The listed replicas that are neither a known address nor a known
/// server (by server_id), nor the primary itself.
pub fn unknown_replicas(
    hosts: &[ReplicaHost],
    known: &[Known<'_>],
    primary_server_id: u32,
) -> Vec<ReplicaHost> {
    let mut out: Vec<ReplicaHost> = Vec::new();
    for h in hosts {
        let addr = h.addr();
        let same_addr = |a: &str| a.eq_ignore_ascii_case(&addr);
        let same_id = |id: Option<u32>| id.is_some() && id == h.server_id;
        let dup = known
            .iter()
            .any(|k| same_addr(k.addr) || same_id(k.server_id))
            || h.server_id == Some(primary_server_id)
            || out.iter().any(|o| same_addr(&o.addr()));
        if !dup {
            out.push(h.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, Option<&str>)]) -> Row {
        cols.iter()
            .map(|(c, v)| (c.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn parses_mariadb_and_mysql_host_lists() {
        // MariaDB: Server_id, Host, Port, Master_id.
        let maria = row(&[
            ("Server_id", Some("3")),
            ("Host", Some("127.0.0.1")),
            ("Port", Some("41708")),
            ("Master_id", Some("1")),
        ]);
        // MySQL 8: Server_Id, Host, Port, Source_Id, Replica_UUID.
        let mysql = row(&[
            ("Server_Id", Some("7")),
            ("Host", Some("::1")),
            ("Port", Some("3310")),
            ("Source_Id", Some("1")),
            ("Replica_UUID", Some("3e11fa47-71ca-11e1-9e33-c80aa9429562")),
        ]);
        let no_report = row(&[
            ("Server_id", Some("4")),
            ("Host", Some("")),
            ("Port", Some("3306")),
        ]);
        let junk = row(&[
            ("Server_id", None),
            ("Host", Some("h")),
            ("Port", Some("x")),
        ]);
        let hosts = parse_hosts(&[maria, mysql, no_report, junk]);
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].addr(), "127.0.0.1:41708");
        assert_eq!(hosts[0].server_id, Some(3));
        assert_eq!(hosts[1].addr(), "[::1]:3310");
    }

    #[test]
    fn skips_known_addresses_servers_and_the_primary() {
        let h = |id, port| ReplicaHost {
            server_id: Some(id),
            host: "127.0.0.1".into(),
            port,
        };
        let hosts = vec![
            h(2, 3307),
            h(3, 3308),
            h(1, 3306),
            h(4, 3309),
            h(5, 3310),
            h(5, 3310),
        ];
        let known = [
            Known {
                addr: "127.0.0.1:3307",
                server_id: None,
            },
            // Configured under another name, same server.
            Known {
                addr: "localhost:3308",
                server_id: Some(3),
            },
            Known {
                addr: "vip:3306",
                server_id: Some(9),
            },
        ];
        let new = unknown_replicas(&hosts, &known, 1);
        let addrs: Vec<String> = new.iter().map(ReplicaHost::addr).collect();
        assert_eq!(addrs, ["127.0.0.1:3309", "127.0.0.1:3310"]);
    }
}
