"""attestation:bundle end to end: real Sigstore bundles and our key-signed DSSE -> signed bundle -> verify -> import.

The receiver's checks run in-process under a socket guard, and once as the real `stella` process inside a network
namespace with no interfaces (``unshare -rn``) where the system allows it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from core.canonical import canonical_json
from core.contract.payload_types import IN_TOTO as IN_TOTO_PAYLOAD_TYPE
from core.home import Home
from core.signing import Signer, dsse_envelope, sigstore_bundle_v03
from core.store import Store
from tests.conftest import FIXTURES, ROOT, CliResult
from tests.integration.bundle_helpers import flip, read_members, write_members

Stella = Callable[..., CliResult]
OFFLINE = FIXTURES / "sigstore-offline"
KEYLESS = [
    OFFLINE / "conformance" / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json",
    OFFLINE / "trivy-cyclonedx-attestation.sigstore.json",
    OFFLINE / "bundle_v3.txt.sigstore",  # staging: its root comes from the exporter's trust store
]
VSA = OFFLINE / "dsse" / "gke-gce-pre.bcid-vsa.jsonl"
VSA_KEY = OFFLINE / "dsse" / "vsa_signing_public_key.pem"
POLICY = [
    "--certificate-identity-regexp",
    r"(https://github\.com/sigstore-conformance/.*|thomas\.grininger@ringodev\.com|william@yossarian\.net)",
    "--certificate-oidc-issuer-regexp",
    r"https://(token\.actions\.githubusercontent\.com|github\.com/login/oauth)",
]


pytestmark = pytest.mark.usefixtures("no_network")


def _statement(name: str, content: bytes) -> bytes:
    return canonical_json(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": hashlib.sha256(content).hexdigest()}}],
            "predicateType": "https://stellaops.dev/test/release/v1",
            "predicate": {"release": name},
        }
    )


@dataclass
class Exported:
    bundle: Path
    exporter_pub: Path
    attester_pub: Path
    own_dsse: Path
    own_bundle: Path
    tmp: Path
    run_id: str


@pytest.fixture
def exported(stella: Stella, home: Path, tmp_path: Path) -> Exported:
    assert stella("keys", "generate", "k").code == 0
    exporter_pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", exporter_pub).code == 0
    # Our own key-based attestations, signed with a key of the trust store.
    attester = Signer(ec.generate_private_key(ec.SECP256R1()))
    attester_pub = tmp_path / "attester.pub"
    attester_pub.write_bytes(attester.public_pem)
    assert stella("trust", "add", "attester", attester_pub).code == 0
    assert stella("trust", "add", "vsa", VSA_KEY).code == 0
    own_dsse = tmp_path / "release.dsse.json"
    own_dsse.write_bytes(canonical_json(dsse_envelope(attester, IN_TOTO_PAYLOAD_TYPE, _statement("app.tar", b"app"))))
    envelope = dsse_envelope(attester, IN_TOTO_PAYLOAD_TYPE, _statement("lib.tar", b"lib"))
    own_bundle = tmp_path / "lib.sigstore.json"
    own_bundle.write_bytes(canonical_json(sigstore_bundle_v03(envelope, attester)))
    # The staging root for bundle_v3.txt, as a custom root of the exporter's trust store.
    roots = Home(home).trust_dir / "sigstore"
    roots.mkdir(parents=True)
    shutil.copy(OFFLINE / "trust" / "staging.trusted_root.json", roots / "staging.json")
    res = stella("import", "--quiet", *KEYLESS, VSA, own_dsse, own_bundle)
    assert res.code == 0, res.err
    out = tmp_path / "attestations.tar.zst"
    res = stella("export", "run", "--profile", "attestation:bundle", "--key", "k", "--out", out, "--json")
    assert res.code == 0, res.err
    return Exported(out, exporter_pub, attester_pub, own_dsse, own_bundle, tmp_path, res.json()["runId"])


def _members(bundle: Path) -> dict[str, bytes]:
    return {info.name: data for info, data in read_members(bundle)}


def _doc_path(data: bytes) -> str:
    return f"attestations/documents/{hashlib.sha256(data).hexdigest()}.json"


def _verify(stella: Stella, e: Exported, *extra: str | Path, bundle: Path | None = None) -> CliResult:
    return stella("attest", "bundle", "verify", bundle or e.bundle, "--key", e.exporter_pub, "--json", *extra)


# -- the bundle -------------------------------------------------------------------------------------------
def test_bundle_ships_documents_subjects_trust_material_and_log_segments(exported: Exported) -> None:
    m = _members(exported.bundle)
    for source in [*KEYLESS, VSA, exported.own_dsse, exported.own_bundle]:
        assert m[_doc_path(source.read_bytes())] == source.read_bytes()  # byte for byte
    index = [json.loads(line) for line in m["attestations/index.jsonl"].splitlines()]
    assert sorted(r["method"] for r in index) == ["key", "key", "key", "keyless", "keyless", "keyless"]
    subjects = [json.loads(line) for line in m["attestations/subjects.jsonl"].splitlines()]
    assert {"app.tar", "lib.tar", "ghcr.io/ringodev/demo-sbom"} <= {s["name"] for s in subjects}
    assert subjects == sorted(subjects, key=lambda s: (s["algorithm"], s["digest"], s["name"], s["document"]))
    # Trust material: the production root of the sigstore package, the exporter's custom staging root, and the
    # trusted keys that verify the key-based attestations.
    assert (
        m["trust/sigstore/sigstore-production.json"]
        == (OFFLINE / "trust" / "production.trusted_root.json").read_bytes()
    )
    assert m["trust/sigstore/staging.json"] == (OFFLINE / "trust" / "staging.trusted_root.json").read_bytes()
    assert m["trust/keys/attester.pem"] == exported.attester_pub.read_bytes()
    assert "trust/keys/vsa.pem" in m
    chains = {n: x509.load_pem_x509_certificates(d) for n, d in m.items() if n.startswith("trust/certificates/")}
    assert len(chains) == 3 and all(len(c) >= 2 for c in chains.values())  # leaf + Fulcio chain
    for chain in chains.values():
        assert chain[-1].issuer == chain[-1].subject  # up to a self-signed root
    # Transparency-log segments: every keyless entry's proof, and the checkpoints they verify against.
    entries = [json.loads(line) for line in m["tlog/entries.jsonl"].splitlines()]
    assert len(entries) == 3 and all(e["inclusionProof"]["checkpoint"]["envelope"] for e in entries)
    checkpoints = [json.loads(line) for line in m["tlog/checkpoints.jsonl"].splitlines()]
    assert {c["treeSize"] for c in checkpoints} == {e["inclusionProof"]["treeSize"] for e in entries}
    # The signed manifest lists every attestation, trust and log file by digest.
    statement = json.loads(m["attestations/manifest.json"])
    listed = {s["name"] for s in statement["subject"]}
    assert listed == {n for n in m if n.startswith(("attestations/", "trust/", "tlog/"))} - {
        "attestations/manifest.json",
        "attestations/manifest.dsse.json",
        "attestations/manifest.sigstore.json",
    }
    envelope = json.loads(m["attestations/manifest.dsse.json"])
    assert base64.b64decode(envelope["payload"]) == m["attestations/manifest.json"]
    manifest = json.loads(m["export.json"])
    assert manifest["counts"]["attestations"] == 6 and manifest["counts"]["keyless"] == 3


def test_a_retry_rebuilds_the_same_bytes_even_after_the_trust_store_changed(
    stella: Stella, exported: Exported, home: Path
) -> None:
    # A key added after planning is not shipped by a retry of the run: the trust material was pinned.
    extra = exported.tmp / "extra.pub"
    extra.write_bytes(Signer(ec.generate_private_key(ec.SECP256R1())).public_pem)
    assert stella("trust", "add", "extra", extra).code == 0
    again = exported.tmp / "again.tar.zst"
    res = stella("export", "retry", exported.run_id, "--key", "k", "--out", again, "--json")
    assert res.code == 0, res.err
    assert again.read_bytes() == exported.bundle.read_bytes()
    # A pinned root that changed is refused rather than shipped.
    staging = Home(home).trust_dir / "sigstore" / "staging.json"
    staging.write_bytes(staging.read_bytes().replace(b"\n", b" \n", 1))
    res = stella("export", "retry", exported.run_id, "--key", "k", "--out", exported.tmp / "third.tar.zst")
    assert res.code == 4 and "changed since the run was planned" in res.err


# -- verify -----------------------------------------------------------------------------------------------
def test_every_attestation_verifies_offline(stella: Stella, exported: Exported) -> None:
    res = _verify(stella, exported, *POLICY)
    assert res.code == 0, res.out + res.err
    report = res.json()
    assert report["verified"] is True and report["summary"] == {"attestations": 6, "verified": 6, "failed": 0}
    by_method: dict[str, list[dict[str, Any]]] = {}
    for a in report["attestations"]:
        by_method.setdefault(a["method"], []).append(a)
    assert {a["signer"]["identity"] for a in by_method["keyless"]} == {
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
        "thomas.grininger@ringodev.com",
        "william@yossarian.net",
    }
    assert {a["trustedRoot"]["name"] for a in by_method["keyless"]} == {"sigstore-production", "staging"}
    assert {a["signer"]["key"] for a in by_method["key"]} == {"attester", "vsa"}
    assert [c["check"] for c in report["checks"]][-5:] == [
        "attestation profile",
        "attestation files",
        "attestation manifest",
        "trust material",
        "attestations",
    ]
    assert report["checks"][-1] == {"check": "attestations", "ok": True, "detail": "6 of 6 attestations verified"}


def test_the_human_report_lists_each_attestation(stella: Stella, exported: Exported) -> None:
    res = stella("attest", "bundle", "verify", exported.bundle, "--key", exported.exporter_pub, *POLICY)
    assert res.code == 0, res.err
    assert res.out.count("verified keyless") == 3 and res.out.count("verified key ") == 3
    assert "signer: key attester" in res.out and "signer: william@yossarian.net" in res.out


def test_the_stella_process_verifies_inside_a_network_namespace(exported: Exported, home: Path) -> None:
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare -rn is not permitted here; the in-process tests run under the socket guard")
    command = ["attest", "bundle", "verify", exported.bundle, "--key", exported.exporter_pub, "--json", *POLICY]
    res = subprocess.run(
        [unshare, "-rn", sys.executable, "-c", "from app.cli import run; run()", "--home", home, *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "STELLA_HOME"},
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert json.loads(res.stdout)["summary"]["verified"] == 6


def test_a_wrong_identity_or_issuer_is_refused_with_exit_5(stella: Stella, exported: Exported) -> None:
    for policy in (
        ["--certificate-identity", "release@example.com", "--certificate-oidc-issuer-regexp", ".*"],
        ["--certificate-identity-regexp", ".*", "--certificate-oidc-issuer", "https://accounts.google.com"],
    ):
        res = _verify(stella, exported, *policy)
        assert res.code == 5, res.err
        report = res.json()
        keyless = [a for a in report["attestations"] if a["method"] == "keyless"]
        assert keyless and all(not a["verified"] and a["error"]["exitCode"] == 5 for a in keyless)
        assert all(
            "signature, certificate chain and transparency log verified" in a["error"]["message"] for a in keyless
        )
        assert all(a["verified"] for a in report["attestations"] if a["method"] == "key")


def test_without_an_identity_policy_keyless_attestations_are_not_trusted(stella: Stella, exported: Exported) -> None:
    res = _verify(stella, exported)
    assert res.code == 5
    failed = [a for a in res.json()["attestations"] if not a["verified"]]
    assert len(failed) == 3 and all("no identity policy" in a["error"]["message"] for a in failed)
    half = stella("attest", "bundle", "verify", exported.bundle, "--certificate-identity", "x@example.com")
    assert half.code == 2 and "needs both" in half.err


def test_an_untrusted_attestation_key_gives_exit_5(stella: Stella, exported: Exported) -> None:
    other = exported.tmp / "other.pub"
    other.write_bytes(Signer(ec.generate_private_key(ec.SECP256R1())).public_pem)
    res = _verify(stella, exported, *POLICY, "--attestation-key", other)
    assert res.code == 5
    failed = [a for a in res.json()["attestations"] if not a["verified"]]
    assert {a["path"] for a in failed} == {
        _doc_path(p.read_bytes()) for p in (VSA, exported.own_dsse, exported.own_bundle)
    }
    assert all("no trusted signer" in a["error"]["message"] for a in failed)


def test_an_untrusted_bundle_signer_gives_exit_5(stella: Stella, exported: Exported) -> None:
    other = exported.tmp / "other.pub"
    other.write_bytes(Signer(ec.generate_private_key(ec.SECP256R1())).public_pem)
    res = stella("attest", "bundle", "verify", exported.bundle, "--key", other, "--json", *POLICY)
    assert res.code == 5 and res.json()["attestations"] == []


def test_trusted_roots_come_from_the_bundle_unless_pinned(stella: Stella, exported: Exported) -> None:
    production = OFFLINE / "trust" / "production.trusted_root.json"
    shipped = _verify(stella, exported, *POLICY, "--trusted-root", production)
    assert shipped.code == 0, shipped.out  # the staging root shipped in the bundle verifies bundle_v3.txt
    pinned = _verify(stella, exported, *POLICY, "--trusted-root", production, "--no-bundle-roots")
    assert pinned.code == 5
    [failed] = [a for a in pinned.json()["attestations"] if not a["verified"]]
    assert failed["path"] == _doc_path((OFFLINE / "bundle_v3.txt.sigstore").read_bytes())
    assert "keyless verification failed" in failed["error"]["message"]


def test_a_flipped_byte_in_an_attestation_fails_integrity_naming_the_file(stella: Stella, exported: Exported) -> None:
    target = _doc_path(exported.own_dsse.read_bytes())
    members = [(i, flip(d) if i.name == target else d) for i, d in read_members(exported.bundle)]
    tampered = write_members(exported.tmp / "tampered.tar.zst", members)
    res = _verify(stella, exported, *POLICY, bundle=tampered)
    assert res.code == 4
    assert res.json()["error"]["path"] == target
    human = stella("attest", "bundle", "verify", tampered, "--key", exported.exporter_pub, *POLICY)
    assert human.code == 4 and target in human.err


def test_an_attestation_changed_after_signing_fails_with_exit_5_naming_it(
    stella: Stella, exported: Exported, tmp_path: Path
) -> None:
    # A well-formed envelope whose payload was swapped after signing: the store keeps it (attestations are not
    # verified at import), the export carries it, and the receiver refuses it alone.
    envelope = json.loads(exported.own_dsse.read_bytes())
    envelope["payload"] = base64.b64encode(_statement("evil.tar", b"evil")).decode()
    forged = tmp_path / "forged.dsse.json"
    forged.write_bytes(canonical_json(envelope))
    assert stella("import", "--quiet", forged).code == 0
    out = tmp_path / "with-forged.tar.zst"
    assert stella("export", "run", "--profile", "attestation:bundle", "--key", "k", "--out", out).code == 0
    res = _verify(stella, exported, *POLICY, bundle=out)
    assert res.code == 5
    report = res.json()
    [failed] = [a for a in report["attestations"] if not a["verified"]]
    assert failed["path"] == _doc_path(forged.read_bytes())
    assert report["error"]["path"] == failed["path"]
    assert report["summary"] == {"attestations": 7, "verified": 6, "failed": 1}


def test_a_bundle_of_another_profile_is_refused(stella: Stella, exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "raw.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--allow-empty").code == 0
    res = _verify(stella, exported, *POLICY, bundle=out)
    assert res.code == 3 and "not an attestation bundle" in res.json()["error"]["message"]


# -- import -----------------------------------------------------------------------------------------------
def _stored(home: Path) -> dict[str, str]:
    with Store.open(Home(home), read_only=True) as store:
        rows = store.conn.execute(
            "SELECT r.sha256, min(a.verification) FROM raw_documents r JOIN attestations a"
            " ON a.tenant = r.tenant AND a.document_sha256 = r.sha256 WHERE r.tenant = 'default' GROUP BY r.sha256"
        ).fetchall()
    return {str(sha): str(v) for sha, v in rows}


def test_import_takes_only_what_verified_and_reports_each(stella: Stella, exported: Exported, tmp_path: Path) -> None:
    envelope = json.loads(exported.own_dsse.read_bytes())
    envelope["payload"] = base64.b64encode(_statement("evil.tar", b"evil")).decode()
    forged = tmp_path / "forged.dsse.json"
    forged.write_bytes(canonical_json(envelope))
    assert stella("import", "--quiet", forged).code == 0
    out = tmp_path / "with-forged.tar.zst"
    assert stella("export", "run", "--profile", "attestation:bundle", "--key", "k", "--out", out).code == 0

    receiver = tmp_path / "receiver"
    for label, key in (("exporter", exported.exporter_pub), ("attester", exported.attester_pub), ("vsa", VSA_KEY)):
        assert stella("--home", receiver, "trust", "add", label, key).code == 0
    res = stella("--home", receiver, "attest", "bundle", "import", out, "--json", *POLICY)
    assert res.code == 5, res.err  # one attestation did not verify: reported, left out, and the exit code says so
    report = res.json()
    outcomes = {row["path"]: row["import"] for row in report["imported"]}
    forged_path = _doc_path(forged.read_bytes())
    assert outcomes.pop(forged_path) == "not imported: did not verify"
    assert set(outcomes.values()) == {"imported"} and len(outcomes) == 6
    stored = _stored(receiver)
    assert hashlib.sha256(forged.read_bytes()).hexdigest() not in stored
    assert len(stored) == 6 and set(stored.values()) == {"verified"}
    # Again: the same documents are already stored; nothing changes.
    again = stella("--home", receiver, "attest", "bundle", "import", out, "--json", *POLICY)
    assert again.code == 5
    assert {row["import"] for row in again.json()["imported"] if row["path"] != forged_path} == {"duplicate"}
    assert _stored(receiver) == stored


def test_import_refuses_a_bundle_that_does_not_verify_and_stores_nothing(
    stella: Stella, exported: Exported, tmp_path: Path
) -> None:
    target = _doc_path(exported.own_dsse.read_bytes())
    members = [(i, flip(d) if i.name == target else d) for i, d in read_members(exported.bundle)]
    tampered = write_members(tmp_path / "tampered.tar.zst", members)
    receiver = tmp_path / "receiver"
    res = stella(
        "--home", receiver, "attest", "bundle", "import", tampered, "--key", exported.exporter_pub, *POLICY
    )  # fmt: skip
    assert res.code == 4 and target in res.err
    assert not (receiver / "store.duckdb").exists()
    wrong_tenant = stella(
        "--home", receiver, "attest", "bundle", "import", exported.bundle, "--key", exported.exporter_pub,
        "--tenant", "other", *POLICY,
    )  # fmt: skip
    assert wrong_tenant.code == 7


def test_bundles_sigstore_python_refuses_travel_verify_and_import_by_stellas_own_check(
    stella: Stella, home: Path, tmp_path: Path
) -> None:
    # CPython's v0.1 release bundle (SET only), npm provenance (intoto/0.0.2) and sigstore-go's otherName bundle,
    # whose private-instance root is a custom root of the exporter's trust store and ships in the bundle.
    refused = [
        OFFLINE / "Python-3.12.5.tgz.sigstore",
        OFFLINE / "sigstore.js@2.0.0-provenance.sigstore.json",
        OFFLINE / "othername.sigstore.json",
    ]
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    roots = Home(home).trust_dir / "sigstore"
    roots.mkdir(parents=True)
    shutil.copy(OFFLINE / "trust" / "sigstore-go-scaffolding.trusted_root.json", roots / "scaffolding.json")
    assert stella("import", "--quiet", *refused).code == 0
    out = tmp_path / "refused.tar.zst"
    assert stella("export", "run", "--profile", "attestation:bundle", "--key", "k", "--out", out).code == 0
    policy = [
        "--certificate-identity-regexp",
        r"thomas@python\.org|https://github\.com/sigstore/sigstore-js/.*|foo!oidc\.local",
        "--certificate-oidc-issuer-regexp",
        r"https://accounts\.google\.com|https://token\.actions\.githubusercontent\.com|http://oidc\.local:8080",
    ]
    res = stella("attest", "bundle", "verify", out, "--key", pub, "--json", *policy)
    assert res.code == 0, res.out + res.err
    report = res.json()
    assert report["summary"] == {"attestations": 3, "verified": 3, "failed": 0}
    by_identity = {a["signer"]["identity"]: a for a in report["attestations"]}
    assert set(by_identity) == {
        "thomas@python.org",
        "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
        "foo!oidc.local",
    }
    assert {a["verifiedBy"]["verifier"] for a in report["attestations"]} == {"stella"}
    assert by_identity["foo!oidc.local"]["trustedRoot"]["name"] == "scaffolding"
    # A policy that names only CPython's release manager trusts one of the three; the others are refused (exit 5).
    narrow = stella(
        "attest", "bundle", "verify", out, "--key", pub, "--json",
        "--certificate-identity", "thomas@python.org", "--certificate-oidc-issuer", "https://accounts.google.com",
    )  # fmt: skip
    assert narrow.code == 5
    assert narrow.json()["summary"] == {"attestations": 3, "verified": 1, "failed": 2}
    into = tmp_path / "receiver"
    imported = stella("--home", into, "attest", "bundle", "import", out, "--key", pub, "--json", *policy)
    assert imported.code == 0, imported.out + imported.err
    with Store.open(Home(into)) as store:
        assert store.stats()["default"]["raw_documents"] == 3
