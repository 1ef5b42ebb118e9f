#!/usr/bin/env bash
# The whole test suite: system tools for interop tests, lint (ruff), types (mypy --strict),
# the layer contract (import-linter), then pytest. CI (.ci/run) calls exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# System tools the interop tests drive (docs/architecture.md, "Tools we test against"). Installed when we may (root + apt).
APT_PACKAGES=(openssl zstd age docker-registry skopeo xorriso prometheus systemd openjdk-17-jre-headless)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: missing system packages for interop tests: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  fi
fi
# npm packages the interop tests drive (@sigstore/verify, pinned in tests/interop/node/package-lock.json).
if command -v npm >/dev/null; then
  npm ci --prefix "$ROOT/tests/interop/node" --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "note: npm is missing; the Sigstore interop tests need Node 20 and npm" >&2
fi
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh" test
echo "== ruff";          ruff check .
echo "== ruff format";   ruff format --check .
echo "== mypy --strict"; mypy
echo "== import-linter"; lint-imports
echo "== pytest";        pytest -n 2 --dist loadgroup "$@"
# Coverage-guided fuzzing of every parser a hostile sender reaches, about three minutes in all (tests/fuzz/).
if [ "${CI:-}" = true ]; then echo "== fuzz"; scripts/fuzz.sh; fi
if [ "${CI:-}" = true ] || [ "${STELLA_BINARY_SMOKE:-}" = 1 ]; then echo "== binary"; time (STELLA_REPRO_CHECK=1 scripts/build-binary.sh && scripts/smoke-binary.sh); fi
