//! Facts about a statement that the session acts on besides its route:
//! KILL targets (Gantry's connection ids), Gantry's own session variable
//! and per-statement consistency hints. All SQL text inspection lives in
//! the router.

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

/// Whether a COM_QUERY may contain a KILL Gantry must translate.
pub fn mentions_kill(sql: &[u8]) -> bool {
    sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"kill"))
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
