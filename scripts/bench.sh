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

# analyze --threads 1 against 2 on the generated file and on real-shaped alerts over 20,000
# containers (fa-bench gen-real), best of ROUNDS interleaved runs, output compared.
cargo build --release -q -p falco-analyst
A=${CARGO_TARGET_DIR:-target}/release/falco-analyst
REAL=${REAL:-/tmp/fa-bench/real-$N.jsonl}
[ -s "$REAL" ] || $B gen-real "$N" "$REAL"
for f in "$FILE" "$REAL"; do
  for i in $(seq 1 "$ROUNDS"); do for t in 1 2; do
    /usr/bin/time -f "$(basename "$f") threads=$t %e s" "$A" analyze "$f" --format json --output - \
      --quiet --threads $t > "/tmp/fa-bench/threads-$t.out"; done; done
  cmp "/tmp/fa-bench/threads-1.out" "/tmp/fa-bench/threads-2.out"
done
