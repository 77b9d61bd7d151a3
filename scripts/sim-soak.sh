#!/usr/bin/env bash
# The simulator's scenarios (core/tests/sim.rs) and its hostile-peer scenarios
# (core/tests/sim_hostile.rs) over many seeds: N per scenario (default 1,000) and N/4 cases of
# the property test, in the test profile as CI (its dependencies, SPHINCS+ above all, are
# optimised there too; a release build's LTO only adds compile time). CI runs 32 and 16.
# Usage: scripts/sim-soak.sh [N]     Prints each scenario's verdict and the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
export SIM_SEEDS="$n" SIM_CASES="$(( (n + 3) / 4 ))"
start=$(date +%s)
cargo test -p minima-core --all-features --test sim --test sim_hostile --no-run --quiet
status=0
for t in sim sim_hostile; do
    cargo test -p minima-core --all-features --test "$t" 2>&1 | tee "/tmp/sim-soak-$t.log" | grep -E "^test |test result|panicked" || true
    grep -q "test result: ok" "/tmp/sim-soak-$t.log" || status=1
done
echo "sim-soak: ${n} seeds per scenario, ${SIM_CASES} property cases, $(( $(date +%s) - start )) s, $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
