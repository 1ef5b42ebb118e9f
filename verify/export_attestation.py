"""The ``in-toto release`` check of `stella verify BUNDLE`: ``BUNDLE.intoto.jsonl`` beside it, when present.

Runs once the bundle itself verified, against its verified manifest. Every line must be a DSSE envelope over an
in-toto Statement v1 with the Release predicate (malformed: exit 3), signed by a trusted key that may sign the
bundle's profile for its tenant, as the manifest's own signer must (exit 5), whose subjects all carry the bundle
file's sha256 and whose predicate names the manifest's run, tenant, profile and digest (exit 4). An absent file
is reported as not present: attestations are optional, a bad one is never ignored.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.contract.export_attestation import RELEASE_PREDICATE
from core.contract.manifest import VerifiedManifest
from core.contract.payload_types import IN_TOTO
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, SignatureError
from core.export_attestation import STATEMENT_V1, Envelope, attestation_path, parse_line, purl, read_lines
from core.signing import dsse_signer, envelope_signatures
from core.strict_json import loads
from core.trust import TrustedKey


@dataclass(frozen=True)
class AttestationCheck:
    """What the check found: the file (None: not present), the signers' labels and the distributions' types."""

    path: Path | None
    signers: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        if self.path is None:
            return "not present (no .intoto.jsonl beside the bundle)"
        n_copies = len(self.targets)
        copies = (
            f"; {n_copies} distributed cop{'y' if n_copies == 1 else 'ies'} ({', '.join(sorted(set(self.targets)))})"
            if self.targets
            else ""
        )
        signers = ", ".join(repr(s) for s in sorted(set(self.signers)))
        n = len(self.signers)
        return (
            f"{self.path.name}: {n} in-toto Release statement{'' if n == 1 else 's'} signed by {signers}, "
            f"each naming this bundle's sha256 and its run, tenant, profile and manifest{copies}"
        )


def check_export_attestation(
    bundle: Path,
    keys: Sequence[TrustedKey],
    manifest: VerifiedManifest,
    bundle_sha256: str,
    cancelled: Callable[[], bool] = lambda: False,
) -> AttestationCheck:
    """Check the attestation file beside ``bundle`` (verified, with ``manifest``) against the trusted ``keys``.

    ``bundle_sha256`` is the bundle file's digest, taken by the verifier's one pass over it
    (:attr:`core.archive.reader.SafeArchiveReader.file_sha256`): the bytes verified are the bytes attested, and the
    file is not read again. ``cancelled`` is asked before the lines are checked (then :class:`Cancelled` is raised).
    """
    path = attestation_path(bundle)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return AttestationCheck(None)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read the attestation: {exc.strerror}", path=str(path)) from None
    if not stat.S_ISREG(mode):
        raise BadInputError("the attestation is not a regular file", path=str(path))
    lines = read_lines(path)
    if cancelled():
        raise Cancelled("verification cancelled")
    signers: list[str] = []
    targets: list[str] = []
    for n, data in enumerate(lines, start=1):
        envelope = parse_line(data, n, str(path))
        signers.append(_signer(envelope, keys, manifest, path).label)
        target = _check_statement(envelope, bundle_sha256, manifest, path)
        if target is not None:
            targets.append(target)
    return AttestationCheck(path, tuple(signers), tuple(targets))


def _signer(envelope: Envelope, keys: Sequence[TrustedKey], manifest: VerifiedManifest, path: Path) -> TrustedKey:
    """The trusted key that signed the line, which must be allowed to sign the bundle's profile for its tenant."""
    n = envelope.line
    if envelope.payload_type != IN_TOTO:
        raise BadInputError(f"line {n}: payloadType {envelope.payload_type!r} is not {IN_TOTO!r}", path=str(path))
    key = dsse_signer(IN_TOTO, envelope.payload, envelope_signatures(envelope.signatures), keys)
    if key is None:
        tried = ", ".join(k.label for k in keys) or "none"
        raise SignatureError(
            f"line {n}: the envelope does not verify with any trusted key (tried: {tried})", path=str(path)
        )
    profile, tenant = str(manifest.profile.id or ""), str(manifest.tenant or "")
    if key.receipts_only or not key.allows(profile, tenant):
        raise SignatureError(
            f"line {n}: trusted key {key.label!r} may not sign profile {profile!r} for tenant {tenant!r}",
            path=str(path),
        )
    return key


def _check_statement(envelope: Envelope, bundle_sha: str, manifest: VerifiedManifest, path: Path) -> str | None:
    """Check a signed line's statement; returns the distribution's target type (None: the bundle's own line)."""
    n = envelope.line
    where = str(path)
    value = loads(envelope.payload, path=where, what=f"statement on line {n}")
    if not isinstance(value, dict) or value.get("_type") != STATEMENT_V1:
        raise BadInputError(f"line {n}: the payload is not an in-toto Statement v1", path=where)
    if value.get("predicateType") != RELEASE_PREDICATE:
        raise BadInputError(
            f"line {n}: predicateType {value.get('predicateType')!r} is not {RELEASE_PREDICATE!r}", path=where
        )
    subjects, predicate = value.get("subject"), value.get("predicate")
    if not isinstance(subjects, list) or not subjects or not isinstance(predicate, dict):
        raise BadInputError(f"line {n}: the statement has no subject or no predicate object", path=where)
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(digest, dict):
            raise BadInputError(f"line {n}: a subject without a digest object", path=where)
        if digest.get("sha256") != bundle_sha:
            raise IntegrityError(
                f"line {n}: subject {subject.get('name')!r} has sha256 {digest.get('sha256')!r}, "
                f"but the bundle's sha256 is {bundle_sha}",
                path=where,
            )
    _check_predicate(predicate, manifest, n, where)
    distribution = predicate.get("distribution")
    if distribution is None:
        return None
    if not isinstance(distribution, dict) or not isinstance(distribution.get("type"), str):
        raise BadInputError(f"line {n}: predicate.distribution has no type", path=where)
    return str(distribution["type"])


def _check_predicate(predicate: dict[str, Any], manifest: VerifiedManifest, n: int, where: str) -> None:
    """The predicate must name what the verified manifest says: run, tenant, profile, manifest digest, purl."""
    run_id, tenant, profile = manifest.run_id or "", manifest.tenant or "", manifest.profile.id or ""
    profile_of = predicate.get("profile")
    wanted: list[tuple[str, Any, Any]] = [
        ("runId", predicate.get("runId"), run_id),
        ("tenant", predicate.get("tenant"), tenant),
        ("profile.id", profile_of.get("id") if isinstance(profile_of, dict) else None, profile),
        ("manifestSha256", predicate.get("manifestSha256"), manifest.sha256),
        ("purl", predicate.get("purl"), purl(tenant, profile, run_id)),
    ]
    for name, got, want in wanted:
        if got != want:
            raise IntegrityError(
                f"line {n}: predicate.{name} is {got!r}, but the verified manifest says {want!r}", path=where
            )
