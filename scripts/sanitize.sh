#!/usr/bin/env bash
# Builds the unit and integration tests under a sanitizer with Debian's clang 16 and runs them:
#   scripts/sanitize.sh address   AddressSanitizer + UndefinedBehaviorSanitizer (build-asan)
#   scripts/sanitize.sh thread    ThreadSanitizer (build-tsan)
# Any report fails the test that made it (halt_on_error). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?"usage: scripts/sanitize.sh address|thread [ctest arguments]"}
shift
./scripts/install-deps.sh --test --fuzz
dir=$(./scripts/clang-tree.sh "$kind")
targets=(simcap_unit_and_integration_tests)
# The address tree builds simcapd and simcap-feed too, so that clang compiles them with -Werror
# as it does the tests (the e2e tests that run them are the plain build's).
if [ "$kind" = address ]; then targets+=(simcapd simcap-feed); fi
cmake --build "$dir" --target "${targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
# The header check is a compile, not a run: the plain build does it.
ctest --test-dir "$dir" -L 'unit|integration' -E headers_compile_alone --output-on-failure -j2 \
  --timeout 900 "$@"
