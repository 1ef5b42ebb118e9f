"""Real Sigstore bundles (production and staging, v0.1-v0.3, conformance pass and must-fail cases) verified offline.

Every case runs with a guard that makes any socket connection fail the test (a guard, not a stand-in: nothing
under test is replaced), and the whole module runs again inside a network namespace with no interfaces
(``unshare -rn``) where the system allows one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from core.errors import ExitCode
from services.trust import keys_from_files
from tests.conftest import FIXTURES, ROOT, NetworkUsed
from verify.attest_sigstore import (
    IdentityPolicy,
    SigstoreRoot,
    Trust,
    load_root,
    package_production_root,
    verify_bundle_file,
    verify_document,
)

OFFLINE = FIXTURES / "sigstore-offline"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GITHUB_ACTIONS = "https://token.actions.githubusercontent.com"
GITHUB_OAUTH = "https://github.com/login/oauth"
ANYONE = IdentityPolicy(identity_regexp=".*", issuer_regexp=".*")


pytestmark = pytest.mark.usefixtures("no_network")


def _root(name: str) -> SigstoreRoot:
    return load_root((OFFLINE / "trust" / f"{name}.trusted_root.json").read_bytes(), name=name, source="file")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PRODUCTION = "production"
STAGING = "staging"
SCAFFOLDING = "sigstore-go-scaffolding"
SIGSTORE_JS_RELEASE = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"

# (fixture, roots, artifact or None, expected identity) - each verifies offline.
VALID = [
    ("conformance/happy-path-v0.3/bundle.sigstore.json", PRODUCTION, "conformance/a.txt", BEACON, GITHUB_ACTIONS),
    ("conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json", PRODUCTION, None, BEACON, GITHUB_ACTIONS),
    ("trivy-cyclonedx-attestation.sigstore.json", PRODUCTION, None, "thomas.grininger@ringodev.com", GITHUB_OAUTH),
    ("bundle_v3.txt.sigstore", STAGING, "bundle_v3.txt", "william@yossarian.net", GITHUB_OAUTH),
    # bundle_v3_alt signs bundle_v3_alt.txt, which the corpus does not carry: its message digest is checked alone.
    ("bundle_v3_alt.txt.sigstore", STAGING, None, "william@yossarian.net", GITHUB_OAUTH),
    ("a.dsse.staging-rekor-v2.txt.sigstore.json", STAGING, None, BEACON, GITHUB_ACTIONS),
    # Valid bundles sigstore-python refuses, checked by verify/sigstore_promise.py instead:
    # a v0.1 bundle whose inclusion proof has no checkpoint (its signed entry timestamp is the proof),
    ("Python-3.12.5.tgz.sigstore", PRODUCTION, None, "thomas@python.org", "https://accounts.google.com"),
    # an intoto/0.0.2 log entry (npm provenance by sigstore-js),
    ("sigstore.js@2.0.0-provenance.sigstore.json", PRODUCTION, None, SIGSTORE_JS_RELEASE, GITHUB_ACTIONS),
    # an otherName identity under a private instance's root whose CA has no commonName.
    ("othername.sigstore.json", SCAFFOLDING, None, "foo!oidc.local", "http://oidc.local:8080"),
]
#: The fixtures of VALID that sigstore-python refuses and stella's own SET-based verifier checks.
BY_PROMISE = {"Python-3.12.5.tgz.sigstore", "sigstore.js@2.0.0-provenance.sigstore.json", "othername.sigstore.json"}

# (fixture, exit code, a phrase of the reason) - each must fail, with the production and staging roots at hand.
MUST_FAIL = [
    ("conformance/bundle-malformed-json_fail/bundle.sigstore.json", ExitCode.BAD_INPUT, "not JSON"),
    ("conformance/bundle-unknown-version_fail/bundle.sigstore.json", ExitCode.BAD_INPUT, "version=99.9"),
    ("conformance/bundle-invalid-base64-signature_fail/bundle.sigstore.json", ExitCode.BAD_INPUT, "base64"),
    ("conformance/dsse-invalid-sig_fail/bundle.sigstore.json", ExitCode.SIGNATURE, "DSSE: invalid signature"),
    ("must-fail/bundle_cve_2022_36056.txt.sigstore", ExitCode.SIGNATURE, "inconsistent with other materials"),
    ("must-fail/bundle_invalid_version.txt.sigstore", ExitCode.BAD_INPUT, "this is completely wrong"),
    ("must-fail/bundle_no_cert_v1.txt.sigstore", ExitCode.BAD_INPUT, "no signing certificate"),
    ("must-fail/bundle_no_checkpoint.txt.sigstore", ExitCode.BAD_INPUT, "checkpoint"),
    ("must-fail/bundle_no_log_entry.txt.sigstore", ExitCode.BAD_INPUT, "exactly one log entry"),
    # slsa-verifier's tampered v0.1 intoto bundles: a changed log entry, and an entry from another signing.
    ("must-fail/invalid-dsse-sig.intoto.sigstore", ExitCode.SIGNATURE, "signed entry timestamp does not verify"),
    ("must-fail/mismatch-tlog.intoto.sigstore", ExitCode.SIGNATURE, "not valid at the signing time"),
    ("dsse-2sigs.sigstore.json", ExitCode.BAD_INPUT, "one signature, not 2"),
    # Signed under sigstore-go's test instance: its root is not one of these two.
    ("othername.sigstore.json", ExitCode.SIGNATURE, "failed to build timestamp certificate chain"),
    # Key-based bundles whose keys (npm's registry key, sigstore-go's test key) are not trusted here.
    ("npm-publish-bundle.json", ExitCode.SIGNATURE, "no trusted signer"),
    ("public-key-validity.sigstore.json", ExitCode.SIGNATURE, "no trusted signer"),
]


@pytest.mark.parametrize(("name", "root", "artifact", "identity", "issuer"), VALID, ids=[v[0] for v in VALID])
def test_real_bundle_verifies_offline_with_its_trusted_root_and_identity(
    name: str, root: str, artifact: str | None, identity: str, issuer: str
) -> None:
    policy = IdentityPolicy(identities=(identity,), issuer=issuer)
    digest = _sha256(OFFLINE / artifact) if artifact else None
    result = verify_bundle_file(OFFLINE / name, trust=Trust(roots=[_root(root)], policy=policy), artifact_sha256=digest)
    assert result.error is None, result.error.diagnostics()
    assert result.verified and result.method == "keyless"
    assert result.signer["identity"] == identity and result.signer["issuer"] == issuer
    assert result.trusted_root is not None and result.trusted_root["name"] == root
    assert result.subjects, "a verified attestation names what it is about"
    assert result.verified_by is not None
    assert result.verified_by["verifier"] == ("stella" if name in BY_PROMISE else "sigstore-python")


@pytest.mark.parametrize(("name", "code", "reason"), MUST_FAIL, ids=[m[0] for m in MUST_FAIL])
def test_must_fail_bundle_is_refused_offline_with_the_right_exit_code(name: str, code: ExitCode, reason: str) -> None:
    result = verify_bundle_file(OFFLINE / name, trust=Trust(roots=[_root(PRODUCTION), _root(STAGING)], policy=ANYONE))
    assert not result.verified
    assert result.error is not None
    assert result.error.exit_code is code, result.error.diagnostics()
    assert reason in result.error.message
    assert result.error.path == str(OFFLINE / name)


def test_an_npm_publish_attestation_verifies_with_npms_registry_key() -> None:
    pem = OFFLINE / "trust" / "npm-registry-jl3bwswu.pub.pem"
    [key] = keys_from_files([pem])
    # npm names its key by its OpenSSH fingerprint: this file is the key npm publishes under that name.
    ssh = key.public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    named = "SHA256:" + base64.b64encode(hashlib.sha256(base64.b64decode(ssh.split()[1])).digest()).decode().rstrip("=")
    assert named == "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"
    result = verify_bundle_file(OFFLINE / "npm-publish-bundle.json", trust=Trust(keys=[key]))
    assert result.error is None, result.error.diagnostics()
    assert result.method == "key" and result.signer["keyid"] == key.keyid
    assert result.predicate_type == "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
    assert [s["name"] for s in result.subjects] == ["pkg:npm/sigstore@1.3.0"]


def test_the_production_root_shipped_with_sigstore_is_the_fixture_copy() -> None:
    shipped = package_production_root()
    assert shipped.data == (OFFLINE / "trust" / "production.trusted_root.json").read_bytes()
    assert shipped.source == "sigstore package" and shipped.log_ids


def test_a_staging_bundle_fails_against_the_production_root_only() -> None:
    result = verify_bundle_file(
        OFFLINE / "bundle_v3.txt.sigstore", trust=Trust(roots=[package_production_root()], policy=ANYONE)
    )
    assert result.error is not None and result.error.exit_code is ExitCode.SIGNATURE
    assert "keyless verification failed" in result.error.message


def test_no_trusted_root_at_all_is_a_signature_failure() -> None:
    result = verify_bundle_file(OFFLINE / "trivy-cyclonedx-attestation.sigstore.json", trust=Trust(policy=ANYONE))
    assert result.error is not None and result.error.exit_code is ExitCode.SIGNATURE
    assert "no Sigstore trusted root" in result.error.message


def test_the_artifact_must_be_the_one_signed() -> None:
    name = "conformance/happy-path-v0.3/bundle.sigstore.json"
    trust = Trust(roots=[_root(PRODUCTION)], policy=ANYONE)
    good = verify_bundle_file(OFFLINE / name, trust=trust, artifact_sha256=_sha256(OFFLINE / "conformance/a.txt"))
    assert good.verified
    bad = verify_bundle_file(OFFLINE / name, trust=trust, artifact_sha256=_sha256(OFFLINE / "bundle_v3.txt"))
    assert bad.error is not None and bad.error.exit_code is ExitCode.SIGNATURE
    assert "message digest mismatch" in bad.error.message


@pytest.mark.parametrize(
    ("policy", "phrase"),
    [
        (IdentityPolicy(identities=("someone@example.com",), issuer=GITHUB_ACTIONS), "is not someone@example.com"),
        (IdentityPolicy(identities=(BEACON,), issuer="https://accounts.google.com"), "OIDC issuer"),
        (IdentityPolicy(identity_regexp=r"https://github\.com/other-org/.*", issuer=GITHUB_ACTIONS), "does not match"),
        (IdentityPolicy(identities=(BEACON,), issuer_regexp=r"https://accounts\..*"), "does not match"),
        (IdentityPolicy(), "no identity policy"),
    ],
    ids=["wrong-identity", "wrong-issuer", "identity-regexp", "issuer-regexp", "no-policy"],
)
def test_a_signer_outside_the_identity_policy_is_refused(policy: IdentityPolicy, phrase: str) -> None:
    name = "conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
    result = verify_bundle_file(OFFLINE / name, trust=Trust(roots=[_root(PRODUCTION)], policy=policy))
    assert result.error is not None and result.error.exit_code is ExitCode.SIGNATURE
    assert phrase in result.error.message
    # The refusal still says who signed, so the receiver can decide what to accept.
    assert result.signer["identity"] == BEACON
    assert "signature, certificate chain and transparency log verified" in result.error.message


def test_identity_regexps_accept_a_matching_signer() -> None:
    policy = IdentityPolicy(
        identity_regexp=r"https://github\.com/sigstore-conformance/.*", issuer_regexp=r"https://token\.actions\..*"
    )
    name = "conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
    assert verify_bundle_file(OFFLINE / name, trust=Trust(roots=[_root(PRODUCTION)], policy=policy)).verified


def test_a_real_key_signed_dsse_verifies_only_with_its_key_trusted() -> None:
    data = (OFFLINE / "dsse" / "gke-gce-pre.bcid-vsa.jsonl").read_bytes()
    key = keys_from_files([OFFLINE / "dsse" / "vsa_signing_public_key.pem"])
    [good] = verify_document(data, path="vsa", trust=Trust(keys=key))
    assert good.verified and good.method == "key"
    assert good.predicate_type == "https://slsa.dev/verification_summary/v1"
    assert good.signer["keyid"] == key[0].keyid
    [none] = verify_document(data, path="vsa", trust=Trust())
    assert none.error is not None and none.error.exit_code is ExitCode.SIGNATURE
    tampered = data.replace(b'"payload":"eyJf', b'"payload":"eyJG')
    [bad] = verify_document(tampered, path="vsa", trust=Trust(keys=key))
    assert bad.error is not None and bad.error.exit_code is ExitCode.SIGNATURE


def test_the_whole_module_passes_inside_a_network_namespace_without_interfaces() -> None:
    if os.environ.get("STELLA_IN_NETNS") == "1":
        pytest.skip("already inside the network namespace")
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False) if unshare else None
    if probe is None or probe.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.skip("unshare -rn is not permitted here; the socket guard of every other test still applies")
        pytest.skip("unshare -rn is not available")
    env = dict(os.environ, STELLA_IN_NETNS="1")
    res = subprocess.run(
        [unshare, "-rn", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", __file__],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and " failed" not in res.stdout


def test_the_socket_guard_catches_a_connection() -> None:
    # The guard is what makes "no network" checkable in-process; prove it fires.
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkUsed):
        socket.socket().connect(("127.0.0.1", 9))
