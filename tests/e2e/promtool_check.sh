#!/usr/bin/env bash
# /metrics of a running simcapd, with some traffic behind it, checked by Prometheus's promtool.
set -euo pipefail
simcapd=$1 feed=$2 iccids=$3
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/simcapd.toml" <<TOML
[[feeds]]
name = "carrier-a"
token = "feed-secret"
[[products]]
id = "acme"
iccids_file = "$iccids"
TOML
"$simcapd" --config "$dir/simcapd.toml" --data-dir "$dir/data" --http 127.0.0.1:0 --feed 127.0.0.1:0 \
  > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q "feed listening" "$dir/out" && break; sleep 0.1; done
http=$(sed -n 's/^http listening on //p' "$dir/out")
feedaddr=$(sed -n 's/^feed listening on //p' "$dir/out")
[ -n "$http" ] && [ -n "$feedaddr" ] || { cat "$dir/err"; exit 1; }
"$feed" --connect "$feedaddr" --token feed-secret --sims 1000 --records 20000 --quiet > /dev/null
printf '{"seq":999999,"iccid":"123"}\n' > "$dir/bad.jsonl"
"$feed" --connect "$feedaddr" --token feed-secret --replay "$dir/bad.jsonl" --quiet > /dev/null
curl -sf "http://$http/healthz" > /dev/null
curl -sf "http://$http/metrics" > "$dir/metrics"
grep -q '^simcap_records_total{outcome="counted"} 20000$' "$dir/metrics" || { cat "$dir/metrics"; exit 1; }
grep -q '^simcap_records_rejected_total{reason="bad_iccid"} 1$' "$dir/metrics" || { cat "$dir/metrics"; exit 1; }
grep -q '^simcap_batch_apply_seconds_bucket{le="+Inf"} [1-9]' "$dir/metrics" || { cat "$dir/metrics"; exit 1; }
promtool check metrics < "$dir/metrics"
echo "promtool: /metrics is valid"
