#!/usr/bin/env bash
# Installs what is missing, builds Release and starts simcapd on the default config.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh >&2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target simcapd simcap-feed >&2  # stdout carries only the port lines
mkdir -p data
exec ./build/simcapd --config config/simcapd.toml --data-dir ./data "$@"
