//! Real drivers through Gantry, where a Rust test cannot show the client's
//! behaviour: the scripts under `drivers/` (see drivers/README.md).
//!
//! * `pymysql_*`, `mysql2_*`: PyMySQL (pip) and mysql2 (npm) check scripts,
//!   each run directly against MariaDB (a baseline) and through Gantry.
//! * `connector_python_*`: mysql-connector-python's own unit-test suite, run
//!   directly and through Gantry; the two lists of failing tests must be
//!   identical.
//!
//! Each script brings up its own MariaDB topology and Gantry (the binary
//! cargo built for this run, passed as GANTRY_BIN) on free ports and tears
//! them down on exit. The scripts install their packages themselves (a
//! virtualenv under target/drivers/, drivers/mysql2/node_modules). A missing
//! python3, pip/venv, node or npm fails these tests; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with a clear message when a tool the drivers need is missing.
fn require(tool: &str, version_arg: &str) {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool} {version_arg}` failed: {tool} is required by the driver tests (tests/drivers.rs); \
         install it (python3 with venv and pip, node 18+ with npm)"
    );
}

/// Runs `drivers/<script> args...` with this build's gantry binary and
/// returns its output; panics with the whole output if it fails.
fn run_driver_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let path = repo().join("drivers").join(script);
    assert!(path.is_file(), "{} is missing", path.display());
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .current_dir(repo())
        .env("GANTRY_BIN", env!("CARGO_BIN_EXE_gantry"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let text = format!(
        "---- stdout of {script} {} ----\n{}\n---- stderr ----\n{}\n---- end ({:.0?}) ----",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end(),
        started.elapsed(),
    );
    assert!(
        out.status.success(),
        "{script} failed ({})\n{text}",
        out.status
    );
    println!("{text}");
    text
}

fn assert_no_fail_lines(output: &str) {
    let fails: Vec<&str> = output.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(fails.is_empty(), "FAIL lines: {fails:?}\n{output}");
    assert!(output.contains("PASS "), "no PASS line at all:\n{output}");
}

#[test]
fn pymysql_behaves_the_same_through_gantry() {
    require("python3", "--version");
    let out = run_driver_script("pymysql/run.sh", &[], &[]);
    assert_no_fail_lines(&out);
    assert!(out.contains("through Gantry"), "{out}");
}

#[test]
fn mysql2_behaves_the_same_through_gantry() {
    require("node", "--version");
    require("npm", "--version");
    let out = run_driver_script("mysql2/run.sh", &[], &[]);
    assert_no_fail_lines(&out);
    assert!(out.contains("through Gantry"), "{out}");
}

#[test]
fn connector_python_suite_fails_the_same_tests_through_gantry() {
    require("python3", "--version");
    // One suite run takes 60-90 s here; a hang through Gantry is cut at 240 s
    // and shows up as a TIMEOUT line in the failure list.
    let out = run_driver_script(
        "connector-python/run.sh",
        &[],
        &[("CPY_RUN_TIMEOUT", "240")],
    );
    assert!(out.contains("identical failure lists"), "{out}");
    // The lists themselves, for the record (and a sanity check that the
    // suite ran at all: MariaDB fails some of this MySQL 8 suite's tests).
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("drivers/connector-python");
    let direct = read(&dir.join("direct.txt"));
    let gantry = read(&dir.join("gantry.txt"));
    assert_eq!(direct, gantry);
    let outcomes = read(&dir.join("gantry.outcomes"));
    let ran = outcomes.lines().filter(|l| l.starts_with("ok\t")).count();
    assert!(ran > 500, "only {ran} tests passed through Gantry:\n{out}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}
