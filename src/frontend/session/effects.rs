//! What a command did to the session, in one place for every protocol:
//! first what the server reported (status flags, insert id, and the session
//! tracker's schema, variables, GTIDs and "state changed"), then what the
//! statement's classification adds where the tracker is silent (user-level
//! locks, LOCK TABLES, HANDLER, XA, BACKUP STAGE, user variables). The
//! result is a pin, a replayable variable or a write position.

use super::causal::Flavor;
use super::Session;
use crate::frontend::registry::pin;
use crate::frontend::state::{classify_system_var, SystemVar};
use crate::gtid::Gtid;
use crate::protocol::track::{self, TrackEntry};
use crate::protocol::{status, ResponseScanner};
use crate::router::{self, Classification, Holds, StatementKind};

/// What the server's answer to one command reported.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reported {
    /// The server answered without error.
    pub ok: bool,
    /// The error's code otherwise.
    pub code: u16,
    /// The tracker said state changed that it did not describe (temporary
    /// table, user variable, prepared statement, ...), or the flag came in
    /// a packet that cannot carry the description.
    pub state_changed: bool,
    /// The connection reports session state (so a schema change came as a
    /// tracker entry, if there was one).
    pub tracked: bool,
}

impl Session {
    /// Applies what the server reported in a response, whatever the command.
    pub(super) fn note_response(&mut self, sc: &ResponseScanner) -> Reported {
        if sc.last_insert_id != 0 {
            self.last_insert_id = sc.last_insert_id;
            if let Some(h) = self.binding.held_mut() {
                h.conn.last_insert_id = sc.last_insert_id;
            }
        }
        if let Some(st) = sc.status {
            self.last_status = st;
            self.binding
                .set_pin(pin::TRANSACTION, st & status::IN_TRANS != 0);
            self.binding
                .set_pin(pin::AUTOCOMMIT_OFF, st & status::AUTOCOMMIT == 0);
        }
        let mut reported = Reported {
            ok: !sc.error,
            code: sc.error_code,
            // A flag in a classic EOF packet: changed, but not said what.
            state_changed: sc.state_changed && sc.track.is_empty(),
            tracked: sc.session_track,
        };
        if sc.track.is_empty() {
            return reported;
        }
        let mut vars_changed = false;
        for entry in track::entries(&sc.track) {
            match entry {
                TrackEntry::Schema(s) => {
                    let schema = (!s.is_empty()).then(|| String::from_utf8_lossy(s).into_owned());
                    self.set_schema(schema);
                }
                TrackEntry::Variable { name, value } => {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    let value = String::from_utf8_lossy(value);
                    match classify_system_var(&name) {
                        SystemVar::Replay => {
                            if name == "wait_timeout" {
                                self.wait_timeout = value
                                    .parse::<u64>()
                                    .ok()
                                    .map(std::time::Duration::from_secs);
                            }
                            self.state.set_system(&name, &value);
                            vars_changed = true;
                        }
                        SystemVar::Ignore if name == "last_gtid" && !value.is_empty() => {
                            self.learn_position(Flavor::MariaDb.parse(&value));
                        }
                        SystemVar::Ignore => {}
                        SystemVar::Pin => {
                            self.own_tracking |= name.starts_with("session_track_");
                            self.binding.set_pin(pin::SYSTEM_VARIABLE, true);
                        }
                    }
                }
                TrackEntry::Gtids(g) if !g.is_empty() => {
                    self.learn_position(Flavor::MySql.parse(&String::from_utf8_lossy(g)));
                }
                TrackEntry::StateChanged => reported.state_changed = true,
                TrackEntry::Gtids(_) | TrackEntry::Other => {}
            }
        }
        if vars_changed {
            self.sync_held_vars();
        }
        reported
    }

    /// What a statement the server ran did to the session, for COM_QUERY and
    /// COM_STMT_EXECUTE alike (`sql` is the statement's text).
    pub(super) fn statement_effects(&mut self, c: &Classification, sql: &[u8], reported: Reported) {
        if !reported.ok {
            return;
        }
        match c.kind {
            StatementKind::Set => {
                if let Some(assignments) = router::parse_set(sql) {
                    if self.state.record_user_vars(&assignments).needs_pin {
                        self.binding.set_pin(pin::USER_VARIABLE, true);
                    }
                    self.sync_held_vars();
                }
            }
            StatementKind::Use if !reported.tracked => {
                if let Some(schema) = router::use_schema(sql) {
                    self.set_schema(Some(schema));
                }
            }
            StatementKind::Lock => self.binding.set_pin(pin::LOCK_TABLES, true),
            StatementKind::Unlock => self.binding.set_pin(pin::LOCK_TABLES, false),
            StatementKind::Prepare => self.binding.set_pin(pin::SQL_PREPARE, true),
            _ => {}
        }
        match c.holds {
            Some(Holds::Handler) => self.binding.set_pin(pin::HANDLER, true),
            Some(Holds::BackupStage) => self.binding.set_pin(pin::BACKUP_STAGE, true),
            Some(Holds::BackupRelease) => self.binding.set_pin(pin::BACKUP_STAGE, false),
            Some(Holds::Xa) => self.binding.set_pin(pin::XA, true),
            Some(Holds::XaRelease) => self.binding.set_pin(pin::XA, false),
            // Other handlers may still be open.
            Some(Holds::HandlerRelease) | None => {}
        }
        if c.creates_temp_table {
            self.temp_tables += 1;
        }
        if c.drops_temp_table {
            self.temp_tables = self.temp_tables.saturating_sub(1);
        }
        self.binding.set_pin(pin::TEMP_TABLE, self.temp_tables > 0);
        if c.uses_user_lock {
            self.binding.set_pin(pin::USER_LOCK, true);
        }
        // `@v := …`, `SELECT … INTO @v`, `CALL p(@out)`: the server assigned
        // a user variable Gantry cannot replay (and does not report it).
        if c.assigns_user_var {
            self.binding.set_pin(pin::USER_VARIABLE, true);
        }
        // The server says state changed: unless this statement's own
        // bookkeeping above accounts for it, it lives on this connection.
        let explained = !c.multi_statement
            && (matches!(
                c.kind,
                StatementKind::Set | StatementKind::Use | StatementKind::Prepare
            ) || c.creates_temp_table
                || c.drops_temp_table);
        if reported.state_changed && !explained {
            self.binding.set_pin(pin::SERVER_STATE, true);
        }
    }

    /// The current schema changed (tracker, COM_INIT_DB, USE).
    pub(super) fn set_schema(&mut self, schema: Option<String>) {
        if let Some(h) = self.binding.held_mut() {
            h.conn.schema.clone_from(&schema);
        }
        self.state.schema = schema;
        if let Ok(mut s) = self.info.schema.lock() {
            s.clone_from(&self.state.schema);
        }
    }

    /// The held connection has what the session state has.
    fn sync_held_vars(&mut self) {
        if let Some(h) = self.binding.held_mut() {
            if h.conn.vars_hash != self.state.vars_hash {
                h.conn.vars.clone_from(&self.state.vars);
                h.conn.vars_hash = self.state.vars_hash;
            }
        }
    }

    /// A GTID this session committed: its reads under read-your-writes
    /// must see it.
    fn learn_position(&mut self, pos: Gtid) {
        match self.causal.as_mut() {
            Some(c) => c.merge(&pos),
            None => self.causal = Some(pos),
        }
        self.verified_on = None;
    }
}
