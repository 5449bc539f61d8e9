#!/usr/bin/env bash
# Gantry soak benchmark (issue 11, item 14): connection churn plus steady
# sysbench load for N minutes, sampling Gantry's RSS, open fds, sessions and
# backend connections, then saying whether RSS plateaued. Not a CI test.
#
#   bench/soak.sh [--minutes 30] [options]
#
# It builds Gantry (release), starts its own MariaDB primary + 2 replicas
# on free loopback ports in a private directory (as bench/run.sh does),
# prepares sysbench tables, starts Gantry, then runs at once:
#   * sysbench oltp_read_write, rate-limited (steady load);
#   * the churn client (bench/soak-churn.py, PyMySQL): rounds of SESSIONS
#     sessions that all connect, run a few queries each (a point select, a
#     range read, a short write transaction) and leave.
# Every INTERVAL seconds it prints one line (RSS, fds, sessions, backend
# connections from the admin `pools` table, churn rounds done); at the end
# it compares the RSS slope of the last third of the run with the first
# third's. Everything it started is stopped on exit.
#
# Options:
#   --minutes M          length of the run (default 30; 2 for a quick try)
#   --sessions N         sessions per churn round (default 2000)
#   --churn-threads N    client threads of the churn (default 20)
#   --sysbench-threads N threads of the steady load (default 4)
#   --sysbench-rate N    its transactions per second (default 50; 0 = as fast
#                        as it can, which starves the churn on 2 cores)
#   --interval S         seconds between samples (default 30)
#   --malloc-arena-max N run Gantry with MALLOC_ARENA_MAX=N (glibc arenas)
#   --heaptrack          run Gantry under heaptrack (slow; the profile is
#                        kept in the work directory)
#   --gantry-arg ARG     extra Gantry option (repeatable)
#   --no-save            print only; do not write bench/results/
#   --keep               keep the work directory (logs) after the run
#
# Environment: BENCH_DIR (work directory, default a fresh /tmp/gantry-soak.*),
# GANTRY_BIN (a gantry binary to use instead of building one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

MINUTES=30 SESSIONS=2000 CHURN_THREADS=20 SB_THREADS=4 SB_RATE=50 INTERVAL=30
ARENA_MAX="" HEAPTRACK=0 SAVE=1 KEEP=0
GANTRY_EXTRA=()
INVOCATION="bench/soak.sh${*:+ $*}"
usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
    arg="$1"; shift
    val=""
    if [[ $arg == --*=* ]]; then val="${arg#*=}"; arg="${arg%%=*}"; fi
    case "$arg" in
        --heaptrack) HEAPTRACK=1 ;;
        --no-save) SAVE=0 ;;
        --keep) KEEP=1 ;;
        --minutes|--sessions|--churn-threads|--sysbench-threads|--sysbench-rate|--interval|--malloc-arena-max|--gantry-arg)
            if [[ -z $val ]]; then (($#)) || usage; val="$1"; shift; fi
            case "$arg" in
                --minutes) MINUTES="$val" ;;
                --sessions) SESSIONS="$val" ;;
                --churn-threads) CHURN_THREADS="$val" ;;
                --sysbench-threads) SB_THREADS="$val" ;;
                --sysbench-rate) SB_RATE="$val" ;;
                --interval) INTERVAL="$val" ;;
                --malloc-arena-max) ARENA_MAX="$val" ;;
                --gantry-arg) GANTRY_EXTRA+=("$val") ;;
            esac ;;
        -h|--help) usage ;;
        *) echo "soak.sh: unknown option $arg" >&2; usage ;;
    esac
done

log() { echo "soak: $*" >&2; }
die() { echo "soak: error: $*" >&2; exit 1; }

source "$ROOT/bench/lib.sh"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ------------------------------------------------------------ lifecycle --
WORK="${BENCH_DIR:-$(mktemp -d /tmp/gantry-soak.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd -P)"
TOPO="$WORK/topo"
GANTRY_PID="" SB_PID="" CHURN_PID="" LAUNCHER_PID=""
cleanup() {
    local rc=$?
    stop_pid "$CHURN_PID"
    stop_pid "$SB_PID"
    stop_pid "$GANTRY_PID"
    if [[ -n ${LAUNCHER_PID:-} && $LAUNCHER_PID != "$GANTRY_PID" ]]; then
        wait "$LAUNCHER_PID" 2>/dev/null || true   # heaptrack writes its profile
    fi
    finish_work "$rc" "$((KEEP || HEAPTRACK))"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

raise_nofile

log "installing missing dependencies (MariaDB, sysbench) if any"
scripts/install-deps.sh
[[ -n $MARIADB ]] || MARIADB="$(command -v mariadb || command -v mysql)"

need_gantry

need_pymysql
# (drv_init's EXIT trap removed only its own temp dir.)

P_PRIMARY="$(free_port)" P_R1="$(free_port)" P_R2="$(free_port)"
log "starting the topology in $TOPO on ports $P_PRIMARY,$P_R1,$P_R2"
scripts/topology.sh up --dir "$TOPO" --ports "$P_PRIMARY,$P_R1,$P_R2" --owner-pid $$ >&2

SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password=app_pw
    --mysql-db=sbtest --tables=2 --table-size=10000)
log "preparing sysbench tables (2 x 10000 rows)"
sysbench oltp_read_write "${SB_COMMON[@]}" --mysql-port="$P_PRIMARY" --threads=2 prepare >"$WORK/prepare.log" 2>&1 \
    || { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }
pos="$(sql_at "$P_PRIMARY" admin admin_pw "SELECT @@gtid_current_pos")"
for port in "$P_R1" "$P_R2"; do
    [[ "$(sql_at "$port" admin admin_pw "SELECT MASTER_GTID_WAIT('$pos', 60)")" == 0 ]] \
        || die "replica on port $port did not catch up"
done

P_PROXY="$(free_port)" P_ADMIN="$(free_port)"
GANTRY_ARGS=(--proxy-address "127.0.0.1:$P_PROXY" --admin-address "127.0.0.1:$P_ADMIN"
    --admin-username admin --admin-password admin_pw
    --proxy-backend-addresses "127.0.0.1:$P_PRIMARY"
    --proxy-read-only-backend-addresses "127.0.0.1:$P_R1,127.0.0.1:$P_R2"
    --pwds app:app_pw --monitor-username monitor --monitor-password monitor_pw
    --log-level warn "${GANTRY_EXTRA[@]}")
GANTRY_ENV=()
[[ -n $ARENA_MAX ]] && GANTRY_ENV+=("MALLOC_ARENA_MAX=$ARENA_MAX")
LAUNCH=()
if ((HEAPTRACK)); then
    command -v heaptrack >/dev/null || die "heaptrack is not installed (apt-get install heaptrack)"
    LAUNCH=(heaptrack -o "$WORK/heaptrack.gantry")
fi
env "${GANTRY_ENV[@]}" "${LAUNCH[@]}" "$GANTRY_BIN" "${GANTRY_ARGS[@]}" >>"$WORK/gantry.log" 2>&1 &
LAUNCHER_PID=$!
GANTRY_PID=$LAUNCHER_PID
deadline=$((SECONDS + 60))
until sql_at "$P_PROXY" app app_pw "SELECT 1" >/dev/null 2>&1; do
    kill -0 "$LAUNCHER_PID" 2>/dev/null || { tail -20 "$WORK/gantry.log" >&2; die "gantry exited"; }
    ((SECONDS < deadline)) || die "gantry did not answer within 60 s"
    sleep 0.3
done
if ((HEAPTRACK)); then   # heaptrack is a shell script: measure the gantry under it
    GANTRY_PID="$(pgrep -n -P "$LAUNCHER_PID" -x gantry || pgrep -n -x gantry -P "$(pgrep -n -P "$LAUNCHER_PID")")"
fi
log "gantry up: pid $GANTRY_PID, proxy $P_PROXY, admin $P_ADMIN${ARENA_MAX:+, MALLOC_ARENA_MAX=$ARENA_MAX}"

# ------------------------------------------------------------ sampling --
admin_count() { sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM $1" 2>/dev/null | wc -l; }
pool_sums() {   # "open idle in_use" over all backends
    sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM pools" 2>/dev/null \
        | awk -F'\t' '{ o += $4; i += $5; u += $6 } END { printf "%d %d %d\n", o, i, u }'
}
SAMPLES="$WORK/samples.tsv"
printf 'min\trss_kib\tfds\tsessions\tpools\tbackend_open\tbackend_idle\tbackend_in_use\trounds\n' >"$SAMPLES"
START=$SECONDS
sample() {
    local t rss fds sess npools open idle inuse rounds
    t="$(awk -v s=$((SECONDS - START)) 'BEGIN { printf "%.1f", s / 60 }')"
    rss="$(rss_kib "$GANTRY_PID")"
    fds="$(find "/proc/$GANTRY_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)"
    sess="$(admin_count sessions)"
    npools="$(sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM pools" 2>/dev/null | awk -F'\t' '{ p += $3 } END { print p + 0 }')"
    read -r open idle inuse <<<"$(pool_sums)"
    rounds="$(grep -c '^round' "$WORK/churn.log" 2>/dev/null || true)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rss" "$fds" "$sess" "$npools" "$open" "$idle" "$inuse" "${rounds:-0}" >>"$SAMPLES"
    printf '%6s min  RSS %7.1f MiB  fds %5s  sessions %5s  pools %3s  backend open %4s (idle %4s, in use %3s)  churn rounds %s\n' \
        "$t" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$fds" "$sess" "$npools" "$open" "$idle" "$inuse" "${rounds:-0}"
}

log "baseline"
sample
RUN_S=$((MINUTES * 60))
sysbench oltp_read_write "${SB_COMMON[@]}" --mysql-port="$P_PROXY" --threads="$SB_THREADS" \
    --rate="$SB_RATE" --time="$RUN_S" --report-interval=0 --mysql-ignore-errors=all run \
    >"$WORK/sysbench.log" 2>&1 &
SB_PID=$!
"$PYTHON" bench/soak-churn.py --port "$P_PROXY" --sessions "$SESSIONS" --threads "$CHURN_THREADS" \
    --seconds "$RUN_S" >"$WORK/churn.log" 2>&1 &
CHURN_PID=$!
log "running ${MINUTES} min: sysbench ($SB_THREADS threads, $SB_RATE tps) + churn ($SESSIONS sessions a round, $CHURN_THREADS threads)"
while ((SECONDS - START < RUN_S)); do
    sleep "$INTERVAL"
    kill -0 "$GANTRY_PID" 2>/dev/null || { tail -20 "$WORK/gantry.log" >&2; die "gantry died"; }
    sample
done
wait "$CHURN_PID" || log "the churn client failed: $(tail -3 "$WORK/churn.log")"
CHURN_PID=""
wait "$SB_PID" || log "sysbench failed: $(tail -3 "$WORK/sysbench.log")"
SB_PID=""
sleep 3
log "after the load (3 s idle)"
sample

# ------------------------------------------------------------- verdict --
# Least-squares slope of RSS (MiB/min) over the first and the last third
# of the samples taken under load (the baseline and the idle sample excluded).
slopes="$(awk -F'\t' 'NR > 2 { n++; t[n] = $1; r[n] = $2 / 1024 }
    function slope(a, b,   i, k, st, sr, stt, str) {
        k = 0; st = sr = stt = str = 0
        for (i = a; i <= b; i++) { k++; st += t[i]; sr += r[i]; stt += t[i] * t[i]; str += t[i] * r[i] }
        if (k < 2 || k * stt == st * st) return "nan"
        return (k * str - st * sr) / (k * stt - st * st)
    }
    END {
        n--   # the idle sample after the load
        third = int(n / 3); if (third < 2) third = 2
        printf "%s %s %s %s\n", slope(1, third), slope(n - third + 1, n), r[1], r[n]
    }' "$SAMPLES")"
read -r SLOPE_FIRST SLOPE_LAST RSS_FIRST RSS_LAST <<<"$slopes"
ROUNDS="$(grep -c '^round' "$WORK/churn.log" || true)"
CHURN_ERRORS="$(awk '/^round/ { e += $NF } END { print e + 0 }' "$WORK/churn.log")"
SB_LINE="$(grep -E '^ +(queries|transactions|ignored errors):' "$WORK/sysbench.log" | tr -s ' ' | paste -sd';' -)"
VERDICT="$(awk -v f="$SLOPE_FIRST" -v l="$SLOPE_LAST" 'BEGIN {
    if (f == "nan" || l == "nan") print "too few samples"
    else if (l < 0.05 || l < f / 4) print "plateaued"
    else print "still growing" }')"
BASE_RSS="$(awk -F'\t' 'NR == 2 { printf "%.1f", $2 / 1024 }' "$SAMPLES")"
END_RSS="$(awk -F'\t' 'END { printf "%.1f", $2 / 1024 }' "$SAMPLES")"

REPORT="$(cat <<EOF
# Gantry soak: $(date -u '+%Y-%m-%d %H:%M UTC')

\`$INVOCATION\` — $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $("$GANTRY_BIN" --version 2>/dev/null || echo gantry)${ARENA_MAX:+, MALLOC_ARENA_MAX=$ARENA_MAX}${GANTRY_EXTRA[*]:+, Gantry options: ${GANTRY_EXTRA[*]}}

Load: sysbench oltp_read_write, $SB_THREADS threads at $SB_RATE tps; churn rounds of $SESSIONS sessions
($CHURN_THREADS client threads; each session connects, runs a point select, a range read and a short write
transaction, and quits; the whole round connects before anyone leaves).

| min | RSS MiB | fds | sessions | pools | backend open | idle | in use | churn rounds |
|---|---|---|---|---|---|---|---|---|
$(awk -F'\t' 'NR > 1 { printf "| %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2 / 1024, $3, $4, $5, $6, $7, $8, $9 }' "$SAMPLES")

* RSS: $BASE_RSS MiB at start, $END_RSS MiB idle after the load.
* RSS slope under load: first third $(printf '%.3f' "$SLOPE_FIRST") MiB/min, last third $(printf '%.3f' "$SLOPE_LAST") MiB/min → **$VERDICT**.
* Churn: $ROUNDS rounds of $SESSIONS sessions, $CHURN_ERRORS failed sessions.
* sysbench: $SB_LINE
EOF
)"
echo
echo "$REPORT"
if ((SAVE)); then
    STAMP="$(date -u +%Y%m%d-%H%M%S)"
    mkdir -p bench/results
    echo "$REPORT" >"bench/results/soak-$STAMP.md"
    log "written to bench/results/soak-$STAMP.md"
fi
