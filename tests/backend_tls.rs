//! TLS from Gantry to its backends (issue #13, item 2) against MariaDB
//! servers that require it (`require_secure_transport=ON`, certificates of
//! a test CA): `verify-identity` serves through TLS and the probes see the
//! servers up; `off`, a foreign CA and a certificate for another name are
//! refused with a clean error, and the log says why; RELOAD CONFIG
//! re-reads the CA file.
//!
//! One topology for all phases (starting one costs most of the time); the
//! servers' certificate files are swapped and re-read with `FLUSH SSL` for
//! the name check.

mod common;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use std::time::Duration;

use common::certs::TestCa;
use common::failover::backends;
use common::{wait_until, Gantry, Topology, FAST_HEALTH};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn gantry(topo: &Topology, tls: &[&str]) -> Gantry {
    let mut args: Vec<&str> = FAST_HEALTH.to_vec();
    args.extend(["--pwds", "app:app_pw,x509:x509_pw"]);
    args.extend(tls);
    Gantry::start(topo, &args)
}

async fn connect(g: &Gantry, user: &str, pw: &str) -> Result<Conn, mysql_async::Error> {
    Conn::new(Opts::from_url(&g.url(user, pw, "test")).unwrap()).await
}

fn wait_backends(g: &Gantry, state: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("backends {state}"),
        || {
            let b = backends(g);
            b.len() == 3 && b.iter().all(|b| b.1 == state)
        },
    );
}

/// A query through Gantry fails with a clean server error; its code.
async fn refused(g: &Gantry) -> (u16, String) {
    let err = match connect(g, "app", "app_pw").await {
        Err(e) => e,
        Ok(mut c) => c
            .query_drop("INSERT INTO test.tls_t VALUES (0)")
            .await
            .expect_err("a write without a usable backend"),
    };
    match err {
        mysql_async::Error::Server(s) => (s.code, s.message),
        other => panic!("not a clean server error: {other:?}"),
    }
}

#[test]
fn backends_that_require_tls() {
    let ca = TestCa::new("backend");
    // The servers read their certificate from files that phase 4 replaces.
    let live_cert = ca.dir.join("live.pem");
    let live_key = ca.dir.join("live.key");
    std::fs::copy(&ca.server_cert, &live_cert).unwrap();
    std::fs::copy(&ca.server_key, &live_key).unwrap();
    let topo = Topology::start_with(&[
        format!("--ssl-ca={}", ca.ca_cert.display()),
        format!("--ssl-cert={}", live_cert.display()),
        format!("--ssl-key={}", live_key.display()),
    ]);
    // After replication is up: the replicas' IO threads stay connected.
    for s in topo.servers() {
        assert_eq!(s.sql("SELECT @@have_ssl"), "YES", "mariadbd without TLS");
        s.sql("SET GLOBAL require_secure_transport = ON");
    }
    topo.primary.sql(
        "CREATE TABLE IF NOT EXISTS test.tls_t (id INT PRIMARY KEY); \
         CREATE USER 'x509'@'127.0.0.1' IDENTIFIED BY 'x509_pw' REQUIRE X509; \
         GRANT ALL ON test.* TO 'x509'@'127.0.0.1'",
    );
    topo.wait_replicas_caught_up(Duration::from_secs(10));
    let ca_path = TestCa::path(&ca.ca_cert);
    let rt = runtime();

    // 1. verify-identity with the servers' CA and a client certificate.
    let g = gantry(
        &topo,
        &[
            "--backend-ssl",
            "verify-identity",
            "--backend-ssl-ca",
            ca_path,
            "--backend-ssl-cert",
            TestCa::path(&ca.client_cert),
            "--backend-ssl-key",
            TestCa::path(&ca.client_key),
        ],
    );
    wait_backends(&g, "up");
    rt.block_on(async {
        let mut c = connect(&g, "app", "app_pw").await.expect("login");
        c.query_drop("INSERT INTO test.tls_t VALUES (1)")
            .await
            .unwrap();
        c.exec_drop("INSERT INTO test.tls_t VALUES (?)", (2,))
            .await
            .unwrap();
        let n: Option<i64> = c
            .exec_first("SELECT COUNT(*) FROM test.tls_t WHERE id <= ?", (2,))
            .await
            .unwrap();
        let _ = n; // a replica may not have both rows yet; it answered.
        let ssl = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
                   WHERE VARIABLE_NAME = 'Ssl_version'";
        let read: Option<String> = c.query_first(ssl).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        let primary: Option<String> = c.query_first(ssl).await.unwrap();
        c.query_drop("COMMIT").await.unwrap();
        for v in [read, primary] {
            let v = v.unwrap_or_default();
            assert!(v.starts_with("TLSv1."), "backend session not TLS: {v:?}");
        }
        // A REQUIRE X509 account: Gantry presents backend-ssl-cert.
        let mut x = connect(&g, "x509", "x509_pw").await.expect("x509 login");
        let who: Option<String> = x.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert_eq!(who.as_deref(), Some("x509@127.0.0.1"));
        let _ = x.disconnect().await;
        let _ = c.disconnect().await;
    });
    let _ = g.log(); // kept for a failure's tail
    drop(g);

    // 2. off: the servers refuse plain logins.
    let g = gantry(&topo, &["--backend-ssl", "off"]);
    wait_backends(&g, "down");
    let (code, msg) = rt.block_on(refused(&g));
    eprintln!("backend-ssl off: {code} {msg}");
    // MariaDB refuses an insecure login as a wrong password; Gantry passes
    // the server's error on.
    assert_eq!(code, 1045, "{msg}");
    drop(g);

    // 3. verify-ca with another CA: the certificate is not trusted.
    let other = TestCa::new("other");
    let g = gantry(
        &topo,
        &[
            "--backend-ssl",
            "verify-ca",
            "--backend-ssl-ca",
            TestCa::path(&other.ca_cert),
        ],
    );
    wait_backends(&g, "down");
    let (code, msg) = rt.block_on(refused(&g));
    eprintln!("verify-ca, foreign CA: {code} {msg}");
    assert_eq!(code, 1105, "{msg}");
    g.wait_for_log("UnknownIssuer", Duration::from_secs(5));
    drop(g);

    // 4. A certificate of the right CA for another name.
    let (cert, key) = ca.issue_server("elsewhere", "DNS:db.elsewhere.example");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    for s in topo.servers() {
        s.sql("FLUSH LOCAL SSL"); // LOCAL: not binlogged on the replicas
    }
    let g = gantry(
        &topo,
        &[
            "--backend-ssl",
            "verify-identity",
            "--backend-ssl-ca",
            ca_path,
        ],
    );
    wait_backends(&g, "down");
    let (code, msg) = rt.block_on(refused(&g));
    eprintln!("verify-identity, other name: {code} {msg}");
    assert_eq!(code, 1105, "{msg}");
    g.wait_for_log("not valid for name", Duration::from_secs(5));
    drop(g);
    // verify-ca does not look at the name: the same servers are fine.
    let g = gantry(
        &topo,
        &["--backend-ssl", "verify-ca", "--backend-ssl-ca", ca_path],
    );
    wait_backends(&g, "up");
    rt.block_on(async {
        let mut c = connect(&g, "app", "app_pw").await.expect("login");
        c.query_drop("INSERT INTO test.tls_t VALUES (3)")
            .await
            .unwrap();
        let _ = c.disconnect().await;
    });
    drop(g);

    // 5. RELOAD CONFIG re-reads the CA file: wrong CA first, then the right
    // one under the same name.
    let conf_dir = other.dir.join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let ca_file = conf_dir.join("backend-ca.pem");
    std::fs::copy(&other.ca_cert, &ca_file).unwrap();
    let conf = conf_dir.join("gantry.toml");
    std::fs::write(
        &conf,
        format!(
            "backend-ssl = \"verify-ca\"\nbackend-ssl-ca = {:?}\n",
            ca_file.display().to_string()
        ),
    )
    .unwrap();
    let g = gantry(&topo, &["--config", TestCa::path(&conf)]);
    wait_backends(&g, "down");
    std::fs::copy(&ca.ca_cert, &ca_file).unwrap();
    let out = g.admin_mariadb(&["-e", "RELOAD CONFIG"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_backends(&g, "up");
    rt.block_on(async {
        let mut c = connect(&g, "app", "app_pw").await.expect("login");
        c.query_drop("INSERT INTO test.tls_t VALUES (4)")
            .await
            .unwrap();
        let _ = c.disconnect().await;
    });
}
