//! Server-side cursors (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then
//! COM_STMT_FETCH): none of the test clients use them, so this test speaks
//! the protocol itself, with Gantry's own backend-connection code as the
//! client, against the server directly and through Gantry alike.

mod common;

use bytes::BytesMut;
use gantry::backend::{BackendConn, ConnectParams};
use gantry::protocol::packet::{header, put_packet};
use gantry::protocol::Expect;
use std::time::Duration;

use common::{shared_topology, Gantry};

async fn login(port: u16) -> BackendConn {
    let addr = format!("127.0.0.1:{port}");
    BackendConn::connect(&ConnectParams {
        addr: &addr,
        user: "app",
        password: &gantry::protocol::credential::Credential::Clear("app_pw".into()),
        database: Some("test"),
        client_capabilities: 0x0100_0000 | 0x0004_0000 | 0x0002_0000, // DEPRECATE_EOF, PS_MULTI_RESULTS, MULTI_RESULTS
        collation: 45,
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("login")
}

fn packet(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    put_packet(&mut out, 0, payload);
    out
}

/// Packet payloads of a collected response.
fn payloads(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let (len, _) = header(&buf[pos..]);
        out.push(buf[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    out
}

/// Prepares `sql`, executes it with a read-only cursor and fetches 2 rows
/// at a time; returns the number of rows fetched per COM_STMT_FETCH.
async fn fetch_in_batches(conn: &mut BackendConn, sql: &str) -> Vec<usize> {
    let mut out = BytesMut::new();
    let mut prepare = vec![0x16];
    prepare.extend_from_slice(sql.as_bytes());
    let sc = conn
        .exchange(&packet(&prepare), Expect::Prepare, &mut out)
        .await
        .unwrap();
    assert!(!sc.error, "prepare failed: {:?}", payloads(&out).last());
    let id = sc.prepared.unwrap().statement_id.to_le_bytes();
    // COM_STMT_EXECUTE: id, flags = CURSOR_TYPE_READ_ONLY, iterations 1.
    let execute = [0x17, id[0], id[1], id[2], id[3], 0x01, 1, 0, 0, 0];
    let sc = conn
        .exchange(&packet(&execute), Expect::Execute, &mut out)
        .await
        .unwrap();
    assert!(!sc.error, "execute failed: {:?}", payloads(&out).last());
    let mut batches = Vec::new();
    loop {
        let fetch = [0x1c, id[0], id[1], id[2], id[3], 2, 0, 0, 0];
        let sc = conn
            .exchange(&packet(&fetch), Expect::Fetch, &mut out)
            .await
            .unwrap();
        assert!(!sc.error, "fetch failed: {:?}", payloads(&out).last());
        let rows = payloads(&out)
            .iter()
            .filter(|p| p.first() == Some(&0x00))
            .count();
        batches.push(rows);
        if sc.status.unwrap_or(0) & 0x0080 != 0 || rows == 0 || batches.len() > 10 {
            return batches; // SERVER_STATUS_LAST_ROW_SENT
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_fetch_works_through_gantry_as_directly() {
    let t = shared_topology();
    let table = common::unique_name("cursor");
    t.primary.sql(&format!(
        "CREATE TABLE test.{table} (id INT PRIMARY KEY); INSERT INTO test.{table} VALUES (1),(2),(3),(4),(5)"
    ));
    t.wait_replicas_caught_up(Duration::from_secs(20));
    let g = Gantry::start(t, &[]);
    let sql = format!("SELECT id FROM {table} ORDER BY id");
    let direct = fetch_in_batches(&mut login(t.replicas[0].port).await, &sql).await;
    let proxied = fetch_in_batches(&mut login(g.port).await, &sql).await;
    assert_eq!(direct.iter().sum::<usize>(), 5, "{direct:?}");
    assert!(direct.len() >= 3, "rows came in batches of 2: {direct:?}");
    assert_eq!(proxied, direct, "the same batches through Gantry");
    t.primary.sql(&format!("DROP TABLE test.{table}"));
}
