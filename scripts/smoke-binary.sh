#!/usr/bin/env bash
# Smoke-test the built binaries, not the venv, with the network unavailable:
#   --version, import the samples, generate a key, build a json:raw bundle, verify it (and refuse a damaged
#   copy), build a mirror:full bundle and import it through TUF into a mirror directory, build and verify an
#   attestation bundle (keyless Sigstore bundles through sigstore-python and its embedded production root), open
#   the TUI headless and save a screenshot of its first screen, and serve the
#   local API: `serve --port 0`, /health/ready, an authenticated GET with a token the binary minted, then stop.
# Usage: scripts/smoke-binary.sh [BINARY...]   (default: dist/stella and dist/stella-onedir/stella)
# The network is removed with `unshare -rn` (a new user and network namespace: only a loopback that is down).
# Where that is not allowed (some containers forbid user namespaces), the run says so and goes on with the
# network present: then nothing proves the binary stays offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BINARIES=("$@")
SIGSTORE="$ROOT/tests/fixtures/sigstore-offline"
[ ${#BINARIES[@]} -gt 0 ] || BINARIES=(dist/stella dist/stella-onedir/stella)

if unshare -rn true 2>/dev/null; then
  OFFLINE=(unshare -rn)
  IP="$(command -v ip || true)"  # the API check brings the namespace's loopback up; nothing else is reachable
  [ -n "$IP" ] || { echo "the API check needs ip (iproute2) to bring up the loopback in its namespace" >&2; exit 1; }
else
  OFFLINE=()
  IP=""
  echo "note: unshare -rn is not permitted here; the smoke test runs WITH the network" >&2
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Run inside the smoke test's namespace: serve BIN on a free port, check it, stop it.  Args: BIN TOKEN WORK [IP]
SERVE_CHECK='set -euo pipefail
bin=$1 token=$2 work=$3 ipcmd=${4:-}
[ -z "$ipcmd" ] || "$ipcmd" link set lo up
"$bin" serve --port 0 > "$work/serve.out" 2> "$work/serve.err" &
pid=$!
trap "kill -TERM $pid 2>/dev/null || true" EXIT
url=""
for _ in $(seq 1 600); do
  url=$(head -n 1 "$work/serve.out" 2>/dev/null || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "serve exited before printing its address" >&2; exit 1; }
  sleep 0.1
done
case "$url" in http://127.0.0.1:*/) ;; *) echo "serve printed no loopback address: $url" >&2; exit 1 ;; esac
code=000
for _ in $(seq 1 300); do
  code=$(curl -s -o "$work/ready.json" -w "%{http_code}" "${url}health/ready" || true)
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] && grep -q "\"status\":\"ready\"" "$work/ready.json" || { echo "health/ready: $code" >&2; exit 1; }
code=$(curl -s -o "$work/profiles.json" -w "%{http_code}" -H "Authorization: Bearer $token" "${url}api/v1/export/profiles")
[ "$code" = 200 ] && grep -q "\"json:raw\"" "$work/profiles.json" || { echo "GET profiles with a token: $code" >&2; exit 1; }
code=$(curl -s -o /dev/null -w "%{http_code}" "${url}api/v1/export/profiles")
[ "$code" = 401 ] || { echo "GET profiles without a token: $code, not 401" >&2; exit 1; }
kill -TERM "$pid"
trap - EXIT
status=0
wait "$pid" || status=$?
# uvicorn shuts down gracefully, then re-raises the signal: 143 (128 + SIGTERM) is a clean stop, as is 0.
case "$status" in 0|143) ;; *) echo "serve exited $status on SIGTERM" >&2; exit 1 ;; esac
echo "$url ready, GET /api/v1/export/profiles 200 with a minted token, 401 without, stopped (exit $status)"'

smoke() {
  local bin work start end code
  bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  [ -x "$bin" ] || { echo "no binary at $1 (build it with scripts/build-binary.sh)" >&2; return 1; }
  work="$(mktemp -d)"
  # The binary gets no Python of ours: a bare PATH and no PYTHONPATH or virtualenv.
  local -a run=(env -i "PATH=/usr/bin:/bin" "HOME=$work" "TMPDIR=$work" "STELLA_HOME=$work/home" "${OFFLINE[@]}" "$bin")
  echo "== $1 ($(stat -c %s "$bin") bytes)"

  start=$(now); out=$("${run[@]}" --version); end=$(now)
  [ "$out" = "stella $(sed -n 's/^__version__ = "\(.*\)"$/\1/p' core/__init__.py)" ] || {
    echo "unexpected --version output: $out" >&2; return 1; }
  printf '  --version: %s (%.2f s)\n' "$out" "$(elapsed "$start" "$end")"

  # The samples, and a keyless Sigstore bundle signed under Sigstore's production instance.
  "${run[@]}" import samples/advisories samples/vex samples/sboms samples/attestations samples/policy samples/risk \
    "$SIGSTORE/trivy-cyclonedx-attestation.sigstore.json" > "$work/import.txt"
  tail -n 1 "$work/import.txt" | sed 's/^/  import: /'
  grep -q "^20 imported, 0 duplicate, 0 rejected" "$work/import.txt"
  # The same import parsed by two worker processes (spawned: the binary started again as a worker, which
  # multiprocessing.freeze_support() in app/cli.py turns into the worker): the same counts.
  env -i "PATH=/usr/bin:/bin" "HOME=$work" "TMPDIR=$work" "STELLA_HOME=$work/home-workers" STELLA_IMPORT_WORKERS=2 \
    "${OFFLINE[@]}" "$bin" import samples/advisories samples/vex samples/sboms samples/attestations samples/policy \
    samples/risk "$SIGSTORE/trivy-cyclonedx-attestation.sigstore.json" > "$work/import-workers.txt"
  grep -q "^20 imported, 0 duplicate, 0 rejected" "$work/import-workers.txt"
  echo "  import with 2 worker processes: $(tail -n 1 "$work/import-workers.txt")"

  "${run[@]}" keys generate smoke > /dev/null
  "${run[@]}" keys export-public smoke --out "$work/smoke.pub"
  start=$(now)
  "${run[@]}" export run --profile json:raw --key smoke --out "$work/bundle.tar.zst" > /dev/null
  end=$(now)
  printf '  export run json:raw: %s bytes (%.2f s)\n' "$(stat -c %s "$work/bundle.tar.zst")" "$(elapsed "$start" "$end")"
  "${run[@]}" verify "$work/bundle.tar.zst" --key "$work/smoke.pub" > "$work/verify.txt"
  grep -q "^verified " "$work/verify.txt"
  echo "  verify: $(grep -c ' ok ' "$work/verify.txt") checks ok"

  # A damaged copy must be refused with the integrity or signature exit code.
  python3 - "$work/bundle.tar.zst" "$work/damaged.tar.zst" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[len(data) // 2] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
  code=0
  "${run[@]}" verify "$work/damaged.tar.zst" --key "$work/smoke.pub" > /dev/null 2>&1 || code=$?
  case "$code" in 3|4|5) echo "  verify of a damaged copy: refused (exit $code)" ;;
    *) echo "a damaged bundle was not refused (exit $code)" >&2; return 1 ;; esac

  # A mirror bundle with TUF metadata, imported through TUF's client (python-tuf and securesystemslib inside the
  # binary, without boto3: core/lean_imports.py) into a mirror directory, pinned to the home's root.
  "${run[@]}" tuf init --key smoke > /dev/null
  "${run[@]}" export run --profile mirror:full --key smoke --out "$work/mirror.tar.zst" > /dev/null
  "${run[@]}" mirror import "$work/mirror.tar.zst" --into "$work/mirror" --trust-root "$work/home/tuf/root/1.root.json" \
    --key "$work/smoke.pub" > "$work/mirror.txt"
  grep -q "^imported " "$work/mirror.txt" || { cat "$work/mirror.txt" >&2; echo "mirror import failed" >&2; return 1; }
  echo "  mirror:full export and TUF-checked import: $(grep "^imported " "$work/mirror.txt" | sed "s/^imported [^:]*: //")"

  # Attestations: the production trusted root the exporter ships comes from sigstore's package data inside the
  # binary; sigstore-python checks both keyless bundles. The unsigned sample Statement fails (exit 5), as it must.
  "${run[@]}" export run --profile attestation:bundle --key smoke --out "$work/attest.tar.zst" > /dev/null
  code=0
  "${run[@]}" attest bundle verify "$work/attest.tar.zst" --key "$work/smoke.pub" \
    --trusted-root "$SIGSTORE/trust/staging.trusted_root.json" --attestation-key "$SIGSTORE/dsse/vsa_signing_public_key.pem" \
    --certificate-identity-regexp 'thomas\.grininger@ringodev\.com|https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.*' \
    --certificate-oidc-issuer-regexp 'https://github\.com/login/oauth|https://token\.actions\.githubusercontent\.com' \
    > "$work/attest.txt" 2>&1 || code=$?
  [ "$code" = 5 ] && [ "$(grep -c '^  verified keyless ' "$work/attest.txt")" = 2 ] \
    && grep -q '^  verified key ' "$work/attest.txt" || { cat "$work/attest.txt" >&2; echo "attest verify: exit $code" >&2; return 1; }
  echo "  attest bundle verify: 2 keyless and 1 key-based attestations verified, the unsigned one refused (exit 5)"

  start=$(now)
  "${run[@]}" tui --screenshot "$work/tui.svg"
  end=$(now)
  grep -q "Recent&#160;runs" "$work/tui.svg"
  grep -q "json:raw@1" "$work/tui.svg"
  printf '  tui: first screen saved as SVG (%.2f s to first screen, process start to exit)\n' \
    "$(elapsed "$start" "$end")"
  # The local API, with the server and its client in the same namespace (where its loopback is up): the address
  # it prints, readiness, a token minted by the binary answered (and no token refused), then SIGTERM stops it.
  local token
  token=$("${run[@]}" token create --tenant default --scope export:read --ttl 10m | tail -n 1)
  start=$(now)
  env -i "PATH=/usr/bin:/bin" "HOME=$work" "TMPDIR=$work" "STELLA_HOME=$work/home" "${OFFLINE[@]}" \
    /bin/bash -c "$SERVE_CHECK" serve-check "$bin" "$token" "$work" "$IP" > "$work/serve.txt" 2>&1 \
    || { cat "$work/serve.txt" "$work/serve.err" >&2 2>/dev/null; echo "serve check failed" >&2; return 1; }
  end=$(now)
  printf '  serve: %s (%.2f s, start to stop)\n' "$(tail -n 1 "$work/serve.txt")" "$(elapsed "$start" "$end")"

  mkdir -p "$ROOT/dist/smoke"
  cp "$work/tui.svg" "$ROOT/dist/smoke/$(basename "$(dirname "$1")")-$(basename "$1")-tui.svg"
  rm -rf "$work"
}

for binary in "${BINARIES[@]}"; do smoke "$binary"; done
echo "binary smoke test passed${OFFLINE:+ (network unavailable)}"
