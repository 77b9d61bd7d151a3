#!/usr/bin/env bash
# Build every cargo-fuzz target of core/fuzz once, then run each for SECONDS (default 60) on a
# temporary copy of its committed seed corpus (core/fuzz/corpus/<target>, never grown here).
# Prints the executions each target reached and whether it crashed; exits non-zero on a crash,
# leaving the crashing input under core/fuzz/artifacts/<target>/.
#   scripts/fuzz.sh [SECONDS]         FUZZ_TARGETS="script add_block" scripts/fuzz.sh 30
# Needs a nightly toolchain; installs cargo-fuzz (pinned) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac
CARGO_FUZZ_VERSION=0.13.2
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    echo "fuzz: the $toolchain toolchain is required (rustup toolchain install $toolchain)" >&2
    exit 1
fi
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "=== fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

all_targets=(decode_txpow decode_message decode_cascade decode_witness script add_block template)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"

# One build for every target (release, address sanitizer, the fuzz crate's own Cargo.lock),
# in its own target dir: its flags differ from every other build's.
target_dir="${FUZZ_TARGET_DIR:-$PWD/core/fuzz/target}"
start=$(date +%s)
(cd core && cargo "+$toolchain" fuzz build --target-dir "$target_dir")
echo "=== fuzz: build $(($(date +%s) - start)) s"

triple="$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"
work="$(mktemp -d "${TMPDIR:-/tmp}/minima-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# cargo fuzz run sets this; leaks are not what these targets look for (OnceLock worlds).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0:detect_leaks=0"

declare -a summary=()
crashed=0
for t in "${targets[@]}"; do
    bin="$bin_dir/$t"
    [ -x "$bin" ] || { echo "fuzz: no target $t at $bin" >&2; exit 1; }
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    if [ -d "core/fuzz/corpus/$t" ]; then
        cp -r "core/fuzz/corpus/$t/." "$work/$t/corpus/"
    fi
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
        -artifact_prefix="$work/$t/artifacts/")
    [ -f "core/fuzz/dict/$t.dict" ] && args+=(-dict="core/fuzz/dict/$t.dict")
    echo "=== fuzz: $t for ${secs} s"
    t0=$(date +%s)
    rc=0
    "$bin" "${args[@]}" "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n 1)"
    execs="${execs:-?}"
    if [ "$rc" -eq 0 ]; then
        result="ok"
    else
        crashed=1
        result="CRASH (exit $rc)"
        mkdir -p "core/fuzz/artifacts/$t"
        cp -r "$work/$t/artifacts/." "core/fuzz/artifacts/$t/" 2>/dev/null || true
        cp "$work/$t/log" "core/fuzz/artifacts/$t/log"
        # The panic and the libFuzzer summary; the whole log is kept beside the input.
        grep -E -A4 "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$work/$t/log" | head -n 40 >&2 || true
        echo "fuzz: $t crashed; input and log in core/fuzz/artifacts/$t/ (replay: cd core &&" \
            "cargo +$toolchain fuzz run $t <input>; minimise: cargo +$toolchain fuzz tmin $t <input>)" >&2
    fi
    line="$(printf '%-16s %12s executions in %3d s  %s' "$t" "$execs" "$(($(date +%s) - t0))" "$result")"
    echo "$line"
    summary+=("$line")
done

echo "=== fuzz summary (${secs} s per target, $(($(date +%s) - start)) s in all)"
printf '    %s\n' "${summary[@]}"
exit "$crashed"
