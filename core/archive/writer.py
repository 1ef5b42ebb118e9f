"""Deterministic bundle archives.

:func:`write_archive` streams entries, in the order the caller gives, into a POSIX pax tar (``.tar.zst`` by
default, ``.tgz`` or plain ``.tar`` on request). Every header is fixed: mtime is the run's ``createdAt``, uid/gid
0, empty user and group names, mode 0644 or 0755, no directory entries. Pax extended headers appear only where
ustar cannot hold a value (a path over 100 bytes or not ASCII, a file of 8 GiB or more) and then carry only
``path`` / ``size``: never a time. The gzip header has mtime 0 and no file name; zstd runs single-threaded at a
fixed level with the frame checksum on and no content size. The archive is written to a temporary file beside
``out``, fsynced, and renamed into place, so a reader never sees half a bundle and a failed or cancelled run
leaves nothing behind. The header bytes come from :mod:`core.archive.canonical`, the one definition the reader
also compares every received header with.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import queue
import secrets
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from core.archive.canonical import (
    EXEC_MODE,
    FILE_MODE,
    MAX_MTIME,
    MODES,
    end_of_archive,
    member_header,
    padding,
    zstd_compressor,
)
from core.archive.rules import Compression, parent_dirs, printable, unsafe_path_reason
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError
from core.progress import CancelToken, NullObserver, Observer

CHUNK = 1 << 20
__all__ = ["EXEC_MODE", "FILE_MODE", "MAX_MTIME", "ArchiveEntry", "write_archive"]


@dataclass(frozen=True)
class ArchiveEntry:
    """One file to put into a bundle archive.

    ``path`` is the POSIX relative name inside the archive; ``source`` a file to stream from, or the bytes
    themselves; ``mode`` 0o644, or 0o755 for an executable (the verify script).
    """

    path: str
    source: Path | bytes
    mode: int = FILE_MODE


def write_archive(
    out: Path,
    entries: Sequence[ArchiveEntry],
    *,
    mtime: int,
    compression: Compression = "zstd",
    level: int = 19,
    sink: Observer | None = None,
    cancel: CancelToken | None = None,
    temp_tag: str | None = None,
) -> tuple[str, int]:
    """Write ``entries``, in the order given, as a deterministic archive at ``out``; returns (sha256 hex, size).

    The caller orders the entries (manifest and signatures first, then checksums, README, verify script, trust
    metadata, payload sorted by path): they are not re-sorted. ``mtime`` (seconds since the epoch) is stamped
    on every entry. ``level`` is zstd's; gzip uses ``min(level, 9)``; plain tar ignores it. Progress is
    reported in input bytes as the phase ``"archive"``.

    Raises IntegrityError for an unsafe or duplicate path, EnvironmentFailure when a source cannot be read or
    the archive cannot be written, Cancelled when ``cancel`` (or ``sink``) asks to stop. On any failure the
    temporary file is removed and an existing ``out`` is left as it was.
    """
    if compression not in ("zstd", "gzip", "none"):
        raise ValueError(f"unknown compression {compression!r}")
    if not 0 <= mtime <= MAX_MTIME:
        raise ValueError(f"mtime {mtime} is outside 0..{MAX_MTIME}; it would need a pax time header")
    if compression == "zstd" and not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
        raise ValueError(f"zstd level {level} is outside 1..{zstandard.MAX_COMPRESSION_LEVEL}")
    if compression == "gzip" and level < 1:
        raise ValueError(f"gzip level {level} is below 1")
    sizes = _check_entries(out, entries)
    progress = sink or NullObserver()
    token = cancel or CancelToken()

    def cancelled() -> bool:
        return token.is_cancelled() or progress.is_cancelled()

    # ``temp_tag`` (a run id) names the temporary file, so what a killed run left can be told apart and removed.
    tag = f"{temp_tag}." if temp_tag else ""
    tmp = out.parent / f".{out.name}.{tag}{secrets.token_hex(6)}.tmp"
    try:
        # O_EXCL: never write through a file or link someone placed at the temporary name; 0o666 lets the umask
        # decide the final permissions exactly as for any file the user creates.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot create the archive: {exc.strerror}", path=str(out)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            with _HashingWriter(fh) as hashed:
                progress.start("archive", sum(sizes))
                _write_tar(hashed, entries, sizes, mtime, compression, level, progress, cancelled, out)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise EnvironmentFailure(f"cannot write the archive: {exc.strerror or exc}", path=str(out)) from exc
        raise
    _fsync_dir(out.parent)
    progress.finish("archive")
    return hashed.sha256.hexdigest(), hashed.size


def _check_entries(out: Path, entries: Sequence[ArchiveEntry]) -> list[int]:
    """Validate every entry before a byte is written; returns each entry's size."""
    files: set[str] = set()
    dirs: set[str] = set()
    sizes: list[int] = []
    for entry in entries:
        name = entry.path
        reason = unsafe_path_reason(name)
        if reason is None:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                reason = "is not valid UTF-8"
        if reason is not None:
            raise IntegrityError(f"archive entry {reason}; {out.name} was not written", path=printable(name))
        if name in files:
            raise IntegrityError(f"duplicate archive entry; {out.name} was not written", path=name)
        if name in dirs or any(p in files for p in parent_dirs(name)):
            raise IntegrityError(f"archive entry is both a file and a directory; {out.name} was not written", path=name)
        files.add(name)
        dirs.update(parent_dirs(name))
        if entry.mode not in MODES:
            raise ValueError(f"{name}: mode {entry.mode:#o} is not 0o644 or 0o755")
        if isinstance(entry.source, bytes):
            sizes.append(len(entry.source))
            continue
        try:
            st = entry.source.stat()
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(entry.source)) from exc
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError("is not a regular file; only regular files go into a bundle", path=str(entry.source))
        sizes.append(st.st_size)
    return sizes


def _write_tar(
    target: _HashingWriter,
    entries: Sequence[ArchiveEntry],
    sizes: list[int],
    mtime: int,
    compression: Compression,
    level: int,
    sink: Observer,
    cancelled: Callable[[], bool],
    out: Path,
) -> None:
    compressed: Any
    if compression == "zstd":
        compressed = zstd_compressor(level).stream_writer(cast(IO[bytes], target), closefd=False)
    elif compression == "gzip":
        # filename="": no FNAME field, whatever the target is called (GzipFile would borrow a file's .name).
        compressed = gzip.GzipFile(filename="", mode="wb", fileobj=target, compresslevel=min(level, 9), mtime=0)
    else:
        compressed = target
    offset = 0
    for entry, size in zip(entries, sizes, strict=True):
        if cancelled():
            raise Cancelled("writing the archive was cancelled; the partial file was removed", path=str(out))
        header = member_header(entry.path, size, entry.mode, mtime)
        compressed.write(header)
        if isinstance(entry.source, bytes):
            _copy(_SourceReader(io.BytesIO(entry.source), entry, size, sink, cancelled, out), compressed, size)
        else:
            try:
                src = entry.source.open("rb")
            except OSError as exc:
                raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(entry.source)) from exc
            with src:
                _copy(_SourceReader(src, entry, size, sink, cancelled, out), compressed, size)
                if src.read(1):
                    raise EnvironmentFailure("file grew while it was being archived", path=str(entry.source))
        compressed.write(bytes(padding(size)))
        offset += len(header) + size + padding(size)
    compressed.write(end_of_archive(offset))
    if compressed is not target:
        compressed.close()


def _copy(src: _SourceReader, target: Any, size: int) -> None:
    left = size
    while left:
        data = src.read(min(CHUNK, left))
        target.write(data)
        left -= len(data)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory, and the data is already safe.
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


class BackgroundWriter:
    """Hands byte batches to ``write`` on a second thread, a few batches ahead of the caller.

    Used where ``write`` releases the GIL for most of its time (zstd compression), so the caller's Python work
    and the compression run on two cores. The queue is bounded: memory stays at a few batches. An exception in
    the thread is raised in the caller at its next ``put`` or when the block ends; when the block raises, the
    thread drops what is queued and stops before the exception goes on.
    """

    def __init__(self, write: Callable[[bytes], Any], *, name: str, depth: int = 4) -> None:
        self._write = write
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name=f"stella {name}", daemon=True)

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None and not self._abandon:
                try:
                    self._write(item)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def put(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self._abandon = True
        self._queue.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error


class _HashingWriter(io.RawIOBase):
    """Hashes and counts the archive's bytes on their way to disk, so the file is never read back.

    The hashing and writing run on a :class:`BackgroundWriter` thread, a few chunks behind the compressor (both
    release the GIL), so the thread that compresses does nothing else. Used as a context manager: its exit waits for
    every chunk to be written and raises what the thread met; when the block raises, the queued chunks are dropped.
    """

    def __init__(self, fh: IO[bytes], depth: int = 4) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._background = BackgroundWriter(self._hash_and_write, name="archive output", depth=depth)

    def _hash_and_write(self, data: bytes) -> None:
        self.sha256.update(data)
        self._fh.write(data)

    def __enter__(self) -> _HashingWriter:
        self._background.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._background.__exit__(exc_type, *rest)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        # The compressors hand over new bytes objects; anything else (a view of a buffer its owner may reuse) is
        # copied before it leaves this thread.
        chunk = data if type(data) is bytes else bytes(memoryview(data).cast("B"))
        self._background.put(chunk)
        self.size += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass  # the exit writes out what is queued; the caller flushes and fsyncs the file after it


class _SourceReader:
    """Feeds one entry to the archive chunk by chunk, reporting progress and honouring cancellation."""

    def __init__(
        self,
        fh: IO[bytes],
        entry: ArchiveEntry,
        size: int,
        sink: Observer,
        cancelled: Callable[[], bool],
        out: Path,
    ) -> None:
        self._fh = fh
        self._entry = entry
        self._left = size
        self._sink = sink
        self._cancelled = cancelled
        self._out = out

    def read(self, n: int = -1) -> bytes:
        if self._cancelled():
            raise Cancelled("writing the archive was cancelled; the partial file was removed", path=str(self._out))
        want = self._left if n < 0 else min(n, self._left)
        data = self._fh.read(want)
        if len(data) < want:
            raise EnvironmentFailure("file shrank while it was being archived", path=str(self._entry.source))
        self._left -= len(data)
        if data:
            self._sink.advance(len(data), detail=self._entry.path)
        return data
