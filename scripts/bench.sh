#!/usr/bin/env bash
# Reproduce the CLI figures in BENCHMARKS.md: one core (taskset -c 0), the same generated file for
# every measurement, each single measurement in its own process so peak RSS is its own, and the
# parse/analyze comparison as the best of interleaved rounds in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
FILE=${FILE:-/tmp/fa-bench/alerts-$N.jsonl}
ROUNDS=${ROUNDS:-3}
cargo build --release -q -p fa-bench
B=${CARGO_TARGET_DIR:-target}/release/fa-bench
mkdir -p "$(dirname "$FILE")"
[ -s "$FILE" ] || $B gen "$N" "$FILE"
ls -l "$FILE"
taskset -c 0 $B compare "$FILE" --rounds="$ROUNDS"
taskset -c 0 $B parse "$FILE"
taskset -c 0 $B analyze "$FILE"
taskset -c 0 $B analyze "$FILE" --summary
taskset -c 0 $B analyze "$FILE" --every-alert
