//! The compose topology: the servers of a [`super::Topology`] as services of
//! a docker-compose project of `docker-compose.test.yml`, on the host's
//! loopback. Chosen with `GANTRY_TEST_TOPOLOGY=compose`
//! (`scripts/compose-test.sh` sets it). The environment gives:
//!
//! - `GANTRY_TEST_COMPOSE_PROJECT`: the project already up, used as the
//!   shared topology, at the ports the compose file reads:
//!   `GANTRY_PRIMARY_PORT`, `GANTRY_REPLICA1_PORT`, `GANTRY_REPLICA2_PORT`
//!   (13306-13308 when unset);
//! - `GANTRY_TEST_COMPOSE_FILE`: the compose file (default: the repository's
//!   `docker-compose.test.yml`), from which drills start projects of their
//!   own, on fresh ports, taken down when they end;
//! - `GANTRY_TEST_ROOT_PASSWORD`: root's password at 127.0.0.1 (default
//!   `root_pw`, the file's).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// True when the tests run against compose projects rather than servers
/// started by `scripts/topology.sh`.
pub fn selected() -> bool {
    match std::env::var("GANTRY_TEST_TOPOLOGY").as_deref() {
        Ok("compose") => true,
        Ok("local") | Err(_) => false,
        Ok(other) => panic!("GANTRY_TEST_TOPOLOGY={other:?}: expected `local` or `compose`"),
    }
}

pub fn root_password() -> String {
    std::env::var("GANTRY_TEST_ROOT_PASSWORD").unwrap_or_else(|_| "root_pw".into())
}

/// The shared project's name and ports, from the environment.
pub fn shared() -> Result<(Project, [u16; 3]), String> {
    let name = std::env::var("GANTRY_TEST_COMPOSE_PROJECT").map_err(|_| {
        "GANTRY_TEST_TOPOLOGY=compose needs GANTRY_TEST_COMPOSE_PROJECT".to_string()
    })?;
    let mut ports = [0; 3];
    for (port, (var, default)) in ports.iter_mut().zip(PORT_VARS) {
        *port = match std::env::var(var) {
            Ok(v) => v.parse().map_err(|e| format!("{var}={v:?}: {e}"))?,
            Err(_) => default,
        };
    }
    let project = Project {
        name,
        ports,
        owned: false,
        containers: Vec::new(),
    };
    Ok((project.with_containers()?, ports))
}

/// The compose files' port variables for primary, replica1 and replica2,
/// with their defaults.
const PORT_VARS: [(&str, u16); 3] = [
    ("GANTRY_PRIMARY_PORT", 13306),
    ("GANTRY_REPLICA1_PORT", 13307),
    ("GANTRY_REPLICA2_PORT", 13308),
];

/// The servers' names; the services are `mariadb-<name>`.
const SERVERS: [&str; 3] = ["primary", "replica1", "replica2"];

/// One docker-compose project of the test file.
pub struct Project {
    name: String,
    ports: [u16; 3],
    /// Started by this process, so taken down (with its volumes) on drop.
    owned: bool,
    /// (server name, container id): signals go straight to the engine, as
    /// docker-compose takes most of a second to start.
    containers: Vec<(String, String)>,
}

impl Project {
    /// Starts the three MariaDB services of a new project on `ports`; the
    /// caller waits for them to answer.
    pub fn up(name: String, ports: [u16; 3]) -> Result<Project, String> {
        let project = Project {
            name,
            ports,
            owned: true,
            containers: Vec::new(),
        };
        project.compose(&[
            "up",
            "-d",
            "mariadb-primary",
            "mariadb-replica1",
            "mariadb-replica2",
        ])?;
        project.with_containers()
    }

    /// Reads the servers' container ids, in one `docker ps` by the labels
    /// compose puts on its containers.
    fn with_containers(mut self) -> Result<Project, String> {
        let mut cmd = Command::new("docker");
        cmd.args(["ps", "-a", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.name))
            .args([
                "--format",
                "{{.Label \"com.docker.compose.service\"}} {{.ID}}",
            ]);
        let listing = run(cmd, &format!("docker ps <project {}>", self.name))?;
        for name in SERVERS {
            let service = format!("mariadb-{name} ");
            let id = listing
                .lines()
                .find_map(|l| l.strip_prefix(&service))
                .ok_or_else(|| format!("project {}: no container for mariadb-{name}", self.name))?;
            self.containers
                .push((name.to_string(), id.trim().to_string()));
        }
        Ok(self)
    }

    /// `docker kill -s KILL`, `stop`, `start`, `pause` or `unpause` (the
    /// arguments) of the container of server `name` (`primary`, ...).
    pub fn control(&self, action: &[&str], name: &str) -> Result<String, String> {
        let id = self
            .container(name)
            .ok_or_else(|| format!("no server {name:?} in project {}", self.name))?;
        let mut cmd = Command::new("docker");
        cmd.args(action).arg(id);
        run(
            cmd,
            &format!("docker {} <{name} of {}>", action.join(" "), self.name),
        )
    }

    /// The server's log (the container's output, which docker prints on
    /// both streams), for failure messages.
    pub fn logs(&self, name: &str) -> String {
        let Some(id) = self.container(name) else {
            return format!("no server {name:?}");
        };
        match Command::new("docker")
            .args(["logs", "--tail=30", id])
            .output()
        {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("cannot run docker logs: {e}"),
        }
    }

    fn container(&self, name: &str) -> Option<&str> {
        self.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
    }

    pub fn ps(&self) -> Result<String, String> {
        self.compose(&["ps"])
    }

    fn compose(&self, args: &[&str]) -> Result<String, String> {
        let file = std::env::var_os("GANTRY_TEST_COMPOSE_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker-compose.test.yml")
            });
        let mut cmd = compose_command();
        cmd.arg("-f").arg(&file).args(["-p", &self.name]).args(args);
        for ((var, _), port) in PORT_VARS.iter().zip(self.ports) {
            cmd.env(var, port.to_string());
        }
        run(
            cmd,
            &format!("docker-compose -p {} {}", self.name, args.join(" ")),
        )
    }
}

/// Runs `cmd` without stdin: Ok(its stdout), or Err naming `what` with its
/// exit status and output.
fn run(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(format!(
        "`{what}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stdout.trim_end()
    ))
}

/// `docker-compose` (v1, Debian's), or else the docker client's `compose`;
/// which one is asked once per test process.
pub fn compose_command() -> Command {
    static V1: OnceLock<bool> = OnceLock::new();
    let v1 = *V1.get_or_init(|| {
        Command::new("docker-compose")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut cmd = if v1 {
        Command::new("docker-compose")
    } else {
        let mut docker = Command::new("docker");
        docker.arg("compose");
        docker
    };
    cmd.args(["--ansi", "never"]);
    cmd
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = self.compose(&["down", "-v", "--timeout", "5"]) {
                eprintln!("warning: taking down compose project {}: {e}", self.name);
            }
        }
    }
}
