"""The in-toto Release attestations of export runs (:mod:`core.export_attestation`): written when a run succeeds,
extended when its bundle is distributed; `stella verify` checks them (:mod:`verify.export_attestation`)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.atomic import write_bytes
from core.clock import rfc3339
from core.contract.bundle import MANIFEST
from core.errors import IntegrityError
from core.export_attestation import (
    attestation_path,
    envelope_line,
    parse_line,
    read_lines,
    release_predicate,
    statement,
)
from core.home import Home
from core.runs import Distribution, ExportRun
from core.signing import Signer
from core.strict_json import loads
from services.keys import signer_for


def _regular_file(path: Path | None) -> bool:
    """True for a regular file (not a device, pipe or link): only such a bundle gets an attestation beside it."""
    try:
        return path is not None and stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def manifest_sha256(bundle: Path) -> str:
    """The sha256 of the bundle's ``export.json`` (its first entry), read with the fail-closed archive reader."""
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name != MANIFEST:
                break
            digest = hashlib.sha256()
            with member.stream() as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()
    raise IntegrityError(f"the bundle does not start with {MANIFEST}", path=str(bundle))


def _predicate(run: ExportRun, bundle: Path) -> dict[str, Any]:
    return release_predicate(
        tenant=run.tenant,
        profile_id=run.profile_id,
        profile_revision=run.profile_revision,
        run_id=run.run_id,
        manifest_sha256=manifest_sha256(bundle),
    )


def attest_bundle(run: ExportRun, signer: Signer) -> Path | None:
    """Write ``BUNDLE.intoto.jsonl`` for a succeeded run: the bundle's Release statement, signed by ``signer``.

    Replaces an earlier file of that name (a retry rebuilt to the same path is a new release). Returns its path;
    None when the run wrote no regular file (a pipe, a device).
    """
    bundle = run.artifact_path
    if bundle is None or run.artifact_sha256 is None or not _regular_file(bundle):
        return None
    line = envelope_line(signer, statement(bundle.name, run.artifact_sha256, _predicate(run, bundle)))
    path = attestation_path(bundle)
    write_bytes(path, line, what="cannot write the bundle's attestation")
    return path


def distribution_signer(home: Home, run: ExportRun, passphrase_file: Path | None = None) -> Signer | None:
    """The signer of a copy's statement: the run's key, when the run's bundle has an attestation to extend.

    Opened before anything is copied, so a key that cannot be unlocked leaves nothing behind."""
    if run.artifact_path is None or not _regular_file(attestation_path(run.artifact_path)):
        return None
    return signer_for(home, run.key_name, passphrase_file)


def attest_distribution(run: ExportRun, dist: Distribution, signer: Signer) -> Path | None:
    """Add the copy's own Release statement (subject: the copy's name and sha256; predicate: the bundle's plus
    ``distribution``: the distribution's id and type, the copy's name and the time) to the bundle's attestation, and
    write the whole file beside the copy, so `stella verify COPY` checks it. Returns the copy's attestation; None when
    the copy is no regular file or the bundle has no attestation.

    The copy's full path is not in the statement: it is a local detail (the run's distribution record, by ``id``,
    keeps it) that a signed statement would carry into every sealed evidence bundle past its redaction."""
    bundle, copy = run.artifact_path, Path(dist.target)
    if bundle is None or dist.sha256 is None or not _regular_file(copy):
        return None
    source = attestation_path(bundle)
    if not _regular_file(source):
        return None
    earlier = b"".join(read_lines(source))
    predicate = _predicate(run, copy) | {
        "distribution": {
            "id": dist.distribution_id,
            "type": dist.type,
            "name": copy.name,
            "distributedAt": rfc3339(dist.created_at),
        }
    }
    whole = earlier + envelope_line(signer, statement(copy.name, dist.sha256, predicate))
    target = attestation_path(copy)
    write_bytes(target, whole, what="cannot write the copy's attestation")
    write_bytes(source, whole, what="cannot write the bundle's attestation")
    return target


def _attests(line: bytes, distribution_id: str, where: str) -> bool:
    """Whether ``line`` is the statement of distribution ``distribution_id`` (a retried push signs it once)."""
    envelope = parse_line(line, 0, where)
    value = loads(envelope.payload, path=where, what="statement")
    predicate = value.get("predicate") if isinstance(value, dict) else None
    dist = predicate.get("distribution") if isinstance(predicate, dict) else None
    return isinstance(dist, dict) and dist.get("id") == distribution_id


def attest_remote_copy(run: ExportRun, dist: Distribution, signer: Signer, location: str) -> bytes | None:
    """Add the Release statement of a copy held elsewhere (an OCI registry, an S3 bucket) to the bundle's
    attestation and return the whole file, which travels with the copy. The predicate's ``distribution`` names the
    type and ``location`` (``oci://HOST/REPO@DIGEST``, ``s3://BUCKET/KEY``: no credentials are part of either).
    A distribution already attested (a retried push) adds no second line. None when the bundle has none."""
    bundle = run.artifact_path
    if bundle is None or dist.sha256 is None:
        return None
    source = attestation_path(bundle)
    if not _regular_file(source):
        return None
    lines = read_lines(source)
    if any(_attests(line, dist.distribution_id, str(source)) for line in lines):
        return b"".join(lines)
    predicate = _predicate(run, bundle) | {
        "distribution": {
            "id": dist.distribution_id,
            "type": dist.type,
            "name": bundle.name,
            "location": location,
            "distributedAt": rfc3339(dist.created_at),
        }
    }
    whole = b"".join(lines) + envelope_line(signer, statement(bundle.name, dist.sha256, predicate))
    write_bytes(source, whole, what="cannot write the bundle's attestation")
    return whole
