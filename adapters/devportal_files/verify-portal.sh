#!/bin/sh
# Offline check of a stella devportal:offline bundle with nothing but a POSIX shell, sha256sum and openssl.
#
#   mkdir portal && tar -xzf bundle.tgz -C portal && sh portal/verify-portal.sh SIGNER-PUBLIC-KEY.pem
#
# Checks the DSSE signature of manifest.json (manifest.dsse.json), then every portal file's digest against
# manifest.json, and that no file is missing or unlisted. `sh verify.sh KEY` checks the outer bundle contract.
# Exit codes (the same as `stella devportal verify`): 0 verified, 2 usage, 4 integrity failure, 5 signature failure.
set -u
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 SIGNER-PUBLIC-KEY.pem   (the signer's public key, obtained out of band)" >&2
  exit 2
fi
key=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAILED: $2" >&2; exit "$1"; }

if openssl pkey -pubin -in "$key" -noout -text 2>/dev/null | grep -q ED25519; then ed25519=1; else ed25519=0; fi
check_sig() {  # data-file signature-file
  if [ "$ed25519" = 1 ]; then
    openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$1" -sigfile "$2" >/dev/null 2>&1
  else
    openssl dgst -sha256 -verify "$key" -signature "$2" "$1" >/dev/null 2>&1
  fi
}

# 1. Nothing but regular files.
[ -z "$(find . ! -type f ! -type d | head -n 1)" ] || fail 4 "the portal contains links or special files"

# 2. The DSSE signature over manifest.json (its PAE bytes).
[ -f manifest.dsse.json ] || fail 5 "manifest.dsse.json is missing: the portal is unsigned"
[ -f manifest.json ] || fail 4 "manifest.json is missing"
sed -n 's/.*"payload":"\([^"]*\)".*/\1/p' manifest.dsse.json | base64 -d > "$tmp/payload" 2>/dev/null
cmp -s "$tmp/payload" manifest.json || fail 4 "manifest.dsse.json does not carry manifest.json"
sed -n 's/.*"sig":"\([^"]*\)".*/\1/p' manifest.dsse.json | head -n 1 | base64 -d > "$tmp/sig" 2>/dev/null
[ -s "$tmp/sig" ] || fail 5 "manifest.dsse.json has no signature"
type=application/vnd.stellaops.devportal.manifest+json
printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < manifest.json)" > "$tmp/pae"
cat manifest.json >> "$tmp/pae"
check_sig "$tmp/pae" "$tmp/sig" || fail 5 "manifest.dsse.json does not verify with $key"

# 3. Every listed file's digest (manifest.json is canonical JSON: one flat object per file).
tr '{' '\n' < manifest.json \
  | sed -n 's/.*"path":"\([^"]*\)","role":"[^"]*","sha256":"\([0-9a-f]\{64\}\)".*/\2  \1/p' > "$tmp/listed"
listed=$(wc -l < "$tmp/listed")
[ "$listed" -gt 0 ] || fail 4 "manifest.json lists no files"
sha256sum -c --strict --quiet "$tmp/listed" || fail 4 "a portal file's digest does not match manifest.json (see above)"

# 4. No file that manifest.json does not list (the outer bundle files are checked by verify.sh).
find . -type f | sed 's#^\./##' | grep -v -x -e export.json -e export.json.sig -e checksums.txt -e README.txt \
  -e verify.sh -e provenance.json -e provenance.dsse.json -e provenance.sigstore.json -e manifest.json \
  -e manifest.dsse.json | LC_ALL=C sort > "$tmp/present"
cut -d' ' -f3- "$tmp/listed" | LC_ALL=C sort > "$tmp/expected"
if ! cmp -s "$tmp/present" "$tmp/expected"; then
  comm -23 "$tmp/present" "$tmp/expected" | sed 's/^/unlisted file: /' >&2
  comm -13 "$tmp/present" "$tmp/expected" | sed 's/^/missing file: /' >&2
  fail 4 "the files present differ from manifest.json"
fi

echo "OK: manifest.dsse.json signature and $listed portal file digests verified with $key"
exit 0
