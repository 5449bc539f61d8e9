#!/bin/bash
# One MariaDB server of the compose test topology (docker-compose.test.yml),
# with scripts/topology.sh's server options. Environment: ROLE
# (primary|replica), SERVER_ID, PORT, PRIMARY_PORT (replicas) and
# ROOT_PASSWORD (root@127.0.0.1; root@localhost over the socket has none).
# Extra arguments go to mariadbd.
#
# On the first start (an empty data volume) it creates the system tables and
# an init file from topology-sql.sh; later starts keep what the server has.
set -euo pipefail
: "${ROLE:?}" "${SERVER_ID:?}" "${PORT:?}" "${ROOT_PASSWORD:?}"
data=/var/lib/gantry-mariadb

args=(
    --datadir="$data" --socket=/run/mysqld/mysqld.sock --user=mysql
    --port="$PORT" --bind-address=127.0.0.1 --server-id="$SERVER_ID"
    --log-bin=mysql-bin --relay-log=relay-bin --log-slave-updates
    --binlog-format=ROW --gtid-strict-mode=ON --skip-name-resolve
    --report-host=127.0.0.1 --report-port="$PORT"
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M
    --performance-schema=OFF --max-connections=1000 --max-allowed-packet=256M
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
)
[[ $ROLE == primary ]] || args+=(--read-only=ON)

if [[ ! -d $data/mysql ]]; then
    mariadb-install-db --no-defaults --datadir="$data" --user=mysql \
        --auth-root-authentication-method=normal --skip-test-db >/tmp/install.log 2>&1 \
        || { cat /tmp/install.log >&2; exit 1; }
    {
        /usr/local/bin/topology-sql.sh
        # mariadb-install-db made root@127.0.0.1 without a password.
        echo "ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$ROOT_PASSWORD';"
    } >"$data/gantry-init.sql"
    chown mysql:mysql "$data/gantry-init.sql"
    args+=(--init-file="$data/gantry-init.sql")
fi
exec mariadbd --no-defaults "${args[@]}" "$@"
