#!/usr/bin/env bash
# End-to-end ingest of two builds side by side, alternating runs, a fresh simcapd each time:
#   bench/ingest_ab.sh BUILD_A BUILD_B [runs] [records]
# Each build directory holds simcapd and simcap-feed (Release). 1M SIMs with a 5 MB limit,
# simcap-feed flat out to its last durable ack (no record ids). Prints each run's records/s and
# each build's mean, and B's mean as a share of A's.
set -euo pipefail
a=$1 b=$2 runs=${3:-4} records=${4:-20000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$a/simcap-feed" --write-iccids "$work/iccids.txt" --sims 1000000 >/dev/null
cat >"$work/bench.toml" <<TOML
[server]
data_dir = "$work/data"
[[feeds]]
name = "bench"
token = "bench-token"
[[products]]
id = "fleet"
default_mb_limit = 5
iccids_file = "$work/iccids.txt"
TOML
run() {  # build dir -> records/s
  rm -rf "$work/data" "$work/out"
  "$1/simcapd" --config "$work/bench.toml" --feed 127.0.0.1:0 --http 127.0.0.1:0 --log-level warn >"$work/out" 2>&1 &
  local daemon=$!
  for _ in $(seq 600); do
    grep -q "feed listening on" "$work/out" 2>/dev/null && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*feed listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
  "$1/simcap-feed" --connect "127.0.0.1:$port" --feed bench --token bench-token --sims 1000000 \
    --records "$records" --quiet --no-ids | tail -1 | sed -n 's/.* \([0-9]*\) records\/s.*/\1/p'
  kill "$daemon"
  wait "$daemon" || true
}
for r in $(seq "$runs"); do
  ra=$(run "$a"); rb=$(run "$b")
  echo "run $r: A $ra records/s, B $rb records/s"
  echo "$ra" >>"$work/a"; echo "$rb" >>"$work/b"
done
awk 'FNR==1{f++} {s[f]+=$1; n[f]++} END {ma=s[1]/n[1]; mb=s[2]/n[2]; printf "mean A %.0f, mean B %.0f records/s: B/A = %.3f\n", ma, mb, mb/ma}' "$work/a" "$work/b"
