"""Deleting expired copies of a bundle from where `stella distribute` put them (`stella retention prune`).

An OCI copy is deleted by its manifest digest through the registry API (the registry drops the tags pointing at it);
the stella referrers of the manifest (signature, provenance, attestation) and the tag-schema index listing them go
with it. A
registry that does not delete (405, as distribution without ``storage.delete.enabled``) keeps the copy and the prune
says so. An S3 copy is deleted by its version unless that version is under an Object Lock legal hold or retention
that has not ended: then it stays, with the reason; its attestation object beside it (``KEY.intoto.jsonl``) goes
with it. A copy that is gone already counts as deleted. Credentials reach
the targets as for `stella distribute` and appear in no reason, record or event.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from adapters.objstore.s3 import Endpoint, S3Location, S3Store, sha256_b64
from adapters.oci import reference as oci_ref
from adapters.oci.client import RegistryClient
from core.clock import rfc3339, utcnow
from core.contract.export_attestation import SUFFIX as ATTESTATION_SUFFIX
from core.contract.media_types import STELLA_BUNDLE_SIGNATURE_ARTIFACT
from core.contract.oci import REFERRERS_TAG_PREFIX
from core.errors import StellaError
from core.runs import Distribution
from services.distribute import Access, referrer_digests
from services.distribute_s3 import DISTRIBUTION_TYPE as S3_TYPE
from services.distribute_s3 import S3Options

OCI_TYPE = "oci"


@dataclass
class RemoteCopies:
    """Deletes expired copies: call it with a distribution; None when the copy is gone, else why it stays."""

    access: Access = field(default_factory=Access)
    s3: S3Options = field(default_factory=S3Options)
    now: datetime = field(default_factory=utcnow)

    def __call__(self, dist: Distribution) -> str | None:
        try:
            if dist.type == OCI_TYPE:
                return self._oci(dist)
            if dist.type == S3_TYPE:
                return self._s3(dist)
        except StellaError as exc:  # the copy stays; the next prune tries again
            return f"not deleted: {exc.message}"
        return f"not deleted: stella cannot delete copies of type {dist.type!r}"

    def _oci(self, dist: Distribution) -> str | None:
        ref = oci_ref.parse(dist.target, what="distribution target")
        if ref.digest is None or not ref.repository:
            return f"not deleted: the record names no manifest digest ({dist.target})"
        with self.access.client(ref) as client:
            referrers, index_digest = _tag_schema_referrers(client, ref.repository, ref.digest)
            referrers += [d for d in referrer_digests(client, ref.repository, ref.digest) if d not in referrers]
            outcome = client.delete_manifest(ref.repository, ref.digest)
            if outcome == "unsupported":
                return (
                    f"the registry {ref.host} refuses deletes (405): the copy stays"
                    " (distribution needs storage.delete.enabled: true)"
                )
            for digest in referrers:
                client.delete_manifest(ref.repository, digest)
            if index_digest is not None:
                client.delete_manifest(ref.repository, index_digest)
        return None

    def _s3(self, dist: Distribution) -> str | None:
        location = S3Location.parse(dist.target)
        s3 = self.s3
        store = S3Store(
            Endpoint(s3.endpoint_url, s3.path_style, s3.ca_file or self.access.ca_file, s3.credentials_file)
        )
        held = store.head(location.bucket, location.prefix)
        if held is None:
            return None  # gone already
        version = f" (version {held.version_id})" if held.version_id else ""
        claimed = None if dist.sha256 is None else sha256_b64(bytes.fromhex(dist.sha256))
        if (dist.size is not None and held.size != dist.size) or (
            held.checksum_sha256 is not None and claimed is not None and held.checksum_sha256 != claimed
        ):
            return f"{dist.target}{version} no longer holds the distributed bundle: left alone"
        if held.legal_hold:
            return f"{dist.target}{version} is under an S3 Object Lock legal hold: kept"
        if _retained(held.retain_until, self.now):
            assert held.retain_until is not None
            mode = held.lock_mode.value if held.lock_mode is not None else "Object Lock"
            return f"{dist.target}{version} is under {mode} retention until {rfc3339(held.retain_until)}: kept"
        store.delete_version(location.bucket, location.prefix, held.version_id)
        sidecar = store.head(location.bucket, location.prefix + ATTESTATION_SUFFIX)  # the attestation beside it
        if sidecar is not None and not sidecar.legal_hold and not _retained(sidecar.retain_until, self.now):
            store.delete_version(location.bucket, sidecar.key, sidecar.version_id)
        return None


def _retained(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def _tag_schema_referrers(client: RegistryClient, repo: str, subject: str) -> tuple[list[str], str | None]:
    """The stella referrers of ``subject`` listed in its ``sha256-<hex>`` index, and the index's digest when it
    lists nothing else (so it may go too)."""
    body = client.get_manifest(repo, REFERRERS_TAG_PREFIX + subject.removeprefix("sha256:"))
    if body is None:
        return [], None
    try:
        entries = json.loads(body).get("manifests")
    except (ValueError, AttributeError):
        return [], None
    if not isinstance(entries, list):
        return [], None
    ours = [
        str(m["digest"])
        for m in entries
        if isinstance(m, dict)
        and m.get("artifactType") == STELLA_BUNDLE_SIGNATURE_ARTIFACT
        and re.fullmatch(r"sha256:[0-9a-f]{64}", str(m.get("digest"))) is not None
    ]
    whole = len(ours) == len(entries)
    return ours, f"sha256:{hashlib.sha256(body).hexdigest()}" if whole else None
