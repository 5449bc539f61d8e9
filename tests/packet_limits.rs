//! The servers' max_allowed_packet through Gantry, as directly: a command
//! no backend would accept is refused with ERROR 1153 as soon as its
//! headers announce it (never buffered), and long data
//! (COM_STMT_SEND_LONG_DATA) beyond it makes executes fail with the
//! server's 1105 until COM_STMT_RESET, while Gantry keeps at most twice max_allowed_packet of it
//! per client.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raw::{Login, RawClient};
use common::{wait_until, Gantry, Topology, FAST_HEALTH};

const MAX_PACKET: usize = 1 << 20;

/// The error code and message of an ERR packet; panics on anything else.
fn error_of(p: &[u8]) -> (u16, String) {
    assert_eq!(
        p.first(),
        Some(&0xff),
        "an ERR packet: {:?}",
        &p[..p.len().min(40)]
    );
    let code = u16::from_le_bytes([p[1], p[2]]);
    // '#', five bytes of SQLSTATE, then the message.
    (code, String::from_utf8_lossy(&p[9..]).into_owned())
}

/// Sends `total` bytes of long data for parameter 0 in 400 KiB chunks, then
/// executes with a BLOB parameter; returns the execute's first packet.
async fn long_data_insert(c: &mut RawClient, id: u32, total: usize) -> Vec<u8> {
    let mut left = total;
    while left > 0 {
        let n = left.min(400 << 10);
        let mut body = vec![0x18];
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.resize(body.len() + n, b'x');
        c.send_command(&body).await;
        left -= n;
    }
    // flags 0, one iteration, null bitmap 0, types bound: BLOB.
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0x00, 1, 0xfc, 0x00]);
    c.send_command(&exec).await;
    c.read().await.0
}

/// The `mariadb` CLI runs a 1.1 MB statement read from stdin on `port`;
/// returns its error line.
fn cli_big_statement(port: u16) -> String {
    let mut child = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uapp",
            "-papp_pw",
            "--max-allowed-packet=64M",
            "test",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client is installed");
    let sql = format!("SELECT LENGTH('{}');\n", "y".repeat(1_100_000));
    let _ = child.stdin.take().unwrap().write_all(sql.as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the statement is refused: {out:?}");
    String::from_utf8_lossy(&out.stderr)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn max_allowed_packet_applies_as_directly_to_commands_and_long_data() {
    let t = Topology::start();
    for s in t.servers() {
        s.sql(&format!("SET GLOBAL max_allowed_packet = {MAX_PACKET}"));
    }
    let primary = t.server("primary");
    primary.sql("CREATE TABLE IF NOT EXISTS test.blobs (b LONGBLOB)");
    let g = Gantry::start(&t, &FAST_HEALTH);
    // The first probes (which read max_allowed_packet) are done once every
    // backend is up.
    wait_until(Duration::from_secs(10), "backends up", || {
        let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM backends"]);
        let rows = String::from_utf8_lossy(&out.stdout).to_string();
        let states: Vec<&str> = rows.lines().filter_map(|l| l.split('\t').nth(2)).collect();
        states == ["up", "up", "up"]
    });

    for port in [primary.port, g.port] {
        let via = if port == g.port { "Gantry" } else { "direct" };
        // A statement and a COM_STMT_EXECUTE of max_allowed_packet bytes:
        // 1153, then the connection is closed.
        for body in [
            [&b"\x03SELECT '"[..], &vec![b'z'; MAX_PACKET]].concat(),
            [&b"\x17\x01\0\0\0"[..], &vec![0u8; MAX_PACKET]].concat(),
        ] {
            let mut c = RawClient::login(port, &Login::default()).await;
            c.send_command(&body).await;
            let (code, message) = error_of(&c.read().await.0);
            assert_eq!(
                (code, message.as_str()),
                (1153, "Got a packet bigger than 'max_allowed_packet' bytes"),
                "{via}, command 0x{:02x}",
                body[0]
            );
        }
        // Long data: exactly max_allowed_packet per parameter is accepted,
        // one byte more fails the execute with 1105; the connection lives.
        let mut c = RawClient::login(port, &Login::default()).await;
        let id = c.prepare("INSERT INTO test.blobs VALUES (?)").await;
        let ok = long_data_insert(&mut c, id, MAX_PACKET).await;
        assert_eq!(ok[0], 0, "{via}: {ok:?}");
        let err = long_data_insert(&mut c, id, MAX_PACKET + 1).await;
        let (code, message) = error_of(&err);
        assert_eq!(code, 1105, "{via}: {message}");
        assert!(
            message.contains("mysql_send_long_data() is longer than 'max_allowed_packet'"),
            "{via}: {message}"
        );
        // The statement stays failed until COM_STMT_RESET.
        let err = long_data_insert(&mut c, id, 10).await;
        assert_eq!(error_of(&err).0, 1105, "{via}");
        let mut reset = vec![0x1a];
        reset.extend_from_slice(&id.to_le_bytes());
        c.send_command(&reset).await;
        assert_eq!(c.read().await.0[0], 0, "{via}: reset OK");
        let ok = long_data_insert(&mut c, id, 10).await;
        assert_eq!(ok[0], 0, "{via}: {ok:?}");
        c.quit().await;
        // libmariadb reads the refusal of a large statement. (The server
        // closes without reading the rest, so a client still writing may
        // see only the lost connection; Gantry reads it to its end first.)
        let said = cli_big_statement(port);
        let refused =
            "ERROR 1153 (08S01) at line 1: Got a packet bigger than 'max_allowed_packet' bytes";
        if port == g.port {
            assert_eq!(said, refused, "{via}");
        } else {
            assert!(
                said == refused || said == "ERROR 2006 (HY000) at line 1: Server has gone away",
                "{via}: {said}"
            );
        }
    }
    let rows = primary.sql("SELECT COUNT(*), SUM(LENGTH(b)) FROM test.blobs");
    assert_eq!(
        rows.trim(),
        format!("4\t{}", 2 * (MAX_PACKET + 10)),
        "two accepted inserts each, directly and through Gantry"
    );
}

/// A COM_STMT_EXECUTE of statement `id` with one BLOB parameter `value`;
/// `bind`: the types are sent (else the server's, or Gantry's, memory of
/// an earlier execute's types applies).
fn blob_execute(id: u32, value: &[u8], bind: bool) -> Vec<u8> {
    let mut b = vec![0x17];
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    if bind {
        b.extend_from_slice(&[1, 0xfc, 0]);
    } else {
        b.push(0);
    }
    b.push(0xfe);
    b.extend_from_slice(&(value.len() as u64).to_le_bytes());
    b.extend_from_slice(value);
    b
}

/// The one string column of a one-row binary result set.
async fn binary_string_row(c: &mut RawClient) -> String {
    let (count, _) = c.read().await;
    assert_eq!(count, [1], "one column: {count:?}");
    c.read().await; // column definition
    let (row, _) = c.read().await;
    // 0x00, a null bitmap of one byte, then a length-prefixed string.
    assert_eq!(row[0], 0);
    let len = row[2] as usize;
    let value = String::from_utf8_lossy(&row[3..3 + len]).into_owned();
    let (end, _) = c.read().await;
    assert_eq!(end[0], 0xfe, "end of rows");
    value
}

#[tokio::test(flavor = "multi_thread")]
async fn executes_longer_than_a_packet_are_streamed_where_their_statement_goes() {
    let t = common::shared_topology();
    let table = common::unique_name("streamed");
    let primary = t.server("primary");
    primary.sql(&format!("CREATE TABLE test.{table} (b LONGBLOB)"));
    let g = Gantry::start(t, &FAST_HEALTH);
    let mut c = RawClient::login(g.port, &Login::default()).await;
    let value: Vec<u8> = (0..20 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();

    let insert = c
        .prepare(&format!("INSERT INTO test.{table} VALUES (?)"))
        .await;
    // Types bound: streamed with the backend's statement id.
    c.send_command(&blob_execute(insert, &value, true)).await;
    assert_eq!(c.read().await.0[0], 0, "streamed insert OK");
    // Types from the earlier execute: buffered, Gantry inserts them.
    c.send_command(&blob_execute(insert, &value, false)).await;
    assert_eq!(c.read().await.0[0], 0, "buffered insert OK");

    // A read goes to a replica, streamed too.
    let select = c
        .prepare("SELECT CONCAT(LENGTH(?), ' ', @@server_id)")
        .await;
    c.send_command(&blob_execute(select, &value[..17 << 20], true))
        .await;
    let answer = binary_string_row(&mut c).await;
    let (length, server) = answer.split_once(' ').unwrap();
    assert_eq!(length, (17 << 20).to_string());
    let replicas: Vec<String> = t
        .servers()
        .filter(|s| s.name != "primary")
        .map(|s| s.server_id.to_string())
        .collect();
    assert!(replicas.iter().any(|r| r == server), "ran on {server}");
    // The session carries on.
    let (_, rows) = c.query("SELECT 1").await;
    assert_eq!(rows.len(), 1);
    c.quit().await;

    // The same bytes, made by the server.
    let expected = format!(
        "SUBSTR(REPEAT('abcdefghijklmnopqrstuvwxyz', {}), 1, {})",
        value.len() / 26 + 1,
        value.len()
    );
    let stored = primary.sql(&format!(
        "SELECT COUNT(*), MIN(b = {expected}) FROM test.{table}"
    ));
    assert_eq!(stored.trim(), "2\t1", "both rows whole");
    primary.sql(&format!("DROP TABLE test.{table}"));
}
