//! Session-tracking data as a client sees it: Gantry asks every backend
//! connection for more than the servers' defaults (every variable, "state
//! changed", the session's GTID), and passes on only what the client would
//! get directly — nothing to a client without CLIENT_SESSION_TRACK, what
//! the servers' defaults show to one with it. OK packets are compared byte
//! for byte with a direct connection to the primary.

mod common;

use common::raw::{Login, RawClient, CLIENT_SESSION_TRACK};
use common::{shared_topology, unique_name, Gantry};
use gantry::protocol::track;

/// The OK packets of `statements`, run in order on one fresh session.
async fn ok_packets(port: u16, tracking: bool, statements: &[String]) -> Vec<Vec<u8>> {
    let login = Login {
        capabilities: if tracking { CLIENT_SESSION_TRACK } else { 0 },
        ..Login::default()
    };
    let mut c = RawClient::login(port, &login).await;
    let mut out = Vec::new();
    for sql in statements {
        let ok = c.execute(sql).await;
        assert_eq!(ok.first(), Some(&0x00), "{sql}: {ok:?}");
        out.push(ok);
    }
    c.quit().await;
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn ok_packets_carry_what_a_direct_connection_would() {
    let t = shared_topology();
    let g = Gantry::start(t, &[]);
    let table = unique_name("trk");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT AUTO_INCREMENT PRIMARY KEY)"
    ));
    let statements: Vec<String> = [
        "SET time_zone = '+01:00'".to_string(),
        "SET sql_mode = 'ANSI_QUOTES'".to_string(),
        "USE test".to_string(),
        format!("INSERT INTO {table} VALUES (NULL)"),
        "SET @v = 1".to_string(),
        "CREATE TEMPORARY TABLE tmp_trk (a INT)".to_string(),
        "SET NAMES latin1".to_string(),
    ]
    .into();
    for tracking in [true, false] {
        let direct = ok_packets(t.primary.port, tracking, &statements).await;
        let proxied = ok_packets(g.port, tracking, &statements).await;
        for ((sql, d), p) in statements.iter().zip(&direct).zip(&proxied) {
            let (mut d, mut p) = (d.clone(), p.clone());
            if tracking {
                // Compare the entries as a set (see `normalized`).
                (d, p) = (normalized(&d), normalized(&p));
            }
            if sql.starts_with("INSERT") {
                // The insert id differs between runs: compare the rest.
                (d, p) = (strip_counts(&d), strip_counts(&p));
            }
            assert_eq!(p, d, "tracking={tracking}: {sql}");
        }
    }
}

/// An OK packet with its state-information entries sorted: the server
/// lists changed variables in the order of its own hash of the tracked
/// variables, which differs with the tracked set; clients read them as a set.
fn normalized(ok: &[u8]) -> Vec<u8> {
    let layout = track::ok_layout(ok).unwrap_or_else(|| panic!("an OK packet: {ok:?}"));
    let Some((a, b)) = layout.state else {
        return ok.to_vec();
    };
    let mut entries: Vec<String> = track::entries(&ok[a..b])
        .map(|e| format!("{e:?}"))
        .collect();
    entries.sort();
    let mut out = ok[..layout.info.1].to_vec();
    out.extend_from_slice(entries.join("|").as_bytes());
    out
}

/// An OK packet without its affected-rows and insert-id fields (small
/// values: one byte each).
fn strip_counts(ok: &[u8]) -> Vec<u8> {
    let mut v = vec![ok[0]];
    v.extend_from_slice(&ok[3..]);
    v
}
