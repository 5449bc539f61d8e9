#!/usr/bin/env bash
# PyMySQL through Gantry: runs check.py (PASS/FAIL per behaviour) first
# directly against the MariaDB primary (a baseline: a check failing there is
# a broken check, not a Gantry bug) and then through Gantry.
#
#   drivers/pymysql/run.sh [--replicas]
#
# Starts its own MariaDB topology and Gantry (primary only, replica
# auto-discovery off; --replicas adds both replicas; GANTRY_EXTRA_ARGS adds
# gantry options, e.g. "--consistency read-your-writes"). PyMySQL is installed
# into a virtualenv under target/drivers/. Exits non-zero if any check fails.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

PYMYSQL_VERSION=1.1.1
REPLICAS=()
for arg in "$@"; do
    case $arg in
        --replicas) REPLICAS=(--replicas) ;;
        *) echo "usage: $0 [--replicas]" >&2; exit 2 ;;
    esac
done

drv_init pymysql
drv_require python3
drv_venv pymysql-venv "PyMySQL==$PYMYSQL_VERSION"
drv_topology_up topology
# shellcheck disable=SC2086  # GANTRY_EXTRA_ARGS is word-split on purpose
drv_gantry_up "${REPLICAS[@]}" "app:app_pw,admin:admin_pw" ${GANTRY_EXTRA_ARGS:-}

rc=0
echo "== PyMySQL $PYMYSQL_VERSION directly against the primary (127.0.0.1:$PRIMARY_PORT)"
"$VENV/bin/python" "$HERE/check.py" 127.0.0.1 "$PRIMARY_PORT" app app_pw test || {
    echo "pymysql: a check failed directly against MariaDB: the check itself is wrong"
    rc=1
}
echo "== PyMySQL $PYMYSQL_VERSION through Gantry (127.0.0.1:$GANTRY_PORT)"
"$VENV/bin/python" "$HERE/check.py" 127.0.0.1 "$GANTRY_PORT" app app_pw test || {
    echo "pymysql: a check failed through Gantry; last lines of its log:"
    tail -n 40 "$DRV_GANTRY_LOG"
    rc=1
}
exit "$rc"
