#!/bin/sh
# A stand-in for a person watching the web console while alerts arrive: signs in, keeps the
# live stream (/ui/live, Server-Sent Events) open and loads the overview once a second, until
# killed. Used for the console's ingest figure in BENCHMARKS.md.
#
#   scripts/console-watch.sh http://127.0.0.1:2802 USER PASSWORD [WINDOW]
set -eu
base=$1 user=$2 password=$3 window=${4:-1h}
jar=$(mktemp)
live=
trap 'rm -f "$jar"; [ -z "$live" ] || kill "$live" 2>/dev/null; exit 0' EXIT INT TERM
curl -sf -o /dev/null -c "$jar" --data-urlencode "user=$user" --data-urlencode "password=$password" \
    "$base/ui/login"
grep -q . "$jar" || { echo "sign-in failed" >&2; exit 1; }
curl -sfN -b "$jar" "$base/ui/live" >/dev/null &
live=$!
pages=0
while :; do
    curl -sf -o /dev/null -b "$jar" "$base/ui/?window=$window" && pages=$((pages + 1))
    echo "$pages" >"${WATCH_COUNT:-/dev/null}"
    sleep 1
done
