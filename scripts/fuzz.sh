#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 60), one after another, and print
# executions, time and crashes per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Environment: JOBS=n runs n targets at once (default 1: the machine is shared).
# The toolchain here is stable; cargo-fuzz needs nightly flags, hence RUSTC_BOOTSTRAP=1.
# Each target grows a working corpus in fuzz/work/<target> (git-ignored), starting from the
# small seed corpus kept in fuzz/corpus/<target>. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
jobs="${JOBS:-1}"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

(cd fuzz && cargo fuzz build)

run_one() {
    local t="$1"
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    local log="fuzz/work/$t.log"
    # -timeout: an input that takes 10 s is reported as a hang.
    if (cd fuzz && cargo fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1) >"$log" 2>&1; then
        :
    fi
}

pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
wait

status=0
printf '%-20s %12s %8s %8s %s\n' target executions seconds crashes corpus
for t in "${targets[@]}"; do
    log="fuzz/work/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
    crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
    corpus=$(find "fuzz/work/$t" -type f | wc -l)
    printf '%-20s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${secs:-?}" "$crashes" "$corpus"
    if [ "$crashes" -gt 0 ]; then
        status=1
        find "fuzz/artifacts/$t" -type f -printf '  %p\n'
    fi
done
exit "$status"
