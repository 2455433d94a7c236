#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine that has the Rust toolchain.
# Installs what it needs itself (Debian packages, the Python `cryptography` package).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
if ((${#need_apt[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi
# The independent verifiers in tests/py use `cryptography`; tests skip them only when python3 is absent.
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography

echo "== rustfmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked
