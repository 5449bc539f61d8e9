//! caching_sha2_password on both sides.
//!
//! Backends: MySQL 8.4 cannot run here, so a scripted server speaks its
//! documented exchange (greeting with caching_sha2_password, `0x01 0x04`,
//! its public key on `0x02`, the RSA-encrypted password checked with its
//! private key, or `0x01 0x03` for the fast path) and `BackendConn::connect`
//! logs in to it.
//!
//! Clients: through Gantry against the shared topology, with the `mariadb`
//! CLI's caching_sha2_password plugin (libmariadb: full authentication
//! with RSA when not on TLS) and mysql-connector-python (pure; full
//! authentication over TLS), then the fast path from Gantry's cache.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gantry::backend::{BackendConn, ConnectParams};
use gantry::protocol::auth::parse_login;
use gantry::protocol::credential::{native_hash_text, Credential};
use gantry::protocol::packet::{put_packet, PacketReader};
use gantry::protocol::rsa_key::ServerKeys;
use gantry::protocol::sha2::{cache_digest, fast_matches};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::certs::TestCa;
use common::{clients, shared_topology, Gantry};

const NONCE: &[u8; 20] = b"8.4-nonce-0123456789";

/// What the scripted server does after the login request.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// `0x01 0x04`, key on request, decrypt and check.
    Full,
    /// Check the fast answer, `0x01 0x03`, OK.
    Fast,
}

/// A MySQL 8.4 greeting (protocol 10), byte for byte as documented.
fn greeting() -> Vec<u8> {
    greeting_with(0)
}

fn greeting_with(extra_caps: u32) -> Vec<u8> {
    let caps: u32 = extra_caps
        | 0x0000_0001 // LONG_PASSWORD
        | 0x0000_0200 // PROTOCOL_41
        | 0x0000_2000 // TRANSACTIONS
        | 0x0000_8000 // SECURE_CONNECTION
        | 0x0008_0000 // PLUGIN_AUTH
        | 0x0020_0000; // PLUGIN_AUTH_LENENC_CLIENT_DATA
    let mut p = vec![10];
    p.extend_from_slice(b"8.4.3\0");
    p.extend_from_slice(&77u32.to_le_bytes());
    p.extend_from_slice(&NONCE[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(255); // utf8mb4_0900_ai_ci
    p.extend_from_slice(&2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&NONCE[8..]);
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

const OK: &[u8] = &[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

async fn write(s: &mut TcpStream, seq: u8, payload: &[u8]) {
    let mut out = BytesMut::new();
    put_packet(&mut out, seq, payload);
    s.write_all(&out).await.unwrap();
}

/// Serves one login with `script`, then answers every query with OK.
/// Returns the packets it received after the login, for the assertions.
async fn fake_mysql84(
    listener: TcpListener,
    keys: Arc<ServerKeys>,
    password: &'static str,
    script: Script,
) -> Vec<(u8, Vec<u8>)> {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut reader = PacketReader::new();
    let mut seen = Vec::new();
    write(&mut s, 0, &greeting()).await;
    let (login, seq) = reader.read_payload(&mut s).await.unwrap();
    assert_eq!(seq, 1);
    let login = parse_login(&login).unwrap();
    assert_eq!(login.user, "app");
    assert_eq!(login.auth_plugin.as_deref(), Some("caching_sha2_password"));
    assert_eq!(login.auth_response.len(), 32);
    let ok_seq = match script {
        Script::Fast => {
            // Only a cache hit checks the fast answer (as the server).
            assert!(fast_matches(
                &cache_digest(password),
                NONCE,
                &login.auth_response
            ));
            write(&mut s, 2, &[0x01, 0x03]).await;
            3
        }
        Script::Full => {
            write(&mut s, 2, &[0x01, 0x04]).await;
            let (req, seq) = reader.read_payload(&mut s).await.unwrap();
            seen.push((seq, req.clone()));
            assert_eq!((seq, req), (3, vec![0x02]), "public key request");
            let mut key = vec![0x01];
            key.extend_from_slice(keys.public_pem().as_bytes());
            write(&mut s, 4, &key).await;
            let (cipher, seq) = reader.read_payload(&mut s).await.unwrap();
            assert_eq!(seq, 5);
            assert_eq!(cipher.len(), 256, "one RSA-2048 block");
            seen.push((seq, cipher.clone()));
            if !keys.password_matches(&cipher, NONCE, password) {
                let mut err = vec![0xff];
                err.extend_from_slice(&1045u16.to_le_bytes());
                err.extend_from_slice(b"#28000Access denied for user 'app'");
                write(&mut s, 6, &err).await;
                return seen;
            }
            6
        }
    };
    write(&mut s, ok_seq, OK).await;
    // Gantry's own statements after login (session tracking set-up).
    while let Ok((_, _)) = reader.read_payload(&mut s).await {
        write(&mut s, 1, OK).await;
    }
    seen
}

async fn connect(
    port: u16,
    password: &Credential,
) -> Result<BackendConn, gantry::protocol::MyError> {
    let addr = format!("127.0.0.1:{port}");
    BackendConn::connect(&ConnectParams {
        addr: &addr,
        user: "app",
        password,
        database: None,
        client_capabilities: 0,
        collation: 45,
        timeout: Duration::from_secs(20),
    })
    .await
}

fn server_keys() -> Arc<ServerKeys> {
    static KEYS: std::sync::OnceLock<Arc<ServerKeys>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Arc::new(ServerKeys::generate().unwrap()))
        .clone()
}

async fn backend(
    script: Script,
    password: &'static str,
) -> (u16, tokio::task::JoinHandle<Vec<(u8, Vec<u8>)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(fake_mysql84(listener, server_keys(), password, script));
    (port, task)
}

#[tokio::test]
async fn backend_full_authentication_with_the_servers_rsa_key() {
    let (port, server) = backend(Script::Full, "app_pw").await;
    let conn = connect(port, &Credential::Clear("app_pw".into()))
        .await
        .expect("full authentication over RSA");
    assert_eq!(conn.thread_id, 77);
    drop(conn);
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn backend_fast_authentication() {
    let (port, server) = backend(Script::Fast, "app_pw").await;
    let conn = connect(port, &Credential::Clear("app_pw".into()))
        .await
        .expect("fast authentication");
    drop(conn);
    assert!(server.await.unwrap().is_empty());
}

#[tokio::test]
async fn backend_refusal_and_hash_only_accounts() {
    // The server's ERR after a wrong encrypted password comes back as is.
    let (port, server) = backend(Script::Full, "other_pw").await;
    let e = connect(port, &Credential::Clear("app_pw".into()))
        .await
        .err()
        .expect("wrong password refused");
    assert_eq!(e.code, 1045, "{}", e.message);
    assert_eq!(server.await.unwrap().len(), 2);

    // A native hash cannot do full authentication: a clear error.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut reader = PacketReader::new();
        write(&mut s, 0, &greeting()).await;
        let _ = reader.read_payload(&mut s).await.unwrap();
        write(&mut s, 2, &[0x01, 0x04]).await;
        let _ = reader.read_payload(&mut s).await;
    });
    let hash = Credential::from_config(&native_hash_text("app_pw"));
    let e = connect(port, &hash).await.err().expect("refused");
    assert_eq!(e.code, 1251, "{}", e.message);
    server.abort();
}

fn path(p: &std::path::Path) -> &str {
    TestCa::path(p)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `mariadb` CLI as app with caching_sha2_password from the start.
fn cli(g: &Gantry, password: &str, args: &[&str]) -> std::process::Output {
    Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            "-uapp",
            &format!("-p{password}"),
            "--default-auth=caching_sha2_password",
        ])
        .args(args)
        .args(["-N", "-e", "SELECT 40 + 2"])
        .stdin(Stdio::null())
        .output()
        .expect("the mariadb client is installed")
}

/// Debug lines "caching_sha2 auth" with `path` that accepted the client.
fn count(g: &Gantry, path: &str) -> usize {
    let log = strip_ansi(&g.log());
    let want = format!("path=\"{path}\" accepted=true");
    log.lines()
        .filter(|l| l.contains("caching_sha2 auth") && l.contains(&want))
        .count()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn mariadb_client_full_authentication_over_rsa_then_fast() {
    let g = Gantry::start(shared_topology(), &["--log-level", "debug"]);
    let o = cli(&g, "app_pw", &["--ssl=0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "42");
    assert_eq!(count(&g, "full over RSA"), 1, "{}", g.log());
    assert!(g.log().contains("generated an RSA key pair"));
    let o = cli(&g, "app_pw", &["--ssl=0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&g, "fast"), 1, "{}", g.log());
    let o = cli(&g, "wrong", &["--ssl=0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("1045"), "{}", text(&o));
    assert!(text(&o).contains("using password: YES"), "{}", text(&o));
    assert!(!g.log().contains("app_pw"), "no secret in the log");
}

/// `default-auth-plugin = caching_sha2_password`: clients that follow the
/// greeting's method (PyMySQL, libmariadb) log in with it; the first over
/// TLS authenticates in full, the next ones take the fast path. mysql2
/// answers for mysql_native_password whatever the greeting says, and still
/// logs in (text and binary protocols).
#[test]
fn clients_that_follow_the_greeting_use_caching_sha2() {
    let ca = TestCa::new("greeting");
    let g = Gantry::start(
        shared_topology(),
        &[
            "--log-level",
            "debug",
            "--default-auth-plugin",
            "caching_sha2_password",
            "--ssl",
            "optional",
            "--ssl-cert",
            path(&ca.server_cert),
            "--ssl-key",
            path(&ca.server_key),
        ],
    );
    let py = common::clients::python_venv(
        "sessions-venv",
        &["PyMySQL==1.1.1", "mysql-connector-python==9.7.0"],
    );
    let pymysql = || {
        let out = Command::new(&py)
            .arg(common::clients::repo().join("drivers/tls/check.py"))
            .args(["pymysql", &g.port.to_string(), path(&ca.ca_cert)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let said = pymysql();
    assert!(
        said.contains("text=42") && said.contains("tls=TLSv1."),
        "{said}"
    );
    assert_eq!(count(&g, "full over TLS"), 1, "{}", g.log());
    let said = pymysql();
    assert!(said.contains("text=42"), "{said}");
    assert_eq!(count(&g, "fast"), 1, "{}", g.log());
    // libmariadb, without TLS: the cached entry serves its fast path.
    let o = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            "-uapp",
            "-papp_pw",
            "--ssl=0",
        ])
        .args(["-N", "-e", "SELECT 40 + 2"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "42",
        "{}",
        text(&o)
    );
    assert_eq!(count(&g, "fast"), 2, "{}", g.log());
    // mysql2 (binary protocol too) logs in as well.
    let out = Command::new("node")
        .arg(common::clients::repo().join("drivers/tls/check.js"))
        .args([&g.port.to_string(), "-"])
        .env("NODE_PATH", common::clients::mysql2_modules())
        .output()
        .expect("node");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("text=42") && said.contains("binary=42"),
        "{said}"
    );
}

#[test]
fn connector_python_full_authentication_over_tls_then_fast() {
    let ca = TestCa::new("sha2");
    let args = [
        "--ssl",
        "optional",
        "--ssl-cert",
        path(&ca.server_cert),
        "--ssl-key",
        path(&ca.server_key),
        "--log-level",
        "debug",
    ];
    let g = Gantry::start(shared_topology(), &args);
    let py = clients::python_venv(
        "sessions-venv",
        &["PyMySQL==1.1.1", "mysql-connector-python==9.7.0"],
    );
    let script = r#"
import sys, mysql.connector
port, pw, tls = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "tls"
change = sys.argv[4] if len(sys.argv) > 4 else None
try:
    c = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password=pw,
        use_pure=True, auth_plugin="caching_sha2_password", ssl_disabled=not tls)
    if change is not None:
        c.cmd_change_user(username="app", password=change)
    cur = c.cursor(); cur.execute("SELECT 40 + 2"); print("value", cur.fetchone()[0])
    c.close()
except mysql.connector.Error as e:
    print("error", e.errno)
"#;
    let run_with = |pw: &str, tls: &str, extra: &[&str]| {
        let o = Command::new(&py)
            .args(["-c", script, &g.port.to_string(), pw, tls])
            .args(extra)
            .output()
            .unwrap();
        text(&o)
    };
    let run = |pw: &str, tls: &str| run_with(pw, tls, &[]);
    let out = run("app_pw", "tls");
    assert!(out.contains("value 42"), "{out}\n{}", g.log());
    assert_eq!(count(&g, "full over TLS"), 1);
    // Cached: the fast path, with or without TLS.
    assert!(run("app_pw", "plain").contains("value 42"));
    assert!(run("app_pw", "tls").contains("value 42"));
    assert_eq!(count(&g, "fast"), 2, "{}", g.log());
    assert!(run("wrong", "plain").contains("error 1045"));
    assert!(run("wrong", "tls").contains("error 1045"));
    // COM_CHANGE_USER with caching_sha2_password: the fast path too.
    let out = run_with("app_pw", "plain", &["app_pw"]);
    assert!(out.contains("value 42"), "{out}\n{}", g.log());
    let changes = strip_ansi(&g.log())
        .lines()
        .filter(|l| l.contains("(COM_CHANGE_USER)") && l.contains("path=\"fast\" accepted=true"))
        .count();
    assert_eq!(changes, 1, "{}", g.log());
    let out = run_with("app_pw", "plain", &["wrong"]);
    assert!(out.contains("error 1045"), "{out}");
}

/// One packet from any stream: (sequence id, payload).
async fn read_any<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    Ok((head[3], payload))
}

async fn write_any<S: AsyncWrite + Unpin>(s: &mut S, seq: u8, payload: &[u8]) {
    let mut out = BytesMut::new();
    put_packet(&mut out, seq, payload);
    s.write_all(&out).await.unwrap();
    s.flush().await.unwrap();
}

#[tokio::test]
async fn backend_full_authentication_over_tls_sends_the_clear_password() {
    use gantry::config::{BackendSsl, BackendTls};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    // `preferred`: TLS with servers that offer it (the other scripted
    // servers of this binary do not, so they are unaffected).
    let tls = BackendTls::load(BackendSsl::Preferred, None, None, None).unwrap();
    gantry::backend::tls::install(Arc::new(tls));
    let ca = TestCa::new("sha2-backend");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.server_cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&ca.server_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        write_any(&mut s, 0, &greeting_with(0x0000_0800)).await; // CLIENT_SSL
        let (seq, req) = read_any(&mut s).await.unwrap();
        assert_eq!((seq, req.len()), (1, 32), "SSL request");
        let mut s = acceptor.accept(s).await.unwrap();
        let (seq, login) = read_any(&mut s).await.unwrap();
        assert_eq!(seq, 2);
        assert_eq!(parse_login(&login).unwrap().user, "app");
        write_any(&mut s, 3, &[0x01, 0x04]).await;
        let clear = read_any(&mut s).await.unwrap();
        write_any(&mut s, 5, OK).await;
        while read_any(&mut s).await.is_ok() {
            write_any(&mut s, 1, OK).await;
        }
        clear
    });
    let conn = connect(port, &Credential::Clear("app_pw".into()))
        .await
        .expect("full authentication over TLS");
    drop(conn);
    assert_eq!(server.await.unwrap(), (4, b"app_pw\0".to_vec()));
}

#[test]
fn configured_key_pair_is_used_and_a_bad_one_is_a_start_error() {
    let dir = std::env::temp_dir().join(common::unique_name("sha2-keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private_key.pem");
    let public = dir.join("public_key.pem");
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    };
    openssl(&["genrsa", "-out", path(&private), "2048"]);
    openssl(&[
        "rsa",
        "-in",
        path(&private),
        "-pubout",
        "-out",
        path(&public),
    ]);
    let g = Gantry::start(
        shared_topology(),
        &[
            "--log-level",
            "debug",
            "--sha256-private-key",
            path(&private),
            "--sha256-public-key",
            path(&public),
        ],
    );
    let o = cli(&g, "app_pw", &["--ssl=0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&g, "full over RSA"), 1, "{}", g.log());
    assert!(!g.log().contains("generated an RSA key pair"));
    drop(g);
    // A file that is no key: Gantry does not start.
    std::fs::write(&private, "junk").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "--admin-password",
            "x",
            "--proxy-backend-addresses",
            "127.0.0.1:1",
        ])
        .args([
            "--pwds",
            "app:app_pw",
            "--sha256-private-key",
            path(&private),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("sha256-private-key"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
