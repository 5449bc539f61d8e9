//! `gantry hash` and `gantry encrypt`: the password forms the
//! configuration accepts besides clear text. The password is read from
//! standard input (its first line), never from the command line, where
//! `ps` and the shell history would show it. `gantry import-atlas`
//! converts an Atlas configuration (`atlas`).

pub mod atlas;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::secret::SecretKey;
use crate::protocol::credential::native_hash_text;

/// Whether `args` (the whole command line) names one of these tools.
pub fn wanted(args: &[OsString]) -> bool {
    matches!(
        args.get(1).and_then(|a| a.to_str()),
        Some("hash" | "encrypt" | "import-atlas")
    )
}

fn command() -> clap::Command {
    clap::Command::new("gantry")
        .subcommand_required(true)
        .subcommand(
            clap::Command::new("hash")
                .about("Prints the mysql_native_password hash (*…) of the password read from stdin, for pwds or admin-password"),
        )
        .subcommand(
            clap::Command::new("encrypt")
                .about("Prints the enc: value of the password read from stdin; creates the key file (mode 0600) if it does not exist")
                .arg(
                    clap::Arg::new("secret-key-file")
                        .long("secret-key-file")
                        .short('k')
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                ),
        )
        .subcommand(
            clap::Command::new("import-atlas")
                .about("Prints the Gantry configuration (TOML) for an Atlas one; its DES-encrypted pwds become native-password hashes")
                .arg(
                    clap::Arg::new("file")
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                ),
        )
}

/// Runs the tool; the process exit code.
pub fn run(args: &[OsString]) -> i32 {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Some(("import-atlas", m)) = matches.subcommand() {
        let out = m
            .get_one::<PathBuf>("file")
            .ok_or_else(|| "a file is required".to_string())
            .and_then(|f| std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display())))
            .and_then(|ini| atlas::convert(&ini).map_err(|e| e.to_string()));
        return finish(out.map(|t| t.trim_end().to_string()));
    }
    let Some(password) = read_password() else {
        eprintln!("gantry: no password on standard input");
        return 2;
    };
    let out = match matches.subcommand() {
        Some(("hash", _)) => Ok(native_hash_text(&password)),
        Some(("encrypt", m)) => match m.get_one::<PathBuf>("secret-key-file") {
            Some(path) => key(path).map(|k| k.encrypt(&password)),
            None => Err("--secret-key-file is required".to_string()),
        },
        _ => Err("unknown tool".to_string()),
    };
    finish(out)
}

fn finish(out: Result<String, String>) -> i32 {
    match out {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("gantry: {e}");
            1
        }
    }
}

fn read_password() -> Option<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let pw = line.trim_end_matches(['\r', '\n']);
    (!pw.is_empty()).then(|| pw.to_string())
}

/// The key in `path`, made first if the file does not exist.
fn key(path: &Path) -> Result<SecretKey, String> {
    if !path.exists() {
        let mut f = create_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(SecretKey::generate_file_text().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("gantry: created the key file {}", path.display());
    }
    SecretKey::load(path).map_err(|e| e.to_string())
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
