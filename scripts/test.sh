#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start real
# MariaDB servers (installed here if missing) and real clients. Ends with
# one line of totals over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --bins --tests -- --test-threads=2 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
