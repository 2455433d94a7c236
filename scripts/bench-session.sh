#!/usr/bin/env bash
# Session benchmarks of issue #12 on a loopback testnet (`dht node` processes on 127.0.0.1):
#
#   scripts/bench-session.sh update [SIZE_MIB]   (a) a SIZE_MIB channel (1 MiB files), one file
#                                                    changed: blobs and bytes a subscriber fetches
#   scripts/bench-session.sh share [SIZE_MIB]    (c) share of a 3rd subscriber's blobs served by
#                                                    the two other subscribers, publisher online
#   scripts/bench-session.sh memory [N]          (d) peak RSS of one session following N channels
#   scripts/bench-session.sh latency [INTERVAL]  (e) publish -> `synced` time, by polling every
#                                                    INTERVAL s, and by the publisher's gossip push
#   scripts/bench-session.sh rate [BYTES_PER_S]   a subscriber with --download-rate: bytes on disk
#                                                    per second over 10 s of steady transfer
#   scripts/bench-session.sh lookups [SIZE_MIB]   (b) DHT lookups of one download, per GiB
#
# Defaults: 1024 MiB, 100 channels, 30 s. Prints the figures and the load average (the machine
# may be shared: read the figures with it).
set -euo pipefail

what=${1:?usage: bench-session.sh update|share|memory|latency [ARG]}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/megatorrent"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin megatorrent --example follow_many
many="$root/target/release/examples/follow_many"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Wait (up to $3 s, default 600) for a line matching the regex $1 in file $2; print it.
wait_line() {
    local re=$1 out=$2 limit=${3:-600} line
    for _ in $(seq $((limit * 10))); do
        if line=$(grep -m1 -E "$re" "$out" 2>/dev/null); then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "no /$re/ in $out" >&2
    cat "$out" >&2
    return 1
}

"$bin" dht node --listen 127.0.0.1:0 >"$work/node0.out" &
pids+=($!)
boot=$(wait_line "^dht listening " "$work/node0.out" 10 | sed 's/^dht listening //')
for i in 1 2 3 4; do
    "$bin" dht node --listen 127.0.0.1:0 --bootstrap "$boot" >"$work/node$i.out" &
    pids+=($!)
    wait_line "^dht listening " "$work/node$i.out" 10 >/dev/null
done
pubkey=$("$bin" keygen --out "$work/id.json")

# publish N [ARGS]: run `publish` on $work/src (blob store $work/pub), wait for its line, print it.
publish() {
    local n=$1
    shift
    "$bin" publish "$work/src" --identity "$work/id.json" --blobs "$work/pub" \
        --listen 127.0.0.1:0 --bootstrap "$boot" "$@" >"$work/publish$n.out" &
    pids+=($!)
    pub_pid=$!
    wait_line "^published seq " "$work/publish$n.out"
}

# subscribe NAME [ARGS]: a `subscribe` process with its own state, logging who served what.
subscribe() {
    local name=$1
    shift
    "$bin" --log megatorrent=info subscribe "$pubkey" --out "$work/$name-out" \
        --state "$work/$name-state" --bootstrap "$boot" "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
}

make_files() {
    mkdir -p "$work/src"
    for i in $(seq 1 "$1"); do
        head -c $((1024 * 1024 - 64)) /dev/urandom >"$work/src/f$(printf %05d "$i").bin"
    done
}

case $what in
update)
    size=${2:-1024}
    make_files "$size"
    publish 1 >/dev/null
    seq1=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish1.out")
    subscribe s --interval 2
    wait_line "^synced seq $seq1\$" "$work/s.out" 1800 >/dev/null
    kill -TERM "$pub_pid"
    wait "$pub_pid" || true
    head -c $((1024 * 1024 - 64)) /dev/urandom >"$work/src/f00001.bin"
    # Not in a subshell, so that its PID reaches `pids` and is stopped at the end.
    publish 2 >/dev/null
    line=$(grep -m1 "^published seq " "$work/publish2.out")
    seq2=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish2.out")
    wait_line "^synced seq $seq2\$" "$work/s.out" 600 >/dev/null
    fetched=$(wait_line "^seq $seq2: " "$work/s.err" 10 | sed 's/^seq [0-9]*: \([0-9]*\) blob.*/\1/')
    echo "(a) $size MiB channel, 1 file changed: $line"
    echo "    subscriber fetched $fetched blob(s) = $((fetched * 1048592)) bytes of blobs (goal <= 2 blobs + the manifest)"
    ;;
share)
    size=${2:-256}
    make_files "$size"
    publish 1 >/dev/null
    seq1=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish1.out")
    pub_port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$work/publish1.out")
    subscribe a
    subscribe b
    wait_line "^synced seq $seq1\$" "$work/a.out" 1800 >/dev/null
    wait_line "^synced seq $seq1\$" "$work/b.out" 1800 >/dev/null
    subscribe c
    wait_line "^synced seq $seq1\$" "$work/c.out" 1800 >/dev/null
    # "blobs fetched from peer peer=127.0.0.1:P blobs=K" lines of the third subscriber.
    awk -v pp="$pub_port" '/blobs fetched from peer/ {
        match($0, /peer=[0-9.]+:[0-9]+/); split(substr($0, RSTART + 5, RLENGTH - 5), a, ":")
        match($0, /blobs=[0-9]+/); k = substr($0, RSTART + 6, RLENGTH - 6)
        if (a[2] == pp) pub += k; else other += k
    } END {
        t = pub + other
        printf "(c) third subscriber: %d blob(s) from the publisher, %d from the other subscribers: %.0f%% from subscribers (goal >= 30%%)\n", pub, other, t ? 100 * other / t : 0
    }' "$work/c.err"
    ;;
memory)
    n=${2:-100}
    "$many" publish "$n" "$work/many-pub" "$boot" >"$work/many-pub.out" &
    pids+=($!)
    key=$(wait_line "^public key " "$work/many-pub.out" 60 | sed 's/^public key //')
    wait_line "^published $n\$" "$work/many-pub.out" 1800 >/dev/null
    "$many" follow "$key" "$n" "$work/many-sub" "$boot" >"$work/many-sub.out"
    echo "(d) $(cat "$work/many-sub.out") (goal < 64 MiB = 65536 KiB)"
    ;;
latency)
    interval=${2:-30}
    make_files 4
    publish 1 >/dev/null
    seq1=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish1.out")
    subscribe s --interval "$interval"
    wait_line "^synced seq $seq1\$" "$work/s.out" 600 >/dev/null
    kill -TERM "$pub_pid"
    wait "$pub_pid" || true
    # Gossip push: the new publisher tells the holders of the channel's blobs at once.
    head -c 1000 /dev/urandom >"$work/src/f00001.bin"
    t0=$(date +%s.%N)
    publish 2 >/dev/null
    t1=$(date +%s.%N)
    seq2=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish2.out")
    wait_line "^synced seq $seq2\$" "$work/s.out" $((interval * 3)) >/dev/null
    t2=$(date +%s.%N)
    echo "(e) gossip path: publish took $(echo "$t1 - $t0" | bc) s; synced $(echo "$t2 - $t1" | bc) s after 'published seq' (poll interval ${interval} s)"
    kill -TERM "$pub_pid"
    wait "$pub_pid" || true
    # Poll path: a publisher without the previous version's index pushes no gossip.
    head -c 1000 /dev/urandom >"$work/src/f00002.bin"
    publish 3 --state "$work/fresh-state" >/dev/null
    t1=$(date +%s.%N)
    seq3=$(sed -n 's/^published seq \([0-9]*\).*/\1/p' "$work/publish3.out")
    wait_line "^synced seq $seq3\$" "$work/s.out" $((interval * 3)) >/dev/null
    t2=$(date +%s.%N)
    echo "(e) poll path: synced $(echo "$t2 - $t1" | bc) s after 'published seq' (poll interval ${interval} s: expect about half of it on average)"
    ;;
rate)
    limit=${2:-4194304}
    # Enough for 10 s at the limit after a 4 MiB warm-up, plus a margin.
    make_files $((limit * 16 / 1048576 + 8))
    publish 1 >/dev/null
    subscribe r --download-rate "$limit"
    # Files land whole (1 MiB each, renamed into place): count bytes in the output folder.
    bytes() { du -sb "$work/r-out" 2>/dev/null | cut -f1 || echo 0; }
    for _ in $(seq 600); do
        (($(bytes) >= 4 * 1048576)) && break
        sleep 0.1
    done
    b0=$(bytes)
    t0=$(date +%s.%N)
    sleep 10
    b1=$(bytes)
    t1=$(date +%s.%N)
    echo "rate limit $limit B/s: $(echo "($b1 - $b0) / ($t1 - $t0)" | bc) B/s on disk over $(echo "$t1 - $t0" | bc | cut -c1-5) s ($(echo "scale=1; 100 * ($b1 - $b0) / ($t1 - $t0) / $limit" | bc)% of the limit; goal within 15%)"
    ;;
lookups)
    size=${2:-256}
    make_files "$size"
    publish 1 >/dev/null
    "$bin" download "$pubkey" --out "$work/l-out" --blobs "$work/l-blobs" --bootstrap "$boot" \
        --json >"$work/l.out"
    n=$(tail -1 "$work/l.out" | sed -n 's/.*"dht_lookups":\([0-9]*\).*/\1/p')
    # Lookups do not grow with the size when one peer holds everything: run it on 1024 MiB for
    # the per-GiB figure rather than scaling a smaller run.
    echo "(b) $size MiB downloaded with $n DHT lookup(s) (goal: at most 16 per GiB)"
    ;;
*)
    echo "unknown benchmark $what" >&2
    exit 2
    ;;
esac
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
