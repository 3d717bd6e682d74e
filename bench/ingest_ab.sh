#!/usr/bin/env bash
# End-to-end ingest of two builds side by side, alternating runs, a fresh simcapd each time:
#   bench/ingest_ab.sh BUILD_A BUILD_B [runs] [records]
# AB_EXTRA_B, when set, is TOML appended to B's config only (e.g. a sink), to compare a
# setting with the same build: AB_EXTRA_B="$(cat dead-sink.toml)" bench/ingest_ab.sh build build
# AB_FEED_B, when set, are more simcap-feed arguments for B's runs (e.g. "--tls --ca ca.pem"
# with a [tls] table in AB_EXTRA_B: TLS against plaintext, see the README). AB_IDS_B=1: B's
# records carry record ids (the id path against none, see the README); AB_IDS_A=1: A's do.
# AB_FEED: simcap-feed arguments for both (e.g. "--spread 3600"). AB_SERVER_A / AB_SERVER_B:
# [server] keys for A's / B's config (e.g. AB_SERVER_A='checkpoint_interval = "10s"': the cost
# of checkpoints, see the README). AB_KEEP=1 keeps the work directory, with simcapd's log of
# each run (log-A1, log-B1, ...: RocksDB's "Stopping writes" and "Stalling writes" show there).
# Each build directory holds simcapd and simcap-feed (Release). 1M SIMs with a 5 MB limit,
# simcap-feed flat out to its last durable ack (no record ids). Prints each run's records/s, ack
# lag p50 and p99 (simcap-feed's: a record's send to its durable ack),
# simcapd's CPU time per record (user + system, from the feed's start to its last ack: steadier
# than the rate on a shared machine) and its resident memory after the last ack, each build's
# means, and B's as a share of A's.
set -euo pipefail
a=$1 b=$2 runs=${3:-4} records=${4:-20000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${AB_KEEP:-}" ] || rm -rf "$work"' EXIT
"$a/simcap-feed" --write-iccids "$work/iccids.txt" --sims 1000000 >/dev/null
cat >"$work/bench.toml" <<TOML
[server]
data_dir = "$work/data"
@SERVER@
[[feeds]]
name = "bench"
token = "bench-token"
[[products]]
id = "fleet"
country = "US"
default_mb_limit = 5
iccids_file = "$work/iccids.txt"
TOML
{ sed "s|@SERVER@|${AB_SERVER_B:-}|" "$work/bench.toml"; printf '%s\n' "${AB_EXTRA_B:-}"; } >"$work/bench_b.toml"
sed -i "s|@SERVER@|${AB_SERVER_A:-}|" "$work/bench.toml"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {  # build dir, config, simcap-feed arguments, log name -> "records/s cpu-ns/record rss-MiB p99 p50"
  rm -rf "$work/data" "$work/out"
  "$1/simcapd" --config "$2" --feed 127.0.0.1:0 --http 127.0.0.1:0 --log-level warn >"$work/out" 2>&1 &
  local daemon=$!
  for _ in $(seq 600); do
    grep -q "feed listening on" "$work/out" 2>/dev/null && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*feed listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
  local t0 t1 out
  t0=$(cpu_ticks "$daemon")
  out=$("$1/simcap-feed" --connect "127.0.0.1:$port" --feed bench --token bench-token --sims 1000000 \
    --records "$records" --quiet ${3:-} | tail -2)
  t1=$(cpu_ticks "$daemon")
  local rss rate p99 p50
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$daemon/status")
  rate=$(sed -n 's/.* \([0-9]*\) records\/s.*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99 \([0-9]*\) ms.*/\1/p' <<<"$out")
  p50=$(sed -n 's/.*p50 \([0-9]*\) ms.*/\1/p' <<<"$out")
  echo "$rate $(( (t1 - t0) * 1000000000 / $(getconf CLK_TCK) / records )) $rss ${p99:-0} ${p50:-0}"
  kill "$daemon"
  wait "$daemon" || true
  [ -z "${4:-}" ] || cp "$work/out" "$work/log-$4"
}
[ -z "${AB_KEEP:-}" ] || echo "work directory (kept): $work"
for r in $(seq "$runs"); do
  read -r ra ca ma la pa <<<"$(run "$a" "$work/bench.toml" "$([ -n "${AB_IDS_A:-}" ] || echo --no-ids) ${AB_FEED:-}" "A$r")"
  read -r rb cb mb lb pb <<<"$(run "$b" "$work/bench_b.toml" "$([ -n "${AB_IDS_B:-}" ] || echo --no-ids) ${AB_FEED:-} ${AB_FEED_B:-}" "B$r")"
  echo "run $r: A $ra records/s ($ca ns CPU/record, $ma MiB, ack lag p50 $pa ms, p99 $la ms), B $rb records/s ($cb ns CPU/record, $mb MiB, ack lag p50 $pb ms, p99 $lb ms)"
  echo "$ra $ca $ma $la $pa" >>"$work/a"; echo "$rb $cb $mb $lb $pb" >>"$work/b"
done
awk 'FNR==1{f++} {s[f]+=$1; c[f]+=$2; m[f]+=$3; l[f]+=$4; q[f]+=$5; n[f]++} END {ma=s[1]/n[1]; mb=s[2]/n[2]; ca=c[1]/n[1]; cb=c[2]/n[2];
  printf "mean A %.0f, mean B %.0f records/s: B/A = %.3f; CPU per record A %.0f ns, B %.0f ns: B/A = %.3f; RSS A %.0f MiB, B %.0f MiB; ack lag p50 A %.0f ms, B %.0f ms; p99 A %.0f ms, B %.0f ms\n",
         ma, mb, mb/ma, ca, cb, cb/ca, m[1]/n[1], m[2]/n[2], q[1]/n[1], q[2]/n[2], l[1]/n[1], l[2]/n[2]}' "$work/a" "$work/b"
