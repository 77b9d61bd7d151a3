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

stage "sans-I/O" bash scripts/sans-io-check.sh

stage "build tests" cargo test --workspace --all-features --all-targets --locked --no-run
# Unit tests, property tests, integration tests, and each criterion bench run once.
stage "core tests" cargo test --workspace --all-features --all-targets --locked
stage "doc tests" cargo test --workspace --all-features --doc --locked

# Mobile bindings: generate Kotlin and Swift from the host library, run the Kotlin tests on
# the JVM against it, and compile the generated C header (Swift itself is not compiled here).
# The library and uniffi-bindgen come from the test build above (same profile and features:
# nothing is compiled twice); `cargo build` only copies the cdylib into the debug dir.
native="$(cd "${CARGO_TARGET_DIR:-target}" 2>/dev/null && pwd || echo "$PWD/target")/debug"
stage "ffi library" cargo build --profile test --workspace --all-features --locked
stage "bindgen" bash scripts/bindgen.sh "$native"
if command -v clang >/dev/null 2>&1; then
    stage "swift C header" clang -fsyntax-only -Wno-pragma-once-outside-header -x c ios/Sources/MinimaFFI/minima_ffiFFI.h
else
    echo "=== stage swift C header: FAILED (clang not installed; .ci/run installs it)" >&2
    exit 1
fi
if command -v mvn >/dev/null 2>&1; then
    stage "kotlin tests" mvn -q -B -f bindings/kotlin/pom.xml test -Dnative.dir="$native"
else
    echo "=== stage kotlin tests: FAILED (Maven not installed; .ci/run installs it)" >&2
    exit 1
fi
if [ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_NDK_HOME}" ]; then
    stage "android check" cargo check --locked -p minima-ffi --target aarch64-linux-android
else
    echo "=== stage android check: skipped (no Android NDK found: set ANDROID_NDK_HOME)"
fi

# Every cargo-fuzz target (core/fuzz) for 10 s on a copy of its seed corpus.
if cargo +nightly --version >/dev/null 2>&1; then
    stage "fuzz" bash scripts/fuzz.sh 10
else
    echo "=== stage fuzz: FAILED (no nightly toolchain)" >&2
    exit 1
fi

echo "=== timing"
for line in "${SUMMARY[@]}"; do
    echo "    ${line}"
done
