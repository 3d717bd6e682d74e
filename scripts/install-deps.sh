#!/usr/bin/env bash
# Installs the Debian 12 packages simcap builds with, only those that are missing.
# With --test, also what the test suite uses: Node.js and npm (for the particle-api-js
# compatibility test, when no node is on the PATH), curl, clang-format, promtool,
# python3-aiosmtpd (the SMTP receiver of the email test) and openssl (test certificates).
# With --fuzz, clang 16 and its runtime libraries (libFuzzer, the sanitizers): scripts/fuzz.sh.
set -euo pipefail
with_tests=0 with_fuzz=0
for arg in "$@"; do
  case $arg in
    --test) with_tests=1 ;;
    --fuzz) with_fuzz=1 ;;
    *) echo "install-deps.sh: unknown option $arg (--test, --fuzz)" >&2; exit 2 ;;
  esac
done
pkgs=(build-essential cmake ninja-build pkg-config
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
      libsimdjson-dev libconcurrentqueue-dev libgtest-dev libgmock-dev libbenchmark-dev
      libtomlplusplus-dev libspdlog-dev libcli11-dev librocksdb-dev libssl-dev libexpat1-dev
      iso-codes mobile-broadband-provider-info)
if ((with_tests)); then
  pkgs+=(curl clang-format python3-aiosmtpd openssl)
  command -v node > /dev/null || pkgs+=(nodejs npm)
fi
((with_fuzz)) && pkgs+=(clang-16 libclang-rt-16-dev)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
updated=0
apt_install() {
  ((updated)) || { $sudo apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt_install "${missing[@]}"
fi
if ((with_tests)) && ! command -v promtool > /dev/null; then
  # promtool ships in the prometheus package; keep its server from being started.
  echo "installing: prometheus (for promtool)"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
    $sudo chmod +x "$policy"
    own_policy=1
  fi
  apt_install --no-install-recommends prometheus || true
  ((own_policy)) && $sudo rm -f "$policy"
  command -v promtool > /dev/null || { echo "promtool could not be installed" >&2; exit 1; }
fi
