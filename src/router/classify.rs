//! Public classification API: where may a COM_QUERY statement run?
//!
//! Two tiers, because sqlparser costs 1–77 µs a statement and the proxy sees
//! every query: one allocation-free lexer pass settles the leading keyword
//! and every primary-forcing feature; sqlparser decides only what the lexer
//! cannot (a leading `WITH`, unknown statements), cached by statement shape.

use super::keywords::{kind_of, Kw};
use super::lexer::{Lexer, T};
use super::shape_cache::{self, Shape, ShapeHasher, Verdict};
use sqlparser::ast::{Query, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// Where a statement may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Primary,
    Replica,
}

/// A routing hint written in a comment (`/*master*/`, `/* gantry:replica */`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hint {
    Primary,
    Replica,
}

/// What the (first) statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// SELECT / TABLE / WITH … SELECT (even when it must go to the primary).
    Read,
    /// INSERT / UPDATE / DELETE / REPLACE.
    Write,
    /// CREATE / ALTER / DROP / TRUNCATE / RENAME / GRANT / REVOKE.
    Ddl,
    /// BEGIN, START TRANSACTION, XA START.
    Begin,
    /// COMMIT, XA COMMIT.
    Commit,
    /// ROLLBACK, XA ROLLBACK (not `ROLLBACK TO SAVEPOINT`, which is Other).
    Rollback,
    Set,
    Use,
    /// SHOW, DESCRIBE, EXPLAIN, HELP.
    Show,
    Call,
    LoadData,
    /// LOCK TABLES / LOCK INSTANCE.
    Lock,
    Unlock,
    Prepare,
    /// DEALLOCATE PREPARE / DROP PREPARE.
    Deallocate,
    Execute,
    Other,
}

/// The result of [`classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    pub route: Route,
    pub kind: StatementKind,
    pub hint: Option<Hint>,
    /// Needs the backend connection that ran the previous statement.
    pub asks_previous: bool,
    /// More than one statement in the text.
    pub multi_statement: bool,
    pub creates_temp_table: bool,
    pub drops_temp_table: bool,
    /// GET_LOCK / RELEASE_LOCK / RELEASE_ALL_LOCKS / IS_FREE_LOCK / IS_USED_LOCK.
    pub uses_user_lock: bool,
    /// SQL_CALC_FOUND_ROWS.
    pub calc_found_rows: bool,
    /// State on the connection the session tracker does not report, held
    /// until the session releases it (HANDLER … OPEN, BACKUP STAGE, XA).
    pub holds: Option<Holds>,
    /// Reads LAST_INSERT_ID() / @@identity / @@last_insert_id.
    pub reads_insert_id: bool,
    /// Assigns a user variable outside SET (`@v := …`, `INTO @v`, a CALL
    /// with `@out`), which the tracker does not report.
    pub assigns_user_var: bool,
    /// A KILL statement (alone or in a multi-statement): its id is Gantry's.
    pub kill: bool,
    /// Calls CONNECTION_ID(), which must answer Gantry's id.
    pub connection_id: bool,
}

/// Connection-bound state the server does not report through session
/// tracking; `*Release` statements give it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    Handler,
    HandlerRelease,
    BackupStage,
    BackupRelease,
    Xa,
    XaRelease,
}

/// What the leading words say about connection-bound state.
fn holds_of(h: &[Kw], sql: &[u8]) -> Option<Holds> {
    let last_word_is = |w: &[u8]| {
        let t = sql.trim_ascii_end();
        let t = t.strip_suffix(b";").unwrap_or(t).trim_ascii_end();
        t.len() >= w.len() && t[t.len() - w.len()..].eq_ignore_ascii_case(w)
    };
    match h.first()? {
        Kw::Handler if last_word_is(b"CLOSE") => Some(Holds::HandlerRelease),
        Kw::Handler => Some(Holds::Handler),
        Kw::Backup if last_word_is(b"END") => Some(Holds::BackupRelease),
        Kw::Backup => Some(Holds::BackupStage),
        Kw::Xa if matches!(h.get(1), Some(Kw::Commit | Kw::Rollback)) => Some(Holds::XaRelease),
        Kw::Xa => Some(Holds::Xa),
        _ => None,
    }
}

impl Classification {
    /// True when the statement may run on a replica.
    pub fn is_replica_safe(&self) -> bool {
        self.route == Route::Replica
    }
}

/// Facts gathered by the single lexer pass.
struct Scan {
    /// Token classes of the first statement's first tokens (leading `(` skipped).
    head: [Kw; HEAD],
    head_len: usize,
    locking: bool,
    into: bool,
    assign: bool,
    /// A user variable after INTO, or any in a CALL.
    into_user_var: bool,
    user_var: bool,
    insert_id: bool,
    kill: bool,
    connection_id: bool,
    user_lock: bool,
    asks_prev: bool,
    calc: bool,
    sequence: bool,
    /// INSERT/UPDATE/DELETE outside parentheses in the first statement
    /// (a `WITH … UPDATE`).
    dml_top: bool,
    /// Text after any `;` / after a `;` outside BEGIN…END bodies.
    multi_any: bool,
    multi_top: bool,
    broken: bool,
    hint: Option<Hint>,
    /// Shape hash, computed in the same pass when the leader needs sqlparser.
    shape: Option<Shape>,
}

const HEAD: usize = 12;

const PREVIOUS_SYSVARS: [&[u8]; 4] = [
    b"warning_count",
    b"error_count",
    b"identity",
    b"last_insert_id",
];

fn scan(sql: &[u8]) -> Scan {
    let mut s = Scan {
        head: [Kw::Punct; HEAD],
        head_len: 0,
        locking: false,
        into: false,
        assign: false,
        into_user_var: false,
        user_var: false,
        insert_id: false,
        kill: false,
        connection_id: false,
        user_lock: false,
        asks_prev: false,
        calc: false,
        sequence: false,
        dml_top: false,
        multi_any: false,
        multi_top: false,
        broken: false,
        hint: None,
        shape: None,
    };
    let mut hasher: Option<ShapeHasher> = None;
    let mut lead_parens = 0;
    let mut lx = Lexer::new(sql);
    // Look-back window, newest first.
    let (mut p1, mut p2, mut p3) = (Kw::Punct, Kw::Punct, Kw::Punct);
    let mut leading = true;
    let mut head_open = true;
    let (mut semi_any, mut semi_top) = (false, false);
    // BEGIN/CASE … END nesting, so `;` inside stored-program bodies is not
    // a statement separator; `END` closes on the token after it.
    let mut block: i32 = 0;
    let mut pending_end = false;
    let mut parens: i32 = 0;
    let mut into_list = false;
    while let Some(t) = lx.next_token() {
        let k = kind_of(sql, &t);
        if k == Kw::Semi {
            if let Some(h) = hasher.as_mut() {
                h.token(sql, &t);
            }
            if pending_end {
                block -= 1;
            }
            pending_end = false;
            semi_any = true;
            semi_top |= block <= 0;
            head_open = false;
            (p3, p2, p1) = (p2, p1, k);
            continue;
        }
        s.multi_any |= semi_any;
        s.multi_top |= semi_top;
        if leading && k == Kw::LParen {
            lead_parens += 1;
            continue;
        }
        if leading && needs_shape(k) {
            let mut h = ShapeHasher::new();
            for _ in 0..lead_parens {
                h.punct(b'(');
            }
            hasher = Some(h);
        }
        leading = false;
        if let Some(h) = hasher.as_mut() {
            h.token(sql, &t);
        }
        if head_open && s.head_len < HEAD {
            s.head[s.head_len] = k;
            s.head_len += 1;
        }
        let mut opens = matches!(k, Kw::Begin | Kw::Case);
        if pending_end {
            match k {
                Kw::If | Kw::Loop | Kw::While | Kw::Repeat => {}
                Kw::Case => {
                    block -= 1;
                    opens = false;
                }
                _ => block -= 1,
            }
        }
        block += opens as i32;
        pending_end = k == Kw::End;
        match k {
            Kw::LParen => {
                parens += 1;
                match p1 {
                    Kw::UserLockFn => s.user_lock = true,
                    Kw::PreviousFn => s.asks_prev = true,
                    Kw::SequenceFn => s.sequence = true,
                    _ => {}
                }
            }
            Kw::RParen => parens -= 1,
            Kw::Update | Kw::Share if p1 == Kw::For => s.locking = true,
            Kw::Update | Kw::Delete | Kw::Insert if parens == 0 && head_open => s.dml_top = true,
            Kw::Mode if (p3, p2, p1) == (Kw::Lock, Kw::In, Kw::Share) => s.locking = true,
            Kw::For if p1 == Kw::Value && p2 == Kw::Next => s.sequence = true,
            Kw::For if p1 == Kw::Value && p2 == Kw::Previous => s.asks_prev = true,
            Kw::Into => s.into = true,
            Kw::CalcFoundRows => s.calc = true,
            Kw::Var if t.t == T::SysVar => {
                let name = t.inner(sql);
                s.asks_prev |= PREVIOUS_SYSVARS
                    .iter()
                    .any(|v| name.eq_ignore_ascii_case(v));
                s.insert_id |= name.eq_ignore_ascii_case(b"identity")
                    || name.eq_ignore_ascii_case(b"last_insert_id");
            }
            Kw::Var if t.t == T::UserVar => {
                s.user_var = true;
                // `INTO @a, @b`: assignment targets, not values read.
                into_list = p1 == Kw::Into || (p1 == Kw::Comma && into_list);
                s.into_user_var |= into_list;
            }
            Kw::Kill => s.kill = true,
            Kw::ConnectionIdFn => s.connection_id = true,
            Kw::PreviousFn => {
                s.insert_id |= t.inner(sql).eq_ignore_ascii_case(b"LAST_INSERT_ID");
            }
            Kw::Punct if t.t == T::Assign => s.assign = true,
            _ => {}
        }
        if !matches!(k, Kw::Var | Kw::Comma) {
            into_list = false;
        }
        (p3, p2, p1) = (p2, p1, k);
    }
    s.broken = lx.broken;
    s.hint = lx.hint;
    s.shape = hasher.map(|h| h.finish(lx.broken));
    s
}

/// Leaders that may reach the slow path: hash their shape while scanning.
fn needs_shape(first: Kw) -> bool {
    matches!(first, Kw::Explain | Kw::Desc | Kw::Describe)
        || matches!(leader(&[first]).1, Base::Slow(_))
}

/// How the leading keyword settles the route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    /// A read: replica unless a primary-forcing feature was seen.
    Read,
    /// Always the primary.
    Primary,
    /// Ask sqlparser (cached); `true` = a Read verdict may use a replica.
    Slow(bool),
}

fn leader(h: &[Kw]) -> (StatementKind, Base) {
    use StatementKind as K;
    let at = |i: usize| h.get(i).copied().unwrap_or(Kw::Punct);
    match at(0) {
        Kw::Select | Kw::Table => (K::Read, Base::Read),
        Kw::With => (K::Read, Base::Slow(true)),
        Kw::Explain | Kw::Desc | Kw::Describe => match explain_target(h) {
            Kw::With => (K::Show, Base::Slow(true)),
            // EXPLAIN of a write, EXPLAIN FOR CONNECTION, INTO @v, oddities.
            Kw::Insert
            | Kw::Update
            | Kw::Delete
            | Kw::Replace
            | Kw::For
            | Kw::Into
            | Kw::Values => (K::Show, Base::Primary),
            Kw::Num | Kw::Str | Kw::Var | Kw::RParen | Kw::Eq | Kw::Comma | Kw::Semi | Kw::Dot => {
                (K::Show, Base::Primary)
            }
            Kw::Punct => (K::Show, Base::Primary),
            // SELECT, TABLE, `(`, or a table name (even one spelled like a
            // keyword: `DESCRIBE event`).
            _ => (K::Show, Base::Read),
        },
        Kw::Show | Kw::Help => (K::Show, Base::Read),
        Kw::Insert | Kw::Update | Kw::Delete | Kw::Replace => (K::Write, Base::Primary),
        Kw::Drop if at(1) == Kw::Prepare => (K::Deallocate, Base::Primary),
        Kw::Create | Kw::Alter | Kw::Drop | Kw::Truncate | Kw::Rename | Kw::Grant | Kw::Revoke => {
            (K::Ddl, Base::Primary)
        }
        Kw::Begin if at(1) == Kw::Not => (K::Other, Base::Primary), // MariaDB BEGIN NOT ATOMIC
        Kw::Begin => (K::Begin, Base::Primary),
        Kw::Start if at(1) == Kw::Transaction => (K::Begin, Base::Primary),
        Kw::Commit => (K::Commit, Base::Primary),
        // ROLLBACK [WORK] TO [SAVEPOINT] x keeps the transaction open.
        Kw::Rollback if at(1) == Kw::To || (at(1) == Kw::Work && at(2) == Kw::To) => {
            (K::Other, Base::Primary)
        }
        Kw::Rollback => (K::Rollback, Base::Primary),
        Kw::Xa => match at(1) {
            Kw::Start | Kw::Begin => (K::Begin, Base::Primary),
            Kw::Commit => (K::Commit, Base::Primary),
            Kw::Rollback => (K::Rollback, Base::Primary),
            _ => (K::Other, Base::Primary),
        },
        Kw::Set => (K::Set, Base::Primary),
        Kw::Use => (K::Use, Base::Primary),
        Kw::Call => (K::Call, Base::Primary),
        Kw::Load if matches!(at(1), Kw::Data | Kw::Xml) => (K::LoadData, Base::Primary),
        Kw::Lock => (K::Lock, Base::Primary),
        Kw::Unlock => (K::Unlock, Base::Primary),
        Kw::Prepare => (K::Prepare, Base::Primary),
        Kw::Execute => (K::Execute, Base::Primary),
        Kw::Deallocate => (K::Deallocate, Base::Primary),
        Kw::Start
        | Kw::Savepoint
        | Kw::Release
        | Kw::Load
        | Kw::Handler
        | Kw::Backup
        | Kw::Kill
        | Kw::Do
        | Kw::Get
        | Kw::Admin
        | Kw::Analyze
        | Kw::Values => (K::Other, Base::Primary),
        _ => (K::Other, Base::Slow(false)),
    }
}

/// The token after EXPLAIN's options (EXTENDED, PARTITIONS, ANALYZE, FORMAT=x).
fn explain_target(h: &[Kw]) -> Kw {
    let mut i = 1;
    while let Some(&k) = h.get(i) {
        match k {
            Kw::Extended | Kw::Partitions | Kw::Analyze => i += 1,
            Kw::Format => i += if h.get(i + 1) == Some(&Kw::Eq) { 3 } else { 2 },
            _ => return k,
        }
    }
    Kw::Punct
}

/// CREATE/ALTER of a stored program or view: the body is stored, not run,
/// and its `;` are not separators.
fn is_definition(h: &[Kw]) -> bool {
    matches!(h.first(), Some(Kw::Create | Kw::Alter))
        && h.iter()
            .find(|k| {
                matches!(
                    k,
                    Kw::Table
                        | Kw::Index
                        | Kw::Database
                        | Kw::Procedure
                        | Kw::Function
                        | Kw::Trigger
                        | Kw::Event
                        | Kw::View
                )
            })
            .is_some_and(|k| !matches!(k, Kw::Table | Kw::Index | Kw::Database))
}

/// The classification of a statement Gantry could not inspect whole (it is
/// longer than one packet): the primary, with unknown effects.
pub fn uninspected() -> Classification {
    Classification {
        route: Route::Primary,
        kind: StatementKind::Other,
        hint: None,
        asks_previous: false,
        multi_statement: true,
        creates_temp_table: false,
        drops_temp_table: false,
        uses_user_lock: false,
        calc_found_rows: false,
        holds: None,
        reads_insert_id: false,
        assigns_user_var: false,
        kill: false,
        connection_id: false,
    }
}

/// Byte ranges of the statements in a multi-statement text (split at
/// `;` outside strings and comments).
pub fn statement_ranges(sql: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut lx = Lexer::new(sql);
    while let Some(t) = lx.next_token() {
        if kind_of(sql, &t) == Kw::Semi {
            out.push((start, t.start));
            start = t.end;
        }
    }
    if start < sql.len() {
        out.push((start, sql.len()));
    }
    out
}

/// Classifies one COM_QUERY payload. Never fails: anything unknown or
/// unparsable goes to the primary.
pub fn classify(sql: &[u8]) -> Classification {
    let mut s = scan(sql);
    let h = &s.head[..s.head_len];
    let (mut kind, base) = leader(h);
    let definition = is_definition(h);
    let compound = definition || (h.first() == Some(&Kw::Begin) && h.get(1) == Some(&Kw::Not));
    if definition {
        // A stored body's calls run later, on whatever connection calls it.
        s.asks_prev = false;
        s.user_lock = false;
        s.calc = false;
    }
    let temp = h.get(1) == Some(&Kw::Temporary)
        || (h.get(1) == Some(&Kw::Or) && h.get(3) == Some(&Kw::Temporary));
    let is_show_previous = h.first() == Some(&Kw::Show)
        && (matches!(h.get(1), Some(Kw::Warnings | Kw::Errors | Kw::Profile))
            || (h.get(1) == Some(&Kw::Count)
                && h[2..]
                    .iter()
                    .any(|k| matches!(k, Kw::Warnings | Kw::Errors))));
    // GET [CURRENT|STACKED] DIAGNOSTICS reads the previous statement's errors.
    let is_diagnostics = h.first() == Some(&Kw::Get) && h.contains(&Kw::Diagnostics);
    s.asks_prev |= is_show_previous || is_diagnostics;
    let multi = if compound { s.multi_top } else { s.multi_any };

    // `read`: replica-safe unless a hard feature says otherwise.
    // `soft`: primary only because sqlparser could not confirm a read,
    // which a replica hint may overrule.
    let (read, soft) = match base {
        Base::Read => (true, false),
        Base::Primary => (false, false),
        Base::Slow(trust_read) => match slow_verdict(sql, s.shape) {
            Verdict::Read if trust_read && !s.dml_top => (true, false),
            Verdict::Read => (false, false),
            Verdict::Kind(k) => {
                if kind != StatementKind::Show {
                    kind = k;
                }
                (false, false)
            }
            Verdict::Unparsable => {
                if s.dml_top {
                    kind = StatementKind::Write;
                }
                (false, trust_read && !s.dml_top)
            }
        },
    };
    let hard = s.locking
        || s.into
        || s.assign
        || s.user_lock
        || s.asks_prev
        || s.calc
        || s.sequence
        || multi
        || s.broken;
    let route = match s.hint {
        Some(Hint::Primary) => Route::Primary,
        _ if read && !hard => Route::Replica,
        Some(Hint::Replica) if soft && !hard => Route::Replica,
        _ => Route::Primary,
    };
    Classification {
        route,
        kind,
        hint: s.hint,
        asks_previous: s.asks_prev,
        multi_statement: multi,
        creates_temp_table: h.first() == Some(&Kw::Create) && temp,
        drops_temp_table: h.first() == Some(&Kw::Drop) && temp,
        uses_user_lock: s.user_lock,
        calc_found_rows: s.calc,
        holds: holds_of(h, sql),
        reads_insert_id: s.insert_id,
        kill: s.kill,
        connection_id: s.connection_id,
        assigns_user_var: kind != StatementKind::Set
            && (s.assign || s.into_user_var || (kind == StatementKind::Call && s.user_var)),
    }
}

/// sqlparser's verdict for this statement's shape, cached per thread.
fn slow_verdict(sql: &[u8], shape: Option<Shape>) -> Verdict {
    let Some(shape) = shape else {
        return parse_verdict(sql); // not reached: scan hashes every slow leader
    };
    if let Some(v) = shape_cache::get(shape) {
        return v;
    }
    let v = parse_verdict(sql);
    shape_cache::put(shape, v);
    v
}

/// Longer statements skip sqlparser (primary): parsing megabytes per
/// statement would let one client burn a proxy core.
const SLOW_PATH_MAX: usize = 256 * 1024;

fn parse_verdict(sql: &[u8]) -> Verdict {
    if sql.len() > SLOW_PATH_MAX {
        return Verdict::Unparsable;
    }
    // sqlparser drops `/*! … */` as a comment; MySQL runs its content, so
    // blank the markers and let sqlparser see the code.
    let mut lx = Lexer::new(sql);
    lx.markers = Some(Vec::new());
    while lx.next_token().is_some() {}
    let markers = lx.markers.unwrap_or_default();
    let mut owned;
    let bytes = if markers.is_empty() {
        sql
    } else {
        owned = sql.to_vec();
        for (a, b) in markers {
            if let Some(r) = owned.get_mut(a..b) {
                r.fill(b' ');
            }
        }
        &owned[..]
    };
    let text = String::from_utf8_lossy(bytes);
    // sqlparser bounds its recursion; catch_unwind is a last line of defence.
    let parsed = std::panic::catch_unwind(|| Parser::parse_sql(&MySqlDialect {}, &text));
    match parsed {
        // Several statements: the lexer flags multi_statement; judge the first.
        Ok(Ok(stmts)) if !stmts.is_empty() => verdict_of(&stmts[0]),
        _ => Verdict::Unparsable,
    }
}

fn verdict_of(st: &Statement) -> Verdict {
    use StatementKind as K;
    match st {
        Statement::Query(q) if !query_is_read(q) => Verdict::Kind(K::Write),
        // Locking reads: the lexer also sees these; belt and braces.
        Statement::Query(q) if !q.locks.is_empty() => Verdict::Kind(K::Read),
        Statement::Query(_) => Verdict::Read,
        Statement::Explain { statement, .. } => match verdict_of(statement) {
            Verdict::Read => Verdict::Read,
            _ => Verdict::Kind(K::Show),
        },
        Statement::ExplainTable { .. } => Verdict::Read,
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_) => Verdict::Kind(K::Write),
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateIndex(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_)
        | Statement::RenameTable(_) => Verdict::Kind(K::Ddl),
        _ => Verdict::Kind(K::Other),
    }
}

/// A query reads only: SELECT/TABLE bodies, all CTEs too.
fn query_is_read(q: &Query) -> bool {
    q.with
        .as_ref()
        .is_none_or(|w| w.cte_tables.iter().all(|c| query_is_read(&c.query)))
        && set_expr_is_read(&q.body)
}

fn set_expr_is_read(e: &SetExpr) -> bool {
    match e {
        SetExpr::Select(_) | SetExpr::Table(_) => true,
        SetExpr::Query(q) => query_is_read(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_is_read(left) && set_expr_is_read(right)
        }
        _ => false,
    }
}
