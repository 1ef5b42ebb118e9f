"""The fail-closed streaming reader of received bundle archives.

:class:`SafeArchiveReader` walks a received ``.tar.zst`` / ``.tar.gz`` / ``.tar`` member by member, straight from
the compressed file; nothing is extracted. Its own small tar parser fails closed: unsafe names, links, devices,
directories, duplicates, a truncated or corrupt stream, a missing end-of-archive marker, data after it, and
anything over the :class:`ReaderLimits` are errors, never skipped. Iteration ends normally only after the
end-of-archive marker and the end of the compressed stream (and its checksum) have been read.

Bundles are deterministic, so the reader accepts only their canonical form (:mod:`core.archive.canonical`, the
definition the writer emits): each member's header blocks must equal, byte for byte, the writer's encoding of that
member (name, size, mode 0644 or 0755, and the mtime every member shares with the first: the verifier checks that
one against the manifest's ``createdAt``); padding is zeros; the end-of-archive blocks are exactly the writer's;
the compressed stream is one zstd frame or one gzip member with the writer's header and nothing after it. So no
byte outside the members' data escapes the signed manifest: a PAX record, a user name, a set-uid mode, a skippable
frame or a gzip file name is an IntegrityError naming the member or offset.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import zstandard

from core.archive.canonical import (
    GZIP_HEADER_SIZE,
    GZIP_HEADERS,
    MODES,
    PAX,
    ZSTD_FRAME_HEADER_SIZE,
    end_of_archive,
    field_at,
    member_header,
    padding,
    zstd_frame_headers,
)
from core.archive.rules import Compression, parent_dirs, printable, unsafe_path_reason
from core.compression import CORRUPT, GZIP_MAGIC, ZSTD_MAGIC, GzipMemberReader, TrailingData
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, StellaError
from core.progress import Cancellable

BLOCK = 512
CHUNK = 1 << 20
#: The ratio check starts once this much has been decompressed, so small archives with a tiny compressed
#: size (a few highly compressible JSON files) are not refused for their ratio.
RATIO_GRACE = 16 << 20
#: The compressed file is read this much at a time, and hashed as it is read (:attr:`SafeArchiveReader.file_sha256`).
RAW_CHUNK = 1 << 20
#: zstd expands a run of zeros ~32,000x, and the decompressor turns all it is fed into one bytes object. So it is
#: fed whole blocks (each decompresses to 128 KiB at most), as many as make ZSTD_STEP of output, walked from their
#: headers: one step stays about a MiB however high the ratio, and the ratio limit stops a bomb after the first
#: 16 MiB. Where the walk stops (a block type it does not know), the rest is fed 4 KiB at a time (<= 128 MiB a step).
ZSTD_STEP = 1 << 20
ZSTD_BLOCK_MAX = 128 << 10
ZSTD_RAW_CHUNK = 4 << 10
#: The writer's pax records hold a path and a size; a safe path is far shorter than this.
MAX_PAX_HEADER = 64 << 10


@dataclass
class ReaderLimits:
    """What a received archive may claim before it is refused as hostile.

    ``max_total_bytes`` bounds the whole decompressed tar stream; ``max_ratio`` is that stream's size over the
    compressed bytes read so far, checked continuously once 16 MiB have been decompressed.
    """

    max_entries: int = 1_000_000
    max_total_bytes: int = 64 << 30
    max_entry_bytes: int = 16 << 30
    max_ratio: float = 200.0


class ArchiveMember:
    """A regular file in a received archive, in archive order. Its data is readable only until the next one."""

    __slots__ = ("_reader", "_remaining", "mode", "mtime", "name", "size")

    def __init__(self, reader: _TarScanner, name: str, size: int, mode: int, mtime: int) -> None:
        self.name = name
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self._reader = reader
        self._remaining = size

    def stream(self) -> MemberStream:
        """A file-like over this member's data; read it in chunks. Usable as a context manager."""
        return MemberStream(self)

    def __repr__(self) -> str:
        return f"ArchiveMember({self.name!r}, size={self.size})"


class _ReadIntoFromRead(io.RawIOBase):
    """``readinto`` in terms of a ``read`` that returns at most the bytes asked for."""

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class MemberStream(_ReadIntoFromRead):
    """Reads one member's bytes from the archive stream; raises BadInputError if the archive ends early."""

    def __init__(self, member: ArchiveMember) -> None:
        super().__init__()
        self._member = member

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        member = self._member
        scanner = member._reader
        scanner.raise_if_broken()
        if scanner.current is not member:
            raise RuntimeError(f"{member.name}: the archive reader has moved past this member")
        if size is None or size < 0:
            return self.readall()
        want = min(size, member._remaining)
        if want == 0:
            return b""
        data = scanner.read_some(want)
        if not data:
            raise scanner.fail(
                BadInputError(
                    f"archive ends inside entry {printable(member.name)!r}: it is truncated",
                    path=scanner.label,
                )
            )
        member._remaining -= len(data)
        return data

    def readall(self) -> bytes:
        """The rest of the member: ``read`` returns at most one decompressed chunk, so this loops to the end."""
        chunks: list[bytes] = []
        while chunk := self.read(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)


class SafeArchiveReader:
    """Streams the regular-file members of a received bundle archive, failing closed on anything unsafe.

    Detects zstd, gzip or plain tar by magic bytes. Iterating yields :class:`ArchiveMember` objects in
    archive order. Raises IntegrityError (exit 4), naming the entry or offset, for an absolute path, a ``..``
    component, a backslash, NUL or control character, a link, a device, fifo or directory entry, a duplicate
    name, and for any byte outside the members' data that differs from the canonical form the writer emits
    (:mod:`core.archive.canonical`): a header field, a PAX or GNU record, non-zero padding, data after the
    end-of-archive marker or after the one zstd frame or gzip member, a zstd or gzip header the writer never
    writes. Raises BadInputError (exit 3), naming the archive, for truncated or corrupt compression or tar data, a
    missing end-of-archive marker, or a :class:`ReaderLimits` limit exceeded. ``mtime`` is the time every member
    carries, known once the first member has been read. With ``cancel`` (a token or an observer), once it says so
    from another thread the reader stops at the next read with :class:`Cancelled`.
    """

    def __init__(self, path: Path, limits: ReaderLimits | None = None, *, cancel: Cancellable | None = None) -> None:
        self.path = path
        self.limits = limits or ReaderLimits()
        label = str(path)
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read the archive: {exc.strerror}", path=label) from exc
        try:
            head = raw.read(BLOCK)
            raw.seek(0)
        except OSError as exc:
            raw.close()
            raise EnvironmentFailure(f"cannot read the archive: {exc.strerror}", path=label) from exc
        self._raw = _RawFile(raw)
        counted: _RawFile | None = None
        source: IO[bytes]
        self.compression: Compression
        try:
            if head.startswith(ZSTD_MAGIC):
                _check_zstd_header(head, label)
                counted = self._raw
                frame = _ZstdFrame(counted)
                # Decompress on a second core while this thread parses and hashes (both release the GIL).
                source = _Prefetch(frame.read, counted.close, counted)  # type: ignore[assignment]
                self.compression = "zstd"
            elif head.startswith(GZIP_MAGIC):
                _check_gzip_header(head, label)
                counted = self._raw
                inflated = io.BufferedReader(GzipMemberReader(counted), buffer_size=CHUNK)  # type: ignore[arg-type]
                source = _Prefetch(lambda: inflated.read(CHUNK), inflated.close, counted)  # type: ignore[assignment]
                self.compression = "gzip"
            elif len(head) == BLOCK and (head[257:262] == b"ustar" or head == bytes(BLOCK)):
                source = self._raw  # type: ignore[assignment]
                self.compression = "none"
            elif head[:4] in _SKIPPABLE:
                raise IntegrityError(
                    "archive starts with a zstd skippable frame; a bundle is exactly one zstd frame", path=label
                )
            else:
                raise BadInputError("is not a tar, .tar.gz or .tar.zst archive", path=label)
        except StellaError:
            raw.close()
            raise
        self._source = source
        self._scanner = _TarScanner(source, label, self.limits, counted, self.compression)
        self._scanner.cancel = cancel
        self._members: Iterator[ArchiveMember] | None = None

    def __enter__(self) -> SafeArchiveReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def mtime(self) -> int | None:
        """The mtime every member carries (the first member's), or None before the first member is read."""
        return self._scanner.mtime

    @property
    def file_sha256(self) -> str | None:
        """The sha256 (hex) of the archive file's bytes, once iteration has ended normally: every byte of the file
        was read, once, and checked (the end of the archive and of the compressed stream). None before that."""
        return self._raw.sha256.hexdigest() if self._scanner.finished else None

    def __iter__(self) -> Iterator[ArchiveMember]:
        if self._members is None:
            self._members = self._scanner.members()
        return self._members

    def close(self) -> None:
        """Release the file; iteration cannot continue afterwards."""
        self._source.close()


class _Prefetch(_ReadIntoFromRead):
    """Reads ahead of its consumer on a background thread, a bounded number of chunks at a time.

    ``produce`` returns the next chunk (b"" at the end); ``release`` closes what it reads. The compressed bytes
    ``raw`` read for a chunk travel with it and are hashed on the consumer's thread (which has time to spare while
    the producer's decompresses). The producer's exceptions (a damaged stream) are handed over and raised in the
    consumer's thread, at the point in the stream where they happened.
    """

    DEPTH = 4

    def __init__(self, produce: Callable[[], bytes], release: Callable[[], None], raw: _RawFile) -> None:
        super().__init__()
        self._produce_chunk = produce
        self._release = release
        self._raw = raw
        raw.deferred = []
        self._queue: queue.Queue[tuple[bytes | None, list[bytes]] | BaseException] = queue.Queue(maxsize=self.DEPTH)
        self._buffer = b""
        self._offset = 0
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="archive-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._produce_chunk()
                if not data:
                    break
                self._queue.put((data, self._raw.take()))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._queue.put(exc)
            return
        self._queue.put((None, self._raw.take()))

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while self._offset >= len(self._buffer):
            if self._done:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            data, raw = item
            for chunk in raw:
                self._raw.sha256.update(chunk)
            if data is None:
                self._done = True
                return b""
            self._buffer, self._offset = data, 0
        end = len(self._buffer) if size is None or size < 0 else min(len(self._buffer), self._offset + size)
        data = self._buffer[self._offset : end]
        self._offset = end
        return data

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)
        self._release()
        super().close()


class _RawFile(_ReadIntoFromRead):
    """The archive file as it is read: counted (for the ratio limit) and hashed (:attr:`SafeArchiveReader.file_sha256`,
    so nothing reads the file a second time for its digest). With ``deferred`` (a list) the chunks read are kept
    there, for :meth:`take` to hand to the thread that hashes them."""

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__()
        self._fh = fh
        self.count = 0
        self.sha256 = hashlib.sha256()
        self.deferred: list[bytes] | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # Overridden rather than inherited: RawIOBase.read(n) would allocate an n-byte buffer for every chunk.
        data = self._fh.read(RAW_CHUNK if size is None or size < 0 else min(size, RAW_CHUNK))
        self.count += len(data)
        if self.deferred is None:
            self.sha256.update(data)
        elif data:
            self.deferred.append(data)
        return data

    def take(self) -> list[bytes]:
        """The chunks read since the last call, to be hashed in order (see ``deferred``)."""
        taken, self.deferred = self.deferred or [], []
        return taken

    def close(self) -> None:
        self._fh.close()
        super().close()


class _ZstdFrame:
    """The bundle's one zstd frame, decompressed a step at a time (on the prefetch thread).

    As strict as :class:`core.compression.ZstdReader` with ``single_frame``: EOFError for a truncated frame,
    :class:`TrailingData` for any byte after it (a second or skippable frame, garbage), ``zstandard.ZstdError`` for a
    corrupt one (a bad block, a content checksum that does not match). Each step feeds the decompressor whole
    blocks, found by walking their 3-byte headers, that decompress to about ZSTD_STEP bytes: few, large steps are
    what make it as fast as the ``zstd`` tool, and a bounded step keeps a bomb's expansion small. The walk only
    chooses where a step ends: the decompressor decides what is valid and where the frame ends.
    """

    def __init__(self, raw: _RawFile) -> None:
        self._raw = raw
        self._dobj = zstandard.ZstdDecompressor().decompressobj(write_size=ZSTD_STEP + ZSTD_BLOCK_MAX)
        self._data = b""  # compressed bytes read; those from _off on are not fed yet
        self._off = 0
        #: Where the next block header is in _data; None once the walk has stopped (after the last block, or at
        #: a block type it does not know: the rest is then fed ZSTD_RAW_CHUNK at a time).
        self._walk: int | None = ZSTD_FRAME_HEADER_SIZE
        self._started = False
        self._ended = False

    def read(self) -> bytes:
        """The next step's decompressed bytes; b"" once the frame has ended, and the file with it."""
        while True:
            end = self._step_end()
            if end is None:
                more = self._raw.read(RAW_CHUNK)
                if more:
                    if self._ended:
                        raise TrailingData("data after the zstd frame", self._raw.count - len(more))
                    if self._walk is not None:
                        self._walk -= self._off
                    self._data, self._off = self._data[self._off :] + more, 0
                    continue
                if self._off == len(self._data):
                    if self._started and not self._ended:
                        raise EOFError("zstd stream ends in the middle of a frame (truncated)")
                    return b""
                end = len(self._data)  # the file ends inside a block: the decompressor says what is wrong
                self._walk = None  # and nothing is left to walk
            out = self._feed(end)
            if out:
                return out

    def _step_end(self) -> int | None:
        """Where in _data the next step's input ends (after whole blocks), or None when more must be read."""
        data, pos = self._data, self._walk
        if self._ended:
            return None
        if pos is None:
            return min(len(data), self._off + ZSTD_RAW_CHUNK) if self._off < len(data) else None
        if pos > len(data):  # the frame header is not all read yet
            return None
        output = 0
        while pos + 3 <= len(data):
            header = int.from_bytes(data[pos : pos + 3], "little")
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 3:  # reserved: the decompressor will refuse it
                self._walk = None
                return self._step_end()
            end = pos + 3 + (1 if kind == 1 else size)  # an RLE block is one byte repeated
            if end > len(data):
                break
            pos = end
            output += ZSTD_BLOCK_MAX if kind == 2 else size
            if header & 1:  # the last block: its checksum and whatever follows go in too (the frame's end is found)
                self._walk = None
                return len(data)
            if output >= ZSTD_STEP:
                break
        self._walk = pos
        return pos if pos > self._off else None

    def _feed(self, end: int) -> bytes:
        piece = memoryview(self._data)[self._off : end]
        after = self._raw.count - (len(self._data) - end)  # the file offset just after the piece
        self._off = end
        self._started = True
        out: bytes = self._dobj.decompress(piece)
        if self._dobj.eof:
            unused = len(self._dobj.unused_data)
            if unused or self._off < len(self._data):
                raise TrailingData("data after the zstd frame", after - unused)
            self._ended = True
        return out


_SKIPPABLE = frozenset(bytes([0x50 + n]) + b"\x2a\x4d\x18" for n in range(16))
_LINK_TYPES = {b"1": "a hard link", b"2": "a symbolic link"}
_SPECIAL_TYPES = {
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a directory entry",
    b"6": "a fifo",
    b"7": "a contiguous file",
    b"D": "a GNU dump directory",
    b"M": "a multi-volume continuation",
    b"S": "a GNU sparse file",
    b"V": "a volume label",
}
#: Headers that describe the next entry or the whole archive: the writer emits none of them.
_METADATA_TYPES = {b"g": "a global pax header", b"K": "a GNU long link name", b"L": "a GNU long name"}
_GZIP_FLAGS = (
    (0x02, "a header CRC (FHCRC)"),
    (0x04, "an extra field (FEXTRA)"),
    (0x08, "a file name (FNAME)"),
    (0x10, "a comment (FCOMMENT)"),
    (0x01, "the text flag (FTEXT)"),
    (0xE0, "reserved flags"),
)


def _check_zstd_header(head: bytes, label: str) -> None:
    """The frame header must be one the writer's zstd settings give (content checksum, no content size or
    dictionary, the window of a zstd level): the decompressor ignores some of its bits and accepts other windows."""
    frame = head[:ZSTD_FRAME_HEADER_SIZE]
    if frame not in zstd_frame_headers():
        raise IntegrityError(
            f"zstd frame header {frame.hex()} is not one the bundle writer emits "
            "(content checksum on, no content size or dictionary id, the window of a zstd level)",
            path=label,
        )


def _check_gzip_header(head: bytes, label: str) -> None:
    """The gzip header must be the writer's: no name, comment, extra field or header CRC, mtime 0, OS 255."""
    header = head[:GZIP_HEADER_SIZE]
    if header in GZIP_HEADERS:
        return
    if len(header) < GZIP_HEADER_SIZE:
        raise BadInputError("gzip stream is truncated inside its header", path=label)
    flags = header[3] if len(header) > 3 else 0
    found = [what for bit, what in _GZIP_FLAGS if flags & bit]
    if found:
        problem = f"sets {', '.join(found)}"
    elif header[4:8] != bytes(4):
        problem = f"carries an mtime ({int.from_bytes(header[4:8], 'little')}) where the writer writes 0"
    else:
        problem = f"differs from the writer's ({header.hex()})"
    raise IntegrityError(f"gzip header {problem}; a bundle's gzip header carries nothing but the format", path=label)


@dataclass
class _Header:
    name: bytes
    typeflag: bytes
    size: int
    mode: int
    mtime: int
    linkname: bytes


class _TarScanner:
    """The tar parser behind :class:`SafeArchiveReader`: reads blocks, enforces limits, tracks the current member."""

    def __init__(
        self, source: IO[bytes], label: str, limits: ReaderLimits, counted: _RawFile | None, codec: str
    ) -> None:
        self._src = source
        self._codec = {"none": "tar"}.get(codec, codec)
        self.label = label
        self._limits = limits
        self._counted = counted
        self._pos = 0
        self._error: BaseException | None = None
        self.current: ArchiveMember | None = None
        self._files: set[str] = set()
        self._dirs: set[str] = set()
        self._entries = 0
        #: The first member's mtime, which every later member must carry too.
        self.mtime: int | None = None
        #: Polled before every read: a surface that set it stops the reader at the next block or chunk.
        self.cancel: Cancellable | None = None
        #: Set once the end of the archive and of its compressed stream have been read and checked.
        self.finished = False

    # -- bytes ------------------------------------------------------------------------------------------------
    def fail(self, error: BaseException) -> BaseException:
        """Remember the first failure: once broken, every later read raises it again."""
        if self._error is None:
            self._error = error
        self.current = None
        return error

    def raise_if_broken(self) -> None:
        """Raise the failure already met, if any: a broken archive stays broken."""
        if self._error is not None:
            raise self._error

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes; fewer only at the end of the stream."""
        self.raise_if_broken()
        if self.cancel is not None and self.cancel.is_cancelled():
            raise self.fail(Cancelled("reading the archive was cancelled", path=self.label))
        try:
            data = self._src.read(n)
        except TrailingData as exc:
            raise self.fail(
                IntegrityError(
                    f"{exc.what} (compressed offset {exc.offset}); the bundle writer never emits it", path=self.label
                )
            ) from None
        except CORRUPT as exc:  # bytes changed after the writer checksummed them: integrity, as a digest mismatch
            raise self.fail(
                IntegrityError(f"{self._codec} stream is corrupt: it fails its own check ({exc})", path=self.label)
            ) from None
        except EOFError as exc:
            raise self.fail(BadInputError(f"{self._codec} stream is truncated ({exc})", path=self.label)) from None
        except OSError as exc:
            raise self.fail(
                EnvironmentFailure(f"cannot read the archive: {exc.strerror or exc}", path=self.label)
            ) from exc
        self._pos += len(data)
        self._check_size()
        return data

    def _read_exact(self, n: int, what: str) -> bytes:
        parts = []
        got = 0
        while got < n:
            data = self.read_some(n - got)
            if not data:
                raise self.fail(BadInputError(f"archive ends inside {what}: it is truncated", path=self.label))
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _skip(self, n: int, what: str) -> None:
        while n:
            n -= len(self._read_exact(min(n, CHUNK), what))

    def _check_size(self) -> None:
        lim = self._limits
        if self._pos > lim.max_total_bytes:
            raise self.fail(
                BadInputError(
                    f"archive expands past {lim.max_total_bytes} bytes (max_total_bytes limit)", path=self.label
                )
            )
        if self._counted is not None and self._pos > RATIO_GRACE and self._pos > lim.max_ratio * self._counted.count:
            raise self.fail(
                BadInputError(
                    f"archive expands more than {lim.max_ratio:g} times its compressed size (max_ratio limit); "
                    "refusing a likely decompression bomb",
                    path=self.label,
                )
            )

    def _not_canonical(self, problem: str, *, path: str | None = None) -> BaseException:
        return self.fail(IntegrityError(problem, path=path if path is not None else self.label))

    # -- members ----------------------------------------------------------------------------------------------
    def members(self) -> Iterator[ArchiveMember]:
        while True:
            self._finish_current()
            start = self._pos
            block = self.read_some(BLOCK)
            if block and len(block) < BLOCK:
                block += self._read_exact(BLOCK - len(block), "a header")
            if not block:
                raise self.fail(
                    BadInputError(
                        "archive ends without its end-of-archive marker (two zero blocks): it is truncated",
                        path=self.label,
                    )
                )
            if block == bytes(BLOCK):
                self._end_of_archive(start)
                self.finished = True
                return
            header = self._parse(block, start)
            raw = block
            pax: dict[bytes, bytes] = {}
            if header.typeflag == PAX:
                if header.size > MAX_PAX_HEADER:
                    raise self.fail(
                        BadInputError(
                            f"the pax header at offset {start} is {header.size} bytes, too large", path=self.label
                        )
                    )
                records = self._read_exact(_padded(header.size), "an extended header")
                pax = self._pax_records(records[: header.size])
                block = self._read_exact(BLOCK, "the entry after a pax header")
                if block == bytes(BLOCK):
                    raise self.fail(BadInputError("a pax header is not followed by an entry", path=self.label))
                header = self._parse(block, self._pos - BLOCK)
                raw += records + block
            member = self._entry(header, pax, raw, start)
            self.current = member
            yield member

    def _finish_current(self) -> None:
        member = self.current
        if member is None:
            return
        self._skip(member._remaining, f"entry {printable(member.name)!r}")
        member._remaining = 0
        pad = padding(member.size)
        if pad and self._read_exact(pad, f"entry {printable(member.name)!r}") != bytes(pad):
            raise self._not_canonical(
                f"the padding after the entry's data (offset {self._pos - pad}) is not all zero bytes",
                path=printable(member.name),
            )
        self.current = None

    def _end_of_archive(self, start: int) -> None:
        rest = len(end_of_archive(start)) - BLOCK
        tail = self.read_some(rest)
        while tail and len(tail) < rest:
            more = self.read_some(rest - len(tail))
            if not more:
                break
            tail += more
        if tail.count(0) != len(tail):
            at = start + BLOCK + next(i for i, b in enumerate(tail) if b)
            raise self._not_canonical(f"archive has data after its end-of-archive marker (offset {at})")
        if len(tail) < BLOCK:
            raise self.fail(
                BadInputError("the archive's end-of-archive marker is incomplete: it is truncated", path=self.label)
            )
        if len(tail) < rest:
            raise self._not_canonical(
                f"archive ends {rest - len(tail)} bytes short of the writer's zero padding to a 10240-byte record"
            )
        # Reading to the end also makes the decompressor check the frame end and checksum.
        if self.read_some(1):
            raise self._not_canonical(f"archive has data after its end-of-archive padding (offset {self._pos - 1})")

    def _parse(self, block: bytes, offset: int) -> _Header:
        def corrupt(what: str) -> BaseException:
            return self.fail(BadInputError(f"tar header at offset {offset} {what}", path=self.label))

        stored = _octal(block[148:156])
        unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
        signed = unsigned - sum(256 for b in block[:148] + block[156:] if b > 127)
        if stored is None or stored not in (unsigned, signed):
            raise corrupt("has a bad checksum (corrupt archive)")
        magic = block[257:263]
        if magic not in (b"ustar\x00", b"ustar "):
            raise corrupt("is not a ustar header")
        size, mode, mtime = _number(block[124:136]), _number(block[100:108]), _number(block[136:148])
        if size is None or mode is None or mtime is None:
            raise corrupt("has a malformed number")
        return _Header(_cstring(block[0:100]), block[156:157], size, mode, mtime, _cstring(block[157:257]))

    def _pax_records(self, data: bytes) -> dict[bytes, bytes]:
        records: dict[bytes, bytes] = {}
        pos = 0
        while pos < len(data):
            space = data.find(b" ", pos)
            length = int(data[pos:space]) if space > pos and data[pos:space].isdigit() else 0
            record = data[pos : pos + length]
            if length <= space - pos + 1 or len(record) != length or not record.endswith(b"\n"):
                raise self.fail(BadInputError("malformed pax extended header", path=self.label))
            key, eq, value = record[space - pos + 1 : -1].partition(b"=")
            if not eq:
                raise self.fail(BadInputError("malformed pax extended header", path=self.label))
            records[key] = value
            pos += length
        return records

    def _entry(self, header: _Header, pax: dict[bytes, bytes], raw: bytes, start: int) -> ArchiveMember:
        raw_name = pax.get(b"path", header.name)
        size = header.size
        if b"size" in pax:
            if not pax[b"size"].isdigit():
                raise self.fail(BadInputError("pax header has a malformed size", path=self.label))
            size = int(pax[b"size"])
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            shown = printable(raw_name.decode("utf-8", "surrogateescape"))
            raise self.fail(IntegrityError("archive entry name is not valid UTF-8", path=shown)) from None
        kind = header.typeflag
        if kind in _METADATA_TYPES:
            raise self._not_canonical(
                f"archive has {_METADATA_TYPES[kind]} at offset {start}; the bundle writer never emits one"
            )
        if kind == b"5" and len(name) > 1:
            name = name.removesuffix("/")
        shown = printable(name)
        reason = unsafe_path_reason(name)
        if reason is not None:
            raise self.fail(IntegrityError(f"archive entry {reason}", path=shown))
        if kind in _LINK_TYPES:
            target = printable(header.linkname.decode("utf-8", "surrogateescape"))
            raise self.fail(
                IntegrityError(f"archive entry is {_LINK_TYPES[kind]} (to {target!r}); links are refused", path=shown)
            )
        if kind in _SPECIAL_TYPES or any(k.startswith(b"GNU.sparse") for k in pax):
            what = _SPECIAL_TYPES.get(kind, "a GNU sparse file")
            raise self.fail(IntegrityError(f"archive entry is {what}; only regular files are accepted", path=shown))
        if kind not in (b"0", b"\x00"):
            raise self.fail(
                IntegrityError(f"archive entry has unknown type {kind!r}; only regular files are accepted", path=shown)
            )
        self._entries += 1
        if self._entries > self._limits.max_entries:
            raise self.fail(
                BadInputError(
                    f"archive has more than {self._limits.max_entries} entries (max_entries limit)", path=self.label
                )
            )
        if header.mode not in MODES:
            raise self._not_canonical(
                f"archive entry has mode {header.mode:#o}; a bundle's files are 0o644 or 0o755", path=shown
            )
        if self.mtime is None:
            self.mtime = header.mtime
        expected = member_header(name, size, header.mode, self.mtime)
        if raw != expected:
            raise self._not_canonical(f"{_difference(raw, expected, start, self.mtime)}", path=shown)
        if name in self._files:
            raise self.fail(IntegrityError("duplicate archive entry", path=shown))
        if name in self._dirs or any(p in self._files for p in parent_dirs(name)):
            raise self.fail(IntegrityError("archive entry is both a file and a directory", path=shown))
        lim = self._limits
        if size > lim.max_entry_bytes:
            raise self.fail(
                BadInputError(
                    f"entry {shown!r} is {size} bytes, over {lim.max_entry_bytes} (max_entry_bytes limit)",
                    path=self.label,
                )
            )
        if self._pos + _padded(size) > lim.max_total_bytes:
            raise self.fail(
                BadInputError(
                    f"entry {shown!r} would take the archive past {lim.max_total_bytes} bytes (max_total_bytes limit)",
                    path=self.label,
                )
            )
        self._files.add(name)
        self._dirs.update(parent_dirs(name))
        return ArchiveMember(self, name, size, header.mode, header.mtime)


def _difference(raw: bytes, expected: bytes, start: int, mtime: int) -> str:
    """Which part of a member's header blocks differs from the writer's encoding, and where."""
    tail = "; the bundle writer never emits it"
    if len(raw) != len(expected):
        if len(expected) == BLOCK:
            return f"the entry has a pax extended header at offset {start}{tail}"
        return f"the entry lacks the pax extended header the writer emits for its name or size (offset {start})"
    block_start = len(raw) - BLOCK
    if raw[:block_start] != expected[:block_start]:
        at = next(i for i in range(block_start) if raw[i] != expected[i])
        return f"the pax extended header differs from the writer's at offset {start + at} (a record it never emits)"
    got, want = raw[block_start:], expected[block_start:]
    fields = [field_at(i) for i in range(BLOCK) if got[i] != want[i]]
    named = [f for f in dict.fromkeys(fields) if f != "checksum"] or ["checksum"]
    at = start + block_start + next(i for i in range(BLOCK) if field_at(i) == named[0])
    if named[0] == "mtime":
        return f"tar header field mtime (offset {at}) differs from the archive's mtime {mtime} (the first entry's)"
    return f"tar header field {named[0]} (offset {at}) differs from the canonical form the bundle writer emits"


def _padded(size: int) -> int:
    return size + padding(size)


def _cstring(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _octal(field: bytes) -> int | None:
    text = field.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    if any(c not in b"01234567" for c in text):
        return None
    return int(text, 8)


def _number(field: bytes) -> int | None:
    """A ustar numeric field: octal, or GNU base-256 (high bit set) for values octal cannot hold."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            return None  # negative
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    return _octal(field)
