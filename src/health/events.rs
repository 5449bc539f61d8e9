//! Health events: logged with `tracing`, counted, and handed to the
//! optional `notification-script` with Redis Sentinel's two arguments,
//! `<event-type> <description>` (`+sdown master gantry 127.0.0.1 3306`),
//! and Gantry's own fields in `GANTRY_EVENT`, `GANTRY_BACKEND`,
//! `GANTRY_OLD`, `GANTRY_NEW` and `GANTRY_REASON`. The script runs
//! detached with a time limit so it can never stall the health loop.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// up / lagging / down / unknown transitions.
    State,
    /// rw ↔ ro (promotion or demotion followed).
    Role,
    /// A different server answers at the backend's address.
    ServerChanged,
    /// A replica found through the primary's replica list.
    Discovered,
    /// Gantry promoted a replica (failover or switchover); `old` and `new`
    /// are the old and new primary, `reason` the outcome.
    Failover,
    /// An old primary holds transactions the new primary lacks: it is not
    /// rejoined (`reason` names them).
    Diverged,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::State,
        EventKind::Role,
        EventKind::ServerChanged,
        EventKind::Discovered,
        EventKind::Failover,
        EventKind::Diverged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::Role => "role",
            EventKind::ServerChanged => "server-changed",
            EventKind::Discovered => "discovered",
            EventKind::Failover => "failover",
            EventKind::Diverged => "diverged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub backend: String,
    /// The backend is (or, for a failover, was) the primary.
    pub primary: bool,
    pub old: String,
    pub new: String,
    pub reason: String,
}

static COUNTS: [AtomicU64; 6] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Scripts running at once; beyond this a notification is dropped (and
/// logged) rather than piling up processes behind a slow script.
const MAX_SCRIPTS: usize = 8;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Events of `kind` since start (for metrics and the admin port).
pub fn count(kind: EventKind) -> u64 {
    COUNTS[kind as usize].load(Ordering::Relaxed)
}

pub fn emit(ev: Event, script: Option<PathBuf>) {
    COUNTS[ev.kind as usize].fetch_add(1, Ordering::Relaxed);
    let worse = matches!(ev.new.as_str(), "down" | "lagging")
        || matches!(
            ev.kind,
            EventKind::ServerChanged | EventKind::Failover | EventKind::Diverged
        );
    if worse {
        tracing::warn!(event = ev.kind.as_str(), backend = %ev.backend, old = %ev.old, new = %ev.new, reason = %ev.reason, "backend health changed");
    } else {
        tracing::info!(event = ev.kind.as_str(), backend = %ev.backend, old = %ev.old, new = %ev.new, reason = %ev.reason, "backend health changed");
    }
    if let Some(path) = script {
        notify(path, ev);
    }
}

fn notify(path: PathBuf, ev: Event) {
    if RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_SCRIPTS {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(script = %path.display(), event = ev.kind.as_str(), "notification dropped: too many scripts still running");
        return;
    }
    tokio::spawn(async move {
        run_script(&path, &ev).await;
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Runs `client-reconfig-script` with Sentinel's arguments (`<name> <role>
/// <state> <from-ip> <from-port> <to-ip> <to-port>`), bounded like the
/// notification script, never waited for by the caller.
pub fn reconfigure_clients(path: PathBuf, args: Vec<String>) {
    if RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_SCRIPTS {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(script = %path.display(), "client-reconfig-script dropped: too many scripts still running");
        return;
    }
    tokio::spawn(async move {
        run_command(&path, &args, &[]).await;
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The name Sentinel gives the monitored primary; Gantry has one.
const MASTER_NAME: &str = "gantry";

/// Sentinel's event type for an event (Sentinel's own names where it has
/// the event, `+`/`-` names of the same shape where it has not).
pub fn sentinel_type(ev: &Event) -> &'static str {
    match ev.kind {
        EventKind::State => match (ev.old.as_str(), ev.new.as_str()) {
            (_, "down") => "+sdown",
            ("down", _) => "-sdown",
            (_, "lagging") => "+lagging",
            ("lagging", _) => "-lagging",
            _ => "+state",
        },
        EventKind::Role => "+role-change",
        EventKind::ServerChanged => "+server-changed",
        EventKind::Discovered => "+slave",
        EventKind::Diverged => "+diverged",
        EventKind::Failover if ev.reason.ends_with(" ok") => "+switch-master",
        EventKind::Failover if ev.reason.contains("no replica") => "-failover-abort-no-good-slave",
        EventKind::Failover => "-failover-abort",
    }
}

/// Sentinel's description: `<instance-type> <name> <ip> <port>`, or for
/// a new primary `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.
pub fn sentinel_description(ev: &Event) -> String {
    let ip_port = |addr: &str| match crate::health::probe::split_host_port(addr) {
        Some((ip, port)) => format!("{ip} {port}"),
        None => format!("{addr} 0"),
    };
    if sentinel_type(ev) == "+switch-master" {
        return format!("{MASTER_NAME} {} {}", ip_port(&ev.old), ip_port(&ev.new));
    }
    // A failed failover is about the primary it could not replace.
    let addr = if ev.kind == EventKind::Failover {
        &ev.old
    } else {
        &ev.backend
    };
    if ev.primary {
        format!("master {MASTER_NAME} {}", ip_port(addr))
    } else {
        format!("slave {addr} {}", ip_port(addr))
    }
}

async fn run_script(path: &std::path::Path, ev: &Event) {
    let args = [sentinel_type(ev).to_string(), sentinel_description(ev)];
    let env = [
        ("GANTRY_EVENT", ev.kind.as_str()),
        ("GANTRY_BACKEND", &ev.backend),
        ("GANTRY_OLD", &ev.old),
        ("GANTRY_NEW", &ev.new),
        ("GANTRY_REASON", &ev.reason),
    ];
    run_command(path, &args, &env).await;
}

async fn run_command(path: &std::path::Path, args: &[String], env: &[(&str, &str)]) {
    let child = tokio::process::Command::new(path)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %path.display(), error = %e, "cannot run notification-script");
            return;
        }
    };
    match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if !status.success() => {
            tracing::warn!(script = %path.display(), %status, "notification-script failed");
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(script = %path.display(), error = %e, "notification-script failed")
        }
        // Dropping the child kills it (kill_on_drop).
        Err(_) => tracing::warn!(script = %path.display(), "notification-script timed out; killed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn script_gets_sentinel_arguments_and_gantry_fields() {
        let dir = std::env::temp_dir().join(format!("gantry-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = dir.join("notify.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1|$2|$GANTRY_EVENT $GANTRY_BACKEND $GANTRY_OLD $GANTRY_NEW $GANTRY_REASON\" > {}.tmp && mv {0}.tmp {0}\n",
                out.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let before = count(EventKind::State);
        emit(
            Event {
                kind: EventKind::State,
                backend: "127.0.0.1:3307".into(),
                primary: false,
                old: "up".into(),
                new: "lagging".into(),
                reason: "SQL thread stopped".into(),
            },
            Some(script),
        );
        assert!(count(EventKind::State) > before);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = std::fs::read_to_string(&out) {
                assert_eq!(
                    s.trim(),
                    "+lagging|slave 127.0.0.1:3307 127.0.0.1 3307|state 127.0.0.1:3307 up lagging SQL thread stopped"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "notification-script did not run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_script_is_logged_not_fatal() {
        emit(
            Event {
                kind: EventKind::Discovered,
                backend: "h:1".into(),
                primary: false,
                old: "-".into(),
                new: "unknown".into(),
                reason: String::new(),
            },
            Some(PathBuf::from("/nonexistent/gantry-notify")),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(count(EventKind::Discovered) >= 1);
    }

    fn event(kind: EventKind, primary: bool, old: &str, new: &str, reason: &str) -> Event {
        Event {
            kind,
            backend: "10.0.0.2:3306".into(),
            primary,
            old: old.into(),
            new: new.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn sentinel_names_and_descriptions() {
        let down = event(EventKind::State, true, "up", "down", "");
        assert_eq!(sentinel_type(&down), "+sdown");
        assert_eq!(sentinel_description(&down), "master gantry 10.0.0.2 3306");
        let back = event(EventKind::State, false, "down", "up", "");
        assert_eq!(sentinel_type(&back), "-sdown");
        assert_eq!(
            sentinel_description(&back),
            "slave 10.0.0.2:3306 10.0.0.2 3306"
        );
        let moved = event(
            EventKind::Failover,
            true,
            "10.0.0.1:3306",
            "10.0.0.2:3306",
            "auto ok",
        );
        assert_eq!(sentinel_type(&moved), "+switch-master");
        assert_eq!(
            sentinel_description(&moved),
            "gantry 10.0.0.1 3306 10.0.0.2 3306"
        );
        let none = event(
            EventKind::Failover,
            true,
            "10.0.0.1:3306",
            "",
            "auto no replica to promote",
        );
        assert_eq!(sentinel_type(&none), "-failover-abort-no-good-slave");
        assert_eq!(sentinel_description(&none), "master gantry 10.0.0.1 3306");
        let blocked = event(
            EventKind::Failover,
            true,
            "10.0.0.1:3306",
            "",
            "auto refused: another failover ended less than failover-block-ms ago",
        );
        assert_eq!(sentinel_type(&blocked), "-failover-abort");
    }
}
