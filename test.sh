#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
werror=${SIMCAP_WERROR:-OFF}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSIMCAP_BUILD_TESTS=ON -DSIMCAP_WERROR="$werror" >/dev/null
cmake --build build
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@"
