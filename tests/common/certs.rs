//! A test certificate authority made with the `openssl` command line: one
//! CA, a server certificate for `127.0.0.1`/`localhost` (Gantry's listener
//! or a MariaDB server) and a client certificate, all PEM files in a fresh
//! directory. A missing `openssl` fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCa {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS tests (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and a certificate signed by the CA in `dir`: `who.key`,
/// `who.pem`, for common name `cn`, with the openssl extension line `ext`.
fn issue(dir: &Path, who: &str, cn: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{who}.key"),
            "-out",
            &format!("{who}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{who}.ext")), format!("{ext}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{who}.ext"),
            "-out",
            &format!("{who}.pem"),
        ],
    );
}

impl TestCa {
    /// A new CA named `name` and its certificates, under the system's
    /// temporary directory.
    pub fn new(name: &str) -> TestCa {
        let dir = std::env::temp_dir().join(super::unique_name(&format!("gantry-ca-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=Gantry test CA {name}"),
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        for (who, cn, ext) in [
            (
                "server",
                "localhost",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ),
            (
                "client",
                "gantry-test-client",
                "extendedKeyUsage=clientAuth",
            ),
        ] {
            issue(&dir, who, cn, ext);
        }
        TestCa {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            dir,
        }
    }

    /// Another server certificate of this CA, for `san` (an openssl
    /// subjectAltName list such as `DNS:db.example`): (cert, key) files
    /// named after `who`.
    pub fn issue_server(&self, who: &str, san: &str) -> (PathBuf, PathBuf) {
        let dir = &self.dir;
        issue(dir, who, who, &format!("subjectAltName={san}"));
        (
            dir.join(format!("{who}.pem")),
            dir.join(format!("{who}.key")),
        )
    }

    pub fn path(p: &Path) -> &str {
        p.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
