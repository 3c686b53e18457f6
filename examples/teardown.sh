#!/bin/sh
echo "taking down $1 ($SUPERVISE_REASON; deploy $SUPERVISE_COMMAND_STATUS)"
exec /srv/ci/env destroy "$1"
