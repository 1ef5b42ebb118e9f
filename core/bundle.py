"""The bundle writer: payload staging, manifest, provenance, signatures, checksums, archive.

Digest chain (docs/architecture.md): ``export.json.sig`` signs ``export.json``; ``export.json`` lists every
other file of the bundle with its sha256, size and media type (payload, README, verify script and the
provenance files); ``provenance.json`` is an in-toto Statement whose subjects are every payload file,
signed as DSSE (``provenance.dsse.json``) and as a Sigstore bundle v0.3 (``provenance.sigstore.json``).
``checksums.txt`` is a ``sha256sum -c`` list of ``export.json`` and every listed file; it is a pure
function of the signed manifest, so a verifier recomputes it and requires an exact match.
``checksums.txt.sig`` signs it with the same key (as ``export.json.sig`` signs the manifest), so ``verify.sh``
checks a signed list with openssl and sha256sum alone, without parsing JSON.

Everything signed or hashed is canonical JSON (RFC 8785). Payload files are written to a staging
directory beside the output while their digests are computed, so no step holds a bundle in memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple, Protocol

import pyrage
import zstandard

from core import __version__
from core.age_stream import encrypt_stream
from core.archive.rules import Compression
from core.archive.writer import ArchiveEntry, BackgroundWriter, write_archive
from core.canonical import canonical_json, canonical_json_of_plain
from core.contract.bundle import (
    BUILD_TYPE,
    BUILDER_ID,
    CHECKSUMS,
    CHECKSUMS_SIG,
    HEAD_ORDER,
    MANIFEST,
    MANIFEST_SCHEMA,
    MANIFEST_SIG,
    PROVENANCE,
    PROVENANCE_DSSE,
    PROVENANCE_SIGSTORE,
    README,
    UNLISTED,
    VERIFY_SCRIPT,
    bundle_order,
)
from core.contract.media_types import AGE, DSSE_ENVELOPE, NDJSON, NDJSON_ZSTD, SHELL_SCRIPT, SIGSTORE_BUNDLE_V03
from core.contract.payload_types import IN_TOTO
from core.errors import Cancelled, EnvironmentFailure, UsageError
from core.keys import KeyAlgorithm
from core.log_fields import phase
from core.progress import CancelToken, NullObserver, Observer
from core.signing import Signer, cosign_blob_signature, pae_prefix

CHUNK = 1 << 20
#: Canonical JSON lines are gathered into batches of about this many bytes before they are written (or handed to
#: the compression thread): one write per batch instead of one per record.
BATCH_BYTES = 1 << 20
#: JSON Lines writers ask whether the build was cancelled at their first record and every this many records after.
CANCEL_EVERY = 64


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle as the manifest lists it."""

    path: str
    sha256: str
    size: int
    media_type: str

    def to_manifest(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "mediaType": self.media_type}


@dataclass(frozen=True)
class BundleSpec:
    """The immutable parameters of one bundle build (from the planned run)."""

    run_id: str
    tenant: str
    profile_id: str
    profile_kind: str
    profile_variant: str
    profile_revision: int
    profile_config: dict[str, Any]
    selectors: dict[str, Any]
    created_at: datetime  # naive UTC, whole seconds
    compression_level: int = 9
    options: dict[str, Any] = field(default_factory=dict)  # profile-specific run options, pinned at plan time
    input_count: int | None = None  # the run's pinned inputs: the payload phase's total (progress only)

    @property
    def created_at_text(self) -> str:
        return self.created_at.replace(microsecond=0).isoformat() + "Z"


class ResolvedInput(NamedTuple):
    """An input document as provenance names it (a named tuple: a large run makes one per input)."""

    sha256: str
    kind: str
    format: str
    document_id: str


#: What provenance lists as a resolved dependency: an input document, or a ready in-toto ResourceDescriptor
#: (a rewritten bundle carries its original descriptors over; a mirror delta names its base state).
Dependency = ResolvedInput | dict[str, Any]


def _check_path(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or path != str(pure) or path in UNLISTED or "\\" in path:
        raise UsageError(f"unsafe or reserved bundle path {path!r}")
    return path


class HashingFile:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha = hashlib.sha256()
        self.size = 0
        self.path: str | None = None  # the bundle path, once known (content-addressed files)

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


class PayloadWriter:
    """Writes payload files into the staging directory, recording digest, size and media type."""

    def __init__(self, staging: Path, *, sink: Observer, cancel: CancelToken) -> None:
        self.staging = staging
        self.sink = sink
        self.cancel = cancel
        self.files: dict[str, FileEntry] = {}

    def _target(self, path: str) -> Path:
        _check_path(path)
        if path in self.files:
            raise UsageError(f"bundle path {path!r} written twice")
        target = self.staging.joinpath(*PurePosixPath(path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add_bytes(self, path: str, data: bytes, media_type: str) -> FileEntry:
        """Add a file whose bytes are at hand (raw documents, small JSON)."""
        if self.cancel.is_cancelled():
            raise Cancelled("export cancelled")
        target = self._target(path)
        target.write_bytes(data)
        entry = FileEntry(path, hashlib.sha256(data).hexdigest(), len(data), media_type)
        self.files[path] = entry
        return entry

    @contextlib.contextmanager
    def stream(self, path: str, media_type: str) -> Iterator[HashingFile]:
        """Add a file written incrementally (e.g. a JSONL stream)."""
        target = self._target(path)
        with target.open("wb") as fh:
            hashing = HashingFile(fh)
            yield hashing
        entry = FileEntry(path, hashing.sha.hexdigest(), hashing.size, media_type)
        self.files[path] = entry

    @contextlib.contextmanager
    def content_addressed(self, directory: str, suffix: str, media_type: str) -> Iterator[HashingFile]:
        """Add a file named by its own digest, ``<directory>/<sha256><suffix>``; its ``path`` is set on exit."""
        if self.cancel.is_cancelled():
            raise Cancelled("export cancelled")
        tmp = self.staging / f".content-{len(self.files)}.tmp"
        with tmp.open("wb") as fh:
            hashing = HashingFile(fh)
            yield hashing
        sha = hashing.sha.hexdigest()
        path = f"{directory}/{sha}{suffix}"
        tmp.replace(self._target(path))
        self.files[path] = FileEntry(path, sha, hashing.size, media_type)
        hashing.path = path

    @contextlib.contextmanager
    def scattered(self, path: str, media_type: str, size: int) -> Iterator[ScatteredFile]:
        """Add a file of ``size`` bytes whose pieces arrive in any order, each at an offset planned in advance.

        The caller planned the layout (every piece's offset and size) before the first byte came: raw documents
        come out of the store in storage order and go straight to their place in the pack, so nothing is sorted
        or held. On exit every byte must have been written once; the file is then hashed (one sequential read of
        a file still in the page cache) and listed.
        """
        target = self._target(path)
        with ScatteredFile(target, size, self.cancel) as out:
            yield out
        sha = out.finish()
        self.files[path] = FileEntry(path, sha, size, media_type)

    @contextlib.contextmanager
    def scattered_content_addressed(
        self, directory: str, suffix: str, media_type: str, size: int, tag: str
    ) -> Iterator[ScatteredFile]:
        """:meth:`scattered` for a file named by its own digest, ``<directory>/<sha256><suffix>``; ``tag`` tells
        concurrent temporary files apart. The returned file's ``path`` is set on exit."""
        if self.cancel.is_cancelled():
            raise Cancelled("export cancelled")
        tmp = self.staging / f".scatter-{tag}.tmp"
        with ScatteredFile(tmp, size, self.cancel) as out:
            yield out
        sha = out.finish()
        path = f"{directory}/{sha}{suffix}"
        tmp.replace(self._target(path))
        self.files[path] = FileEntry(path, sha, size, media_type)
        out.path = path

    @contextlib.contextmanager
    def jsonl(self, path: str, encode: Callable[[Any], bytes] = canonical_json) -> Iterator[Callable[[Any], None]]:
        """Add an uncompressed canonical JSON Lines file; yields a function that writes one record (``encode`` as
        in :meth:`jsonl_zst`)."""
        with self.stream(path, NDJSON) as out:
            batch = bytearray()
            written = itertools.count()

            def write(record: Any) -> None:
                if not next(written) % CANCEL_EVERY and self.cancel.is_cancelled():
                    raise Cancelled("export cancelled")
                batch.extend(encode(record))
                batch.extend(b"\n")
                if len(batch) >= BATCH_BYTES:
                    out.write(bytes(batch))
                    batch.clear()

            yield write
            if batch:
                out.write(bytes(batch))

    @contextlib.contextmanager
    def jsonl_zst(
        self, path: str, level: int, encode: Callable[[Any], bytes] = canonical_json
    ) -> Iterator[Callable[[Any], None]]:
        """Add a zstd-compressed canonical JSON Lines file; yields a function that writes one record.

        The caller's thread serialises records into batches; a second thread compresses them (zstd releases the
        GIL), so reading the store and canonicalising overlap with compression on another core. The frame is
        the same whatever the batching (zstd's streaming output does not depend on how its input is split).
        ``encode`` is the record's canonical JSON (a faster equivalent of :func:`canonical_json` for records of a
        known shape).
        """
        with self.stream(path, NDJSON_ZSTD) as out:
            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=False, threads=0)
            zw = cctx.stream_writer(out, closefd=False)  # type: ignore[arg-type]
            with zw, BackgroundWriter(zw.write, name=f"compress {path}") as background:
                batch = bytearray()
                written = itertools.count()

                def write(record: Any) -> None:
                    # Cancellation is asked for at the first record and every CANCEL_EVERY after it, not per record.
                    if not next(written) % CANCEL_EVERY and self.cancel.is_cancelled():
                        raise Cancelled("export cancelled")
                    batch.extend(encode(record))
                    batch.extend(b"\n")
                    if len(batch) >= BATCH_BYTES:
                        background.put(bytes(batch))
                        batch.clear()

                yield write
                if batch:
                    background.put(bytes(batch))


class ScatteredFile:
    """A payload file written piece by piece at planned offsets (``os.pwrite``), then hashed once complete."""

    def __init__(self, target: Path, size: int, cancel: CancelToken) -> None:
        self.target = target
        self.size = size
        self.cancel = cancel
        self.written = 0
        self.path: str | None = None  # the bundle path, once known (content-addressed files)
        self._fd = -1

    def __enter__(self) -> ScatteredFile:
        # O_EXCL: a fresh file in the run's private staging directory, never one placed there before.
        self._fd = os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)
        self._fd = -1

    def put(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (planned: the pieces never overlap and together fill the file)."""
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"a piece at {offset} of {len(data)} bytes falls outside {self.size} planned bytes")
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            view, offset = view[n:], offset + n
        self.written += len(data)

    def finish(self) -> str:
        """Check every planned byte came, then hash the file; returns its sha256 (hex)."""
        if self.written != self.size:
            raise ValueError(f"{self.written} of {self.size} planned bytes were written to {self.target.name}")
        sha = hashlib.sha256()
        with self.target.open("rb", buffering=0) as fh:
            while chunk := fh.read(4 * CHUNK):
                if self.cancel.is_cancelled():
                    raise Cancelled("export cancelled")
                sha.update(chunk)  # hashlib releases the GIL on large updates
        return sha.hexdigest()


class Beside:
    """Runs ``work`` on a second thread while the caller's block runs; the block's exit waits for it.

    The payload of a large bundle is two independent streams (raw documents into packs, records into
    compressed JSON Lines): run side by side, the store's reads, the hashing and the compression of one overlap
    the Python work of the other. ``work`` gets a stop event, set when the caller's block raises, and is expected
    to check it with its cancel token. Its exception (or a Ctrl-C in the caller) is raised from the block's exit;
    ``result`` holds its return value.
    """

    def __init__(self, work: Callable[[threading.Event], Any], *, name: str) -> None:
        self._work = work
        self.stop = threading.Event()
        self.result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"stella {name}", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._work(self.stop)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc

    def __enter__(self) -> Beside:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.stop.set()
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt:  # Ctrl-C while waiting: stop the work too, then let it go on
                self.stop.set()
                self._thread.join()
                raise
        if exc_type is None and self._error is not None:
            raise self._error


class StopOr(CancelToken):
    """A cancel token that also answers True once ``stop`` is set (the thread's partner failed)."""

    def __init__(self, parent: CancelToken, stop: threading.Event) -> None:
        super().__init__()
        self._parent = parent
        self._stop = stop

    def is_cancelled(self) -> bool:
        return self._stop.is_set() or self._parent.is_cancelled()


class PayloadProfile(Protocol):
    """A profile adapter: writes the payload of one bundle kind (``adapters/profiles/<name>.py``).

    ``encrypted_prefixes`` names the payload paths that encryption covers (``None``: all payload); a
    profile that ships its own trust metadata (TUF) or manifests in the payload keeps them readable.
    An optional ``archive_compression`` attribute (``"zstd"`` when absent, ``"gzip"`` for a ``.tgz``) picks the
    archive's compression.
    """

    kind: str
    variant: str
    encrypted_prefixes: tuple[str, ...] | None

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Write payload files through ``ctx.writer``; return counts for the manifest."""


@dataclass
class PayloadContext:
    """What a profile adapter gets: the spec, the writer, and a way to read inputs and raw bytes."""

    spec: BundleSpec
    writer: PayloadWriter
    inputs: Callable[[], Iterator[Dependency]]
    raw_bytes: Callable[[str], bytes]
    query: Any  # the store connection cursor for normalized rows (tenant-filtered by the adapter)
    sink: Observer
    extra_manifest: dict[str, Any] = field(default_factory=dict)
    home: Path | None = None  # the stella home, for profiles that keep state there (TUF keys, mirror states)
    cancel: CancelToken = field(default_factory=CancelToken)
    signer: Signer | None = None  # the run's signer, for profiles that sign payload files (DSSE manifests)
    #: Provenance lists only the inputs with these digests (None: every input), then ``extra_dependencies``.
    #: A mirror delta ships only what changed: its provenance names those documents and the base state.
    provenance_keep: set[str] | None = None
    extra_dependencies: list[dict[str, Any]] = field(default_factory=list)

    def input_done(self, detail: str | None = None) -> None:
        """One more input document is in the payload: the payload phase counts inputs up to ``spec.input_count``."""
        self.sink.advance(1, detail=detail)


@dataclass(frozen=True)
class Encryption:
    """How a build encrypts its payload: age X25519 recipients, or (exclusively) an age passphrase.

    The passphrase is never part of the run's parameters; it is given again to a retry.
    """

    recipients: tuple[str, ...] = ()
    passphrase: str | None = None

    def __post_init__(self) -> None:
        if self.recipients and self.passphrase is not None:
            raise UsageError(
                "an age passphrase cannot be combined with recipients",
                hint="age allows a passphrase (scrypt) stanza only on its own; choose one",
            )

    def __bool__(self) -> bool:
        return bool(self.recipients) or self.passphrase is not None


#: What an encrypted payload file holds inside age: the plaintext as one zstd frame (compressed, then encrypted).
#: Recorded as the manifest's ``encryption.compression``; a manifest without it is the earlier layout (age over
#: the plaintext itself), which receivers still read.
ENCRYPTED_COMPRESSION = "zstd"


def _encrypt_payload(
    writer: PayloadWriter,
    encryption: Encryption,
    prefixes: tuple[str, ...] | None,
    cancel: CancelToken,
    level: int,
) -> dict[str, Any]:
    """Compress, then encrypt, every payload file to the age recipients, in place of its plaintext.

    Ciphertext does not compress, so each file is compressed first (one zstd frame at the run's level, frame
    checksum on) and the frame is encrypted: an encrypted bundle is about the size of the unencrypted one.
    Only payload is encrypted: the manifest, signatures, provenance, README and verify script stay readable,
    and integrity is checkable without an identity because the manifest lists the ciphertext digests. The
    plaintext digests are recorded too, so a receiver with an identity checks the plaintext after decryption
    and decompression. age draws a fresh file key per file, so ciphertext differs between builds; plaintext
    digests do not. With a passphrase (age's scrypt stanza, which pyrage offers only in memory) each file is
    read whole, so profiles that use it keep their payload files bounded (mirror packs are at most 64 MiB).
    """
    plaintext: list[dict[str, Any]] = []
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=False, threads=0)
    for entry in sorted(writer.files.values(), key=lambda f: f.path):
        if prefixes is not None and not entry.path.startswith(prefixes):
            continue
        if cancel.is_cancelled():
            raise Cancelled("export cancelled")
        source = writer.staging.joinpath(*PurePosixPath(entry.path).parts)
        target_path = entry.path + ".age"
        del writer.files[entry.path]
        with writer.stream(target_path, AGE) as out:
            if encryption.passphrase is not None:
                frame = cctx.compress(source.read_bytes())
                out.write(pyrage.passphrase.encrypt(frame, encryption.passphrase))
            else:
                with source.open("rb") as src, cctx.stream_reader(src, read_size=CHUNK) as compressed:
                    encrypt_stream(compressed, out, encryption.recipients)
        source.unlink()
        plaintext.append(
            {
                "path": target_path,
                "plaintextSha256": entry.sha256,
                "plaintextSize": entry.size,
                "plaintextMediaType": entry.media_type,
            }
        )
    section: dict[str, Any] = {"compression": ENCRYPTED_COMPRESSION, "files": plaintext}
    if encryption.passphrase is not None:
        return {"scheme": "age-scrypt", "recipients": [], **section}
    return {"scheme": "age-x25519", "recipients": sorted(encryption.recipients), **section}


_HOLE = "@@stella-stream-hole@@"
_HOLE_SIG = "@@stella-stream-signature@@"


def _split(skeleton: Any, hole: Any) -> tuple[bytes, bytes]:
    """Canonical bytes of ``skeleton`` around the one place that holds ``hole`` (streamed in separately)."""
    head, sep, tail = canonical_json(skeleton).partition(canonical_json(hole))
    assert sep and canonical_json(hole) not in tail
    return head, tail


def _write_provenance(
    writer: PayloadWriter, spec: BundleSpec, payload: list[FileEntry], inputs: Iterator[Dependency], signer: Signer
) -> None:
    """Write provenance.json, its DSSE envelope and its Sigstore bundle without holding them in memory.

    The bytes are exactly RFC 8785 of the in-memory objects (a unit test compares them): the statement's one
    large value, ``resolvedDependencies``, is streamed item by item into its canonical place, and the envelopes'
    base64 payload is encoded from the file in chunks. ECDSA signs the PAE digest; Ed25519, which cannot sign
    a digest, reads the statement once into memory.
    """
    skeleton = _provenance(spec, payload, [])
    skeleton["predicate"]["buildDefinition"]["resolvedDependencies"] = [_HOLE]
    head, tail = _split(skeleton, [_HOLE])
    with writer.stream(PROVENANCE, IN_TOTO) as out:
        out.write(head + b"[")
        first = True
        for batch in _batched(inputs, DEPENDENCY_BATCH):
            if writer.cancel.is_cancelled():
                raise Cancelled("export cancelled")
            out.write((b"" if first else b",") + _dependencies_json(batch))
            first = False
        out.write(b"]" + tail)
    statement = writer.staging / PROVENANCE
    size = writer.files[PROVENANCE].size
    prefix = pae_prefix(IN_TOTO, size)
    # Both envelopes hold the statement's base64 before their signature (canonical key order: "payload" comes
    # before "signatures", "dsseEnvelope" before the rest): one read of the statement feeds the PAE digest and
    # both envelopes' payload; the signature and what follows it are written once it is made.
    placeholder = {
        "payload": _HOLE,
        "payloadType": IN_TOTO,
        "signatures": [{"keyid": "", "sig": _HOLE_SIG}],
    }
    placeholder_bundle = {
        "dsseEnvelope": placeholder,
        "mediaType": SIGSTORE_BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": signer.hint}, "tlogEntries": []},
    }
    heads = [_split(doc, _HOLE)[0] for doc in (placeholder, placeholder_bundle)]
    prehashed = signer.algorithm is KeyAlgorithm.ECDSA_P256
    digest = hashlib.sha256(prefix)
    with contextlib.ExitStack() as stack:
        outs = [
            stack.enter_context(writer.stream(name, media))
            for name, media in ((PROVENANCE_DSSE, DSSE_ENVELOPE), (PROVENANCE_SIGSTORE, SIGSTORE_BUNDLE_V03))
        ]
        for out, head in zip(outs, heads, strict=True):
            out.write(head + b'"')
        with statement.open("rb") as fh:
            while chunk := fh.read(3 * CHUNK):  # a multiple of 3: chunks encode without padding in between
                if prehashed:
                    digest.update(chunk)
                encoded = base64.b64encode(chunk)
                for out in outs:
                    out.write(encoded)
        if prehashed:
            signature = signer.sign_prehashed_sha256(digest.digest())
        else:  # Ed25519 cannot sign a digest: it reads the statement once into memory
            signature = signer.sign(prefix + statement.read_bytes())
        envelope = {
            "payload": _HOLE,
            "payloadType": IN_TOTO,
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode("ascii")}],
        }
        bundle = {
            "dsseEnvelope": envelope,
            "mediaType": SIGSTORE_BUNDLE_V03,
            "verificationMaterial": {"publicKey": {"hint": signer.hint}, "tlogEntries": []},
        }
        for out, head, doc in zip(outs, heads, (envelope, bundle), strict=True):
            real_head, tail = _split(doc, _HOLE)
            assert real_head == head  # nothing before the payload depends on the signature
            out.write(b'"' + tail)


#: Dependencies serialised together: one orjson call per batch instead of one checked call per input.
DEPENDENCY_BATCH = 4096


def _batched(items: Iterator[Dependency], n: int) -> Iterator[list[Dependency]]:
    batch: list[Dependency] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _dependencies_json(batch: list[Dependency]) -> bytes:
    """The canonical JSON of each dependency of ``batch``, comma-separated (the inside of their array).

    An input document's descriptor is plain JSON (fixed ASCII keys, string values), so a batch of them is one
    orjson call, whose array is RFC 8785 of the list; a ready descriptor (any dict) takes the checked path.
    """
    if all(type(i) is ResolvedInput for i in batch):
        return canonical_json_of_plain([_dependency(i) for i in batch])[1:-1]
    return b",".join(canonical_json(_dependency(i)) for i in batch)


def _template(name: str) -> bytes:
    return resources.files("core.bundle_files").joinpath(name).read_bytes()


def _dependency(i: Dependency) -> dict[str, Any]:
    """An input document as an in-toto ResourceDescriptor (a descriptor is taken as it is)."""
    if isinstance(i, dict):
        return i
    return {
        "uri": f"stella:document/{i.sha256}",
        "digest": {"sha256": i.sha256},
        "name": i.document_id,
        "annotations": {"kind": i.kind, "format": i.format},
    }


def _provenance(spec: BundleSpec, files: list[FileEntry], inputs: list[Dependency]) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f.path, "digest": {"sha256": f.sha256}} for f in files],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "profile": {
                        "id": spec.profile_id,
                        "kind": spec.profile_kind,
                        "variant": spec.profile_variant,
                        "revision": spec.profile_revision,
                    },
                    "selectors": spec.selectors,
                    "tenant": spec.tenant,
                },
                "internalParameters": {"profileConfig": spec.profile_config, "createdAt": spec.created_at_text},
                "resolvedDependencies": [_dependency(i) for i in inputs],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"stella": __version__}},
                "metadata": {"invocationId": spec.run_id, "startedOn": spec.created_at_text},
            },
        },
    }


def _manifest(
    spec: BundleSpec, files: list[FileEntry], counts: dict[str, int], extra: dict[str, Any]
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "schemaVersion": 1,
        "runId": spec.run_id,
        "tenant": spec.tenant,
        "profile": {
            "id": spec.profile_id,
            "kind": spec.profile_kind,
            "variant": spec.profile_variant,
            "revision": spec.profile_revision,
        },
        "selectors": spec.selectors,
        "counts": counts,
        "files": [f.to_manifest() for f in files],
        "tool": {"name": "stella", "version": __version__},
        "createdAt": spec.created_at_text,
    }
    manifest.update(extra)
    return manifest


def _provenance_inputs(ctx: PayloadContext, inputs: Iterator[Dependency]) -> Iterator[Dependency]:
    keep = ctx.provenance_keep
    if keep is None:
        yield from inputs
        yield from ctx.extra_dependencies
        return
    for item in inputs:
        sha = item.sha256 if isinstance(item, ResolvedInput) else item.get("digest", {}).get("sha256")
        if sha in keep:
            yield item
    yield from ctx.extra_dependencies


def render_checksums(manifest_sha256: str, files: list[dict[str, Any]]) -> bytes:
    """``sha256sum -c`` lines for ``export.json`` and every listed file, in bundle order."""
    lines = [(MANIFEST, manifest_sha256)] + [(f["path"], f["sha256"]) for f in files]
    return "".join(f"{sha}  {path}\n" for path, sha in sorted(lines, key=lambda p: bundle_order(p[0]))).encode()


def build_bundle(
    spec: BundleSpec,
    profile: PayloadProfile,
    *,
    inputs: Callable[[], Iterator[Dependency]],
    raw_bytes: Callable[[str], bytes],
    query: Any,
    signer: Signer,
    out_path: Path,
    sink: Observer | None = None,
    cancel: CancelToken | None = None,
    home: Path | None = None,
    passphrase: str | None = None,
) -> tuple[str, int]:
    """Build the signed bundle archive at ``out_path``; returns its (sha256, size).

    Payload is encrypted to the run's ``encryptionRecipients`` option, else the profile's, or with
    ``passphrase`` (never stored: a retry is given it again).

    On failure or cancellation nothing is left behind: neither the staging directory nor a partial archive.
    """
    sink = sink or NullObserver()
    cancel = cancel or CancelToken()
    # Named with the run id, so the next run can remove what a killed one left (core.runs).
    staging = out_path.parent / f".{out_path.name}.{spec.run_id}.staging"
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
    except OSError as exc:
        raise EnvironmentFailure(
            f"cannot create the bundle staging directory: {exc.strerror}", path=str(staging)
        ) from exc
    try:
        writer = PayloadWriter(staging, sink=sink, cancel=cancel)
        sink.start("payload", spec.input_count)
        ctx = PayloadContext(spec, writer, inputs, raw_bytes, query, sink, home=home, cancel=cancel, signer=signer)
        with phase("adapter", span="export.fetch"):  # the profile adapter reads the pinned inputs, writes the payload
            counts = profile.write_payload(ctx)
        sink.finish("payload")
        with phase("manifest", span="export.write"):  # encryption, manifest, signatures, the archive
            recipients = spec.options.get("encryptionRecipients") or spec.profile_config.get("encryptionRecipients")
            encryption = Encryption(tuple(recipients or ()), passphrase)
            if encryption:
                section = _encrypt_payload(
                    writer, encryption, getattr(profile, "encrypted_prefixes", None), cancel, spec.compression_level
                )
                if section["files"]:
                    ctx.extra_manifest["encryption"] = section
            writer.add_bytes(README, _template(README), "text/plain; charset=utf-8")
            writer.add_bytes(VERIFY_SCRIPT, _template(VERIFY_SCRIPT), SHELL_SCRIPT)
            payload = sorted(writer.files.values(), key=lambda f: f.path)

            with phase("sign", span="export.sign"):  # provenance, manifest and checksums, each signed
                _write_provenance(writer, spec, payload, _provenance_inputs(ctx, inputs()), signer)

                listed = sorted(writer.files.values(), key=lambda f: bundle_order(f.path))
                extra = dict(ctx.extra_manifest)
                extra["signing"] = {"algorithm": str(signer.algorithm), "keyid": signer.keyid}
                manifest = canonical_json(_manifest(spec, listed, counts, extra))
                (staging / MANIFEST).write_bytes(manifest)
                (staging / MANIFEST_SIG).write_bytes(cosign_blob_signature(signer, manifest))
                checksums = render_checksums(hashlib.sha256(manifest).hexdigest(), [f.to_manifest() for f in listed])
                (staging / CHECKSUMS).write_bytes(checksums)
                (staging / CHECKSUMS_SIG).write_bytes(cosign_blob_signature(signer, checksums))

            head = [p for p in HEAD_ORDER if (staging / p).exists()]
            rest = [f.path for f in listed if f.path not in head]
            entries = [
                ArchiveEntry(p, staging.joinpath(*PurePosixPath(p).parts), 0o755 if p == VERIFY_SCRIPT else 0o644)
                for p in head + rest
            ]
            mtime = int((spec.created_at - datetime(1970, 1, 1)).total_seconds())
            # A profile may name another compression where its bundle's name is fixed (devportal: ``bundle.tgz``).
            compression: Compression = getattr(profile, "archive_compression", "zstd")
            return write_archive(
                out_path,
                entries,
                mtime=mtime,
                compression=compression,
                level=spec.compression_level,
                sink=sink,
                cancel=cancel,
                temp_tag=spec.run_id,
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            out_path.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
