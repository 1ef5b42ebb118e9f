"""The server's access to the store: one shared writer connection while anything uses it, closed when idle.

The store has one writer at a time (an ``flock``), and a reader cannot open it while a writer holds it, even in
the same process. So the server opens it once, writable, and every request and every build in a worker thread
takes its own cursor of that one connection (as the run engine expects): a request that only reads never waits
for a build. When nothing uses it, the store is closed, so the CLI can use the home between API calls.

A service that opens the store itself (timeline, evidence) runs with :meth:`StoreHolder.alone`: only when no
request and no build holds the shared connection; while a build runs it is refused at once (503, Retry-After).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from core.errors import StoreLockedError
from core.home import Home
from core.store import Store


class StoreHolder:
    """A reference-counted shared :class:`Store` of one home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._lock = threading.Condition()
        self._store: Store | None = None
        self._users = 0
        self._alone = False

    @contextlib.contextmanager
    def use(self) -> Iterator[Store]:
        """The shared store, opened if nothing holds it; take cursors from it (``store.cursor()``)."""
        with self._lock:
            while self._alone:
                self._lock.wait()
            if self._store is None:
                self._store = Store.open(self.home)
            self._users += 1
            store = self._store
        try:
            yield store
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._store is not None:
                    self._store.close()
                    self._store = None
                self._lock.notify_all()

    @contextlib.contextmanager
    def alone(self, wait: float = 5.0) -> Iterator[None]:
        """Nothing of the server holds the store inside this block (for services that open it themselves)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._users == 0 and not self._alone, timeout=wait):
                raise StoreLockedError(
                    "the store is busy with an export build in this server; try again when it ends",
                    path=str(self.home.root),
                )
            self._alone = True
        try:
            yield
        finally:
            with self._lock:
                self._alone = False
                self._lock.notify_all()
