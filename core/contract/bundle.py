"""The bundle contract every kind of bundle shares: the head files, their archive order, the trust prefix.

An archive starts with ``export.json``, ``export.json.sig``, ``checksums.txt`` and ``checksums.txt.sig``
(:data:`UNLISTED`: the manifest does not list them; both signatures are by the same key, so a verifier without
stella checks the signed ``checksums.txt`` and never parses JSON), then the listed head files
(:data:`LISTED_HEAD`: README, verify script, provenance), then the payload ordered by :func:`bundle_order`
(trust metadata first, then by path). The writer (``core.bundle``) lays a bundle out this way and the verifier
(``verify.bundle``) rejects any other order.
"""

from __future__ import annotations

MANIFEST = "export.json"
MANIFEST_SIG = "export.json.sig"
CHECKSUMS = "checksums.txt"
CHECKSUMS_SIG = "checksums.txt.sig"
README = "README.txt"
VERIFY_SCRIPT = "verify.sh"
PROVENANCE = "provenance.json"
PROVENANCE_DSSE = "provenance.dsse.json"
PROVENANCE_SIGSTORE = "provenance.sigstore.json"

#: ``export.json``'s ``schema``.
MANIFEST_SCHEMA = "https://stellaops.dev/schemas/export-manifest/v1"
#: The SLSA provenance predicate's ``buildDefinition.buildType`` and ``runDetails.builder.id``.
BUILD_TYPE = "https://stellaops.dev/export-center/bundle/v1"
BUILDER_ID = "https://stellaops.dev/export-center/offline"

#: Files that are not listed in the manifest: the manifest, its signature, the derived checksums and their signature.
UNLISTED = (MANIFEST, MANIFEST_SIG, CHECKSUMS, CHECKSUMS_SIG)
#: Listed files that come before the payload: README, verify script and the provenance files.
LISTED_HEAD = (README, VERIFY_SCRIPT, PROVENANCE, PROVENANCE_DSSE, PROVENANCE_SIGSTORE)
#: Archive order before the payload (sorted by :func:`bundle_order`): the verifier can reject early.
HEAD_ORDER = UNLISTED + LISTED_HEAD
#: Trust metadata a profile ships in its payload: archived (and listed) before the rest, so it is read first.
TRUST_PREFIXES = ("tuf/",)


def bundle_order(path: str) -> tuple[int, str]:
    """The order of listed files in the manifest and the archive: trust metadata first, then by path."""
    return (0 if path.startswith(TRUST_PREFIXES) else 1, path)
