#!/usr/bin/env bash
# Summarises criterion's results for Gantry's benches (benches/classify.rs,
# benches/codec.rs) as a Markdown table of medians, from the JSON criterion
# leaves under target/criterion.
#
#   bench/criterion-summary.sh [CRITERION_DIR] [--newer FILE]
#
# --newer FILE: only results written after FILE (skips stale results of
# renamed benchmarks). The first output line is a tab-separated
# "CLASSIFY_MEDIAN_NS <ns>": the median over the statements of the mix of
# each statement's median classification time (group classify_each), the
# figure issue 6 sets a target for (≤ 1 µs).
set -euo pipefail

DIR="" NEWER=""
while (($#)); do
    case "$1" in
        --newer) NEWER="$2"; shift 2 ;;
        *) DIR="$1"; shift ;;
    esac
done
: "${DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/criterion}"
[[ -d $DIR ]] || { echo "criterion-summary: no $DIR (run cargo bench first)" >&2; exit 1; }

# Groups written by Gantry's benches.
GROUPS_RE='^(classify|classify_each|slow_path|parse_set|scan|framing)'

find_args=("$DIR" -path '*/new/benchmark.json')
[[ -n $NEWER ]] && find_args+=(-newer "$NEWER")

rows="$(
    find "${find_args[@]}" -print0 | while IFS= read -r -d '' bj; do
        d="$(dirname "$bj")"
        est="$d/estimates.json"
        [[ -f $est ]] || continue
        id="$(grep -o '"full_id":"[^"]*"' "$bj" | head -1 | cut -d'"' -f4)"
        [[ $id =~ $GROUPS_RE ]] || continue
        elems="$(grep -o '"Elements":[0-9]*' "$bj" | cut -d: -f2 || true)"
        bytes="$(grep -o '"Bytes":[0-9]*' "$bj" | cut -d: -f2 || true)"
        # "median":{"confidence_interval":{...},"point_estimate":X,...}
        med="$(tr -d ' \n' <"$est" | grep -o '"median":{"confidence_interval":{[^}]*},"point_estimate":[0-9.eE+-]*' \
            | sed 's/.*"point_estimate"://')"
        # "-" for none: read collapses empty tab-separated fields.
        printf '%s\t%s\t%s\t%s\n' "$id" "$med" "${elems:--}" "${bytes:--}"
    done | sort
)"

fmt_ns() {
    awk -v v="$1" 'BEGIN {
        if (v >= 1e6) printf "%.2f ms", v / 1e6
        else if (v >= 1e3) printf "%.2f µs", v / 1e3
        else printf "%.1f ns", v }'
}

cls="$(awk -F'\t' '$1 ~ /^classify_each\// { print $2 }' <<<"$rows" | sort -g \
    | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) printf "%.0f", v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
printf 'CLASSIFY_MEDIAN_NS\t%s\n' "$cls"

n_each="$(awk -F'\t' '$1 ~ /^classify_each\// { n++ } END { print n + 0 }' <<<"$rows")"
echo "| benchmark | median | per element / throughput |"
echo "|---|---:|---|"
if [[ -n $cls ]]; then
    echo "| **classify_each: median over the $n_each statements of the mix** | **$(fmt_ns "$cls")** | per statement |"
fi
while IFS=$'\t' read -r id med elems bytes; do
    [[ -n $id ]] || continue
    [[ $id == classify_each/* ]] && continue   # summarised above; all in criterion's report
    extra=""
    if [[ $elems != - && $elems -gt 1 ]]; then
        extra="$(fmt_ns "$(awk -v m="$med" -v e="$elems" 'BEGIN { print m / e }')") per element ($elems)"
    elif [[ $bytes != - ]]; then
        extra="$(awk -v m="$med" -v b="$bytes" 'BEGIN { printf "%.2f GiB/s (%d bytes)", b / m * 1e9 / 1073741824, b }')"
    fi
    echo "| $id | $(fmt_ns "$med") | $extra |"
done <<<"$rows"
echo
echo "Per-statement figures: \`target/criterion/classify_each/*\` (or \`cargo bench --bench classify\`)."
