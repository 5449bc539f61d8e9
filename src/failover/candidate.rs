//! Which replica to promote: the one that lacks the fewest transactions.
//!
//! Rules, in order:
//! 1. Skip `no-promotion` backends, replicas with a replication error,
//!    replicas whose last known lag exceeds `failover-max-lag`, replicas
//!    with no known position, and (all flavours must agree) refuse when the
//!    eligible ones speak different GTID flavours.
//! 2. Rank by the received position first (what it will have once its relay
//!    log is applied), then by the applied one. A replica has received at
//!    least what it applied, so "received" is the union of both: MySQL's
//!    `Retrieved_Gtid_Set` only holds what this channel fetched.
//! 3. Positions are ranked by how many transactions of the union of all
//!    eligible positions each one lacks (fewer is better). When one
//!    position contains another it ranks at least as high; when neither
//!    does (each ahead in another MariaDB domain or MySQL uuid), the one
//!    lacking fewer transactions wins. This is a plain integer per
//!    candidate, so the order is total and transitive. MariaDB counts per
//!    domain by seq_no difference.
//! 4. Ties go to the earliest candidate in the order given (callers pass
//!    config order), so the same topology always yields the same choice.
//!
//! Lag unknown (`None`) does not exclude: a replica whose primary just died
//! reports `Seconds_Behind_Master = NULL`, so callers pass the last lag seen
//! while it was replicating, and the GTID ranking decides the rest.

use std::fmt;
use std::time::Duration;

use crate::gtid::Gtid;
use crate::health::probe::Flavor;

/// What the health loop knows about one replica when the primary failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: u64,
    pub address: String,
    pub flavor: Flavor,
    pub no_promotion: bool,
    /// `Last_IO_Error` / `Last_SQL_Error` text, or a refused status query.
    pub replication_error: Option<String>,
    /// Last known lag; `None` when never known.
    pub lag: Option<Duration>,
    /// `Gtid_IO_Pos` (MariaDB) / `Retrieved_Gtid_Set` (MySQL).
    pub received: Option<Gtid>,
    /// `gtid_current_pos` / `gtid_executed`.
    pub applied: Option<Gtid>,
}

/// Why one replica was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    NoPromotion,
    ReplicationError(String),
    Lagging {
        lag: Duration,
        max: Duration,
    },
    NoPosition,
    /// Its positions are of the other flavour than the server itself.
    WrongFlavour,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::NoPromotion => f.write_str("no-promotion is set"),
            Skipped::ReplicationError(e) => write!(f, "replication error: {e}"),
            Skipped::Lagging { lag, max } => {
                write!(f, "lag {lag:?} exceeds failover-max-lag {max:?}")
            }
            Skipped::NoPosition => f.write_str("GTID position unknown"),
            Skipped::WrongFlavour => f.write_str("GTID position of the other flavour"),
        }
    }
}

/// Why no replica can be promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoCandidate {
    NoReplicas,
    /// Every replica was passed over: (id, why).
    AllSkipped(Vec<(u64, Skipped)>),
    /// MariaDB and MySQL GTIDs cannot be ranked against each other.
    MixedFlavours,
}

impl fmt::Display for NoCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoCandidate::NoReplicas => f.write_str("no replica to promote"),
            NoCandidate::AllSkipped(why) => {
                f.write_str("no replica can be promoted:")?;
                for (i, (id, reason)) in why.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}backend {id}: {reason}")?;
                }
                Ok(())
            }
            NoCandidate::MixedFlavours => {
                f.write_str("replicas mix MariaDB and MySQL GTIDs: cannot rank them")
            }
        }
    }
}

/// The choice, with the replicas passed over (for the log and `failovers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<'a> {
    pub chosen: &'a Candidate,
    pub skipped: Vec<(u64, Skipped)>,
}

pub fn choose(candidates: &[Candidate], max_lag: Duration) -> Result<Choice<'_>, NoCandidate> {
    if candidates.is_empty() {
        return Err(NoCandidate::NoReplicas);
    }
    let mut skipped = Vec::new();
    let mut eligible = Vec::new();
    for c in candidates {
        match eligibility(c, max_lag) {
            Ok(applied) => eligible.push((c, received(c, applied), applied)),
            Err(why) => skipped.push((c.id, why)),
        }
    }
    let Some(first) = eligible.first() else {
        return Err(NoCandidate::AllSkipped(skipped));
    };
    if eligible.iter().any(|(c, ..)| c.flavor != first.0.flavor) {
        return Err(NoCandidate::MixedFlavours);
    }
    let all_received = union(eligible.iter().map(|(_, r, _)| r));
    let all_applied = union(eligible.iter().map(|(.., a)| *a));
    let rank =
        |(_, r, a): &(&Candidate, Gtid, &Gtid)| (lacks(r, &all_received), lacks(a, &all_applied));
    // min_by_key keeps the first of equal keys: config order breaks ties.
    let best = eligible.iter().min_by_key(|e| rank(e)).map(|(c, ..)| *c);
    match best {
        Some(chosen) => Ok(Choice { chosen, skipped }),
        None => Err(NoCandidate::AllSkipped(skipped)),
    }
}

fn eligibility(c: &Candidate, max_lag: Duration) -> Result<&Gtid, Skipped> {
    if c.no_promotion {
        return Err(Skipped::NoPromotion);
    }
    if let Some(e) = &c.replication_error {
        return Err(Skipped::ReplicationError(e.clone()));
    }
    if let Some(lag) = c.lag.filter(|lag| *lag > max_lag) {
        return Err(Skipped::Lagging { lag, max: max_lag });
    }
    let applied = c.applied.as_ref().ok_or(Skipped::NoPosition)?;
    let speaks = |g: &Gtid| {
        matches!(
            (c.flavor, g),
            (Flavor::MariaDb, Gtid::MariaDb(_)) | (Flavor::MySql, Gtid::MySql(_))
        )
    };
    if !speaks(applied) || !c.received.as_ref().is_none_or(speaks) {
        return Err(Skipped::WrongFlavour);
    }
    Ok(applied)
}

fn received(c: &Candidate, applied: &Gtid) -> Gtid {
    let mut all = applied.clone();
    if let Some(r) = &c.received {
        all.merge(r);
    }
    all
}

fn union<'a>(mut positions: impl Iterator<Item = &'a Gtid>) -> Option<Gtid> {
    let mut all = positions.next()?.clone();
    positions.for_each(|p| all.merge(p));
    Some(all)
}

/// How many transactions of `all` the position lacks. Flavours were
/// checked equal before; were they not, the position would rank last.
fn lacks(position: &Gtid, all: &Option<Gtid>) -> u64 {
    all.as_ref()
        .map_or(Some(0), |all| position.missing(all))
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtid::{GtidSet, MariaPos};

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "8b7c4e2a-1111-11e1-9e33-c80aa9429562";
    const MAX_LAG: Duration = Duration::from_secs(10);

    fn maria(id: u64, received: &str, applied: &str) -> Candidate {
        Candidate {
            id,
            address: format!("127.0.0.1:{}", 3306 + id),
            flavor: Flavor::MariaDb,
            no_promotion: false,
            replication_error: None,
            lag: Some(Duration::ZERO),
            received: Some(Gtid::MariaDb(MariaPos::parse(received))),
            applied: Some(Gtid::MariaDb(MariaPos::parse(applied))),
        }
    }

    fn mysql(id: u64, received: &str, applied: &str) -> Candidate {
        Candidate {
            flavor: Flavor::MySql,
            received: Some(Gtid::MySql(GtidSet::parse(received))),
            applied: Some(Gtid::MySql(GtidSet::parse(applied))),
            ..maria(id, "", "")
        }
    }

    fn chosen(cands: &[Candidate]) -> u64 {
        choose(cands, MAX_LAG).map(|c| c.chosen.id).unwrap_or(0)
    }

    #[test]
    fn received_counts_before_applied() {
        // 2 has received more (it will have more once applied), though 1
        // has applied more right now.
        let cands = [maria(1, "0-1-50", "0-1-48"), maria(2, "0-1-55", "0-1-40")];
        assert_eq!(chosen(&cands), 2);
        // Equal received: the one that applied more needs less waiting.
        let cands = [maria(1, "0-1-50", "0-1-40"), maria(2, "0-1-50", "0-1-49")];
        assert_eq!(chosen(&cands), 2);
    }

    #[test]
    fn ties_go_to_config_order() {
        let cands = [
            maria(3, "0-1-50", "0-1-50"),
            maria(1, "0-1-50", "0-1-50"),
            maria(2, "0-1-50", "0-1-50"),
        ];
        assert_eq!(chosen(&cands), 3);
    }

    #[test]
    fn received_is_at_least_applied() {
        // No received position (e.g. relay log reset): applied stands in.
        let mut a = maria(1, "", "0-1-60");
        a.received = None;
        let b = maria(2, "0-1-55", "0-1-55");
        assert_eq!(chosen(&[b, a]), 1);
    }

    #[test]
    fn incomparable_positions_rank_by_what_they_lack() {
        // 1 is ahead in domain 0 by 2, 2 is ahead in domain 1 by 5:
        // 1 lacks 5 of the union, 2 lacks 2.
        let cands = [
            maria(1, "0-1-12,1-2-20", "0-1-12,1-2-20"),
            maria(2, "0-1-10,1-2-25", "0-1-10,1-2-25"),
        ];
        assert_eq!(chosen(&cands), 2);
        // MySQL: 1 lacks B:4-6 (3), 2 lacks A:9-10 (2).
        let cands = [
            mysql(
                1,
                &format!("{A}:1-10,{B}:1-3"),
                &format!("{A}:1-10,{B}:1-3"),
            ),
            mysql(2, &format!("{A}:1-8,{B}:1-6"), &format!("{A}:1-8,{B}:1-6")),
        ];
        assert_eq!(chosen(&cands), 2);
        // Lacking a whole uuid weighs by its transactions, like any other:
        // here each lacks one, so config order decides.
        let cands = [
            mysql(1, &format!("{A}:1-10"), &format!("{A}:1-10")),
            mysql(2, &format!("{A}:1-9,{B}:1"), &format!("{A}:1-9,{B}:1")),
        ];
        assert_eq!(chosen(&cands), 1);
    }

    #[test]
    fn skips_with_reasons() {
        let mut np = maria(1, "0-1-99", "0-1-99");
        np.no_promotion = true;
        let mut err = maria(2, "0-1-99", "0-1-99");
        err.replication_error = Some("Error 1062 duplicate key".into());
        let mut lagging = maria(3, "0-1-99", "0-1-99");
        lagging.lag = Some(Duration::from_secs(11));
        let mut blind = maria(4, "0-1-99", "0-1-99");
        blind.applied = None;
        let ok = maria(5, "0-1-10", "0-1-10");
        let all = [np, err, lagging, blind, ok];
        let choice = choose(&all, MAX_LAG).unwrap();
        assert_eq!(choice.chosen.id, 5);
        let reasons: Vec<u64> = choice.skipped.iter().map(|(id, _)| *id).collect();
        assert_eq!(reasons, [1, 2, 3, 4]);
        assert_eq!(
            choice.skipped[2].1,
            Skipped::Lagging {
                lag: Duration::from_secs(11),
                max: MAX_LAG
            }
        );
        // Without the good one: nothing, and the message says why.
        let none = choose(&all[..4], MAX_LAG).unwrap_err();
        let text = none.to_string();
        assert!(text.contains("backend 1: no-promotion is set"), "{text}");
        assert!(
            text.contains("backend 2: replication error: Error 1062"),
            "{text}"
        );
        assert!(
            text.contains("backend 3: lag 11s exceeds failover-max-lag 10s"),
            "{text}"
        );
        assert!(text.contains("backend 4: GTID position unknown"), "{text}");
    }

    #[test]
    fn unknown_lag_does_not_exclude() {
        let mut a = maria(1, "0-1-20", "0-1-20");
        a.lag = None;
        assert_eq!(chosen(&[a]), 1);
        let mut at_limit = maria(2, "0-1-20", "0-1-20");
        at_limit.lag = Some(MAX_LAG);
        assert_eq!(chosen(&[at_limit]), 2);
    }

    #[test]
    fn no_replicas_and_mixed_flavours() {
        assert_eq!(choose(&[], MAX_LAG), Err(NoCandidate::NoReplicas));
        let mixed = [maria(1, "0-1-1", "0-1-1"), mysql(2, "", "")];
        assert_eq!(choose(&mixed, MAX_LAG), Err(NoCandidate::MixedFlavours));
        assert!(NoCandidate::NoReplicas.to_string().contains("no replica"));
        assert!(NoCandidate::MixedFlavours
            .to_string()
            .contains("cannot rank"));
    }

    #[test]
    fn a_position_of_the_other_flavour_is_skipped() {
        let mut odd = maria(1, "0-1-99", "0-1-99");
        odd.received = Some(Gtid::MySql(GtidSet::parse(&format!("{A}:1-5"))));
        let fine = maria(2, "0-1-5", "0-1-5");
        let cands = [odd, fine];
        let choice = choose(&cands, MAX_LAG).unwrap();
        assert_eq!(choice.chosen.id, 2);
        assert_eq!(choice.skipped, [(1, Skipped::WrongFlavour)]);
        assert_eq!(lacks(&fine_gtid(), &Some(mysql_gtid())), u64::MAX);
        assert_eq!(lacks(&fine_gtid(), &None), 0);
    }

    fn fine_gtid() -> Gtid {
        Gtid::MariaDb(MariaPos::parse("0-1-1"))
    }

    fn mysql_gtid() -> Gtid {
        Gtid::MySql(GtidSet::parse(&format!("{A}:1")))
    }

    #[test]
    fn empty_positions_are_positions() {
        // A fresh topology with no writes yet still has a candidate.
        let cands = [maria(1, "", ""), maria(2, "", "")];
        assert_eq!(chosen(&cands), 1);
    }
}
