#!/bin/bash
# Reference-deployment cron script: once a recovered replica has caught up
# (SHOW SLAVE STATUS says "Slave has read all relay log"), put it back into
# Atlas's read pool with ADD SLAVE. Runs unchanged against Gantry's admin
# port; the connection settings default to the reference deployment's.
ATLAS_HOST=${ATLAS_HOST:-127.0.0.1}
ATLAS_PORT=${ATLAS_PORT:-2345}
ATLAS_USER=${ATLAS_USER:-user}
ATLAS_PASSWORD=${ATLAS_PASSWORD:-pwd}
SLAVE_HOST=${SLAVE_HOST:-192.168.1.100}
SLAVE_PORT=${SLAVE_PORT:-3306}
SLAVE_USER=${SLAVE_USER:-monitor}
SLAVE_PASSWORD=${SLAVE_PASSWORD:-monitor_pw}

atlas() {
    mysql -h"$ATLAS_HOST" -P"$ATLAS_PORT" -u"$ATLAS_USER" -p"$ATLAS_PASSWORD" -e "$1"
}

state=$(mysql -h"$SLAVE_HOST" -P"$SLAVE_PORT" -u"$SLAVE_USER" -p"$SLAVE_PASSWORD" \
    -e "show slave status\G" | grep "Slave_SQL_Running_State" | awk -F': ' '{print $2}')

if ! echo "$state" | grep -q "Slave has read all relay log"; then
    echo "$SLAVE_HOST:$SLAVE_PORT has not caught up yet: ${state:-no slave status}"
    exit 0
fi
if atlas "select * from backends" | grep -q "$SLAVE_HOST:$SLAVE_PORT"; then
    echo "$SLAVE_HOST:$SLAVE_PORT is already a backend"
    exit 0
fi
atlas "add slave $SLAVE_HOST:$SLAVE_PORT;" && echo "added $SLAVE_HOST:$SLAVE_PORT"
