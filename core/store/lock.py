"""The store's one-writer lock: an ``flock`` on ``store.lock`` that records the holder's PID.

A reader takes the lock shared through a read-only descriptor when the home is read-only, so a read-only home
can still be read (``data stats``, ``export runs``...).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from core.errors import EnvironmentFailure, StoreLockedError

#: Why a lock file cannot be opened for writing on a home the user may only read.
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StoreLock:
    """Exclusive (writer) or shared (reader) advisory lock on the store.

    A second writer, or a reader while a writer is active, fails at once with the PID of the
    process holding the lock rather than waiting silently.
    """

    def __init__(self, path: Path, *, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if self.exclusive or exc.errno not in _READ_ONLY:
                raise EnvironmentFailure(f"cannot open the store lock: {exc.strerror}", path=str(self.path)) from exc
            # A reader of a read-only home: a shared flock needs only a read-only descriptor. With no lock file to
            # open at all, no writer can have used this home; DuckDB's own lock on the database file still keeps a
            # read-only connection from meeting a writer.
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return self
            except OSError as again:
                raise EnvironmentFailure(
                    f"cannot open the store lock: {again.strerror}", path=str(self.path)
                ) from again
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"PID {holder}" if holder else "another process"
            raise StoreLockedError(
                f"store is locked by {who}",
                path=str(self.path.parent),
                hint="wait for that stella command to finish, or use another --home",
            ) from None
        if self.exclusive:
            with contextlib.suppress(OSError):  # the holder's PID is a courtesy; a full disk must not stop here
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        if self.exclusive:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
