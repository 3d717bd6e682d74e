#!/usr/bin/env bash
# Configures a sanitizer build tree with Debian's clang 16 and prints its directory:
#   scripts/clang-tree.sh address   build-asan: AddressSanitizer + UndefinedBehaviorSanitizer,
#                                   with the libFuzzer targets (scripts/fuzz.sh) and the tests
#   scripts/clang-tree.sh thread    build-tsan: ThreadSanitizer, with the tests
# Used by scripts/sanitize.sh and scripts/fuzz.sh, so that one build serves both.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
  address) dir=build-asan flags=(-DSIMCAP_FUZZ=ON) ;;
  thread) dir=build-tsan flags=(-DSIMCAP_SANITIZE=thread) ;;
  *) echo "clang-tree.sh: address or thread, not '${1:-}'" >&2; exit 2 ;;
esac
# -O1: a sanitizer build is for finding faults, and it compiles in half the time of -O2.
CXX=clang++-16 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
  "${flags[@]}" -DSIMCAP_BUILD_TESTS=ON -DSIMCAP_BUILD_BENCH=OFF -DSIMCAP_WERROR=ON \
  -DCMAKE_UNITY_BUILD=ON >/dev/null
echo "$dir"
