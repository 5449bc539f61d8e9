//! No clear password in the configuration: accounts by their native hash
//! (`gantry hash`, checked against the server's own `PASSWORD()`), the
//! passwords Gantry logs in with itself as `enc:` values (`gantry
//! encrypt`), end to end through both protocols, COM_CHANGE_USER and the
//! admin port; and no secret in the log at any level.

mod common;

use mysql_async::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{clients, shared_topology, Gantry};

/// `gantry <tool> [args]` with `password` on stdin: its stdout.
fn tool(args: &[&str], password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gantry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn hashed_and_encrypted_passwords_work_end_to_end_and_never_reach_the_log() {
    let topo = shared_topology();
    let dir = std::env::temp_dir().join(common::unique_name("gantry-secrets"));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("secret.key");
    let key = key_file.to_str().unwrap();

    // The hashes are the server's own.
    let app_hash = tool(&["hash"], "app_pw");
    let admin_hash = tool(&["hash"], "admin_pw");
    assert_eq!(
        topo.primary.sql("SELECT PASSWORD('app_pw')"),
        app_hash,
        "gantry hash = PASSWORD()"
    );
    // enc: values under a key file the tool creates; each run differs.
    let monitor_enc = tool(&["encrypt", "--secret-key-file", key], "monitor_pw");
    let repl_enc = tool(&["encrypt", "-k", key], "repl_pw");
    assert!(monitor_enc.starts_with("enc:") && repl_enc.starts_with("enc:"));
    assert_ne!(monitor_enc, tool(&["encrypt", "-k", key], "monitor_pw"));
    let key_text = std::fs::read_to_string(&key_file).unwrap();

    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            "pwds = [\"app:{app_hash}\", \"admin:{admin_hash}\"]\nadmin-password = \"{admin_hash}\"\n\
             monitor-username = \"monitor\"\nmonitor-password = \"{monitor_enc}\"\n\
             replication-username = \"repl\"\nreplication-password = \"{repl_enc}\"\n\
             secret-key-file = \"{key}\"\n"
        ),
    )
    .unwrap();
    let g = Gantry::start_with_args(&[
        "--config",
        config.to_str().unwrap(),
        "--proxy-backend-addresses",
        &topo.primary.addr(),
        "--proxy-read-only-backend-addresses",
        &topo
            .replicas
            .iter()
            .map(|r| r.addr())
            .collect::<Vec<_>>()
            .join(","),
        "--log-level",
        "trace",
    ]);
    // The health probes log in with the decrypted monitor password.
    common::wait_until(std::time::Duration::from_secs(10), "backends up", || {
        let out = g.admin_mariadb(&["-N", "-e", "SELECT * FROM backends"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\tup\t"))
            .count()
            == 3
    });

    // Text protocol through libmariadb.
    let o = g.mariadb(&["-N", "-e", "SELECT CURRENT_USER()"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("app@"));
    // Binary protocol: mysql_async prepared statements, and
    // mysql-connector's prepared cursor.
    let url = g.url("app", "app_pw", "app");
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let v: Option<i64> = c.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(v, Some(42));
    let py = clients::python_venv(
        "sessions-venv",
        &["PyMySQL==1.1.1", "mysql-connector-python==9.7.0"],
    );
    let out = Command::new(py)
        .arg(clients::repo().join("drivers/tls/check.py"))
        .args(["connector", &g.port.to_string(), "-"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("binary=42"), "{said}");
    // COM_CHANGE_USER to another hashed account.
    let change = mysql_async::ChangeUserOpts::default()
        .with_user(Some("admin".into()))
        .with_pass(Some("admin_pw".into()));
    c.change_user(change).await.unwrap();
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(who.unwrap().starts_with("admin@"));
    drop(c);
    // A wrong password is refused as the server would.
    let bad = g.mariadb(&["-uapp", "-pnot_it", "-e", "SELECT 1"]);
    let bad_text = String::from_utf8_lossy(&bad.stderr);
    assert!(bad_text.contains("ERROR 1045 (28000)"), "{bad_text}");
    // The admin port checks its hashed password too.
    let o = g.admin_mariadb(&["-N", "-e", "SELECT * FROM help"]);
    assert!(o.status.success(), "{o:?}");
    // A reload decrypts again.
    let o = g.admin_mariadb(&["-e", "RELOAD CONFIG"]);
    assert!(o.status.success(), "{o:?}");
    let o = g.mariadb(&["-N", "-e", "SELECT 1"]);
    assert!(o.status.success(), "{o:?}");

    // Nothing secret in a trace-level log: no password, hash, enc: value
    // or key, and no warning about clear passwords.
    let log = g.log();
    for secret in [
        "app_pw",
        "admin_pw",
        "monitor_pw",
        "repl_pw",
        app_hash.as_str(),
        &app_hash[1..],
        admin_hash.as_str(),
        monitor_enc.as_str(),
        repl_enc.as_str(),
        key_text.trim(),
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
    assert!(!log.contains("passwords in clear"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clear_passwords_are_warned_about_by_option_name_only() {
    let g = Gantry::start(shared_topology(), &[]);
    common::wait_until(std::time::Duration::from_secs(5), "the warning", || {
        g.log().contains("passwords in clear")
    });
    let log = g.log();
    let line = log
        .lines()
        .find(|l| l.contains("passwords in clear"))
        .unwrap();
    assert!(
        line.contains("pwds") && line.contains("admin-password"),
        "{line}"
    );
    assert!(
        !log.contains("app_pw") && !log.contains("admin_pw"),
        "{log}"
    );
}

#[test]
fn an_enc_value_without_its_key_is_a_config_error() {
    let dir = std::env::temp_dir().join(common::unique_name("gantry-nokey"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k");
    let sealed = tool(&["encrypt", "-k", key.to_str().unwrap()], "pw");
    let other = dir.join("other");
    std::fs::write(&other, "ab".repeat(32)).unwrap();
    for (extra, expect) in [
        (vec![], "needs secret-key-file"),
        (
            vec!["--secret-key-file", other.to_str().unwrap()],
            "cannot be decrypted",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args([
                "--admin-password",
                "x",
                "--proxy-backend-addresses",
                "127.0.0.1:1",
                "--pwds",
                &format!("app:{sealed}"),
            ])
            .args(&extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("pwds") && err.contains(expect), "{err}");
        assert!(
            !err.contains(&sealed[4..]),
            "the value is not echoed: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An Atlas configuration whose pwds were encrypted the way Atlas's
/// `encrypt` does (DES-ECB under its fixed key, here by `openssl`):
/// `gantry import-atlas` turns it into a file Gantry runs with.
#[test]
fn an_atlas_configuration_imports_with_its_encrypted_pwds() {
    let topo = shared_topology();
    let des = |pw: &str| -> String {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "openssl enc -des-ecb -K 6143745a6c486155 -provider legacy -provider default | base64",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pw.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let dir = std::env::temp_dir().join(common::unique_name("gantry-atlas"));
    std::fs::create_dir_all(&dir).unwrap();
    let atlas = dir.join("test.cnf");
    let replicas: Vec<String> = topo
        .replicas
        .iter()
        .map(|r| format!("{}@1", r.addr()))
        .collect();
    std::fs::write(
        &atlas,
        format!(
            "[mysql-proxy]\nadmin-username = admin\nadmin-password = admin_pw\n\
             proxy-backend-addresses = {}\nproxy-read-only-backend-addresses = {}\n\
             pwds = app:{}\ndaemon = true\nlog-level = message\ncharset = utf8\n",
            topo.primary.addr(),
            replicas.join(", "),
            des("app_pw")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["import-atlas", atlas.to_str().unwrap()])
        .output()
        .unwrap();
    let toml = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !toml.contains("app_pw") && !toml.contains("admin_pw"),
        "{toml}"
    );
    assert!(toml.contains(&tool(&["hash"], "app_pw")), "{toml}");
    let config = dir.join("gantry.toml");
    std::fs::write(&config, &toml).unwrap();
    let g = Gantry::start_with_args(&[
        "--config",
        config.to_str().unwrap(),
        "--monitor-username",
        "monitor",
        "--monitor-password",
        "monitor_pw",
    ]);
    let o = g.mariadb(&["-N", "-e", "SELECT CURRENT_USER()"]);
    assert!(o.status.success(), "{o:?}");
    let o = g.admin_mariadb(&["-N", "-e", "SELECT * FROM backends"]);
    assert!(
        o.status.success(),
        "admin with the imported (hashed) password: {o:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
