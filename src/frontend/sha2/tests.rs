//! The server side of the documented exchanges, byte for byte, against a
//! scripted client on an in-memory pipe.

use super::*;
use crate::protocol::rsa_key::{encrypt_password, tests::test_keys};
use crate::protocol::sha2::fast_answer;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const NONCE: &[u8; 20] = b"abcdefghij0123456789";

struct Pipe {
    io: DuplexStream,
    tls: bool,
}

impl ReadInto for Pipe {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.io.read_buf(buf).await
    }
}

impl LoginIo for Pipe {
    fn on_tls(&self) -> bool {
        self.tls
    }
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }
}

fn server() -> Arc<Sha2Server> {
    Arc::new(Sha2Server::with_keys(test_keys()))
}

/// Runs the server side on one end of a pipe; the test is the client.
fn start(
    server: &Arc<Sha2Server>,
    user: &'static str,
    password: Option<&'static str>,
    response: Vec<u8>,
    tls: bool,
) -> (
    DuplexStream,
    tokio::task::JoinHandle<io::Result<Sha2Outcome>>,
) {
    let (ours, theirs) = tokio::io::duplex(4096);
    let server = server.clone();
    let task = tokio::spawn(async move {
        let mut pipe = Pipe { io: theirs, tls };
        let mut reader = PacketReader::new();
        server
            .authenticate(
                &mut pipe,
                &mut reader,
                Attempt {
                    user,
                    password,
                    nonce: NONCE,
                    response: &response,
                },
                2,
            )
            .await
    });
    (ours, task)
}

async fn expect(client: &mut DuplexStream, bytes: &[u8]) {
    let mut got = vec![0u8; bytes.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, bytes);
}

/// A packet from the server: (sequence id, payload).
async fn read_packet(client: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 4];
    client.read_exact(&mut head).await.unwrap();
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    let mut payload = vec![0u8; len];
    client.read_exact(&mut payload).await.unwrap();
    (head[3], payload)
}

async fn send(client: &mut DuplexStream, seq: u8, payload: &[u8]) {
    let mut out = BytesMut::new();
    put_packet(&mut out, seq, payload);
    client.write_all(&out).await.unwrap();
}

#[tokio::test]
async fn full_over_rsa_then_fast_then_a_wrong_answer() {
    let server = server();
    // Login (seq 1) → 0x01 0x04 (2) → 0x02 (3) → 0x01 + PEM (4) →
    // encrypted password (5); the caller's OK is 6.
    let (mut c, task) = start(
        &server,
        "app",
        Some("app_pw"),
        fast_answer("app_pw", NONCE),
        false,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    send(&mut c, 3, &[0x02]).await;
    let (seq, key) = read_packet(&mut c).await;
    assert_eq!(seq, 4);
    assert_eq!(key[0], 0x01);
    assert_eq!(&key[1..], test_keys().public_pem().as_bytes());
    let cipher = encrypt_password(&key[1..], "app_pw", NONCE).unwrap();
    send(&mut c, 5, &cipher).await;
    let out = task.await.unwrap().unwrap();
    assert_eq!(
        (out.accepted, out.next_seq, out.path),
        (true, 6, "full over RSA")
    );

    // Cached now: 0x01 0x03 (2), the caller's OK is 3.
    let (mut c, task) = start(
        &server,
        "app",
        Some("app_pw"),
        fast_answer("app_pw", NONCE),
        false,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x03]).await;
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq, out.path), (true, 3, "fast"));

    // A wrong answer for a cached account: refused at once (ERR is 2).
    let (c, task) = start(
        &server,
        "app",
        Some("app_pw"),
        fast_answer("nope", NONCE),
        false,
    );
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq), (false, 2));
    drop(c);

    // The password changed: the cache no longer serves the account.
    let (mut c, task) = start(
        &server,
        "app",
        Some("new_pw"),
        fast_answer("new_pw", NONCE),
        true,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    send(&mut c, 3, b"new_pw\0").await;
    let out = task.await.unwrap().unwrap();
    assert_eq!(
        (out.accepted, out.next_seq, out.path),
        (true, 4, "full over TLS")
    );
}

#[tokio::test]
async fn full_over_tls_takes_the_clear_password() {
    let server = server();
    let (mut c, task) = start(
        &server,
        "app",
        Some("app_pw"),
        fast_answer("app_pw", NONCE),
        true,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    // Documented: the password and a NUL, sequence 3.
    send(&mut c, 3, b"app_pw\0").await;
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq), (true, 4));

    let (mut c, task) = start(
        &server,
        "bob",
        Some("bob_pw"),
        fast_answer("bob_pw", NONCE),
        true,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    send(&mut c, 3, b"wrong\0").await;
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq), (false, 4));
    // Not cached by a failure.
    assert!(server.cached("bob").is_none());
}

#[tokio::test]
async fn unknown_users_and_bad_rsa_packets_are_refused_alike() {
    let server = server();
    // Same exchange as for a known account, then refused.
    let (mut c, task) = start(&server, "ghost", None, fast_answer("x", NONCE), false);
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    send(&mut c, 3, &[0x02]).await;
    let (seq, _) = read_packet(&mut c).await;
    assert_eq!(seq, 4);
    send(&mut c, 5, &[0u8; 256]).await;
    assert!(!task.await.unwrap().unwrap().accepted);

    // Cleartext without TLS is not accepted: it must be encrypted.
    let (mut c, task) = start(
        &server,
        "app",
        Some("app_pw"),
        fast_answer("app_pw", NONCE),
        false,
    );
    expect(&mut c, &[2, 0, 0, 2, 0x01, 0x04]).await;
    send(&mut c, 3, b"app_pw\0").await;
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq), (false, 4));

    // Empty passwords: an empty answer, no more packets.
    let (_c, task) = start(&server, "e", Some(""), Vec::new(), false);
    assert_eq!(task.await.unwrap().unwrap().next_seq, 2);
    let (_c, task) = start(&server, "e", Some(""), fast_answer("x", NONCE), false);
    assert!(!task.await.unwrap().unwrap().accepted);
}

#[tokio::test]
async fn an_empty_first_answer_gets_a_switch_request() {
    // libmariadb with --default-auth=caching_sha2_password: the greeting
    // named another plugin, so its login carries no answer.
    let server = server();
    let (mut c, task) = start(&server, "app", Some("app_pw"), Vec::new(), true);
    let mut switch = vec![1 + 21 + 1 + 20 + 1, 0, 0, 2, 0xfe];
    switch.extend_from_slice(b"caching_sha2_password\0");
    switch.extend_from_slice(NONCE);
    switch.push(0);
    expect(&mut c, &switch).await;
    send(&mut c, 3, &fast_answer("app_pw", NONCE)).await;
    expect(&mut c, &[2, 0, 0, 4, 0x01, 0x04]).await;
    send(&mut c, 5, b"app_pw\0").await;
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.accepted, out.next_seq), (true, 6));
    // An empty answer again: refused.
    let (mut c, task) = start(&server, "app", Some("app_pw"), Vec::new(), true);
    expect(&mut c, &switch).await;
    send(&mut c, 3, b"").await;
    assert!(!task.await.unwrap().unwrap().accepted);
}
