#!/usr/bin/env bash
# Alerts/s that 1, 2 and 3 `serve --nats` replicas take in and analyse together, sharing one
# PostgreSQL database and one NATS JetStream (BENCHMARKS.md "Scaled out").
#
# For each replica count: a fresh database, a private nats-server (its own port and store
# directory; the machine's shared NATS is never touched), N replicas, one fa-load per replica
# sending for DURATION; the figure is alerts acknowledged / time from the first request until
# the last of them is analysed in PostgreSQL.
#
#   scripts/bench-nats.sh                 # 1, 2 and 3 replicas, 20 s of load each
#   DURATION=30s COUNTS="1 3" scripts/bench-nats.sh
#
# Needs: nats-server on PATH, PostgreSQL at FA_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres, trust authentication), psql.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${FA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-20s}"
COUNTS="${COUNTS:-1 2 3}"
CONNECTIONS="${CONNECTIONS:-8}"
BATCH="${BATCH:-10}"

[ -n "${FA_BENCH_NO_BUILD:-}" ] || cargo build --release --quiet -p falco-analyst -p fa-server --bin falco-analyst --bin fa-load
BIN=target/release/falco-analyst
LOAD=target/release/fa-load
WORK="$(mktemp -d /tmp/fa-bench-nats-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

printf '%-9s %-10s %-9s %-10s %s\n' replicas acked seconds alerts/s per-replica
for n in $COUNTS; do
  db="fa_bench_nats_${n}_$$"
  psql "$PG" -qAtc "CREATE DATABASE $db" >/dev/null
  url="${PG%/*}/$db"
  nport="$(free_port)"
  nats-server -js -a 127.0.0.1 -p "$nport" -sd "$WORK/nats-$n" >"$WORK/nats-$n.log" 2>&1 &
  nats_pid=$!
  PIDS+=("$nats_pid")
  sleep 1
  ports=()
  replica_pids=()
  for i in $(seq 1 "$n"); do
    port="$(free_port)"
    ports+=("$port")
    mkdir -p "$WORK/r$n-$i"
    (cd "$WORK/r$n-$i" && RUST_LOG=warn exec "$OLDPWD/$BIN" serve --listen "127.0.0.1:$port" \
      --insecure-no-auth --db "$url" --nats "nats://127.0.0.1:$nport" \
      --nats-replica "r$i" >"$WORK/r$n-$i.log" 2>&1) &
    replica_pids+=($!)
    PIDS+=($!)
  done
  for port in "${ports[@]}"; do
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
  done
  # Partitions shared out (a few lease ticks).
  sleep 5
  t0="$(now)"
  load_pids=()
  for i in "${!ports[@]}"; do
    "$LOAD" --url "http://127.0.0.1:${ports[$i]}/api/v1/alerts" --duration "$DURATION" \
      --warmup 0s --batch "$BATCH" --connections "$CONNECTIONS" --run-id "b$n-$i-$$" \
      --json >"$WORK/load-$n-$i.json" &
    load_pids+=($!)
  done
  for p in "${load_pids[@]}"; do wait "$p"; done
  acked=0
  for i in "${!ports[@]}"; do
    ok="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["alerts_ok"])' "$WORK/load-$n-$i.json")"
    acked=$((acked + ok))
  done
  until [ "$(psql "$url" -qAtc 'SELECT count(*) FROM alerts WHERE analyzed')" -ge "$acked" ]; do
    sleep 0.2
  done
  t1="$(now)"
  python3 - "$n" "$acked" "$t0" "$t1" <<'EOF'
import sys
n, acked, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = t1 - t0
print(f"{n:<9} {acked:<10} {s:<9.1f} {acked / s:<10.0f} {acked / s / n:.0f}")
EOF
  for p in "${replica_pids[@]}"; do kill "$p"; done
  for p in "${replica_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  kill "$nats_pid"; wait "$nats_pid" 2>/dev/null || true
  psql "$PG" -qAtc "DROP DATABASE $db WITH (FORCE)" >/dev/null
done
