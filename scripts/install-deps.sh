#!/usr/bin/env bash
# Installs the Debian 12 packages simcap builds and tests with, only when one is missing.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
      libsimdjson-dev libconcurrentqueue-dev libgtest-dev libgmock-dev libbenchmark-dev
      libtomlplusplus-dev libspdlog-dev libcli11-dev librocksdb-dev)
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
