//! Following a primary that moved: role changes decided from what a
//! backend says about itself. Gantry does not promote anything here; it
//! follows what keepalived, orchestrator, MHA or an operator did.

use super::probe::ProbeResult;
use crate::backend::Role;

/// The role a backend should have now, with the reason, or `None` to keep
/// it.
///
/// - A replica that is writable and no longer replicating was promoted:
///   it takes writes now (and no longer serves replica reads).
/// - A primary that is read-only and replicating was demoted (an old
///   primary restarted as a replica of the new one): it serves reads once
///   caught up. A read-only primary that does not replicate keeps its role
///   (failover in progress): writes to it are refused until it is writable.
pub fn role_change(role: Role, probe: &ProbeResult) -> Option<(Role, &'static str)> {
    if probe.replication_error.is_some() {
        return None; // replication state unknown: nothing to follow
    }
    let replicating = probe
        .replication
        .as_ref()
        .is_some_and(|r| r.is_replicating());
    match role {
        Role::Replica if !probe.read_only && !replicating => Some((
            Role::Primary,
            "writable and not replicating: it was promoted",
        )),
        Role::Primary if probe.read_only && replicating => {
            Some((Role::Replica, "read-only and replicating: it was demoted"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::probe::{Flavor, Identity};
    use crate::health::replication::ReplicaStatus;

    fn probe(read_only: bool, io: Option<&str>) -> ProbeResult {
        ProbeResult {
            flavor: Flavor::MariaDb,
            read_only,
            identity: Identity {
                server_id: 1,
                uuid: None,
            },
            gtid: None,
            replication: io.map(|io| ReplicaStatus {
                io_running: io.into(),
                sql_running: "Yes".into(),
                ..Default::default()
            }),
            replication_error: None,
            replica_hosts: None,
            max_allowed_packet: None,
            heartbeats: None,
            heartbeat_period: None,
        }
    }

    #[test]
    fn promoted_replica_becomes_primary() {
        // STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0
        let (role, _) = role_change(Role::Replica, &probe(false, None)).unwrap();
        assert_eq!(role, Role::Primary);
        // Stopped but still configured (both threads No) counts as not replicating.
        let mut stopped = probe(false, Some("No"));
        stopped.replication.as_mut().unwrap().sql_running = "No".into();
        assert_eq!(
            role_change(Role::Replica, &stopped).map(|r| r.0),
            Some(Role::Primary)
        );
    }

    #[test]
    fn ordinary_states_keep_their_role() {
        assert_eq!(role_change(Role::Replica, &probe(true, Some("Yes"))), None);
        // Read-only but not replicating: may be a replica being promoted.
        assert_eq!(role_change(Role::Replica, &probe(true, None)), None);
        // Writable and still replicating: odd, but not a promotion.
        assert_eq!(role_change(Role::Replica, &probe(false, Some("Yes"))), None);
        assert_eq!(role_change(Role::Primary, &probe(false, None)), None);
        // Failover in progress behind a VIP: read-only, not replicating.
        assert_eq!(role_change(Role::Primary, &probe(true, None)), None);
    }

    #[test]
    fn unknown_replication_changes_nothing() {
        let mut p = probe(false, None);
        p.replication_error = Some("Access denied; you need the SLAVE MONITOR privilege".into());
        assert_eq!(role_change(Role::Replica, &p), None);
    }

    #[test]
    fn old_primary_replicating_is_demoted() {
        let (role, _) = role_change(Role::Primary, &probe(true, Some("Connecting"))).unwrap();
        assert_eq!(role, Role::Replica);
    }
}
