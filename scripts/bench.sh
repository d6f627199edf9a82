#!/usr/bin/env bash
# Reproduce the figures in BENCHMARKS.md: one core (taskset -c 0), the same generated file for
# every measurement, each measurement in its own process so peak RSS is its own.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
FILE=${FILE:-/tmp/fa-bench/alerts-$N.jsonl}
cargo build --release -q -p fa-bench
B=target/release/fa-bench
mkdir -p "$(dirname "$FILE")"
[ -s "$FILE" ] || $B gen "$N" "$FILE"
ls -l "$FILE"
taskset -c 0 $B parse "$FILE"
taskset -c 0 $B analyze "$FILE"
taskset -c 0 $B analyze "$FILE" --summary
taskset -c 0 $B analyze "$FILE" --every-alert
