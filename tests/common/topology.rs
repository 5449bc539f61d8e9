//! A real MariaDB topology (primary + 2 replicas): `mariadbd` processes run
//! by `scripts/topology.sh`, or the services of a docker-compose project
//! (`GANTRY_TEST_TOPOLOGY=compose`, see [`super::compose`]). Tests see the
//! same [`Topology`] and [`Server`] either way.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::compose::{self, Project};
use super::{free_port, fresh_temp_dir, mysql_url, next_id};

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
/// without running destructors (for compose projects,
/// `scripts/compose-test.sh` removes what is left).
pub struct Topology {
    pub primary: Server,
    pub replicas: Vec<Server>,
    control: Arc<Control>,
}

/// Who runs the servers, and so how to stop, kill or reach one.
enum Control {
    /// `scripts/topology.sh` with this directory.
    Local { dir: PathBuf },
    /// The services `mariadb-<name>` of a compose project.
    Compose(Project),
}

/// One `mariadbd` of a [`Topology`].
pub struct Server {
    /// `primary`, `replica1` or `replica2` (the script's name for it).
    pub name: String,
    pub port: u16,
    pub server_id: u32,
    control: Arc<Control>,
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
        if compose::selected() {
            return Self::try_start_compose(server_args);
        }
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
        Ok(Self::assemble(Control::Local { dir }, ports))
    }

    /// A new compose project on fresh ports, once its servers answer and
    /// both replicas replicate.
    fn try_start_compose(server_args: &[String]) -> Result<Topology, String> {
        if !server_args.is_empty() {
            return Err(format!(
                "the compose topology takes no extra server options ({server_args:?})"
            ));
        }
        let ports = [free_port(), free_port(), free_port()];
        let name = format!("gantrytest{}x{}", std::process::id(), next_id());
        let topology = Self::assemble(Control::Compose(Project::up(name, ports)?), ports);
        topology.wait_ready(Duration::from_secs(60))?;
        Ok(topology)
    }

    /// The project `scripts/compose-test.sh` brought up.
    fn attach_compose() -> Result<Topology, String> {
        let (project, ports) = compose::shared()?;
        let topology = Self::assemble(Control::Compose(project), ports);
        topology.wait_ready(Duration::from_secs(60))?;
        Ok(topology)
    }

    fn assemble(control: Control, ports: [u16; 3]) -> Topology {
        let control = Arc::new(control);
        let server = |i: usize, name: &str| Server {
            name: name.to_string(),
            port: ports[i],
            server_id: i as u32 + 1,
            control: control.clone(),
        };
        Topology {
            primary: server(0, "primary"),
            replicas: vec![server(1, "replica1"), server(2, "replica2")],
            control,
        }
    }

    /// Waits until every server answers and both replicas' slave threads
    /// run; Err names what did not, with the server's log.
    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for server in self.servers() {
            loop {
                match server.ready() {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(format!(
                            "{} not ready within {timeout:?}: {e}\n{}",
                            server.name,
                            server.log_tail()
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        }
        Ok(())
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

    /// One line per server (`topology.sh status`, `docker-compose ps`).
    pub fn status(&self) -> String {
        match &*self.control {
            Control::Local { dir } => run_script(&["status", "--dir", &dir.to_string_lossy()]),
            Control::Compose(project) => project.ps(),
        }
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

impl Drop for Control {
    fn drop(&mut self) {
        // A compose project takes itself down (if it is this process's).
        if let Control::Local { dir } = self {
            if let Err(e) = run_script(&["down", "--dir", &dir.to_string_lossy()]) {
                eprintln!("warning: tearing down the topology failed: {e}");
            }
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
    let start = || {
        if compose::selected() {
            Topology::attach_compose()
        } else {
            Topology::try_start(&[])
        }
    };
    match SHARED.get_or_init(start) {
        Ok(t) => t,
        Err(e) => panic!("could not start the shared MariaDB topology: {e}"),
    }
}

impl Server {
    /// Clean shutdown (SIGTERM, waits for the exit).
    pub fn stop(&self) {
        match &*self.control {
            Control::Local { .. } => self.script(&["stop"]),
            Control::Compose(_) => self.compose(&["stop", "-t", "30"]),
        }
    }

    /// SIGKILL, like a crash; waits until the process is gone.
    pub fn kill(&self) {
        match &*self.control {
            Control::Local { .. } => self.script(&["kill"]),
            Control::Compose(_) => {
                self.compose(&["kill", "-s", "KILL"]);
                self.wait_port_closed(Duration::from_secs(10));
            }
        }
    }

    /// The server's process id (from its pid file); local topologies only.
    pub fn pid(&self) -> u32 {
        let Control::Local { dir } = &*self.control else {
            panic!("{}: a compose server has no host pid file", self.name);
        };
        let path = dir.join(&self.name).join("mysqld.pid");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad pid in {}: {e}", path.display()))
    }

    /// SIGSTOP (a compose container is frozen): the server hangs, like a
    /// frozen host, and its sockets stay open.
    pub fn pause(&self) {
        match &*self.control {
            Control::Local { .. } => self.signal("-STOP"),
            Control::Compose(_) => self.compose(&["pause"]),
        }
    }

    /// Undoes [`Server::pause`].
    pub fn resume(&self) {
        match &*self.control {
            Control::Local { .. } => self.signal("-CONT"),
            Control::Compose(_) => self.compose(&["unpause"]),
        }
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
        match &*self.control {
            Control::Local { .. } => self.script(&["start"]),
            Control::Compose(_) => {
                self.compose(&["start"]);
                let deadline = Instant::now() + Duration::from_secs(60);
                while let Err(e) = self.try_sql("SELECT 1") {
                    assert!(
                        Instant::now() < deadline,
                        "{} did not come back: {e}\n{}",
                        self.name,
                        self.log_tail()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn script(&self, cmd: &[&str]) {
        let Control::Local { dir } = &*self.control else {
            unreachable!("topology.sh runs local servers only");
        };
        let dir = dir.to_string_lossy();
        let mut args = cmd.to_vec();
        args.extend([self.name.as_str(), "--dir", &dir]);
        if let Err(e) = run_script(&args) {
            panic!("{e}");
        }
    }

    fn compose(&self, action: &[&str]) {
        let Control::Compose(project) = &*self.control else {
            unreachable!("docker-compose runs compose servers only");
        };
        if let Err(e) = project.control(action, &self.name) {
            panic!("{e}");
        }
    }

    /// The end of the server's error log, for failure messages.
    fn log_tail(&self) -> String {
        match &*self.control {
            Control::Local { dir } => {
                let path = dir.join(&self.name).join("error.log");
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            }
            Control::Compose(project) => project.logs(&self.name),
        }
    }

    /// Waits until nothing accepts connections on the server's port (a
    /// killed container's network namespace is gone).
    fn wait_port_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{} still accepts connections after the kill",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs SQL as root (over the unix socket, or TCP in compose) with the `mariadb` client
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
        cmd.arg("--no-defaults").arg("--user=root");
        match &*self.control {
            Control::Local { dir } => {
                cmd.arg(format!(
                    "--socket={}",
                    dir.join(&self.name).join("mysqld.sock").display()
                ));
            }
            Control::Compose(_) => {
                cmd.args(["--host=127.0.0.1", &format!("--port={}", self.port)])
                    .env("MYSQL_PWD", compose::root_password());
            }
        }
        cmd.arg("--connect-timeout=5").arg("-B");
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

    /// The server answers and, a replica, replicates.
    fn ready(&self) -> Result<(), String> {
        self.try_sql("SELECT 1")?;
        if self.name == "primary" {
            return Ok(());
        }
        match self.try_sql_rows("SHOW SLAVE STATUS")?.first() {
            Some(status) if replicating(status) => Ok(()),
            other => Err(format!("not replicating: {other:?}")),
        }
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
            let running = status.as_ref().is_some_and(replicating);
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

/// Both slave threads run, per a `SHOW SLAVE STATUS` row.
fn replicating(status: &BTreeMap<String, String>) -> bool {
    status.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        && status.get("Slave_SQL_Running").map(String::as_str) == Some("Yes")
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
