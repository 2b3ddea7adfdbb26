#!/bin/sh
# Prints the version that make build writes into vigil (-X main.version) and make package into
# the .deb: the tag vX.Y.Z without its v when HEAD is tagged, X.Y.Z+N.gHASH N commits after it,
# and 0.0.0~gitDATE.HASH before the first tag ('~' sorts before anything, so the first tagged
# release upgrades these; the commit time keeps successive builds in order for dpkg).
set -eu
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	echo "$d" | sed -e 's/^v//' -e 's/-\([0-9]*\)-g/+\1.g/'
elif h=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	echo "0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S HEAD).$h"
else
	echo "0.0.0~dev"
fi
