#!/bin/sh
# Offline check of an extracted stella devportal:offline bundle with nothing but a POSIX shell, coreutils
# (sha256sum), find, sed, grep and openssl.
#
#   stella verify-script --devportal --out stella-verify-portal.sh    (once, on a machine whose stella you trust)
#   mkdir portal && tar -xzf bundle.tgz -C portal && sh stella-verify-portal.sh SIGNER-PUBLIC-KEY.pem portal
#
# Run a trusted copy: `stella verify-script --devportal` prints it, the Offline Kit carries it, and
# docs/verification.md publishes its sha256. The verify-portal.sh and serve.sh inside a bundle travelled with the
# bundle: whoever could alter the bundle could alter them too. Without DIR the script checks the directory it lies in.
#
# Checks the DSSE signature of manifest.json (manifest.dsse.json), reads the file list from the signed manifest
# exactly (canonical JSON; any path that is not a safe relative path is refused), then every listed file's digest,
# and that no file or directory is missing or unlisted besides the outer bundle's head files. The outer bundle
# contract (export.json, checksums.txt and their signatures) is checked by the trusted `verify.sh`
# (`stella verify-script`). Exit codes (the same as `stella devportal verify`): 0 verified, 2 usage,
# 4 integrity failure, 5 signature failure.
set -u
LC_ALL=C
export LC_ALL
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -f "$1" ]; then
  echo "usage: $0 SIGNER-PUBLIC-KEY.pem [PORTAL-BUNDLE-DIR]   (the signer's public key, obtained out of band)" >&2
  exit 2
fi
key=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=${2:-$(dirname "$0")}
[ -d "$dir" ] || { echo "usage: $dir is not a directory (the extracted bundle)" >&2; exit 2; }
cd "$dir" || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
fail() { echo "FAILED: $2" >&2; exit "$1"; }

if openssl pkey -pubin -in "$key" -noout -text 2>/dev/null | grep -q ED25519; then ed25519=1; else ed25519=0; fi
check_sig() {  # data-file signature-file
  if [ "$ed25519" = 1 ]; then
    openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$1" -sigfile "$2" >/dev/null 2>&1
  else
    openssl dgst -sha256 -verify "$key" -signature "$2" "$1" >/dev/null 2>&1
  fi
}
nl='
'

# 1. Nothing but regular files and directories, and no name that would split a line of the listings below.
[ -z "$(find . ! -type f ! -type d | head -n 1)" ] || fail 4 "the portal contains links or special files"
[ -z "$(find . -name "*$nl*" | head -n 1)" ] || fail 4 "a file name contains a newline"

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

# 3. The listed files, read exactly from the signed manifest.json. It is canonical JSON (RFC 8785) on one line:
# no raw control character, a quote inside a string written \" and a backslash \\. Those two escapes become
# bytes that canonical JSON never holds raw (\001, \002), so every remaining quote delimits a string and each
# "path":"..." is the key of a file entry, never text inside a value. A path still holding a backslash or a
# control byte is refused below as unsafe.
tr -d '\000-\037\177' < manifest.json | cmp -s - manifest.json || fail 4 "manifest.json is not canonical JSON"
quote=$(printf '\001')
backslash=$(printf '\002')
sed -e 's/\\\\/'"$backslash"'/g' -e 's/\\"/'"$quote"'/g' manifest.json > "$tmp/tokens"
grep -o '"path":"[^"]*","role":"[a-z]*","sha256":"[0-9a-f]\{64\}"' "$tmp/tokens" \
  | sed 's/^"path":"\([^"]*\)","role":"[a-z]*","sha256":"\([0-9a-f]\{64\}\)"$/\2  \1/' \
  | tr "$quote" '"' > "$tmp/listed"
listed=$(wc -l < "$tmp/listed")
[ "$listed" -gt 0 ] || fail 4 "manifest.json lists no files"
keys=$(grep -o '"path":"' "$tmp/tokens" | wc -l)
[ "$keys" -eq "$listed" ] || fail 4 "manifest.json has a file entry that is not {path, role, sha256, ...}"
part='[^/[:cntrl:]\\]+'
safe=$(grep -c -E "^[0-9a-f]{64}  $part(/$part)*\$" "$tmp/listed")
[ "$safe" -eq "$listed" ] || fail 4 "manifest.json lists a path that is not a safe relative path"
! grep -q -E '^.{66}(.*/)?\.\.?(/|$)' "$tmp/listed" || fail 4 "manifest.json lists a path with a '.' or '..' component"
cut -c 67- "$tmp/listed" > "$tmp/paths"
sort -u "$tmp/paths" | cmp -s - "$tmp/paths" || fail 4 "manifest.json does not list its files sorted, once each"

# 4. Exactly the listed files, the outer bundle's head files and their directories are present.
find . -type f | sed 's#^\./##' | grep -v -x -F -e export.json -e export.json.sig -e checksums.txt \
  -e checksums.txt.sig -e README.txt -e verify.sh -e provenance.json -e provenance.dsse.json \
  -e provenance.sigstore.json -e manifest.json -e manifest.dsse.json | sort > "$tmp/present"
sort "$tmp/paths" > "$tmp/expected"
if ! cmp -s "$tmp/present" "$tmp/expected"; then
  comm -23 "$tmp/present" "$tmp/expected" | sed 's/^/unlisted file: /' >&2
  comm -13 "$tmp/present" "$tmp/expected" | sed 's/^/missing file: /' >&2
  fail 4 "the files present differ from manifest.json"
fi
cp "$tmp/paths" "$tmp/level"
: > "$tmp/dirs"
while [ -s "$tmp/level" ]; do
  sed -n 's#/[^/]*$##p' "$tmp/level" > "$tmp/up"
  cat "$tmp/up" >> "$tmp/dirs"
  mv "$tmp/up" "$tmp/level"
done
sort -u "$tmp/dirs" > "$tmp/expected-dirs"
find . -type d | sed 's#^\./##' | grep -v -x -F . | sort > "$tmp/present-dirs"
if ! cmp -s "$tmp/present-dirs" "$tmp/expected-dirs"; then
  comm -23 "$tmp/present-dirs" "$tmp/expected-dirs" | sed 's/^/unlisted directory: /' >&2
  fail 4 "the portal holds a directory no listed file lies in"
fi

# 5. Every listed file's digest.
sha256sum -c --strict --quiet "$tmp/listed" || fail 4 "a portal file's digest does not match manifest.json (see above)"

echo "OK: manifest.dsse.json signature and $listed portal file digests verified with $key; no unlisted file"
exit 0
