//! Per-client session state that can be replayed on any backend connection:
//! the current schema, system variables with the values the server reported
//! through session tracking, and user variables assigned literal values.
//! Connections start each client session from a reset, so replay only ever
//! adds what the session has and the connection does not.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::router::{SetAssignment, SetScope};

/// A session variable Gantry replays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// A system variable by its lower-case name; the value is the server's
    /// own text for it (from the session tracker).
    System(String),
    /// A user variable `@name`; the value is the SQL literal that set it.
    User(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    pub schema: Option<String>,
    /// In the order they were first set.
    pub vars: Vec<(Var, String)>,
    /// Hash of `vars`, compared against a connection's to skip replay.
    pub vars_hash: u64,
}

/// What a reported system variable means for replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemVar {
    /// Replayed on every connection the session uses.
    Replay,
    /// Followed elsewhere (autocommit: status flags; last_gtid: causal
    /// reads) or meaningless to replay.
    Ignore,
    /// Cannot be replayed exactly: the session must stay on its connection.
    Pin,
}

/// Variables whose value cannot be brought to another connection: writing
/// the reported value back would not restore the same behaviour (seeds,
/// one-shot ids, a frozen clock), or would blind Gantry's own tracking.
const NOT_REPLAYABLE: [&str; 14] = [
    "rand_seed1",
    "rand_seed2",
    "insert_id",
    "last_insert_id",
    "identity",
    "timestamp",
    "pseudo_thread_id",
    "pseudo_slave_mode",
    "gtid_seq_no",
    "session_track_schema",
    "session_track_state_change",
    "session_track_system_variables",
    "session_track_gtids",
    "session_track_transaction_info",
];

pub fn classify_system_var(name: &str) -> SystemVar {
    match name {
        "autocommit" | "last_gtid" | "in_transaction" => SystemVar::Ignore,
        n if NOT_REPLAYABLE.contains(&n) => SystemVar::Pin,
        _ => SystemVar::Replay,
    }
}

/// Outcome of recording a SET statement's user variables.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetEffect {
    /// A user variable got a value Gantry cannot replay faithfully (an
    /// expression or a placeholder, not a literal).
    pub needs_pin: bool,
}

impl SessionState {
    /// A system variable's new value, as the server reported it.
    pub fn set_system(&mut self, name: &str, value: &str) {
        self.put(Var::System(name.to_ascii_lowercase()), value.to_string());
        self.rehash();
    }

    /// Records the user variables of a SET statement the server accepted
    /// (system variables come from the session tracker instead).
    pub fn record_user_vars(&mut self, assignments: &[SetAssignment]) -> SetEffect {
        let mut effect = SetEffect::default();
        for a in assignments.iter().filter(|a| a.scope == SetScope::User) {
            if !a.value_is_literal {
                effect.needs_pin = true;
            }
            self.put(Var::User(quote_user_var(&a.name)), a.value.clone());
        }
        self.rehash();
        effect
    }

    fn put(&mut self, key: Var, value: String) {
        if let Some(slot) = self.vars.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.vars.push((key, value));
        }
    }

    pub fn clear_vars(&mut self) {
        self.vars.clear();
        self.rehash();
    }

    fn rehash(&mut self) {
        self.vars_hash = if self.vars.is_empty() {
            0
        } else {
            let mut h = DefaultHasher::new();
            self.vars.hash(&mut h);
            // 0 is reserved for "no variables".
            h.finish() | 1
        };
    }

    /// Whether a connection that has `applied` can be brought to this state
    /// by adding assignments (it has nothing this session does not).
    pub fn extends(&self, applied: &[(Var, String)]) -> bool {
        applied
            .iter()
            .all(|(k, _)| self.vars.iter().any(|(mine, _)| mine == k))
    }

    /// The one statement that brings a connection with `applied` (which this
    /// state `extends`) to this state; `None` if nothing differs.
    pub fn replay_sql(&self, applied: &[(Var, String)]) -> Option<String> {
        let differs = |(k, v): &&(Var, String)| !applied.iter().any(|(ak, av)| ak == k && av == v);
        // A character set resets its collation: collations go last.
        let is_collation = |k: &Var| matches!(k, Var::System(n) if n.starts_with("collation_"));
        let ordered = self
            .vars
            .iter()
            .filter(|kv| !is_collation(&kv.0))
            .chain(self.vars.iter().filter(|kv| is_collation(&kv.0)));
        let parts: Vec<String> = ordered
            .filter(differs)
            .map(|(k, v)| assignment(k, v))
            .collect();
        (!parts.is_empty()).then(|| format!("SET {}", parts.join(", ")))
    }
}

fn assignment(key: &Var, value: &str) -> String {
    match key {
        Var::User(name) => format!("@{name} = {value}"),
        Var::System(name) => format!("@@session.{name} = {}", system_literal(name, value)),
    }
}

/// The server's text for a system variable as a SQL literal: numbers as
/// they are, strings quoted; an empty character_set_results is NULL.
fn system_literal(name: &str, value: &str) -> String {
    let numeric = !value.is_empty()
        && value
            .strip_prefix('-')
            .unwrap_or(value)
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|b| *b == b'.').count() <= 1
        && !value.ends_with('.');
    if numeric {
        return value.to_string();
    }
    if value.is_empty() && name == "character_set_results" {
        return "NULL".to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// User variable names with characters outside [A-Za-z0-9_$.] need quotes.
fn quote_user_var(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
    {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, value: &str, literal: bool) -> SetAssignment {
        SetAssignment {
            scope: SetScope::User,
            name: name.into(),
            value: value.into(),
            value_is_literal: literal,
        }
    }

    #[test]
    fn replay_sends_only_differences() {
        let mut s = SessionState::default();
        s.set_system("time_zone", "+00:00");
        s.record_user_vars(&[user("a", "42", true)]);
        assert_eq!(
            s.replay_sql(&[]).as_deref(),
            Some("SET @@session.time_zone = '+00:00', @a = 42")
        );
        assert_eq!(s.replay_sql(&s.vars.clone()), None);
        let older = vec![(Var::System("time_zone".into()), "+01:00".into())];
        assert!(s.extends(&older));
        assert_eq!(
            s.replay_sql(&older).as_deref(),
            Some("SET @@session.time_zone = '+00:00', @a = 42")
        );
        let foreign = vec![(Var::User("b".into()), "1".into())];
        assert!(!s.extends(&foreign));
    }

    #[test]
    fn values_become_literals_and_collations_go_last() {
        let mut s = SessionState::default();
        s.set_system("collation_connection", "latin1_german1_ci");
        s.set_system("character_set_connection", "latin1");
        s.set_system("max_statement_time", "2.500000");
        s.set_system("sql_select_limit", "10");
        s.set_system("character_set_results", "");
        s.set_system("sql_mode", "ANSI_QUOTES,NO_BACKSLASH_ESCAPES");
        s.set_system("init_connect", "it's \\x");
        assert_eq!(
            s.replay_sql(&[]).as_deref(),
            Some(
                "SET @@session.character_set_connection = 'latin1', \
                 @@session.max_statement_time = 2.500000, @@session.sql_select_limit = 10, \
                 @@session.character_set_results = NULL, \
                 @@session.sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', \
                 @@session.init_connect = 'it''s \\\\x', \
                 @@session.collation_connection = 'latin1_german1_ci'"
            )
        );
    }

    #[test]
    fn expressions_and_placeholders_pin() {
        let mut s = SessionState::default();
        assert!(s.record_user_vars(&[user("t", "NOW()", false)]).needs_pin);
        assert!(!s.record_user_vars(&[user("n", "1", true)]).needs_pin);
        assert_ne!(s.vars_hash, 0);
        s.clear_vars();
        assert_eq!(s.vars_hash, 0);
    }

    #[test]
    fn system_variables_by_kind() {
        assert_eq!(classify_system_var("time_zone"), SystemVar::Replay);
        assert_eq!(classify_system_var("autocommit"), SystemVar::Ignore);
        assert_eq!(classify_system_var("last_gtid"), SystemVar::Ignore);
        assert_eq!(classify_system_var("rand_seed1"), SystemVar::Pin);
        assert_eq!(classify_system_var("session_track_schema"), SystemVar::Pin);
    }

    #[test]
    fn odd_user_variable_names_are_quoted() {
        let mut s = SessionState::default();
        s.record_user_vars(&[user("my var", "1", true)]);
        assert_eq!(s.replay_sql(&[]).as_deref(), Some("SET @`my var` = 1"));
    }
}
