#!/usr/bin/env bash
# mysql2 (node) through Gantry: runs check.js (PASS/FAIL per behaviour)
# first directly against the MariaDB primary (a baseline: a check failing
# there is a broken check, not a Gantry bug) and then through Gantry.
#
#   drivers/mysql2/run.sh [--replicas]
#
# Starts its own MariaDB topology and Gantry (primary only, replica
# auto-discovery off; --replicas adds both replicas; GANTRY_EXTRA_ARGS adds
# gantry options, e.g. "--consistency read-your-writes"). mysql2 is installed
# into drivers/mysql2/node_modules from package.json / package-lock.json.
# Exits non-zero if any check fails.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

REPLICAS=()
for arg in "$@"; do
    case $arg in
        --replicas) REPLICAS=(--replicas) ;;
        *) echo "usage: $0 [--replicas]" >&2; exit 2 ;;
    esac
done

drv_init mysql2
drv_require node npm
drv_mysql2_install
want="$MYSQL2_VERSION"
drv_topology_up topology
# shellcheck disable=SC2086  # GANTRY_EXTRA_ARGS is word-split on purpose
drv_gantry_up "${REPLICAS[@]}" "app:app_pw,admin:admin_pw" ${GANTRY_EXTRA_ARGS:-}

rc=0
echo "== mysql2 $want directly against the primary (127.0.0.1:$PRIMARY_PORT)"
node "$HERE/check.js" 127.0.0.1 "$PRIMARY_PORT" app app_pw test || {
    echo "mysql2: a check failed directly against MariaDB: the check itself is wrong"
    rc=1
}
echo "== mysql2 $want through Gantry (127.0.0.1:$GANTRY_PORT)"
node "$HERE/check.js" 127.0.0.1 "$GANTRY_PORT" app app_pw test || {
    echo "mysql2: a check failed through Gantry; last lines of its log:"
    tail -n 40 "$DRV_GANTRY_LOG"
    rc=1
}
exit "$rc"
