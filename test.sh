#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh --test
# The particle-api-js compatibility test's client, from the npm registry.
if [ ! -d tests/e2e/particle_api_js/node_modules/particle-api-js ]; then
  (cd tests/e2e/particle_api_js && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi
# The sources are formatted as .clang-format says (fix with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i).
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  git ls-files -z '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run -Werror
else
  echo "not a git checkout: the format check is skipped"
fi
werror=${SIMCAP_WERROR:-OFF}
# A unity build (up to eight sources of a target compiled as one file): a fifth less build time.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSIMCAP_BUILD_TESTS=ON -DSIMCAP_WERROR="$werror" \
  -DCMAKE_UNITY_BUILD=ON >/dev/null
cmake --build build
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@"
# The libFuzzer targets, a while each, when clang 16 is installed (install-deps.sh --fuzz;
# CI installs it): SIMCAP_FUZZ_SECONDS per target (20), SIMCAP_FUZZ_SECONDS=0 skips them.
if command -v clang++-16 > /dev/null && [ "${SIMCAP_FUZZ_SECONDS:-20}" != 0 ]; then
  ./scripts/fuzz.sh "${SIMCAP_FUZZ_SECONDS:-20}"
fi
