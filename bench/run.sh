#!/usr/bin/env bash
# Gantry benchmark harness (issue 6): sysbench direct vs. through Gantry,
# side by side in one run, plus the connection-scale test and the criterion
# micro-benchmarks. One command:
#
#   bench/run.sh [--quick] [options]
#
# It builds Gantry (release), starts its own MariaDB primary + 2 replicas on
# free loopback ports in a private directory, prepares sysbench tables,
# starts Gantry, and for every (workload, threads) runs sysbench directly
# against the backend and through Gantry alternately (A B A B ...), then
# prints a Markdown table of medians and writes it to bench/results/latest.md
# and a dated copy. Everything it started is stopped on exit.
#
# Options:
#   --quick              short runs (5 s), threads 1 and 8, 2 rounds, no
#                        criterion, 2,000 connections in the scale test
#   --time S             seconds per sysbench run (default 15)
#   --rounds N           A/B rounds per (workload, threads) (default 3)
#   --threads LIST       comma-separated thread counts (default 1,8,64)
#   --workloads LIST     comma-separated subset of: point_select, read_only,
#                        read_write, read_only_ryw, read_write_ryw
#                        (default: all)
#   --ryw-threads LIST   thread counts for the *_ryw rows (default 8)
#   --connections N      idle connections for the scale test (default 10000;
#                        0 skips it)
#   --criterion / --no-criterion   run the criterion benches (default: on,
#                        off with --quick)
#   --profile            also profile Gantry with perf during an 8-thread
#                        point-select run (bench/results/profile-*.md)
#   --event-threads N    Gantry's --event-threads (default: Gantry's default)
#   --gantry-arg ARG     extra Gantry option (repeatable), e.g.
#                        --gantry-arg=--pool-max-size=64
#   --no-save            print only; do not write bench/results/
#   --keep               keep the topology directory (logs) after the run
#
# Environment: BENCH_DIR (work directory, default a fresh /tmp/gantry-bench.*).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

# ------------------------------------------------------------- options --
QUICK=0 TIME="" ROUNDS="" THREADS="" WORKLOADS="" RYW_THREADS="8"
CONNECTIONS="" CRITERION="" PROFILE=0 EVENT_THREADS="" SAVE=1 KEEP=0
GANTRY_EXTRA=()
INVOCATION="bench/run.sh${*:+ $*}"
usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
    arg="$1"; shift
    val=""
    if [[ $arg == --*=* ]]; then val="${arg#*=}"; arg="${arg%%=*}"; fi
    case "$arg" in
        --quick) QUICK=1 ;;
        --criterion) CRITERION=1 ;;
        --no-criterion) CRITERION=0 ;;
        --profile) PROFILE=1 ;;
        --no-save) SAVE=0 ;;
        --keep) KEEP=1 ;;
        --time|--rounds|--threads|--workloads|--ryw-threads|--connections|--event-threads|--gantry-arg)
            if [[ -z $val ]]; then (($#)) || usage; val="$1"; shift; fi
            case "$arg" in
                --time) TIME="$val" ;;
                --rounds) ROUNDS="$val" ;;
                --threads) THREADS="$val" ;;
                --workloads) WORKLOADS="$val" ;;
                --ryw-threads) RYW_THREADS="$val" ;;
                --connections) CONNECTIONS="$val" ;;
                --event-threads) EVENT_THREADS="$val" ;;
                --gantry-arg) GANTRY_EXTRA+=("$val") ;;
            esac ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown option $arg" >&2; usage ;;
    esac
done
if ((QUICK)); then
    : "${TIME:=5}" "${ROUNDS:=2}" "${THREADS:=1,8}" "${CONNECTIONS:=2000}" "${CRITERION:=0}"
else
    : "${TIME:=15}" "${ROUNDS:=3}" "${THREADS:=1,8,64}" "${CONNECTIONS:=10000}" "${CRITERION:=1}"
fi
: "${WORKLOADS:=point_select,read_only,read_write,read_only_ryw,read_write_ryw}"
IFS=, read -ra THREAD_LIST <<<"$THREADS"
IFS=, read -ra RYW_THREAD_LIST <<<"$RYW_THREADS"
IFS=, read -ra WORKLOAD_LIST <<<"$WORKLOADS"

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# ------------------------------------------------------------ workloads --
# name -> sysbench test and options, the direct target, the Gantry instance.
declare -A WL_TEST WL_OPTS WL_DIRECT WL_GANTRY WL_TARGET
WL_TEST[point_select]=oltp_point_select;  WL_OPTS[point_select]="--db-ps-mode=disable"
WL_DIRECT[point_select]=replica;          WL_GANTRY[point_select]=eventual
WL_TEST[read_only]=oltp_read_only;        WL_OPTS[read_only]="--skip-trx=on"
WL_DIRECT[read_only]=replica;             WL_GANTRY[read_only]=eventual
WL_TEST[read_write]=oltp_read_write;      WL_OPTS[read_write]=""
WL_DIRECT[read_write]=primary;            WL_GANTRY[read_write]=eventual
WL_TEST[read_only_ryw]=oltp_read_only;    WL_OPTS[read_only_ryw]="--skip-trx=on"
WL_DIRECT[read_only_ryw]=replica;         WL_GANTRY[read_only_ryw]=read-your-writes
WL_TEST[read_write_ryw]=oltp_read_write;  WL_OPTS[read_write_ryw]=""
WL_DIRECT[read_write_ryw]=primary;        WL_GANTRY[read_write_ryw]=read-your-writes
# Issue 6 targets: "ratio:MIN" (Gantry/direct qps) at 8 threads.
WL_TARGET[point_select]="ratio:0.80"
WL_TARGET[read_only]="ratio:0.80"
WL_TARGET[read_write]="ratio:0.85"
for w in "${WORKLOAD_LIST[@]}"; do
    [[ -n ${WL_TEST[$w]:-} ]] || die "unknown workload '$w'"
done

TABLES=4 TABLE_SIZE=10000
CLK_TCK="$(getconf CLK_TCK)"
POOL_MAX_SIZE=256   # Gantry's default; overridden by a --gantry-arg
for a in "${GANTRY_EXTRA[@]}"; do
    if [[ $a == --pool-max-size=* ]]; then POOL_MAX_SIZE="${a#*=}"; fi
done

# ------------------------------------------------------------- helpers --

# free_port, sql_at, stop_pid.
source "$ROOT/bench/lib.sh"

# utime + stime of PID in clock ticks.
cpu_ticks() {
    local s
    s="$(cat "/proc/$1/stat")"
    s="${s##*) }"
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

median() {   # numbers on stdin -> median (mean of the middle two for even counts)
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ------------------------------------------------------------ lifecycle --
WORK="${BENCH_DIR:-$(mktemp -d /tmp/gantry-bench.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd -P)"
TOPO="$WORK/topo"
GANTRY_PID=""
stop_gantry() {
    [[ -n $GANTRY_PID ]] || return 0
    kill -TERM "$GANTRY_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$GANTRY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$GANTRY_PID" 2>/dev/null || true
    wait "$GANTRY_PID" 2>/dev/null || true
    GANTRY_PID=""
}
cleanup() {
    local rc=$?
    stop_gantry || true
    finish_work "$rc" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both Gantry and the scale-test client hold one fd per connection.
raise_nofile

log "installing missing dependencies (MariaDB, sysbench) if any"
scripts/install-deps.sh
[[ -n $MARIADB ]] || MARIADB="$(command -v mariadb || command -v mysql)"

log "building gantry (release)"
cargo build --release --locked --bin gantry >&2
GANTRY_BIN="$ROOT/target/release/gantry"
CONNSCALE_BIN="$ROOT/target/connscale/release/connscale"
if ((CONNECTIONS > 0)); then
    log "building bench/connscale (release)"
    cargo build --release --locked --manifest-path bench/connscale/Cargo.toml \
        --target-dir "$ROOT/target/connscale" >&2
fi

P_PRIMARY="$(free_port)" P_R1="$(free_port)" P_R2="$(free_port)"
log "starting the topology in $TOPO on ports $P_PRIMARY,$P_R1,$P_R2"
scripts/topology.sh up --dir "$TOPO" --ports "$P_PRIMARY,$P_R1,$P_R2" --owner-pid $$ >&2
declare -A PORT_OF=([primary]=$P_PRIMARY [replica]=$P_R1)

SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password=app_pw
    --mysql-db=sbtest "--tables=$TABLES" "--table-size=$TABLE_SIZE")

log "preparing sysbench tables ($TABLES x $TABLE_SIZE rows)"
sysbench oltp_read_write "${SB_COMMON[@]}" --mysql-port="$P_PRIMARY" --threads=2 prepare >"$WORK/prepare.log" 2>&1 \
    || { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }

wait_replicas() {
    local pos port r
    pos="$(sql_at "$P_PRIMARY" admin admin_pw "SELECT @@gtid_current_pos")"
    for port in "$P_R1" "$P_R2"; do
        r="$(sql_at "$port" admin admin_pw "SELECT MASTER_GTID_WAIT('$pos', 60)")"
        [[ $r == 0 ]] || die "replica on port $port did not reach $pos"
    done
}
wait_replicas

GANTRY_ARGS=()
P_PROXY="" P_ADMIN="" GANTRY_MODE=""
start_gantry() {   # CONSISTENCY
    GANTRY_MODE="$1"
    P_PROXY="$(free_port)" P_ADMIN="$(free_port)"
    GANTRY_ARGS=(--proxy-address "127.0.0.1:$P_PROXY" --admin-address "127.0.0.1:$P_ADMIN"
        --admin-username admin --admin-password admin_pw
        --proxy-backend-addresses "127.0.0.1:$P_PRIMARY"
        --proxy-read-only-backend-addresses "127.0.0.1:$P_R1,127.0.0.1:$P_R2"
        --pwds app:app_pw --monitor-username monitor --monitor-password monitor_pw
        --consistency "$GANTRY_MODE" --log-level warn)
    if [[ -n $EVENT_THREADS ]]; then GANTRY_ARGS+=(--event-threads "$EVENT_THREADS"); fi
    GANTRY_ARGS+=("${GANTRY_EXTRA[@]}")
    "$GANTRY_BIN" "${GANTRY_ARGS[@]}" >>"$WORK/gantry.log" 2>&1 &
    GANTRY_PID=$!
    local deadline=$((SECONDS + 30)) up
    while ((SECONDS < deadline)); do
        kill -0 "$GANTRY_PID" 2>/dev/null || { tail -20 "$WORK/gantry.log" >&2; die "gantry exited"; }
        up="$(sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM backends" 2>/dev/null \
            | awk -F'\t' '$3 == "up"' | wc -l)" || up=0
        if ((up >= 3)) && sql_at "$P_PROXY" app app_pw "SELECT 1" >/dev/null 2>&1; then
            log "gantry ($GANTRY_MODE) up: pid $GANTRY_PID, proxy $P_PROXY, admin $P_ADMIN"
            return 0
        fi
        sleep 0.3
    done
    sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM backends" >&2 || true
    die "gantry did not report 3 backends up within 30 s"
}

# ---------------------------------------------------------- sysbench runs --
RAW="$WORK/raw.tsv"   # one line per run
printf 'workload\tthreads\tround\tside\tqps\ttps\tp95_us\tavg_ms\terrors\tgantry_cpu_s\tqueries\tgantry_rss_kib\tsysbench_cpu_s\tservers_cpu_s\n' >"$RAW"

# Runs sysbench; prints "qps tps p95_us avg_ms errors queries" (p95 from the
# histogram at 1 µs resolution; sysbench's own figure has 10 µs).
run_sysbench() {   # WORKLOAD THREADS PORT SECONDS LOGFILE
    local w="$1" t="$2" port="$3" secs="$4" out="$5" rc=0 TIMEFORMAT='%3U %3S'
    # `time` also gives sysbench's own CPU seconds (user + system).
    # shellcheck disable=SC2086  # WL_OPTS holds several words
    { time sysbench "${WL_TEST[$w]}" "${SB_COMMON[@]}" ${WL_OPTS[$w]} --mysql-port="$port" \
        --threads="$t" --time="$secs" --report-interval=0 --histogram=on --percentile=95 \
        run >"$out" 2>&1 || rc=$?; } 2>"$out.cpu"
    if ((rc != 0)); then
        log "sysbench failed (port $port, $w, $t threads); last lines of $out:"
        tail -5 "$out" >&2
        echo "nan nan nan nan nan nan nan"
        return 0
    fi
    awk -v cpu="$(awk '{ print $1 + $2 }' "$out.cpu")" '
        /^ +queries:/ { q = $2; qps = $3; sub(/^\(/, "", qps) }
        /^ +transactions:/ { tps = $3; sub(/^\(/, "", tps) }
        /^ +ignored errors:/ { err = $3 }
        /^ +avg:/ { avg = $2 }
        /^ +95th percentile:/ { p95s = $3 }
        /^ +[0-9.]+ \|[* ]*[0-9]+$/ { n++; val[n] = $1; cnt[n] = $NF; total += $NF }
        END {
            p95 = "nan"
            if (total > 0) {
                need = total * 0.95; c = 0
                for (i = 1; i <= n; i++) { c += cnt[i]; if (c >= need) { p95 = val[i] * 1000; break } }
            } else if (p95s != "") p95 = p95s * 1000
            printf "%s %s %s %s %s %s %s\n", qps, tps, p95, avg, err, q, cpu
        }' "$out"
}

# utime + stime of the three mariadbd processes, in clock ticks.
servers_ticks() {
    local name pid sum=0
    for name in primary replica1 replica2; do
        pid="$(cat "$TOPO/$name/mysqld.pid" 2>/dev/null)" || continue
        sum=$((sum + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}

# One measured run of workload W at T threads on SIDE (direct|gantry).
measure() {   # W T ROUND SIDE
    local w="$1" t="$2" r="$3" side="$4" port c0 c1 s0 s1 res rss="" cpu="" srv
    if [[ $side == direct ]]; then port="${PORT_OF[${WL_DIRECT[$w]}]}"; else port="$P_PROXY"; fi
    if [[ $side == gantry ]]; then c0="$(cpu_ticks "$GANTRY_PID")"; fi
    s0="$(servers_ticks)"
    res="$(run_sysbench "$w" "$t" "$port" "$TIME" "$WORK/sb-$w-$t-$r-$side.log")"
    s1="$(servers_ticks)"
    srv="$(awk -v a="$s0" -v b="$s1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')"
    if [[ $side == gantry ]]; then
        c1="$(cpu_ticks "$GANTRY_PID")"
        cpu="$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')"
        rss="$(rss_kib "$GANTRY_PID")"
    fi
    read -r qps tps p95 avg err q sbcpu <<<"$res"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$w" "$t" "$r" "$side" "$qps" "$tps" "$p95" "$avg" "$err" "$cpu" "$q" "$rss" "$sbcpu" "$srv" >>"$RAW"
    log "  $w t=$t round $r $side: $qps qps, p95 ${p95} µs${cpu:+, gantry cpu ${cpu}s}"
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$SECONDS

# Warm up the buffer pools and Gantry's pools (not measured).
log "warming up"
start_gantry eventual
run_sysbench read_only 4 "$P_R1" 3 "$WORK/warm-1.log" >/dev/null
run_sysbench read_only 4 "$P_PROXY" 3 "$WORK/warm-2.log" >/dev/null
run_sysbench read_write 4 "$P_PRIMARY" 3 "$WORK/warm-3.log" >/dev/null
wait_replicas

for mode in eventual read-your-writes; do
    rows=()
    for w in "${WORKLOAD_LIST[@]}"; do
        if [[ ${WL_GANTRY[$w]} == "$mode" ]]; then rows+=("$w"); fi
    done
    ((${#rows[@]})) || continue
    if [[ $GANTRY_MODE != "$mode" ]]; then stop_gantry; start_gantry "$mode"; fi
    for w in "${rows[@]}"; do
        if [[ $w == *_ryw ]]; then tl=("${RYW_THREAD_LIST[@]}"); else tl=("${THREAD_LIST[@]}"); fi
        for t in "${tl[@]}"; do
            for ((r = 1; r <= ROUNDS; r++)); do
                measure "$w" "$t" "$r" direct
                measure "$w" "$t" "$r" gantry
                # Writes must reach the replicas before the next read run.
                if [[ ${WL_TEST[$w]} == oltp_read_write ]]; then wait_replicas; fi
            done
        done
    done
done
GANTRY_STATS="$(sql_at "$P_ADMIN" admin admin_pw "SELECT * FROM stats" 2>&1 | sed 's/\t/ | /g')" || true
SB_SECS=$((SECONDS - T_START))

# -------------------------------------------------------- profile (opt) --
PROFILE_FILE=""
if ((PROFILE)); then
    command -v perf >/dev/null || die "--profile needs perf (apt-get install linux-perf)"
    if [[ $GANTRY_MODE != eventual ]]; then stop_gantry; start_gantry eventual; fi
    PROFILE_FILE="$WORK/profile.md"
    ptime=$((TIME < 4 ? 4 : TIME))

    # perf stat around one sysbench run: Gantry's system calls, context
    # switches and CPU per query. Prints "qps queries".
    perf_stat_run() {   # THREADS OUTFILE
        local events="task-clock,context-switches,raw_syscalls:sys_enter" sc res pid qps q
        for sc in sendto recvfrom write writev read readv epoll_wait futex; do
            events+=",syscalls:sys_enter_$sc"
        done
        perf stat -x, -e "$events" -p "$GANTRY_PID" -o "$2" -- sleep "$ptime" &
        pid=$!
        sleep 0.3
        res="$(run_sysbench point_select "$1" "$P_PROXY" "$((ptime - 1))" "$WORK/sb-profile-stat-$1.log")"
        wait "$pid" || true
        read -r qps _ _ _ _ q _ <<<"$res"
        echo "$qps $q"
    }
    log "profiling gantry, 1/2: system calls and context switches per query (perf stat, 1 and 8 threads)"
    read -r stat1_qps stat1_q <<<"$(perf_stat_run 1 "$WORK/perf-stat-1.csv")"
    read -r stat_qps stat_q <<<"$(perf_stat_run 8 "$WORK/perf-stat-8.csv")"

    log "profiling gantry, 2/2: where the CPU time goes (perf record, cpu-clock, dwarf call graphs)"
    perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$GANTRY_PID" -o "$WORK/perf.data" \
        -- sleep "$ptime" >"$WORK/perf-record.log" 2>&1 &
    perf_pid=$!
    sleep 0.3
    run_sysbench point_select 8 "$P_PROXY" "$((ptime - 1))" "$WORK/sb-profile.log" >/dev/null
    wait "$perf_pid" || true

    set +o pipefail   # head closes the pipes early
    {
        echo "# Profile of Gantry: oltp_point_select --db-ps-mode=disable, 8 threads"
        echo
        echo "From \`$INVOCATION\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs shared with sysbench and MariaDB."
        echo
        echo "## Per query (perf stat over ${ptime} s of point selects)"
        echo
        echo "1 thread: ${stat1_qps} qps, ${stat1_q} queries; 8 threads: ${stat_qps} qps, ${stat_q} queries."
        echo
        echo "| event | 1 thread: count | per query | 8 threads: count | per query |"
        echo "|---|---:|---:|---:|---:|"
        awk -F, -v q1="$stat1_q" -v q8="$stat_q" '
            $3 != "" && $1 ~ /^[0-9.]+$/ {
                k = $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
                if (FILENAME ~ /-1\.csv$/) c1[k] = $1; else c8[k] = $1
            }
            function cell(v, q, k) {
                if (v == "") return "| n/a | n/a "
                if (k == "task-clock") return sprintf("| %.0f ms | %.1f µs CPU ", v, (q > 0 ? v * 1000 / q : 0))
                return sprintf("| %d | %.2f ", v, (q > 0 ? v / q : 0))
            }
            END { for (i = 1; i <= n; i++) { k = order[i]
                printf "| %s %s%s|\n", (k == "task-clock" ? "Gantry CPU time (task-clock)" : k), cell(c1[k], q1, k), cell(c8[k], q8, k) } }
        ' "$WORK/perf-stat-1.csv" "$WORK/perf-stat-8.csv"
        echo
        echo "## Where Gantry's CPU time goes (perf record -e cpu-clock --call-graph dwarf)"
        echo
        echo "Samples sorted by what they were doing: the system call a kernel sample"
        echo "happened in, or the code a user-space sample was in."
        echo
        perf script -i "$WORK/perf.data" -F comm,tid,time,ip,sym,dso 2>/dev/null | awk -f bench/perf-categories.awk
        echo
        echo "## By shared object (self time)"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | sed '/^$/d' | head -10
        echo '```'
        echo
        echo "## Top symbols, self time"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null \
            | grep -v '^#' | sed '/^$/d' | head -40
        echo '```'
        echo
        echo "## Top symbols in the gantry binary (Gantry's code, tokio, sqlparser; self time)"
        echo
        echo '```'
        perf report -i "$WORK/perf.data" --no-children --dsos gantry --sort sym --stdio -g none 2>/dev/null \
            | grep -v '^#' | sed '/^$/d' | head -40
        echo '```'
        echo
        echo "## Gantry's functions including what they call (system calls too)"
        echo
        echo '```'
        echo "  total     self  function"
        perf report -i "$WORK/perf.data" --children --sort sym --stdio -g none --no-inline 2>/dev/null \
            | grep -v '^#' | grep -E '\] <?gantry::' | head -30
        echo '```'
    } >"$PROFILE_FILE"
    set -o pipefail
fi

# ------------------------------------------------------ connection scale --
CONNSCALE_OUT="" CONNSCALE_RC=""
if ((CONNECTIONS > 0)); then
    # A fresh Gantry, so its RSS baseline is not the benchmark's high-water mark.
    stop_gantry
    start_gantry eventual
    log "connection scale: $CONNECTIONS idle connections (fd limit $NOFILE)"
    CONNSCALE_OUT="$WORK/connscale.md"
    set +e
    "$CONNSCALE_BIN" --proxy "127.0.0.1:$P_PROXY" --gantry-pid "$GANTRY_PID" \
        --admin "127.0.0.1:$P_ADMIN" --connections "$CONNECTIONS" \
        --backends "127.0.0.1:$P_PRIMARY,127.0.0.1:$P_R1,127.0.0.1:$P_R2" \
        --pool-max-size "$POOL_MAX_SIZE" --summary "$WORK/connscale.env" >"$CONNSCALE_OUT"
    CONNSCALE_RC=$?
    set -e
    ((CONNSCALE_RC == 0)) || log "connscale reported a failed check (exit $CONNSCALE_RC)"
fi
stop_gantry

# ------------------------------------------------------- criterion (opt) --
CRIT_OUT=""
if ((CRITERION)); then
    log "running criterion benches (classify, codec)"
    crit_args=(--noplot)
    if ((QUICK)); then crit_args+=(--warm-up-time 0.3 --measurement-time 1); fi
    touch "$WORK/criterion.marker"
    sleep 1   # file times: results must be strictly newer than the marker
    cargo bench --locked --bench classify --bench codec -- "${crit_args[@]}" >"$WORK/criterion.log" 2>&1 \
        || { tail -20 "$WORK/criterion.log" >&2; die "cargo bench failed"; }
    CRIT_OUT="$WORK/criterion.md"
    bench/criterion-summary.sh "$ROOT/target/criterion" --newer "$WORK/criterion.marker" >"$CRIT_OUT"
fi

# ----------------------------------------------------------------- report --
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# Medians per (workload, threads, side) -> one table row per (workload, threads).
summary_rows() {
    local w t tl
    for w in "${WORKLOAD_LIST[@]}"; do
        if [[ $w == *_ryw ]]; then tl=("${RYW_THREAD_LIST[@]}"); else tl=("${THREAD_LIST[@]}"); fi
        for t in "${tl[@]}"; do
            col() {   # SIDE FIELD -> median
                awk -F'\t' -v w="$w" -v t="$t" -v s="$1" -v f="$2" \
                    '$1 == w && $2 == t && $4 == s && $f != "nan" && $f != "" { print $f }' "$RAW" | median
            }
            local dq gq dp gp cpu q rss err ratios
            dq="$(col direct 5)" gq="$(col gantry 5)"
            dp="$(col direct 7)" gp="$(col gantry 7)"
            rss="$(col gantry 12)"
            err="$(awk -F'\t' -v w="$w" -v t="$t" '$1 == w && $2 == t { e += $9 } END { print e + 0 }' "$RAW")"
            # CPU seconds per 1,000 queries: total Gantry CPU over total queries.
            cpu="$(awk -F'\t' -v w="$w" -v t="$t" '$1 == w && $2 == t && $4 == "gantry" { c += $10; q += $11 }
                END { if (q > 0) printf "%.4f", c * 1000 / q; else print "nan" }' "$RAW")"
            # Per-round ratios show the noise.
            ratios="$(awk -F'\t' -v w="$w" -v t="$t" '$1 == w && $2 == t { v[$3 "," $4] = $5; if ($3 > n) n = $3 }
                END { for (i = 1; i <= n; i++) { d = v[i ",direct"]; g = v[i ",gantry"]
                    printf "%s%s", (i > 1 ? " " : ""), (d > 0 ? sprintf("%.2f", g / d) : "nan") } }' "$RAW")"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$dq" "$gq" "$dp" "$gp" "$cpu" "$rss" "$err" "$ratios"
        done
    done
}
SUMMARY="$(summary_rows)"

machine_header() {
    local cpu mem kernel maria sb rustc commit dirty
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    mem="$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    kernel="$(uname -sr)"
    maria="$(sql_at "$P_PRIMARY" admin admin_pw "SELECT VERSION()" 2>/dev/null \
        || "$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version 2>/dev/null | awk '{print $3}')"
    sb="$(sysbench --version)"
    rustc="$(rustc --version)"
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    dirty=""
    if git status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
        dirty=" (with uncommitted changes)"
    fi
    cat <<EOF
# Gantry benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')

Produced by \`$INVOCATION\` (see [bench/README.md](../README.md)).
Gantry commit \`$commit\`$dirty.

| machine | |
|---|---|
| CPUs (nproc) | $(nproc) |
| CPU model | $cpu |
| memory | $mem |
| kernel | $kernel |
| MariaDB | $maria (primary + 2 GTID replicas on loopback, buffer pool 32 MiB) |
| sysbench | $sb ($TABLES tables × $TABLE_SIZE rows, $TIME s per run, $ROUNDS rounds A/B) |
| rustc | $rustc |
| load average at start / end | $LOAD_START / $LOAD_END |
| fd limit (Gantry and connscale) | $NOFILE |

Everything (sysbench, the three MariaDB servers, Gantry) shares the same
$(nproc) CPUs, as in issue 6. Figures move with whatever else runs on the box:
compare the ratios of one run, and look at the per-round ratios for the noise.

Gantry options: \`$(printf '%s ' "${GANTRY_ARGS[@]}" | sed -E 's/--consistency [a-z-]+ //; s/ $//') --consistency <eventual | read-your-writes>\`
EOF
}

fmt_us() { awk -v v="$1" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.0f", v }'; }

report() {
    machine_header
    cat <<'EOF'

## sysbench: direct vs. through Gantry (medians)

"Direct" is one replica for the read-only workloads and the primary for
oltp_read_write; Gantry spreads reads over both replicas. qps = queries per
second; p95 = 95th percentile of the event latency (one event = one query for
point_select, one transaction of 14 (read_only) or 18 (read_write) statements
otherwise), from sysbench's histogram. CPU = Gantry's user + system CPU
seconds per 1,000 queries (/proc/PID/stat); RSS = Gantry's VmRSS after the run.

| workload | threads | direct qps | Gantry qps | ratio | per-round ratios | direct p95 µs | Gantry p95 µs | Δ p95 µs | Gantry CPU s/1k q | Gantry RSS MiB | errors |
|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|
EOF
    local w t tl dq gq dp gp cpu rss err ratios ratio dp95 label
    while IFS=$'\t' read -r w t dq gq dp gp cpu rss err ratios; do
        ratio="$(awk -v d="$dq" -v g="$gq" 'BEGIN { if (d > 0 && g != "nan") printf "%.2f", g / d; else print "n/a" }')"
        dp95="$(awk -v d="$dp" -v g="$gp" 'BEGIN { if (d != "nan" && g != "nan") printf "%+.0f", g - d; else print "n/a" }')"
        label="${WL_TEST[$w]}${WL_OPTS[$w]:+ ${WL_OPTS[$w]}}"
        [[ ${WL_GANTRY[$w]} == read-your-writes ]] && label+=" (consistency read-your-writes)"
        printf '| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$label" "$t" "$(fmt_us "$dq")" "$(fmt_us "$gq")" "$ratio" "$ratios" \
            "$(fmt_us "$dp")" "$(fmt_us "$gp")" "$dp95" "$cpu" \
            "$(awk -v r="$rss" 'BEGIN { if (r == "nan" || r == "") print "n/a"; else printf "%.1f", r / 1024 }')" "$err"
    done <<<"$SUMMARY"

    cat <<'EOF'

## CPU per query: who pays (µs of CPU per query, all rounds)

User + system CPU of sysbench (the client), of the three MariaDB servers
together, and of Gantry, divided by the queries sysbench completed. When the
box is CPU-bound (every core busy, as at 8 and 64 threads here), throughput is
inversely proportional to the total, so direct total / Gantry-side total is
about the best ratio this machine allows at Gantry's current cost per query.

| workload | threads | direct: sysbench | direct: MariaDB | direct: total | via Gantry: sysbench | via Gantry: MariaDB | via Gantry: Gantry | via Gantry: total | CPU-bound ceiling |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
    for w in "${WORKLOAD_LIST[@]}"; do
        if [[ $w == *_ryw ]]; then tl=("${RYW_THREAD_LIST[@]}"); else tl=("${THREAD_LIST[@]}"); fi
        for t in "${tl[@]}"; do
            label="${WL_TEST[$w]}${WL_OPTS[$w]:+ ${WL_OPTS[$w]}}"
            if [[ ${WL_GANTRY[$w]} == read-your-writes ]]; then label+=" (read-your-writes)"; fi
            awk -F'\t' -v w="$w" -v t="$t" -v label="$label" '
                $1 == w && $2 == t && $11 > 0 {
                    q[$4] += $11; sb[$4] += $13; srv[$4] += $14; g[$4] += $10
                }
                function us(x, side) { return q[side] > 0 ? sprintf("%.1f", x * 1e6 / q[side]) : "n/a" }
                END {
                    dt = (q["direct"] > 0) ? (sb["direct"] + srv["direct"]) * 1e6 / q["direct"] : 0
                    gt = (q["gantry"] > 0) ? (sb["gantry"] + srv["gantry"] + g["gantry"]) * 1e6 / q["gantry"] : 0
                    printf "| %s | %s | %s | %s | %.1f | %s | %s | %s | %.1f | %s |\n", label, t,
                        us(sb["direct"], "direct"), us(srv["direct"], "direct"), dt,
                        us(sb["gantry"], "gantry"), us(srv["gantry"], "gantry"), us(g["gantry"], "gantry"), gt,
                        (gt > 0 ? sprintf("%.2f", dt / gt) : "n/a")
                }' "$RAW"
        done
    done

    echo
    echo "## Issue 6 targets"
    echo
    echo "| target | measured | met? |"
    echo "|---|---|---|"
    local tgt row
    for w in point_select read_only read_write; do
        tgt="${WL_TARGET[$w]#ratio:}"
        row="$(awk -F'\t' -v w="$w" '$1 == w && $2 == 8' <<<"$SUMMARY")"
        if [[ -z $row ]]; then
            echo "| ${WL_TEST[$w]}${WL_OPTS[$w]:+ ${WL_OPTS[$w]}}, 8 threads: ≥ ${tgt}× direct | not run | — |"
            continue
        fi
        IFS=$'\t' read -r _ _ dq gq _ _ _ _ _ _ <<<"$row"
        ratio="$(awk -v d="$dq" -v g="$gq" 'BEGIN { if (d > 0 && g != "nan") printf "%.2f", g / d; else print "nan" }')"
        met="$(awk -v r="$ratio" -v m="$tgt" 'BEGIN { print (r != "nan" && r + 0 >= m + 0) ? "met" : "**not met**" }')"
        echo "| ${WL_TEST[$w]}${WL_OPTS[$w]:+ ${WL_OPTS[$w]}}, 8 threads: ≥ ${tgt}× direct | ${ratio}× | $met |"
    done
    row="$(awk -F'\t' '$1 == "point_select" && $2 == 1' <<<"$SUMMARY")"
    if [[ -n $row ]]; then
        IFS=$'\t' read -r _ _ _ _ dp gp _ _ _ _ <<<"$row"
        dp95="$(awk -v d="$dp" -v g="$gp" 'BEGIN { if (d != "nan" && g != "nan") printf "%.0f", g - d; else print "nan" }')"
        met="$(awk -v v="$dp95" 'BEGIN { print (v != "nan" && v + 0 <= 50) ? "met" : "**not met**" }')"
        echo "| point select, 1 thread: p95 ≤ 50 µs above direct | +${dp95} µs (direct $(fmt_us "$dp") µs, Gantry $(fmt_us "$gp") µs) | $met |"
    else
        echo "| point select, 1 thread: p95 ≤ 50 µs above direct | not run | — |"
    fi
    if [[ -f $WORK/connscale.env ]]; then
        local connections per_conn_kib per_conn_kib_after_query backends_bounded backend_conns_max released
        # shellcheck disable=SC1091  # written by connscale --summary
        source "$WORK/connscale.env"
        met="$(awk -v v="$per_conn_kib" 'BEGIN { print (v + 0 <= 16) ? "met" : "**not met**" }')"
        echo "| $connections idle client connections: ≤ 16 KiB RSS each | ${per_conn_kib} KiB/connection (${per_conn_kib_after_query} KiB after one query each) | $met |"
        met="$( ((backends_bounded)) && echo met || echo '**not met**')"
        echo "| backend connections bounded by the pool size | at most $backend_conns_max open per backend (pool-max-size $POOL_MAX_SIZE); released after close: $( ((released)) && echo yes || echo '**no**') | $met |"
    else
        echo "| 10,000 idle client connections: ≤ 16 KiB RSS each; backends bounded by the pool | not run | — |"
    fi
    if [[ -n $CRIT_OUT ]]; then
        local cls
        cls="$(awk -F'\t' '/^CLASSIFY_MEDIAN_NS\t/ { print $2 }' "$CRIT_OUT")"
        met="$(awk -v v="$cls" 'BEGIN { print (v != "" && v + 0 <= 1000) ? "met" : "**not met**" }')"
        echo "| classification of a realistic statement mix: ≤ 1 µs median per statement (criterion) | ${cls:-n/a} ns (median over the mix's statements) | $met |"
    else
        echo "| classification: ≤ 1 µs median per statement | not run (\`--criterion\`, or \`cargo bench --bench classify\`) | — |"
    fi

    if [[ -n $CONNSCALE_OUT ]]; then
        echo
        echo "## Connection scale (bench/connscale)"
        echo
        grep -v '^### ' "$CONNSCALE_OUT" | sed '1{/^$/d}' || true
    fi
    if [[ -n $CRIT_OUT ]]; then
        echo
        echo "## Criterion micro-benchmarks (median per iteration)"
        echo
        grep -v '^CLASSIFY_MEDIAN_NS' "$CRIT_OUT"
    fi
    if [[ -n $GANTRY_STATS ]]; then
        echo
        echo "## Routing check: Gantry's \`SELECT * FROM stats\` after the last sysbench run"
        echo
        echo '```'
        echo "$GANTRY_STATS"
        echo '```'
    fi
    if [[ -n $PROFILE_FILE ]]; then
        echo
        echo "## Profile: Gantry during oltp_point_select, 8 threads"
        echo
        echo "Full profile (top symbols, callers): [$PROFILE_SAVED]($PROFILE_SAVED)."
        echo
        sed -n '/^## Per query/,/^## By shared object/p' "$PROFILE_FILE" | sed '$d' | sed 's/^## /### /'
    fi
    echo
    echo "sysbench phase: ${SB_SECS} s."
}

STAMP="$(date -u +%Y%m%d-%H%M%S)"
PROFILE_SAVED="profile-$STAMP.md"
REPORT="$(report)"
echo "$REPORT"
if ((SAVE)); then
    mkdir -p bench/results
    echo "$REPORT" >"bench/results/$STAMP.md"
    cp "bench/results/$STAMP.md" bench/results/latest.md
    cp "$RAW" "bench/results/$STAMP-raw.tsv"
    if [[ -n $PROFILE_FILE ]]; then cp "$PROFILE_FILE" "bench/results/$PROFILE_SAVED"; fi
    log "results written to bench/results/latest.md and bench/results/$STAMP.md"
fi
if [[ -n $CONNSCALE_RC ]] && ((CONNSCALE_RC != 0)); then
    exit 1
fi
