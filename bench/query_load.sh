#!/usr/bin/env bash
# Ingest with and without about 1,000 queries/s, against a fresh simcapd each time.
#   bench/query_load.sh [runs] [records]
# CHECKPOINT_INTERVAL=0s in the environment runs simcapd without its store (default: 200ms).
# Needs a Release build in ./build and wrk. Prints, per run: records/s without queries,
# records/s with queries, and wrk's lines (per-SIM GET, then fleet usage); then a summary: the
# ingest cost of the queries from the mean rates (single runs vary by ±15 % on a shared
# 2-core machine), and the median and range of each route's p99.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
records=${2:-30000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

./build/simcap-feed --write-iccids "$work/iccids.txt" --sims 1000000 >/dev/null
cat >"$work/bench.toml" <<TOML
[server]
data_dir = "$work/data"
checkpoint_interval = "${CHECKPOINT_INTERVAL:-200ms}"
[[tokens]]
token = "bench-admin"
scope = "admin"
[[feeds]]
name = "bench"
token = "bench-token"
[[products]]
id = "fleet"
default_mb_limit = 5
iccids_file = "$work/iccids.txt"
TOML

start_daemon() {
  rm -rf "$work/data" "$work/out"
  ./build/simcapd --config "$work/bench.toml" --feed 127.0.0.1:0 --http 127.0.0.1:0 \
    --log-level warn >"$work/out" 2>&1 &
  daemon=$!
  for _ in $(seq 300); do
    grep -q "feed listening on" "$work/out" 2>/dev/null && break
    sleep 0.1
  done
  hport=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
  fport=$(sed -n 's/.*feed listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
}
stop_daemon() {
  kill "$daemon"
  wait "$daemon" || true
}
feed() {
  ./build/simcap-feed --connect "127.0.0.1:$fport" --feed bench --token bench-token \
    --sims 1000000 --records "$records" --quiet --no-ids
}

export SIMS=1000000 TOKEN=bench-admin PRODUCT=fleet
for r in $(seq "$runs"); do
  start_daemon
  line=$(feed | tail -1)
  echo "run $r, no queries:   $line"
  echo "$line" | sed -n 's/.* \([0-9]*\) records\/s.*/\1/p' >>"$work/base"
  stop_daemon
  start_daemon
  FLEET_SHARE=0 wrk -t1 -c9 -d6s --latency -s bench/query_load.lua "http://127.0.0.1:$hport" \
    >"$work/wrk-sim" 2>&1 &
  w1=$!
  FLEET_SHARE=1 wrk -t1 -c1 -d6s --latency -s bench/query_load.lua "http://127.0.0.1:$hport" \
    >"$work/wrk-fleet" 2>&1 &
  w2=$!
  line=$(feed | tail -1)
  echo "run $r, with queries: $line"
  echo "$line" | sed -n 's/.* \([0-9]*\) records\/s.*/\1/p' >>"$work/withq"
  wait "$w1" "$w2"
  echo "  per-SIM GET:  $(grep requests/s "$work/wrk-sim")"
  echo "  fleet usage:  $(grep requests/s "$work/wrk-fleet")"
  sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$work/wrk-sim" >>"$work/p99-sim"
  sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$work/wrk-fleet" >>"$work/p99-fleet"
  stop_daemon
done

mean() { awk '{s += $1} END {printf "%.0f", s / NR}' "$1"; }
spread() { sort -n "$1" | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median %.2f ms (%.2f to %.2f)", m, v[1], v[NR]}'; }
b=$(mean "$work/base")
q=$(mean "$work/withq")
echo "summary over $runs runs: ingest $b records/s without queries, $q with: $(awk -v b="$b" -v q="$q" 'BEGIN {printf "%.1f", (b - q) * 100 / b}') % less"
echo "  per-SIM GET p99 $(spread "$work/p99-sim"); fleet usage p99 $(spread "$work/p99-fleet")"
