"""A receiver's mirror directory on disk: its links and states, the import lock, recovery and quarantine.

A mirror directory::

    current -> states/<name>       the state being served (a relative symlink, swapped atomically)
    previous -> states/<name>      the state before the last import or rollback (for ``mirror rollback``)
    states/<name>/tree/            the mirror tree: manifests/, data/, indexes/, tuf/metadata/
    states/<name>/meta/            export.json and its signature, the signed import receipt, and tuf/:
                                   the TUF metadata this state's import trusted (rollback protection)
    receipts/                      every receipt written, oldest first
    trust-root.json                the pinned TUF root; trust-changes.jsonl: every pin and re-pin
                                   (``services.mirror_trust``)
    quarantine/<time>-<bundle>/    bundles that failed, with reason.json
    .lock, .staging-*              the import lock; work in progress (removed by the next import)

A link is replaced by creating ``.<link>.new`` beside it and renaming it over the link (``rename(2)`` is atomic),
so a process killed at any point leaves the old target or the new one, never a missing link. Whatever an
interrupted import or rollback left (staging directories, half-made links, states no link names) is removed by
:meth:`MirrorDir.recover` the next time the lock is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from core.atomic import PreparedFile, failing_as_environment
from core.clock import utcnow
from core.errors import EnvironmentFailure, StellaError, StoreLockedError

#: Named points of an import where a crash-safety test may stop the process (see ``services.mirror_import``).
FAULT_POINTS = ("after-extract", "after-verify", "before-swap", "mid-swap", "after-swap")
#: A hook called with each point of :data:`FAULT_POINTS` as an import passes it; tests kill the process there.
Faults = Callable[[str], None]


class MirrorDir:
    """A receiver's mirror directory (see the module docstring for its layout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current_link = path / "current"
        self.previous_link = path / "previous"
        self.states = path / "states"
        self.receipts = path / "receipts"
        self.quarantine_dir = path / "quarantine"

    # -- reading ---------------------------------------------------------------------------------
    def _target(self, link: Path) -> Path | None:
        if not link.is_symlink():
            return None
        target = self.path / link.readlink()
        return target if target.is_dir() else None

    def current(self) -> Path | None:
        """The current state's directory (``states/<name>``), or None for an empty mirror."""
        return self._target(self.current_link)

    def previous(self) -> Path | None:
        """The previous state's directory, or None when there is none to roll back to."""
        return self._target(self.previous_link)

    def quarantined(self) -> int:
        """How many bundles were quarantined here."""
        return len(list(self.quarantine_dir.iterdir())) if self.quarantine_dir.is_dir() else 0

    # -- locking and recovery ----------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the mirror's lock (or raise :class:`StoreLockedError` naming the holder), after recovering."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot open the mirror directory: {exc.strerror}", path=str(self.path)) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                raise StoreLockedError(
                    f"mirror is locked by PID {holder}", path=str(self.path), hint="wait for that import to finish"
                ) from None
            with contextlib.suppress(OSError):  # the holder's PID is a courtesy; a full disk must not stop here
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            self.recover()
            yield
        finally:
            os.close(fd)

    def recover(self) -> None:
        """Remove what an interrupted import or rollback left: staging, half-made links, unreferenced states."""
        for leftover in self.path.glob(".staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if self.receipts.is_dir():  # receipt copies prepared before a swap that never came
            for leftover in self.receipts.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        for name in (".current.new", ".previous.new"):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        keep = {p.resolve() for p in (self.current(), self.previous()) if p is not None}
        if self.states.is_dir():
            for state in self.states.iterdir():
                if state.resolve() not in keep:
                    shutil.rmtree(state, ignore_errors=True)

    # -- changing ----------------------------------------------------------------------------------
    def staging(self) -> Path:
        """A fresh name for a staging directory (on the mirror's file system, so it can be renamed in)."""
        return self.path / f".staging-{os.getpid()}-{secrets.token_hex(4)}"

    def point(self, link: Path, state: Path, *, faults: Faults | None = None) -> None:
        """Make ``link`` (``current`` or ``previous``) name ``state``, atomically; ``faults`` hears ``mid-swap``
        between the new link's creation and its rename over the old one."""
        tmp = self.path / f".{link.name}.new"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.path.relpath(state, self.path))
        if faults is not None:
            faults("mid-swap")
        tmp.replace(link)
        fsync_dir(self.path)

    def prepare_receipt_log(self, receipt: bytes, imported_at: str, sequence: int) -> PreparedFile:
        """The copy of a signed import receipt kept in ``receipts/`` (named so that names sort oldest first),
        written now and put in place by its ``commit()``."""
        log = self.receipts / f"{imported_at.replace(':', '')}-{sequence:06d}.json"
        with failing_as_environment(self.receipts, "cannot write the receipt log"):
            self.receipts.mkdir(exist_ok=True)
        return PreparedFile.prepare(log, receipt, what="cannot write the receipt log")

    def quarantine(self, bundle: Path, error: StellaError) -> Path:
        """Keep a failed bundle (hard-linked, else copied) with ``reason.json``; returns where."""
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        where = self.quarantine_dir / f"{stamp}-{secrets.token_hex(3)}-{bundle.name}"
        where.mkdir(parents=True, exist_ok=True)
        target = where / bundle.name
        try:
            os.link(bundle, target)
        except OSError:
            with contextlib.suppress(OSError):
                shutil.copyfile(bundle, target)
        reason = {"bundle": str(bundle), "quarantinedAt": stamp, "error": error.to_dict()}
        (where / "reason.json").write_bytes(orjson.dumps(reason, option=orjson.OPT_INDENT_2) + b"\n")
        return where


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Make every file and directory under ``root`` durable."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
