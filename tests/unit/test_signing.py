"""Signatures: cosign blob signatures, DSSE envelopes, key-based Sigstore bundles, and their verifiers."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.contract.media_types import SIGSTORE_BUNDLE_V03
from core.contract.payload_types import IN_TOTO as IN_TOTO_PAYLOAD_TYPE
from core.errors import BadInputError, ExitCode, SignatureError, UnsupportedFormatError, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore, PrivateKey, keyid_of
from core.signing import (
    Signer,
    cosign_blob_signature,
    dsse_envelope,
    dsse_signer,
    dsse_verifies,
    pae,
    pae_prefix,
    sigstore_bundle_v03,
)
from core.trust import TrustedKey, TrustStore
from tests.conftest import FIXTURES
from verify.signatures import (
    find_blob_signer,
    load_public_key_file,
    verify_blob_signature,
    verify_dsse,
    verify_sigstore_bundle_keyed,
)

STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "export.json", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://stella.example/export/v1"}},
    },
    separators=(",", ":"),
).encode()


def _private(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _trusted(signer: Signer, label: str) -> TrustedKey:
    return TrustedKey(label, signer.keyid, signer.algorithm, signer.public_key)


@pytest.fixture(params=list(KeyAlgorithm), ids=lambda a: str(a))
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer(_private(request.param))


@pytest.fixture
def other() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


# --- PAE, from the DSSE v1 protocol text -------------------------------------------------------------


def test_pae_matches_the_dsse_protocol_examples() -> None:
    # protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # An empty body still ends with "0 ": the trailing space is part of the encoding.
    assert pae("http://example.com/HelloWorld", b"") == b"DSSEv1 29 http://example.com/HelloWorld 0 "


def test_pae_counts_bytes_not_characters() -> None:
    # "é" is two bytes in UTF-8: LEN is the byte length of the type, so 6, not 5.
    assert pae("typeé", b"\x00\xff") == b"DSSEv1 6 type\xc3\xa9 2 \x00\xff"


# --- Signer ----------------------------------------------------------------------------------------


def test_signer_identity_matches_the_key_store(tmp_path: Path) -> None:
    ks = KeyStore(Home(tmp_path))
    info = ks.generate("release", KeyAlgorithm.ECDSA_P256, b"passphrase")
    signer = Signer.from_keystore(ks, "release", b"passphrase")
    assert signer.algorithm is KeyAlgorithm.ECDSA_P256
    assert signer.keyid == info.keyid
    assert signer.public_pem == ks.public_pem("release")
    der = signer.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.hint == base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert signer.keyid == hashlib.sha256(der).hexdigest()


def test_ecdsa_signatures_are_deterministic_so_bundles_reproduce(signer: Signer) -> None:
    assert signer.sign(b"export.json bytes") == signer.sign(b"export.json bytes")
    assert cosign_blob_signature(signer, b"x") == cosign_blob_signature(signer, b"x")


def test_prehashed_signature_equals_signing_the_data() -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    data = b"a large file, hashed in chunks elsewhere"
    assert signer.sign_prehashed_sha256(hashlib.sha256(data).digest()) == signer.sign(data)
    with pytest.raises(BadInputError, match="32 bytes"):
        signer.sign_prehashed_sha256(b"short")


def test_ed25519_refuses_to_sign_a_digest() -> None:
    signer = Signer(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(UsageError, match="Ed25519"):
        signer.sign_prehashed_sha256(hashlib.sha256(b"x").digest())


def test_signer_refuses_curves_other_than_p256() -> None:
    with pytest.raises(BadInputError, match="secp384r1"):
        Signer(ec.generate_private_key(ec.SECP384R1()))


# --- cosign blob signatures ------------------------------------------------------------------------


def test_cosign_blob_signature_is_one_line_of_standard_base64(signer: Signer) -> None:
    text = cosign_blob_signature(signer, b"blob")
    assert b"\n" not in text and b"-" not in text and b"_" not in text
    raw = base64.b64decode(text, validate=True)
    if signer.algorithm is KeyAlgorithm.ED25519:
        assert len(raw) == 64
    else:
        decode_dss_signature(raw)  # ASN.1 DER SEQUENCE { r, s }, what cosign and openssl read
        assert raw[0] == 0x30


def test_blob_signature_round_trip_from_bytes_and_from_a_file(signer: Signer, tmp_path: Path) -> None:
    blob = tmp_path / "export.json"
    blob.write_bytes(b'{"schema":"stella.export/v1"}' * 50_000)
    text = cosign_blob_signature(signer, blob)
    assert text == cosign_blob_signature(signer, blob.read_bytes())
    verify_blob_signature(signer.public_key, blob, text)
    verify_blob_signature(signer.public_key, blob.read_bytes(), text.decode())


def test_blob_signature_over_changed_bytes_fails_with_exit_5(signer: Signer, tmp_path: Path) -> None:
    blob = tmp_path / "export.json"
    blob.write_bytes(b'{"counts":{"advisories":7}}')
    text = cosign_blob_signature(signer, blob)
    blob.write_bytes(b'{"counts":{"advisories":8}}')
    with pytest.raises(SignatureError) as err:
        verify_blob_signature(signer.public_key, blob, text, signature_path="export.json.sig")
    assert err.value.exit_code == ExitCode.SIGNATURE
    assert "does not verify" in err.value.message and str(blob) in err.value.message
    assert err.value.path == "export.json.sig"


def test_blob_signature_with_the_wrong_key_fails(signer: Signer, other: Signer) -> None:
    text = cosign_blob_signature(signer, b"blob")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_blob_signature(other.public_key, b"blob", text)


def test_blob_signature_accepts_wrapped_and_url_safe_base64(tmp_path: Path) -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    raw = signer.sign(b"blob")
    # `base64` on the command line wraps at 76 columns and ends with a newline.
    wrapped = base64.encodebytes(raw)
    assert wrapped.count(b"\n") >= 2
    verify_blob_signature(signer.public_key, b"blob", wrapped)
    urlsafe = base64.urlsafe_b64encode(raw).rstrip(b"=")
    verify_blob_signature(signer.public_key, b"blob", urlsafe)


def test_signature_that_is_not_base64_is_bad_input(signer: Signer) -> None:
    with pytest.raises(BadInputError, match="not valid base64") as err:
        verify_blob_signature(signer.public_key, b"blob", "not*base64!", signature_path="blob.sig")
    assert err.value.exit_code == ExitCode.BAD_INPUT and err.value.path == "blob.sig"


def test_find_blob_signer_names_the_trusted_key(signer: Signer, other: Signer, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"payload")
    keys = [_trusted(other, "someone-else"), _trusted(signer, "release")]
    assert find_blob_signer(keys, blob, cosign_blob_signature(signer, blob)).label == "release"
    with pytest.raises(SignatureError, match=r"no trusted signer: .*\(someone-else\)"):
        find_blob_signer(keys[:1], blob, cosign_blob_signature(signer, blob))
    with pytest.raises(SignatureError, match="no trusted keys") as err:
        find_blob_signer([], blob, cosign_blob_signature(signer, blob))
    assert "stella trust add" in (err.value.hint or "")


# --- DSSE ------------------------------------------------------------------------------------------


def test_dsse_envelope_shape(signer: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    assert set(env) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(env["payload"]) == STATEMENT
    assert env["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert len(env["signatures"]) == 1 and env["signatures"][0]["keyid"] == ""
    sig = base64.b64decode(env["signatures"][0]["sig"])
    # The signature covers the PAE bytes, not the bare payload.
    if isinstance(signer.public_key, ed25519.Ed25519PublicKey):
        signer.public_key.verify(sig, pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT))
    else:
        signer.public_key.verify(sig, pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT), ec.ECDSA(hashes.SHA256()))


def test_one_dsse_check_streamed_or_whole(signer: Signer, other: Signer) -> None:
    """dsse_signer is the check every path uses: with the PAE's SHA-256 (a streamed payload) a P-256 key needs
    no payload; Ed25519 needs the whole message; a wrong key, type or payload never verifies."""
    sig = signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT))
    keys = [_trusted(other, "other"), _trusted(signer, "release")]
    found = dsse_signer(IN_TOTO_PAYLOAD_TYPE, STATEMENT, [b"", sig], keys)
    assert found is not None and found.label == "release"
    digest = hashlib.sha256(pae_prefix(IN_TOTO_PAYLOAD_TYPE, len(STATEMENT)) + STATEMENT).digest()
    streamed = dsse_signer(IN_TOTO_PAYLOAD_TYPE, None, [sig], keys, pae_sha256=digest)
    assert (streamed is not None) is (signer.algorithm is KeyAlgorithm.ECDSA_P256)
    assert dsse_signer("text/plain", STATEMENT, [sig], keys) is None
    assert dsse_signer(IN_TOTO_PAYLOAD_TYPE, STATEMENT + b" ", [sig], keys) is None
    assert dsse_signer(IN_TOTO_PAYLOAD_TYPE, STATEMENT, [sig], keys[:1]) is None


def test_a_certificate_key_verifies_der_only_with_its_curves_hash() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    message = pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    der = key.sign(message, ec.ECDSA(hashes.SHA384()))
    public = key.public_key()
    assert dsse_verifies(public, der, IN_TOTO_PAYLOAD_TYPE, STATEMENT, certificate_hash=hashes.SHA384())
    assert not dsse_verifies(public, der, IN_TOTO_PAYLOAD_TYPE, STATEMENT, certificate_hash=hashes.SHA256())
    p256 = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(p256.sign(message, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert dsse_verifies(p256.public_key(), raw, IN_TOTO_PAYLOAD_TYPE, STATEMENT)  # a trusted key: r||s accepted
    assert not dsse_verifies(p256.public_key(), raw, IN_TOTO_PAYLOAD_TYPE, STATEMENT, certificate_hash=hashes.SHA256())


def test_dsse_round_trip_returns_type_payload_and_signer(signer: Signer, other: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    keys = [_trusted(other, "other"), _trusted(signer, "release")]
    payload_type, payload, key = verify_dsse(env, keys)
    assert (payload_type, payload, key.label) == (IN_TOTO_PAYLOAD_TYPE, STATEMENT, "release")


def test_dsse_tampered_payload_has_no_trusted_signer(signer: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    env["payload"] = base64.b64encode(STATEMENT.replace(b"ab", b"cd", 1)).decode()
    with pytest.raises(SignatureError, match="no trusted signer") as err:
        verify_dsse(env, [_trusted(signer, "release")], path="provenance.dsse.json")
    assert err.value.exit_code == ExitCode.SIGNATURE and err.value.path == "provenance.dsse.json"


def test_dsse_changed_payload_type_fails(signer: Signer) -> None:
    # The type is inside PAE, so relabelling a payload breaks the signature.
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    env["payloadType"] = "application/json"
    with pytest.raises(SignatureError, match="no trusted signer"):
        verify_dsse(env, [_trusted(signer, "release")])


def test_dsse_wrong_key_fails(signer: Signer, other: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    with pytest.raises(SignatureError, match="does not verify with the trusted key"):
        verify_dsse(env, [_trusted(other, "other")])


def test_dsse_swapped_signature_fails(signer: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    stranger = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, b'{"_type":"something else"}')
    env["signatures"] = stranger["signatures"]
    with pytest.raises(SignatureError, match="no trusted signer"):
        verify_dsse(env, [_trusted(signer, "release")])


def test_dsse_keyid_decides_nothing(signer: Signer, other: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    env["signatures"][0]["keyid"] = other.keyid  # claims another key: ignored, the signature decides
    assert verify_dsse(env, [_trusted(signer, "release")])[2].label == "release"
    forged = dsse_envelope(other, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    forged["signatures"][0]["keyid"] = signer.keyid  # claims the trusted key: still refused
    with pytest.raises(SignatureError):
        verify_dsse(forged, [_trusted(signer, "release")])


def test_dsse_accepts_url_safe_unpadded_base64(signer: Signer) -> None:
    payload = bytes(range(256)) * 3  # contains the bytes that encode to '+' and '/'
    env = dsse_envelope(signer, "application/octet-stream", payload)
    for field in ("payload",):
        env[field] = base64.urlsafe_b64encode(base64.b64decode(env[field])).decode().rstrip("=")
    raw_sig = base64.b64decode(env["signatures"][0]["sig"])
    env["signatures"][0]["sig"] = base64.urlsafe_b64encode(raw_sig).decode()
    assert "-" in env["payload"] or "_" in env["payload"]
    assert verify_dsse(env, [_trusted(signer, "release")])[1] == payload


def test_dsse_accepts_raw_r_s_ecdsa_signatures() -> None:
    # The DSSE spec's own ECDSA example encodes the signature as r||s, not DER.
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    r, s = decode_dss_signature(base64.b64decode(env["signatures"][0]["sig"]))
    env["signatures"][0]["sig"] = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    assert verify_dsse(env, [_trusted(signer, "release")])[1] == STATEMENT


def test_dsse_one_good_signature_among_several_suffices(signer: Signer, other: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    env["signatures"].insert(0, dsse_envelope(other, IN_TOTO_PAYLOAD_TYPE, STATEMENT)["signatures"][0])
    assert verify_dsse(env, [_trusted(signer, "release")])[2].label == "release"


@pytest.mark.parametrize(
    ("mutate", "pointer", "message"),
    [
        (lambda e: e.pop("payload"), "/payload", "'payload' is missing"),
        (lambda e: e.update(payloadType=7), "/payloadType", "'payloadType' is int, not a string"),
        (lambda e: e.update(signatures=[]), "/signatures", "no signatures"),
        (lambda e: e.update(signatures="sig"), "/signatures", "not a list"),
        (lambda e: e["signatures"][0].pop("sig"), "/signatures/0/sig", "'sig' is missing"),
        (lambda e: e.update(payload="%%%"), "/payload", "not valid base64"),
    ],
)
def test_malformed_envelope_is_bad_input(signer: Signer, mutate: Any, pointer: str, message: str) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    mutate(env)
    with pytest.raises(BadInputError) as err:
        verify_dsse(env, [_trusted(signer, "release")], path="x.dsse.json")
    assert not isinstance(err.value, SignatureError)
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert err.value.pointer == pointer and message in err.value.message


# --- Sigstore bundles ------------------------------------------------------------------------------


def test_bundle_v03_shape(signer: Signer) -> None:
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    assert bundle["mediaType"] == SIGSTORE_BUNDLE_V03 == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": signer.hint}, "tlogEntries": []}
    assert bundle["dsseEnvelope"]["signatures"][0]["keyid"] == ""


def test_bundle_carries_rfc3161_tokens_when_given(signer: Signer) -> None:
    env = dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    bundle = sigstore_bundle_v03(env, signer, rfc3161_timestamps=[b"\x30\x03\x02\x01\x00"])
    tokens = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    assert tokens == [{"signedTimestamp": "MAMCAQA="}]


def test_bundle_refuses_an_envelope_signed_by_another_key(signer: Signer, other: Signer) -> None:
    env = dsse_envelope(other, IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    with pytest.raises(SignatureError, match="not signed by key"):
        sigstore_bundle_v03(env, signer)


def test_bundle_round_trip_through_json(signer: Signer, other: Signer) -> None:
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    parsed = json.loads(json.dumps(bundle))
    keys = [_trusted(other, "other"), _trusted(signer, "release")]
    assert verify_sigstore_bundle_keyed(parsed, keys) == (IN_TOTO_PAYLOAD_TYPE, STATEMENT, keys[1])


def test_bundle_tampered_payload_names_the_hinted_key(signer: Signer) -> None:
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(STATEMENT + b" ").decode()
    with pytest.raises(SignatureError, match="names trusted key 'release'") as err:
        verify_sigstore_bundle_keyed(bundle, [_trusted(signer, "release")], path="provenance.sigstore.json")
    assert err.value.exit_code == ExitCode.SIGNATURE


def test_bundle_wrong_key_has_no_trusted_signer(signer: Signer, other: Signer) -> None:
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    with pytest.raises(SignatureError, match="no trusted signer"):
        verify_sigstore_bundle_keyed(bundle, [_trusted(other, "other")])


def test_bundle_signed_by_one_trusted_key_but_naming_another_fails(signer: Signer, other: Signer) -> None:
    bundle = sigstore_bundle_v03(dsse_envelope(signer, IN_TOTO_PAYLOAD_TYPE, STATEMENT), signer)
    bundle["verificationMaterial"]["publicKey"]["hint"] = other.hint
    with pytest.raises(SignatureError, match="names trusted key 'other'"):
        verify_sigstore_bundle_keyed(bundle, [_trusted(other, "other"), _trusted(signer, "release")])


def test_bundle_with_an_unknown_version_is_unsupported() -> None:
    bundle = json.loads(
        (FIXTURES / "sigstore-bundle/conformance/bundle-unknown-version_fail/bundle.sigstore.json").read_text()
    )
    with pytest.raises(UnsupportedFormatError, match=r"version=99\.9") as err:
        verify_sigstore_bundle_keyed(bundle, [])
    assert err.value.exit_code == ExitCode.BAD_INPUT and err.value.pointer == "/mediaType"


def test_keyless_bundle_is_refused_with_a_pointer_to_the_right_verifier() -> None:
    path = FIXTURES / "sigstore-bundle/conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
    with pytest.raises(UnsupportedFormatError, match="certificate") as err:
        verify_sigstore_bundle_keyed(json.loads(path.read_text()), [], path=str(path))
    assert "trusted root" in (err.value.hint or "")


def test_message_signature_bundle_is_refused() -> None:
    # sigstore-go test data: publicKey hint, messageSignature, no tlog entries.
    bundle = json.loads((FIXTURES / "sigstore-bundle/public-key-validity.sigstore.json").read_text())
    with pytest.raises(UnsupportedFormatError, match="message digest, not a DSSE envelope"):
        verify_sigstore_bundle_keyed(bundle, [])


# The npm registry's attestation key (SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA), as published
# at https://registry.npmjs.org/-/npm/v1/keys; it signed the real publish attestation in the fixture.
NPM_ATTESTATION_KEY = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i\n"
    b"6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg==\n"
    b"-----END PUBLIC KEY-----\n"
)


def test_real_npm_publish_bundle_verifies_with_the_registry_key(tmp_path: Path) -> None:
    # A third-party key-based bundle: v0.1 media type, npm's own hint format, tlog entries we do not need.
    store = TrustStore(Home(tmp_path))
    npm = store.add("npm-registry", NPM_ATTESTATION_KEY)
    other = store.add("release", Signer(ec.generate_private_key(ec.SECP256R1())).public_pem)
    bundle = json.loads((FIXTURES / "sigstore-bundle/npm-publish-bundle.json").read_text())
    payload_type, payload, key = verify_sigstore_bundle_keyed(bundle, store.keys())
    assert key == npm and payload_type == IN_TOTO_PAYLOAD_TYPE
    assert json.loads(payload)["predicateType"] == "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
    with pytest.raises(SignatureError, match="no trusted signer"):
        verify_sigstore_bundle_keyed(bundle, [other])


def test_public_key_file_loader_checks_the_key_type(tmp_path: Path) -> None:
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(NPM_ATTESTATION_KEY)
    assert (
        keyid_of(load_public_key_file(pub))
        == hashlib.sha256(base64.b64decode(b"".join(NPM_ATTESTATION_KEY.splitlines()[1:3]))).hexdigest()
    )
    p384 = tmp_path / "p384.pub"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(BadInputError, match="secp384r1") as err:
        load_public_key_file(p384)
    assert err.value.path == str(p384)
