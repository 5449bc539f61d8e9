#!/bin/bash
# Prints the SQL that makes a MariaDB server one of the topology's: the
# databases and accounts of scripts/topology.sh and, with ROLE=replica, GTID
# replication from the primary at 127.0.0.1:PRIMARY_PORT. One statement a
# line (an init file's rule); nothing is binlogged, so every server creates
# its own and a replica is usable before it has replicated anything.
# Used by mariadb-entrypoint.sh (the test image) and mariadb-init.sh (the
# official image).
set -euo pipefail
: "${ROLE:?}"
echo "SET SESSION sql_log_bin = 0;"
printf 'CREATE DATABASE IF NOT EXISTS %s;\n' app sbtest test
for host in 127.0.0.1 localhost; do
    cat <<SQL
CREATE USER IF NOT EXISTS 'app'@'$host' IDENTIFIED BY 'app_pw';
GRANT ALL ON app.* TO 'app'@'$host';
GRANT ALL ON sbtest.* TO 'app'@'$host';
GRANT ALL ON test.* TO 'app'@'$host';
CREATE USER IF NOT EXISTS 'monitor'@'$host' IDENTIFIED BY 'monitor_pw';
GRANT REPLICATION CLIENT, PROCESS, SLAVE MONITOR, REPLICATION MASTER ADMIN, REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, RELOAD ON *.* TO 'monitor'@'$host';
CREATE USER IF NOT EXISTS 'repl'@'$host' IDENTIFIED BY 'repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'$host';
CREATE USER IF NOT EXISTS 'admin'@'$host' IDENTIFIED BY 'admin_pw';
GRANT ALL PRIVILEGES ON *.* TO 'admin'@'$host' WITH GRANT OPTION;
SQL
done
if [[ $ROLE == replica ]]; then
    : "${PRIMARY_PORT:?}"
    # MASTER_CONNECT_RETRY=1: back at once after a failover drill.
    echo "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT," \
        "MASTER_USER='repl', MASTER_PASSWORD='repl_pw', MASTER_USE_GTID=slave_pos," \
        "MASTER_CONNECT_RETRY=1;"
    echo "START SLAVE;"
fi
