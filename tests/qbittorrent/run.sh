#!/usr/bin/env bash
# The qBittorrent tests: the patched qbittorrent-nox (built by scripts/qbittorrent.sh) driven through
# its WebUI in headless Chromium and through its API, on a local DHT testnet (127.0.0.1 only).
# Installs what it needs (Debian chromium, chromium-driver, python3-selenium). Screenshots and
# logs of failed runs go to build/qbittorrent-test/.
#
#   tests/qbittorrent/run.sh [api|browser|sigterm ...]
set -euo pipefail
cd "$(dirname "$0")/../.."

nox=build/qbittorrent/build/qbittorrent-nox
if [[ ! -x $nox ]]; then
    echo "tests/qbittorrent: $nox is missing; run scripts/qbittorrent.sh first" >&2
    exit 1
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' 2>/dev/null || need_apt+=(python3-selenium)
if ((${#need_apt[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

cargo build --locked --bin megatorrent
artifacts=build/qbittorrent-test
mkdir -p "$artifacts"
# Bounded as a whole too: a hung browser or process must not hold CI for hours.
timeout --kill-after=30 1500 /usr/bin/python3 tests/qbittorrent/test_qbittorrent.py \
    --nox "$nox" --megatorrent target/debug/megatorrent --artifacts "$artifacts" "$@"
