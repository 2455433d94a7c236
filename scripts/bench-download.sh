#!/usr/bin/env bash
# Peak memory and throughput of one `megatorrent download` as a process of its own, against a
# `publish` process and a few `dht node` processes, all on 127.0.0.1 (docs/PERFORMANCE.md).
#
#   scripts/bench-download.sh [SIZE_MIB] [NODES]     (defaults: 1024 MiB, 5 nodes)
#
# Prints the download's wall time, throughput and peak RSS (from /usr/bin/time -v, which the
# Debian package `time` provides).
set -euo pipefail

size_mib=${1:-1024}
nodes=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/megatorrent"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin megatorrent

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Start a long-running command and wait (10 s at most) for its line starting with $1.
first_line() {
    local prefix=$1 out=$2
    for _ in $(seq 100); do
        if line=$(grep -m1 "^$prefix" "$out" 2>/dev/null); then
            echo "${line#"$prefix"}"
            return 0
        fi
        sleep 0.1
    done
    echo "no '$prefix' line in $out" >&2
    return 1
}

"$bin" dht node --listen 127.0.0.1:0 >"$work/node0.out" &
pids+=($!)
boot=$(first_line "dht listening " "$work/node0.out")
for i in $(seq 1 $((nodes - 1))); do
    "$bin" dht node --listen 127.0.0.1:0 --bootstrap "$boot" >"$work/node$i.out" &
    pids+=($!)
    first_line "dht listening " "$work/node$i.out" >/dev/null
done

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/payload.bin"
"$bin" keygen --out "$work/id.json" >/dev/null
"$bin" publish "$work/payload.bin" --identity "$work/id.json" --blobs "$work/pub" \
    --listen 127.0.0.1:0 --bootstrap "$boot" >"$work/publish.out" &
pids+=($!)
for _ in $(seq 600); do
    grep -q '^published seq' "$work/publish.out" && break
    sleep 0.1
done
grep -q '^published seq' "$work/publish.out" || { echo "publish did not finish" >&2; exit 1; }
pubkey=$(first_line "public key " "$work/publish.out")

start=$(date +%s.%N)
/usr/bin/time -v -o "$work/time.txt" "$bin" download "$pubkey" --out "$work/out" \
    --blobs "$work/sub" --bootstrap "$boot" >/dev/null 2>"$work/download.err" ||
    { cat "$work/download.err" >&2; exit 1; }
grep '^done:' "$work/download.err" || true
end=$(date +%s.%N)
cmp -s "$work/payload.bin" "$work/out/payload.bin" || { echo "download differs" >&2; exit 1; }

rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
awk -v s="$size_mib" -v a="$start" -v b="$end" -v r="$rss_kib" 'BEGIN {
    t = b - a
    printf "download process, %d MiB: %.2f s wall (start-up and DHT lookups included), peak RSS %.1f MiB, output verified identical\n", s, t, r / 1024
}'
