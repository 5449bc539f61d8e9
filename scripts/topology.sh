#!/usr/bin/env bash
# Manage a throw-away MariaDB replication topology on loopback for Gantry's
# tests and benchmarks: one primary and two read-only replicas using GTID
# replication, each server in its own directory under DIR.
#
#   scripts/topology.sh up     [--dir DIR] [--ports P1,P2,P3] [--owner-pid PID] [--server-arg OPT]...
#   scripts/topology.sh down   [--dir DIR]
#   scripts/topology.sh status [--dir DIR]
#   scripts/topology.sh start|stop|kill NAME [--dir DIR]   (NAME: primary|replica1|replica2)
#
# Users (each @'127.0.0.1' and @'localhost'):
#   app/app_pw          ALL on app.*, sbtest.*, test.*  (cannot write through read_only)
#   monitor/monitor_pw  replication/process monitoring, and what failover needs (REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, RELOAD)
#   repl/repl_pw        REPLICATION SLAVE
#   admin/admin_pw      ALL PRIVILEGES ON *.* WITH GRANT OPTION
# root has no password and is reached over each server's unix socket.
#
# Layout: DIR/topology.env (ports), DIR/watchdog.pid, and per server
# DIR/<name>/{data/,tmp/,mysqld.sock,mysqld.pid,error.log,cmdline,install.log}.
set -euo pipefail

readonly NAMES=(primary replica1 replica2)
SCRIPT_PATH="$(readlink -f "${BASH_SOURCE[0]}")"
readonly SCRIPT_PATH
TOPOLOGY_SQL="$(dirname "$SCRIPT_PATH")/../docker/topology-sql.sh"
readonly TOPOLOGY_SQL
readonly READY_TIMEOUT=30      # seconds for a server to accept connections
readonly CATCHUP_TIMEOUT=30    # seconds for the replicas to catch up
readonly STOP_TIMEOUT=30       # seconds for a clean shutdown (stop NAME)
readonly DOWN_GRACE=5          # seconds between SIGTERM and SIGKILL in down

DIR="${GANTRY_TOPOLOGY_DIR:-/tmp/gantry-topology}"
PORTS="13306,13307,13308"
OWNER_PID=""
SERVER_ARGS=()                 # extra mariadbd options (up --server-arg), e.g. TLS files
MARIADBD="" MARIADB="" INSTALL_DB=""
declare -A LAUNCHED=()         # name -> pid of the mariadbd we started

log() { echo "topology: $*" >&2; }
die() { echo "topology: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,10p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- helpers --

server_index() {   # NAME -> 0|1|2
    local i
    for i in "${!NAMES[@]}"; do
        [[ ${NAMES[$i]} == "$1" ]] && { echo "$i"; return 0; }
    done
    die "unknown server '$1' (expected one of: ${NAMES[*]})"
}

sdir()   { echo "$DIR/$1"; }
sock()   { echo "$DIR/$1/mysqld.sock"; }
pidf()   { echo "$DIR/$1/mysqld.pid"; }
errlog() { echo "$DIR/$1/error.log"; }

# Find a binary in PATH or in the sbin directories that a non-root PATH lacks.
find_bin() {
    local d
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return 0; fi
    for d in /usr/sbin /usr/local/sbin /sbin /usr/local/bin /usr/bin; do
        [[ -x $d/$1 ]] && { echo "$d/$1"; return 0; }
    done
    return 1
}

locate_bins() {
    MARIADBD="$(find_bin mariadbd)" && MARIADB="$(find_bin mariadb)" \
        && INSTALL_DB="$(find_bin mariadb-install-db)"
}

# A fresh CI machine has no MariaDB: install it from the distribution.
ensure_mariadb() {
    locate_bins && return 0
    log "mariadbd/mariadb not found; installing mariadb-server mariadb-client with apt-get"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends mariadb-server mariadb-client)
    if ! "${install[@]}" >&2; then
        # The package lists may be missing or stale: refresh once and retry.
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        "${install[@]}" >&2
    fi
    locate_bins || die "MariaDB still not found after apt-get install"
}

# True when PID is a live (non-zombie) process. Checks /proc rather than
# kill -0, which fails with EPERM for other users' processes.
pid_alive() {
    local pid="$1" stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ ${stat%% *} != Z ]]
}

# The pid of NAME's mariadbd if it is running. The cmdline check guards
# against a stale pid file whose pid was reused by an unrelated process.
server_pid() {
    local pid
    pid="$(cat "$(pidf "$1")" 2>/dev/null)" || return 1
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--datadir=$(sdir "$1")/data" \
        || return 1
    echo "$pid"
}

# Run SQL as root over NAME's unix socket; batch output without headers.
sql() {
    "$MARIADB" --no-defaults --user=root --socket="$(sock "$1")" \
        --connect-timeout=5 -N -B -e "$2"
}

# Print the last lines of NAME's error log (why a server did not come up).
show_error_log() {
    local f
    f="$(errlog "$1")"
    if [[ -s $f ]]; then
        echo "---- last lines of $f ----" >&2
        tail -n 30 "$f" >&2
        echo "----" >&2
    fi
}

load_env() {
    [[ -f $DIR/topology.env ]] || die "no topology in $DIR (run 'up' first)"
    # shellcheck disable=SC1091
    source "$DIR/topology.env"
}

port_of() { load_env; local p; IFS=, read -ra p <<<"$TOPOLOGY_PORTS"; echo "${p[$(server_index "$1")]}"; }

# ------------------------------------------------------- server lifecycle --

# Create an empty data directory for NAME. Runs in the background during up.
install_db() {
    local name="$1" d
    d="$(sdir "$name")"
    mkdir -p "$d/tmp"
    # --rpm keeps the installer from re-owning the system-wide PAM helper
    # (it does that whenever --user is given) and skips its DNS check.
    "$INSTALL_DB" --no-defaults --rpm --user="$(id -un)" \
        --auth-root-authentication-method=normal --skip-test-db \
        --datadir="$d/data" --tmpdir="$d/tmp" \
        --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
        >"$d/install.log" 2>&1 \
        || {
            # The real error precedes the installer's generic advice text.
            sed '/Installation of system tables failed/q' "$d/install.log" | tail -n 20 >&2
            die "mariadb-install-db failed for $name; see $d/install.log"
        }
}

# Save the mariadbd command line for NAME so that 'start NAME' can reuse it.
write_cmdline() {
    local name="$1" port="$2" id="$3" d args
    d="$(sdir "$name")"
    args=(
        "$MARIADBD" --no-defaults
        --datadir="$d/data" --socket="$d/mysqld.sock"
        # Private tmpdir: servers sharing /tmp delete each other's temp tables.
        --tmpdir="$d/tmp"
        --pid-file="$d/mysqld.pid" --log-error="$d/error.log"
        --port="$port" --bind-address=127.0.0.1
        --server-id="$id"
        # Fixed binlog/relay-log names: the defaults embed the hostname.
        --log-bin=mysql-bin --relay-log=relay-bin --log-slave-updates
        --binlog-format=ROW --gtid-strict-mode=ON
        --skip-name-resolve
        --report-host=127.0.0.1 --report-port="$port"
        --innodb-buffer-pool-size=32M --innodb-log-file-size=16M
        --performance-schema=OFF
        --max-connections=1000 --max-allowed-packet=256M
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
    )
    # mariadbd refuses to run as root unless told which user to be.
    [[ $(id -u) -eq 0 ]] && args+=(--user="$(id -un)")
    [[ $name != primary ]] && args+=(--read-only=ON)
    args+=("${SERVER_ARGS[@]}")
    printf '%s\n' "${args[@]}" >"$d/cmdline"
}

# Launch NAME's mariadbd detached (own session, no inherited stdio, so that a
# caller capturing our output is not kept waiting by the daemon).
launch() {
    local name="$1" args
    mapfile -t args <"$(sdir "$name")/cmdline"
    rm -f "$(sock "$name")" "$(pidf "$name")"
    setsid "${args[@]}" </dev/null >>"$(errlog "$name")" 2>&1 &
    # setsid execs in place (we are not a process-group leader), so $! is
    # mariadbd itself, even before it has written its pid file.
    LAUNCHED["$name"]=$!
}

# Wait until NAME accepts connections on its socket.
wait_ready() {
    local name="$1" deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if [[ -S $(sock "$name") ]] && sql "$name" "SELECT 1" >/dev/null 2>&1; then
            return 0
        fi
        # Fail fast when the daemon already died (bad option, port in use...).
        if ! pid_alive "${LAUNCHED[$name]}"; then
            show_error_log "$name"
            die "$name (port $(port_of "$name")) exited during startup; see $(errlog "$name")"
        fi
        sleep 0.2
    done
    show_error_log "$name"
    die "$name (port $(port_of "$name")) did not accept connections within ${READY_TIMEOUT}s; see $(errlog "$name")"
}

# Stop NAME: SIGTERM (a clean shutdown), then SIGKILL after GRACE seconds.
terminate() {
    local name="$1" grace="$2" pid deadline
    pid="$(server_pid "$name")" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_alive "$pid"; then
        log "$name did not exit within ${grace}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while pid_alive "$pid"; do sleep 0.1; done
    fi
}

# Start a watchdog that runs 'down' for DIR once the owner process is gone,
# so servers never outlive a test binary that exits without destructors.
start_watchdog() {
    local owner="$1"
    [[ -d /proc/$owner ]] || die "--owner-pid $owner: no such process"
    # Start times pin the pids, so a recycled pid does not fool the watchdog.
    # It also waits for this 'up' to finish: tearing down under a running
    # bring-up would leave a half-built DIR behind.
    # shellcheck disable=SC2016  # the inner script expands its own arguments
    setsid nohup bash -c '
        script="$1" dir="$2"
        alive() {   # alive PID START_TIME
            local s
            s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
            s="${s##*) }"
            [[ ${s%% *} != Z ]] || return 1
            set -- "$2" $s
            [[ ${21} == "$1" ]]
        }
        while alive "$3" "$4" && [[ -d $dir ]]; do sleep 1; done
        while alive "$5" "$6"; do sleep 0.2; done
        GANTRY_TOPOLOGY_WATCHDOG=1 exec "$script" down --dir "$dir"
    ' gantry-topology-watchdog "$SCRIPT_PATH" "$DIR" \
        "$owner" "$(proc_start_time "$owner")" "$$" "$(proc_start_time "$$")" \
        </dev/null >>"$DIR/watchdog.log" 2>&1 &
    echo $! >"$DIR/watchdog.pid"
}

proc_start_time() {
    local s
    s="$(cat "/proc/$1/stat")"
    s="${s##*) }"
    # shellcheck disable=SC2086
    set -- $s
    echo "${20}"
}

# --------------------------------------------------------------- commands --

# The databases, the accounts and on a replica GTID replication from the
# primary: docker/topology-sql.sh, which the compose topology's servers run
# too. Nothing of it is binlogged; every server creates its own accounts.
setup_server() {
    local name="$1" primary_port="$2" role=replica
    [[ $name == primary ]] && role=primary
    ROLE="$role" PRIMARY_PORT="$primary_port" "$TOPOLOGY_SQL" \
        | "$MARIADB" --no-defaults --user=root --socket="$(sock "$name")" --connect-timeout=5 \
        || die "setting up $name (accounts, replication) failed"
}

# Print "<io> <sql> <seconds_behind> <last_error>" from SHOW SLAVE STATUS.
slave_state() {
    "$MARIADB" --no-defaults --user=root --socket="$(sock "$1")" --connect-timeout=5 \
        -B -e "SHOW SLAVE STATUS" 2>/dev/null | awk -F'\t' '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        NR == 2 {
            err = $col["Last_IO_Error"]; if (err == "") err = $col["Last_SQL_Error"]
            sbm = $col["Seconds_Behind_Master"]; if (sbm == "") sbm = "NULL"
            printf "%s %s %s %s\n", $col["Slave_IO_Running"], $col["Slave_SQL_Running"], sbm, err
        }'
}

wait_caught_up() {
    local deadline=$((SECONDS + CATCHUP_TIMEOUT)) target name state pos pending
    target="$(sql primary "SELECT @@gtid_current_pos")"
    while ((SECONDS < deadline)); do
        pending=()
        for name in "${NAMES[@]:1}"; do
            state="$(slave_state "$name")"
            pos="$(sql "$name" "SELECT @@gtid_slave_pos" 2>/dev/null || true)"
            [[ $state == "Yes Yes "* && $pos == "$target" ]] || pending+=("$name")
        done
        ((${#pending[@]} == 0)) && return 0
        sleep 0.2
    done
    for name in "${pending[@]}"; do
        log "$name: slave state: $(slave_state "$name"); gtid_slave_pos='$(sql "$name" "SELECT @@gtid_slave_pos" 2>/dev/null || true)'"
        show_error_log "$name"
    done
    die "replicas did not reach the primary's gtid_current_pos '$target' within ${CATCHUP_TIMEOUT}s"
}

# If up fails half-way, do not leave daemons behind; keep DIR for its logs
# (with --owner-pid the watchdog still removes it once the owner is gone).
UP_DONE=0
up_cleanup() {
    ((UP_DONE)) && return 0
    local name
    for name in "${NAMES[@]}"; do
        terminate "$name" 2 || true
        # A daemon that has not written its pid file yet is only known by $!.
        if pid_alive "${LAUNCHED[$name]:-}"; then kill -KILL "${LAUNCHED[$name]}" || true; fi
    done
    log "bring-up failed; servers stopped, logs kept in $DIR" || true
}

cmd_up() {
    local ports name i pids=() t0=$SECONDS
    IFS=, read -ra ports <<<"$PORTS"
    ((${#ports[@]} == 3)) || die "--ports needs three comma-separated ports, got '$PORTS'"
    for i in 0 1 2; do
        [[ ${ports[$i]} =~ ^[0-9]+$ ]] || die "bad port '${ports[$i]}'"
    done

    ensure_mariadb

    if [[ -d $DIR ]]; then
        check_removable
        for name in "${NAMES[@]}"; do
            server_pid "$name" >/dev/null \
                && die "$name is already running in $DIR; run '$0 down --dir $DIR' first"
        done
        stop_watchdog
        rm -rf "$DIR"
    fi
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd -P)"   # absolute: saved command lines must not depend on cwd
    printf 'TOPOLOGY_PORTS=%s\n' "$PORTS" >"$DIR/topology.env"
    trap up_cleanup EXIT
    [[ -n $OWNER_PID ]] && start_watchdog "$OWNER_PID"

    log "initialising data directories in $DIR"
    for i in 0 1 2; do
        mkdir -p "$(sdir "${NAMES[$i]}")"
        write_cmdline "${NAMES[$i]}" "${ports[$i]}" $((i + 1))
        install_db "${NAMES[$i]}" &
        pids+=($!)
    done
    # Wait for all three before failing, so no installer outlives us.
    local failed=()
    for i in 0 1 2; do wait "${pids[$i]}" || failed+=("${NAMES[$i]}"); done
    ((${#failed[@]} == 0)) || die "initialising ${failed[*]} failed"

    log "starting mariadbd on ports ${ports[*]}"
    for name in "${NAMES[@]}"; do launch "$name"; done
    for name in "${NAMES[@]}"; do wait_ready "$name"; done

    log "creating databases and users, starting replication"
    for name in "${NAMES[@]}"; do setup_server "$name" "${ports[0]}"; done
    wait_caught_up
    UP_DONE=1

    log "topology up in $((SECONDS - t0))s"
    cat <<EOF
topology dir: $DIR
primary:  127.0.0.1:${ports[0]} (server_id 1)
replica1: 127.0.0.1:${ports[1]} (server_id 2, read_only)
replica2: 127.0.0.1:${ports[2]} (server_id 3, read_only)
users: app/app_pw (app.*, sbtest.*, test.*), monitor/monitor_pw, repl/repl_pw, admin/admin_pw; root over unix socket $DIR/<name>/mysqld.sock
EOF
}

# DIR gets rm -rf'd: make sure it is one of ours (or empty), so that a
# mistyped --dir cannot wipe unrelated files.
check_removable() {
    [[ -f $DIR/topology.env ]] && return 0
    [[ -z $(ls -A "$DIR") ]] && return 0
    die "$DIR is not empty and holds no topology (no topology.env); refusing to remove it"
}

stop_watchdog() {
    local pid
    [[ ${GANTRY_TOPOLOGY_WATCHDOG:-} == 1 ]] && return 0   # the watchdog is running us
    pid="$(cat "$DIR/watchdog.pid" 2>/dev/null)" || return 0
    if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
        | grep -q gantry-topology-watchdog; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/watchdog.pid"
}

cmd_down() {
    local name pids=() i
    [[ -d $DIR ]] || return 0
    check_removable
    stop_watchdog
    # Shut the three down in parallel: SIGTERM, SIGKILL after DOWN_GRACE s.
    for name in "${NAMES[@]}"; do
        terminate "$name" "$DOWN_GRACE" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    rm -rf "$DIR"
    log "topology in $DIR is down"
}

cmd_status() {
    local ports i name state running
    load_env
    IFS=, read -ra ports <<<"$TOPOLOGY_PORTS"
    locate_bins || die "MariaDB is not installed"
    for i in 0 1 2; do
        name="${NAMES[$i]}"
        if server_pid "$name" >/dev/null; then running=running; else running=stopped; fi
        if [[ $i -gt 0 && $running == running ]]; then
            state="$(slave_state "$name")"
            if [[ -n $state ]]; then
                read -r io sqlt sbm _ <<<"$state"
                printf '%-9s %5s %-8s Slave_IO_Running=%s Slave_SQL_Running=%s Seconds_Behind_Master=%s\n' \
                    "$name" "${ports[$i]}" "$running" "$io" "$sqlt" "$sbm"
            else
                printf '%-9s %5s %-8s (not replicating)\n' "$name" "${ports[$i]}" "$running"
            fi
        else
            printf '%-9s %5s %s\n' "$name" "${ports[$i]}" "$running"
        fi
    done
}

cmd_start() {
    local name="$1"
    server_index "$name" >/dev/null
    load_env
    locate_bins || die "MariaDB is not installed"
    [[ -f $(sdir "$name")/cmdline ]] || die "no saved command line for $name in $DIR"
    if server_pid "$name" >/dev/null; then log "$name is already running"; return 0; fi
    log "starting $name"
    launch "$name"
    wait_ready "$name"
}

cmd_stop() {
    local name="$1"
    server_index "$name" >/dev/null
    load_env
    log "stopping $name"
    terminate "$name" "$STOP_TIMEOUT"
}

cmd_kill() {
    local name="$1" pid
    server_index "$name" >/dev/null
    load_env
    pid="$(server_pid "$name")" || { log "$name is not running"; return 0; }
    log "killing $name (pid $pid)"
    kill -KILL "$pid"
    while pid_alive "$pid"; do sleep 0.05; done
}

# ------------------------------------------------------------------- main --

main() {
    (($# >= 1)) || usage
    local cmd="$1" name=""
    shift
    case $cmd in
        start | stop | kill)
            (($# >= 1)) || die "$cmd needs a server name (${NAMES[*]})"
            name="$1"
            shift
            ;;
        up | down | status) ;;
        -h | --help | help) usage ;;
        *) die "unknown command '$cmd'" ;;
    esac
    while (($#)); do
        case $1 in
            --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
            --dir=*) DIR="${1#*=}"; shift ;;
            --ports) PORTS="${2:?--ports needs a value}"; shift 2 ;;
            --ports=*) PORTS="${1#*=}"; shift ;;
            --owner-pid) OWNER_PID="${2:?--owner-pid needs a value}"; shift 2 ;;
            --owner-pid=*) OWNER_PID="${1#*=}"; shift ;;
            --server-arg) SERVER_ARGS+=("${2:?--server-arg needs a value}"); shift 2 ;;
            --server-arg=*) SERVER_ARGS+=("${1#*=}"); shift ;;
            *) die "unknown argument '$1'" ;;
        esac
    done
    [[ -n $DIR ]] || die "empty --dir"
    [[ -d $DIR ]] && DIR="$(cd "$DIR" && pwd -P)"

    case $cmd in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        start) cmd_start "$name" ;;
        stop) cmd_stop "$name" ;;
        kill) cmd_kill "$name" ;;
    esac
}

main "$@"
