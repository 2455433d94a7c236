#!/usr/bin/env bash
# Crypto stack before/after: the transport benchmarks (benches/transport.rs) and ingest
# (benches/blob.rs) of a base commit (A) and of this checkout (B), run alternately A B A B ... in
# one session, each run beside `openssl speed` for ChaCha20-Poly1305 and SHA-256 and the load
# average, so that figures from a shared machine can be judged (and the script rerun on a quiet
# one). Prints a Markdown table: one column per run.
#
#   scripts/bench-crypto.sh [BASE [ROUNDS]]     BASE: a commit (default ceba3af, before the
#                                               upgrade); ROUNDS: A/B pairs (default 2)
#
# BASE is checked out in a temporary git worktree with a target/ of its own; both are removed at
# the end (or set BASE_TREE to a checkout of BASE that is kept, e.g. one already built). Criterion runs with a 1 s warm-up and 3 s of measurement per benchmark. Everything runs
# on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${1:-ceba3af}
rounds=${2:-2}
crit=(--warm-up-time 1 --measurement-time 3)
transport_filter='raw_aead/seal_1mib_cpu|core/|loopback/'
blob_filter='primitives_1MiB/|file_32MiB/ingest'

work=$(mktemp -d)
if [[ -n "${BASE_TREE:-}" ]]; then
    tree=$BASE_TREE
    trap 'rm -rf "$work"' EXIT
else
    tree="$work/base"
    cleanup() {
        git -C "$root" worktree remove --force "$tree" 2>/dev/null || true
        rm -rf "$work"
    }
    trap cleanup EXIT
    git worktree add --detach "$tree" "$base" >/dev/null
fi

echo "== building the benchmarks (A = $base, B = $(git rev-parse --short HEAD))" >&2
(cd "$tree" && CARGO_TARGET_DIR="$tree/target" cargo bench --locked --no-run --bench transport --bench blob) >&2
cargo bench --locked --no-run --bench transport --bench blob >&2

# `name<TAB>value` lines of one run go to $work/run.N.
openssl_gbs() { # ALGORITHM -> GB/s at 16 KiB blocks (openssl prints 1000s of bytes per second)
    openssl speed -evp "$1" -seconds 1 2>/dev/null | awk 'NF > 6 { v = $NF } END { sub("k", "", v); printf "%.2f GB/s", v / 1e6 }'
}
criterion_rows() { # criterion output -> `benchmark<TAB>median throughput`
    awk '
        /^Benchmarking/ { next }
        /^[A-Za-z_0-9]+\/[^ ]+/ { id = $1 }
        /thrpt:/ { sub(/.*thrpt: *\[/, ""); split($0, f, " "); print id "\t" f[3] " " f[4] }
    '
}
one_run() { # N DIR LABEL
    local n=$1 dir=$2 label=$3 out="$work/run.$1"
    echo "== run $n: $label" >&2
    {
        printf 'tree\t%s\n' "$label"
        printf 'load average (1/5/15 min)\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'openssl chacha20-poly1305\t%s\n' "$(openssl_gbs chacha20-poly1305)"
        printf 'openssl sha256\t%s\n' "$(openssl_gbs sha256)"
        (cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo bench --locked --bench transport -- "${crit[@]}" "$transport_filter" 2>/dev/null) | criterion_rows
        (cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo bench --locked --bench blob -- "${crit[@]}" "$blob_filter" 2>/dev/null) | criterion_rows
        printf 'load average after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$out"
}

n=0
for ((r = 1; r <= rounds; r++)); do
    one_run $((++n)) "$tree" "A $base"
    one_run $((++n)) "$root" "B $(git rev-parse --short HEAD)"
done

# One row per name (in first-seen order), one column per run.
awk -F'\t' -v runs="$n" '
    FNR == 1 { run++ }
    { if (!($1 in seen)) { seen[$1] = 1; order[++rows] = $1 } cell[$1, run] = $2 }
    END {
        line = "| |"; sep = "|---|"
        for (r = 1; r <= runs; r++) { line = line " run " r " |"; sep = sep "---|" }
        print line; print sep
        for (i = 1; i <= rows; i++) {
            line = "| " order[i] " |"
            for (r = 1; r <= runs; r++) line = line " " cell[order[i], r] " |"
            print line
        }
    }
' $(for ((i = 1; i <= n; i++)); do echo "$work/run.$i"; done)
