"""Files written whole or not at all, and I/O failures turned into exit 8 naming the path.

:func:`atomic_file` (and :func:`write_bytes` over it) writes to a temporary file beside the destination, in the
same directory, fsyncs it and renames it over the destination, so a reader sees the old file or the new one and
a full disk, an I/O error or a kill leaves no half-written file. The destination is never followed: a symbolic
link there is replaced by the new file, never written through, so a link planted at an output path cannot make
stella overwrite the file it points to. With ``exclusive`` an existing destination is refused atomically (a
hard link of the finished temporary file, which fails when the name is taken), and a failed write leaves the
name free. A destination that is neither a file nor a link (``/dev/stdout``, a pipe) is written in place:
there is nothing to replace. On any failure the temporary file is removed.

:func:`environment_failure` is the one place an ``OSError`` (disk full, quota, I/O error, read-only file system,
permission) or a DuckDB I/O failure becomes an :class:`~core.errors.EnvironmentFailure` (exit 8) whose sentence
names the path; ``app.cli`` applies it to anything a command lets escape.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import EnvironmentFailure

#: What the temporary file beside ``dest`` is called: ``.<name>.<token>.tmp``.
TEMP_SUFFIX = ".tmp"

_HINTS = {
    errno.ENOSPC: "free some space on that file system, or write somewhere else",
    errno.EDQUOT: "the disk quota is exhausted: free some space, or write somewhere else",
    errno.EROFS: "that file system is mounted read-only: write somewhere else",
    errno.EACCES: "check the permissions of that path and its directory",
    errno.EPERM: "check the permissions of that path and its directory",
    errno.EIO: "the device reported an I/O error: check it before trying again",
}

#: DuckDB reports a failed file operation as ``... file "PATH": <strerror>``.
_DUCKDB_FILE = re.compile(r'file "([^"]+)": ?(.*)$', re.IGNORECASE | re.DOTALL)
_DUCKDB_IO_WORDS = (
    "no space left",
    "disk quota",
    "input/output error",
    "read-only file system",
    "permission denied",
    "could not write file",
    "could not read",
    "could not open file",
    "could not truncate",
    "could not fsync",
)


def environment_failure(
    exc: BaseException, *, path: str | os.PathLike[str] | None = None, what: str | None = None
) -> EnvironmentFailure | None:
    """The exit-8 error for ``exc`` when it is an I/O failure (``OSError``, a DuckDB I/O error); else None.

    ``path`` names the file concerned when the caller knows it better than the exception does; ``what`` says what
    was being done ("cannot write the key").
    """
    if isinstance(exc, EnvironmentFailure):
        return exc
    if isinstance(exc, OSError):
        where = path if path is not None else exc.filename
        reason = exc.strerror or str(exc) or type(exc).__name__
        text = f"{what}: {reason}" if what else reason
        return EnvironmentFailure(
            text, path=os.fsdecode(where) if where is not None else None, hint=_HINTS.get(exc.errno or 0)
        )
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.Error):
        message = str(exc)
        lowered = message.lower()
        fatal = isinstance(exc, duckdb.IOException | duckdb.FatalException)
        if not fatal and not any(word in lowered for word in _DUCKDB_IO_WORDS):
            return None
        found = _DUCKDB_FILE.search(message)
        where_text = os.fspath(path) if path is not None else (found.group(1) if found else None)
        reason = (found.group(2).strip() if found else "") or message
        text = f"{what}: {reason}" if what else f"the store could not be written or read: {reason}"
        hint = next((h for code, h in _HINTS.items() if os.strerror(code).lower() in lowered), None)
        return EnvironmentFailure(text, path=os.fsdecode(where_text) if where_text else None, hint=hint)
    return None


@contextlib.contextmanager
def failing_as_environment(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn an I/O failure inside the block into an :class:`EnvironmentFailure` naming ``path``."""
    try:
        yield
    except EnvironmentFailure:
        raise
    except Exception as exc:
        failure = environment_failure(exc, path=path, what=what)
        if failure is None:
            raise
        raise failure from exc


class _Taken(Exception):
    """An exclusive destination already exists (raised to the caller as ``FileExistsError``)."""


def temp_path(dest: Path, tag: str | None = None) -> Path:
    """A temporary name beside ``dest``: ``.<name>.<tag or random>.tmp``."""
    return dest.parent / f".{dest.name}.{tag or secrets.token_hex(6)}{TEMP_SUFFIX}"


def writes_in_place(dest: Path) -> bool:
    """True for a destination that exists and is neither a file nor a link (a device, a pipe): written in place."""
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def atomic_file(
    dest: Path, *, mode: int = 0o666, exclusive: bool = False, what: str = "cannot write"
) -> Iterator[BinaryIO]:
    """A binary file object whose content becomes ``dest`` when the block ends without an exception.

    Written to ``.<name>.<random>.tmp`` beside ``dest`` (created with ``O_EXCL``, ``mode`` less the umask), fsynced,
    then renamed over ``dest`` (a link there is replaced, not followed) or, with ``exclusive``, linked to ``dest``
    so an existing name is refused with ``FileExistsError``. Any failure removes the temporary file; an I/O failure
    is raised as :class:`EnvironmentFailure` naming ``dest``.
    """
    if writes_in_place(dest):
        with failing_as_environment(dest, what), open(dest, "wb") as fh:  # a device or a pipe
            yield fh
            fh.flush()
        return
    tmp = temp_path(dest)
    with failing_as_environment(dest, what):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        # The caller's writes, the flush and the close (which writes what is still buffered) all fail as
        # EnvironmentFailure naming ``dest``.
        with failing_as_environment(dest, what), os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with failing_as_environment(dest, what):
            if exclusive:
                try:
                    os.link(tmp, dest, follow_symlinks=False)
                except FileExistsError as exc:
                    raise _Taken(dest) from exc
                tmp.unlink()
            else:
                tmp.replace(dest)
    except _Taken:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dest)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(dest.parent)


def write_bytes(
    dest: Path, data: bytes, *, mode: int = 0o666, exclusive: bool = False, what: str = "cannot write"
) -> None:
    """Write ``data`` to ``dest`` whole or not at all (see :func:`atomic_file`)."""
    with atomic_file(dest, mode=mode, exclusive=exclusive, what=what) as fh:
        fh.write(data)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a platform that cannot open a directory is left alone."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temp_files(dest: Path, tag: str) -> list[Path]:
    """Remove ``.<name>.<tag>*`` leftovers beside ``dest`` (files and directories a killed writer left, named
    with ``tag``, e.g. a run id); returns what was removed."""
    removed: list[Path] = []
    prefix = f".{dest.name}.{tag}"
    try:
        entries = list(dest.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


class PreparedFile:
    """A file written and fsynced beside ``dest`` now, renamed over it later by :meth:`commit`.

    For an output that must not fail after a point of no return (a receipt copy written after a mirror's swap):
    everything that needs space or permission happens in :meth:`prepare`, before that point; :meth:`commit` is one
    rename. :meth:`discard` (or leaving a ``with`` block without committing) removes the temporary file.
    """

    def __init__(self, dest: Path, tmp: Path | None) -> None:
        self.dest = dest
        self.tmp = tmp
        self._device: BinaryIO | None = None
        self._data = b""

    @classmethod
    def prepare(cls, dest: Path, data: bytes, *, what: str = "cannot write") -> PreparedFile:
        """Write ``data`` beside ``dest`` now. A device or a pipe cannot be written ahead: it is opened now (so
        permission is checked) and written by :meth:`commit`."""
        if dest.is_dir() and not dest.is_symlink():
            raise EnvironmentFailure(f"{what}: it is a directory", path=str(dest))
        if writes_in_place(dest):
            with failing_as_environment(dest, what):
                device = open(dest, "wb")  # noqa: SIM115 - closed by commit() or discard()
            prepared = cls(dest, None)
            prepared._device, prepared._data = device, data
            return prepared
        tmp = temp_path(dest)
        try:
            with failing_as_environment(dest, what):
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return cls(dest, tmp)

    def commit(self, *, what: str = "cannot write") -> Path:
        """Rename the prepared file over ``dest`` (a link there is replaced, not followed)."""
        if self._device is not None:
            with failing_as_environment(self.dest, what), self._device as device:
                self._device = None
                device.write(self._data)
            return self.dest
        if self.tmp is None:
            raise ValueError("already committed or discarded")
        with failing_as_environment(self.dest, what):
            self.tmp.replace(self.dest)
        self.tmp = None
        fsync_dir(self.dest.parent)
        return self.dest

    def discard(self) -> None:
        if self._device is not None:
            with contextlib.suppress(OSError):
                self._device.close()
            self._device = None
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None

    def __enter__(self) -> PreparedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
