# Helpers shared by the bench scripts (sourced; each script defines `die`).

# A free TCP port on 127.0.0.1, below the ephemeral range (so the 10,000
# client connections of the scale test cannot take it) and not yet handed out.
declare -A TAKEN=()
free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${TAKEN[$p]:-} ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            TAKEN[$p]=1
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

MARIADB="$(command -v mariadb || command -v mysql || true)"
sql_at() {   # PORT USER PASSWORD SQL
    "$MARIADB" --no-defaults -h127.0.0.1 -P"$1" -u"$2" -p"$3" --connect-timeout=5 -N -B -e "$4"
}

stop_pid() {   # PID: TERM, then KILL after 5 s
    local pid="$1" i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# GANTRY_BIN: the given binary, or a release build of this checkout.
need_gantry() {
    if [[ -z ${GANTRY_BIN:-} ]]; then
        log "building gantry (release)"
        cargo build --release --locked --bin gantry >&2
        GANTRY_BIN="$ROOT/target/release/gantry"
    fi
}

# PYTHON: PyMySQL in the drivers' virtualenv (shared with drivers/pymysql/run.sh).
need_pymysql() {
    PYTHON="$(bash -c 'source drivers/lib.sh && drv_init pymysql && drv_venv pymysql-venv PyMySQL==1.1.1 >&2 && echo "$VENV/bin/python"')" \
        || die "cannot set up the PyMySQL virtualenv"
}

# Raises the open-file limit to the hard limit; NOFILE is then the limit.
raise_nofile() {
    NOFILE="$(ulimit -Hn)"
    [[ $NOFILE == unlimited ]] && NOFILE=1048576
    ulimit -n "$NOFILE" 2>/dev/null || true
    NOFILE="$(ulimit -n)"
}

# On exit: the topology in $TOPO goes down; $WORK is removed unless KEEP
# (1) says to keep it or the run failed (RC != 0).
finish_work() {   # RC KEEP
    if [[ -f $TOPO/topology.env ]]; then
        scripts/topology.sh down --dir "$TOPO" >/dev/null 2>&1 || true
    fi
    if (($2)) || (($1 != 0)); then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
