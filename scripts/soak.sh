#!/usr/bin/env bash
# Flakiness soak under load (issue 13): with two `yes > /dev/null` burning both cores, run
#   - the two-node payment test 30 times in a row,
#   - the whole `wallet` and `net_peering` test files 5 times each (the multi-node real-socket
#     files; partitions, relay and convergence are the simulator's, core/tests/sim.rs),
# in the test profile and in --release, printing pass/fail counts. Exits non-zero if any run
# failed. Usage: scripts/soak.sh [PAYMENT_RUNS] [FILE_RUNS]   (defaults 30 and 5; a few hours)
set -uo pipefail
cd "$(dirname "$0")/.."
payment_runs="${1:-30}"
file_runs="${2:-5}"
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1
log_dir="$(mktemp -d)"
echo "soak: logs in ${log_dir}"

burners=()
for _ in 1 2; do
    yes > /dev/null &
    burners+=($!)
done
cleanup() { kill "${burners[@]}" 2>/dev/null || true; }
trap cleanup EXIT

failed=0
run() {
    local name="$1" runs="$2"
    shift 2
    local pass=0 fail=0
    for i in $(seq 1 "$runs"); do
        if "$@" > "${log_dir}/${name}-${i}.log" 2>&1; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "soak: ${name} run ${i} FAILED (log ${log_dir}/${name}-${i}.log)"
        fi
    done
    echo "soak: ${name}: ${pass} passed, ${fail} failed"
    failed=$((failed + fail))
}

for profile in test release; do
    flags=(--all-features -p minima-core)
    [ "$profile" = release ] && flags+=(--release)
    # Build first, unloaded by the clock of the runs (the burners still run).
    cargo test "${flags[@]}" --test wallet --test net_peering --no-run > "${log_dir}/build-${profile}.log" 2>&1 || {
        echo "soak: build ($profile) failed: ${log_dir}/build-${profile}.log"
        exit 1
    }
    run "payment-${profile}" "$payment_runs" cargo test "${flags[@]}" --test wallet -- --exact a_payment_between_two_nodes_is_seen_then_confirmed
    run "wallet-${profile}" "$file_runs" cargo test "${flags[@]}" --test wallet
    run "net_peering-${profile}" "$file_runs" cargo test "${flags[@]}" --test net_peering
done
echo "soak: ${failed} failed in all"
[ "$failed" -eq 0 ]
