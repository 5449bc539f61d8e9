//! GTID positions, parsed from their text forms and compared.
//!
//! MariaDB: `@@gtid_current_pos` is a list `domain-server-seq`, one per
//! replication domain; within a domain sequence numbers only grow, so a
//! replica has applied the primary's position when, for every domain the
//! primary has, the replica's seq is at least the primary's.
//!
//! MySQL: `@@gtid_executed` is a set `uuid:1-5:7-9,uuid2:1-3` (8.3+ may
//! add tags: `uuid:tag:1-5`); a replica has applied the primary's set when
//! it is a superset of it.

use std::collections::BTreeMap;
use std::fmt;

/// A server's executed position, in whichever flavour it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtid {
    MariaDb(MariaPos),
    MySql(GtidSet),
}

impl Gtid {
    /// Whether `self` contains everything in `want`; `None` when the two
    /// cannot be compared (different flavours).
    pub fn covers(&self, want: &Gtid) -> Option<bool> {
        match (self, want) {
            (Gtid::MariaDb(h), Gtid::MariaDb(w)) => Some(h.covers(w)),
            (Gtid::MySql(h), Gtid::MySql(w)) => Some(w.is_subset(h)),
            _ => None,
        }
    }

    /// How many transactions of `want` are missing from `self`.
    pub fn missing(&self, want: &Gtid) -> Option<u64> {
        match (self, want) {
            (Gtid::MariaDb(h), Gtid::MariaDb(w)) => Some(h.missing(w)),
            (Gtid::MySql(h), Gtid::MySql(w)) => Some(w.count_not_in(h)),
            _ => None,
        }
    }
}

impl Gtid {
    /// Everything in `self` or `other` (a session's writes accumulate).
    pub fn merge(&mut self, other: &Gtid) {
        match (self, other) {
            (Gtid::MariaDb(a), Gtid::MariaDb(b)) => {
                for (d, (srv, seq)) in &b.0 {
                    let e = a.0.entry(*d).or_insert((*srv, *seq));
                    if *seq > e.1 {
                        *e = (*srv, *seq);
                    }
                }
            }
            (Gtid::MySql(a), Gtid::MySql(b)) => {
                for (k, ivs) in &b.0 {
                    let mine = a.0.entry(k.clone()).or_default();
                    mine.extend_from_slice(ivs);
                    normalize(mine);
                }
            }
            (me, other) => *me = other.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Gtid::MariaDb(p) => p.0.is_empty(),
            Gtid::MySql(s) => s.0.is_empty(),
        }
    }
}

/// The server's own text form (what MASTER_GTID_WAIT and
/// WAIT_FOR_EXECUTED_GTID_SET take).
impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MariaDb(p) => {
                for (i, (d, (srv, seq))) in p.0.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{d}-{srv}-{seq}")?;
                }
                Ok(())
            }
            Gtid::MySql(s) => {
                for (i, (k, ivs)) in s.0.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{k}")?;
                    for (a, b) in ivs {
                        if a == b {
                            write!(f, ":{a}")?;
                        } else {
                            write!(f, ":{a}-{b}")?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// MariaDB position: domain → (server_id, seq).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaPos(pub BTreeMap<u32, (u32, u64)>);

impl MariaPos {
    /// Parses `0-1-35,1-3-7`; malformed items are skipped (an empty string
    /// is an empty position, as on a server that never wrote anything).
    pub fn parse(s: &str) -> MariaPos {
        let mut map = BTreeMap::new();
        for item in s.split(',') {
            let mut it = item.trim().splitn(3, '-');
            let parsed = (|| {
                let d = it.next()?.parse().ok()?;
                let srv = it.next()?.parse().ok()?;
                let seq = it.next()?.parse().ok()?;
                Some((d, srv, seq))
            })();
            if let Some((d, srv, seq)) = parsed {
                let e = map.entry(d).or_insert((srv, seq));
                if seq > e.1 {
                    *e = (srv, seq);
                }
            }
        }
        MariaPos(map)
    }

    pub fn covers(&self, want: &MariaPos) -> bool {
        want.0
            .iter()
            .all(|(d, (_, seq))| self.0.get(d).is_some_and(|(_, s)| s >= seq))
    }

    /// The entries of `self` that `other` does not contain: a domain
    /// `other` lacks, a higher seq, or the same seq written by another
    /// server (two servers wrote that transaction independently).
    /// Only the last GTID per domain is known, so a divergence below
    /// `other`'s seq cannot be seen here.
    pub fn not_in(&self, other: &MariaPos) -> MariaPos {
        let lacking = self
            .0
            .iter()
            .filter(|(d, (srv, seq))| match other.0.get(d) {
                None => true,
                Some((o_srv, o_seq)) => seq > o_seq || (seq == o_seq && srv != o_srv),
            });
        MariaPos(lacking.map(|(d, v)| (*d, *v)).collect())
    }

    pub fn missing(&self, want: &MariaPos) -> u64 {
        want.0
            .iter()
            .map(|(d, (_, seq))| seq.saturating_sub(self.0.get(d).map_or(0, |(_, s)| *s)))
            .fold(0u64, u64::saturating_add)
    }
}

/// MySQL GTID set: source (uuid, or `uuid:tag`) → sorted disjoint closed
/// intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet(pub BTreeMap<String, Vec<(u64, u64)>>);

impl GtidSet {
    /// Parses a GTID set; whitespace and newlines (MySQL prints them after
    /// commas) are ignored; malformed intervals are skipped.
    pub fn parse(s: &str) -> GtidSet {
        let mut map: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        for item in cleaned.split(',').filter(|i| !i.is_empty()) {
            let mut parts = item.split(':');
            let Some(uuid) = parts.next().filter(|u| !u.is_empty()) else {
                continue;
            };
            let uuid = uuid.to_ascii_lowercase();
            let mut key = uuid.clone();
            for part in parts {
                match parse_interval(part) {
                    Some(iv) => map.entry(key.clone()).or_default().push(iv),
                    // A tag: the following intervals belong to uuid:tag.
                    None if is_tag(part) => key = format!("{uuid}:{}", part.to_ascii_lowercase()),
                    None => {}
                }
            }
        }
        for ivs in map.values_mut() {
            normalize(ivs);
        }
        map.retain(|_, v| !v.is_empty());
        GtidSet(map)
    }

    /// Whether every transaction in `self` is in `other`.
    pub fn is_subset(&self, other: &GtidSet) -> bool {
        self.count_not_in(other) == 0
    }

    /// The transactions in `self` that `other` lacks, as a set.
    pub fn difference(&self, other: &GtidSet) -> GtidSet {
        let mut map = BTreeMap::new();
        for (k, ivs) in &self.0 {
            let mut rest = ivs.clone();
            for &cut in other.0.get(k).map_or(&[][..], Vec::as_slice) {
                rest = rest.into_iter().flat_map(|iv| subtract(iv, cut)).collect();
            }
            if !rest.is_empty() {
                map.insert(k.clone(), rest);
            }
        }
        GtidSet(map)
    }

    /// Transactions in `self` that `other` lacks.
    pub fn count_not_in(&self, other: &GtidSet) -> u64 {
        let empty = Vec::new();
        self.0
            .iter()
            .map(|(k, ivs)| {
                let have = other.0.get(k).unwrap_or(&empty);
                ivs.iter()
                    .map(|&iv| size(iv).saturating_sub(overlap(iv, have)))
                    .fold(0u64, u64::saturating_add)
            })
            .fold(0u64, u64::saturating_add)
    }
}

fn is_tag(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_interval(s: &str) -> Option<(u64, u64)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let n = s.parse().ok()?;
            (n, n)
        }
    };
    (a <= b).then_some((a, b))
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalize(ivs: &mut Vec<(u64, u64)>) {
    ivs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
    for &(a, b) in ivs.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *ivs = out;
}

fn size((a, b): (u64, u64)) -> u64 {
    (b - a).saturating_add(1)
}

/// What is left of `iv` once `cut` is taken out: none, one or two pieces.
fn subtract(iv: (u64, u64), cut: (u64, u64)) -> impl Iterator<Item = (u64, u64)> {
    let below = (cut.0 > iv.0).then(|| (iv.0, iv.1.min(cut.0 - 1)));
    let above = (cut.1 < iv.1).then(|| (iv.0.max(cut.1 + 1), iv.1));
    below.into_iter().chain(above).filter(|(a, b)| a <= b)
}

/// How much of `iv` the disjoint intervals `have` cover.
fn overlap(iv: (u64, u64), have: &[(u64, u64)]) -> u64 {
    have.iter()
        .filter_map(|&(a, b)| {
            let lo = a.max(iv.0);
            let hi = b.min(iv.1);
            (lo <= hi).then(|| size((lo, hi)))
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_positions_compare_per_domain() {
        let primary = MariaPos::parse("0-1-35,1-3-7");
        assert!(MariaPos::parse("0-2-35,1-3-9").covers(&primary));
        assert!(!MariaPos::parse("0-1-34,1-3-9").covers(&primary));
        // A domain the replica never saw counts from zero.
        let r = MariaPos::parse("0-1-35");
        assert!(!r.covers(&primary));
        assert_eq!(r.missing(&primary), 7);
        assert_eq!(MariaPos::parse("0-1-30,1-3-7").missing(&primary), 5);
        // A domain only the replica has does not matter.
        assert!(MariaPos::parse("0-1-35,1-3-7,5-9-1").covers(&primary));
    }

    #[test]
    fn mariadb_parse_tolerates_junk_and_empty() {
        assert_eq!(MariaPos::parse("").0.len(), 0);
        assert!(MariaPos::parse("").covers(&MariaPos::parse("")));
        let p = MariaPos::parse(" 0-1-5 , garbage, 2-x-3 ,1-1-");
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[&0], (1, 5));
        assert!(!MariaPos::parse("").covers(&p));
    }

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "8b7c4e2a-1111-11e1-9e33-c80aa9429562";

    #[test]
    fn mysql_sets_subset_and_missing() {
        let primary = GtidSet::parse(&format!("{A}:1-10:12-15,\n{B}:1-3"));
        let replica = GtidSet::parse(&format!("{B}:1-3,{}:1-9", A.to_uppercase()));
        assert!(!primary.is_subset(&replica));
        assert_eq!(primary.count_not_in(&replica), 1 + 4);
        let full = GtidSet::parse(&format!("{A}:1-15,{B}:1-5"));
        assert!(primary.is_subset(&full));
        assert_eq!(primary.count_not_in(&full), 0);
        assert!(GtidSet::parse("").is_subset(&replica));
        assert_eq!(primary.count_not_in(&GtidSet::parse("")), 14 + 3);
    }

    #[test]
    fn mysql_intervals_merge_and_tags_are_separate_sources() {
        let s = GtidSet::parse(&format!("{A}:5-7:1-4:9,{A}:8"));
        assert_eq!(s.0[A], vec![(1, 9)]);
        let tagged = GtidSet::parse(&format!("{A}:1-3:blue:1-2"));
        assert_eq!(tagged.0[A], vec![(1, 3)]);
        assert_eq!(tagged.0[&format!("{A}:blue")], vec![(1, 2)]);
        assert!(!tagged.is_subset(&GtidSet::parse(&format!("{A}:1-3"))));
        // Reversed or junk intervals are dropped rather than trusted.
        assert_eq!(GtidSet::parse(&format!("{A}:5-1")).0.len(), 0);
    }

    #[test]
    fn merge_and_display_round_trip() {
        let mut a = Gtid::MariaDb(MariaPos::parse("0-1-5,1-2-9"));
        a.merge(&Gtid::MariaDb(MariaPos::parse("0-1-7,2-3-1")));
        assert_eq!(a.to_string(), "0-1-7,1-2-9,2-3-1");
        assert_eq!(Gtid::MariaDb(MariaPos::parse(&a.to_string())), a);
        let mut m = Gtid::MySql(GtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        m.merge(&Gtid::MySql(GtidSet::parse(
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:6-9:12",
        )));
        assert_eq!(m.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9:12");
        assert!(!m.is_empty());
        assert!(Gtid::MariaDb(MariaPos::parse("")).is_empty());
    }

    #[test]
    fn mariadb_not_in_sees_higher_seq_new_domain_and_other_writer() {
        let new = MariaPos::parse("0-2-20,1-3-7");
        assert!(MariaPos::parse("0-1-15,1-3-7").not_in(&new).0.is_empty());
        assert!(MariaPos::parse("0-2-20").not_in(&new).0.is_empty());
        let errant = MariaPos::parse("0-1-21,1-1-7,4-1-2").not_in(&new);
        assert_eq!(Gtid::MariaDb(errant).to_string(), "0-1-21,1-1-7,4-1-2");
        assert!(MariaPos::parse("").not_in(&new).0.is_empty());
    }

    #[test]
    fn mysql_difference_splits_intervals() {
        let old = GtidSet::parse(&format!("{A}:1-10:20-25,{B}:1-3"));
        let new = GtidSet::parse(&format!("{A}:3-4:8-21,{B}:1-3"));
        let d = old.difference(&new);
        assert_eq!(d.0[A], vec![(1, 2), (5, 7), (22, 25)]);
        assert!(!d.0.contains_key(B));
        assert_eq!(d.count_not_in(&GtidSet::default()), old.count_not_in(&new));
        assert!(old.difference(&old).0.is_empty());
        assert_eq!(old.difference(&GtidSet::default()), old);
        let edge = GtidSet::parse(&format!("{A}:1-{}", u64::MAX));
        let cut = GtidSet::parse(&format!("{A}:1-{}", u64::MAX - 1));
        assert_eq!(edge.difference(&cut).0[A], vec![(u64::MAX, u64::MAX)]);
        assert_eq!(
            GtidSet::parse(&format!("{A}:0-5"))
                .difference(&GtidSet::parse(&format!("{A}:0")))
                .0[A],
            vec![(1, 5)]
        );
    }

    #[test]
    fn flavours_do_not_compare() {
        let m = Gtid::MariaDb(MariaPos::parse("0-1-1"));
        let y = Gtid::MySql(GtidSet::parse(&format!("{A}:1")));
        assert_eq!(m.covers(&y), None);
        assert_eq!(y.missing(&m), None);
        assert_eq!(m.covers(&m), Some(true));
    }
}
