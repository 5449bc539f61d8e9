//! The TOML file: a flat table of `option = value`.

use std::path::Path;

use super::{ConfigError, Layer, Raw, OPTIONS};

/// Reads and parses the file at `path` into an option layer.
pub(super) fn read(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        msg: format!("cannot read: {e}"),
    })?;
    parse(&text, path)
}

/// Parses file contents; `path` is only used in messages.
pub(super) fn parse(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    let table = text.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        msg: syntax_error(text, &e),
    })?;
    let mut layer = Layer::new();
    for (key, value) in table {
        let Some(spec) = OPTIONS.iter().find(|o| o.key == key) else {
            let mut msg = format!("unknown option in {}", path.display());
            if let Some(s) = suggest(&key) {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            return Err(ConfigError::Invalid { key, msg });
        };
        layer.insert(spec.key, raw(value));
    }
    Ok(layer)
}

fn raw(value: toml::Value) -> Raw {
    match value {
        toml::Value::String(s) => Raw::Str(s),
        toml::Value::Integer(n) => Raw::Int(n),
        toml::Value::Boolean(b) => Raw::Bool(b),
        toml::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map_or(Raw::Other("an array with non-string elements"), Raw::List),
        toml::Value::Float(_) => Raw::Other("a float"),
        toml::Value::Datetime(_) => Raw::Other("a datetime"),
        toml::Value::Table(_) => Raw::Other("a table"),
    }
}

/// One line: `TOML syntax error at line L, column C: message`.
fn syntax_error(text: &str, err: &toml::de::Error) -> String {
    let msg = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match err.span() {
        Some(span) => {
            let mut start = span.start.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit_once('\n')
                .map_or(before, |(_, l)| l)
                .chars()
                .count()
                + 1;
            format!("TOML syntax error at line {line}, column {column}: {msg}")
        }
        None => format!("TOML syntax error: {msg}"),
    }
}

/// The known option closest to a misspelt `key`, if it is close enough.
fn suggest(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase().replace('_', "-");
    OPTIONS
        .iter()
        .map(|o| (edit_distance(&key, o.key), o.key))
        .filter(|&(d, k)| d <= (k.len() / 4).max(1))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
