"""The bundle contract holds across writer and verifier: every profile's output passes the verifier of its kind.

Each profile of the payload registry is built from the sample data the other integration tests use, with a fresh
key, and verified by the receiving side's verifier for its kind (the generic bundle verifier, or the risk,
attestation or devportal verifier, which run the generic checks first). A new profile without a case here fails
:func:`test_every_profile_has_a_case`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.profiles.registry import PROFILES
from core.canonical import canonical_json
from core.contract.payload_types import IN_TOTO
from core.signing import Signer, dsse_envelope, sigstore_bundle_v03
from core.trust import TrustedKey
from services.trust import keys_from_files
from tests.conftest import CliResult
from tests.integration.test_attest_bundle import _statement
from tests.integration.test_devportal import PORTAL
from tests.integration.test_risk_bundle import TODAY, redated
from tests.integration.test_risk_simulation import INPUTS as SIMULATION_INPUTS
from tests.integration.test_risk_simulation import TENANT as SIMULATION_TENANT
from tests.integration.test_trivy_profiles import ADVISORY_FILES, SBOM_FILES
from tests.interop.test_bootstrap import make_image
from verify.attest import verify_attestation_bundle
from verify.attest_sigstore import Trust
from verify.bundle import VerifyReport, verify_bundle
from verify.devportal import verify_portal
from verify.risk import verify_risk_bundle

Stella = Callable[..., CliResult]
SAMPLES = Path(__file__).parent.parent.parent / "samples"

pytestmark = pytest.mark.usefixtures("no_network")


def _export(stella: Stella, tmp_path: Path, profile: str, *extra: str | Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / ("bundle.tgz" if profile == "devportal:offline" else f"{profile.replace(':', '-')}.tar.zst")
    res = stella("export", "run", "--profile", profile, "--key", "signer", "--out", out, *extra, "--json")
    assert res.code == 0, res.err
    run: dict[str, Any] = res.json()  # type: ignore[assignment]
    return out, run


def _samples(stella: Stella, tmp_path: Path, profile: str) -> Path:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    return _export(stella, tmp_path, profile)[0]


def _trivy(stella: Stella, tmp_path: Path, profile: str) -> Path:
    assert stella("import", "--quiet", *ADVISORY_FILES, *SBOM_FILES).code == 0
    return _export(stella, tmp_path, profile)[0]


def _mirror(stella: Stella, tmp_path: Path, profile: str) -> Path:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    full, run = _export(stella, tmp_path, "mirror:full")
    if profile == "mirror:full":
        return full
    return _export(stella, tmp_path, profile, "--base", str(run["runId"]))[0]


def _risk(stella: Stella, tmp_path: Path, profile: str) -> Path:
    kev, epss = redated(tmp_path, TODAY)  # released today, so fresh
    gz = tmp_path / f"{epss.name}.gz"
    gz.write_bytes(gzip.compress(epss.read_bytes(), mtime=0))
    assert stella("import", "--quiet", kev, gz).code == 0
    return _export(stella, tmp_path, profile, "--provider", "kev", "--provider", "epss")[0]


def _simulation(stella: Stella, tmp_path: Path, profile: str) -> Path:
    assert stella("import", "--quiet", "--tenant", SIMULATION_TENANT, *SIMULATION_INPUTS).code == 0
    return _export(stella, tmp_path, profile, "--tenant", SIMULATION_TENANT)[0]


def _attestations(stella: Stella, tmp_path: Path, profile: str) -> Path:
    attester = Signer(ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "attester.pub").write_bytes(attester.public_pem)
    assert stella("trust", "add", "attester", tmp_path / "attester.pub").code == 0
    own_dsse = tmp_path / "release.dsse.json"
    own_dsse.write_bytes(canonical_json(dsse_envelope(attester, IN_TOTO, _statement("app.tar", b"app"))))
    own_bundle = tmp_path / "lib.sigstore.json"
    envelope = dsse_envelope(attester, IN_TOTO, _statement("lib.tar", b"lib"))
    own_bundle.write_bytes(canonical_json(sigstore_bundle_v03(envelope, attester)))
    assert stella("import", "--quiet", own_dsse, own_bundle).code == 0
    return _export(stella, tmp_path, profile)[0]


def _portal(stella: Stella, tmp_path: Path, profile: str) -> Path:
    assert stella("devportal", "import", PORTAL, "--portal", "petstore").code == 0
    return _export(stella, tmp_path, profile)[0]


def _bootstrap(stella: Stella, tmp_path: Path, profile: str) -> Path:
    files = tmp_path / "files"
    (files / "etc").mkdir(parents=True)
    (files / "etc" / "motd").write_text("hello\n")
    make_image(tmp_path / "img", files, "motd:1")
    spec = tmp_path / "bootstrap.yaml"
    spec.write_text("images:\n  - source: oci:img\n    name: apps/motd:1\n")
    out = tmp_path / "bootstrap-pack.tar.zst"
    res = stella("bootstrap", "build", spec, "--out", out, "--signing-key", "signer")
    assert res.code == 0, res.err
    return out


Verifier = Callable[[Path, list[TrustedKey], Path], VerifyReport]


def _generic(bundle: Path, keys: list[TrustedKey], _tmp: Path) -> VerifyReport:
    return verify_bundle(bundle, keys)


def _verify_risk(bundle: Path, keys: list[TrustedKey], _tmp: Path) -> VerifyReport:
    return verify_risk_bundle(bundle, keys)


def _verify_attestations(bundle: Path, keys: list[TrustedKey], tmp: Path) -> VerifyReport:
    report = verify_attestation_bundle(bundle, keys, trust=Trust(keys=keys_from_files([tmp / "attester.pub"])))
    assert report.results and all(r.verified for r in report.results)
    return report


def _verify_portal(bundle: Path, keys: list[TrustedKey], _tmp: Path) -> VerifyReport:
    return verify_portal(bundle, keys)


#: profile -> (how its bundle is built from the sample data, the verifier of its kind)
CASES: dict[str, tuple[Callable[[Stella, Path, str], Path], Verifier]] = {
    "json:raw": (_samples, _generic),
    "json:policy": (_samples, _generic),
    "trivy:db": (_trivy, _generic),
    "trivy:java-db": (_trivy, _generic),
    "mirror:full": (_mirror, _generic),
    "mirror:delta": (_mirror, _generic),
    "devportal:offline": (_portal, _verify_portal),
    "risk:bundle": (_risk, _verify_risk),
    "risk:simulation": (_simulation, _generic),
    "attestation:bundle": (_attestations, _verify_attestations),
    "bootstrap:pack": (_bootstrap, _generic),
}


def test_every_profile_has_a_case() -> None:
    assert set(CASES) == set(PROFILES)


@pytest.mark.parametrize("profile", sorted(CASES))
def test_a_profiles_output_passes_the_verifier_of_its_kind(stella: Stella, tmp_path: Path, profile: str) -> None:
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    build, verifier = CASES[profile]
    bundle = build(stella, tmp_path, profile)
    report = verifier(bundle, keys_from_files([pub]), tmp_path)
    assert report.ok, (profile, report.error, [c.to_dict() for c in report.checks if not c.ok])
    checks = {c.name for c in report.checks}
    assert {"signature", "files", "checksums", "provenance"} <= checks or profile == "devportal:offline", checks
