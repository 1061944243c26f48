#!/bin/sh
# Instructions per request, counted by callgrind (valgrind --tool=callgrind), which does not
# depend on the machine's load: each case runs N and 2N requests (after the same warm-up) and
# the difference, divided by N, is what one request costs. Usage:
#   tests/bench_instructions.sh BENCH [N]
# BENCH is build/bench; N defaults to 1000 (the sweep uses N/4).
set -eu
bench=$1
n=${2:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# count CASE N [ARGS...]: the instructions of a whole run.
count() {
    c=$1 k=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bench" --case "$c" --requests "$k" "$@" \
        >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    sed -n 's/^summary: *//p' "$tmp/out"
}

# per_request CASE N [ARGS...]: (count(2N) - count(N)) / N.
per_request() {
    c=$1 k=$2
    shift 2
    one=$(count "$c" "$k" "$@")
    two=$(count "$c" $((2 * k)) "$@")
    echo $(((two - one) / k))
}

if ! command -v valgrind >/dev/null 2>&1; then
    echo "instructions: valgrind is not installed; skipped"
    exit 0
fi

echo "instructions per request (callgrind; N=$n and 2N requests, difference / N):"
base_cgi=$(per_request baseline-cgi "$n")
gw_cgi=$(per_request gateway-cgi "$n")
base_origin=$(per_request baseline-origin "$n")
gw_origin=$(per_request gateway-origin "$n")
printf '  %-16s %8s\n' baseline-cgi "$base_cgi" gateway-cgi "$gw_cgi" baseline-origin "$base_origin" gateway-origin "$gw_origin"
awk -v a="$gw_cgi" -v b="$base_cgi" -v c="$gw_origin" -v d="$base_origin" \
    'BEGIN { printf "ratios: CGI mode %.2fx its baseline, origin mode %.2fx its baseline\n\n", a / b, c / d }'

sweep=$((n / 4))
echo "sweep in instructions (CGI mode; N=$sweep and 2N; per unit: the extra instructions over the row"
echo "above, divided by the extra units):"
printf '  %-11s %6s %14s %14s %7s %10s\n' dimension units baseline gateway ratio "per unit"
previous=""
row() {
    dim=$1 units=$2
    shift 2
    b=$(per_request baseline-cgi "$sweep" "$@")
    g=$(per_request gateway-cgi "$sweep" "$@")
    if [ "$dim" = "$previous" ]; then
        unit=$(awk -v g="$g" -v p="$prev_g" -v u="$units" -v q="$prev_units" 'BEGIN { printf "%.1f", (g - p) / (u - q) }')
    else
        unit=""
    fi
    printf '  %-11s %6s %14s %14s %7s %10s\n' "$dim" "$units" "$b" "$g" \
        "$(awk -v g="$g" -v b="$b" 'BEGIN { printf "%.2f", g / b }')" "$unit"
    previous=$dim prev_g=$g prev_units=$units
}
for v in 15 50 100 200; do row variables "$v" --vars "$v"; done
for h in 1 10 50 100; do row headers "$h" --headers "$h"; done
for b in 13 1024 65536; do row "body bytes" "$b" --body "$b"; done
