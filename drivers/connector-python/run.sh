#!/usr/bin/env bash
# Session fidelity: mysql-connector-python's own unit tests (from its source
# distribution on PyPI), run once directly against the MariaDB primary and
# once through Gantry, must fail the same tests.
#
#   drivers/connector-python/run.sh [--direct-only|--gantry-only] [--replicas]
#
# Starts its own MariaDB topology (temp dir, removed on exit) and Gantry with
# only the primary configured and replica auto-discovery off (--replicas:
# both replicas too, for the read-your-writes work). Both runs use the same
# account (admin/admin_pw: the suite creates and drops databases), the same
# test modules and the same exclusions (exclude.txt). Writes, under
# target/drivers/connector-python/:
#   direct.txt, gantry.txt        failing tests, "FAIL|ERROR|TIMEOUT<TAB>id", sorted
#   direct.skipped, ...           ids of the tests the suite skipped, sorted
#   direct.outcomes, ...          every test's outcome in run order (suite.py)
#   direct.log, gantry.log        the suite's full output
#   gantry-proxy.log              Gantry's own log of the gantry run
#   diff.txt                      diff of the failure lists and of the skip
#                                 lists (the verdict: both must be empty)
#   reasons-diff.txt              tests failing in both runs whose exception
#                                 differs (informational)
# Exits 0 when both runs ran and their failure lists and skip lists are
# identical; 1 when they differ or setting up failed; 2 on a usage error or
# when a run did not complete (crashed: nothing to compare). --direct-only /
# --gantry-only run one side only (exit 0 when it ran; no comparison).
#
# Environment: GANTRY_BIN, CARGO_TARGET_DIR, DRIVERS_KEEP=1 (see ../lib.sh);
# CPY_RUN_TIMEOUT (seconds for one suite run, default 420);
# CPY_TESTS (unittests.py --test-regex over module names, overrides the
# default selection); GANTRY_EXTRA_ARGS (extra gantry options, word-split).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

# Pinned: 9.7.0's sdist ships tests/ and unittests.py with
# --use-external-server (8.x sdists on PyPI have neither setup.py nor tests).
CPY_VERSION=9.7.0
# Every test module of the distribution except the two made of timing
# tests (read/write time-outs measured with sleeps: 80 s of sleeping, and
# their outcome depends on the machine's load, not on the protocol).
DEFAULT_TESTS='^(?!(qa_timeout|qa_aio_timeout)$)'
TESTS="${CPY_TESTS:-$DEFAULT_TESTS}"
RUN_TIMEOUT="${CPY_RUN_TIMEOUT:-420}"

SIDES=(direct gantry)
REPLICAS=()
for arg in "$@"; do
    case $arg in
        --direct-only) SIDES=(direct) ;;
        --gantry-only) SIDES=(gantry) ;;
        --replicas) REPLICAS=(--replicas) ;;
        *) echo "usage: $0 [--direct-only|--gantry-only] [--replicas]" >&2; exit 2 ;;
    esac
done

drv_init connector-python
drv_require python3 timeout diff flock
OUT="$CACHE/connector-python"
mkdir -p "$OUT"

# --- the driver's source distribution, unpacked and installed for testing ---
drv_venv cpy-venv "setuptools<80" wheel
SRC="$OUT/src/mysql_connector_python-$CPY_VERSION"
if [[ ! -f $SRC/.installed ]]; then
    rm -rf "$OUT/src" "$OUT/sdist"
    mkdir -p "$OUT/src" "$OUT/sdist"
    drv_log "downloading the mysql-connector-python $CPY_VERSION source distribution"
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$OUT/sdist" "mysql-connector-python==$CPY_VERSION" >&2 \
        || drv_die "pip download mysql-connector-python==$CPY_VERSION failed"
    tar -xzf "$OUT"/sdist/mysql_connector_python-"$CPY_VERSION".tar.gz -C "$OUT/src" \
        || drv_die "cannot unpack the sdist"
    [[ -f $SRC/unittests.py && -d $SRC/tests ]] || drv_die "the sdist has no unittests.py/tests/"
    # Pure-Python build (no C extension: no MySQL C client here), installed
    # into build/testing where unittests.py imports it from.
    drv_log "building the pure-Python connector into $SRC/build/testing"
    (cd "$SRC" && MYSQL_CAPI='' "$VENV/bin/python" -c '
import sys
sys.path.insert(0, ".")
import tests
tests.install_connector(".", "build/testing", None, None)
' >"$OUT/install.log" 2>&1) || { tail -n 30 "$OUT/install.log" >&2; drv_die "installing the connector failed"; }
    touch "$SRC/.installed"
fi

# run_suite SIDE PORT: one full run; writes SIDE.{log,outcomes,txt}.
run_suite() {
    local side="$1" port="$2" rc=0 t0=$SECONDS
    local outcomes="$OUT/$side.outcomes" list="$OUT/$side.txt" log="$OUT/$side.log"
    rm -f "$outcomes" "$list" "$log"
    : >"$outcomes"
    drv_log "running the suite $side (127.0.0.1:$port), up to ${RUN_TIMEOUT}s; output in $log"
    (cd "$SRC" && CPY_EXCLUDE_FILE="$HERE/exclude.txt" timeout -k 10 "$RUN_TIMEOUT" \
        "$VENV/bin/python" "$HERE/suite.py" "$outcomes" \
        --use-external-server --skip-install --host 127.0.0.1 --port "$port" \
        --user admin --password admin_pw --test-regex "$TESTS" \
        </dev/null >"$log" 2>&1) || rc=$?
    {
        awk -F'\t' '$1 == "FAIL" || $1 == "ERROR" { print $1 "\t" $2 }' "$outcomes"
        if ((rc == 124 || rc == 137)); then
            # Cut short: the test that was running when time ran out.
            awk -F'\t' '$1 == "START" { t = $2 } $1 != "START" && $2 == t { t = "" }
                END { printf "TIMEOUT\t%s\n", (t == "" ? "(between tests)" : t) }' "$outcomes"
        fi
    } | LC_ALL=C sort -u >"$list"
    awk -F'\t' '$1 == "skip" { print $2 }' "$outcomes" | LC_ALL=C sort -u >"$OUT/$side.skipped"
    local ran
    ran="$(grep -c -v '^START' "$outcomes" || true)"
    if ((rc != 0 && rc != 1)) || ! grep -q '^Ran [0-9]* test' "$log"; then
        if ((rc == 124 || rc == 137)); then
            drv_log "$side: the suite timed out after ${RUN_TIMEOUT}s ($(tail -n 1 "$list"))"
        else
            tail -n 30 "$log" >&2
            drv_log "$side: the suite did not complete (exit $rc); see $log"
            echo "CRASH	(suite exit $rc)" >>"$list"
            INCOMPLETE+=("$side")
        fi
    fi
    drv_log "$side: $ran outcomes, $(wc -l <"$list") failing, $((SECONDS - t0))s: $(grep '^Ran ' "$log" || true) $(grep -E '^(OK|FAILED)' "$log" | tail -n 1 || true)"
}

# Each run gets a fresh topology: the suite changes global server state
# (max_allowed_packet, ...), and the direct run must not see Gantry's health
# probes (some tests read server-wide counters such as Aborted_clients).
INCOMPLETE=()
for side in "${SIDES[@]}"; do
    drv_topology_up "topology-$side"
    if [[ $side == direct ]]; then
        run_suite direct "$PRIMARY_PORT"
    else
        # shellcheck disable=SC2086  # GANTRY_EXTRA_ARGS is word-split on purpose
        drv_gantry_up "${REPLICAS[@]}" "admin:admin_pw,app:app_pw" ${GANTRY_EXTRA_ARGS:-}
        run_suite gantry "$GANTRY_PORT"
        drv_gantry_down
        cp "$DRV_GANTRY_LOG" "$OUT/gantry-proxy.log"
    fi
    drv_topology_down
done

if ((${#INCOMPLETE[@]})); then
    drv_log "the suite did not complete in: ${INCOMPLETE[*]}; nothing to compare"
    exit 2
fi
if ((${#SIDES[@]} == 1)); then
    echo "== failing tests ($(wc -l <"$OUT/${SIDES[0]}.txt")): $OUT/${SIDES[0]}.txt"
    cat "$OUT/${SIDES[0]}.txt"
    exit 0
fi

# Informational: tests failing in both runs, but with a different exception
# (ports, statement ids, 5+-digit numbers and unittest's truncation marks
# masked). Not part of the verdict.
reasons() {
    awk -F'\t' -v q="'" '($1 == "FAIL" || $1 == "ERROR") && NF >= 4 {
            r = $4
            gsub(q "statement_id" q ": [0-9]+", q "statement_id" q ": N", r)
            gsub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:PORT", r)
            gsub(/Diff is [0-9]+ characters/, "Diff is N characters", r)
            gsub(/[A-Za-z_]*\[[0-9]+ chars\]/, "[...]", r)
            gsub(/[0-9][0-9][0-9][0-9][0-9]+/, "N", r)
            print $1 "\t" $2 "\t" r }' "$OUT/$1.outcomes" | LC_ALL=C sort -u
}
reasons direct >"$OUT/direct.reasons"
reasons gantry >"$OUT/gantry.reasons"
LC_ALL=C join -t $'\t' <(cut -f2 "$OUT/direct.txt" | LC_ALL=C sort) <(cut -f2 "$OUT/gantry.txt" | LC_ALL=C sort) \
    >"$OUT/both.ids" || true
diff --label direct.reasons --label gantry.reasons -u \
    <(LC_ALL=C grep -F -f <(sed 's/^/\t/; s/$/\t/' "$OUT/both.ids") "$OUT/direct.reasons" || true) \
    <(LC_ALL=C grep -F -f <(sed 's/^/\t/; s/$/\t/' "$OUT/both.ids") "$OUT/gantry.reasons" || true) \
    >"$OUT/reasons-diff.txt" || true
if [[ -s $OUT/reasons-diff.txt ]]; then
    echo "== tests failing in both runs with a different exception (informational, $OUT/reasons-diff.txt):"
    cat "$OUT/reasons-diff.txt"
fi

echo "== direct: $(wc -l <"$OUT/direct.txt") failing, $(wc -l <"$OUT/direct.skipped") skipped;" \
    "gantry: $(wc -l <"$OUT/gantry.txt") failing, $(wc -l <"$OUT/gantry.skipped") skipped"
same=1
diff -u --label direct.txt --label gantry.txt "$OUT/direct.txt" "$OUT/gantry.txt" >"$OUT/diff.txt" || same=0
# A test the suite skips in one run only (it probes the server's version and
# capabilities) was not exercised the same way: that is a difference too.
diff -u --label direct.skipped --label gantry.skipped "$OUT/direct.skipped" "$OUT/gantry.skipped" \
    >>"$OUT/diff.txt" || same=0
if ((same)); then
    echo "== identical failure lists: connector-python $CPY_VERSION behaves the same through Gantry"
    exit 0
fi
echo "== the runs differ (- only direct, + only through Gantry): $OUT/diff.txt"
cat "$OUT/diff.txt"
exit 1
