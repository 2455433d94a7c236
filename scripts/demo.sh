#!/usr/bin/env bash
# The one-command demo: builds megatorrent in release and runs `megatorrent demo`, which
# publishes a generated file from local seeding peers through a local DHT and downloads it
# as a new subscriber, everything on 127.0.0.1 (never the public DHT).
#
#   ./scripts/demo.sh                                  # 256 MiB, 20 DHT nodes, 3 peers
#   ./scripts/demo.sh --size 67108864 --nodes 8 --peers 2
#
# Works on a fresh Debian machine that has only the Rust toolchain: the build needs a C++
# compiler (the `cxx` crate compiles a small C++ runtime), installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v c++ >/dev/null 2>&1; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq g++
fi

cargo build --release --locked
exec target/release/megatorrent demo "$@"
