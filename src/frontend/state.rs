//! Per-client session state that can be replayed on any backend connection:
//! current schema and SET variables (session, user and character set). The
//! replay sends only what differs from what the connection already has.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::router::{SetAssignment, SetScope};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    pub schema: Option<String>,
    /// (key, value) in the order they must be applied. Keys: `NAMES`,
    /// `CHARACTER SET`, `@name` (user variable), `@@session.name`.
    pub vars: Vec<(String, String)>,
    /// Hash of `vars`, compared against a connection's to skip replay.
    pub vars_hash: u64,
}

/// Variables that `SET NAMES` / `SET CHARACTER SET` overwrite.
const CHARSET_VARS: [&str; 4] = [
    "@@session.character_set_client",
    "@@session.character_set_connection",
    "@@session.character_set_results",
    "@@session.collation_connection",
];

/// Variables Gantry must not replay: autocommit is followed through the
/// server's status flags, and binding a session to one connection while it
/// is off; replaying it on a replica would open transactions there.
const NOT_REPLAYED: [&str; 1] = ["autocommit"];

/// Outcome of recording a SET statement.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetEffect {
    /// The statement assigned something Gantry cannot replay faithfully
    /// (an expression, not a literal): the session must stay on its
    /// connection.
    pub needs_pin: bool,
}

impl SessionState {
    /// Records assignments that succeeded on the server.
    pub fn record_set(&mut self, assignments: &[SetAssignment]) -> SetEffect {
        let mut effect = SetEffect::default();
        for a in assignments {
            let (key, value) = match a.scope {
                SetScope::Global => continue,
                // `SET TRANSACTION` (no SESSION) applies to the next
                // transaction only, which runs on the connection it ran on.
                SetScope::Transaction if a.name != "session transaction" => continue,
                SetScope::Transaction => {
                    for part in a.value.split(',') {
                        let part = part.trim();
                        let key = if part.to_ascii_uppercase().starts_with("ISOLATION") {
                            "SESSION TRANSACTION ISOLATION"
                        } else {
                            "SESSION TRANSACTION ACCESS"
                        };
                        self.put(key.to_string(), part.to_string());
                    }
                    continue;
                }
                SetScope::Names => {
                    self.vars
                        .retain(|(k, _)| !CHARSET_VARS.contains(&k.as_str()));
                    ("NAMES".to_string(), a.value.clone())
                }
                SetScope::CharacterSet => {
                    self.vars
                        .retain(|(k, _)| !CHARSET_VARS.contains(&k.as_str()));
                    ("CHARACTER SET".to_string(), a.value.clone())
                }
                SetScope::User => (format!("@{}", quote_user_var(&a.name)), a.value.clone()),
                SetScope::Session => {
                    if NOT_REPLAYED.contains(&a.name.as_str()) {
                        continue;
                    }
                    (format!("@@session.{}", a.name), a.value.clone())
                }
            };
            if !a.value_is_literal && !matches!(a.scope, SetScope::Names | SetScope::CharacterSet) {
                effect.needs_pin = true;
            }
            if key == "NAMES" || key == "CHARACTER SET" {
                // Later charset statements override earlier ones in order.
                self.vars
                    .retain(|(k, _)| k != "NAMES" && k != "CHARACTER SET");
                self.vars.push((key, value));
            } else {
                self.put(key, value);
            }
        }
        self.rehash();
        effect
    }

    fn put(&mut self, key: String, value: String) {
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

    /// The statements that bring a connection with `applied` variables to
    /// this state (usually one SET; empty if nothing differs). Session
    /// transaction characteristics need statements of their own.
    pub fn replay_sql(&self, applied: &[(String, String)]) -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut separate = Vec::new();
        for (k, _) in applied {
            // Connections with transaction characteristics are never pooled
            // (see `has_unresettable_state`), so only variables reset here.
            if !is_transaction_key(k) && !self.vars.iter().any(|(mine, _)| mine == k) {
                parts.push(reset_assignment(k));
            }
        }
        for (k, v) in &self.vars {
            if !applied.iter().any(|(ak, av)| ak == k && av == v) {
                if is_transaction_key(k) {
                    separate.push(format!("SET SESSION TRANSACTION {v}"));
                } else {
                    parts.push(assignment(k, v));
                }
            }
        }
        let mut out = Vec::new();
        if !parts.is_empty() {
            out.push(format!("SET {}", parts.join(", ")));
        }
        out.extend(separate);
        out
    }
}

fn is_transaction_key(key: &str) -> bool {
    key.starts_with("SESSION TRANSACTION")
}

/// State a connection cannot be reset from cheaply: such a connection is
/// closed at the end of its session instead of pooled.
pub fn has_unresettable_state(vars: &[(String, String)]) -> bool {
    vars.iter().any(|(k, _)| is_transaction_key(k))
}

fn assignment(key: &str, value: &str) -> String {
    if key == "NAMES" || key == "CHARACTER SET" {
        format!("{key} {value}")
    } else {
        format!("{key} = {value}")
    }
}

fn reset_assignment(key: &str) -> String {
    if key.starts_with("@@") || key == "NAMES" || key == "CHARACTER SET" {
        assignment(key, "DEFAULT")
    } else {
        assignment(key, "NULL")
    }
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

    fn set(scope: SetScope, name: &str, value: &str, literal: bool) -> SetAssignment {
        SetAssignment {
            scope,
            name: name.into(),
            value: value.into(),
            value_is_literal: literal,
        }
    }

    #[test]
    fn replay_sends_only_differences() {
        let mut s = SessionState::default();
        s.record_set(&[
            set(SetScope::Session, "time_zone", "'+00:00'", true),
            set(SetScope::User, "a", "42", true),
        ]);
        assert_eq!(
            s.replay_sql(&[]),
            ["SET @@session.time_zone = '+00:00', @a = 42"]
        );
        assert!(s.replay_sql(&s.vars.clone()).is_empty());
        let stale = vec![
            ("@@session.time_zone".to_string(), "'+01:00'".to_string()),
            ("@@session.sql_mode".to_string(), "'ANSI'".to_string()),
            ("@b".to_string(), "1".to_string()),
        ];
        assert_eq!(s.replay_sql(&stale), ["SET @@session.sql_mode = DEFAULT, @b = NULL, @@session.time_zone = '+00:00', @a = 42"]);
    }

    #[test]
    fn names_overrides_charset_vars_and_keeps_order() {
        let mut s = SessionState::default();
        s.record_set(&[set(
            SetScope::Session,
            "character_set_results",
            "NULL",
            true,
        )]);
        s.record_set(&[set(SetScope::Names, "names", "utf8mb4", true)]);
        assert_eq!(s.vars, vec![("NAMES".to_string(), "utf8mb4".to_string())]);
        s.record_set(&[set(
            SetScope::Session,
            "character_set_results",
            "NULL",
            true,
        )]);
        assert_eq!(
            s.replay_sql(&[]),
            ["SET NAMES utf8mb4, @@session.character_set_results = NULL"]
        );
    }

    #[test]
    fn autocommit_and_global_are_not_replayed_and_expressions_pin() {
        let mut s = SessionState::default();
        let e = s.record_set(&[
            set(SetScope::Session, "autocommit", "0", true),
            set(SetScope::Global, "max_connections", "10", true),
        ]);
        assert!(!e.needs_pin);
        assert!(s.vars.is_empty());
        assert_eq!(s.vars_hash, 0);
        let e = s.record_set(&[set(SetScope::User, "t", "NOW()", false)]);
        assert!(e.needs_pin);
        assert_ne!(s.vars_hash, 0);
    }

    #[test]
    fn odd_user_variable_names_are_quoted() {
        let mut s = SessionState::default();
        s.record_set(&[set(SetScope::User, "my var", "1", true)]);
        assert_eq!(s.replay_sql(&[]), ["SET @`my var` = 1"]);
    }

    #[test]
    fn session_transaction_characteristics_replay_separately() {
        let mut s = SessionState::default();
        s.record_set(&[set(
            SetScope::Transaction,
            "session transaction",
            "READ ONLY, ISOLATION LEVEL SERIALIZABLE",
            true,
        )]);
        s.record_set(&[set(
            SetScope::Transaction,
            "transaction",
            "READ WRITE",
            true,
        )]);
        s.record_set(&[set(SetScope::User, "a", "1", true)]);
        assert_eq!(
            s.replay_sql(&[]),
            [
                "SET @a = 1",
                "SET SESSION TRANSACTION READ ONLY",
                "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE"
            ]
        );
        assert!(has_unresettable_state(&s.vars));
        let before = s.vars.clone();
        s.record_set(&[set(
            SetScope::Transaction,
            "session transaction",
            "ISOLATION LEVEL READ COMMITTED",
            true,
        )]);
        assert_eq!(
            s.replay_sql(&before),
            ["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"]
        );
    }
}
