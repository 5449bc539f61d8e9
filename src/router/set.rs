//! Session-state statements: `SET …` and `USE db`.
//!
//! Why hand-written rather than sqlparser: the proxy replays these on other
//! backend connections, so it needs each value *as written* (sqlparser
//! re-renders expressions), and sqlparser 0.63 rejects common MySQL forms
//! (`SET CHARACTER SET x`, `SET @a := 1`). The shared lexer gives exact
//! byte ranges, skips comments and honours executable comments.

use super::keywords::{keyword, kind_of, Kw};
use super::lexer::{is_word_byte, Lexer, Tok, Token};

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
fn statement_tokens(sql: &[u8]) -> Option<Vec<Token<'_>>> {
    let mut lx = Lexer::new(sql);
    let mut toks = Vec::new();
    while let Some(t) = lx.next_token() {
        toks.push(t);
    }
    if lx.broken {
        return None;
    }
    if let Some(i) = toks.iter().position(|t| t.tok == Tok::Punct(b';')) {
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
    let (first, rest) = toks.split_first()?;
    if kind_of(&first.tok) != Kw::Set {
        return None;
    }
    let modifier = rest.first().map(|t| kind_of(&t.tok));
    let (modifier, after) = match modifier {
        Some(m @ (Kw::Global | Kw::Session | Kw::Local | Kw::Persist)) => (Some(m), &rest[1..]),
        _ => (None, rest),
    };
    // TRANSACTION takes the rest, commas included (`READ ONLY, ISOLATION …`).
    if after.first().map(|t| kind_of(&t.tok)) == Some(Kw::Transaction) {
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
        match t.tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            Tok::Punct(b',') if depth == 0 => {
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

/// One comma-separated item: `[GLOBAL|SESSION|…] target (=|:=) value`,
/// `NAMES …` or `CHARACTER SET …`.
fn item(sql: &[u8], toks: &[Token]) -> Option<SetAssignment> {
    let is_op =
        |t: Option<&Token>| matches!(t.map(|t| t.tok), Some(Tok::Punct(b'=') | Tok::Assign));
    let (modifier, toks) = match toks.first().map(|t| kind_of(&t.tok)) {
        Some(m @ (Kw::Global | Kw::Session | Kw::Local | Kw::Persist)) if !is_op(toks.get(1)) => {
            (Some(m), &toks[1..])
        }
        _ => (None, toks),
    };
    let head = toks.first()?;
    let special = |scope, name: &str, value: &[Token]| {
        (modifier.is_none() && !is_op(value.first())).then_some(())?;
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
    let (scope, name, rest) = match head.tok {
        Tok::Word(w) => match keyword(w) {
            Kw::Names => return special(SetScope::Names, "names", &toks[1..]),
            Kw::Charset => return special(SetScope::CharacterSet, "character set", &toks[1..]),
            Kw::Character if toks.get(1).map(|t| kind_of(&t.tok)) == Some(Kw::Set) => {
                return special(SetScope::CharacterSet, "character set", &toks[2..])
            }
            Kw::Password => return None,
            _ => structured_name(w, toks).map(|(n, r)| (scope, n, r))?,
        },
        Tok::Quoted(w) => structured_name(w, toks).map(|(n, r)| (scope, n, r))?,
        Tok::UserVar(n) if modifier.is_none() => {
            let q = sql.get(head.start + 1).copied().unwrap_or(0);
            (SetScope::User, unquote(n, q)?, &toks[1..])
        }
        Tok::SysVar(prefix, n) if modifier.is_none() => {
            let global = [&b"global"[..], b"persist", b"persist_only"]
                .iter()
                .any(|p| prefix.eq_ignore_ascii_case(p));
            let scope = if global {
                SetScope::Global
            } else {
                SetScope::Session
            };
            let q = if sql.get(head.end.wrapping_sub(1)) == Some(&b'`') {
                b'`'
            } else {
                0
            };
            (scope, unquote(n, q)?, &toks[1..])
        }
        _ => return None,
    };
    if name.is_empty() || !is_op(rest.first()) {
        return None;
    }
    let value = &rest[1..];
    Some(SetAssignment {
        value_is_literal: is_literal(value, scope),
        scope,
        name,
        value: text(sql, value)?,
    })
}

/// `name` or structured `component.name`; returns the rest after it.
fn structured_name<'t, 'a>(w: &[u8], toks: &'t [Token<'a>]) -> Option<(String, &'t [Token<'a>])> {
    let q = if matches!(toks[0].tok, Tok::Quoted(_)) {
        b'`'
    } else {
        0
    };
    let first = unquote(w, q)?;
    if toks.get(1).map(|t| t.tok) == Some(Tok::Punct(b'.')) {
        if let Some(Tok::Word(n) | Tok::Quoted(n)) = toks.get(2).map(|t| t.tok) {
            let q2 = if matches!(toks[2].tok, Tok::Quoted(_)) {
                b'`'
            } else {
                0
            };
            return Some((format!("{first}.{}", unquote(n, q2)?), &toks[3..]));
        }
    }
    Some((first, &toks[1..]))
}

/// Lowercased name; a doubled quote character inside quotes becomes one.
fn unquote(raw: &[u8], quote: u8) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?.to_lowercase();
    Some(match quote {
        b'`' => s.replace("``", "`"),
        b'\'' => s.replace("''", "'"),
        b'"' => s.replace("\"\"", "\""),
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
fn is_literal(v: &[Token], scope: SetScope) -> bool {
    let system = scope != SetScope::User;
    let intro = |w: &[u8]| {
        w.first() == Some(&b'_')
            || [&b"N"[..], b"X", b"B", b"DATE", b"TIME", b"TIMESTAMP"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
    };
    match v.iter().map(|t| t.tok).collect::<Vec<_>>().as_slice() {
        [Tok::Num] | [Tok::Punct(b'-' | b'+'), Tok::Num] => true,
        [Tok::Word(w)] => match keyword(w) {
            Kw::Null | Kw::True | Kw::False => true,
            Kw::Default | Kw::On | Kw::Off => system,
            Kw::Niladic => false,
            _ => system,
        },
        [Tok::Word(w), Tok::Str(_)] => intro(w),
        strs => !strs.is_empty() && strs.iter().all(|t| matches!(t, Tok::Str(_))),
    }
}

/// `USE db` / ``USE `db` `` → the schema name (case kept); None otherwise.
pub fn use_schema(sql: &[u8]) -> Option<String> {
    let toks = statement_tokens(sql)?;
    let [first, name] = toks.as_slice() else {
        return None;
    };
    if kind_of(&first.tok) != Kw::Use {
        return None;
    }
    match name.tok {
        Tok::Word(w) => std::str::from_utf8(w).ok().map(str::to_string),
        Tok::Num => {
            let w = sql.get(name.start..name.end)?;
            w.iter()
                .all(|&b| is_word_byte(b))
                .then(|| std::str::from_utf8(w).ok().map(str::to_string))?
        }
        Tok::Quoted(w) => std::str::from_utf8(w).ok().map(|s| s.replace("``", "`")),
        _ => None,
    }
}
