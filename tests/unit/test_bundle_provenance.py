"""The streamed provenance files are exactly RFC 8785 of the in-memory statement, envelope and bundle."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from core.bundle import (
    BundleSpec,
    FileEntry,
    PayloadWriter,
    ResolvedInput,
    _provenance,
    _write_provenance,
)
from core.canonical import canonical_json
from core.contract.bundle import PROVENANCE, PROVENANCE_DSSE, PROVENANCE_SIGSTORE
from core.contract.payload_types import IN_TOTO as INTOTO_PAYLOAD_TYPE
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore
from core.progress import CancelToken, NullObserver
from core.signing import Signer, dsse_envelope, sigstore_bundle_v03

SPEC = BundleSpec(
    run_id="run-1",
    tenant="t",
    profile_id="json:raw",
    profile_kind="json",
    profile_variant="raw",
    profile_revision=1,
    profile_config={"kind": "json", "variant": "raw"},
    selectors={"ecosystem": ["PyPI"]},
    created_at=datetime(2026, 11, 22, 12, 0, 0),
)
PAYLOAD = [FileEntry("data/a.jsonl.zst", "a" * 64, 10, "application/x-ndjson+zstd")]


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
@pytest.mark.parametrize("count", [0, 1, 5000])
def test_streamed_provenance_equals_canonical_objects(tmp_path: Path, algorithm: KeyAlgorithm, count: int) -> None:
    keys = KeyStore(Home(tmp_path))
    keys.generate("k", algorithm)
    signer = Signer.from_keystore(keys, "k")
    inputs = [ResolvedInput(f"{i:064x}", "advisory", "osv", f'GHSA-{i}\u00e9"x') for i in range(count)]
    staging = tmp_path / "staging"
    staging.mkdir()
    writer = PayloadWriter(staging, sink=NullObserver(), cancel=CancelToken())
    _write_provenance(writer, SPEC, PAYLOAD, iter(inputs), signer)

    statement = canonical_json(_provenance(SPEC, PAYLOAD, inputs))
    assert (staging / PROVENANCE).read_bytes() == statement
    # Both signature schemes used here are deterministic (RFC 6979 ECDSA, Ed25519), so bytes must match.
    envelope = dsse_envelope(signer, INTOTO_PAYLOAD_TYPE, statement)
    assert (staging / PROVENANCE_DSSE).read_bytes() == canonical_json(envelope)
    assert (staging / PROVENANCE_SIGSTORE).read_bytes() == canonical_json(sigstore_bundle_v03(envelope, signer))
    assert writer.files[PROVENANCE].size == len(statement)
