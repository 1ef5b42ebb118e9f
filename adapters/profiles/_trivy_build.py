"""Build ``trivy.db`` from a stream of advisory records in flat memory, on both cores.

:class:`~adapters.profiles._trivy_mapping.TrivyDbModel` holds every package entry and vulnerability of the run
until the tree is written; at 200,000 advisories that is most of a gigabyte. Here each mapped advisory becomes flat
entries, ``(bucket, package, ID, n, value)`` and ``(ID, n, details)`` where ``n`` is the advisory's position in
the run, collected in a buffer of bounded size that is sorted and spilled to a scratch file when full (an external
merge sort). The sorted runs are merged, each key's values merged in input order (``n``) exactly as the model
merges them (:func:`merge_values`, :func:`merge_details`), and the result streamed into
:func:`core.bbolt.write_bbolt_entries` in key order. The bytes are those of the model written with
:func:`core.bbolt.write_bbolt` (tests compare the two on real records, with and without the worker).

Mapping costs more than reading the rows, so a large run is cut in two parts of input ordinals
(:mod:`adapters.profiles._trivy_rows` writes each as Arrow files in the scratch directory): a worker process maps
the second while this one reads and maps the first. The worker (a fresh interpreter, the ``spawn`` start method, as
the importer's: nothing is forked from a process that runs DuckDB's threads) reads only its part's files and writes
only its own sorted runs beside them; ``n`` orders equal keys across both sides' runs. It never touches the store,
ignores SIGINT (this process decides about cancelling, and stops it), and is stopped when the build ends early.
"""

from __future__ import annotations

import gc
import heapq
import marshal
import multiprocessing
import signal
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from adapters.profiles._trivy_mapping import (
    MappingCounts,
    data_source_json,
    detail_json,
    map_advisory,
    merge_details,
    merge_values,
    value_json,
    value_state,
)
from adapters.profiles._trivy_rows import Part, part_records
from core.bbolt import BboltWriteResult, Entries, write_bbolt_entries
from core.errors import Cancelled, EnvironmentFailure

#: Entries held before a sorted run goes to disk, per stream and side: bounds memory whatever the run's size.
RUN_ENTRIES = 20_000
#: Entries per marshal block in a run file (one block per run is in memory while merging).
BLOCK = 2048
#: Records mapped between two progress reports (and cancel checks).
REPORT_EVERY = 500
#: Inputs from which a run is cut in two and the second half mapped by a worker process (below: one process).
PARALLEL_FROM = 4000
#: Positions of part ``p``'s advisories start at ``p << PART_SHIFT``: input order across parts.
PART_SHIFT = 40


def _text(value: str) -> bytes:
    """``value`` as a sort key part: UTF-8 (whose byte order is the code point order), each NUL escaped as NUL 1,
    then NUL NUL; so the concatenated parts sort as the tuple of the strings would, whatever they hold."""
    data = value.encode()
    if b"\0" in data:
        data = data.replace(b"\0", b"\0\1")
    return data + b"\0\0"


def _untext(part: bytes) -> bytes:
    """The UTF-8 bytes of a :func:`_text` part (given without its NUL NUL end)."""
    return part.replace(b"\0\1", b"\0") if b"\0" in part else part


#: The trailer of a package entry: the ends of its bucket, package and ID parts and of its JSON value.
_PACKAGE_TRAILER = struct.Struct("<IIII")
#: The trailer of a vulnerability entry: the end of its ID part.
_VULN_TRAILER = struct.Struct("<I")


class _SortedRuns:
    """An external merge sort of entries: each entry is one bytes object whose leading sort key (made of
    :func:`_text` parts and the advisory's position ``n``, 8 bytes big-endian) is unique, so plain byte order
    sorts the entries and equal keys never meet."""

    def __init__(self, scratch: Path, name: str, limit: int) -> None:
        self._scratch = scratch
        self._name = name
        self._limit = limit
        self._buffer: list[bytes] = []
        self.files: list[Path] = []

    def add(self, entry: bytes) -> None:
        self._buffer.append(entry)
        if len(self._buffer) >= self._limit:
            self.spill()

    def spill(self) -> None:
        """Write the buffer, sorted, as one more run file."""
        if not self._buffer:
            return
        self._buffer.sort()
        path = self._scratch / f"{self._name}-{len(self.files)}.run"
        with path.open("wb") as fh:
            for start in range(0, len(self._buffer), BLOCK):
                # Length-prefixed blocks: marshal.load on a file reads it in tiny pieces, loads on bytes does not.
                block = marshal.dumps(self._buffer[start : start + BLOCK])
                fh.write(len(block).to_bytes(8, "little"))
                fh.write(block)
        self.files.append(path)
        self._buffer = []

    @staticmethod
    def _read(path: Path) -> Iterator[bytes]:
        with path.open("rb") as fh:
            while size := fh.read(8):
                yield from marshal.loads(fh.read(int.from_bytes(size, "little")))  # noqa: S302 (written just before)
        path.unlink()

    def merged(self, more: list[Path]) -> Iterator[bytes]:
        """Every entry, sorted, with the runs in ``more`` (the worker's); run files are removed once read."""
        if not self.files and not more:
            self._buffer.sort()
            buffer, self._buffer = self._buffer, []
            return iter(buffer)
        self.spill()
        return heapq.merge(*(self._read(path) for path in self.files + more))


class _Mapper:
    """One side's mapping: counts, the buckets seen, and the sorted runs of its entries."""

    def __init__(self, scratch: Path, prefix: str, limit: int) -> None:
        self.counts = MappingCounts()
        self.buckets: set[str] = set()
        self.packages = _SortedRuns(scratch, f"{prefix}packages", limit)
        self.vulns = _SortedRuns(scratch, f"{prefix}vulnerabilities", limit)

    def map(self, n: int, record: Mapping[str, Any]) -> None:
        mapped = map_advisory(record, self.counts)
        if mapped is None:
            return
        position = n.to_bytes(8, "big")
        keys = [_text(key) for key in mapped.keys]
        add = self.packages.add
        join = b"".join
        pack = _PACKAGE_TRAILER.pack
        for target, value in mapped.values:
            self.buckets.add(target.bucket)
            bucket = _text(target.bucket)
            where = bucket + _text(target.package)
            # Rendered now, while mapping: most package-ID pairs come from one record, and then this is the value;
            # the value's state follows, for the few pairs that several records name (merge_values).
            payload = value_json(value)
            state = orjson.dumps(value_state(value))  # as JSON: faster than marshal both ways
            bucket_end, where_end, size = len(bucket), len(where), len(payload)
            for key in keys:
                head_end = where_end + len(key)
                add(
                    join(
                        (
                            where,
                            key,
                            position,
                            payload,
                            state,
                            pack(bucket_end, where_end, head_end, head_end + 8 + size),
                        )
                    )
                )
        detail = detail_json(mapped.detail)
        for key in keys:
            self.vulns.add(join((key, position, detail, _VULN_TRAILER.pack(len(key)))))

    def map_part(self, part: Part, index: int, report: Callable[[list[str]], None]) -> None:
        """Map every advisory of ``part`` (the ``index``-th of the run); ``report(details)`` is called every
        :data:`REPORT_EVERY` records and at the end with the input documents finished since the last call, each
        named by its last advisory's ID (what the payload phase's progress shows)."""
        document: str | None = None
        advisory_id = ""
        finished: list[str] = []
        base = index << PART_SHIFT
        for n, record in enumerate(part_records(part, tuples=True)):
            if record["documentSha256"] != document:
                if document is not None:
                    finished.append(advisory_id)
                document = record["documentSha256"]
            advisory_id = str(record["advisoryId"])
            self.map(base + n, record)
            if n % REPORT_EVERY == REPORT_EVERY - 1:
                report(finished)
                finished = []
        if document is not None:
            finished.append(advisory_id)
        report(finished)


def _worker(conn: Any, scratch: Path, limit: int) -> None:
    """The worker process: wait for its part, map it, reporting progress, then send its counts and run files."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # as _gc_paused: this process only maps
    try:
        _, part, index = conn.recv()  # ("part", part, index), sent once this process has read it
        mapper = _Mapper(scratch, f"w{index}-", limit)
        mapper.map_part(part, index, lambda finished: conn.send(("progress", finished)))
        mapper.packages.spill()
        mapper.vulns.spill()
        conn.send(("ok", (mapper.counts, mapper.buckets, mapper.packages.files, mapper.vulns.files)))
    except (EOFError, BrokenPipeError):
        return  # the parent is gone, or ended the build before sending a part
    except BaseException as exc:  # reported to the parent, which raises it as its own failure
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def worker_split(end: int) -> int:
    """Where a run of ``end`` inputs (at least :data:`PARALLEL_FROM`) is cut: this process maps the inputs before
    it, the worker those from it on. Half each: this process also reads both parts from the store, but the worker,
    started first, loads meanwhile and maps slower while DuckDB's threads run (a 200k export with 52% for the
    worker waited 1.6 s for it; 20k, py-spy: the same)."""
    return end // 2


class TrivyDbBuilder:
    """Maps the parts of a run (:meth:`map_part`, :meth:`finish`) and writes ``trivy.db`` (:meth:`write`) without
    holding the run in memory.

    ``report(detail)`` is called once per input document mapped (``detail``: its last advisory's ID), on either
    side; ``is_cancelled`` is checked at each report and while waiting for the worker. Part 0 is mapped here; a
    later part (the run's second half) goes to a worker process (with ``worker``; it is mapped here otherwise).
    Give the worker's part first, so that it maps while this process reads its own. Use the builder as a context
    manager, so the worker is stopped on every path.
    """

    def __init__(
        self,
        scratch: Path,
        *,
        report: Callable[[str], None] = lambda detail: None,
        is_cancelled: Callable[[], bool] = lambda: False,
        run_entries: int = RUN_ENTRIES,
        worker: bool = True,
    ) -> None:
        self._scratch = scratch
        self._report = report
        self._is_cancelled = is_cancelled
        self._local = _Mapper(scratch, "", run_entries)
        self._limit = run_entries
        self._use_worker = worker
        self._process: Any = None
        self._conn: Any = None
        self.counts = self._local.counts
        self._buckets: set[str] = set()
        self._worker_runs: tuple[list[Path], list[Path]] = ([], [])
        self._finished = False
        self._sent = False  # a part was sent to the worker
        self._result: tuple[Any, ...] | None = None  # the worker's counts and runs, once it sent them
        self.vulnerabilities = 0  # distinct IDs, known once written
        self.package_count = 0  # distinct (bucket, package), known once written

    def __enter__(self) -> TrivyDbBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker, if one runs (its run files are in the scratch directory, which the caller removes)."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one runs."""
        return None if self._process is None else int(self._process.pid)

    @property
    def source_buckets(self) -> int:
        """Root buckets holding packages (every one is named in ``data-source``); known once written."""
        return len(self._buckets)

    def start_worker(self) -> None:
        """Start the worker process now, if the builder uses one: its interpreter and imports then load while
        this process reads the parts; the next later part given to :meth:`map_part` goes to it."""
        if not self._use_worker or self._process is not None:
            return
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        process = context.Process(
            target=_worker, args=(child, self._scratch, self._limit), name="stella-trivy-map", daemon=True
        )
        process.start()
        self._process = process
        child.close()  # the worker holds the only other end: its exit, however it comes, reads as the end of the pipe

    def map_part(self, part: Part, index: int) -> None:
        """Map the ``index``-th part of the run: here for part 0, in the worker for a later one when it can."""
        if index == 0 or not self._use_worker or self._sent:
            with _gc_paused():
                self._local.map_part(part, index, self._local_report)
            return
        self.start_worker()
        try:
            self._conn.send(("part", part, index))
        except (BrokenPipeError, ConnectionResetError):
            self._receive()  # raises: the worker ended (an EOF) or failed
        self._sent = True

    def _local_report(self, finished: list[str]) -> None:
        self._progress(finished)
        if self._conn is not None:
            while self._result is None and self._conn.poll():
                self._result = self._receive()

    def _progress(self, finished: list[str]) -> None:
        for detail in finished:
            self._report(detail)
        if self._is_cancelled():
            raise Cancelled("export cancelled")

    def _receive(self) -> tuple[Any, ...] | None:
        """Handle one message of the worker: progress (None), its result, or its failure (raised)."""
        try:
            message = self._conn.recv()
        except EOFError:
            self._process.join(5)
            raise EnvironmentFailure(
                f"the Trivy mapping worker (pid {self._process.pid}) ended unexpectedly "
                f"(exit code {self._process.exitcode})"
            ) from None
        if message[0] == "progress":
            self._progress(message[1])
            return None
        if message[0] == "error":
            raise EnvironmentFailure(f"the Trivy mapping worker failed: {message[1]}")
        return tuple(message[1])

    def finish(self) -> None:
        """Wait for the worker's part (reporting its progress, checking for cancel) and take its runs."""
        if self._finished:
            return
        self._finished = True
        self._buckets = set(self._local.buckets)
        if self._process is None:
            return
        if not self._sent:  # started, but the run had no part for it
            self.close()
            return
        while self._result is None:
            if self._conn.poll(0.2):
                self._result = self._receive()
            elif self._is_cancelled():
                raise Cancelled("export cancelled")
        counts, buckets, package_runs, vuln_runs = self._result
        self.counts.advisories += counts.advisories
        self.counts.withdrawn += counts.withdrawn
        self.counts.unmapped += counts.unmapped
        self._buckets |= buckets
        self._worker_runs = (package_runs, vuln_runs)
        self._process.join()
        self._process = None

    def write(self, path: Path) -> BboltWriteResult:
        """Write ``trivy.db`` at ``path``: the root buckets in byte order, each streamed from the sorted runs."""
        self.finish()
        with _gc_paused():
            return self._write(path)

    def _write(self, path: Path) -> BboltWriteResult:
        is_cancelled = self._is_cancelled
        source = data_source_json()
        buckets = sorted(b.encode() for b in self._buckets)
        packages = _PackageEntries(self._local.packages.merged(self._worker_runs[0]), is_cancelled)
        vulns = self._local.vulns.merged(self._worker_runs[1])

        def vulnerability_bucket() -> Entries:
            trailer = _VULN_TRAILER
            size = trailer.size
            group = b""
            details: list[bytes] = []
            steps = 0
            for entry in vulns:
                (end,) = trailer.unpack_from(entry, len(entry) - size)
                if entry[:end] != group:
                    if details:
                        self.vulnerabilities += 1
                        yield _untext(group[:-2]), details[0] if len(details) == 1 else merge_details(details)
                    group = entry[:end]
                    details = []
                    steps += 1
                    if steps % 4096 == 0 and is_cancelled():
                        raise Cancelled("export cancelled")
                details.append(entry[end + 8 : -size])
            if details:
                self.vulnerabilities += 1
                yield _untext(group[:-2]), details[0] if len(details) == 1 else merge_details(details)

        def root() -> Entries:
            for name in sorted({*buckets, b"data-source", b"vulnerability"}):
                if name == b"data-source":
                    yield name, ((bucket, source) for bucket in buckets)
                elif name == b"vulnerability":
                    yield name, vulnerability_bucket()
                else:
                    if packages.bucket != name:  # both are in byte order: a mismatch is a bug here
                        raise AssertionError(f"package entries of {packages.bucket!r} where {name!r} was due")
                    yield name, packages.bucket_entries()

        result = write_bbolt_entries(path, root())
        self.package_count = packages.count
        return result


class _PackageEntries:
    """The merged package entries as nested bbolt buckets (root bucket -> package -> ID -> value), each ID's
    values merged in input order (:func:`merge_values`) when several records name it."""

    def __init__(self, entries: Iterator[bytes], is_cancelled: Callable[[], bool]) -> None:
        self._entries = entries
        self._is_cancelled = is_cancelled
        self.count = 0  # distinct (bucket, package)
        self._steps = 0
        self._where = b""  # the current entry's bucket and package parts
        self.bucket = b""  # the current entry's bucket, b"" at the end
        self._package = b""
        self._key = b""
        self._value = b""
        self._next: bytes | None = next(entries, None)
        self._advance()

    def _advance(self) -> None:
        """Take the next distinct (bucket, package, ID) and its value; ``bucket`` is b"" after the last."""
        entry = self._next
        if entry is None:
            self.bucket = self._where = b""
            return
        self._steps += 1
        if self._steps % 4096 == 0 and self._is_cancelled():
            raise Cancelled("export cancelled")
        trailer = _PACKAGE_TRAILER
        size = trailer.size
        bucket_end, where_end, head_end, value_end = trailer.unpack_from(entry, len(entry) - size)
        head = entry[:head_end]
        following = next(self._entries, None)
        if following is not None and following.startswith(head):  # the parts end in NUL NUL: same bucket, package, ID
            states = [orjson.loads(entry[value_end:-size])]
            while following is not None and following.startswith(head):
                (_, _, _, end) = trailer.unpack_from(following, len(following) - size)
                states.append(orjson.loads(following[end:-size]))
                following = next(self._entries, None)
            self._value = merge_values(states)
        else:
            self._value = entry[head_end + 8 : value_end]
        self._next = following
        if entry[:where_end] != self._where:
            self._where = entry[:where_end]
            self.bucket = _untext(entry[: bucket_end - 2])
            self._package = _untext(entry[bucket_end : where_end - 2])
        key = entry[where_end : head_end - 2]
        self._key = key.replace(b"\0\1", b"\0") if b"\0" in key else key  # _untext, inline: once per entry

    def bucket_entries(self) -> Entries:
        """The packages of the current root bucket, each a bucket of its IDs."""
        bucket = self.bucket
        while self.bucket == bucket:
            self.count += 1
            yield self._package, self._package_entries()

    def _package_entries(self) -> Entries:
        where = self._where
        while self._where == where:
            yield self._key, self._value
            self._advance()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while (and on again if it was): mapping and merging make millions of
    short-lived tuples and no cycles, and its collections, which walk every object alive, cost a quarter of the
    build."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
