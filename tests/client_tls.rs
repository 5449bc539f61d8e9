//! TLS towards clients (`ssl`, `admin-ssl`, `ssl-cert`, `ssl-key`,
//! `ssl-ca`, `require-ssl-users`) with real clients: the `mariadb` CLI
//! (libmariadb) verifying Gantry's certificate, PyMySQL, and the binary
//! protocol through mysql-connector-python and node mysql2, against a test
//! CA made by `openssl`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::certs::TestCa;
use common::{clients, shared_topology, Gantry};

fn path(p: &Path) -> &str {
    TestCa::path(p)
}

/// `--ssl … --ssl-cert … --ssl-key …` for Gantry, with `extra`.
fn tls_args<'a>(ca: &'a TestCa, mode: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--ssl",
        mode,
        "--ssl-cert",
        path(&ca.server_cert),
        "--ssl-key",
        path(&ca.server_key),
    ];
    args.extend(extra);
    args
}

/// The `mariadb` CLI on `port` as app/app_pw with `args`.
fn cli(port: u16, args: &[&str]) -> std::process::Output {
    Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{port}"), "-uapp", "-papp_pw"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the mariadb client is installed")
}

fn verified(ca: &TestCa) -> [String; 3] {
    [
        "--ssl".into(),
        format!("--ssl-ca={}", path(&ca.ca_cert)),
        "--ssl-verify-server-cert".into(),
    ]
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn key_values(o: std::process::Output) -> BTreeMap<String, String> {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let kv: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(
        !kv.is_empty(),
        "no output: {}{}",
        out,
        String::from_utf8_lossy(&o.stderr)
    );
    kv
}

fn python() -> std::path::PathBuf {
    clients::python_venv(
        "sessions-venv",
        &["PyMySQL==1.1.1", "mysql-connector-python==9.7.0"],
    )
}

/// drivers/tls/check.py with `driver` through `port`; `ca` "-" = no TLS.
fn py(driver: &str, port: u16, ca: &str, cert: Option<(&str, &str)>) -> BTreeMap<String, String> {
    let mut cmd = Command::new(python());
    cmd.arg(clients::repo().join("drivers/tls/check.py"))
        .args([driver, &port.to_string(), ca]);
    if let Some((c, k)) = cert {
        cmd.args([c, k]);
    }
    key_values(cmd.stdin(Stdio::null()).output().unwrap())
}

fn node(port: u16, ca: &str) -> BTreeMap<String, String> {
    let out = Command::new("node")
        .arg(clients::repo().join("drivers/tls/check.js"))
        .args([&port.to_string(), ca])
        .env("NODE_PATH", clients::mysql2_modules())
        .stdin(Stdio::null())
        .output()
        .expect("node is installed");
    key_values(out)
}

#[test]
fn required_tls_serves_verified_clients_of_both_protocols_and_refuses_plain_ones() {
    let topo = shared_topology();
    let ca = TestCa::new("required");
    let g = Gantry::start(topo, &tls_args(&ca, "required", &[]));

    // libmariadb, verifying the certificate against the test CA.
    let mut args: Vec<String> = verified(&ca).to_vec();
    args.extend(["-N".into(), "-e".into(), "SELECT 20 + 22; \\s".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli(g.port, &args);
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(said.starts_with("42\n"), "{said}");
    assert!(
        said.contains("Cipher in use is"),
        "the CLI is on TLS: {said}"
    );

    // A large result over TLS arrives whole (TLS writes are flushed).
    let mut args: Vec<String> = verified(&ca).to_vec();
    args.extend([
        "-N".into(),
        "-e".into(),
        "SELECT REPEAT('x', 8000000); SELECT 'done'".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli(g.port, &args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(out.lines().next().map(str::len), Some(8_000_000));
    assert_eq!(out.lines().nth(1), Some("done"));

    // Without TLS: the server's error for insecure transport.
    let o = cli(g.port, &["--skip-ssl", "-e", "SELECT 1"]);
    let said = text(&o);
    assert!(!o.status.success(), "{said}");
    assert!(
        said.contains("ERROR 3159 (HY000)") && said.contains("insecure transport"),
        "{said}"
    );

    // A CA that did not sign Gantry's certificate: the client refuses.
    let other = TestCa::new("other");
    let mut args: Vec<String> = verified(&other).to_vec();
    args.extend(["-e".into(), "SELECT 1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli(g.port, &args);
    assert!(
        !o.status.success(),
        "an unknown CA is refused: {}",
        text(&o)
    );

    // PyMySQL (text), mysql-connector (binary), mysql2 (both), verified.
    let ca_pem = path(&ca.ca_cert);
    let p = py("pymysql", g.port, ca_pem, None);
    assert_eq!(p.get("text").map(String::as_str), Some("42"), "{p:?}");
    assert!(p["tls"].starts_with("TLSv1."), "{p:?}");
    let c = py("connector", g.port, ca_pem, None);
    assert_eq!(c.get("binary").map(String::as_str), Some("42"), "{c:?}");
    assert!(c["tls"].starts_with("TLSv1."), "{c:?}");
    let n = node(g.port, ca_pem);
    assert_eq!(n.get("text").map(String::as_str), Some("42"), "{n:?}");
    assert_eq!(n.get("binary").map(String::as_str), Some("42"), "{n:?}");
    assert!(n["tls"].starts_with("TLSv1."), "{n:?}");

    // The same drivers without TLS get 3159.
    for (who, kv) in [
        ("pymysql", py("pymysql", g.port, "-", None)),
        ("connector", py("connector", g.port, "-", None)),
        ("mysql2", node(g.port, "-")),
    ] {
        assert_eq!(
            kv.get("error").map(String::as_str),
            Some("3159"),
            "{who}: {kv:?}"
        );
    }
}

#[test]
fn optional_tls_and_accounts_that_require_a_client_certificate() {
    let topo = shared_topology();
    let ca = TestCa::new("optional");
    let g = Gantry::start(
        topo,
        &tls_args(
            &ca,
            "optional",
            &[
                "--ssl-ca",
                path(&ca.ca_cert),
                "--pwds",
                "app:app_pw,admin:admin_pw",
                "--require-ssl-users",
                "app",
            ],
        ),
    );
    // An account that does not require TLS logs in either way.
    let plain_admin = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            "-uadmin",
            "-padmin_pw",
        ])
        .args(["--skip-ssl", "-N", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert!(plain_admin.status.success(), "{}", text(&plain_admin));

    // `app` needs TLS and a certificate from ssl-ca: access denied without.
    let o = cli(g.port, &["--skip-ssl", "-e", "SELECT 1"]);
    assert!(
        text(&o).contains("ERROR 1045 (28000)"),
        "plain: {}",
        text(&o)
    );
    let mut args: Vec<String> = verified(&ca).to_vec();
    args.extend(["-e".into(), "SELECT 1".into()]);
    let no_cert: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli(g.port, &no_cert);
    assert!(
        text(&o).contains("ERROR 1045 (28000)"),
        "TLS without a certificate: {}",
        text(&o)
    );
    let mut args: Vec<String> = verified(&ca).to_vec();
    args.extend([
        format!("--ssl-cert={}", path(&ca.client_cert)),
        format!("--ssl-key={}", path(&ca.client_key)),
        "-N".into(),
        "-e".into(),
        "SELECT 42".into(),
    ]);
    let with_cert: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli(g.port, &with_cert);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "42");
    let p = py(
        "connector",
        g.port,
        path(&ca.ca_cert),
        Some((path(&ca.client_cert), path(&ca.client_key))),
    );
    assert_eq!(p.get("binary").map(String::as_str), Some("42"), "{p:?}");

    // COM_CHANGE_USER to `app` over a plain connection: refused as well.
    let o = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            "-uadmin",
            "-padmin_pw",
        ])
        .args(["--skip-ssl", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!(
            "mysql://admin:admin_pw@127.0.0.1:{}/app?prefer_socket=false",
            g.port
        );
        let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        let change = mysql_async::ChangeUserOpts::default()
            .with_user(Some("app".into()))
            .with_pass(Some("app_pw".into()));
        let err = c.change_user(change).await.unwrap_err();
        assert_eq!(common::server_code(&err), Some(1045), "{err}");
    });
}

#[test]
fn the_admin_port_has_its_own_mode_and_reload_picks_up_new_certificates() {
    let topo = shared_topology();
    let first = TestCa::new("first");
    let second = TestCa::new("second");
    // Gantry reads the files at these paths; the test swaps their content.
    let dir = std::env::temp_dir().join(common::unique_name("gantry-tls-reload"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(&first.server_cert, &cert).unwrap();
    std::fs::copy(&first.server_key, &key).unwrap();
    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            "ssl = \"required\"\nadmin-ssl = \"required\"\nssl-cert = \"{}\"\nssl-key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let g = Gantry::start(topo, &["--config", path(&config)]);

    let admin = |ca: &TestCa, tls: bool| {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "-h127.0.0.1",
            &format!("-P{}", g.admin_port),
            "-uadmin",
            "-padmin_pw",
        ]);
        if tls {
            cmd.args(verified(ca));
        } else {
            cmd.arg("--skip-ssl");
        }
        cmd.args(["-N", "-e", "SELECT * FROM help"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(
        admin(&first, true).status.success(),
        "{}",
        text(&admin(&first, true))
    );
    let plain = admin(&first, false);
    assert!(
        text(&plain).contains("ERROR 3159 (HY000)"),
        "{}",
        text(&plain)
    );

    // New files, then RELOAD CONFIG: the new certificate is presented.
    std::fs::copy(&second.server_cert, &cert).unwrap();
    std::fs::copy(&second.server_key, &key).unwrap();
    let mut reload = Command::new("mariadb");
    reload
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.admin_port),
            "-uadmin",
            "-padmin_pw",
        ])
        .args(verified(&first))
        .args(["-e", "RELOAD CONFIG"]);
    let o = reload.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    common::wait_until(Duration::from_secs(5), "the new certificate", || {
        admin(&second, true).status.success()
    });
    assert!(
        !admin(&first, true).status.success(),
        "the old CA no longer verifies"
    );
    let mut args: Vec<String> = verified(&second).to_vec();
    args.extend(["-N".into(), "-e".into(), "SELECT 1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(cli(g.port, &args).status.success());

    // A missing key file: the reload is refused, the running TLS stays.
    std::fs::remove_file(&key).unwrap();
    let mut reload = Command::new("mariadb");
    let o = reload
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.admin_port),
            "-uadmin",
            "-padmin_pw",
        ])
        .args(verified(&second))
        .args(["-e", "RELOAD CONFIG"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ssl-key"), "{}", text(&o));
    assert!(admin(&second, true).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
