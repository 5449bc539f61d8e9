//! `gantry import-atlas FILE`: an Atlas configuration (`[mysql-proxy]`
//! ini file) turned into Gantry's TOML, printed on stdout. Atlas keeps
//! `pwds` DES-encrypted under a key compiled into it (its
//! `script/encrypt.c`: DES-ECB, PKCS#7 padding, base64); they are
//! decrypted here and written as native-password hashes, so the result
//! holds no password that can be read back. Atlas's clear
//! `admin-password` becomes a hash too.

use base64::Engine;
use des::cipher::{BlockDecrypt, KeyInit};
use des::Des;

use crate::protocol::credential::native_hash_text;

/// Atlas's fixed key: the first 8 bytes of "aCtZlHaUs" (DES keys are 8).
const ATLAS_KEY: &[u8; 8] = b"aCtZlHaU";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("line {0}: not `name = value`")]
    Syntax(usize),
    #[error("pwds entry for {0:?}: not an Atlas-encrypted password")]
    BadPassword(String),
    #[error("pwds entry {0:?}: not user:encrypted-password")]
    BadEntry(String),
    #[error("no [mysql-proxy] section")]
    NoSection,
}

/// Decrypts a `pwds` password as Atlas's `encrypt` made it.
pub fn atlas_decrypt(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut data = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    if data.is_empty() || data.len() % 8 != 0 {
        return None;
    }
    let cipher = Des::new_from_slice(ATLAS_KEY).ok()?;
    for block in data.chunks_mut(8) {
        cipher.decrypt_block(block.into());
    }
    let pad = usize::from(*data.last()?);
    if pad == 0
        || pad > 8
        || data[data.len() - pad..]
            .iter()
            .any(|b| usize::from(*b) != pad)
    {
        return None;
    }
    data.truncate(data.len() - pad);
    String::from_utf8(data).ok()
}

/// Atlas's log levels in Gantry's words.
fn log_level(atlas: &str) -> &str {
    match atlas {
        "message" | "info" => "info",
        "warning" => "warn",
        "critical" | "error" => "error",
        "debug" => "debug",
        other => other,
    }
}

fn quoted(v: &str) -> String {
    let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", inner.join(", "))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The Gantry configuration for an Atlas one.
pub fn convert(ini: &str) -> Result<String, ImportError> {
    let mut out =
        String::from("# Imported from an Atlas configuration by `gantry import-atlas`.\n");
    let mut in_section = false;
    let mut seen_section = false;
    for (n, raw) in ini.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_section = line == "[mysql-proxy]";
            seen_section |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or(ImportError::Syntax(n + 1))?;
        let (name, value) = (name.trim(), value.trim());
        let entry = match name {
            "proxy-address" | "admin-address" | "admin-username" | "proxy-backend-addresses" => {
                format!("{name} = {}\n", quoted(value))
            }
            "admin-password" => format!("{name} = {}\n", quoted(&native_hash_text(value))),
            "proxy-read-only-backend-addresses" | "client-ips" => {
                format!("{name} = {}\n", list(&split_list(value)))
            }
            "event-threads" if value.parse::<u64>().is_ok() => format!("{name} = {value}\n"),
            "log-level" => format!("{name} = {}\n", quoted(log_level(value))),
            "pwds" => {
                let mut accounts = Vec::new();
                for entry in split_list(value) {
                    let (user, secret) = entry
                        .split_once(':')
                        .ok_or_else(|| ImportError::BadEntry(entry.clone()))?;
                    let clear = atlas_decrypt(secret)
                        .ok_or_else(|| ImportError::BadPassword(user.to_string()))?;
                    accounts.push(format!("{user}:{}", native_hash_text(&clear)));
                }
                format!("pwds = {}\n", list(&accounts))
            }
            // Daemon mode, log files, SQL logs, sharding tables, LVS and
            // charset have no Gantry counterpart (or another one).
            _ => format!("# not used by Gantry: {name} = {value}\n"),
        };
        out.push_str(&entry);
    }
    if !seen_section {
        return Err(ImportError::NoSection);
    }
    out.push_str(
        "# Gantry's health checks log in themselves, so they need a password, not a hash:\n\
         # monitor-username = \"monitor\"\n\
         # monitor-password = \"enc:...\"   # echo 'its password' | gantry encrypt -k KEYFILE\n\
         # secret-key-file = \"KEYFILE\"\n",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypts_what_atlas_encrypt_made() {
        // Atlas's documented example: `./encrypt 123456` prints this.
        assert_eq!(atlas_decrypt("/iZxz+0GRoA=").as_deref(), Some("123456"));
        assert_eq!(atlas_decrypt("not base64!"), None);
        assert_eq!(atlas_decrypt("AAAA"), None);
        assert_eq!(atlas_decrypt("AAAAAAAAAAA="), None, "bad padding");
    }

    #[test]
    fn converts_an_atlas_file_without_clear_passwords() {
        let ini = "[mysql-proxy]\n# comment\nadmin-username = user\nadmin-password = pwd\n\
                   proxy-backend-addresses = 127.0.0.1:3306\n\
                   proxy-read-only-backend-addresses = 127.0.0.1:3305@1, 127.0.0.1:3307@2\n\
                   pwds = app:/iZxz+0GRoA=\nevent-threads = 8\nlog-level = message\n\
                   daemon = true\nclient-ips = 127.0.0.1, 192.168.1\n";
        let toml = convert(ini).unwrap();
        assert!(toml.contains("admin-username = \"user\"\n"), "{toml}");
        assert!(toml.contains(&format!("admin-password = \"{}\"", native_hash_text("pwd"))));
        assert!(toml.contains(&format!("pwds = [\"app:{}\"]", native_hash_text("123456"))));
        assert!(toml.contains(
            "proxy-read-only-backend-addresses = [\"127.0.0.1:3305@1\", \"127.0.0.1:3307@2\"]"
        ));
        assert!(toml.contains("log-level = \"info\""));
        assert!(toml.contains("# not used by Gantry: daemon = true"));
        assert!(
            !toml.contains("123456") && !toml.contains("= \"pwd\""),
            "{toml}"
        );
        assert_eq!(
            convert("[mysql-proxy]\npwds = app:nope\n"),
            Err(ImportError::BadPassword("app".into()))
        );
        assert_eq!(convert("a = b\n"), Err(ImportError::NoSection));
    }
}
