# shellcheck shell=bash
# Shared helpers for the driver scripts under drivers/. Source it, do not run it.
#
#   source "$(dirname "$0")/../lib.sh"
#   drv_init NAME                 # sets REPO, CACHE (target/drivers), LOG dir
#   drv_topology_up               # own MariaDB topology in a temp dir (trap cleans up)
#   drv_gantry_up [--replicas] [USER:PW,...]   # Gantry in front of it; sets GANTRY_PORT
#   drv_venv NAME REQ...          # a virtualenv under the cache; sets VENV
#   drv_mysql2_install            # mysql2 into drivers/mysql2/node_modules; sets MYSQL2_VERSION
#
# Environment:
#   GANTRY_BIN            the gantry binary (default: target/debug/gantry, else
#                         target/release/gantry; built with cargo if neither exists)
#   CARGO_TARGET_DIR      where the cache lives: $CARGO_TARGET_DIR/drivers
#   DRIVERS_KEEP=1        keep the temp dir (topology data, Gantry log) on exit
#
# Everything started here (topology, Gantry) is stopped by the EXIT trap that
# drv_init installs; the topology also has a watchdog bound to this shell's pid.

drv_log() { echo "drivers[$DRV_NAME]: $*" >&2; }
drv_die() { echo "drivers[$DRV_NAME]: error: $*" >&2; exit 1; }

drv_init() {
    DRV_NAME="$1"
    REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
    CACHE="${CARGO_TARGET_DIR:-$REPO/target}/drivers"
    mkdir -p "$CACHE"
    CACHE="$(cd "$CACHE" && pwd -P)"
    # One run of a given script at a time per target dir: they share the
    # virtualenv, node_modules and output files.
    exec 9>"$CACHE/$DRV_NAME.lock"
    if ! flock -n 9; then
        drv_log "another run of $DRV_NAME holds $CACHE/$DRV_NAME.lock; waiting"
        flock 9
    fi
    DRV_TMP="$(mktemp -d "${TMPDIR:-/tmp}/gantry-drivers-$DRV_NAME.XXXXXX")"
    DRV_TOPO_DIR=""
    DRV_GANTRY_PID=""
    trap drv_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

drv_cleanup() {
    local rc=$?
    drv_gantry_down
    drv_topology_down
    if [[ ${DRIVERS_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        drv_log "kept $DRV_TMP (topology data, gantry.log)"
    else
        rm -rf "$DRV_TMP"
    fi
    exit "$rc"
}

# N free loopback ports, comma-separated (bound at once, so distinct).
drv_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
n = int(sys.argv[1])
socks = [socket.socket() for _ in range(n)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(",".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

drv_require() {   # drv_require CMD... : fail (never skip) when a tool is missing
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || drv_die "'$c' is required but not installed"
    done
}

# drv_topology_up [NAME]: a fresh topology in $DRV_TMP/NAME (default
# "topology"); sets PRIMARY_PORT, REPLICA1_PORT, REPLICA2_PORT.
drv_topology_up() {
    local ports _
    DRV_TOPO_DIR="$DRV_TMP/${1:-topology}"
    for _ in 1 2 3; do
        ports="$(drv_free_ports 3)"
        if bash "$REPO/scripts/topology.sh" up --dir "$DRV_TOPO_DIR" --ports "$ports" \
            --owner-pid $$ >"$DRV_TMP/topology-up.log" 2>&1; then
            IFS=, read -r PRIMARY_PORT REPLICA1_PORT REPLICA2_PORT <<<"$ports"
            drv_log "topology up: primary $PRIMARY_PORT, replicas $REPLICA1_PORT,$REPLICA2_PORT ($DRV_TOPO_DIR)"
            return 0
        fi
        # A port picked above can be taken by someone else before mariadbd binds it.
        grep -q "already in use\|another server running" "$DRV_TMP/topology-up.log" || break
        drv_log "a port was taken meanwhile; retrying with fresh ports"
    done
    cat "$DRV_TMP/topology-up.log" >&2
    drv_die "could not start the MariaDB topology"
}

drv_topology_down() {
    if [[ -n $DRV_TOPO_DIR ]]; then
        bash "$REPO/scripts/topology.sh" down --dir "$DRV_TOPO_DIR" >/dev/null 2>&1 || true
        DRV_TOPO_DIR=""
    fi
}

drv_gantry_down() {
    if [[ -n $DRV_GANTRY_PID ]]; then
        kill "$DRV_GANTRY_PID" 2>/dev/null || true
        wait "$DRV_GANTRY_PID" 2>/dev/null || true
        DRV_GANTRY_PID=""
    fi
}

drv_gantry_bin() {
    if [[ -n ${GANTRY_BIN:-} ]]; then
        [[ -x $GANTRY_BIN ]] || drv_die "GANTRY_BIN=$GANTRY_BIN is not executable"
        echo "$GANTRY_BIN"; return
    fi
    local t="${CARGO_TARGET_DIR:-$REPO/target}"
    if [[ -x $t/debug/gantry ]]; then echo "$t/debug/gantry"; return; fi
    if [[ -x $t/release/gantry ]]; then echo "$t/release/gantry"; return; fi
    drv_log "no gantry binary found; running cargo build"
    (cd "$REPO" && cargo build --locked >&2) || drv_die "cargo build failed"
    echo "$t/debug/gantry"
}

# drv_gantry_up [--replicas] PWDS [EXTRA_GANTRY_ARGS...] : start Gantry in
# front of the topology. Without --replicas only the primary is configured
# and replica auto-discovery is off, so every statement goes to the primary.
drv_gantry_up() {
    local replicas=0 pwds bin admin_port deadline _
    if [[ ${1:-} == --replicas ]]; then replicas=1; shift; fi
    pwds="$1"; shift
    bin="$(drv_gantry_bin)"
    DRV_GANTRY_LOG="$DRV_TMP/gantry.log"
    for _ in 1 2 3; do
        IFS=, read -r GANTRY_PORT admin_port <<<"$(drv_free_ports 2)"
        local args=(
            --proxy-address "127.0.0.1:$GANTRY_PORT" --admin-address "127.0.0.1:$admin_port"
            --admin-username admin --admin-password admin_pw
            --proxy-backend-addresses "127.0.0.1:$PRIMARY_PORT"
            --pwds "$pwds"
            --monitor-username monitor --monitor-password monitor_pw
            --log-level "${GANTRY_LOG_LEVEL:-warn}"
        )
        if ((replicas)); then
            args+=(--proxy-read-only-backend-addresses "127.0.0.1:$REPLICA1_PORT,127.0.0.1:$REPLICA2_PORT")
        else
            args+=(--auto-discover-replicas false)
        fi
        args+=("$@")
        echo "+ $bin ${args[*]}" >>"$DRV_GANTRY_LOG"
        "$bin" "${args[@]}" </dev/null >>"$DRV_GANTRY_LOG" 2>&1 &
        DRV_GANTRY_PID=$!
        deadline=$((SECONDS + 15))
        while ((SECONDS < deadline)); do
            if ! kill -0 "$DRV_GANTRY_PID" 2>/dev/null; then
                wait "$DRV_GANTRY_PID" 2>/dev/null || true
                DRV_GANTRY_PID=""
                break
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$GANTRY_PORT") 2>/dev/null; then
                drv_log "gantry up on 127.0.0.1:$GANTRY_PORT ($( ((replicas)) && echo "primary + 2 replicas" || echo "primary only")), log $DRV_GANTRY_LOG"
                return 0
            fi
            sleep 0.1
        done
        if [[ -n $DRV_GANTRY_PID ]]; then
            tail -n 50 "$DRV_GANTRY_LOG" >&2
            drv_die "gantry did not accept connections within 15s"
        fi
        grep -qi "in use" "$DRV_GANTRY_LOG" || break
        drv_log "gantry's port was taken meanwhile; retrying"
    done
    tail -n 50 "$DRV_GANTRY_LOG" >&2
    drv_die "gantry exited during startup"
}

# A virtualenv under the cache with the given pip requirements installed
# (re-used while the requirement list is unchanged). Sets VENV.
drv_venv() {
    local name="$1"; shift
    VENV="$CACHE/$name"
    local stamp="$VENV/.requirements" want
    want="$(printf '%s\n' "$@")"
    if [[ ! -x $VENV/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
        drv_require python3
        drv_log "creating virtualenv $VENV ($*)"
        rm -rf "$VENV"
        python3 -m venv "$VENV" || drv_die "python3 -m venv failed (is python3-venv installed?)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2 \
            || drv_die "pip install $* failed"
        printf '%s\n' "$want" >"$stamp"
    fi
}

# mysql2 (node) installed into drivers/mysql2/node_modules from its
# package.json / package-lock.json, unless that version is there already.
# Sets MYSQL2_VERSION.
drv_mysql2_install() {
    local dir="$REPO/drivers/mysql2" have
    drv_require node npm
    MYSQL2_VERSION="$(node -p "require('$dir/package.json').dependencies.mysql2")"
    have="$(node -p "try { require('$dir/node_modules/mysql2/package.json').version } catch (e) { '' }")"
    if [[ $have != "$MYSQL2_VERSION" ]]; then
        drv_log "installing mysql2 $MYSQL2_VERSION into $dir/node_modules"
        if [[ -f $dir/package-lock.json ]]; then
            (cd "$dir" && npm ci --no-audit --no-fund >&2) || drv_die "npm ci failed"
        else
            (cd "$dir" && npm install --no-audit --no-fund >&2) || drv_die "npm install failed"
        fi
    fi
}
