#!/usr/bin/env bash
# The main job, end to end, on the built-in sample data (samples/), in a fresh demo home.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$ROOT/.venv/bin/python" ]; then
  echo "== updating stella in $ROOT/.venv (pip install -e .)"
else
  echo "== creating $ROOT/.venv with Python 3.11 and installing stella into it (pip install -e .; a minute or two)"
fi
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
export STELLA_HOME="${STELLA_HOME:-$ROOT/.demo-home}"
rm -rf "$STELLA_HOME"
echo "== stella $(stella --version | cut -d' ' -f2), home: $STELLA_HOME"
echo "== import the sample data (advisories, VEX, SBOMs, attestations, KEV, EPSS, policy)"
stella import --quiet "$ROOT"/samples/*/
echo "== import it again: nothing changes"
stella import --quiet "$ROOT"/samples/*/
echo "== what the store holds"
stella data stats
stella data list advisories --limit 10
echo "== a signing key (ECDSA P-256, cosign-compatible) and its public half"
stella keys generate demo-signer
stella keys export-public demo-signer --out "$STELLA_HOME/demo-signer.pub"
echo "== build a signed, deterministic json:raw bundle"
bundle="$STELLA_HOME/out/samples-json-raw.tar.zst"
stella export run --profile json:raw --key demo-signer --out "$bundle" --mkdir
echo "== verify it offline, check by check, as the receiving side would:"
echo "   stella verify $bundle --key $STELLA_HOME/demo-signer.pub"
stella verify "$bundle" --key "$STELLA_HOME/demo-signer.pub"
echo "== done: $bundle, signed by the key $STELLA_HOME/demo-signer.pub"
