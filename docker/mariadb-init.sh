#!/bin/bash
# Init hook for the official MariaDB image (docker-compose.mariadb.yml),
# sourced by its entrypoint on the first start: the topology's accounts and
# replication, from topology-sql.sh.
/gantry/topology-sql.sh | docker_process_sql
