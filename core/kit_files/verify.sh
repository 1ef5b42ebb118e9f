#!/bin/sh
# Offline verification of one stella Offline Kit volume with nothing but a POSIX shell, coreutils (sha256sum),
# find, sed, grep and openssl.
#
#   sh verify.sh KIT-SIGNER-PUBLIC-KEY.pem [VOLUME-DIR]
#
# VOLUME-DIR is a volume directory (vol-01), a USB stick, or a mounted or extracted ISO; without it the script
# checks the directory it lies in. The key must come out of band (the trust/ copy on the volume travelled with it).
# This script travels with the volume too: run a copy you trust (docs/kit.md publishes its sha256).
#
# What it checks, failing closed at the first problem:
#   1. only regular files and directories, no name with a newline;
#   2. KIT-VOLUME.json.sig and KIT-VOLUME.sha256.sig verify with the key (cosign blob signatures: ECDSA P-256 over
#      SHA-256, or Ed25519);
#   3. KIT-VOLUME.sha256 is exactly what stella writes: lines `<64 lowercase hex>  <path>`, KIT-VOLUME.json
#      first, then sorted, safe relative paths, no duplicate;
#   4. every file present is listed (besides the signatures and the list itself), every listed file present;
#   5. every listed file's sha256 (sha256sum -c --strict), the signed manifest's included.
# Exit codes (the same as `stella kit verify`): 0 verified, 2 usage, 4 integrity failure, 5 signature failure.
set -u
LC_ALL=C
export LC_ALL
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -f "$1" ]; then
  echo "usage: $0 KIT-SIGNER-PUBLIC-KEY.pem [VOLUME-DIR]   (the kit signer's public key, obtained out of band)" >&2
  exit 2
fi
key=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=${2:-$(dirname "$0")}
[ -d "$dir" ] || { echo "usage: $dir is not a directory (a kit volume)" >&2; exit 2; }
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
sums=KIT-VOLUME.sha256

# 1. Nothing but regular files and directories, and no name that would split a line of the listings below.
[ -z "$(find . ! -type f ! -type d | head -n 1)" ] || fail 4 "the volume holds links or special files"
[ -z "$(find . -name "*$nl*" | head -n 1)" ] || fail 4 "a file name contains a newline"

# 2. The signatures over the volume manifest and over the volume's checksum list, by the trusted key.
[ -f KIT-VOLUME.json ] || fail 4 "KIT-VOLUME.json is missing: not a kit volume"
[ -f KIT-VOLUME.json.sig ] || fail 5 "KIT-VOLUME.json.sig is missing: the volume is unsigned"
[ -f "$sums" ] || fail 4 "$sums is missing"
[ -f "$sums.sig" ] || fail 5 "$sums.sig is missing"
check_sig KIT-VOLUME.json KIT-VOLUME.json.sig || fail 5 "KIT-VOLUME.json.sig does not verify with $key"
check_sig "$sums" "$sums.sig" || fail 5 "$sums.sig does not verify with $key"

# 3. The list in the one form stella writes; anything else is refused, not interpreted.
[ -s "$sums" ] || fail 4 "$sums is empty"
[ "$(tail -c 1 "$sums" | wc -l)" -eq 1 ] || fail 4 "$sums does not end with a newline"
tr -d '\000' < "$sums" | cmp -s - "$sums" || fail 4 "$sums contains a NUL byte"
lines=$(wc -l < "$sums")
part='[A-Za-z0-9_+-][A-Za-z0-9._+-]*'
canonical=$(grep -c -E "^[0-9a-f]{64}  $part(/$part)*\$" "$sums")
[ "$canonical" -eq "$lines" ] || fail 4 "$sums has a line that is not '<sha256>  <safe relative path>'"
cut -c 67- "$sums" > "$tmp/listed"
[ "$(head -n 1 "$tmp/listed")" = KIT-VOLUME.json ] || fail 4 "$sums does not start with KIT-VOLUME.json"
{ echo KIT-VOLUME.json; sed 1d "$tmp/listed" | sort -u; } > "$tmp/ordered"
cmp -s "$tmp/ordered" "$tmp/listed" || fail 4 "$sums is not sorted or lists a path twice"

# 4. Exactly the listed files are present: nothing added, nothing missing.
find . -type f | sed 's#^\./##' | grep -v -x -F -e KIT-VOLUME.json.sig -e "$sums" -e "$sums.sig" \
  | sort > "$tmp/present"
sort "$tmp/listed" > "$tmp/expected"
if ! cmp -s "$tmp/present" "$tmp/expected"; then
  comm -23 "$tmp/present" "$tmp/expected" | sed 's/^/unlisted file: /' >&2
  comm -13 "$tmp/present" "$tmp/expected" | sed 's/^/missing file: /' >&2
  fail 4 "the files present differ from the signed $sums"
fi

# 5. Every listed file's digest.
sha256sum -c --strict --quiet "$sums" || fail 4 "a file's digest does not match the signed $sums (see above)"

echo "OK: KIT-VOLUME.json and $sums signatures, $lines file digests and no unlisted file verified with $key"
exit 0
