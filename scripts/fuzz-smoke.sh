#!/usr/bin/env bash
# Smoke check of the fuzz targets (fuzz/README.md), for CI.
#
#   scripts/fuzz-smoke.sh          every committed corpus file (fuzz/corpus/<target>/)
#                                  through every target's entry point, as a unit test
#                                  of the gantry crate: seconds, no cargo-fuzz needed.
#   scripts/fuzz-smoke.sh --build  also builds the cargo-fuzz targets (nightly with
#                                  AddressSanitizer if installed, else stable with
#                                  -s none) and runs each for FUZZ_SMOKE_RUNS executions
#                                  (default 20000, at most 20 s each). The build of the
#                                  fuzz crate takes several minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --lib fuzzing::

[[ ${1:-} == --build ]] || exit 0

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    flags=()
else
    fuzz=(cargo fuzz)
    flags=(-s none)
fi
runs=${FUZZ_SMOKE_RUNS:-20000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd fuzz
"${fuzz[@]}" build "${flags[@]}"
for target in $("${fuzz[@]}" list); do
    echo "== $target"
    mkdir -p "$work/$target"
    # New inputs go to the scratch directory, not into the committed corpus.
    "${fuzz[@]}" run "${flags[@]}" "$target" "$work/$target" "corpus/$target" -- \
        -runs="$runs" -max_total_time=20 -artifact_prefix="$work/" 2>&1 | tail -n 2
done
