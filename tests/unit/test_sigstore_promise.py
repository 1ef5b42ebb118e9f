"""stella's own check of the valid Sigstore bundles sigstore-python refuses (verify/sigstore_promise.py).

Three real bundles verify untouched; then each step of the check is shown to matter: one change to the bundle
or to the trusted root, and the step that covers it refuses, with its own sentence.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from core.errors import BadInputError, SignatureError, StellaError
from tests.conftest import FIXTURES
from verify.sigstore_promise import sigstore_python_refuses, verify_promise

pytestmark = pytest.mark.usefixtures("no_network")  # the whole check is offline: any socket fails the test

OFFLINE = FIXTURES / "sigstore-offline"
PYTHON = "Python-3.12.5.tgz.sigstore"  # v0.1, hashedrekord, inclusion proof without checkpoint
SIGSTORE_JS = "sigstore.js@2.0.0-provenance.sigstore.json"  # v0.1, intoto/0.0.2, proof with checkpoint
OTHERNAME = "othername.sigstore.json"  # v0.3, hashedrekord, otherName SAN, private instance
ROOTS = {PYTHON: "production", SIGSTORE_JS: "production", OTHERNAME: "sigstore-go-scaffolding"}
VERSIONS = {PYTHON: "0.1", SIGSTORE_JS: "0.1", OTHERNAME: "0.3"}

Doc = dict[str, Any]


def _bundle(name: str) -> Doc:
    doc: Doc = json.loads((OFFLINE / name).read_bytes())
    return doc


def _root(name: str) -> Doc:
    doc: Doc = json.loads((OFFLINE / "trust" / f"{ROOTS[name]}.trusted_root.json").read_bytes())
    return doc


def _verify(name: str, doc: Doc | None = None, root: Doc | None = None, artifact: str | None = None) -> Any:
    return verify_promise(
        doc if doc is not None else _bundle(name),
        root if root is not None else _root(name),
        version=VERSIONS[name],
        path=name,
        artifact=artifact,
    )


def _flip(b64: str) -> str:
    """The same base64 value with its last byte changed."""
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _entry(doc: Doc) -> Doc:
    entry: Doc = doc["verificationMaterial"]["tlogEntries"][0]
    return entry


def test_the_three_refused_bundles_are_the_kinds_sigstore_python_refuses() -> None:
    assert sigstore_python_refuses(_bundle(PYTHON), "0.1") == "a v0.1 bundle proven by its signed entry timestamp"
    assert sigstore_python_refuses(_bundle(SIGSTORE_JS), "0.1") == "an intoto/0.0.2 log entry"
    # othername is an ordinary v0.3 bundle: only its root is outside sigstore-python's models.
    assert sigstore_python_refuses(_bundle(OTHERNAME), "0.3") is None
    # A v0.2 bundle without a checkpoint stays sigstore-python's to refuse (the specification requires one).
    assert sigstore_python_refuses(_bundle("must-fail/bundle_no_checkpoint.txt.sigstore"), "0.2") is None


def test_a_v01_bundle_verifies_by_its_signed_entry_timestamp() -> None:
    result = _verify(PYTHON)
    assert result.log_checks == [
        "signed entry timestamp",
        "inclusion proof (no checkpoint: its root hash is not signed)",
    ]
    assert result.signed_at.isoformat() == "2024-08-06T20:32:47+00:00"
    assert result.digest is not None and len(result.digest) == 32
    assert result.payload is None


def test_an_intoto_entry_verifies_with_its_checkpoint_and_yields_the_statement() -> None:
    result = _verify(SIGSTORE_JS)
    assert result.log_checks == ["signed entry timestamp", "inclusion proof and signed checkpoint"]
    assert result.payload_type == "application/vnd.in-toto+json"
    statement = json.loads(result.payload)
    assert [s["name"] for s in statement["subject"]] == ["pkg:npm/sigstore@2.0.0"]


def test_a_private_instance_bundle_verifies_against_its_own_root() -> None:
    result = _verify(OTHERNAME)
    assert result.log_checks == ["signed entry timestamp", "inclusion proof and signed checkpoint"]
    assert result.digest is not None
    assert result.digest.hex() == "bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b"
    assert _verify(OTHERNAME, artifact=result.digest.hex()).digest == result.digest


def _set(path: list[Any], value: Callable[[Any], Any]) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]])

    return change


def _body(change: Callable[[Doc], None]) -> Callable[[Doc], None]:
    """Change the log entry's canonicalized body (re-encoded, so only the SET can tell)."""

    def edit(doc: Doc) -> None:
        entry = _entry(doc)
        body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
        change(body)
        entry["canonicalizedBody"] = base64.b64encode(json.dumps(body).encode()).decode()

    return edit


def _flip_note_signature(note: str) -> str:
    """A checkpoint whose signature line carries a changed signature."""
    lines = note.split("\n")
    i = next(n for n, line in enumerate(lines) if line.startswith("\u2014 "))
    head, b64 = lines[i].rsplit(" ", 1)
    lines[i] = f"{head} {_flip(b64)}"
    return "\n".join(lines)


TLOG = ["verificationMaterial", "tlogEntries", 0]
BUNDLE_CHANGES: list[tuple[str, str, Callable[[Doc], None], type[StellaError], str]] = [
    (
        "signature",
        PYTHON,
        _set(["messageSignature", "signature"], _flip),
        SignatureError,
        "does not verify with the signing certificate",
    ),
    (
        "digest",
        PYTHON,
        _set(["messageSignature", "messageDigest", "digest"], _flip),
        SignatureError,
        "does not verify with the signing certificate",
    ),
    (
        "body",
        PYTHON,
        _body(lambda b: b["spec"]["data"]["hash"].update(value="0" * 64)),
        SignatureError,
        "signed entry timestamp does not verify",
    ),
    ("time", PYTHON, _set([*TLOG, "integratedTime"], lambda t: str(int(t) + 1)), SignatureError, "signed entry"),
    (
        "promise",
        PYTHON,
        _set([*TLOG, "inclusionPromise", "signedEntryTimestamp"], _flip),
        SignatureError,
        "signed entry timestamp does not verify",
    ),
    (
        "proof",
        PYTHON,
        _set([*TLOG, "inclusionProof", "hashes", 0], _flip),
        SignatureError,
        "inclusion proof does not lead to its root hash",
    ),
    (
        "no-promise",
        PYTHON,
        lambda d: _entry(d).pop("inclusionPromise"),
        BadInputError,
        "signed entry timestamp",
    ),
    ("payload", SIGSTORE_JS, _set(["dsseEnvelope", "payload"], _flip), SignatureError, "DSSE: invalid signature"),
    (
        "checkpoint-signature",
        SIGSTORE_JS,
        _set(
            [*TLOG, "inclusionProof", "checkpoint", "envelope"],
            _flip_note_signature,
        ),
        SignatureError,
        "checkpoint is not signed by the log's key",
    ),
    (
        "checkpoint-tree",
        SIGSTORE_JS,
        _set([*TLOG, "inclusionProof", "treeSize"], lambda n: str(int(n) + 1)),
        SignatureError,
        "inclusion proof does not lead to its root hash",
    ),
    (
        "no-checkpoint-after-v01",
        OTHERNAME,
        lambda d: _entry(d)["inclusionProof"].pop("checkpoint"),
        BadInputError,
        "no checkpoint (required after bundle v0.1)",
    ),
    (
        "no-proof-after-v01",
        OTHERNAME,
        lambda d: _entry(d).pop("inclusionProof"),
        BadInputError,
        "no inclusion proof (required after bundle v0.1)",
    ),
]


@pytest.mark.parametrize(
    ("name", "bundle", "change", "error", "phrase"), BUNDLE_CHANGES, ids=[c[0] for c in BUNDLE_CHANGES]
)
def test_a_changed_bundle_is_refused_by_the_step_that_covers_it(
    name: str, bundle: str, change: Callable[[Doc], None], error: type[StellaError], phrase: str
) -> None:
    doc = _bundle(bundle)
    change(doc)
    with pytest.raises(error) as refused:
        _verify(bundle, doc=doc)
    assert phrase in refused.value.message
    assert refused.value.path == bundle


def test_the_log_entry_must_describe_this_signing() -> None:
    # sigstore-python's CVE-2022-36056 case: a valid entry and certificate that belong to another signature.
    doc = json.loads((OFFLINE / "must-fail/bundle_cve_2022_36056.txt.sigstore").read_bytes())
    staging = json.loads((OFFLINE / "trust/staging.trusted_root.json").read_bytes())
    with pytest.raises(SignatureError, match="inconsistent with other materials"):
        verify_promise(doc, staging, version="0.3", path="cve")


def test_the_artifact_must_be_the_one_signed() -> None:
    other = hashlib.sha256(b"another artifact").hexdigest()
    with pytest.raises(SignatureError, match="another artifact"):
        _verify(OTHERNAME, artifact=other)


def _without(section: str) -> Callable[[Doc], None]:
    return lambda root: root.update({section: []})


def _ca_until(end: str) -> Callable[[Doc], None]:
    def change(root: Doc) -> None:
        for ca in root["certificateAuthorities"]:
            ca["validFor"]["end"] = end

    return change


def _tlog_from(start: str) -> Callable[[Doc], None]:
    def change(root: Doc) -> None:
        for log in root["tlogs"]:
            log["publicKey"]["validFor"] = {"start": start}

    return change


ROOT_CHANGES: list[tuple[str, Callable[[Doc], None], str]] = [
    ("no-tlog", _without("tlogs"), "transparency log"),
    ("no-ctlog", _without("ctlogs"), "failed to verify SCT"),
    ("no-ca", _without("certificateAuthorities"), "does not chain to a certificate authority"),
    ("ca-expired-before-signing", _ca_until("2024-08-01T00:00:00Z"), "does not chain to a certificate authority"),
    ("tlog-not-yet-valid", _tlog_from("2024-09-01T00:00:00Z"), "was not valid at 2024-08-06T20:32:47+00:00"),
]


@pytest.mark.parametrize(("name", "change", "phrase"), ROOT_CHANGES, ids=[c[0] for c in ROOT_CHANGES])
def test_the_trusted_root_decides_what_is_trusted(name: str, change: Callable[[Doc], None], phrase: str) -> None:
    root = _root(PYTHON)
    change(root)
    with pytest.raises(SignatureError) as refused:
        _verify(PYTHON, root=root)
    assert phrase in refused.value.message


def test_another_instances_root_does_not_verify_a_bundle() -> None:
    with pytest.raises(SignatureError, match="not in the trusted root"):
        _verify(OTHERNAME, root=_root(PYTHON))
