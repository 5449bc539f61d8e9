//! `SAVE CONFIG`: write the runtime topology and accounts back to the file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use toml_edit::{Array, DocumentMut, Item, Value};

use super::{backend_list, client_ip_list, pwds_list, BackendAddr, ConfigError, UserPassword};

/// Rewrites `proxy-backend-addresses`, `proxy-read-only-backend-addresses`,
/// `client-ips` and `pwds` in the TOML file at `path`, keeping comments,
/// formatting and every other option. Replicas keep their weights
/// (`host:port@w`); primaries are written as `host:port`.
///
/// The values are validated first (the file must stay loadable: at least one
/// primary and one account). The new contents go to a temporary file in the
/// same directory (mode 0600, then the original file's permissions), which
/// is synced and renamed over the original, so readers see either the old
/// or the new file. A symlink is followed and its target replaced. A missing
/// file is created.
pub fn save_runtime(
    path: &Path,
    backends_rw: &[BackendAddr],
    backends_ro: &[BackendAddr],
    client_ips: &[String],
    pwds: &[UserPassword],
) -> Result<(), ConfigError> {
    let rw: Vec<String> = backends_rw.iter().map(|b| b.to_string()).collect();
    let ro: Vec<String> = backends_ro.iter().map(|b| b.to_config_string()).collect();
    let ips: Vec<String> = client_ips.iter().map(|s| s.trim().to_string()).collect();
    let accounts: Vec<String> = pwds.iter().map(|p| p.to_config_string()).collect();
    if rw.is_empty() {
        return Err(ConfigError::invalid(
            "proxy-backend-addresses",
            "refusing to save an empty list (at least one primary is required)",
        ));
    }
    if accounts.is_empty() {
        return Err(ConfigError::invalid(
            "pwds",
            "refusing to save an empty list (at least one user:password is required)",
        ));
    }
    backend_list("proxy-backend-addresses", &rw, false)?;
    backend_list("proxy-read-only-backend-addresses", &ro, true)?;
    client_ip_list("client-ips", &ips)?;
    pwds_list("pwds", &accounts)?;

    let file_error = |path: &Path, msg: String| ConfigError::File {
        path: path.to_path_buf(),
        msg,
    };
    let target: PathBuf = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(file_error(path, format!("cannot resolve: {e}"))),
    };
    let text = match fs::read_to_string(&target) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(path, format!("cannot read: {e}"))),
    };
    let mut doc = text.parse::<DocumentMut>().map_err(|e| {
        file_error(
            path,
            format!(
                "cannot update, TOML syntax error: {}",
                one_line(e.message())
            ),
        )
    })?;
    set_list(&mut doc, "proxy-backend-addresses", &rw);
    set_list(&mut doc, "proxy-read-only-backend-addresses", &ro);
    set_list(&mut doc, "client-ips", &ips);
    set_list(&mut doc, "pwds", &accounts);
    write_atomic(&target, doc.to_string().as_bytes())
        .map_err(|e| file_error(path, format!("cannot write: {e}")))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sets `key = [items...]` at the top level, keeping the key's comments and
/// the value's surrounding whitespace / trailing comment.
fn set_list(doc: &mut DocumentMut, key: &str, items: &[String]) {
    let mut array = Array::new();
    for item in items {
        array.push(item.as_str());
    }
    let mut value = Value::Array(array);
    let table = doc.as_table_mut();
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// Writes `contents` to a fresh temporary file next to `path`, then renames
/// it over `path`.
fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let permissions = fs::metadata(path).ok().map(|m| m.permissions());

    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not all platforms allow this.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
