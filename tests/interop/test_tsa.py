"""RFC 3161 against a real TSA: ``openssl ts -reply`` served on 127.0.0.1 (tests/tsa_server.py).

``openssl ts -verify`` (the independent checker: it also checks the ESS signing-certificate hash, which
rfc3161-client does not) accepts every token stella attaches; a token for other bytes, an expired TSA certificate,
a TSA of another CA, a wrong nonce and a refused request are refused, by stella and by the offline script alike.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.contract.evidence import SIGNATURE, TIMESTAMP
from core.errors import EnvironmentFailure, ExitCode, IntegrityError, TrustMetadataError
from core.evidence_seal import SealedEvidence, attach_timestamp, read_members, seal_evidence
from core.tsa import HttpTimestamper, read_response
from tests import evidence_fixture
from tests.tsa_server import Pki, TsaServer, tsa, tsa_pki  # noqa: F401 - fixtures
from tests.unit.test_evidence_seal import Verdict, script_verdict, stella_verdict, trusted
from tests.unit.test_evidence_seal import script as script

FIXTURE = evidence_fixture.FIXTURE


def _openssl_verify(sealed: SealedEvidence, ca: Path, work: Path) -> subprocess.CompletedProcess[str]:
    members, _ = read_members(sealed.archive)
    (work / "manifest.sig").write_bytes(members[SIGNATURE])
    (work / "reply.tsr").write_bytes(members[TIMESTAMP])
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", "manifest.sig", "-in", "reply.tsr", "-CAfile", str(ca)],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )


def _both(sealed: SealedEvidence, ca: Path, script: Path, work: Path) -> tuple[Verdict, Verdict]:
    path = work / "bundle.tgz"
    path.write_bytes(sealed.archive)
    key = FIXTURE / "signer.pub"
    ours = stella_verdict(path, [trusted(key.read_bytes())], [ca.read_bytes()])
    return ours, script_verdict(script, path, [key], [ca])


def test_a_bundle_sealed_with_the_lan_tsa_verifies_everywhere(
    tsa: TsaServer,  # noqa: F811
    tsa_pki: Pki,  # noqa: F811
    script: Path,
    tmp_path: Path,
) -> None:
    sealed = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), HttpTimestamper(tsa.url))
    assert sealed.timestamped and tsa.requests == 1
    done = _openssl_verify(sealed, tsa_pki.ca_cert, tmp_path)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr
    assert _both(sealed, tsa_pki.ca_cert, script, tmp_path) == (Verdict(0, None), Verdict(0, None))
    # Re-sealing re-stamps: the signature is the same (RFC 6979), the token is new (serial, time, nonce).
    again = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), HttpTimestamper(tsa.url))
    assert again.root_hash == sealed.root_hash and again.archive != sealed.archive


def test_a_token_made_elsewhere_is_attached_and_verifies(
    tsa: TsaServer,  # noqa: F811
    tsa_pki: Pki,  # noqa: F811
    script: Path,
    tmp_path: Path,
) -> None:
    unsigned = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), None)
    members, _ = read_members(unsigned.archive)
    reply = tsa.stamp(members[SIGNATURE])  # the openssl client's request, not stella's
    sealed = attach_timestamp(unsigned.archive, reply)
    assert _openssl_verify(sealed, tsa_pki.ca_cert, tmp_path).returncode == 0
    assert _both(sealed, tsa_pki.ca_cert, script, tmp_path) == (Verdict(0, None), Verdict(0, None))
    # A bare TimeStampToken (`openssl ts -reply -token_out`) is accepted too, and stored as a granted reply.
    (tmp_path / "sig").write_bytes(members[SIGNATURE])
    subprocess.run(["openssl", "ts", "-query", "-data", "sig", "-sha256", "-cert", "-out", "q.tsq"], cwd=tmp_path,
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "ts", "-reply", "-config", str(tsa_pki.cnf), "-queryfile", "q.tsq", "-token_out",
                    "-out", "token.der"], cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    from_token = attach_timestamp(unsigned.archive, (tmp_path / "token.der").read_bytes())
    assert _openssl_verify(from_token, tsa_pki.ca_cert, tmp_path).returncode == 0
    assert _both(from_token, tsa_pki.ca_cert, script, tmp_path) == (Verdict(0, None), Verdict(0, None))


def test_a_token_for_other_bytes_is_refused(tsa: TsaServer, tsa_pki: Pki, script: Path, tmp_path: Path) -> None:  # noqa: F811
    unsigned = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), None)
    reply = tsa.stamp(b"some other bytes")
    with pytest.raises(IntegrityError, match="for other bytes") as refused:
        attach_timestamp(unsigned.archive, reply)
    assert refused.value.exit_code == ExitCode.INTEGRITY
    # Forced into the bundle anyway (SHA256SUMS updated), both verifiers refuse it as untrusted (6).
    from tests.unit.test_evidence_seal import repack

    forced = repack(unsigned.archive, lambda files: files.update({TIMESTAMP: reply}))
    path = tmp_path / "forced.tgz"
    path.write_bytes(forced)
    key = FIXTURE / "signer.pub"
    assert stella_verdict(path, [trusted(key.read_bytes())], [tsa_pki.ca_cert.read_bytes()]) == Verdict(6, "timestamp")
    assert script_verdict(script, path, [key], [tsa_pki.ca_cert]) == Verdict(6, "timestamp")
    (tmp_path / "sig").write_bytes(read_members(unsigned.archive)[0][SIGNATURE])
    (tmp_path / "r.tsr").write_bytes(reply)
    command = ["openssl", "ts", "-verify", "-data", "sig", "-in", "r.tsr", "-CAfile", str(tsa_pki.ca_cert)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "imprint mismatch" in done.stderr


def test_an_expired_tsa_certificate_is_refused(tsa: TsaServer, tsa_pki: Pki, script: Path, tmp_path: Path) -> None:  # noqa: F811
    tsa.mode = "expired"
    sealed = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), HttpTimestamper(tsa.url))
    done = _openssl_verify(sealed, tsa_pki.ca_cert, tmp_path)
    assert done.returncode != 0 and "certificate has expired" in done.stderr
    assert _both(sealed, tsa_pki.ca_cert, script, tmp_path) == (Verdict(6, "timestamp"), Verdict(6, "timestamp"))


def test_a_tsa_of_another_ca_is_refused(tsa: TsaServer, tsa_pki: Pki, script: Path, tmp_path: Path) -> None:  # noqa: F811
    sealed = seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), HttpTimestamper(tsa.url))
    assert _openssl_verify(sealed, tsa_pki.other_ca_cert, tmp_path).returncode != 0
    verdicts = _both(sealed, tsa_pki.other_ca_cert, script, tmp_path)
    assert verdicts == (Verdict(6, "timestamp"), Verdict(6, "timestamp"))


def test_a_reply_with_a_wrong_nonce_is_refused_and_nothing_is_sealed(tsa: TsaServer) -> None:  # noqa: F811
    tsa.mode = "wrong-nonce"
    with pytest.raises(TrustMetadataError, match="nonce is not the one sent") as refused:
        seal_evidence(evidence_fixture.requests()["sample"], evidence_fixture.signer(), HttpTimestamper(tsa.url))
    assert refused.value.exit_code == ExitCode.TRUST
    assert refused.value.path == tsa.url


def test_a_refused_request_is_reported_with_the_tsa_status(tsa: TsaServer) -> None:  # noqa: F811
    tsa.mode = "rejected"
    with pytest.raises(TrustMetadataError, match=r"did not grant the timestamp: .*not supported"):
        HttpTimestamper(tsa.url).timestamp(b"data")


def test_an_unreachable_tsa_is_an_environment_failure(tsa: TsaServer) -> None:  # noqa: F811
    url = tsa.url
    tsa.close()
    with pytest.raises(EnvironmentFailure, match="cannot reach the TSA") as failed:
        HttpTimestamper(url, timeout=2).timestamp(b"data")
    assert failed.value.exit_code == ExitCode.ENVIRONMENT


def test_read_response_checks_status_imprint_and_nonce(tsa: TsaServer) -> None:  # noqa: F811
    reply = tsa.stamp(b"payload")
    info = read_response(reply, b"payload")
    assert info.hash_name == "sha256" and info.policy == "1.3.6.1.4.1.99999.1"
    with pytest.raises(IntegrityError, match="for other bytes"):
        read_response(reply, b"payload!")
    with pytest.raises(TrustMetadataError, match="nonce"):
        read_response(reply, b"payload", nonce=(info.nonce or 0) + 1)
