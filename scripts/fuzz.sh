#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang 16 (installed with install-deps.sh --fuzz)
# and runs each over its seed corpus for a while:  scripts/fuzz.sh [seconds per target, 20]
# A crash leaves its input in build-asan/crashes/<target>/ and fails the run; copy it into
# tests/fuzz/corpus/<target>/ once fixed, so it stays a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
./scripts/install-deps.sh --test --fuzz
# The AddressSanitizer tree, shared with scripts/sanitize.sh address.
dir=$(./scripts/clang-tree.sh address)
targets=(fuzz_record_parser fuzz_feed_hello fuzz_feed_session fuzz_config fuzz_checkpoint
  fuzz_http_api)
cmake --build "$dir" --target "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  work=$dir/corpus/$name crashes=$dir/crashes/$name
  mkdir -p "$work" "$crashes"
  echo "fuzzing $name for ${secs}s"
  # New inputs go to the build's copy; the seed corpus in the tree stays as committed.
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$dir/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
      -artifact_prefix="$crashes/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$name" \
      > "$dir/$name.log" 2>&1; then
    echo "$name: FAILED (log: $dir/$name.log, input in $crashes/)"
    tail -40 "$dir/$name.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$dir/$name.log" | tail -2
  fi
done
exit $status
