//! The admin-sql transcripts: splitting a .sql file into statements and
//! comparing a transcript with its .expected file, ignoring table padding
//! (placeholders change widths) and honouring `{?}` wildcards.

/// Statements of a .sql file, with the comment lines before each.
pub fn split_sql(text: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let (mut comments, mut stmt) = (Vec::new(), Vec::<String>::new());
    for line in text.lines() {
        let t = line.trim();
        if stmt.is_empty() && (t.is_empty() || t.starts_with("--")) {
            comments.push(line.to_string());
            continue;
        }
        stmt.push(line.to_string());
        if t.ends_with(';') || t.ends_with("\\G") {
            out.push((std::mem::take(&mut comments), stmt.join("\n")));
            stmt.clear();
        }
    }
    assert!(stmt.is_empty(), "unterminated statement: {stmt:?}");
    out
}

/// Table lines re-padded to their content (after placeholders changed the
/// widths); a column stays right-aligned if its cells were.
pub fn realign(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('+') {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && (lines[i].starts_with('+') || lines[i].starts_with('|')) {
            i += 1;
        }
        out.extend(realign_table(&lines[start..i]));
    }
    out.join("\n") + "\n"
}

/// The padded cells of a `| a | b |` line.
fn cells(line: &str) -> Vec<&str> {
    let inner = line
        .strip_prefix("| ")
        .and_then(|l| l.strip_suffix(" |"))
        .unwrap_or(line);
    inner.split(" | ").collect()
}

fn realign_table(block: &[&str]) -> Vec<String> {
    let rows: Vec<Vec<&str>> = block
        .iter()
        .filter(|l| l.starts_with('|'))
        .map(|l| cells(l))
        .collect();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; ncols];
    let mut right = vec![false; ncols];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let v = cell.trim();
            width[c] = width[c].max(v.chars().count());
            // Left-aligned values start at the cell's first character.
            right[c] |= r > 0 && cell.starts_with(' ') && !v.is_empty();
        }
    }
    let border = format!(
        "+{}+",
        width
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let mut header = true;
    block
        .iter()
        .map(|l| {
            if l.starts_with('+') {
                return border.clone();
            }
            // Column names are always left-aligned.
            let in_header = std::mem::replace(&mut header, false);
            let row = cells(l);
            let padded: Vec<String> = (0..ncols)
                .map(|c| {
                    let v = row.get(c).map_or("", |s| s.trim());
                    if right[c] && !in_header {
                        format!(" {v:>w$} ", w = width[c])
                    } else {
                        format!(" {v:<w$} ", w = width[c])
                    }
                })
                .collect();
            format!("|{}|", padded.join("|"))
        })
        .collect()
}

/// A line with padding removed, for comparison.
fn canonical(line: &str) -> String {
    if line.starts_with('+') && line.chars().all(|c| c == '+' || c == '-') {
        return "+".into();
    }
    if line.starts_with('|') {
        let c: Vec<&str> = cells(line).into_iter().map(str::trim).collect();
        return format!("| {} |", c.join(" | "));
    }
    line.trim().to_string()
}

/// `{?}` in an expected line matches any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("{?}").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let Some(mut rest) = actual.strip_prefix(parts[0]) else {
        return false;
    };
    for (i, p) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

pub fn transcript_matches(expected: &str, actual: &str) -> Result<(), String> {
    let e: Vec<String> = expected.lines().map(canonical).collect();
    let a: Vec<String> = actual.lines().map(canonical).collect();
    for (i, (el, al)) in e.iter().zip(&a).enumerate() {
        if !line_matches(el, al) {
            return Err(format!("line {}: expected {el:?}, got {al:?}", i + 1));
        }
    }
    if e.len() != a.len() {
        return Err(format!("expected {} lines, got {}", e.len(), a.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_comparison_ignores_padding_and_honours_wildcards() {
        let expected = "+--+\n| a | b |\n+--+\n| 1 | {?} |\n";
        let actual = "+-----+-----+\n|   a | b   |\n+-----+-----+\n| 1   | xyz |\n";
        transcript_matches(expected, actual).expect("match");
        assert!(transcript_matches("| 1 | 2 |", "| 1 | 3 |").is_err());
        assert!(transcript_matches("a\nb", "a").is_err());
        let table = "+---+-------------+\n| n | address     |\n+---+-------------+\n| 1 | {PRIMARY} |\n+---+-------------+\n";
        assert_eq!(
        realign(table),
        "+---+-----------+\n| n | address   |\n+---+-----------+\n| 1 | {PRIMARY} |\n+---+-----------+\n"
    );
        let right = "+-------+\n| count |\n+-------+\n|    12 |\n+-------+\n";
        assert_eq!(
            realign(right),
            right,
            "right-aligned numbers stay right-aligned"
        );
    }
}
