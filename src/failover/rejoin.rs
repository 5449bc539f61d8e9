//! May an old primary come back as a replica of the new one? Only when
//! everything it executed is on the new primary: a transaction only it has
//! (an errant GTID) was acknowledged to some client and would either be
//! lost or make the two servers differ, so it stays out (`diverged`) and an
//! operator decides.
//!
//! MySQL keeps every executed GTID (`gtid_executed`), so the check is exact.
//!
//! MariaDB's `gtid_current_pos` keeps only the last GTID per domain. What
//! can be seen: a domain the new primary never had, a higher seq_no than
//! the new primary's, and the same seq_no written by another server_id (both
//! wrote transaction n independently). What cannot: an errant transaction
//! *below* the new primary's seq_no, e.g. the old primary wrote 0-1-10 while
//! the new one wrote 0-2-10 and went on to 0-2-15. So on MariaDB Gantry
//! compares `gtid_binlog_state` instead ([`check_binlog_states`]): the last
//! seq_no of every (domain, server_id) pair ever written to the binlog. The
//! old primary's own last transaction must be there on the new primary
//! (replicated with its server_id), else the new primary lacks it.

use std::fmt;

use crate::gtid::Gtid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejoin {
    /// Everything the old primary executed is on the new one.
    Rejoin,
    /// GTIDs the new primary lacks, in the server's own text form
    /// (`domain-server-seq` on MariaDB, `uuid:a-b` on MySQL).
    Diverged { errant: String },
    /// A MariaDB position against a MySQL set: nothing can be said, so no
    /// rejoin either.
    Incomparable,
}

impl Rejoin {
    pub fn may_rejoin(&self) -> bool {
        matches!(self, Rejoin::Rejoin)
    }
}

impl fmt::Display for Rejoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejoin::Rejoin => f.write_str("contained in the new primary: may rejoin"),
            Rejoin::Diverged { errant } => {
                write!(f, "diverged: the new primary lacks {errant}")
            }
            Rejoin::Incomparable => {
                f.write_str("GTID flavours differ: cannot compare, not rejoining")
            }
        }
    }
}

/// Compares the old primary's executed position with the new primary's.
pub fn check(old_primary: &Gtid, new_primary: &Gtid) -> Rejoin {
    let errant = match (old_primary, new_primary) {
        (Gtid::MariaDb(old), Gtid::MariaDb(new)) => Gtid::MariaDb(old.not_in(new)),
        (Gtid::MySql(old), Gtid::MySql(new)) => Gtid::MySql(old.difference(new)),
        _ => return Rejoin::Incomparable,
    };
    if errant.is_empty() {
        Rejoin::Rejoin
    } else {
        Rejoin::Diverged {
            errant: errant.to_string(),
        }
    }
}

/// MariaDB: every (domain, server_id) of the old primary's
/// `gtid_binlog_state` must be on the new primary with at least its
/// seq_no; the ones that are not are errant.
pub fn check_binlog_states(old_primary: &str, new_primary: &str) -> Rejoin {
    let parse = |s: &str| -> Vec<(u32, u32, u64)> {
        s.split(',')
            .filter_map(|g| {
                let mut p = g.trim().splitn(3, '-');
                Some((
                    p.next()?.parse().ok()?,
                    p.next()?.parse().ok()?,
                    p.next()?.parse().ok()?,
                ))
            })
            .collect()
    };
    let new = parse(new_primary);
    let errant: Vec<String> = parse(old_primary)
        .into_iter()
        .filter(|&(d, srv, seq)| {
            !new.iter()
                .any(|&(nd, ns, nseq)| nd == d && ns == srv && nseq >= seq)
        })
        .map(|(d, srv, seq)| format!("{d}-{srv}-{seq}"))
        .collect();
    if errant.is_empty() {
        Rejoin::Rejoin
    } else {
        Rejoin::Diverged {
            errant: errant.join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_states_catch_an_errant_transaction_below_the_new_seq() {
        // The old primary (server 1) wrote 0-1-10; the new one had 0-1-9
        // from it, then wrote 0-2-10..15 itself.
        assert_eq!(
            check_binlog_states("0-1-10", "0-1-9,0-2-15"),
            Rejoin::Diverged {
                errant: "0-1-10".into()
            }
        );
        assert_eq!(check_binlog_states("0-1-9", "0-1-9,0-2-15"), Rejoin::Rejoin);
        // Rejoined before: its state holds the others' transactions too.
        assert_eq!(
            check_binlog_states("0-1-9,0-2-15", "0-2-20,0-1-9,0-3-4"),
            Rejoin::Rejoin
        );
        assert_eq!(check_binlog_states("", "0-2-20"), Rejoin::Rejoin);
        assert!(!check_binlog_states("1-1-3,0-1-9", "0-1-9").may_rejoin());
    }
    use crate::gtid::{GtidSet, MariaPos};

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "8b7c4e2a-1111-11e1-9e33-c80aa9429562";

    fn maria(s: &str) -> Gtid {
        Gtid::MariaDb(MariaPos::parse(s))
    }

    fn mysql(s: &str) -> Gtid {
        Gtid::MySql(GtidSet::parse(s))
    }

    fn diverged(errant: &str) -> Rejoin {
        Rejoin::Diverged {
            errant: errant.to_string(),
        }
    }

    #[test]
    fn mariadb_behind_or_equal_rejoins() {
        // The new primary replicated 0-1-30 and wrote on as server 2.
        assert_eq!(check(&maria("0-1-30"), &maria("0-2-41")), Rejoin::Rejoin);
        assert_eq!(check(&maria("0-1-30"), &maria("0-1-30")), Rejoin::Rejoin);
        assert_eq!(check(&maria(""), &maria("0-2-1")), Rejoin::Rejoin);
        assert!(check(&maria("0-1-30,1-1-2"), &maria("0-2-41,1-1-5")).may_rejoin());
    }

    #[test]
    fn mariadb_errant_writes_are_listed() {
        // Wrote past what the new primary had when it was promoted.
        assert_eq!(
            check(&maria("0-1-45"), &maria("0-2-41")),
            diverged("0-1-45")
        );
        // Same seq, another writer: both wrote transaction 41.
        assert_eq!(
            check(&maria("0-1-41"), &maria("0-2-41")),
            diverged("0-1-41")
        );
        // A domain the new primary never saw, next to a good one.
        assert_eq!(
            check(&maria("0-1-30,7-1-3"), &maria("0-2-41")),
            diverged("7-1-3")
        );
    }

    #[test]
    fn mariadb_divergence_below_the_new_seq_is_invisible() {
        // Documented limit: 0-1-10 vs 0-2-10..15 looks contained; the
        // server refuses the connection later.
        assert!(check(&maria("0-1-10"), &maria("0-2-15")).may_rejoin());
    }

    #[test]
    fn mysql_subset_rejoins_else_lists_the_missing_ranges() {
        let new = mysql(&format!("{A}:1-100,{B}:1-20"));
        assert_eq!(check(&mysql(&format!("{A}:1-90")), &new), Rejoin::Rejoin);
        assert_eq!(check(&mysql(""), &new), Rejoin::Rejoin);
        let old = mysql(&format!("{A}:1-103:105,{B}:1-20"));
        assert_eq!(check(&old, &new), diverged(&format!("{A}:101-103:105")));
        let other_uuid = mysql(&format!("{A}:1-50,{B}:21-22"));
        assert_eq!(check(&other_uuid, &new), diverged(&format!("{B}:21-22")));
    }

    #[test]
    fn flavours_differ_no_rejoin() {
        let v = check(&maria("0-1-1"), &mysql(&format!("{A}:1")));
        assert_eq!(v, Rejoin::Incomparable);
        assert!(!v.may_rejoin());
        assert!(v.to_string().contains("cannot compare"));
        assert!(diverged("0-1-2").to_string().contains("lacks 0-1-2"));
        assert!(Rejoin::Rejoin.to_string().contains("may rejoin"));
    }
}
