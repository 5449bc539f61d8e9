-- Users for the MySQL 8 compose topology (mirrors scripts/topology.sh).
-- Gantry logs in to backends with mysql_native_password (it does not do
-- caching_sha2_password's full RSA/TLS exchange towards backends).
CREATE DATABASE IF NOT EXISTS app;
CREATE DATABASE IF NOT EXISTS sbtest;
CREATE DATABASE IF NOT EXISTS test;
CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY 'app_pw';
GRANT ALL ON app.* TO 'app'@'%';
GRANT ALL ON sbtest.* TO 'app'@'%';
GRANT ALL ON test.* TO 'app'@'%';
CREATE USER 'monitor'@'%' IDENTIFIED WITH mysql_native_password BY 'monitor_pw';
GRANT REPLICATION CLIENT, PROCESS, REPLICATION SLAVE ON *.* TO 'monitor'@'%';
CREATE USER 'repl'@'%' IDENTIFIED WITH mysql_native_password BY 'repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
