#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start real
# MariaDB servers (installed here if missing) and real clients.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked --all-targets
cargo test --locked -- --test-threads=2
