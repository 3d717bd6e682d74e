#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang 16 (installed with install-deps.sh --fuzz)
# and runs each over its seed corpus for a while:  scripts/fuzz.sh [seconds per target, 20]
# A crash leaves its input in build-fuzz/crashes/<target>/ and fails the run; copy it into
# tests/fuzz/corpus/<target>/ once fixed, so it stays a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
./scripts/install-deps.sh --fuzz
CXX=clang++-16 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSIMCAP_FUZZ=ON -DSIMCAP_BUILD_TESTS=OFF -DSIMCAP_BUILD_BENCH=OFF -DSIMCAP_WERROR=ON >/dev/null
targets=(fuzz_record_parser fuzz_feed_hello fuzz_config fuzz_checkpoint fuzz_http_api)
cmake --build build-fuzz --target "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  work=build-fuzz/corpus/$name crashes=build-fuzz/crashes/$name
  mkdir -p "$work" "$crashes"
  echo "fuzzing $name for ${secs}s"
  # New inputs go to the build's copy; the seed corpus in the tree stays as committed.
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "build-fuzz/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
      -artifact_prefix="$crashes/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$name" \
      > "build-fuzz/$name.log" 2>&1; then
    echo "$name: FAILED (log: build-fuzz/$name.log, input in $crashes/)"
    tail -40 "build-fuzz/$name.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/$name.log" | tail -2
  fi
done
exit $status
