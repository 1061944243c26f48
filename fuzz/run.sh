#!/usr/bin/env bash
# Builds the fuzz targets and runs each (or the ones named) for SECONDS, starting from the
# committed seeds and regressions. New inputs go to fuzz/corpus/<target>/ (scratch, ignored by
# git): the committed folders are only read. A failing target stops the script with a
# non-zero exit, and its crash input is copied to fuzz/regressions/<target>/ to be kept.
#
#   fuzz/run.sh SECONDS [target...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on the stable toolchain through
# RUSTC_BOOTSTRAP, with AddressSanitizer.
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh SECONDS [target...]}
shift
fuzz=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz/.."
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz")
fi
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no targets (is cargo-fuzz installed?)"; exit 1; }

# One build for every target (they share the library); each `cargo fuzz run` then finds it.
cargo fuzz build --fuzz-dir "$fuzz"

for target in "${targets[@]}"; do
    corpus="$fuzz/corpus/$target"
    artifacts="$fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    inputs=("$corpus")
    for dir in "$fuzz/seeds/$target" "$fuzz/regressions/$target"; do
        [ -d "$dir" ] && inputs+=("$dir")
    done
    log="$artifacts/run.log"
    start=$(date +%s)
    status=0
    cargo fuzz run --fuzz-dir "$fuzz" "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*exec\/s.*/\1/p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    echo "$target: ${runs:-?} executions in ${elapsed}s (${rate:-?} per second)"
    if [ "$status" -ne 0 ]; then
        grep -m 1 -A 4 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log" || true
        mkdir -p "$fuzz/regressions/$target"
        found=0
        for input in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
            found=1
            # A kept regression that still fails comes back under another name: not again.
            for kept in "$fuzz/regressions/$target"/*; do
                if cmp -s "$input" "$kept"; then
                    echo "crash input: $input (already kept as fuzz/${kept#"$fuzz/"})"
                    continue 2
                fi
            done
            cp "$input" "$fuzz/regressions/$target/"
            echo "crash input: $input (kept as fuzz/regressions/$target/$(basename "$input"))"
        done
        [ "$found" -eq 1 ] || echo "no crash input written; see $log"
        echo "$target FAILED; full log: $log"
        exit 1
    fi
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a failure"
