#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start real
# MariaDB servers (installed here if missing) and real clients, then the
# integration suite again against a docker-compose topology
# (scripts/compose-test.sh). Ends with one line of totals over both runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --no-fail-fast --lib --bins --tests -- --test-threads=2 2>&1 | tee "$log" || status=$?
scripts/compose-test.sh --no-totals 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
