"""Risk bundle run options and durations: what `--provider` and `--grace` accept, pinned as the run keeps them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.profiles.risk_bundle import PROFILE, pinned_providers
from core.canonical import canonical_json
from core.contract.manifest import VerifiedManifest
from core.contract.payload_types import RISK_MANIFEST as RISK_PAYLOAD_TYPE
from core.contract.risk import MANIFEST as RISK_MANIFEST
from core.contract.risk import MANIFEST_DSSE as RISK_MANIFEST_DSSE
from core.contract.risk import MANIFEST_SCHEMA as RISK_MANIFEST_SCHEMA
from core.durations import parse_duration
from core.errors import BadInputError, IntegrityError, SignatureError, StellaError, UsageError
from core.signing import Signer, dsse_envelope
from core.trust import TrustedKey
from verify.risk import (
    FreshnessPolicy,
    RiskReport,
    _RiskVerification,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        ("30s", timedelta(seconds=30)),
        ("P7D", timedelta(days=7)),
        ("PT36H", timedelta(hours=36)),
        ("P1DT2H", timedelta(days=1, hours=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--grace") == expected


@pytest.mark.parametrize("text", ["", "0d", "7", "d", "P", "PT", "-1d", "7 days", "P1Y"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(BadInputError, match="not a positive duration"):
        parse_duration(text, "--grace")


def test_plan_options_pin_sorted_providers_with_windows() -> None:
    assert PROFILE.plan_options({}, None) == {
        "providers": [{"name": "epss", "freshnessSeconds": 604800}, {"name": "kev", "freshnessSeconds": 1209600}]
    }
    pinned = PROFILE.plan_options({"providers": ["KEV=3d"]}, None)
    assert pinned == {"providers": [{"name": "kev", "freshnessSeconds": 259200}]}
    assert [(p.name, s) for p, s in pinned_providers(pinned)] == [("kev", 259200)]


def test_plan_options_refuse_unknown_and_repeated_providers() -> None:
    with pytest.raises(UsageError, match="unknown risk provider 'osv'"):
        PROFILE.plan_options({"providers": ["kev", "osv"]}, None)
    with pytest.raises(UsageError, match="given twice"):
        PROFILE.plan_options({"providers": ["kev", "kev=1d"]}, None)
    with pytest.raises(UsageError, match="does not apply"):
        PROFILE.plan_options({"base": "run-1"}, None)


# -- the risk manifest check of verify/risk.py, on hand-made (mis)signed manifests ---------------------------
def _signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def _trusted(signer: Signer) -> TrustedKey:
    return TrustedKey("k", signer.keyid, signer.algorithm, signer.public_key)


def _case(tmp_path: Path, signer: Signer, **change: Any) -> tuple[_RiskVerification, dict[str, Path]]:
    """A verification job over a risk manifest and its envelope; ``change`` tampers with one part."""
    raw = b'{"catalogVersion": "x"}'
    provider = {
        "name": "kev",
        "dataset": {"sha256": hashlib.sha256(raw).hexdigest()},
        "expiresAt": "2026-01-15T00:00:00Z",
        "files": {"raw": "providers/kev/known_exploited_vulnerabilities.json"},
    }
    risk = {
        "schema": RISK_MANIFEST_SCHEMA,
        "tenant": "default",
        "runId": "run-1",
        "createdAt": "2026-01-01T00:00:00Z",
        "expiresAt": "2026-01-15T00:00:00Z",
        "providers": [provider],
    }
    body = canonical_json(risk)
    envelope = dsse_envelope(change.get("envelope_signer", signer), RISK_PAYLOAD_TYPE, change.get("payload", body))
    files = {
        RISK_MANIFEST: tmp_path / "m.json",
        RISK_MANIFEST_DSSE: tmp_path / "m.dsse.json",
        "providers/kev/known_exploited_vulnerabilities.json": tmp_path / "raw.json",
    }
    files[RISK_MANIFEST].write_bytes(body)
    files[RISK_MANIFEST_DSSE].write_bytes(canonical_json(envelope))
    files["providers/kev/known_exploited_vulnerabilities.json"].write_bytes(change.get("raw", raw))
    section = {"expiresAt": change.get("section_expiry", "2026-01-15T00:00:00Z"), "providers": [provider]}
    report = RiskReport("b", FreshnessPolicy.BLOCK, None, datetime(2026, 1, 15))
    report.manifest = VerifiedManifest.from_dict(
        {"tenant": "default", "runId": "run-1", "createdAt": "2026-01-01T00:00:00Z", "risk": section}
    )
    report.signer = {"keyid": signer.keyid}
    job = _RiskVerification(Path("b"), [_trusted(signer)], report, None, tmp_path, None)
    return job, files


def test_a_consistent_risk_manifest_passes_and_is_fresh_up_to_its_expiry(tmp_path: Path) -> None:
    signer = _signer()
    job, files = _case(tmp_path, signer)
    risk = job.check_manifest(files)
    job.check_freshness(risk)  # evaluated exactly at expiresAt: still fresh
    assert [p.status for p in job.report.providers] == ["fresh"]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("stranger", SignatureError, "not signed by the key that signed export.json"),
        ("payload", IntegrityError, "does not carry risk/manifest.json"),
        ("section_expiry", IntegrityError, "disagrees with the risk section of export.json"),
        ("raw", IntegrityError, "is not the document it names"),
    ],
)
def test_a_tampered_risk_manifest_is_refused(
    tmp_path: Path, change: str, error: type[StellaError], message: str
) -> None:
    signer = _signer()
    changes: dict[str, Any] = {
        "stranger": {"envelope_signer": _signer()},
        "payload": {"payload": b'{"schema":"other"}'},
        "section_expiry": {"section_expiry": "2027-01-01T00:00:00Z"},
        "raw": {"raw": b"{}"},
    }[change]
    job, files = _case(tmp_path, signer, **changes)
    with pytest.raises(error, match=message):
        job.check_manifest(files)
    assert job.report.checks[-1].ok is False


def test_sender_and_receiver_agree_on_the_risk_manifest_names() -> None:
    from adapters.profiles import risk_bundle
    from verify import risk

    for name in ("RISK_MANIFEST", "RISK_MANIFEST_DSSE", "RISK_MANIFEST_SCHEMA", "RISK_PAYLOAD_TYPE"):
        assert getattr(risk_bundle, name) == getattr(risk, name), name
