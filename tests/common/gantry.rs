//! Spawns the `gantry` binary built by cargo for this test run.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, fresh_temp_dir, mysql_url, url_escape, Topology};

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Kills the proxy if the test process dies without running destructors.
/// `st` prints a process's start time (field 22 of /proc/PID/stat), which
/// pins both pids against reuse, or nothing once it is gone or a zombie.
const WATCHDOG: &str = r#"
st() { local s; s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0; s="${s##*) }"; set -- $s; [ "$1" = Z ] || echo "${20}"; }
owner="$(st "$1")" child="$(st "$2")"
while [ "$(st "$1")" = "$owner" ] && [ "$(st "$2")" = "$child" ]; do sleep 1; done
[ "$(st "$2")" = "$child" ] && kill -KILL "$2" 2>/dev/null
exit 0
"#;

/// A running `gantry` process, killed on drop. Its stdout and stderr go to
/// a log file ([`Gantry::log`]); when the test panics the log's tail is
/// printed and the file kept.
pub struct Gantry {
    /// The proxy's MySQL port on 127.0.0.1.
    pub port: u16,
    /// The admin interface's port on 127.0.0.1.
    pub admin_port: u16,
    child: Child,
    watchdog: Option<Child>,
    dir: PathBuf,
    log_path: PathBuf,
    args: Vec<String>,
}

impl Gantry {
    /// Starts the proxy in front of `topology` with the default options
    /// (primary as read/write backend, both replicas read-only, `app:app_pw`
    /// as client account, admin `admin`/`admin_pw`, log level info), then
    /// `extra_args`. An option given in `extra_args` replaces the default of
    /// the same name. Waits until the proxy and admin ports accept TCP
    /// connections; panics with the proxy's log if it exits or takes longer
    /// than 10 s.
    pub fn start(topology: &Topology, extra_args: &[&str]) -> Gantry {
        let replicas: Vec<String> = topology.replicas.iter().map(|r| r.addr()).collect();
        let defaults: Vec<(&str, String)> = vec![
            ("--proxy-address", format!("127.0.0.1:{}", free_port())),
            ("--admin-address", format!("127.0.0.1:{}", free_port())),
            ("--admin-username", "admin".into()),
            ("--admin-password", "admin_pw".into()),
            ("--proxy-backend-addresses", topology.primary.addr()),
            ("--proxy-read-only-backend-addresses", replicas.join(",")),
            ("--pwds", "app:app_pw".into()),
            ("--monitor-username", "monitor".into()),
            ("--monitor-password", "monitor_pw".into()),
            ("--log-level", "info".into()),
        ];
        let overridden: Vec<&str> = extra_args
            .iter()
            .filter(|a| a.starts_with("--"))
            .map(|a| a.split('=').next().unwrap_or(a))
            .collect();
        let mut args: Vec<String> = Vec::new();
        for (flag, value) in defaults {
            if !overridden.contains(&flag) {
                args.push(flag.to_string());
                args.push(value);
            }
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        Self::spawn(args)
    }

    /// Starts the proxy with only `--proxy-address` and `--admin-address`
    /// (fresh ports) followed by `args`, for tests with their own backends.
    pub fn start_with_args(args: &[&str]) -> Gantry {
        let mut all = vec![
            "--proxy-address".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--admin-address".to_string(),
            format!("127.0.0.1:{}", free_port()),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        Self::spawn(all)
    }

    fn spawn(args: Vec<String>) -> Gantry {
        let port = port_of(&args, "--proxy-address");
        let admin_port = port_of(&args, "--admin-address");
        let dir = fresh_temp_dir("gantry-proxy");
        let log_path = dir.join("gantry.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log2 = log.try_clone().expect("clone log file handle");
        let bin = env!("CARGO_BIN_EXE_gantry");
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {bin}: {e}"));
        let watchdog = Command::new("bash")
            .args(["-c", WATCHDOG, "gantry-test-watchdog"])
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        let mut gantry = Gantry {
            port,
            admin_port,
            child,
            watchdog,
            dir,
            log_path,
            args,
        };
        // Panicking here still drops `gantry`, which kills the process.
        gantry.wait_ready();
        gantry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending = vec![self.port, self.admin_port];
        while !pending.is_empty() {
            if let Some(status) = self.child.try_wait().expect("try_wait on gantry") {
                panic!(
                    "gantry exited ({status}) before accepting connections\nargs: {}\n{}",
                    self.args.join(" "),
                    self.log_banner()
                );
            }
            pending.retain(|&p| {
                let addr = SocketAddr::from(([127, 0, 0, 1], p));
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
            });
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "gantry did not accept connections on port(s) {pending:?} within \
                     {READY_TIMEOUT:?}\nargs: {}\n{}",
                    self.args.join(" "),
                    self.log_banner()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the proxy has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits until the log contains `needle`; panics with the log on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "gantry's log did not show {needle:?} within {timeout:?}\n{}",
                    self.log_banner()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The arguments the process was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on gantry")
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit
    /// (graceful-shutdown tests); panics with the log if it does not.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.try_wait() {
            return status;
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            sent,
            "could not send SIGTERM to gantry (pid {})",
            self.child.id()
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "gantry did not exit within {timeout:?} of SIGTERM\n{}",
                    self.log_banner()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `mysql://user:pw@127.0.0.1:<proxy port>/db` for mysql_async.
    pub fn url(&self, user: &str, pw: &str, db: &str) -> String {
        mysql_url(user, pw, self.port, db)
    }

    /// Runs the `mariadb` CLI as app/app_pw through the proxy, then `args`.
    pub fn mariadb(&self, args: &[&str]) -> std::process::Output {
        self.cli(self.port, "app", "app_pw", args)
    }

    /// Runs the `mariadb` CLI on the admin port as admin/admin_pw.
    pub fn admin_mariadb(&self, args: &[&str]) -> std::process::Output {
        self.cli(self.admin_port, "admin", "admin_pw", args)
    }

    fn cli(&self, port: u16, user: &str, pw: &str, args: &[&str]) -> std::process::Output {
        Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                &format!("-P{port}"),
                &format!("-u{user}"),
                &format!("-p{pw}"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the mariadb client is installed (scripts/install-deps.sh)")
    }

    /// URL of the admin interface with the admin credentials it was started
    /// with (`admin`/`admin_pw` unless overridden).
    pub fn admin_url(&self) -> String {
        let user = last_value(&self.args, "--admin-username").unwrap_or_else(|| "admin".into());
        let pw = last_value(&self.args, "--admin-password").unwrap_or_default();
        format!(
            "mysql://{}:{}@127.0.0.1:{}?prefer_socket=false",
            url_escape(&user),
            url_escape(&pw),
            self.admin_port
        )
    }

    /// The log framed for a panic message.
    fn log_banner(&self) -> String {
        format!(
            "---- gantry log ({}) ----\n{}\n---- end of gantry log ----",
            self.log_path.display(),
            self.log().trim_end()
        )
    }
}

impl Drop for Gantry {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Shown with the failing test's output; the file is kept.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "---- last {} lines of gantry log ({}) ----\n{}\n----",
                tail.len(),
                self.log_path.display(),
                tail.join("\n")
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The value of the last `--flag value` or `--flag=value` in `args`.
fn last_value(args: &[String], flag: &str) -> Option<String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == flag {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// The port of the address given with `flag` (`ip:port`).
fn port_of(args: &[String], flag: &str) -> u16 {
    let addr = last_value(args, flag).unwrap_or_else(|| panic!("gantry args lack {flag}"));
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("cannot read a port from {flag} {addr:?}"))
}
