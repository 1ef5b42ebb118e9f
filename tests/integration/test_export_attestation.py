"""The in-toto Release attestation beside an export run's bundle (``BUNDLE.intoto.jsonl``): written by the run,
extended by each copy `stella export download` makes, sealed into the run's evidence, checked by `stella verify`."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.canonical import canonical_json
from core.contract.export_attestation import EVIDENCE_PATH, RELEASE_PREDICATE
from core.contract.payload_types import IN_TOTO
from core.errors import Cancelled
from core.home import Home
from core.keys import KeyStore
from core.progress import Check, NullObserver
from core.signing import Signer, dsse_envelope
from services.trust import keys_from_files
from tests.conftest import ROOT, require_tool
from verify.bundle import verify_bundle

SAMPLES = ROOT / "samples"


@pytest.fixture
def built(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    """A json:raw run over the samples, signed with key ``k``; its bundle, attestation and the key's public half."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    out = tmp_path / "out" / "b.tar.zst"
    run = stella(
        "export",
        "run",
        "--profile",
        "json:raw",
        "--key",
        "k",
        "--out",
        out,
        "--mkdir",
        "--selector",
        "ecosystem=Go",
        "--json",
    ).json()
    assert run["state"] == "succeeded"
    return {"run": run, "bundle": out, "attestation": Path(f"{out}.intoto.jsonl"), "pub": pub, "home": home}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _statement(envelope: dict[str, Any]) -> dict[str, Any]:
    assert envelope["payloadType"] == IN_TOTO
    value: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return value


def _check(report: dict[str, Any]) -> dict[str, Any]:
    checks: list[dict[str, Any]] = [c for c in report["checks"] if c["check"] == "in-toto release"]
    assert len(checks) == 1
    return checks[0]


def _signer(home: Path, name: str) -> Signer:
    return Signer.from_keystore(KeyStore(Home(home)), name)


def _append(path: Path, signer: Signer, statement: dict[str, Any]) -> None:
    line = canonical_json(dsse_envelope(signer, IN_TOTO, canonical_json(statement))) + b"\n"
    path.write_bytes(path.read_bytes() + line)


def test_a_run_writes_a_release_attestation_that_verify_checks(stella: Any, built: dict[str, Any]) -> None:
    bundle, attestation, run = built["bundle"], built["attestation"], built["run"]
    (envelope,) = _lines(attestation)
    statement = _statement(envelope)
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == RELEASE_PREDICATE
    assert statement["subject"] == [{"name": "b.tar.zst", "digest": {"sha256": sha}}]
    predicate = statement["predicate"]
    assert predicate["purl"] == f"pkg:generic/default/json%3Araw@{run['runId']}"
    assert predicate["packageId"] == "default/json:raw"
    assert (predicate["runId"], predicate["tenant"], predicate["profile"]["id"]) == (
        run["runId"],
        "default",
        "json:raw",
    )

    report = stella("verify", bundle, "--key", built["pub"], "--json")
    assert report.code == 0, report.out
    verified = report.json()
    assert predicate["manifestSha256"] == verified["manifest"]["sha256"]
    check = _check(verified)
    assert check["ok"] is True and f"1 in-toto Release statement signed by '{built['pub']}'" in check["detail"]
    text = stella("verify", bundle, "--key", built["pub"])
    assert text.code == 0 and "in-toto release" in text.out and "b.tar.zst.intoto.jsonl" in text.out


def test_an_absent_attestation_is_reported_not_present(stella: Any, built: dict[str, Any]) -> None:
    built["attestation"].unlink()
    report = stella("verify", built["bundle"], "--key", built["pub"], "--json")
    assert report.code == 0
    check = _check(report.json())
    assert check["ok"] is True and check["detail"].startswith("not present")


def test_a_subject_digest_that_is_not_the_bundles_is_exit_4(stella: Any, built: dict[str, Any]) -> None:
    attestation = built["attestation"]
    (envelope,) = _lines(attestation)
    statement = _statement(envelope)
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    attestation.write_bytes(b"")
    _append(attestation, _signer(built["home"], "k"), statement)  # signed by the trusted key: only the digest lies
    res = stella("verify", built["bundle"], "--key", built["pub"], "--json")
    assert res.code == 4
    report = res.json()
    assert _check(report)["ok"] is False
    assert "subject 'b.tar.zst' has sha256 '000" in report["error"]["message"]
    assert report["error"]["path"] == str(attestation)


def test_a_predicate_naming_another_run_is_exit_4(stella: Any, built: dict[str, Any]) -> None:
    attestation = built["attestation"]
    statement = _statement(_lines(attestation)[0])
    statement["predicate"]["runId"] = "run-somebody-else"
    _append(attestation, _signer(built["home"], "k"), statement)
    res = stella("verify", built["bundle"], "--key", built["pub"])
    assert res.code == 4
    assert "line 2: predicate.runId is 'run-somebody-else'" in res.err


def test_a_line_signed_by_an_untrusted_key_is_exit_5(stella: Any, built: dict[str, Any]) -> None:
    assert stella("keys", "generate", "mallory").code == 0
    attestation = built["attestation"]
    statement = _statement(_lines(attestation)[0])  # a true statement, but not by a trusted key
    _append(attestation, _signer(built["home"], "mallory"), statement)
    res = stella("verify", built["bundle"], "--key", built["pub"], "--json")
    assert res.code == 5
    report = res.json()
    assert (
        f"line 2: the envelope does not verify with any trusted key (tried: {built['pub']})"
        in report["error"]["message"]
    )
    # The same line with a changed payload and the original signature: also no trusted signature.
    lines = attestation.read_bytes().splitlines(keepends=True)
    envelope = json.loads(lines[0])
    forged = _statement(envelope) | {"predicate": _statement(envelope)["predicate"] | {"tenant": "x"}}
    envelope["payload"] = base64.b64encode(canonical_json(forged)).decode()
    attestation.write_bytes(canonical_json(envelope) + b"\n")
    assert stella("verify", built["bundle"], "--key", built["pub"]).code == 5


def test_a_line_signed_outside_its_signers_scope_is_exit_5(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    """The trust store's scope rules apply to each line as to the bundle's own signature."""
    assert stella("keys", "generate", "m").code == 0
    m_pub = tmp_path / "m.pub"
    assert stella("keys", "export-public", "m", "--out", m_pub).code == 0
    assert stella("trust", "add", "k", built["pub"]).code == 0
    assert stella("trust", "add", "m", m_pub, "--tenant", "another").code == 0
    assert stella("verify", built["bundle"]).code == 0
    attestation = built["attestation"]
    _append(attestation, _signer(built["home"], "m"), _statement(_lines(attestation)[0]))
    res = stella("verify", built["bundle"], "--json")
    assert res.code == 5
    assert (
        "line 2: trusted key 'm' may not sign profile 'json:raw' for tenant 'default'" in res.json()["error"]["message"]
    )


def test_a_malformed_attestation_is_exit_3(stella: Any, built: dict[str, Any]) -> None:
    attestation = built["attestation"]
    good = attestation.read_bytes()
    for bad in (b"", b"not json\n", good + b"\n", good[:-1], b'{"payload":"","payloadType":"x","signatures":[]}\n'):
        attestation.write_bytes(bad)
        res = stella("verify", built["bundle"], "--key", built["pub"], "--json")
        assert res.code == 3, bad
        assert _check(res.json())["ok"] is False
    attestation.unlink()
    attestation.mkdir()
    assert stella("verify", built["bundle"], "--key", built["pub"]).code == 3


def test_a_downloaded_copy_gets_its_own_line_that_verifies(stella: Any, built: dict[str, Any], tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    run_id = built["run"]["runId"]
    assert stella("export", "download", run_id, "--to", media).code == 0
    copy = media / "b.tar.zst"
    lines = _lines(Path(f"{copy}.intoto.jsonl"))
    assert len(lines) == 2 and lines == _lines(built["attestation"])  # the bundle's file lists the copy too
    statement = _statement(lines[1])
    assert statement["subject"] == [
        {"name": "b.tar.zst", "digest": {"sha256": hashlib.sha256(copy.read_bytes()).hexdigest()}}
    ]
    distribution = statement["predicate"]["distribution"]
    assert (distribution["type"], distribution["name"]) == ("file", "b.tar.zst")
    assert str(tmp_path) not in json.dumps(statement)  # no local path in a signed statement
    assert distribution["distributedAt"].endswith("Z")
    shown = stella("export", "show", run_id, "--json").json()
    assert distribution["id"] in [d["distributionId"] for d in shown["distributions"]]
    for target in (copy, built["bundle"]):
        res = stella("verify", target, "--key", built["pub"], "--json")
        assert res.code == 0, res.out
        assert "2 in-toto Release statements" in _check(res.json())["detail"]
        assert "1 distributed copy (file)" in _check(res.json())["detail"]
    # A copy renamed on the media still verifies once its attestation follows it: subjects match by digest.
    renamed = media / "renamed.tar.zst"
    copy.rename(renamed)
    Path(f"{copy}.intoto.jsonl").rename(f"{renamed}.intoto.jsonl")
    assert stella("verify", renamed, "--key", built["pub"]).code == 0


def test_the_evidence_seal_includes_the_attestation(stella: Any, built: dict[str, Any]) -> None:
    shown = stella("export", "show", built["run"]["runId"], "--json").json()
    (sealed,) = [e for e in shown["events"] if e["type"] == "evidence-sealed"]
    evidence = stella("evidence", "show", sealed["detail"]["evidenceId"], "--json").json()
    (artifact,) = [a for a in evidence["artifacts"] if a["path"] == EVIDENCE_PATH]
    assert artifact["sha256"].removeprefix("sha256:") == hashlib.sha256(built["attestation"].read_bytes()).hexdigest()


def test_openssl_verifies_the_envelope_over_pae_rebuilt_by_the_shell(built: dict[str, Any], tmp_path: Path) -> None:
    """No cosign, no stella: the shell rebuilds DSSE's PAE from the payload and openssl checks the signature."""
    openssl, bash = require_tool("openssl"), require_tool("bash")
    (envelope,) = _lines(built["attestation"])
    payload = tmp_path / "statement.json"
    payload.write_bytes(base64.b64decode(envelope["payload"]))
    sig = tmp_path / "statement.sig"
    sig.write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    script = 'T="$1"; LEN=$(wc -c < "$2"); printf "DSSEv1 %d %s %d " "${#T}" "$T" "$LEN"; cat "$2"'

    def openssl_verifies() -> bool:
        pae = tmp_path / "statement.pae"
        pae.write_bytes(
            subprocess.run(
                [bash, "-c", script, "pae", envelope["payloadType"], str(payload)], capture_output=True, check=True
            ).stdout
        )
        res = subprocess.run(
            [openssl, "dgst", "-sha256", "-verify", str(built["pub"]), "-signature", str(sig), str(pae)],
            capture_output=True,
            text=True,
            check=False,
        )
        return res.returncode == 0 and "Verified OK" in res.stdout

    assert openssl_verifies()
    payload.write_bytes(payload.read_bytes().replace(b'"tenant":"default"', b'"tenant":"defaulT"'))
    assert b'"tenant":"defaulT"' in payload.read_bytes()
    assert not openssl_verifies()


def test_an_attestation_moved_beside_another_bundle_is_exit_4(
    stella: Any, built: dict[str, Any], tmp_path: Path
) -> None:
    """Same key, same profile and tenant, another run: its statement does not describe this bundle."""
    other = tmp_path / "out" / "other.tar.zst"
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", other)
    assert res.code == 0, res.err
    Path(f"{other}.intoto.jsonl").write_bytes(built["attestation"].read_bytes())
    res = stella("verify", other, "--key", built["pub"], "--json")
    assert res.code == 4
    assert "has sha256" in res.json()["error"]["message"]


def test_an_encrypted_run_key_signs_the_copys_line_with_its_passphrase(
    stella: Any, built: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse\n")
    assert stella("keys", "generate", "locked", "--algorithm", "ed25519", "--passphrase-file", secret).code == 0
    pub = tmp_path / "locked.pub"
    assert stella("keys", "export-public", "locked", "--out", pub).code == 0
    out = tmp_path / "out" / "locked.tar.zst"
    run = stella(
        "export",
        "run",
        "--profile",
        "json:raw",
        "--key",
        "locked",
        "--passphrase-file",
        secret,
        "--out",
        out,
        "--selector",
        "ecosystem=Go",
        "--json",
    ).json()
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.delenv("STELLA_PASSWORD", raising=False)
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")
    refused = stella("export", "download", run["runId"], "--to", media, "--passphrase-file", wrong)
    assert refused.code != 0 and not any(media.iterdir())  # the key is opened before anything is copied
    assert stella("export", "download", run["runId"], "--to", media, "--passphrase-file", secret).code == 0
    copy = media / "locked.tar.zst"
    assert len(_lines(Path(f"{copy}.intoto.jsonl"))) == 2
    res = stella("verify", copy, "--key", pub, "--json")
    assert res.code == 0, res.out
    assert "1 distributed copy (file)" in _check(res.json())["detail"]


class _CancelAfterTime(NullObserver):
    """Says cancel once the bundle's own checks are done: while the attestation check hashes the bundle."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, check: Check) -> None:
        self.seen.append(check.name)

    def is_cancelled(self) -> bool:
        return "time" in self.seen


def test_a_cancel_while_the_attestation_is_checked_stops_the_verification(built: dict[str, Any]) -> None:
    observer = _CancelAfterTime()
    with pytest.raises(Cancelled):
        verify_bundle(built["bundle"], keys_from_files([built["pub"]]), observer=observer)
    assert "in-toto release" not in observer.seen  # no verdict: a cancelled check is not reported
