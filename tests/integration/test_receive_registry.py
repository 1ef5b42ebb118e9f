"""The registry of receivable kinds: every known profile has one entry, and each kind's bundle, verified as
`stella verify` verifies it, leads to its entry (the one the TUI's ctrl+n and the kind's import command use)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.contract.manifest import VerifiedManifest
from core.home import resolve_home
from core.profiles import KNOWN_VARIANTS
from services.receive import (
    ATTESTATION,
    BOOTSTRAP,
    DEVPORTAL,
    JSON,
    MIRROR,
    RECEIVABLES,
    RISK,
    RISK_SIMULATION,
    TRIVY,
    OptionType,
    Receivable,
    ReceiveRequest,
    receivable_for,
    request_from_form,
    verify_received,
)
from tests.conftest import CliResult
from tests.integration.test_contract import _bootstrap
from tests.integration.test_risk_simulation import INPUTS as SIMULATION_INPUTS
from tests.integration.test_risk_simulation import TENANT as SIMULATION_TENANT
from tests.integration.test_trivy_profiles import build_trivy_bundles
from tests.tui.support import SAMPLES
from tests.tui.test_receive import attestation_bundle, devportal_bundle, mirror_bundle, risk_bundle, signer_pub

Stella = Callable[..., CliResult]
Builder = Callable[[Stella, Path], tuple[Path, Path]]


def _mirror(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    bundle, pub, _root = mirror_bundle(stella, tmp_path)
    return bundle, pub


def _trivy(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    built = build_trivy_bundles(stella, tmp_path)
    return built["java-db"], built["pub"]


def _json_raw(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    pub = signer_pub(stella, tmp_path)
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    bundle = tmp_path / "raw.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", bundle).code == 0
    return bundle, pub


def _risk_simulation(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    assert stella("import", "--quiet", "--tenant", SIMULATION_TENANT, *SIMULATION_INPUTS).code == 0
    pub = signer_pub(stella, tmp_path)
    bundle = tmp_path / "sim.tar.zst"
    res = stella(
        "export", "run", "--tenant", SIMULATION_TENANT, "--profile", "risk:simulation", "--key", "signer",
        "--out", bundle,
    )  # fmt: skip
    assert res.code == 0, res.err
    return bundle, pub


def _bootstrap_pack(stella: Stella, tmp_path: Path) -> tuple[Path, Path]:
    pub = signer_pub(stella, tmp_path)
    return _bootstrap(stella, tmp_path, "bootstrap:pack"), pub


KINDS: list[tuple[Receivable[Any, Any], Builder]] = [
    (MIRROR, _mirror),
    (TRIVY, _trivy),
    (RISK, risk_bundle),
    (ATTESTATION, attestation_bundle),
    (DEVPORTAL, devportal_bundle),
    (JSON, _json_raw),
    (RISK_SIMULATION, _risk_simulation),
    (BOOTSTRAP, _bootstrap_pack),
]


def test_every_entry_is_exercised_below() -> None:
    assert {r.kind for r, _ in KINDS} == {r.kind for r in RECEIVABLES}


@pytest.mark.parametrize(("receivable", "build"), KINDS, ids=[r.kind for r, _ in KINDS])
def test_a_kinds_bundle_verified_by_stella_verify_leads_to_its_entry(
    receivable: Receivable[Any, Any], build: Builder, stella: Stella, tmp_path: Path
) -> None:
    bundle, pub = build(stella, tmp_path)
    res = stella("verify", bundle, "--key", pub, "--json")
    assert res.code == 0, res.out
    report = res.json()
    assert isinstance(report, dict)
    assert receivable_for(VerifiedManifest.from_dict(report["manifest"])) is receivable
    verified = verify_received(resolve_home(None), ReceiveRequest(bundle, key_files=(pub,)))
    assert verified.report.ok and verified.receivable is receivable
    assert verified.report.to_dict()["manifest"] == report["manifest"]  # the typed manifest round-trips


def test_every_known_profile_has_exactly_one_entry() -> None:
    """A new profile kind must say what its bundles offer (even if nothing): one registry entry."""
    profiles = [p for r in RECEIVABLES for p in r.profiles]
    assert sorted(profiles) == sorted(f"{kind}:{variant}" for kind, variant in KNOWN_VARIANTS)
    assert len({r.kind for r in RECEIVABLES}) == len(RECEIVABLES)


def test_what_an_entry_offers_it_can_draw() -> None:
    fields = {f.name for f in dataclasses.fields(ReceiveRequest)}
    for receivable in RECEIVABLES:
        assert receivable.offered == (receivable.apply is not None)
        if receivable.offered:
            assert receivable.outcome is not None and receivable.columns, receivable.kind
        for option in receivable.options:
            assert option.field in fields, (receivable.kind, option.field)
            assert option.type is not OptionType.CHOICE or option.default in option.choices
    assert JSON.offered and not RISK_SIMULATION.offered  # a json bundle's raw documents import (`stella import`)
    assert MIRROR.cancellable and TRIVY.cancellable and JSON.cancellable and not RISK.cancellable


def test_a_form_becomes_the_kinds_request() -> None:
    request = request_from_form(
        MIRROR, Path("b.tar.zst"), Path("k.pub"), {"into": " m ", "identity": "id.txt", "receipt-key": ""}
    )
    assert request == ReceiveRequest(
        Path("b.tar.zst"), key_files=(Path("k.pub"),), into=Path("m"), identity_files=(Path("id.txt"),)
    )
    risk = request_from_form(RISK, Path("r"), None, {})
    assert (risk.policy, risk.grace, risk.key_files) == ("block", None, ())
    attest = request_from_form(ATTESTATION, Path("a"), None, {"cert-identity": "me@example.com"})
    assert attest.certificate_identities == ("me@example.com",) and attest.oidc_issuer is None
