//! Facts about a statement that the session acts on besides its route:
//! KILL targets (Gantry's connection ids), Gantry's own session variable
//! and per-statement consistency hints, CONNECTION_ID() calls. All SQL
//! text inspection lives in the router.

use super::keywords::{kind_of, Kw};
use super::lexer::{Lexer, T};

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] id`: (query_only, id).
pub fn parse_kill(sql: &[u8]) -> Option<(bool, u32)> {
    let text = std::str::from_utf8(sql).ok()?;
    let mut words = text
        .trim()
        .trim_end_matches(';')
        .split_ascii_whitespace()
        .map(|w| w.to_ascii_uppercase());
    if words.next()? != "KILL" {
        return None;
    }
    let mut query = false;
    for w in words {
        match w.as_str() {
            "HARD" | "SOFT" | "CONNECTION" => {}
            "QUERY" => query = true,
            n => return n.parse().ok().map(|id| (query, id)),
        }
    }
    None
}

/// `sql` with every `CONNECTION_ID()` call replaced by Gantry's id for the
/// session (the server would answer its own thread id, which Gantry's KILL
/// does not take). A bare select-list item keeps its column name.
pub fn with_connection_id(sql: &[u8], id: u32) -> Vec<u8> {
    let mut toks = Vec::new();
    let mut lx = Lexer::new(sql);
    while let Some(t) = lx.next_token() {
        toks.push(t);
    }
    let kind = |i: usize| toks.get(i).map_or(Kw::Semi, |t| kind_of(sql, t));
    let word = |i: usize, w: &[u8]| {
        toks.get(i)
            .is_some_and(|t| t.t == T::Word && t.inner(sql).eq_ignore_ascii_case(w))
    };
    let mut out = Vec::with_capacity(sql.len() + 32);
    let mut at = 0;
    let mut i = 0;
    // Inside the top-level select list (where an item gets a column name).
    let mut depth = 0i32;
    let mut select_list = false;
    while i < toks.len() {
        match kind(i) {
            Kw::LParen => depth += 1,
            Kw::RParen => depth -= 1,
            Kw::Select if depth == 0 => select_list = true,
            Kw::Semi | Kw::Into => select_list = false,
            _ if depth == 0 && (word(i, b"FROM") || word(i, b"WHERE")) => select_list = false,
            _ => {}
        }
        let call =
            kind(i) == Kw::ConnectionIdFn && kind(i + 1) == Kw::LParen && kind(i + 2) == Kw::RParen;
        if !call {
            i += 1;
            continue;
        }
        let (start, end) = (toks[i].start, toks[i + 2].end);
        out.extend_from_slice(&sql[at..start]);
        out.extend_from_slice(id.to_string().as_bytes());
        let item_start = i > 0 && matches!(kind(i - 1), Kw::Select | Kw::Comma);
        let item_end =
            word(i + 3, b"FROM") || matches!(kind(i + 3), Kw::Comma | Kw::Semi | Kw::Into);
        if select_list && depth == 0 && item_start && item_end {
            out.extend_from_slice(b" AS `");
            out.extend_from_slice(&sql[start..end]);
            out.push(b'`');
        }
        at = end;
        i += 3;
    }
    out.extend_from_slice(&sql[at..]);
    out
}

/// `/* gantry:consistency=global */` at the start of a statement.
pub fn consistency_hint(sql: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"gantry:consistency=";
    let start = sql.iter().position(|b| !b.is_ascii_whitespace())?;
    if !sql[start..].starts_with(b"/*") {
        return None;
    }
    let end = start + sql[start..].windows(2).position(|w| w == b"*/")?;
    let comment = &sql[start..end];
    let at = comment
        .windows(KEY.len())
        .position(|w| w.eq_ignore_ascii_case(KEY))?;
    let value: String = comment[at + KEY.len()..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .map(|b| *b as char)
        .collect();
    Some(value)
}

/// The value of `SET [@@][session.]gantry_consistency = 'mode'`.
pub fn gantry_consistency_value(sql: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sql).ok()?;
    let lower = text.to_ascii_lowercase();
    if !lower.contains("gantry_consistency") {
        return None;
    }
    let (_, value) = text.split_once('=')?;
    Some(
        value
            .trim()
            .trim_end_matches(';')
            .trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements() {
        assert_eq!(parse_kill(b"KILL 5"), Some((false, 5)));
        assert_eq!(parse_kill(b"kill query 12;"), Some((true, 12)));
        assert_eq!(parse_kill(b" KILL CONNECTION 7 "), Some((false, 7)));
        assert_eq!(parse_kill(b"KILL HARD QUERY 3"), Some((true, 3)));
        assert_eq!(parse_kill(b"KILL QUERY ID 3"), None);
        assert_eq!(parse_kill(b"KILLED 3"), None);
        assert_eq!(parse_kill(b"SELECT 1"), None);
        assert_eq!(parse_kill(&[0xff, 0xfe]), None);
    }

    #[test]
    fn connection_id_answers_gantrys_id() {
        let w = |sql: &[u8]| String::from_utf8(with_connection_id(sql, 42)).unwrap();
        assert_eq!(
            w(b"SELECT CONNECTION_ID()"),
            "SELECT 42 AS `CONNECTION_ID()`"
        );
        assert_eq!(
            w(b"select connection_id(), 1 from dual"),
            "select 42 AS `connection_id()`, 1 from dual"
        );
        assert_eq!(w(b"SELECT CONNECTION_ID() AS me"), "SELECT 42 AS me");
        assert_eq!(
            w(b"SELECT * FROM t WHERE id = CONNECTION_ID() + 1"),
            "SELECT * FROM t WHERE id = 42 + 1"
        );
        assert_eq!(w(b"SELECT 'CONNECTION_ID()'"), "SELECT 'CONNECTION_ID()'");
        assert_eq!(
            w(b"INSERT INTO t VALUES (?, CONNECTION_ID())"),
            "INSERT INTO t VALUES (?, 42)"
        );
        assert_eq!(
            w(b"SELECT (SELECT CONNECTION_ID()), CONNECTION_ID()"),
            "SELECT (SELECT 42), 42 AS `CONNECTION_ID()`"
        );
    }

    #[test]
    fn consistency_hints_and_sets() {
        assert_eq!(
            consistency_hint(b" /* gantry:consistency=global */ SELECT 1"),
            Some("global".to_string())
        );
        assert_eq!(
            consistency_hint(b"/*gantry:consistency=read-your-writes*/SELECT 1"),
            Some("read-your-writes".to_string())
        );
        assert_eq!(
            consistency_hint(b"SELECT 1 /* gantry:consistency=global */"),
            None
        );
        assert_eq!(
            consistency_hint(b"/* gantry:consistency=bogus */ SELECT 1").as_deref(),
            Some("bogus")
        );
        assert_eq!(
            gantry_consistency_value(b"SET @@gantry_consistency = 'global';").as_deref(),
            Some("global")
        );
        assert_eq!(
            gantry_consistency_value(b"set session gantry_consistency=\"eventual\"").as_deref(),
            Some("eventual")
        );
        assert_eq!(gantry_consistency_value(b"SET @a = 1"), None);
    }
}
