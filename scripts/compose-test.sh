#!/usr/bin/env bash
# Runs the integration suite against a docker-compose topology
# (docker-compose.test.yml: MariaDB primary + 2 replicas + Gantry, on the
# host's loopback). Installs what is missing (scripts/install-deps.sh),
# starts a Docker engine when none runs (and stops it at the end), builds
# the test images from Debian's packages (cached), brings the shared project
# up, runs the tests in TESTS with GANTRY_TEST_TOPOLOGY=compose, takes
# everything down and prints `N passed, N failed`.
#
#   scripts/compose-test.sh [--no-totals] [TEST_NAME_FILTER]
#
# --no-totals leaves the totals line to the caller (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# The test files that run here: routing, sessions, the admin port, health,
# failover and sessions through it, the kill drills, read consistency,
# session tracking, reliability, the harness's smoke test and the stack's.
readonly TESTS=(topology_smoke routing session admin health failover stack failover_sessions drills consistency tracking reliability)
readonly PROJECT=gantrytest
readonly DOCKER_ROOT=/var/lib/gantry-docker
CODENAME="$(. /etc/os-release && echo "$VERSION_CODENAME")"
readonly CODENAME
readonly BASE_IMAGE="gantry-test-base:$CODENAME"
readonly MARIADB_IMAGE="gantry-test-mariadb:$CODENAME"
ENGINE_PID=""

log() { echo "compose-test: $*" >&2; }
die() { log "error: $*"; exit 1; }

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

# An engine of our own when none answers: its own data root, and no bridge
# or iptables rules, since every service uses the host's network.
start_engine() {
    docker info >/dev/null 2>&1 && return 0
    local dockerd
    dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
    local engine_log="$LOG.dockerd"
    log "starting dockerd (data root $DOCKER_ROOT)"
    "${sudo[@]}" mkdir -p "$DOCKER_ROOT"
    # --group: the socket is this user's too when sudo started the engine.
    "${sudo[@]}" setsid "$dockerd" --data-root "$DOCKER_ROOT" --bridge=none \
        --iptables=false --ip-masq=false --group "$(id -gn)" </dev/null >"$engine_log" 2>&1 &
    ENGINE_PID=$!
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        kill -0 "$ENGINE_PID" 2>/dev/null || { tail -n 20 "$engine_log" >&2; die "dockerd exited"; }
        ((SECONDS < deadline)) || { tail -n 20 "$engine_log" >&2; die "dockerd did not answer within 60 s"; }
        sleep 0.5
    done
}

# The Debian mirror apt already uses for this release (never written down).
apt_mirror() {
    apt-cache policy | awk -v suite="$CODENAME/main" '$3 == suite && $2 ~ /^https?:/ { print $2; exit }'
}

build_images() {
    if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        local mirror rootfs
        mirror="$(apt_mirror)"
        [[ -n $mirror ]] || die "no $CODENAME/main mirror in apt's sources"
        rootfs="$(mktemp -d)"
        log "building $BASE_IMAGE with debootstrap from $mirror"
        "${sudo[@]}" debootstrap --variant=minbase "$CODENAME" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
            || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed"; }
        "${sudo[@]}" tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
        "${sudo[@]}" rm -rf "$rootfs" "$rootfs.log"
    fi
    log "building $MARIADB_IMAGE"
    docker build -q --network host --build-arg "BASE=$BASE_IMAGE" -t "$MARIADB_IMAGE" \
        -f docker/Dockerfile.mariadb docker/ >/dev/null 2>"$LOG.build" \
        || { cat "$LOG.build" >&2; die "building $MARIADB_IMAGE failed"; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

compose() { docker-compose --ansi never -f docker-compose.test.yml -p "$PROJECT" "$@"; }

# Containers and volumes of test projects (the drills' own included) that
# are still there.
remove_leftovers() {
    docker ps -aq --filter label=gantry.test=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q --filter label=gantry.test=1 | xargs -r docker volume rm >/dev/null 2>&1 || true
}

teardown() {
    compose down -v --timeout 5 >/dev/null 2>&1 || true
    remove_leftovers
    if [[ -n $ENGINE_PID ]]; then
        "${sudo[@]}" kill "$ENGINE_PID" 2>/dev/null || true
        wait "$ENGINE_PID" 2>/dev/null || true
    fi
    rm -f "$LOG" "$LOG.build" "$LOG.dockerd"
}

wait_healthy() {
    local deadline=$((SECONDS + 120)) id state healthy
    while :; do
        healthy=0
        # docker itself, by compose's project label: docker-compose takes
        # most of a second to start.
        for id in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
            state="$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")"
            [[ $state == running/healthy ]] && healthy=$((healthy + 1))
        done
        ((healthy == 4)) && return 0   # three servers and Gantry
        if ((SECONDS >= deadline)); then
            compose ps >&2
            compose logs --tail=30 >&2
            die "the compose topology did not become healthy within 120 s"
        fi
        sleep 0.5
    done
}

totals=1
if [[ ${1:-} == --no-totals ]]; then
    totals=0
    shift
fi
LOG="$(mktemp)"
trap teardown EXIT
scripts/install-deps.sh   # docker.io, docker-compose and debootstrap among them
start_engine
build_images
log "engine and images ready after ${SECONDS}s"
cargo build --locked --bins --tests >&2

export GANTRY_BIN="$PWD/target/debug/gantry"
# The compose file's port variables, on ports free now.
export GANTRY_PRIMARY_PORT GANTRY_REPLICA1_PORT GANTRY_REPLICA2_PORT GANTRY_PORT GANTRY_ADMIN_PORT
GANTRY_PRIMARY_PORT="$(free_port)"
GANTRY_REPLICA1_PORT="$(free_port)"
GANTRY_REPLICA2_PORT="$(free_port)"
GANTRY_PORT="$(free_port)"
GANTRY_ADMIN_PORT="$(free_port)"
remove_leftovers
log "bringing up $PROJECT"
compose up -d >&2
wait_healthy

export GANTRY_TEST_TOPOLOGY=compose GANTRY_TEST_COMPOSE_PROJECT="$PROJECT"
status=0
cargo test --locked --no-fail-fast "${TESTS[@]/#/--test=}" -- --test-threads=2 "$@" 2>&1 | tee "$LOG" || status=$?
log "done after ${SECONDS}s"
if ((totals)); then
    awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$LOG"
fi
exit "$status"
