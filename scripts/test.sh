#!/usr/bin/env bash
# Every check of the repository, stage by stage, with the time each took.
# Usage: scripts/test.sh            (CI calls this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# proptest: never write regression files into the tree during CI.
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1

declare -a SUMMARY=()
stage() {
    local name="$1"
    shift
    echo "=== stage: ${name}"
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    echo "=== stage ${name}: ${secs} s"
    SUMMARY+=("${name}: ${secs} s")
}

if cargo fmt --version >/dev/null 2>&1; then
    stage "format" cargo fmt --all -- --check
else
    echo "=== stage format: skipped (rustfmt not installed)"
fi

if cargo clippy --version >/dev/null 2>&1; then
    stage "lint" cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
else
    echo "=== stage lint: skipped (clippy not installed)"
fi

stage "build tests" cargo test --workspace --all-features --all-targets --locked --no-run
# Unit tests, property tests, integration tests, and each criterion bench run once.
stage "core tests" cargo test --workspace --all-features --all-targets --locked
stage "doc tests" cargo test --workspace --all-features --doc --locked

echo "=== timing"
for line in "${SUMMARY[@]}"; do
    echo "    ${line}"
done
