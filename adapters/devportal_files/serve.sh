#!/bin/sh
# Verify this portal, then serve it on http://127.0.0.1:PORT/ (default 8000) for local browsing.
#
#   sh serve.sh SIGNER-PUBLIC-KEY.pem [PORT]
#
# Needs only a POSIX shell, sha256sum, openssl (for the check) and python3 (its built-in http.server).
# The server listens on 127.0.0.1 only; stop it with Ctrl-C.
#
# This script and the verify-portal.sh it runs travelled with the bundle: whoever could alter the bundle could
# alter them too. To check a portal you do not trust yet, run a trusted verifier instead, then serve:
#   stella devportal serve bundle.tgz --key SIGNER-PUBLIC-KEY.pem
# or, without stella on this machine, the trusted copy printed by `stella verify-script --devportal` (the Offline
# Kit carries it; docs/verification.md publishes its sha256):
#   sh stella-verify-portal.sh SIGNER-PUBLIC-KEY.pem DIR && python3 -m http.server --bind 127.0.0.1 --directory DIR/portal
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 SIGNER-PUBLIC-KEY.pem [PORT]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/verify-portal.sh" "$1" || exit $?
echo "serving $here/portal on http://127.0.0.1:${2:-8000}/" >&2
exec python3 -m http.server --bind 127.0.0.1 --directory "$here/portal" "${2:-8000}"
