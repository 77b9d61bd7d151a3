#!/usr/bin/env bash
# Run one test target RUNS times in a row while BURNERS busy loops compete for the CPU —
# how the flakes of issue 13 were found. Usage:
#   scripts/under_load.sh <test target, e.g. net_partition> [RUNS=10] [BURNERS=5] [filter]
# Prints one line per run and a failed/runs summary; keeps each failing run's output in
# target/under_load/<target>-<n>.log.
set -u
target=${1:?test target}
runs=${2:-10}
burners=${3:-5}
filter=${4:-}
cd "$(dirname "$0")/.."
cargo test --all-features --locked -p minima-core --test "$target" --no-run -q || exit 1
mkdir -p target/under_load
pids=()
for _ in $(seq "$burners"); do
  (while :; do :; done) &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
failed=0
for n in $(seq "$runs"); do
  log=target/under_load/$target-$n.log
  start=$(date +%s)
  if cargo test --all-features --locked -q -p minima-core --test "$target" -- $filter >"$log" 2>&1; then
    echo "run $n: ok ($(( $(date +%s) - start )) s)"
    rm -f "$log"
  else
    failed=$((failed + 1))
    echo "run $n: FAILED ($(( $(date +%s) - start )) s), see $log"
  fi
done
echo "$target under $burners burners: $failed failed / $runs runs"
[ "$failed" -eq 0 ]
