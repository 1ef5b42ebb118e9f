#!/usr/bin/env bash
# Build the single `stella` binary with PyInstaller (pyinstaller.spec, hooks in packaging/pyinstaller_hooks):
#   dist/stella                 onefile: one file to carry; unpacks to $TMPDIR on every start
#   dist/stella-onedir/stella   onedir: a directory to carry; starts several times faster
#   dist/SHA256SUMS             digests of both
# PYTHONHASHSEED=0 makes two builds on the same machine and environment byte-identical (docs/binary.md);
# STELLA_REPRO_CHECK=1 builds both a second time (other work and dist paths) and fails when a byte differs.
# Environment: STELLA_PYTHON (default .venv/bin/python), STELLA_SKIP_INSTALL=1 to skip `pip install -e .[binary]`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${STELLA_PYTHON:-$ROOT/.venv/bin/python}"
if [ "${STELLA_SKIP_INSTALL:-}" != 1 ]; then
  "$PY" -m pip install -q -e ".[binary]"
fi
export PYTHONHASHSEED=0
# PyInstaller reads SOURCE_DATE_EPOCH only for Windows PE headers; set it anyway, from the project file.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(stat -c %Y pyproject.toml)}"
mkdir -p dist build

build() {  # build VARIANT DISTPATH WORKPATH; its own PyInstaller cache, so that two builds can run at once
  local variant=$1 dist=$2 work=$3 start end onedir=""
  start=$(date +%s.%N)
  [ "$variant" = onedir ] && onedir=1
  mkdir -p "$work"
  if ! STELLA_ONEDIR="$onedir" PYINSTALLER_CONFIG_DIR="$work/cache" "$PY" -m PyInstaller --clean --noconfirm \
    --log-level WARN --distpath "$dist" --workpath "$work" pyinstaller.spec >"$work.log" 2>&1; then
    cat "$work.log" >&2
    echo "PyInstaller failed building $variant" >&2
    return 1
  fi
  cat "$work.log"
  end=$(date +%s.%N)
  printf "built %s in %s s\n" "$variant" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
}

both() {  # both DISTPATH WORKROOT: onefile and onedir side by side (PyInstaller is mostly one core each)
  local pids=() rc=0
  build onefile "$1" "$2/pyinstaller-onefile" & pids+=($!)
  build onedir "$1" "$2/pyinstaller-onedir" & pids+=($!)
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}

rm -rf dist/stella dist/stella-onedir
both dist build
printf 'onefile: %s bytes; onedir: %s\n' "$(stat -c %s dist/stella)" "$(du -sh dist/stella-onedir | cut -f1)"

digests() {  # digests DIST: the onefile's sha256, then every onedir file's, by path
  (cd "$1" && { sha256sum stella; find stella-onedir -type f -print0 | sort -z | xargs -0 sha256sum; })
}

if [ "${STELLA_REPRO_CHECK:-}" = 1 ]; then
  rm -rf build/repro
  both build/repro/dist build/repro
  if ! diff <(digests dist) <(digests build/repro/dist) >&2; then
    echo "not reproducible: the second build differs from the first (lines above)" >&2
    exit 1
  fi
  echo "reproducible: a second build is byte-identical (onefile sha256 $(sha256sum dist/stella | cut -d' ' -f1)," \
    "onedir $(find dist/stella-onedir -type f | wc -l) files)"
fi

digests dist > dist/SHA256SUMS
echo "dist/SHA256SUMS: $(wc -l < dist/SHA256SUMS) files"
