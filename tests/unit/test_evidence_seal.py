"""Sealed evidence bundles: determinism, the sample fixture, and every tampering refused with the same exit code and
the same failing check by stella (``verify_sealed_evidence``) and by the offline script (``python3 -I verify.py``).

The tampered bundles are re-packed canonically (as an attacker with the media would), with ``SHA256SUMS`` updated
unless the case says otherwise, so each reaches the check that must catch it.
"""

from __future__ import annotations

import base64
import calendar
import dataclasses
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

import core.contract.evidence as contract
from core.canonical import canonical_json
from core.contract.evidence import (
    CHECKSUMS,
    CUSTODY_LOG,
    MANIFEST,
    MANIFEST_DSSE,
    METADATA,
    PAYLOAD_TYPE,
    PROOFS,
    SIGNATURE,
    SIGNER_KEY,
    TIMESTAMP,
)
from core.errors import BadInputError, IntegrityError, UsageError
from core.evidence_seal import (
    GZIP_LEVEL,
    EvidenceArtifact,
    PreviousSeal,
    Redaction,
    SealRequest,
    attach_timestamp,
    checksums_text,
    read_members,
    seal_evidence,
)
from core.keys import keyid_of
from core.signing import Signer, algorithm_of, pae
from core.trust import TrustedKey
from tests import evidence_fixture
from tests.conftest import ROOT, require_tool
from verify.evidence import verify_sealed_evidence

FIXTURE = evidence_fixture.FIXTURE
SCRIPT_TEMPLATE = ROOT / "core" / "bundle_files" / "evidence_verify.py.txt"


def trusted(pem: bytes, label: str = "locker") -> TrustedKey:
    public = load_pem_public_key(pem)
    return TrustedKey(label, keyid_of(public), algorithm_of(public), public)  # type: ignore[arg-type]


def repack(archive: bytes, mutate: Callable[[dict[str, bytes]], None], *, fix_sums: bool = True) -> bytes:
    """The archive with ``mutate`` applied to its files, re-packed canonically (same mtime, same order, new files
    last), ``SHA256SUMS`` recomputed when ``fix_sums``."""
    from core.archive.canonical import EXEC_MODE, FILE_MODE, end_of_archive, member_header, padding

    members, mtime = read_members(archive)
    order = list(members)
    mutate(members)
    if fix_sums and CHECKSUMS in members:
        members[CHECKSUMS] = checksums_text(members)
    names = [n for n in order if n in members] + [n for n in members if n not in order]
    tar = io.BytesIO()
    offset = 0
    for name in names:
        data = members[name]
        mode = EXEC_MODE if name.startswith("verify.") else FILE_MODE
        header = member_header(name, len(data), mode, mtime)
        tar.write(header + data + bytes(padding(len(data))))
        offset += len(header) + len(data) + padding(len(data))
    tar.write(end_of_archive(offset))
    import gzip

    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(tar.getvalue())
    return out.getvalue()


@dataclasses.dataclass
class Verdict:
    code: int
    check: str | None


def stella_verdict(path: Path, keys: list[TrustedKey], tsa: list[bytes] | None) -> Verdict:
    report = verify_sealed_evidence(path, keys=keys, tsa_certs=tsa)
    if report.error is None:
        assert report.ok
        return Verdict(0, None)
    failed = [c.name for c in report.checks if not c.ok]
    assert len(failed) == 1, report.checks
    return Verdict(int(report.error.exit_code), failed[0])


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trusted copy of the offline verifier (the template, not the copy inside a bundle)."""
    require_tool("openssl")
    folder = tmp_path_factory.mktemp("trusted-script")
    target = folder / "verify.py"
    shutil.copyfile(SCRIPT_TEMPLATE, target)
    return target


def script_verdict(script: Path, path: Path, keys: list[Path], tsa: list[Path]) -> Verdict:
    python3 = shutil.which("python3")
    assert python3, "python3 is needed for the offline script"
    args = [python3, "-I", str(script)]
    for key in keys:
        args += ["--key", str(key)]
    for ca in tsa:
        args += ["--tsa-ca", str(ca)]
    done = subprocess.run([*args, str(path)], capture_output=True, text=True, check=False)
    failed = re.findall(r"^FAIL  ([a-z ]+):", done.stdout, re.M)
    return Verdict(done.returncode, failed[0] if failed else None)


# -- sealing --------------------------------------------------------------------------------------------------------
def _request(**changes: object) -> SealRequest:
    base = evidence_fixture.requests()["sample"]
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_same_request_gives_the_same_bytes_and_the_archive_is_what_the_manifest_says() -> None:
    signer = evidence_fixture.signer()
    a = seal_evidence(_request(), signer, None)
    b = seal_evidence(_request(), signer, None)
    assert a.archive == b.archive
    assert a.digest == "sha256:" + hashlib.sha256(a.archive).hexdigest()
    assert not a.timestamped
    with tarfile.open(fileobj=io.BytesIO(a.archive), mode="r:gz") as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert names[:3] == [MANIFEST, MANIFEST_DSSE, SIGNATURE]
    assert names[-3:] == [f"artifacts/{x.path}" for x in evidence_fixture.ARTIFACTS]
    assert {i.mtime for i in infos} == {calendar.timegm(datetime(2026, 12, 1, 12, 0).timetuple())}
    assert {(i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, "", "")}
    assert a.archive[4:8] == b"\0\0\0\0"  # gzip mtime 0
    members, _ = read_members(a.archive)
    manifest = orjson.loads(members[MANIFEST])
    assert members[MANIFEST] == canonical_json(manifest)
    assert manifest["merkle"] == {"algorithm": "RFC9162_SHA256", "treeSize": 3, "rootHash": a.root_hash}
    assert manifest["redaction"]["redacted"] == [
        {"field": "parameters.passphraseFile", "reason": "not in the allowlist of redaction profile 'standard'"}
    ]
    assert manifest["custody"]["head"] == _request().custody[-1].hash
    envelope = orjson.loads(members[MANIFEST_DSSE])
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"]) == members[MANIFEST]
    assert base64.b64decode(envelope["signatures"][0]["sig"]) == members[SIGNATURE]
    assert (
        signer.public_key.verify(members[SIGNATURE], pae(PAYLOAD_TYPE, members[MANIFEST]), ec.ECDSA(_sha256())) is None
    )


def _sha256() -> object:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def test_the_sample_fixture_is_what_the_code_produces() -> None:
    fresh = evidence_fixture.build()
    for name, sealed in fresh.bundles.items():
        committed = (FIXTURE / f"{name}.tgz").read_bytes()
        assert sealed.archive == committed, (
            f"tests/fixtures/evidence/{name}.tgz is not what sealing produces now: "
            "run `.venv/bin/python -m tests.evidence_fixture --refresh` and commit the result"
        )
        assert sealed.timestamped


def test_the_sample_fixture_verifies_with_its_key_and_tsa() -> None:
    key = trusted((FIXTURE / "signer.pub").read_bytes())
    for name in evidence_fixture.BUNDLES:
        report = verify_sealed_evidence(
            FIXTURE / f"{name}.tgz", keys=[key], tsa_certs=[(FIXTURE / "tsa-ca.pem").read_bytes()]
        )
        assert report.ok, report.to_dict()
        names = [c.name for c in report.checks]
        assert names[:5] == ["archive", "files", "checksums", "signature", "manifest"]
        assert names[-3:] == ["custody", "metadata", "timestamp"]
        assert ("consistency proof" in names) == (name == "sample-reseal")
        out = report.to_dict()
        assert out["verified"] is True
        assert out["manifest"]["treeSize"] == (3 if name == "sample" else 5)
        assert out["timestamp"]["policy"] == "1.3.6.1.4.1.99999.1"


def test_a_request_that_cannot_be_sealed_is_refused_before_anything_is_signed() -> None:
    signer = evidence_fixture.signer()
    with pytest.raises(UsageError, match="unknown evidence kind 'backup'"):
        seal_evidence(_request(kind="backup"), signer, None)
    with pytest.raises(UsageError, match="at least one artifact"):
        seal_evidence(_request(artifacts=[]), signer, None)
    with pytest.raises(UsageError, match=r"'\.\.' component"):
        seal_evidence(_request(artifacts=[EvidenceArtifact("../x", b"", "text/plain")]), signer, None)
    with pytest.raises(UsageError, match="same path"):
        twice = [EvidenceArtifact("a", b"1", "text/plain"), EvidenceArtifact("a", b"2", "text/plain")]
        seal_evidence(_request(artifacts=twice), signer, None)
    with pytest.raises(UsageError, match=r"'parameters\.passphraseFile' is recorded as redacted but is still"):
        subject = {"parameters": {"passphraseFile": "/secret"}}
        seal_evidence(_request(subject=subject), signer, None)
    with pytest.raises(IntegrityError, match="does not follow"):
        custody = list(_request().custody)
        seal_evidence(_request(custody=[custody[1], custody[0]]), signer, None)
    with pytest.raises(IntegrityError, match="do not give the root of ev-0"):
        seal_evidence(_request(previous=PreviousSeal("ev-0", 2, "00" * 32)), signer, None)


def test_attach_timestamp_refuses_a_token_for_other_bytes_and_a_second_timestamp() -> None:
    sealed = seal_evidence(_request(), evidence_fixture.signer(), None)
    other = (FIXTURE / "sample-reseal.tsr").read_bytes()  # over the re-seal's signature, not this one
    with pytest.raises(IntegrityError, match="for other bytes"):
        attach_timestamp(sealed.archive, other)
    stamped = attach_timestamp(sealed.archive, (FIXTURE / "sample.tsr").read_bytes())
    assert stamped.timestamped and stamped.root_hash == sealed.root_hash
    with pytest.raises(UsageError, match="already carries a timestamp"):
        attach_timestamp(stamped.archive, (FIXTURE / "sample.tsr").read_bytes())
    with pytest.raises(BadInputError, match="not an RFC 3161"):
        attach_timestamp(sealed.archive, b"\x30\x03\x02\x01\x00")
    with pytest.raises(BadInputError, match="not a sealed evidence bundle"):
        attach_timestamp(b"not a tgz", (FIXTURE / "sample.tsr").read_bytes())


def test_the_script_spells_the_contract_the_same_way() -> None:
    from tests.unit.test_merkle import SCRIPT

    names = [n for n in dir(contract) if n.isupper() and isinstance(getattr(contract, n), str)]
    shared = [n for n in names if n not in ("METADATA_SCHEMA",)]
    assert len(shared) == 16
    for name in shared:
        assert getattr(SCRIPT, name) == getattr(contract, name), name
    assert tuple(sorted(SCRIPT.LISTED)) == tuple(sorted(contract.MANIFEST_LISTED))
    assert set(SCRIPT.REQUIRED) == set(contract.HEAD_ORDER) - {contract.TIMESTAMP}


# -- tampering --------------------------------------------------------------------------------------------------------
def _edit_json(name: str, edit: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:  # type: ignore[type-arg]
    def mutate(files: dict[str, bytes]) -> None:
        value = orjson.loads(files[name])
        edit(value)
        files[name] = canonical_json(value)

    return mutate


def _custody(edit: Callable[[list[bytes]], list[bytes]]) -> Callable[[dict[str, bytes]], None]:
    def mutate(files: dict[str, bytes]) -> None:
        lines = files[CUSTODY_LOG].splitlines(keepends=True)
        files[CUSTODY_LOG] = b"".join(edit(lines))

    return mutate


def _flip_last(name: str, back: int = 10) -> Callable[[dict[str, bytes]], None]:
    def mutate(files: dict[str, bytes]) -> None:
        data = bytearray(files[name])
        data[-back] ^= 0x01
        files[name] = bytes(data)

    return mutate


def _resign(files: dict[str, bytes]) -> None:
    attacker = Signer(ec.generate_private_key(ec.SECP256R1()))
    sig = attacker.sign(pae(PAYLOAD_TYPE, files[MANIFEST]))
    envelope = orjson.loads(files[MANIFEST_DSSE])
    envelope["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    files[MANIFEST_DSSE] = canonical_json(envelope)
    files[SIGNATURE] = sig
    files[SIGNER_KEY] = attacker.public_pem
    files.pop(TIMESTAMP)


def _edit_manifest_and_payload(files: dict[str, bytes]) -> None:
    manifest = orjson.loads(files[MANIFEST])
    manifest["tenant"] = "someone-else"
    files[MANIFEST] = canonical_json(manifest)
    envelope = orjson.loads(files[MANIFEST_DSSE])
    envelope["payload"] = base64.b64encode(files[MANIFEST]).decode()
    files[MANIFEST_DSSE] = canonical_json(envelope)


def _flip_sig(files: dict[str, bytes]) -> None:
    sig = bytearray(files[SIGNATURE])
    sig[-1] ^= 0x01
    files[SIGNATURE] = bytes(sig)
    envelope = orjson.loads(files[MANIFEST_DSSE])
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    files[MANIFEST_DSSE] = canonical_json(envelope)


def _swap_proof(i: int) -> Callable[[dict], None]:  # type: ignore[type-arg]
    def edit(proofs: dict) -> None:  # type: ignore[type-arg]
        hashes = proofs["inclusion"][i]["hashes"]
        hashes[0], hashes[1] = hashes[1], hashes[0]

    return edit


def _set(path: list[str | int], value: object) -> Callable[[dict], None]:  # type: ignore[type-arg]
    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        node = doc
        for key in path[:-1]:
            node = node[key]  # type: ignore[index]
        node[path[-1]] = value  # type: ignore[index]

    return edit


def _bytes_of(name: str, data: bytes | None) -> Callable[[dict[str, bytes]], None]:
    def mutate(files: dict[str, bytes]) -> None:
        if data is None:
            files.pop(name)
        else:
            files[name] = data

    return mutate


OTHER_TOKEN = FIXTURE / "sample-reseal.tsr"
ART = "artifacts/run/export.json"
#: name -> (bundle, mutation, fix SHA256SUMS, expected exit code, expected failing check)
CASES: dict[str, tuple[str, Callable[[dict[str, bytes]], None], bool, int, str]] = {
    "artifact bytes changed": ("sample", lambda f: f.update({ART: f[ART] + b" "}), True, 4, "artifacts"),
    "artifact bytes changed, SHA256SUMS left": (
        "sample",
        lambda f: f.update({ART: f[ART] + b" "}),
        False,
        4,
        "checksums",
    ),
    "artifact removed": ("sample", _bytes_of(ART, None), True, 4, "artifacts"),
    "artifact added": ("sample", _bytes_of("artifacts/run/extra.json", b"{}"), True, 4, "artifacts"),
    "inclusion proof hash changed": (
        "sample",
        _edit_json(PROOFS, _set(["inclusion", 0, "hashes", 0], "00" * 32)),
        True,
        4,
        "inclusion proofs",
    ),
    "inclusion proof reordered": ("sample", _edit_json(PROOFS, _swap_proof(0)), True, 4, "inclusion proofs"),
    "inclusion proof with a wrong tree size": (
        "sample",
        _edit_json(PROOFS, _set(["treeSize"], 4)),
        True,
        4,
        "inclusion proofs",
    ),
    "inclusion proof dropped": (
        "sample",
        _edit_json(PROOFS, lambda p: p["inclusion"].pop()),
        True,
        4,
        "inclusion proofs",
    ),
    "consistency proof hash changed": (
        "sample-reseal",
        _edit_json(PROOFS, _set(["consistency", "hashes", 0], "11" * 32)),
        True,
        4,
        "consistency proof",
    ),
    "consistency proof removed": (
        "sample-reseal",
        _edit_json(PROOFS, lambda p: p.pop("consistency")),
        True,
        4,
        "consistency proof",
    ),
    "proofs.json not JSON": ("sample", _bytes_of(PROOFS, b"{not json"), True, 4, "inclusion proofs"),
    "proofs.json nested 100000 deep": ("sample", _bytes_of(PROOFS, b"[" * 100000), True, 4, "inclusion proofs"),
    "custody log without its last newline": (
        "sample",
        lambda f: f.update({CUSTODY_LOG: f[CUSTODY_LOG][:-1]}),
        True,
        4,
        "custody",
    ),
    "custody log not JSON": ("sample", _bytes_of(CUSTODY_LOG, b"{oops}\n"), True, 4, "custody"),
    "envelope not JSON": ("sample", _bytes_of(MANIFEST_DSSE, b"\xff"), True, 5, "signature"),
    "SHA256SUMS with CRLF line ends": (
        "sample",
        lambda f: f.update({CHECKSUMS: f[CHECKSUMS].replace(b"\n", b"\r\n")}),
        False,
        4,
        "checksums",
    ),
    "proofs.json removed": ("sample", _bytes_of(PROOFS, None), True, 4, "files"),
    "manifest edited": ("sample", _edit_json(MANIFEST, _set(["merkle", "rootHash"], "22" * 32)), True, 5, "signature"),
    "manifest and envelope payload edited": ("sample", _edit_manifest_and_payload, True, 5, "signature"),
    "signature bytes changed": ("sample", _flip_sig, True, 5, "signature"),
    "re-signed by an untrusted key": ("sample", _resign, True, 5, "signature"),
    "timestamp for other bytes": ("sample", _bytes_of(TIMESTAMP, OTHER_TOKEN.read_bytes()), True, 6, "timestamp"),
    "timestamp bytes changed": ("sample", _flip_last(TIMESTAMP), True, 6, "timestamp"),
    "timestamp removed": ("sample", _bytes_of(TIMESTAMP, None), True, 6, "timestamp"),
    "custody event deleted": ("sample-reseal", _custody(lambda ls: [ls[0], ls[2]]), True, 4, "custody"),
    "custody log reformatted": (
        "sample",
        _custody(lambda ls: [ls[0].replace(b'","', b'", "'), *ls[1:]]),
        True,
        4,
        "custody",
    ),
    "custody events reordered": ("sample-reseal", _custody(lambda ls: [ls[1], ls[0], ls[2]]), True, 4, "custody"),
    "last custody event deleted": ("sample-reseal", _custody(lambda ls: ls[:-1]), True, 4, "custody"),
    "first custody event deleted": ("sample-reseal", _custody(lambda ls: ls[1:]), True, 4, "custody"),
    "custody event altered": (
        "sample",
        _custody(lambda ls: [ls[0].replace(b"export run", b"import run"), *ls[1:]]),
        True,
        4,
        "custody",
    ),
    "redacted field restored": (
        "sample",
        _edit_json(METADATA, _set(["subject", "parameters", "passphraseFile"], "/k")),
        True,
        4,
        "manifest",
    ),
    "SHA256SUMS line dropped": (
        "sample",
        lambda f: f.update({CHECKSUMS: b"".join(f[CHECKSUMS].splitlines(True)[1:])}),
        False,
        4,
        "checksums",
    ),
    "unexpected file": ("sample", _bytes_of("README.txt", b"hello"), True, 4, "files"),
    "signed file changed": ("sample", _bytes_of(SIGNER_KEY, b"junk"), True, 4, "manifest"),
}


def retar(
    archive: bytes, *, owner: str = "", extra: tarfile.TarInfo | None = None, gz_name: str = "", gz_mtime: int = 0
) -> bytes:
    """The archive's files re-packed by Python's tarfile and gzip with what a tool other than stella writes: an
    owner name, another member type, a gzip file name or time."""
    import gzip

    members, mtime = read_members(archive)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if extra is not None:
            tar.addfile(extra)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o755 if name.startswith("verify.") else 0o644
            info.uname = info.gname = owner
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename=gz_name, mode="wb", fileobj=out, mtime=gz_mtime) as gz:
        gz.write(tar_bytes.getvalue())
    return out.getvalue()


def _member(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755
    return info


_SAMPLE = (FIXTURE / "sample.tgz").read_bytes()
#: Bytes-level cases a canonical re-pack cannot express.
RAW_CASES = {
    "not a gzip archive": (b"PK\x03\x04 not a tarball", 3, "archive"),
    "re-tarred with an owner name": (retar(_SAMPLE, owner="root"), 4, "archive"),
    "a directory entry": (retar(_SAMPLE, extra=_member("artifacts", tarfile.DIRTYPE)), 4, "archive"),
    "a symbolic link": (retar(_SAMPLE, extra=_member("link", tarfile.SYMTYPE, "/etc/passwd")), 4, "archive"),
    "gzip header with a file name": (retar(_SAMPLE, gz_name="bundle.tar"), 4, "archive"),
    "gzip header with a time": (retar(_SAMPLE, gz_mtime=1_700_000_000), 4, "archive"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_tampering_is_refused_by_stella_and_the_script_alike(name: str, script: Path, tmp_path: Path) -> None:
    bundle, mutate, fix_sums, code, check = CASES[name]
    path = tmp_path / f"{bundle}.tgz"
    path.write_bytes(repack((FIXTURE / f"{bundle}.tgz").read_bytes(), mutate, fix_sums=fix_sums))
    key = FIXTURE / "signer.pub"
    ca = FIXTURE / "tsa-ca.pem"
    ours = stella_verdict(path, [trusted(key.read_bytes())], [ca.read_bytes()])
    theirs = script_verdict(script, path, [key], [ca])
    assert ours == Verdict(code, check), name
    assert theirs == ours, name


@pytest.mark.parametrize("name", sorted(RAW_CASES))
def test_a_file_that_is_not_a_sealed_archive_is_bad_input_for_both(name: str, script: Path, tmp_path: Path) -> None:
    data, code, check = RAW_CASES[name]
    path = tmp_path / "bundle.tgz"
    path.write_bytes(data)
    key = FIXTURE / "signer.pub"
    assert stella_verdict(path, [trusted(key.read_bytes())], None) == Verdict(code, check)
    assert script_verdict(script, path, [key], []) == Verdict(code, check)


def test_trust_cases_agree(script: Path, tmp_path: Path) -> None:
    sample = FIXTURE / "sample.tgz"
    key, ca = FIXTURE / "signer.pub", FIXTURE / "tsa-ca.pem"
    other = tmp_path / "other.pub"
    other.write_bytes(Signer(ec.generate_private_key(ec.SECP256R1())).public_pem)
    cases = [
        ("no key given", [], [ca], 5, "signature"),
        ("another key given", [other], [ca], 5, "signature"),
        ("the right key among others", [other, key], [ca], 0, None),
        ("no TSA certificate: timestamp not trust-checked", [key], [], 0, None),
    ]
    for label, keys, cas, code, check in cases:
        ours = stella_verdict(sample, [trusted(k.read_bytes(), k.name) for k in keys], [c.read_bytes() for c in cas])
        assert ours == Verdict(code, check), label
        assert script_verdict(script, sample, keys, cas) == ours, label
    removed = tmp_path / "untimestamped.tgz"
    removed.write_bytes(repack(sample.read_bytes(), _bytes_of(TIMESTAMP, None)))
    assert stella_verdict(removed, [trusted(key.read_bytes())], None) == Verdict(0, None)
    assert script_verdict(script, removed, [key], []) == Verdict(0, None)


def test_an_ed25519_sealed_bundle_verifies_with_both(script: Path, tmp_path: Path) -> None:
    signer = Signer(ed25519.Ed25519PrivateKey.generate())
    request = dataclasses.replace(_request(), redactions=[Redaction("nothing", "none")])
    sealed = seal_evidence(request, signer, None)
    path = tmp_path / "ed.tgz"
    path.write_bytes(sealed.archive)
    pub = tmp_path / "ed.pub"
    pub.write_bytes(signer.public_pem)
    assert stella_verdict(path, [trusted(signer.public_pem)], None) == Verdict(0, None)
    assert script_verdict(script, path, [pub], []) == Verdict(0, None)
    tampered = tmp_path / "ed-tampered.tgz"
    tampered.write_bytes(repack(sealed.archive, _flip_sig))
    assert stella_verdict(tampered, [trusted(signer.public_pem)], None) == Verdict(5, "signature")
    assert script_verdict(script, tampered, [pub], []) == Verdict(5, "signature")


def test_a_key_scoped_to_another_tenant_may_not_sign_evidence() -> None:
    key = dataclasses.replace(trusted((FIXTURE / "signer.pub").read_bytes()), tenants=("other",))
    assert stella_verdict(FIXTURE / "sample.tgz", [key], None) == Verdict(5, "signer scope")


def test_unicode_text_in_custody_and_subject_verifies_with_both(script: Path, tmp_path: Path) -> None:
    # Canonical JSON leaves U+2028 and non-ASCII unescaped: neither verifier may split lines or hash on anything
    # but "\n" and the RFC 8785 bytes.
    from core.custody import append_event

    custody = [
        append_event(
            [],
            at="2026-12-01T12:00:00Z",
            actor="zoë@example",
            action="snapshot",
            subject="evidence:ü",
            subject_digest="sha256:" + "00" * 32,
            where="hôte",
            why='line\u2028separator, tab\t, quote " and \\ backslash, \x01 control',
        )
    ]
    request = _request(custody=custody, subject={"naïve": "\u2028", "emoji": "\U0001f600"})
    sealed = seal_evidence(request, evidence_fixture.signer(), None)
    path = tmp_path / "unicode.tgz"
    path.write_bytes(sealed.archive)
    key = FIXTURE / "signer.pub"
    assert stella_verdict(path, [trusted(key.read_bytes())], None) == Verdict(0, None)
    assert script_verdict(script, path, [key], []) == Verdict(0, None)


def test_members_larger_than_one_read_verify_with_both(script: Path, tmp_path: Path) -> None:
    # The archive reader hands out a member in decompressed chunks: a 3 MiB incompressible artifact and a
    # SHA256SUMS of 3,000 lines must be read to their ends, not to the first chunk.
    import os

    big = [EvidenceArtifact("big.bin", os.urandom(3 << 20), "application/octet-stream")]
    many = [EvidenceArtifact(f"n/{i:05d}.json", b"{}", "application/json") for i in range(3000)]
    sealed = seal_evidence(_request(artifacts=big + many), evidence_fixture.signer(), None)
    path = tmp_path / "large.tgz"
    path.write_bytes(sealed.archive)
    key = FIXTURE / "signer.pub"
    assert stella_verdict(path, [trusted(key.read_bytes())], None) == Verdict(0, None)
    assert script_verdict(script, path, [key], []) == Verdict(0, None)


def test_a_flipped_bit_anywhere_in_the_archive_is_refused_alike(script: Path, tmp_path: Path) -> None:
    # Corruption rather than crafted tampering: the gzip header, the deflate stream, the CRC and length trailer.
    data = (FIXTURE / "sample.tgz").read_bytes()
    step = max(1, len(data) // 30)
    positions = sorted({*range(0, 10), *range(10, len(data) - 8, step), *range(len(data) - 8, len(data))})
    key, ca = FIXTURE / "signer.pub", FIXTURE / "tsa-ca.pem"
    disagree = []
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        path = tmp_path / f"flip-{pos}.tgz"
        path.write_bytes(bytes(flipped))
        ours = stella_verdict(path, [trusted(key.read_bytes())], [ca.read_bytes()])
        theirs = script_verdict(script, path, [key], [ca])
        assert ours.code != 0, pos
        if theirs.code != ours.code:
            disagree.append((pos, ours, theirs))
    for label, damaged in (
        *((f"cut at {n}", data[:n]) for n in (5, 12, len(data) // 2, len(data) - 4, len(data) - 1)),
        ("a byte after the gzip member", data + b"\0"),
        ("two gzip members", data + data),
    ):
        path = tmp_path / "damaged.tgz"
        path.write_bytes(damaged)
        ours = stella_verdict(path, [trusted(key.read_bytes())], [ca.read_bytes()])
        theirs = script_verdict(script, path, [key], [ca])
        assert ours.code != 0, label
        if theirs.code != ours.code:
            disagree.append((label, ours, theirs))
    assert not disagree, "\n".join(map(str, disagree))


def _signed_custody(edit: Callable[[dict[str, object]], None]) -> Callable[[dict[str, bytes]], None]:
    """The first custody event edited, every hash of the chain recomputed, the manifest's custody record updated
    and the manifest re-signed with the sealing key (timestamp dropped): a chain the signer vouched for, so only
    the well-formedness of its events can refuse it."""
    from core.custody import CustodyEvent

    def mutate(files: dict[str, bytes]) -> None:
        events = [orjson.loads(line) for line in files[CUSTODY_LOG].splitlines()]
        edit(events[0])
        prev = events[0]["prev"]
        for event in events:
            event["prev"] = prev
            event["hash"] = CustodyEvent.from_dict({**event, "hash": "0" * 64}).computed_hash()
            prev = event["hash"]
        files[CUSTODY_LOG] = b"".join(canonical_json(e) + b"\n" for e in events)
        manifest = orjson.loads(files[MANIFEST])
        manifest["custody"]["head"] = prev
        files[MANIFEST] = canonical_json(manifest)
        sig = evidence_fixture.signer().sign(pae(PAYLOAD_TYPE, files[MANIFEST]))
        envelope = orjson.loads(files[MANIFEST_DSSE])
        envelope["payload"] = base64.b64encode(files[MANIFEST]).decode()
        envelope["signatures"][0]["sig"] = base64.b64encode(sig).decode()
        files[MANIFEST_DSSE] = canonical_json(envelope)
        files[SIGNATURE] = sig
        files.pop(TIMESTAMP, None)

    return mutate


def _set_field(key: str, value: object) -> Callable[[dict[str, object]], None]:
    return lambda event: event.__setitem__(key, value)


@pytest.mark.parametrize(
    ("label", "edit"),
    [
        ("an action stella does not know", _set_field("action", "shred")),
        ("a time that is not RFC 3339 UTC", _set_field("at", "2026-12-01 12:00:00")),
        ("a subject digest that is not sha256:<hex>", _set_field("subjectDigest", "md5:00")),
        ("an empty actor", _set_field("actor", "")),
        ("a chain from genesis that does not start at seq 1", _set_field("seq", 7)),
    ],
)
def test_a_signed_but_malformed_custody_event_is_refused_by_both(
    label: str, edit: Callable[[dict[str, object]], None], script: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tgz"
    path.write_bytes(repack((FIXTURE / "sample.tgz").read_bytes(), _signed_custody(edit)))
    key = FIXTURE / "signer.pub"
    ours = stella_verdict(path, [trusted(key.read_bytes())], None)
    assert ours == Verdict(4, "custody"), label
    assert script_verdict(script, path, [key], []) == ours, label


def test_the_offline_script_knows_every_custody_action() -> None:
    from core.custody import CUSTODY_ACTIONS

    text = SCRIPT_TEMPLATE.read_text(encoding="utf-8")
    listed = re.search(r"^CUSTODY_ACTIONS = \((.*?)^\)", text, re.M | re.S)
    assert listed is not None
    assert tuple(re.findall(r'"([a-z-]+)"', listed.group(1))) == CUSTODY_ACTIONS
