-- Users for the MySQL 8.4 compose topology (mirrors scripts/topology.sh),
-- with MySQL 8.4's default caching_sha2_password: Gantry authenticates to
-- the servers in full over TLS (backend-ssl = preferred) or RSA.
CREATE DATABASE IF NOT EXISTS app;
CREATE DATABASE IF NOT EXISTS sbtest;
CREATE DATABASE IF NOT EXISTS test;
CREATE USER 'app'@'%' IDENTIFIED BY 'app_pw';
GRANT ALL ON app.* TO 'app'@'%';
GRANT ALL ON sbtest.* TO 'app'@'%';
GRANT ALL ON test.* TO 'app'@'%';
CREATE USER 'monitor'@'%' IDENTIFIED BY 'monitor_pw';
GRANT REPLICATION CLIENT, PROCESS, REPLICATION SLAVE, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN ON *.* TO 'monitor'@'%';
CREATE USER 'repl'@'%' IDENTIFIED BY 'repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
