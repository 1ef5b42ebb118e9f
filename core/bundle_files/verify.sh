#!/bin/sh
# Offline verification of an extracted stella bundle with nothing but a POSIX shell, coreutils (sha256sum), find,
# sed, grep and openssl.
#
#   stella verify-script --out stella-verify.sh          (once, on a machine whose stella you trust)
#   mkdir b && tar --zstd -xf BUNDLE.tar.zst -C b && sh stella-verify.sh TRUSTED-PUBLIC-KEY.pem b
#
# Run a trusted copy: `stella verify-script` prints it, the Offline Kit carries it, and docs/verification.md
# publishes its sha256. The verify.sh inside a bundle travelled with the bundle: whoever could alter the bundle
# could alter it too, so it proves nothing on its own. Without DIR the script checks the directory it lies in.
#
# What it checks, failing closed at the first problem:
#   1. only regular files and directories, no name with a newline;
#   2. export.json.sig and checksums.txt.sig verify with the key (cosign blob signatures: ECDSA P-256 over
#      SHA-256, or Ed25519), so checksums.txt is the signer's list, which names export.json's digest;
#   3. checksums.txt is exactly what the writer emits: lines `<64 lowercase hex>  <path>` each ending in a
#      newline (no CR, no NUL), safe relative paths, trust metadata (tuf/) first, then sorted, no duplicate;
#   4. every file and directory present is listed (besides the three unlisted head files), every listed file present;
#   5. every listed file's sha256 (sha256sum -c --strict);
#   6. the provenance DSSE signature over provenance.json's PAE bytes.
# Exit codes (the same as `stella verify`): 0 verified, 2 usage, 4 integrity failure, 5 signature failure.
set -u
LC_ALL=C
export LC_ALL
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -f "$1" ]; then
  echo "usage: $0 TRUSTED-PUBLIC-KEY.pem [BUNDLE-DIR]   (the signer's public key, obtained out of band)" >&2
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
check_sig() {  # data-file base64-signature-file
  base64 -d "$2" > "$tmp/sig" 2>/dev/null && [ -s "$tmp/sig" ] || return 1
  if [ "$ed25519" = 1 ]; then
    openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$1" -sigfile "$tmp/sig" >/dev/null 2>&1
  else
    openssl dgst -sha256 -verify "$key" -signature "$tmp/sig" "$1" >/dev/null 2>&1
  fi
}
nl='
'

# 1. Nothing but regular files and directories, and no name that would split a line of the listings below.
[ -z "$(find . ! -type f ! -type d | head -n 1)" ] || fail 4 "the bundle contains links or special files"
[ -z "$(find . -name "*$nl*" | head -n 1)" ] || fail 4 "a file name contains a newline"

# 2. The signatures over export.json and over checksums.txt, by the same trusted key.
[ -f export.json ] || fail 4 "export.json is missing"
[ -f export.json.sig ] || fail 5 "export.json.sig is missing: the bundle is unsigned"
[ -f checksums.txt ] || fail 4 "checksums.txt is missing"
[ -f checksums.txt.sig ] || fail 4 "checksums.txt.sig is missing"
check_sig export.json export.json.sig || fail 5 "export.json.sig does not verify with $key"
check_sig checksums.txt checksums.txt.sig || fail 5 "checksums.txt.sig does not verify with $key"

# 3. checksums.txt in the one form the writer emits; anything else is refused, not interpreted.
[ -s checksums.txt ] || fail 4 "checksums.txt is empty"
[ "$(tail -c 1 checksums.txt | wc -l)" -eq 1 ] || fail 4 "checksums.txt does not end with a newline"
tr -d '\000' < checksums.txt | cmp -s - checksums.txt || fail 4 "checksums.txt contains a NUL byte"
lines=$(wc -l < checksums.txt)
part='[^/[:cntrl:]\\]+'
canonical=$(grep -c -E "^[0-9a-f]{64}  $part(/$part)*\$" checksums.txt)
[ "$canonical" -eq "$lines" ] || fail 4 "checksums.txt has a line that is not '<sha256>  <relative path>' (CR, tab, backslash or control character, absolute path or empty component)"
! grep -q -E '^.{66}(.*/)?\.\.?(/|$)' checksums.txt || fail 4 "checksums.txt names a path with a '.' or '..' component"
cut -c 67- checksums.txt > "$tmp/listed"
{ grep '^tuf/' "$tmp/listed" | sort -u; grep -v '^tuf/' "$tmp/listed" | sort -u; } > "$tmp/ordered"
cmp -s "$tmp/ordered" "$tmp/listed" || fail 4 "checksums.txt is not in bundle order or lists a path twice"
grep -q -x -F export.json "$tmp/listed" || fail 4 "checksums.txt does not list export.json"

# 4. Exactly the listed files and their directories are present: nothing added, nothing missing.
find . -type f | sed 's#^\./##' | grep -v -x -F -e export.json.sig -e checksums.txt -e checksums.txt.sig \
  | sort > "$tmp/present"
sort "$tmp/listed" > "$tmp/expected"
if ! cmp -s "$tmp/present" "$tmp/expected"; then
  comm -23 "$tmp/present" "$tmp/expected" | sed 's/^/unlisted file: /' >&2
  comm -13 "$tmp/present" "$tmp/expected" | sed 's/^/missing file: /' >&2
  fail 4 "the files present differ from the signed checksums.txt"
fi
cp "$tmp/listed" "$tmp/level"
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
  fail 4 "the bundle holds a directory no listed file lies in"
fi

# 5. Every listed file's digest.
sha256sum -c --strict --quiet checksums.txt || fail 4 "a file's digest does not match the signed checksums.txt (see above)"

# 6. The provenance DSSE signature, over the PAE bytes of provenance.json.
if [ -f provenance.dsse.json ]; then
  sed -n 's/.*"payload":"\([^"]*\)".*/\1/p' provenance.dsse.json | base64 -d > "$tmp/payload" 2>/dev/null
  cmp -s "$tmp/payload" provenance.json || fail 4 "provenance.dsse.json does not carry provenance.json"
  sed -n 's/.*"sig":"\([^"]*\)".*/\1/p' provenance.dsse.json > "$tmp/dsse.sig"
  type=application/vnd.in-toto+json
  printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < provenance.json)" > "$tmp/pae"
  cat provenance.json >> "$tmp/pae"
  check_sig "$tmp/pae" "$tmp/dsse.sig" || fail 5 "provenance.dsse.json does not verify with $key"
fi

echo "OK: export.json and checksums.txt signatures, $lines file digests, no unlisted file and provenance verified with $key"
exit 0
