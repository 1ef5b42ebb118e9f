"""The server's access to the store: one shared writer connection while anything uses it, closed once idle.

The store has one writer at a time (an ``flock``), and a reader cannot open it while a writer holds it, even in
the same process. So the server opens it once, writable, and every request and every build in a worker thread
takes its own cursor of that one connection (as the run engine expects): a request that only reads never waits
for a build. When nothing has used it for ``linger`` seconds (1 s), the store is closed, so the CLI can use the home
between bursts of API calls.

Why the linger: opening the store (DuckDB's connect, the schema-version check) costs tens to hundreds of
milliseconds, far more than answering a request. Closed the moment the last user let go, it was opened again by
nearly every request of a client that sends them one after another (a download loop, an SSE stream polling its run
four times a second): benchmarks/bench_api.py measured the downloads phase at a third of a bare file server's rate,
most of the server's time in ``Store.open`` and ``Store.close``.

A service that opens the store itself (timeline, evidence) runs with :meth:`StoreHolder.alone`: only when no
request and no build holds the shared connection (a lingering one is closed first); while a build runs it is
refused at once (503, Retry-After).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Iterator

from core.errors import StoreLockedError
from core.home import Home
from core.store import Store

#: Seconds an unused store stays open before it is closed (0: closed as soon as nothing uses it).
LINGER = 1.0


class StoreHolder:
    """A reference-counted shared :class:`Store` of one home, closed ``linger`` seconds after its last use."""

    def __init__(self, home: Home, *, linger: float = LINGER) -> None:
        self.home = home
        self.linger = linger
        self._lock = threading.Condition()
        self._store: Store | None = None
        self._users = 0
        self._alone = False
        self._idle_since = 0.0
        self._closer: threading.Thread | None = None
        self.opened = 0  # how many times the store was opened (the tests read it)
        atexit.register(_close_at_exit, weakref.ref(self))

    @contextlib.contextmanager
    def use(self) -> Iterator[Store]:
        """The shared store, opened if nothing holds it; take cursors from it (``store.cursor()``)."""
        with self._lock:
            while self._alone:
                self._lock.wait()
            if self._store is None:
                self._store = Store.open(self.home)
                self.opened += 1
            self._users += 1
            store = self._store
        try:
            yield store
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    if self.linger <= 0:
                        self._close()
                    else:
                        self._idle_since = time.monotonic()
                        self._start_closer()
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
            self._close()  # a lingering connection would lock the service out
            self._alone = True
        try:
            yield
        finally:
            with self._lock:
                self._alone = False
                self._lock.notify_all()

    def close(self) -> None:
        """Close the store now if nothing uses it (at exit; a user's store is closed when it lets go)."""
        with self._lock:
            if self._users == 0:
                self._close()

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _start_closer(self) -> None:
        if self._closer is None:  # under the lock; the thread clears it under the lock as it ends
            self._closer = threading.Thread(target=self._close_when_idle, name="stella-api-store", daemon=True)
            self._closer.start()

    def _close_when_idle(self) -> None:
        """Close the store once it has been unused for ``linger`` seconds; the thread ends with it closed."""
        with self._lock:
            try:
                while self._store is not None:
                    if self._users == 0:
                        left = self._idle_since + self.linger - time.monotonic()
                        if left <= 0:
                            self._close()
                            self._lock.notify_all()
                            break
                        self._lock.wait(left)
                    else:
                        self._lock.wait()
            finally:
                self._closer = None


def _close_at_exit(ref: weakref.ref[StoreHolder]) -> None:
    holder = ref()
    if holder is not None:
        holder.close()
