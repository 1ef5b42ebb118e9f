#!/usr/bin/env bash
# Shared by demo.sh and test.sh: create .venv with Python 3.11 and install stella into it.
# Usage: source scripts/bootstrap.sh [extra]   (extra = "test" installs the test tools too)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "stella needs Python 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 8
fi
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python3-venv is missing: sudo apt-get install python3-venv" >&2; exit 8
  fi
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PY" -m venv "$ROOT/.venv"
fi
"$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >/dev/null
if [ "${1:-}" = "test" ]; then
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[test]"
else
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT"
fi
export PATH="$ROOT/.venv/bin:$PATH"
