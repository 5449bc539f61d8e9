#!/usr/bin/env bash
# Starts a local MariaDB topology (primary 13306, replicas 13307/13308,
# installed from apt if missing) and Gantry in front of it on 127.0.0.1:1234
# (proxy) and 127.0.0.1:2345 (admin), with conf/gantry.toml. Ctrl-C stops
# Gantry and the topology.
#
#   mariadb -h127.0.0.1 -P1234 -uapp -papp_pw test
#   mariadb -h127.0.0.1 -P2345 -uadmin -padmin_pw -e 'SELECT * FROM backends'
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked
scripts/topology.sh up
trap 'scripts/topology.sh down' EXIT
echo "run-local: Gantry on 127.0.0.1:1234 (admin 127.0.0.1:2345); Ctrl-C stops it" >&2
target/release/gantry --config conf/gantry.toml "$@"
