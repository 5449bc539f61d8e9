//! A real MariaDB topology (primary + 2 replicas) run by `scripts/topology.sh`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, fresh_temp_dir, mysql_url};

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/topology.sh")
}

/// Runs `scripts/topology.sh ARGS`; Ok(stdout) or Err(a message with stderr).
fn run_script(args: &[&str]) -> Result<String, String> {
    let script = script_path();
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{} {}` failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            script.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            stdout.trim_end(),
        ))
    }
}

/// One primary and two read-only replicas replicating with GTIDs, on
/// loopback ports picked at start. Dropping it tears the servers down; a
/// watchdog started by the script does the same if this process dies
/// without running destructors.
pub struct Topology {
    pub dir: PathBuf,
    pub primary: Server,
    pub replicas: Vec<Server>,
}

/// One `mariadbd` of a [`Topology`].
pub struct Server {
    /// `primary`, `replica1` or `replica2` (the script's name for it).
    pub name: String,
    pub port: u16,
    pub server_id: u32,
    /// The unix socket root connects through.
    pub socket: PathBuf,
    topology_dir: PathBuf,
}

impl Topology {
    /// Brings up a fresh topology in a new temp dir (~3-10 s). Panics with
    /// the script's stderr if that fails (MariaDB missing and not
    /// installable, a port taken, ...).
    pub fn start() -> Topology {
        Self::start_with(&[])
    }

    /// [`Topology::start`] with extra `mariadbd` options on every server
    /// (TLS files, say).
    pub fn start_with(server_args: &[String]) -> Topology {
        Self::try_start(server_args)
            .unwrap_or_else(|e| panic!("could not start the MariaDB topology: {e}"))
    }

    fn try_start(server_args: &[String]) -> Result<Topology, String> {
        // A port picked by free_port() can be grabbed by someone else before
        // mariadbd binds it; only that case is retried, with fresh ports.
        let mut attempt = 1;
        loop {
            match Self::try_start_once(server_args) {
                Err(e) if attempt < 3 && e.contains("Address already in use") => {
                    eprintln!("topology: a port was taken meanwhile, retrying: {e}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn try_start_once(server_args: &[String]) -> Result<Topology, String> {
        let ports = [free_port(), free_port(), free_port()];
        let dir = fresh_temp_dir("gantry-topo");
        let dir_s = dir.to_string_lossy().into_owned();
        let ports_s = format!("{},{},{}", ports[0], ports[1], ports[2]);
        let owner = std::process::id().to_string();
        let mut args = vec![
            "up",
            "--dir",
            &dir_s,
            "--ports",
            &ports_s,
            "--owner-pid",
            &owner,
        ];
        for a in server_args {
            args.extend(["--server-arg", a.as_str()]);
        }
        run_script(&args)?;
        let server = |i: usize, name: &str| Server {
            name: name.to_string(),
            port: ports[i],
            server_id: i as u32 + 1,
            socket: dir.join(name).join("mysqld.sock"),
            topology_dir: dir.clone(),
        };
        Ok(Topology {
            primary: server(0, "primary"),
            replicas: vec![server(1, "replica1"), server(2, "replica2")],
            dir,
        })
    }

    /// The primary followed by the replicas.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }

    /// The server called `name` (`primary`, `replica1`, `replica2`).
    pub fn server(&self, name: &str) -> &Server {
        self.servers()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server named {name:?}"))
    }

    /// `topology.sh status`: one line per server.
    pub fn status(&self) -> String {
        run_script(&["status", "--dir", &self.dir.to_string_lossy()])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until every replica has applied everything the primary had
    /// written when this was called (its `@@gtid_slave_pos` covers the
    /// primary's `@@gtid_current_pos`) and both slave threads run.
    pub fn wait_replicas_caught_up(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let target = self.primary.gtid_current_pos();
        for replica in &self.replicas {
            replica.wait_for_gtid(&target, deadline.saturating_duration_since(Instant::now()));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Err(e) = run_script(&["down", "--dir", &self.dir.to_string_lossy()]) {
            eprintln!("warning: tearing down the topology failed: {e}");
        }
    }
}

/// One topology per test binary, started on first use. Tests sharing it
/// must not stop servers or change replication (start their own
/// [`Topology`] for failover drills) and should use their own databases or
/// tables (see [`super::unique_name`]). It is never dropped: the script's
/// watchdog takes it down once the test process has exited.
pub fn shared_topology() -> &'static Topology {
    static SHARED: OnceLock<Result<Topology, String>> = OnceLock::new();
    // A failed start is remembered so each test fails fast with the cause.
    match SHARED.get_or_init(|| Topology::try_start(&[])) {
        Ok(t) => t,
        Err(e) => panic!("could not start the shared MariaDB topology: {e}"),
    }
}

impl Server {
    /// Clean shutdown (SIGTERM, waits for the exit).
    pub fn stop(&self) {
        self.script(&["stop"]);
    }

    /// SIGKILL, like a crash; waits until the process is gone.
    pub fn kill(&self) {
        self.script(&["kill"]);
    }

    /// The server's process id (from its pid file).
    pub fn pid(&self) -> u32 {
        let path = self.topology_dir.join(&self.name).join("mysqld.pid");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad pid in {}: {e}", path.display()))
    }

    /// SIGSTOP: the server hangs (a frozen host), its sockets stay open.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Server::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Starts the stopped server again with the same data and options and
    /// waits until it accepts connections. A replica resumes replicating by
    /// itself (use [`Topology::wait_replicas_caught_up`] to wait for it).
    pub fn start(&self) {
        self.script(&["start"]);
    }

    fn script(&self, cmd: &[&str]) {
        let dir = self.topology_dir.to_string_lossy();
        let mut args = cmd.to_vec();
        args.extend([self.name.as_str(), "--dir", &dir]);
        if let Err(e) = run_script(&args) {
            panic!("{e}");
        }
    }

    /// Runs SQL as root over the unix socket with the `mariadb` client
    /// (`-N -B`: tab-separated rows, no header) and returns stdout trimmed.
    /// Panics with the client's stderr on failure.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Server::sql`] but returns the client's stderr as the error.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        self.client(sql, false).map(|s| s.trim().to_string())
    }

    fn client(&self, sql: &str, with_header: bool) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--socket={}", self.socket.display()))
            .arg("--connect-timeout=5")
            .arg("-B");
        if !with_header {
            cmd.arg("-N");
        }
        let out = cmd
            .arg("-e")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: cannot run the mariadb client: {e}", self.name))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{} (port {}): `{sql}` failed: {}",
                self.name,
                self.port,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Rows of a query as column-name → value maps (values as the client
    /// prints them in batch mode: NULL as `NULL`).
    pub fn sql_rows(&self, sql: &str) -> Vec<BTreeMap<String, String>> {
        self.try_sql_rows(sql).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_sql_rows(&self, sql: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
        let out = self.client(sql, true)?;
        let mut lines = out.lines();
        let Some(header) = lines.next() else {
            return Ok(Vec::new());
        };
        let cols: Vec<&str> = header.split('\t').collect();
        Ok(lines
            .map(|line| {
                cols.iter()
                    .map(|c| c.to_string())
                    .zip(line.split('\t').map(str::to_string))
                    .collect()
            })
            .collect())
    }

    /// `SHOW SLAVE STATUS` as a map, or None when the server is no replica.
    pub fn slave_status(&self) -> Option<BTreeMap<String, String>> {
        self.sql_rows("SHOW SLAVE STATUS").into_iter().next()
    }

    /// True when the server accepts connections.
    pub fn is_running(&self) -> bool {
        self.try_sql("SELECT 1").is_ok()
    }

    pub fn gtid_current_pos(&self) -> String {
        self.sql("SELECT @@gtid_current_pos")
    }

    /// Waits until both slave threads run and `@@gtid_slave_pos` covers
    /// `target` (a GTID position such as `0-1-42`); panics on timeout with
    /// the replica's slave status.
    pub fn wait_for_gtid(&self, target: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .try_sql_rows("SHOW SLAVE STATUS")
                .ok()
                .and_then(|rows| rows.into_iter().next());
            let running = status.as_ref().is_some_and(|s| {
                s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
                    && s.get("Slave_SQL_Running").map(String::as_str) == Some("Yes")
            });
            let pos = self.try_sql("SELECT @@gtid_slave_pos").unwrap_or_default();
            if running && gtid_covers(&pos, target) {
                return;
            }
            if Instant::now() >= deadline {
                let brief = status
                    .map(|s| {
                        [
                            "Slave_IO_Running",
                            "Slave_SQL_Running",
                            "Last_IO_Error",
                            "Last_SQL_Error",
                        ]
                        .iter()
                        .map(|k| format!("{k}={}", s.get(*k).map(String::as_str).unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                    })
                    .unwrap_or_else(|| "not a replica or not reachable".into());
                panic!(
                    "{} did not reach GTID position {target:?} within {timeout:?}: \
                     gtid_slave_pos={pos:?}; {brief}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `mysql://user:pw@127.0.0.1:<port>/db` for mysql_async.
    pub fn url(&self, user: &str, pw: &str, db: &str) -> String {
        mysql_url(user, pw, self.port, db)
    }

    /// `127.0.0.1:<port>`, as Gantry's backend options take it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// True when GTID position `have` has reached `want` in every replication
/// domain of `want` (positions are lists like `0-1-42,1-3-7`).
fn gtid_covers(have: &str, want: &str) -> bool {
    fn parse(pos: &str) -> HashMap<u64, u64> {
        pos.split(',')
            .filter_map(|g| {
                let mut it = g.trim().split('-');
                let domain = it.next()?.parse().ok()?;
                let _server = it.next()?;
                let seq = it.next()?.parse().ok()?;
                Some((domain, seq))
            })
            .collect()
    }
    let have = parse(have);
    parse(want)
        .iter()
        .all(|(d, seq)| have.get(d).is_some_and(|h| h >= seq))
}
