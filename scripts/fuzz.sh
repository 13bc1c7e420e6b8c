#!/usr/bin/env bash
# Fuzzes every decoder for SECONDS (default 600) each, running as many
# targets at once as there are cores (FUZZ_JOBS to change), then prints
# each target's executions, coverage and corpus size. New inputs that reach
# new code are kept in fuzz/corpus/<target>/ (minimized with `cmin` at the
# end); a crash stops that target, leaves its input in fuzz/artifacts/ and
# makes the script fail. Copy a crash input to fuzz/regressions/<target>/
# once fixed: the normal test run replays it (crates/dan-fuzz/tests).
#
# Uses cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP lets it pass
# its -Z flags), with debug assertions on (overflow is a crash) and no
# sanitizer (DAN forbids unsafe code; the instrumented build stays fast).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-600}"
JOBS="${FUZZ_JOBS:-$(nproc)}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
FUZZ=(cargo fuzz)
FLAGS=(--sanitizer none --debug-assertions)
echo "== building the fuzz targets"
"${FUZZ[@]}" build "${FLAGS[@]}"
mkdir -p fuzz/logs
targets=$("${FUZZ[@]}" list)
echo "== fuzzing $(echo "$targets" | wc -l) targets for ${SECONDS_PER_TARGET}s each, $JOBS at a time"
run_one() {
  local target="$1"
  mkdir -p "fuzz/corpus/$target"
  if cargo fuzz run --sanitizer none --debug-assertions "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
      >"fuzz/logs/$target.log" 2>&1; then
    echo "ok      $target"
  else
    echo "CRASHED $target (see fuzz/logs/$target.log and fuzz/artifacts/$target/)"
    return 1
  fi
}
export -f run_one
export SECONDS_PER_TARGET
status=0
echo "$targets" | xargs -P "$JOBS" -I{} bash -c 'run_one {}' || status=1
echo "== minimizing the corpora"
for target in $targets; do
  "${FUZZ[@]}" cmin "${FLAGS[@]}" "$target" "fuzz/corpus/$target" >"fuzz/logs/$target.cmin.log" 2>&1 || true
done
echo "== results"
printf '%-18s %12s %10s %8s %8s\n' target executions exec/s cov corpus
for target in $targets; do
  log="fuzz/logs/$target.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  files=$(find "fuzz/corpus/$target" -type f | wc -l)
  printf '%-18s %12s %10s %8s %8s\n' "$target" "$execs" "$rate" "$cov" "$files"
done
exit $status
