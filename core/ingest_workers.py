"""Worker processes that parse a large import's batches while the importer writes (see :mod:`core.ingest`).

Each worker is a fresh interpreter (the ``spawn`` start method: nothing is forked from a process that runs DuckDB's
threads) that receives the :class:`core.ingest.ParseJob` once, then batches of documents, and sends back each
batch's :class:`core.ingest.ParsedBatch`. Two one-way pipes per worker, no shared queues, locks or semaphores.

The workers never outlive the importer: they ignore Ctrl-C (the importer decides what a cancel means and stops
them), a worker whose importer closed its pipe or died (the kernel closes the pipe then) exits at once, and the
importer terminates them when it stops early. A worker writes nothing to disk.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection, wait
from typing import Any

from core.errors import EnvironmentFailure

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
from core.ingest import Document, ParsedBatch, ParseJob, parse_documents

#: Batches in flight per worker: one being parsed, one waiting, so a worker never idles while the writer writes.
PER_WORKER = 2


class _Crash:
    """An unexpected exception in a worker (a defect, not a rejected document), carried back to the importer."""

    def __init__(self, exc: BaseException) -> None:
        self.text = "".join(traceback.format_exception(exc))
        try:
            import pickle

            pickle.dumps(exc)
        except Exception:
            self.exc: BaseException | None = None
        else:
            self.exc = exc


class ParserPool:
    """``workers`` parser processes; the importer submits batches by number and collects replies as they come."""

    def __init__(self, workers: int, job: ParseJob) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.window = workers * PER_WORKER
        self._tasks: list[Connection] = []
        self._replies: list[Connection] = []
        self._load: list[int] = []
        self._owner: dict[int, int] = {}
        self._procs: list[multiprocessing.process.BaseProcess] = []
        try:
            for number in range(workers):
                task_r, task_w = ctx.Pipe(duplex=False)
                reply_r, reply_w = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_serve,
                    args=(task_r, reply_w, job),
                    name=f"stella-import-{number}",
                    daemon=True,
                )
                proc.start()
                task_r.close()
                reply_w.close()
                _widen(task_w)
                _widen(reply_r)
                self._procs.append(proc)
                self._tasks.append(task_w)
                self._replies.append(reply_r)
                self._load.append(0)
        except BaseException:
            self.close(stop=True)
            raise

    def submit(self, seq: int, payload: tuple[Sequence[Document], datetime]) -> None:
        """Send batch ``seq`` to the least loaded worker (its reader takes it at once, even while it parses)."""
        worker = min(range(len(self._load)), key=self._load.__getitem__)
        try:
            self._tasks[worker].send((seq, payload))
        except OSError:
            self._died()
        self._load[worker] += 1
        self._owner[seq] = worker

    def collect(self, timeout: float) -> list[tuple[int, ParsedBatch]]:
        """The replies that arrive within ``timeout`` seconds (0: only those already here)."""
        ready = wait([*self._replies, *(p.sentinel for p in self._procs)], timeout)
        out: list[tuple[int, ParsedBatch]] = []
        for conn in ready:
            if not isinstance(conn, Connection):
                continue
            try:
                seq, reply = conn.recv()
            except (EOFError, OSError):
                self._died()
            if isinstance(reply, _Crash):
                if reply.exc is not None:
                    raise reply.exc
                raise RuntimeError(f"an import worker failed:\n{reply.text}")
            self._load[self._owner.pop(seq)] -= 1
            out.append((seq, reply))
        if not out and any(not p.is_alive() for p in self._procs):
            self._died()
        return out

    def _died(self) -> None:
        codes = ", ".join(str(p.exitcode) for p in self._procs if not p.is_alive())
        raise EnvironmentFailure(
            f"an import worker process stopped unexpectedly (exit code {codes}); nothing of its batch was written",
            hint="the machine may be out of memory; import again (what was imported stays)",
        )

    def close(self, *, stop: bool) -> None:
        """End the workers: let them exit (their pipe closes), or, with ``stop``, terminate them now."""
        for conn in [*self._tasks, *self._replies]:
            conn.close()
        for proc in self._procs:
            if stop:
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
            with contextlib.suppress(ValueError):
                proc.close()


#: Pipe capacity asked for (Linux; at most /proc/sys/fs/pipe-max-size, 1 MiB by default). A batch is megabytes:
#: with the default 64 KiB a worker's reader, which shares the GIL with the parser, would take it in 70 pieces.
PIPE_BYTES = 1 << 20


def _widen(conn: Connection) -> None:
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(conn.fileno(), setpipe, PIPE_BYTES)


def _serve(tasks: Connection, replies: Connection, job: ParseJob) -> None:
    """A worker's life: parse each batch it is sent, reply, and exit when the importer's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the importer handles it
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        # Always reading, so the importer's send never waits on a worker that is busy sending a reply.
        while True:
            try:
                inbox.put(tasks.recv())
            except (EOFError, OSError):
                os._exit(0)  # the importer closed the pipe, or died: nothing here is worth finishing

    threading.Thread(target=read, name="stella-import-reader", daemon=True).start()
    gc.freeze()  # the modules and schemas just loaded live as long as the worker
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    while True:
        seq, (documents, imported_at) = inbox.get()
        try:
            reply: ParsedBatch | _Crash = parse_documents(job, documents, imported_at, in_worker=True)
        except BaseException as exc:
            reply = _Crash(exc)
        del documents
        try:
            replies.send((seq, reply))
        except OSError:
            os._exit(0)
