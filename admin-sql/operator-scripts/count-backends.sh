#!/bin/bash
# Reference-deployment script: how many lines does Atlas's backend table
# print? (a header line plus one line per backend). Used by monitoring to
# notice a backend that disappeared. Runs unchanged against Gantry's admin
# port; the connection settings default to the reference deployment's.
ATLAS_HOST=${ATLAS_HOST:-127.0.0.1}
ATLAS_PORT=${ATLAS_PORT:-2345}
ATLAS_USER=${ATLAS_USER:-user}
ATLAS_PASSWORD=${ATLAS_PASSWORD:-pwd}

mysql -h"$ATLAS_HOST" -P"$ATLAS_PORT" -u"$ATLAS_USER" -p"$ATLAS_PASSWORD" -e "select * from backends" | wc -l
