"""Fuzz harnesses: one function per parser a hostile sender can reach, each taking the raw bytes of one input.

A harness passes an input when the code under test returns or raises a :class:`core.errors.StellaError` (an error
with a documented exit code). Any other exception is a finding; so is a hang or a crash, which the fuzzer notices.
The same functions run under atheris (``tests/fuzz/fuzz_main.py``, ``scripts/fuzz.sh``) and as plain calls in
pytest (``tests/fuzz/test_corpus.py``), which replays every file of ``tests/fuzz/corpus/<target>/``.

Each harness feeds its bytes through the entry the product uses: the archive reader as ``stella verify`` walks a
bundle, the manifest reader and the checksums check of ``verify/bundle.py``, the import pipeline's detection and
parsing (``core.ingest``), the TUF updater of ``verify/tuf_client.py`` with one metadata file replaced, and the
DSSE and Sigstore loaders of ``verify/signatures.py`` and ``verify/attest_sigstore.py``, and the sealed-evidence
verifier of ``verify/evidence.py``.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import StellaError

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).parent / "corpus"

#: The reader of an imported or received document is never given more than this by the fuzzer.
MAX_INPUT = 1 << 20


@cache
def _scratch() -> Path:
    """One scratch directory per process, removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="stella-fuzz-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _write(name: str, data: bytes) -> Path:
    path = _scratch() / name
    path.write_bytes(data)
    return path


@cache
def _bundle_files(bundle: str) -> dict[str, bytes]:
    """The members of a fixture bundle, read with the project's own reader."""
    from core.archive.reader import SafeArchiveReader

    out: dict[str, bytes] = {}
    with SafeArchiveReader(FIXTURES / bundle) as reader:
        for member in reader:
            with member.stream() as fh:
                out[member.name] = fh.read()
    return out


@cache
def _trusted_keys() -> list[Any]:
    from core.keys import keyid_of
    from core.signing import algorithm_of
    from core.trust import TrustedKey
    from verify.signatures import load_public_key_file

    public = load_public_key_file(FIXTURES / "signer.pub")
    return [TrustedKey("fuzz signer", keyid_of(public), algorithm_of(public), public)]


# -- the archive reader --------------------------------------------------------------------------------------------


def archive(data: bytes) -> None:
    """``core.archive.reader.SafeArchiveReader`` over a .tar, .tar.zst or .tgz: every member read to the end."""
    from core.archive.reader import ReaderLimits, SafeArchiveReader

    path = _write("archive", data)
    limits = ReaderLimits(max_entries=10_000, max_total_bytes=64 << 20, max_entry_bytes=16 << 20)
    with SafeArchiveReader(path, limits) as reader:
        for member in reader:
            with member.stream() as fh:
                while fh.read(1 << 16):
                    pass


# -- the manifest and checksums.txt --------------------------------------------------------------------------------


def manifest(data: bytes) -> None:
    """``verify.manifest.ManifestReader``: the header, then every listed file in bundle order."""
    from verify.manifest import ManifestReader

    reader = ManifestReader(_write("export.json", data))
    for _ in reader.files():
        pass


def checksums(data: bytes) -> None:
    """The checksums.txt check of ``verify/bundle.py`` against the signed manifest of a fixture bundle."""
    import hashlib

    from core.contract.bundle import MANIFEST
    from verify.bundle import VerifyReport, _Verification
    from verify.manifest import ManifestReader

    manifest_bytes = _bundle_files("raw.tar.zst")[MANIFEST]
    manifest_path = _write("checksums-export.json", manifest_bytes)
    job = _Verification(Path("fuzz.tar.zst"), (), None, VerifyReport("fuzz.tar.zst"), None, _scratch())
    job.check_checksums(
        _write("checksums.txt", data), ManifestReader(manifest_path), hashlib.sha256(manifest_bytes).hexdigest()
    )


# -- every source format, as `stella import` sees a document --------------------------------------------------------


def sources(data: bytes) -> None:
    """The import pipeline's detection and parsing (``core.ingest.detect`` then ``parse``, as ``Importer._parse``
    does), then the same bytes forced through one format (``--format``), chosen by the input's length."""
    from adapters.sources.registry import SOURCES
    from core.ingest import detect
    from core.sources import Candidate

    data = data[:MAX_INPUT]
    candidate = Candidate(path="fuzz", data=data)
    source = detect(candidate, SOURCES)
    errors: list[StellaError] = []
    if source is not None:
        try:
            source.parse(candidate)
        except StellaError as exc:
            errors.append(exc)
    forced = SOURCES[len(data) % len(SOURCES)]
    forced.parse(Candidate(path="fuzz", data=data))
    if errors:
        raise errors[0]


def inputs(data: bytes) -> None:
    """What ``stella import FILE`` does before the store: ``core.inputs.iter_inputs`` unpacks a .zip, .tar, .tar.gz,
    .tar.zst or plain file, then each document goes through detection and parsing as in :func:`sources`."""
    from adapters.sources.registry import SOURCES
    from core.ingest import detect
    from core.inputs import InputLimits, iter_inputs
    from core.sources import Candidate

    errors: list[StellaError] = []
    for item in iter_inputs([_write("import-input", data)], InputLimits(max_document_bytes=MAX_INPUT)):
        if item.error is not None:
            errors.append(item.error)
            continue
        candidate = Candidate(path=item.path, data=item.data)
        source = detect(candidate, SOURCES)
        if source is not None:
            try:
                source.parse(candidate)
            except StellaError as exc:
                errors.append(exc)
    if errors:
        raise errors[0]


# -- TUF metadata --------------------------------------------------------------------------------------------------


@cache
def _mirror() -> tuple[Path, dict[str, bytes], datetime]:
    """The fixture mirror bundle unpacked once; its metadata names and bytes; the time it was made."""
    from core.contract.bundle import MANIFEST

    files = _bundle_files("mirror.tar.zst")
    root = _scratch() / "mirror"
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    metadata = {name.rsplit("/", 1)[1]: content for name, content in files.items() if name.startswith("tuf/metadata/")}
    created = json.loads(files[MANIFEST])["createdAt"]
    return root, metadata, datetime.fromisoformat(created.replace("Z", "+00:00"))


#: What the first byte of a TUF input replaces: the pinned root, or one metadata file the mirror ships.
TUF_SLOTS = ("trusted-root", "timestamp", "snapshot", "targets", "2.root")


def tuf(data: bytes) -> None:
    """``verify.tuf_client.verify_mirror`` with one metadata file (chosen by the first byte) replaced by the rest."""
    from verify.tuf_client import verify_mirror

    if not data:
        return
    root, metadata, created = _mirror()
    slot = TUF_SLOTS[data[0] % len(TUF_SLOTS)]
    body = data[1:MAX_INPUT]
    meta_dir = root / "tuf" / "metadata"
    trusted_root = metadata["1.root.json"]
    replaced: Path | None = None
    if slot == "trusted-root":
        trusted_root = body
    elif slot == "2.root":
        replaced = meta_dir / "2.root.json"
    else:
        replaced = meta_dir / next(name for name in metadata if name.endswith(f"{slot}.json"))
    if replaced is not None:
        replaced.write_bytes(body)
    try:
        verify_mirror(root, trusted_root, at=created, strict=False)
    finally:
        if replaced is not None:
            original = metadata.get(replaced.name)
            if original is None:
                replaced.unlink()
            else:
                replaced.write_bytes(original)


# -- DSSE envelopes and Sigstore bundles ---------------------------------------------------------------------------


def _json(data: bytes) -> Any:
    from core.errors import BadInputError

    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadInputError("not JSON") from None


def dsse(data: bytes) -> None:
    """``verify.signatures``: a DSSE envelope (``verify_dsse``) and a key-based Sigstore bundle carrying one
    (``verify_sigstore_bundle_keyed``), against a trusted key."""
    from core.signing import envelope_signatures
    from verify.signatures import verify_dsse, verify_sigstore_bundle_keyed

    doc = _json(data[:MAX_INPUT])
    keys = _trusted_keys()
    if isinstance(doc, dict) and isinstance(doc.get("signatures"), list):
        for _ in envelope_signatures(doc["signatures"]):
            pass
    errors: list[StellaError] = []
    try:
        verify_dsse(doc, keys, path="fuzz")
    except StellaError as exc:
        errors.append(exc)
    verify_sigstore_bundle_keyed(doc, keys, path="fuzz")
    if errors:
        raise errors[0]


@cache
def _sigstore_trust() -> Any:
    from verify.attest_sigstore import Trust, package_production_root

    return Trust(keys=_trusted_keys(), roots=[package_production_root()])


def sigstore(data: bytes) -> None:
    """``verify.attest_sigstore``: ``verify_document`` (Sigstore bundles, npm attestations, DSSE, Statements) and
    ``load_root`` (a Sigstore trusted root given to ``stella trust``)."""
    from verify.attest_sigstore import load_root, verify_document

    data = data[:MAX_INPUT]
    verify_document(data, path="fuzz", trust=_sigstore_trust())
    load_root(data, name="fuzz", source="fuzz")


# -- the sealed evidence verifier ----------------------------------------------------------------------------------

#: What the first byte of an ``evidence`` input replaces (its value modulo the length): the whole archive, or one
#: member of a sample bundle, which is then re-packed canonically with its ``SHA256SUMS`` recomputed (but when the
#: input is ``SHA256SUMS``) and, for a signed member, its manifest entry updated and the manifest re-signed with
#: the fixture's key, so that the input reaches the checks after the signature. Bit 7 picks the re-sealed sample
#: (with a consistency proof) over the first one.
EVIDENCE_MEMBERS = (
    "",  # the whole .tgz
    "manifest.json",
    "proofs.json",
    "custody.jsonl",
    "manifest.sig.tsr",
    "SHA256SUMS",
    "manifest.dsse.json",
    "metadata.json",
)


@cache
def _evidence_base(resealed: bool) -> tuple[dict[str, bytes], int]:
    from core.evidence_seal import read_members
    from tests.evidence_fixture import FIXTURE

    return read_members((FIXTURE / ("sample-reseal.tgz" if resealed else "sample.tgz")).read_bytes())


@cache
def _evidence_trust() -> tuple[list[Any], list[bytes]]:
    from core.keys import keyid_of
    from core.signing import algorithm_of
    from core.trust import TrustedKey
    from tests.evidence_fixture import FIXTURE
    from verify.signatures import load_public_key_file

    public = load_public_key_file(FIXTURE / "signer.pub")
    return [TrustedKey("evidence signer", keyid_of(public), algorithm_of(public), public)], [
        (FIXTURE / "tsa-ca.pem").read_bytes()
    ]


def _evidence_sign(files: dict[str, bytes]) -> None:
    """Sign ``manifest.json`` as it now is with the fixture's key (envelope and ``manifest.sig``)."""
    import base64

    from core.canonical import canonical_json
    from core.contract.evidence import MANIFEST, MANIFEST_DSSE, PAYLOAD_TYPE, SIGNATURE
    from core.signing import pae

    sig = _evidence_signer().sign(pae(PAYLOAD_TYPE, files[MANIFEST]))
    envelope = {
        "payload": base64.b64encode(files[MANIFEST]).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }
    files[MANIFEST_DSSE] = canonical_json(envelope)
    files[SIGNATURE] = sig


@cache
def _evidence_signer() -> Any:
    from tests.evidence_fixture import signer

    return signer()


def _evidence_pack(files: dict[str, bytes], order: list[str], mtime: int) -> bytes:
    import gzip
    import io

    from core.archive.canonical import EXEC_MODE, FILE_MODE, end_of_archive, member_header, padding

    tar = io.BytesIO()
    offset = 0
    for name in order:
        data = files[name]
        header = member_header(name, len(data), EXEC_MODE if name.startswith("verify.") else FILE_MODE, mtime)
        tar.write(header + data + bytes(padding(len(data))))
        offset += len(header) + len(data) + padding(len(data))
    tar.write(end_of_archive(offset))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=1, mtime=0) as gz:
        gz.write(tar.getvalue())
    return out.getvalue()


def evidence(data: bytes) -> None:
    """``verify.evidence.verify_sealed_evidence`` (`stella evidence verify`), against the fixture's key and test
    TSA: the input is a whole sealed ``.tgz`` or one member of a sample bundle (see ``EVIDENCE_MEMBERS``)."""
    import hashlib

    from core.contract.evidence import CHECKSUMS, MANIFEST, MANIFEST_DSSE, SIGNATURE
    from core.evidence_seal import checksums_text
    from verify.evidence import verify_sealed_evidence

    if not data:
        return
    member = EVIDENCE_MEMBERS[(data[0] & 0x7F) % len(EVIDENCE_MEMBERS)]
    body = data[1 : 1 + MAX_INPUT]
    if not member:
        archive = body
    else:
        base, mtime = _evidence_base(bool(data[0] & 0x80))
        files = dict(base)
        order = list(files) if member in files else [*files, member]
        files[member] = body
        if member not in (MANIFEST, MANIFEST_DSSE, SIGNATURE, CHECKSUMS):
            manifest = json.loads(files[MANIFEST])
            listed = [e for e in manifest["files"] if e.get("path") == member]
            for entry in listed:
                entry.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
            if listed:
                from core.canonical import canonical_json

                files[MANIFEST] = canonical_json(manifest)
        if member != MANIFEST_DSSE and files[MANIFEST] != base[MANIFEST]:
            _evidence_sign(files)
        if member != CHECKSUMS:
            files[CHECKSUMS] = checksums_text(files)
        archive = _evidence_pack(files, order, mtime)
    keys, tsa = _evidence_trust()
    report = verify_sealed_evidence(_write("evidence.tgz", archive), keys=keys, tsa_certs=tsa)
    if report.error is not None:
        raise report.error


TARGETS: dict[str, Callable[[bytes], None]] = {
    "archive": archive,
    "manifest": manifest,
    "checksums": checksums,
    "sources": sources,
    "inputs": inputs,
    "tuf": tuf,
    "dsse": dsse,
    "sigstore": sigstore,
    "evidence": evidence,
}


def run_one(target: str, data: bytes) -> StellaError | None:
    """Run one input through ``target``: None when it returned, the StellaError when it refused the input.
    Anything else propagates: it is a finding."""
    try:
        TARGETS[target](data)
    except StellaError as exc:
        return exc
    return None
