#!/usr/bin/env bash
# Crash drills of Gantry's built-in failover (issue 12): N times, kill -9 the
# primary under a continuous write load through Gantry, measure the write
# outage (the longest gap between two acknowledged writes), restart the old
# primary (it rejoins as a replica) and repeat, each time with whichever
# server is primary. Prints each drill's outage, the median and the maximum,
# and whether any acknowledged write was lost. Not a CI test.
#
#   bench/failover.sh [--drills 10] [--fast] [--no-semi-sync] [--no-save]
#
# Gantry runs with failover = auto, the default health timings
# (health-interval-ms 500, probe-timeout-ms 1000, down-after-milliseconds
# 1500; --fast: 200 / 300 / 1000) and failover-block-ms 1000; the MariaDB
# topology (primary + 2 replicas, GTID) uses semi-synchronous replication
# unless --no-semi-sync. Environment: GANTRY_BIN (a gantry binary to use
# instead of building one), BENCH_DIR (work directory), GANTRY_LOG_LEVEL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DRILLS=10 SEMI=1 SAVE=1 TIMINGS=()
while (($#)); do
    case "$1" in
        --drills) DRILLS="$2"; shift ;;
        --drills=*) DRILLS="${1#*=}" ;;
        --no-semi-sync) SEMI=0 ;;
        --fast) TIMINGS=(--health-interval-ms 200 --probe-timeout-ms 300 --down-after-milliseconds 1000) ;;
        --no-save) SAVE=0 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "failover.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "failover: $*" >&2; }
die() { echo "failover: error: $*" >&2; exit 1; }
source "$ROOT/bench/lib.sh"

WORK="${BENCH_DIR:-$(mktemp -d /tmp/gantry-failover.XXXXXX)}"
mkdir -p "$WORK"
TOPO="$WORK/topo"
GANTRY_PID="" WRITER_PID=""
cleanup() {
    local rc=$?
    stop_pid "$WRITER_PID"
    stop_pid "$GANTRY_PID"
    finish_work "$rc" "$([[ -n ${BENCH_DIR:-} ]] && echo 1 || echo 0)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/install-deps.sh
[[ -n $MARIADB ]] || MARIADB="$(command -v mariadb || command -v mysql)"
need_gantry
need_pymysql

declare -A PORT_OF NAME_AT
for name in primary replica1 replica2; do
    PORT_OF[$name]="$(free_port)"
    NAME_AT[${PORT_OF[$name]}]=$name
done
log "starting the topology in $TOPO"
scripts/topology.sh up --dir "$TOPO" --ports "${PORT_OF[primary]},${PORT_OF[replica1]},${PORT_OF[replica2]}" --owner-pid $$ >&2

# Semi-sync on every server, both roles: whichever is primary waits for a
# replica to have each commit before acknowledging it.
semi_sync() {   # PORT
    ((SEMI)) || return 0
    sql_at "$1" admin admin_pw "SET GLOBAL rpl_semi_sync_master_enabled = ON,
        rpl_semi_sync_master_timeout = 10000, rpl_semi_sync_slave_enabled = ON" >/dev/null
    if [[ -n "$(sql_at "$1" admin admin_pw "SHOW SLAVE STATUS")" ]]; then
        sql_at "$1" admin admin_pw "STOP SLAVE IO_THREAD; START SLAVE IO_THREAD" >/dev/null
    fi
}
for name in primary replica1 replica2; do semi_sync "${PORT_OF[$name]}"; done
TABLE="drill"
sql_at "${PORT_OF[primary]}" admin admin_pw "CREATE TABLE test.$TABLE (id BIGINT PRIMARY KEY)"

P_PROXY="$(free_port)" P_ADMIN="$(free_port)"
"$GANTRY_BIN" --proxy-address "127.0.0.1:$P_PROXY" --admin-address "127.0.0.1:$P_ADMIN" \
    --admin-username admin --admin-password admin_pw \
    --proxy-backend-addresses "127.0.0.1:${PORT_OF[primary]}" \
    --proxy-read-only-backend-addresses "127.0.0.1:${PORT_OF[replica1]},127.0.0.1:${PORT_OF[replica2]}" \
    --pwds app:app_pw --monitor-username monitor --monitor-password monitor_pw \
    --replication-username repl --replication-password repl_pw \
    --failover auto ${TIMINGS[@]+"${TIMINGS[@]}"} --failover-block-ms 1000 --consistency eventual \
    --log-level "${GANTRY_LOG_LEVEL:-warn}" >>"$WORK/gantry.log" 2>&1 &
GANTRY_PID=$!
deadline=$((SECONDS + 30))
until sql_at "$P_PROXY" app app_pw "SELECT 1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "gantry did not answer within 30 s"
    sleep 0.3
done
sleep 2   # heartbeat periods set on the replicas, semi-sync reconnected
for name in replica1 replica2; do semi_sync "${PORT_OF[$name]}"; done

# Columns of SELECT * FROM backends: ndx, address, state, type, weight, reason.
backends() { sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM backends"; }
primary_port() { backends | awk -F'\t' '$4 == "rw" && $3 == "up" { split($2, a, ":"); print a[2] }'; }
diverged() {   # PORT: left out as diverged
    backends | awk -F'\t' -v p="127.0.0.1:$1" '$2 == p && $6 ~ /diverged/ { ok = 1 } END { exit !ok }'
}
serving() {   # PORT: up and ro
    backends | awk -F'\t' -v p="127.0.0.1:$1" '$2 == p && $3 == "up" && $4 == "ro" { ok = 1 } END { exit !ok }'
}

ACKED="$WORK/acked" GAPS="$WORK/gaps"
: >"$ACKED"; : >"$GAPS"
"$PYTHON" bench/failover-writer.py "$P_PROXY" "test.$TABLE" "$ACKED" "$GAPS" &
WRITER_PID=$!
sleep 2
[[ -s $ACKED ]] || die "no write acknowledged through Gantry"

OUTAGES=() RESEEDED=0
for ((d = 1; d <= DRILLS; d++)); do
    port="$(primary_port)"
    [[ -n $port ]] || die "no primary up before drill $d"
    name="${NAME_AT[$port]}"
    gaps_before="$(wc -l <"$GAPS")"
    scripts/topology.sh kill "$name" --dir "$TOPO" >&2
    deadline=$((SECONDS + 30))
    until (($(wc -l <"$GAPS") > gaps_before)); do
        ((SECONDS < deadline)) || die "drill $d: writes did not come back within 30 s"
        sleep 0.1
    done
    ms="$(tail -n 1 "$GAPS" | awk '{print $2}')"
    OUTAGES+=("$ms")
    log "drill $d: killed $name (port $port); write outage $ms ms; new primary port $(primary_port)"
    scripts/topology.sh start "$name" --dir "$TOPO" >&2
    deadline=$((SECONDS + 60))
    until serving "$port"; do
        ((SECONDS < deadline)) || die "drill $d: $name did not rejoin within 60 s"
        if diverged "$port"; then
            # The crash left it a transaction no replica received (never
            # acknowledged): re-seed it at the position the new primary was
            # promoted from, as an operator would, and let Gantry rejoin it.
            pos="$(sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM failovers" | tail -n 1 | cut -f6)"
            log "drill $d: $name diverged (unacknowledged transaction); re-seeded at $pos"
            sql_at "$port" admin admin_pw "STOP SLAVE; RESET SLAVE ALL; RESET MASTER;
                SET GLOBAL gtid_slave_pos = '$pos'" >/dev/null
            RESEEDED=$((RESEEDED + 1))
            sleep 1
        fi
        sleep 0.3
    done
    semi_sync "$port"
    sleep 1.5   # past failover-block-ms
    # Each drill starts from a healthy topology: both replicas follow the
    # primary and serve reads (a repointed replica's STOP SLAVE can take
    # seconds while its receiver still waits on the dead primary).
    deadline=$((SECONDS + 60))
    until (($(backends | awk -F'\t' '$3 == "up" && $4 == "ro"' | wc -l) == 2)); do
        ((SECONDS < deadline)) || die "drill $d: the replicas did not all follow the new primary within 60 s"
        sleep 0.3
    done
done
stop_pid "$WRITER_PID"; WRITER_PID=""

final="$(primary_port)"
acked_n="$(wc -l <"$ACKED")"
sql_at "$final" admin admin_pw "SELECT id FROM test.$TABLE" | LC_ALL=C sort >"$WORK/present"
lost="$(LC_ALL=C sort "$ACKED" | LC_ALL=C comm -23 - "$WORK/present" | wc -l)"
sorted="$(printf '%s\n' "${OUTAGES[@]}" | sort -n)"
median="$(echo "$sorted" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }')"
max="$(echo "$sorted" | tail -n 1)"
report="$(
    echo "# Gantry failover drills: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "\`bench/failover.sh --drills $DRILLS$( ((${#TIMINGS[@]})) && echo ' --fast')$( ((SEMI)) || echo ' --no-semi-sync')\` — $(nproc) cores, gantry $("$GANTRY_BIN" --version 2>/dev/null | awk '{print $2}')"
    echo
    echo "kill -9 of the primary under one client inserting sequential ids (autocommit);"
    echo "outage = the longest gap between two acknowledged writes. Semi-sync: $( ((SEMI)) && echo on || echo off)."
    echo
    echo "| drill | write outage (ms) |"
    echo "|---|---|"
    for i in "${!OUTAGES[@]}"; do echo "| $((i + 1)) | ${OUTAGES[$i]} |"; done
    echo
    echo "* median **$median ms**, max **$max ms**"
    echo "* acknowledged writes: $acked_n, lost: **$lost**"
    echo "* old primaries left out as diverged (a transaction in their binlog that no replica received, never acknowledged) and re-seeded: $RESEEDED"
)"
echo "$report"
if ((SAVE)); then
    out="bench/results/failover-$(date -u +%Y%m%d-%H%M%S).md"
    echo "$report" >"$out"
    log "written to $out"
fi
