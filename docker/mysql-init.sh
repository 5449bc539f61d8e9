#!/bin/bash
# Init hook for the official MySQL 8.4 image (docker-compose.yml), sourced by
# its entrypoint on the first start: the topology's databases and accounts,
# in MySQL 8.4's default caching_sha2_password, and on a replica GTID
# replication from the primary at 127.0.0.1:PRIMARY_PORT. Nothing is
# binlogged: each server creates its own, and no replica has errant GTIDs.
{
    echo "SET SESSION sql_log_bin = 0;"
    printf 'CREATE DATABASE IF NOT EXISTS %s;\n' app sbtest test
    cat <<'SQL'
CREATE USER 'app'@'%' IDENTIFIED BY 'app_pw';
GRANT ALL ON app.* TO 'app'@'%';
GRANT ALL ON sbtest.* TO 'app'@'%';
GRANT ALL ON test.* TO 'app'@'%';
CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor_pw';
GRANT REPLICATION CLIENT, PROCESS, RELOAD, REPLICATION SLAVE, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN ON *.* TO 'monitor'@'%';
CREATE USER 'repl'@'%' IDENTIFIED BY 'repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE USER 'admin'@'%' IDENTIFIED BY 'admin_pw';
GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
SQL
    if [[ $ROLE == replica ]]; then
        echo "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$PRIMARY_PORT," \
            "SOURCE_USER='repl', SOURCE_PASSWORD='repl_pw', SOURCE_AUTO_POSITION=1," \
            "GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1;"
        echo "START REPLICA;"
    fi
} | docker_process_sql
