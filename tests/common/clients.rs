//! Real client libraries driven from a Rust test, installed the way the
//! driver scripts install them (`drivers/lib.sh`: a virtualenv under
//! target/drivers/, mysql2 into drivers/mysql2/node_modules), and scripts
//! that talk to the test over their stdin and stdout.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `source drivers/lib.sh; drv_init LOCK; BODY` and returns its stdout;
/// panics with its output if it fails (a missing python3 or node fails the
/// test, never skips it).
fn lib_sh(lock: &str, body: &str) -> String {
    let script = format!("source drivers/lib.sh; drv_init {lock}; {body}");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "`{script}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The python of a virtualenv `target/drivers/NAME` with `requirements`
/// installed (kept while they do not change).
pub fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let reqs: Vec<String> = requirements.iter().map(|r| format!("'{r}'")).collect();
    let venv = lib_sh(
        name,
        &format!("drv_venv {name} {} >&2; echo \"$VENV\"", reqs.join(" ")),
    );
    Path::new(&venv).join("bin/python")
}

/// drivers/mysql2/node_modules with the pinned mysql2 (for NODE_PATH).
pub fn mysql2_modules() -> PathBuf {
    lib_sh("mysql2", "drv_mysql2_install >&2");
    repo().join("drivers/mysql2/node_modules")
}

/// A script running as a child process: it prints `key=value` lines, and
/// waits for a line on its stdin where the test has something to do.
pub struct Script {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Everything it printed so far.
    pub seen: BTreeMap<String, String>,
    log: Vec<String>,
}

impl Script {
    /// Starts `cmd` (stdin and stdout piped, stderr kept in the log).
    pub fn spawn(name: &str, mut cmd: Command) -> Script {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {l}"));
            }
        });
        Script {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// Reads its output until it printed `key` (returned); panics with all
    /// it printed after `timeout` or if it ends first.
    pub fn wait_for(&mut self, key: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        while !self.seen.contains_key(key) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((k, v)) = line
                        .split_once('=')
                        .filter(|_| !line.starts_with("stderr: "))
                    {
                        self.seen.insert(k.to_string(), v.to_string());
                    }
                    self.log.push(line);
                }
                Err(_) => panic!(
                    "{}: no `{key}` within {timeout:?} (exit: {:?}); it printed:\n{}",
                    self.name,
                    self.child.try_wait(),
                    self.log.join("\n")
                ),
            }
        }
        self.seen[key].clone()
    }

    /// Sends it the line it waits for.
    pub fn go_on(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(b"go\n").expect("write to the script");
        stdin.flush().unwrap();
    }

    /// What it printed under `key` (panics with its output if nothing).
    pub fn get(&self, key: &str) -> &str {
        self.seen.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "{}: printed no `{key}`:\n{}",
                self.name,
                self.log.join("\n")
            )
        })
    }

    /// All it printed, for assertion messages.
    pub fn output(&self) -> String {
        format!("{}:\n{}", self.name, self.log.join("\n"))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
