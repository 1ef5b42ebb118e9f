"""The sample sealed evidence bundles of ``tests/fixtures/evidence/``, and the script that makes them.

    .venv/bin/python -m tests.evidence_fixture            rebuild the bundles from the committed key and tokens
    .venv/bin/python -m tests.evidence_fixture --refresh  also make a new test TSA and new tokens (needs openssl)

``sample.tgz`` seals three artifacts of an export run (timestamped by the test TSA); ``sample-reseal.tgz`` re-seals
them with two more and carries the consistency proof from ``sample.tgz``'s root. Sealing is deterministic, so
``tests/unit/test_evidence_seal.py`` rebuilds both and compares the bytes: when the format or the verify script
changes, the signature and so the timestamp change too, and ``--refresh`` makes new tokens.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.contract.evidence import SIGNATURE
from core.custody import CustodyEvent, append_event
from core.evidence_seal import (
    EvidenceArtifact,
    PreviousSeal,
    Redaction,
    SealedEvidence,
    SealRequest,
    attach_timestamp,
    read_members,
    seal_evidence,
)
from core.signing import Signer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "evidence"
KEY = "signer.key"
PUB = "signer.pub"
TSA_CA = "tsa-ca.pem"
BUNDLES = ("sample", "sample-reseal")
DIGEST = "sha256:" + "5e" * 32


@dataclass(frozen=True)
class Fixture:
    """The two sealed samples, by name."""

    bundles: dict[str, SealedEvidence]


def signer(folder: Path = FIXTURE) -> Signer:
    """The fixture's signing key (a test key, committed on purpose)."""
    key = serialization.load_pem_private_key((folder / KEY).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Signer(key)


def _custody(n: int) -> list[CustodyEvent]:
    steps = [
        ("ops@example", "snapshot", "export run run-0001 finished"),
        ("ops@example", "seal", "sealed into the locker"),
        ("auditor@example", "access", "quarterly review"),
        ("legal@example", "hold", "case CASE-42"),
        ("ops@example", "seal", "re-sealed with the distribution transcripts"),
    ]
    chain: list[CustodyEvent] = []
    for i, (actor, action, why) in enumerate(steps[:n]):
        chain.append(
            append_event(
                chain,
                at=datetime(2026, 12, 1, 12, i, 0),
                actor=actor,
                action=action,
                subject="evidence:ev-sample-0001",
                subject_digest=DIGEST,
                where="locker-host",
                why=why,
            )
        )
    return chain


ARTIFACTS = [
    EvidenceArtifact("run/parameters.json", b'{"profile":"json:raw","selectors":["kev"]}\n', "application/json"),
    EvidenceArtifact("run/export.json", b'{"schema":"export","runId":"run-0001"}\n', "application/json"),
    EvidenceArtifact(
        "run/provenance.dsse.json", b'{"payloadType":"application/vnd.in-toto+json"}\n', "application/json"
    ),
]
RESEAL_ARTIFACTS = [
    EvidenceArtifact("distribution/file.transcript.json", b'{"target":"file","ok":true}\n', "application/json"),
    EvidenceArtifact("distribution/media.transcript.json", b'{"target":"media","ok":true}\n', "application/json"),
]
SUBJECT = {"runId": "run-0001", "profile": "json:raw", "parameters": {"selectors": ["kev"], "compression": "gzip"}}
REDACTIONS = [Redaction("parameters.passphraseFile", "not in the allowlist of redaction profile 'standard'")]


def requests() -> dict[str, SealRequest]:
    """The seal requests of the two samples."""
    base = SealRequest(
        evidence_id="ev-sample-0001",
        kind="run",
        tenant="acme",
        created_at=datetime(2026, 12, 1, 12, 0, 0),
        subject=SUBJECT,
        artifacts=ARTIFACTS,
        redaction_profile="standard",
        redactions=REDACTIONS,
        custody=_custody(2),
    )
    first = seal_evidence(base, signer(), None)
    reseal = SealRequest(
        evidence_id="ev-sample-0002",
        kind="run",
        tenant="acme",
        created_at=datetime(2026, 12, 1, 13, 0, 0),
        subject=SUBJECT,
        artifacts=[*ARTIFACTS, *RESEAL_ARTIFACTS],
        redaction_profile="standard",
        redactions=REDACTIONS,
        custody=_custody(5)[2:],
        previous=PreviousSeal("ev-sample-0001", first.tree_size, first.root_hash),
    )
    return {"sample": base, "sample-reseal": reseal}


def build(folder: Path = FIXTURE) -> Fixture:
    """The samples as the code seals them now, with the committed tokens attached."""
    out: dict[str, SealedEvidence] = {}
    for name, request in requests().items():
        sealed = seal_evidence(request, signer(folder), None)
        token = folder / f"{name}.tsr"
        out[name] = attach_timestamp(sealed.archive, token.read_bytes()) if token.is_file() else sealed
    return Fixture(out)


def refresh(folder: Path = FIXTURE) -> None:
    """New test TSA, new tokens over the current signatures, and the bundles rebuilt (the key is kept if present)."""
    from tests.tsa_server import TsaServer, make_pki

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / KEY).is_file():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (folder / KEY).write_bytes(pem)
    (folder / PUB).write_bytes(signer(folder).public_pem)
    with tempfile.TemporaryDirectory(prefix="evidence-fixture-") as work:
        pki = make_pki(Path(work))
        shutil.copyfile(pki.ca_cert, folder / TSA_CA)
        server = TsaServer(pki)
        try:
            for name, request in requests().items():
                sealed = seal_evidence(request, signer(folder), None)
                members, _ = read_members(sealed.archive)
                (folder / f"{name}.tsr").write_bytes(server.stamp(members[SIGNATURE]))
        finally:
            server.close()
    write(build(folder), folder)


def write(fixture: Fixture, folder: Path = FIXTURE) -> None:
    for name, sealed in fixture.bundles.items():
        (folder / f"{name}.tgz").write_bytes(sealed.archive)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refresh", action="store_true", help="make a new test TSA and new tokens (needs openssl)")
    args = parser.parse_args(argv)
    if args.refresh:
        refresh()
    else:
        write(build())
    for name in BUNDLES:
        print(FIXTURE / f"{name}.tgz")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
