#!/bin/sh
# Offline verification of an extracted stella sealed evidence bundle with sha256sum, openssl and python3 -I only.
#
#   mkdir b && tar -xzf EVIDENCE.tgz -C b && sh b/verify.sh --key SIGNER.pub [--tsa-ca TSA-CA.pem]
#
# 1. sha256sum checks every file SHA256SUMS lists (exit 4 on a mismatch or a missing file);
# 2. verify.py (Python's standard library only, run isolated with -I) checks the rest: the signature and the
#    timestamp with openssl, the Merkle root, every proof, the custody chain (its header lists the checks).
# This copy travelled with the bundle; a copy you trust proves more (see docs/evidence-format.md).
# Exit codes: 0 verified, 2 usage, 3 bad input, 4 integrity, 5 signature, 6 trust, 8 environment.
set -u
LC_ALL=C
export LC_ALL
usage() { echo "usage: $0 --key SIGNER.pub [--tsa-ca TSA-CA.pem]" >&2; exit 2; }
case "$0" in */*) dir=${0%/*} ;; *) dir=. ;; esac
dir=$(cd "$dir" && pwd) || exit 8
# Make the key and CA paths absolute before changing directory.
set -- "$@" --
while [ "$1" != "--" ]; do
  case "$1" in
    --key|--tsa-ca)
      if [ $# -lt 3 ] || [ ! -f "$2" ]; then usage; fi
      case "$2" in /*) file=$2 ;; *) file=$PWD/$2 ;; esac
      set -- "$@" "$1" "$file"; shift 2 ;;
    *) usage ;;
  esac
done
shift
cd "$dir" || exit 8
if ! sha256sum --quiet --strict -c SHA256SUMS; then
  echo "FAIL  checksums: a file differs from SHA256SUMS or is missing"
  echo "NOT verified (exit 4)"
  exit 4
fi
exec python3 -I "$dir/verify.py" "$@" "$dir"
