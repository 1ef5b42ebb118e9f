#!/usr/bin/env bash
# Coverage-guided fuzzing (atheris/libFuzzer) of every parser a hostile sender reaches: scripts/fuzz.sh [SECONDS]
# Runs each target of tests/fuzz/harnesses.py for SECONDS (default 18: nine targets in about three minutes),
# one after the other, from the seed corpus in tests/fuzz/corpus/<target>/ (read only: new inputs go to a scratch
# directory). A finding (an exception that is not a StellaError, a hang over FUZZ_TIMEOUT seconds, a crash, memory
# over FUZZ_RSS_MB) is kept as FUZZ_OUT/<target>-crash-* (or -timeout-, -oom-) and makes the script exit 1; copy
# it into the target's corpus once fixed so tests/fuzz/test_corpus.py replays it. FUZZ_TARGETS="a b" runs a subset.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-18}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
OUT="${FUZZ_OUT:-${TMPDIR:-/tmp}/stella-fuzz-findings}"
TARGETS="${FUZZ_TARGETS:-$(cd tests/fuzz/corpus && ls -d -- */ | tr -d /)}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stella-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
failed=()
printf '%-10s %10s %8s %12s %s\n' target runs exec/s new-units result
for target in $TARGETS; do
  log="$OUT/$target.log"
  mkdir -p "$WORK/$target"
  "$PYTHON" -m tests.fuzz.fuzz_main "$target" "$WORK/$target" "tests/fuzz/corpus/$target" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" -max_len=65536 \
    -artifact_prefix="$OUT/$target-" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FINDING (exit $rc, see $log)"
    failed+=("$target")
  fi
  printf '%-10s %10s %8s %12s %s\n' "$target" "$(stat_of number_of_executed_units "$log")" \
    "$(stat_of average_exec_per_sec "$log")" "$(stat_of new_units_added "$log")" "$result"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (reproducers: $OUT/<target>-crash-*|timeout-*|oom-*)" >&2
  for target in "${failed[@]}"; do grep -m1 -A12 -E "Uncaught Python exception|ERROR: libFuzzer" "$OUT/$target.log" >&2; done
  exit 1
fi
