"""The in-toto Release attestations of an export run's bundle, written beside it as ``BUNDLE.intoto.jsonl``.

One DSSE envelope a line, each over an in-toto Statement v1 whose predicate is the in-toto Release predicate:

- the bundle's line, signed when the run succeeds: subject the bundle file's name and sha256; predicate the purl
  and package id of the release, the run id, tenant, profile and the digest of the bundle's signed manifest;
- one line per copy distributed (`stella export download`): subject the copy's name and sha256, the same
  predicate plus ``distribution`` (the target's type, location and time).

A bundle is a release of one profile's data for one tenant, and the run is its version, so its purl is
``pkg:generic/TENANT/PROFILE@RUN``: ``generic`` because no package registry's ecosystem owns a stella bundle, the
tenant as namespace and the profile id as name so that the package id ``TENANT/PROFILE`` stays the same from run
to run (what the Release predicate asks of ``packageId``), and the run id as version because every run is one
immutable release (a retry is a new run, with a new id, of the same bytes).

The writer (``services.export_attest``) and the verifier (``verify.export_attestation``) share this module.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.canonical import canonical_json
from core.contract.export_attestation import PURL_PREFIX, RELEASE_PREDICATE, SUFFIX
from core.contract.payload_types import IN_TOTO
from core.errors import BadInputError, EnvironmentFailure
from core.signing import Signer, dsse_envelope
from core.strict_json import loads

#: The in-toto Statement type every line's payload carries.
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
#: Bounds on what a verifier reads from a file it did not write: the whole file, one line, the number of lines.
MAX_FILE = 16 << 20
MAX_LINE = 1 << 20
MAX_LINES = 4096


def attestation_path(bundle: Path) -> Path:
    """Where the attestation of ``bundle`` is: beside it, its name plus ``.intoto.jsonl``."""
    return bundle.with_name(bundle.name + SUFFIX)


def purl(tenant: str, profile_id: str, run_id: str) -> str:
    """The purl of a run's bundle: ``pkg:generic/TENANT/PROFILE@RUN``, each part percent-encoded."""
    return f"{PURL_PREFIX}{quote(tenant, safe='')}/{quote(profile_id, safe='')}@{quote(run_id, safe='')}"


def package_id(tenant: str, profile_id: str) -> str:
    """The Release predicate's ``packageId``: the same for every run of one profile in one tenant."""
    return f"{tenant}/{profile_id}"


def release_predicate(
    *, tenant: str, profile_id: str, profile_revision: int | None, run_id: str, manifest_sha256: str
) -> dict[str, Any]:
    """The predicate of a bundle's line (a copy's line adds ``distribution``)."""
    return {
        "purl": purl(tenant, profile_id, run_id),
        "packageId": package_id(tenant, profile_id),
        "runId": run_id,
        "tenant": tenant,
        "profile": {"id": profile_id, "revision": profile_revision},
        "manifestSha256": manifest_sha256,
    }


def statement(name: str, sha256: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 about one file (``name``, ``sha256`` hex) with the Release predicate."""
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": sha256}}],
        "predicateType": RELEASE_PREDICATE,
        "predicate": dict(predicate),
    }


def envelope_line(signer: Signer, value: Mapping[str, Any]) -> bytes:
    """One line of the file: the DSSE envelope (canonical JSON) of statement ``value`` signed by ``signer``."""
    return canonical_json(dsse_envelope(signer, IN_TOTO, canonical_json(dict(value)))) + b"\n"


def read_lines(path: Path) -> list[bytes]:
    """The lines of an attestation file, bounded and strict: every line ends with a newline and none is empty.

    A file over the size, line or line-count bound, an empty file or an empty line is refused (exit 3) naming it.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read the attestation: {exc.strerror}", path=str(path)) from None
    if len(data) > MAX_FILE:
        raise BadInputError(f"the attestation is over {MAX_FILE} bytes", path=str(path))
    if not data:
        raise BadInputError("the attestation is empty", path=str(path))
    if not data.endswith(b"\n"):
        raise BadInputError("the attestation's last line does not end with a newline", path=str(path))
    lines = data[:-1].split(b"\n")
    if len(lines) > MAX_LINES:
        raise BadInputError(f"the attestation has over {MAX_LINES} lines", path=str(path))
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise BadInputError(f"line {n} of the attestation is empty", path=str(path))
        if len(line) > MAX_LINE:
            raise BadInputError(f"line {n} of the attestation is over {MAX_LINE} bytes", path=str(path))
    return [line + b"\n" for line in lines]


@dataclass(frozen=True)
class Envelope:
    """One line, parsed: its payload type, payload bytes and signatures (the ``signatures`` list as it is)."""

    line: int
    payload_type: str
    payload: bytes
    signatures: list[Any]


def parse_line(data: bytes, line: int, where: str) -> Envelope:
    """A line as a DSSE envelope; malformed JSON, a repeated key or a missing field is refused (exit 3)."""
    value = loads(data, path=where, what=f"envelope on line {line}")
    if not isinstance(value, dict):
        raise BadInputError(f"line {line} is not a DSSE envelope (a JSON object)", path=where)
    payload, payload_type, signatures = value.get("payload"), value.get("payloadType"), value.get("signatures")
    if not isinstance(payload, str) or not isinstance(payload_type, str) or not isinstance(signatures, list):
        raise BadInputError(f"line {line} lacks the payload, payloadType or signatures of a DSSE envelope", path=where)
    try:
        raw = base64.b64decode(payload, validate=True)
    except ValueError:
        raise BadInputError(f"line {line}: the envelope's payload is not base64", path=where) from None
    return Envelope(line, payload_type, raw, signatures)
