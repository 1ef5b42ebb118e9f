#!/usr/bin/env bash
# The speed benchmarks of docs/performance.md, one after the other, each printing its figure, its same-run floor
# and the ratio: import, json:raw build, mirror full/delta/encrypted, trivy:db, verify, start-up.
#   benchmarks/speed.sh [--quick]      (--quick: 20,000 advisories only; without it 20,000 and 200,000)
# Corpora are generated once into .bench/ (benchmarks/osv_corpus.py). Run it on a quiet machine: the floors share
# the machine with stella, so load skews both, but not evenly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=()
if [ "${1:-}" = --quick ]; then quick=(--quick); fi
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
# A benchmark that misses its target exits 1 after printing its figures; the others still run.
status=0
python benchmarks/bench_import.py "${quick[@]}" || status=1
python benchmarks/bench_bundle.py "${quick[@]}" || status=1
python benchmarks/bench_mirror.py "${quick[@]}" || status=1
python benchmarks/bench_trivy.py "${quick[@]}" || status=1
python benchmarks/bench_verify.py "${quick[@]}" || status=1
python benchmarks/bench_startup.py --quick || status=1
exit "$status"
