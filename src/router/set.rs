//! Session-state statements: `SET …` and `USE db`.
//!
//! Why hand-written rather than sqlparser: the proxy replays these on other
//! backend connections, so it needs each value *as written* (sqlparser
//! re-renders expressions), and sqlparser 0.63 rejects common MySQL forms
//! (`SET CHARACTER SET x`, `SET @a := 1`). The shared lexer gives exact
//! byte ranges, skips comments and honours executable comments.

use super::keywords::{kind_of, Kw};
use super::lexer::{is_word_byte, Lexer, Token, T};

/// What a `SET` item changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetScope {
    /// A session system variable (`SET x`, `SET SESSION x`, `@@x`, `@@session.x`).
    Session,
    /// A global (or persisted) system variable.
    Global,
    /// A user variable `@x`.
    User,
    /// `SET NAMES …`.
    Names,
    /// `SET CHARACTER SET …` / `SET CHARSET …`.
    CharacterSet,
    /// `SET [GLOBAL|SESSION] TRANSACTION …`.
    Transaction,
}

/// One item of a `SET` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAssignment {
    pub scope: SetScope,
    /// Lowercase, without `@`/`@@`/scope prefix. Fixed names for the special
    /// forms: `names`, `character set`, and for TRANSACTION `transaction`
    /// (next transaction only), `session transaction` or `global transaction`.
    pub name: String,
    /// The value's SQL text as written (for NAMES/CHARACTER SET/TRANSACTION:
    /// everything after the keyword, e.g. `utf8mb4 COLLATE utf8mb4_bin`).
    pub value: String,
    /// A constant (number, string, NULL, ON, DEFAULT, bare word for system
    /// variables…): replaying it gives the same result anywhere.
    pub value_is_literal: bool,
}

impl SetAssignment {
    /// A statement that re-applies this item on another connection.
    pub fn to_sql(&self) -> String {
        let name = quote_if_needed(&self.name);
        match self.scope {
            SetScope::Session => format!("SET SESSION {name} = {}", self.value),
            SetScope::Global => format!("SET GLOBAL {name} = {}", self.value),
            SetScope::User => format!("SET @{name} = {}", self.value),
            SetScope::Names => format!("SET NAMES {}", self.value),
            SetScope::CharacterSet => format!("SET CHARACTER SET {}", self.value),
            SetScope::Transaction => {
                format!("SET {} {}", self.name.to_ascii_uppercase(), self.value)
            }
        }
    }
}

fn quote_if_needed(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| is_word_byte(b) || b == b'.') {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}

/// Tokens of a single statement (one trailing `;` allowed), or None for
/// broken or multi-statement text.
fn statement_tokens(sql: &[u8]) -> Option<Vec<Token>> {
    let mut lx = Lexer::new(sql);
    let mut toks = Vec::new();
    while let Some(t) = lx.next_token() {
        toks.push(t);
    }
    if lx.broken {
        return None;
    }
    if let Some(i) = toks.iter().position(|t| t.t == T::Punct(b';')) {
        if i + 1 != toks.len() {
            return None;
        }
        toks.truncate(i);
    }
    Some(toks)
}

/// Parses a `SET` statement into its items; None if it is not a SET, is
/// malformed, sets something that is not session state (`SET PASSWORD`,
/// `SET ROLE`, `SET STATEMENT … FOR`), or has non-UTF-8 names/values.
pub fn parse_set(sql: &[u8]) -> Option<Vec<SetAssignment>> {
    let toks = statement_tokens(sql)?;
    let kw = |t: Option<&Token>| t.map(|t| kind_of(sql, t));
    let (first, rest) = toks.split_first()?;
    if kind_of(sql, first) != Kw::Set {
        return None;
    }
    let (modifier, after) = match kw(rest.first()) {
        Some(m @ (Kw::Global | Kw::Session | Kw::Local | Kw::Persist)) => (Some(m), &rest[1..]),
        _ => (None, rest),
    };
    // TRANSACTION takes the rest, commas included (`READ ONLY, ISOLATION …`).
    if kw(after.first()) == Some(Kw::Transaction) {
        let name = match modifier {
            None => "transaction",
            Some(Kw::Global | Kw::Persist) => "global transaction",
            Some(_) => "session transaction",
        };
        return Some(vec![SetAssignment {
            scope: SetScope::Transaction,
            name: name.to_string(),
            value: text(sql, &after[1..])?,
            value_is_literal: true,
        }]);
    }
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in rest.iter().enumerate() {
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            T::Punct(b',') if depth == 0 => {
                items.push(item(sql, &rest[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    items.push(item(sql, &rest[start..])?);
    Some(items)
}

fn is_op(t: Option<&Token>) -> bool {
    matches!(t.map(|t| t.t), Some(T::Punct(b'=') | T::Assign))
}

/// One comma-separated item: `[GLOBAL|SESSION|…] target (=|:=) value`,
/// `NAMES …` or `CHARACTER SET …`.
fn item(sql: &[u8], toks: &[Token]) -> Option<SetAssignment> {
    let kw = |t: Option<&Token>| t.map(|t| kind_of(sql, t));
    let (modifier, toks) = match kw(toks.first()) {
        Some(m @ (Kw::Global | Kw::Session | Kw::Local | Kw::Persist)) if !is_op(toks.get(1)) => {
            (Some(m), &toks[1..])
        }
        _ => (None, toks),
    };
    let head = toks.first()?;
    let special = |scope, name: &str, value: &[Token]| {
        if modifier.is_some() || is_op(value.first()) {
            return None;
        }
        Some(SetAssignment {
            scope,
            name: name.to_string(),
            value: text(sql, value)?,
            value_is_literal: true,
        })
    };
    let scope = match modifier {
        Some(Kw::Global | Kw::Persist) => SetScope::Global,
        _ => SetScope::Session,
    };
    let (scope, name, rest) = match head.t {
        T::Word => match kind_of(sql, head) {
            Kw::Names => return special(SetScope::Names, "names", &toks[1..]),
            Kw::Charset => return special(SetScope::CharacterSet, "character set", &toks[1..]),
            Kw::Character if kw(toks.get(1)) == Some(Kw::Set) => {
                return special(SetScope::CharacterSet, "character set", &toks[2..])
            }
            Kw::Password => return None,
            _ => {
                let (n, r) = structured_name(sql, toks)?;
                (scope, n, r)
            }
        },
        T::Quoted => {
            let (n, r) = structured_name(sql, toks)?;
            (scope, n, r)
        }
        T::UserVar if modifier.is_none() => (SetScope::User, name_of(sql, head)?, &toks[1..]),
        T::SysVar if modifier.is_none() => {
            let prefix = head.scope(sql);
            let global = [&b"global"[..], b"persist", b"persist_only"]
                .iter()
                .any(|p| prefix.eq_ignore_ascii_case(p));
            let scope = if global {
                SetScope::Global
            } else {
                SetScope::Session
            };
            (scope, name_of(sql, head)?, &toks[1..])
        }
        _ => return None,
    };
    if name.is_empty() || !is_op(rest.first()) {
        return None;
    }
    let value = &rest[1..];
    Some(SetAssignment {
        value_is_literal: is_literal(sql, value, scope),
        scope,
        name,
        value: text(sql, value)?,
    })
}

/// `name` or structured `component.name`; returns the rest after it.
fn structured_name<'t>(sql: &[u8], toks: &'t [Token]) -> Option<(String, &'t [Token])> {
    let first = name_of(sql, toks.first()?)?;
    if toks.get(1).map(|t| t.t) == Some(T::Punct(b'.')) {
        if let Some(t) = toks.get(2).filter(|t| matches!(t.t, T::Word | T::Quoted)) {
            return Some((format!("{first}.{}", name_of(sql, t)?), &toks[3..]));
        }
    }
    Some((first, &toks[1..]))
}

/// A token's name, lowercased; inside quotes a doubled quote becomes one.
fn name_of(sql: &[u8], t: &Token) -> Option<String> {
    let s = std::str::from_utf8(t.inner(sql)).ok()?.to_lowercase();
    // The byte before the name is its opening quote, if it has one.
    let quote = t.inner.0.checked_sub(1).and_then(|i| sql.get(i)).copied();
    Some(match quote {
        Some(b'`') => s.replace("``", "`"),
        Some(b'\'') => s.replace("''", "'"),
        Some(b'"') => s.replace("\"\"", "\""),
        _ => s,
    })
}

/// Source text from the first to the last token, None if empty or non-UTF-8.
fn text(sql: &[u8], toks: &[Token]) -> Option<String> {
    let (a, b) = (toks.first()?.start, toks.last()?.end);
    let s = std::str::from_utf8(sql.get(a..b)?).ok()?;
    Some(s.to_string())
}

/// Constants that replay identically on any connection.
fn is_literal(sql: &[u8], v: &[Token], scope: SetScope) -> bool {
    let system = scope != SetScope::User;
    let intro = |w: &[u8]| {
        w.first() == Some(&b'_')
            || [&b"N"[..], b"X", b"B", b"DATE", b"TIME", b"TIMESTAMP"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
    };
    match v {
        [n] if n.t == T::Num => true,
        [s, n] if matches!(s.t, T::Punct(b'-' | b'+')) && n.t == T::Num => true,
        [w] if w.t == T::Word => match kind_of(sql, w) {
            Kw::Null | Kw::True | Kw::False => true,
            Kw::Default | Kw::On | Kw::Off => system,
            Kw::Niladic => false,
            _ => system,
        },
        [w, s] if w.t == T::Word && s.t == T::Str => intro(w.inner(sql)),
        strs => !strs.is_empty() && strs.iter().all(|t| t.t == T::Str),
    }
}

/// `USE db` / ``USE `db` `` → the schema name (case kept); None otherwise.
pub fn use_schema(sql: &[u8]) -> Option<String> {
    let toks = statement_tokens(sql)?;
    let [first, name] = toks.as_slice() else {
        return None;
    };
    if kind_of(sql, first) != Kw::Use {
        return None;
    }
    let raw = std::str::from_utf8(name.inner(sql)).ok();
    match name.t {
        T::Word => raw.map(str::to_string),
        T::Num => {
            let w = sql.get(name.start..name.end)?;
            let ok = w.iter().all(|&b| is_word_byte(b));
            ok.then(|| std::str::from_utf8(w).ok().map(str::to_string))?
        }
        T::Quoted => raw.map(|s| s.replace("``", "`")),
        _ => None,
    }
}
