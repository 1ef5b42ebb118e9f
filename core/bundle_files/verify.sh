#!/bin/sh
# Offline verification of a stella bundle with nothing but a POSIX shell, sha256sum and openssl.
#
#   tar --zstd -xf bundle.tar.zst -C bundle/ && bundle/verify.sh TRUSTED-PUBLIC-KEY.pem
#
# Exit codes (the same as `stella verify`): 0 verified, 2 usage, 4 integrity failure, 5 signature failure.
set -u
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 TRUSTED-PUBLIC-KEY.pem   (the signer's public key, obtained out of band)" >&2
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
[ -z "$(find . ! -type f ! -type d | head -n 1)" ] || fail 4 "the bundle contains links or special files"

# 2. The manifest signature.
for f in export.json export.json.sig checksums.txt; do [ -f "$f" ] || fail 4 "$f is missing"; done
base64 -d export.json.sig > "$tmp/manifest.sig" 2>/dev/null || fail 5 "export.json.sig is not base64"
check_sig export.json "$tmp/manifest.sig" || fail 5 "export.json.sig does not verify with $key"

# 3. checksums.txt says exactly what the signed manifest says.
manifest_sha=$(sha256sum export.json | cut -d' ' -f1)
listed=0
while read -r sha path; do
  if [ "$path" = export.json ]; then
    [ "$sha" = "$manifest_sha" ] || fail 4 "checksums.txt disagrees with export.json's digest"
    continue
  fi
  grep -qF "\"path\":\"$path\",\"sha256\":\"$sha\"," export.json || fail 4 "$path: checksums.txt entry is not in the signed manifest"
  listed=$((listed + 1))
done < checksums.txt
in_manifest=$(grep -o '"mediaType":"[^"]*","path":"' export.json | wc -l)
[ "$listed" -eq "$in_manifest" ] || fail 4 "checksums.txt lists $listed files, the signed manifest $in_manifest"

# 4. Every file's digest, and no file that is not listed.
sha256sum -c --strict --quiet checksums.txt || fail 4 "a file's digest does not match (see above)"
find . -type f ! -name export.json.sig ! -name checksums.txt | sed 's#^\./##' | LC_ALL=C sort > "$tmp/present"
cut -d' ' -f3- checksums.txt | LC_ALL=C sort > "$tmp/expected"
if ! cmp -s "$tmp/present" "$tmp/expected"; then
  comm -23 "$tmp/present" "$tmp/expected" | sed 's/^/unlisted file: /' >&2
  comm -13 "$tmp/present" "$tmp/expected" | sed 's/^/missing file: /' >&2
  fail 4 "the files present differ from the signed manifest"
fi

# 5. The provenance DSSE signature, over the PAE bytes of provenance.json.
if [ -f provenance.dsse.json ]; then
  sed -n 's/.*"payload":"\([^"]*\)".*/\1/p' provenance.dsse.json | base64 -d > "$tmp/payload" 2>/dev/null
  cmp -s "$tmp/payload" provenance.json || fail 4 "provenance.dsse.json does not carry provenance.json"
  sed -n 's/.*"sig":"\([^"]*\)".*/\1/p' provenance.dsse.json | base64 -d > "$tmp/dsse.sig" 2>/dev/null
  type=application/vnd.in-toto+json
  printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < provenance.json)" > "$tmp/pae"
  cat provenance.json >> "$tmp/pae"
  check_sig "$tmp/pae" "$tmp/dsse.sig" || fail 5 "provenance.dsse.json does not verify with $key"
fi

echo "OK: export.json signature, $listed file digests and provenance verified with $key"
exit 0
