"""The planner and the run engine: pinned parameters, states and events, failure, cancel, limits, retry, download.

The builder here is a small real function (it concatenates the inputs' raw bytes after a header naming the
bundle's run id and createdAt), so what is asserted is the engine: what it hands the builder, what it records,
and what it leaves on disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from adapters.sources.registry import SOURCES
from core.errors import BadInputError, Cancelled, ExitCode, IntegrityError, NotFoundError, PolicyRefusal, UsageError
from core.home import Home
from core.ingest import Importer
from core.keys import KeyAlgorithm, KeyStore
from core.planner import plan_run
from core.profiles import ProfileStore
from core.progress import CancelToken, CheckObserver, Observer
from core.runs import CANCEL_POLL_INTERVAL, Artifact, ExportRun, RunEngine, RunState, current_user, request_cancel
from core.selectors import InputRef, Selectors, parse_selectors, resolve_inputs
from core.store import Store

SAMPLES = Path(__file__).parent.parent.parent / "samples"
Builder = Callable[[ExportRun, Iterator[InputRef], Observer, CancelToken], Artifact]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    home = Home(tmp_path / "home")
    with Store.open(home) as s:
        Importer(s, SOURCES, tenant="acme").run([SAMPLES])
        KeyStore(home).generate("signer", KeyAlgorithm.ECDSA_P256)
        yield s


def concat_builder(
    store: Store, *, fail_after: int | None = None, on_unit: Callable[[int], None] | None = None
) -> Builder:
    """Write header + every input's raw bytes to run.out_path; optionally fail or call back per unit."""

    def build(run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken) -> Artifact:
        digest = hashlib.sha256()
        with run.out_path.open("wb") as fh:
            header = f"{run.bundle_run_id} {run.bundle_created_at_text}\n".encode()
            fh.write(header)
            digest.update(header)
            for n, ref in enumerate(inputs):
                if on_unit is not None:
                    on_unit(n)
                if cancel.is_cancelled():
                    # Deliberately leaves its partial file: the engine must not.
                    raise Cancelled("export cancelled")
                if fail_after is not None and n == fail_after:
                    raise BadInputError("document is damaged", path=ref.document_id)
                data = store.raw_bytes(run.tenant, ref.document_sha256)
                fh.write(data)
                digest.update(data)
                fh.flush()
        return Artifact(run.out_path, digest.hexdigest(), run.out_path.stat().st_size)

    return build


def _plan(store: Store, out: Path, *args: str, profile: str = "json:raw", revision: int | None = None) -> ExportRun:
    pinned = ProfileStore(store).get("acme", profile, revision)
    return plan_run(store, "acme", pinned, parse_selectors(list(args)), key_name="signer", out_path=out)


def _events(engine: RunEngine, run_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.event_type, e.from_state, e.to_state) for e in engine.events(run_id)]


# -- planning -------------------------------------------------------------------------------------


def test_plan_pins_parameters_and_ordered_inputs(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out" / "bundle.tar.zst"
    profile = ProfileStore(store).get("acme", "json:policy")
    created = datetime(2025, 8, 26, 7, 15, 42, 987654)
    run = plan_run(
        store, "acme", profile, parse_selectors(["ecosystem=Go"]), key_name="signer", out_path=out, created_at=created
    )
    assert run.state is RunState.PENDING
    assert run.run_id.startswith("run-") and run.bundle_run_id == run.run_id
    assert run.bundle_created_at_text == "2025-08-26T07:15:42Z"  # truncated to seconds, RFC 3339 UTC
    assert run.parameters["profile"] == {"id": "json:policy", "revision": 1, "config": profile.config.to_dict()}
    assert run.parameters["selectors"] == {"ecosystem": ["Go"]}
    assert run.key_name == "signer" and run.out_path == out.resolve()
    rows = store.conn.execute(
        "SELECT ordinal, document_sha256, kind, subject, document_id FROM export_inputs WHERE run_id = ?"
        " ORDER BY ordinal",
        [run.run_id],
    ).fetchall()
    expected = list(resolve_inputs(store, "acme", Selectors(ecosystem=("Go",)), profile.config.record_types))
    assert [(r.document_sha256, r.kind, r.subject, r.document_id) for r in expected] == [row[1:] for row in rows]
    assert [row[0] for row in rows] == list(range(len(rows)))
    # Policy snapshots name no packages and pass a package selector; the sample's findings (maven, deb) do not.
    assert {r[2] for r in rows} == {"advisory", "policy"}
    assert run.input_count == len(rows)
    assert run.inputs_sha256 == hashlib.sha256("".join(f"{r[1]}\n" for r in rows).encode()).hexdigest()
    engine = RunEngine(store)
    assert engine.get_run(run.run_id) == run
    assert _events(engine, run.run_id) == [("planned", None, "pending")]
    assert engine.events(run.run_id)[0].actor == current_user()
    assert engine.events(run.run_id)[0].correlation_id == run.correlation_id


def test_plan_refusals_write_nothing(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.zst"
    with pytest.raises(PolicyRefusal) as err:
        _plan(store, out, "tenant=globex")
    assert err.value.exit_code == ExitCode.POLICY
    raw = ProfileStore(store).get("acme", "json:raw")
    with pytest.raises(UsageError) as usage:
        plan_run(store, "acme", raw, Selectors(), key_name=None, out_path=out)
    assert "no signing key" in usage.value.message
    with pytest.raises(NotFoundError):
        plan_run(store, "acme", raw, Selectors(), key_name="missing", out_path=out)
    out.write_bytes(b"precious")
    with pytest.raises(UsageError) as exists:
        _plan(store, out)
    assert "already exists" in exists.value.message
    assert store.conn.execute("SELECT count(*) FROM export_runs").fetchone() == (0,)
    assert store.conn.execute("SELECT count(*) FROM export_inputs").fetchone() == (0,)


def test_a_run_keeps_the_profile_revision_it_was_planned_with(store: Store, tmp_path: Path) -> None:
    profiles = ProfileStore(store)
    profiles.create("acme", "nightly", "json:raw", {"compression_level": 3, "signing_key": "signer"})
    run = plan_run(store, "acme", profiles.get("acme", "nightly"), Selectors(), key_name=None, out_path=tmp_path / "a")
    profiles.update("acme", "nightly", {"compression_level": 12, "record_types": ["advisory"]})
    again = RunEngine(store).get_run(run.run_id)
    assert (again.profile_id, again.profile_revision) == ("nightly", 1)
    assert again.profile_config.compression_level == 3
    assert again.profile_config.record_types == ("advisory", "vex", "sbom")
    assert again.key_name == "signer"  # from the profile, since none was given


# -- execution ------------------------------------------------------------------------------------


def test_successful_run_records_states_events_and_the_artifact(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin", "format=osv")
    engine = RunEngine(store)
    done = engine.execute(run.run_id, concat_builder(store))
    assert done.state is RunState.SUCCEEDED
    data = run.out_path.read_bytes()
    assert done.artifact_sha256 == hashlib.sha256(data).hexdigest() and done.artifact_size == len(data)
    assert done.artifact_path == run.out_path
    assert done.started_at is not None and done.finished_at is not None and done.finished_at >= done.started_at
    # The builder got the pinned inputs in order.
    expected = b"".join(store.raw_bytes("acme", r.document_sha256) for r in engine.inputs(run.run_id))
    assert data == f"{run.run_id} {run.bundle_created_at_text}\n".encode() + expected
    events = engine.events(run.run_id)
    assert [(e.seq, e.event_type, e.from_state, e.to_state) for e in events] == [
        (1, "planned", None, "pending"),
        (2, "started", "pending", "running"),
        (3, "succeeded", "running", "succeeded"),
        (4, "distributed", None, None),
    ]
    (built,) = engine.distributions(run.run_id)
    assert (built.type, built.target, built.sha256) == ("file", str(run.out_path), done.artifact_sha256)
    assert {e.correlation_id for e in events} == {run.correlation_id}
    assert {e.actor for e in events} == {current_user()}
    assert events[1].detail["pid"] == os.getpid()
    assert events[2].detail["sha256"] == done.artifact_sha256
    assert [r.run_id for r in engine.list_runs("acme")] == [run.run_id]
    assert engine.list_runs("globex") == []
    with pytest.raises(UsageError) as err:
        engine.execute(run.run_id, concat_builder(store))
    assert "is succeeded, not pending" in err.value.message


def test_failed_run_records_the_error_and_leaves_no_file(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")
    engine = RunEngine(store)
    with pytest.raises(BadInputError, match="document is damaged"):
        engine.execute(run.run_id, concat_builder(store, fail_after=2))
    failed = engine.get_run(run.run_id)
    assert failed.state is RunState.FAILED
    assert failed.error_code == "bad-input"
    assert failed.error_message is not None and "document is damaged" in failed.error_message
    assert not run.out_path.exists()
    last = engine.events(run.run_id)[-1]
    assert (last.event_type, last.from_state, last.to_state) == ("failed", "running", "failed")
    assert last.detail["error_code"] == "bad-input"


def test_unexpected_builder_crash_is_recorded_as_internal(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")

    def crash(run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken) -> Artifact:
        run.out_path.write_bytes(b"half")
        raise ZeroDivisionError("oops")

    engine = RunEngine(store)
    with pytest.raises(ZeroDivisionError):
        engine.execute(run.run_id, crash)
    failed = engine.get_run(run.run_id)
    assert (failed.state, failed.error_code, failed.error_message) == (
        RunState.FAILED,
        "internal",
        "ZeroDivisionError: oops",
    )
    assert not run.out_path.exists()


def test_a_builder_that_lies_about_its_artifact_fails_the_run(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")

    def liar(run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken) -> Artifact:
        run.out_path.write_bytes(b"12345")
        return Artifact(run.out_path, "0" * 64, 6)

    with pytest.raises(IntegrityError):
        RunEngine(store).execute(run.run_id, liar)
    assert RunEngine(store).get_run(run.run_id).error_code == "integrity"


def test_inputs_changed_after_planning_fail_the_run(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")
    store.conn.execute("DELETE FROM export_inputs WHERE run_id = ? AND ordinal = 3", [run.run_id])
    with pytest.raises(IntegrityError, match="differ from those recorded when it was planned"):
        RunEngine(store).execute(run.run_id, concat_builder(store))
    assert RunEngine(store).get_run(run.run_id).state is RunState.FAILED
    assert not run.out_path.exists()


# -- cancellation ---------------------------------------------------------------------------------


def test_cancel_mid_run_aborts_records_the_actor_and_leaves_no_partial_file(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")
    token = CancelToken()
    seen: list[int] = []

    def press_cancel_after_two(n: int) -> None:
        seen.append(n)
        if n == 2:
            assert run.out_path.stat().st_size > 0  # a partial file exists at this point
            token.cancel()

    engine = RunEngine(store)
    with pytest.raises(Cancelled):
        engine.execute(run.run_id, concat_builder(store, on_unit=press_cancel_after_two), CheckObserver(cancel=token))
    assert seen == [0, 1, 2]
    aborted = engine.get_run(run.run_id)
    assert aborted.state is RunState.ABORTED
    assert not run.out_path.exists()
    last = engine.events(run.run_id)[-1]
    assert (last.event_type, last.from_state, last.to_state) == ("aborted", "running", "aborted")
    assert last.actor == f"cancelled by {current_user()}"
    assert last.detail["error_code"] == "cancelled"


def test_cancel_requested_by_another_process_while_the_store_is_locked(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")
    engine = RunEngine(store)
    home = store.home.root

    def other_process_cancels(n: int) -> None:
        if n == 1:
            # A second stella cannot open the locked store; the request goes through the home directory.
            code = (
                "from pathlib import Path; from core.home import Home; from core.runs import request_cancel;"
                f" request_cancel(Home(Path({str(home)!r})), {run.run_id!r}, 'alice')"
            )
            subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent.parent)
            assert engine.cancel_requested(run.run_id)
            time.sleep(CANCEL_POLL_INTERVAL)  # the engine looks for requests at most this often

    with pytest.raises(Cancelled):
        engine.execute(run.run_id, concat_builder(store, on_unit=other_process_cancels))
    assert engine.get_run(run.run_id).state is RunState.ABORTED
    assert engine.events(run.run_id)[-1].actor == "cancelled by alice"
    assert not run.out_path.exists()
    assert not engine.cancel_requested(run.run_id)  # the request is consumed


def test_cancelling_a_pending_run_aborts_it_at_once(store: Store, tmp_path: Path) -> None:
    engine = RunEngine(store)
    run = _plan(store, tmp_path / "a.bin")
    assert engine.cancel_run(run.run_id, "bob").state is RunState.ABORTED
    assert engine.events(run.run_id)[-1].actor == "cancelled by bob"
    with pytest.raises(UsageError):
        engine.cancel_run(run.run_id, "bob")
    # A request filed while it was still pending (store locked by another run) stops it before it starts.
    second = _plan(store, tmp_path / "b.bin")
    request_cancel(store.home, second.run_id, "carol")
    with pytest.raises(Cancelled, match="before it started"):
        engine.execute(second.run_id, concat_builder(store))
    assert [e[0] for e in _events(engine, second.run_id)] == ["planned", "aborted"]
    assert engine.events(second.run_id)[-1].actor == "cancelled by carol"


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrency_limit_per_tenant_is_refused_with_exit_7(store: Store, tmp_path: Path) -> None:
    engine = RunEngine(store, max_active_per_tenant=1)
    first = _plan(store, tmp_path / "first.bin")
    second = _plan(store, tmp_path / "second.bin")
    started, release = threading.Event(), threading.Event()

    def slow(run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken) -> Artifact:
        started.set()
        assert release.wait(30)
        run.out_path.write_bytes(b"done")
        return Artifact(run.out_path, hashlib.sha256(b"done").hexdigest(), 4)

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            engine.execute(first.run_id, slow)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(PolicyRefusal) as err:
            engine.execute(second.run_id, slow)
        assert err.value.exit_code == ExitCode.POLICY
        assert "the limit is 1" in err.value.message
        assert engine.get_run(second.run_id).state is RunState.PENDING  # refused, not failed
    finally:
        release.set()
        thread.join(30)
    assert errors == []
    assert engine.get_run(first.run_id).state is RunState.SUCCEEDED
    assert engine.execute(second.run_id, slow).state is RunState.SUCCEEDED


def test_a_run_left_running_by_a_dead_process_is_failed_as_interrupted(store: Store, tmp_path: Path) -> None:
    engine = RunEngine(store, max_active_per_tenant=1)
    crashed = _plan(store, tmp_path / "crashed.bin")
    store.conn.execute("UPDATE export_runs SET state = 'running' WHERE run_id = ?", [crashed.run_id])
    fresh = _plan(store, tmp_path / "fresh.bin")
    assert engine.execute(fresh.run_id, concat_builder(store)).state is RunState.SUCCEEDED
    stale = engine.get_run(crashed.run_id)
    assert (stale.state, stale.error_code) == (RunState.FAILED, "interrupted")


# -- retry ----------------------------------------------------------------------------------------


def test_retry_reuses_parameters_created_at_and_inputs_and_reproduces_the_bytes(store: Store, tmp_path: Path) -> None:
    engine = RunEngine(store)
    orig = _plan(store, tmp_path / "bundle.bin")
    with pytest.raises(BadInputError):
        engine.execute(orig.run_id, concat_builder(store, fail_after=3))
    # New data arriving between the attempts does not change what the retry exports.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "x.json").write_bytes(
        (SAMPLES / "advisories/GO-2020-0001.json").read_bytes().replace(b"GO-2020-0001", b"GO-2099-0001")
    )
    Importer(store, SOURCES, tenant="acme").run([extra])

    first_id = engine.retry(orig.run_id)
    first = engine.get_run(first_id)
    assert first.state is RunState.PENDING and first.retry_of == orig.run_id
    assert first.parameters == orig.parameters  # createdAt, bundle run id, profile, selectors, key, out path
    assert first.correlation_id != orig.correlation_id
    assert list(engine.inputs(first_id)) == list(engine.inputs(orig.run_id))
    assert _events(engine, orig.run_id)[-1] == ("retried", None, None)
    assert engine.events(first_id)[0].detail == {"retry_of": orig.run_id}
    engine.execute(first_id, concat_builder(store))
    bytes_first = orig.out_path.read_bytes()

    second_id = engine.retry(orig.run_id, out_path=tmp_path / "again.bin")
    second = engine.execute(second_id, concat_builder(store))
    assert second.out_path == (tmp_path / "again.bin").resolve()
    assert (tmp_path / "again.bin").read_bytes() == bytes_first
    assert bytes_first.startswith(f"{orig.run_id} {orig.bundle_created_at_text}\n".encode())
    # A succeeded run is rebuilt byte-identically, but never over its own bundle.
    with pytest.raises(UsageError, match="succeeded and its bundle is intact"):
        engine.retry(second_id)
    third_id = engine.retry(second_id, out_path=tmp_path / "third.bin")
    engine.execute(third_id, concat_builder(store))
    assert (tmp_path / "third.bin").read_bytes() == bytes_first


# -- download -------------------------------------------------------------------------------------


@pytest.fixture
def finished(store: Store, tmp_path: Path) -> ExportRun:
    run = _plan(store, tmp_path / "bundle.bin", profile="json:policy")
    return RunEngine(store).execute(run.run_id, concat_builder(store))


def test_download_copies_and_records_a_distribution(store: Store, finished: ExportRun, tmp_path: Path) -> None:
    engine = RunEngine(store)
    media = tmp_path / "media"
    media.mkdir()
    dist = engine.download(finished.run_id, media)  # a directory: the artifact keeps its name
    target = media / "bundle.bin"
    assert target.read_bytes() == finished.out_path.read_bytes()
    assert (dist.type, dist.target, dist.sha256, dist.size, dist.resumed_from) == (
        "file",
        str(target.resolve()),
        finished.artifact_sha256,
        finished.artifact_size,
        0,
    )
    # The build itself was the first distribution; the copy is the second.
    assert [d.distribution_id for d in engine.distributions(finished.run_id)][1:] == [dist.distribution_id]
    assert _events(engine, finished.run_id)[-1] == ("distributed", None, None)


def test_download_resumes_a_partial_copy(store: Store, finished: ExportRun, tmp_path: Path) -> None:
    data = finished.out_path.read_bytes()
    target = tmp_path / "copy.bin"
    target.write_bytes(data[:1000])
    dist = RunEngine(store).download(finished.run_id, target)
    assert dist.resumed_from == 1000
    assert target.read_bytes() == data


def test_download_starts_over_when_the_target_is_not_a_prefix(
    store: Store, finished: ExportRun, tmp_path: Path
) -> None:
    data = finished.out_path.read_bytes()
    target = tmp_path / "copy.bin"
    target.write_bytes(b"X" + data[1:1000])
    dist = RunEngine(store).download(finished.run_id, target)
    assert dist.resumed_from == 0
    assert target.read_bytes() == data
    target.write_bytes(data + b"trailing junk")  # longer than the artifact: not a prefix either
    assert RunEngine(store).download(finished.run_id, target).resumed_from == 0
    assert target.read_bytes() == data


def test_download_of_a_corrupted_artifact_fails_with_exit_4_and_leaves_nothing(
    store: Store, finished: ExportRun, tmp_path: Path
) -> None:
    data = bytearray(finished.out_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    finished.out_path.write_bytes(bytes(data))
    engine = RunEngine(store)
    target = tmp_path / "copy.bin"
    target.write_bytes(bytes(data[:500]))  # even a resumable prefix of the bad bytes is not kept
    with pytest.raises(IntegrityError) as err:
        engine.download(finished.run_id, target)
    assert err.value.exit_code == ExitCode.INTEGRITY
    assert finished.artifact_sha256 is not None and finished.artifact_sha256 in err.value.message
    assert not target.exists()
    assert [d.type for d in engine.distributions(finished.run_id)] == ["file"]  # only the build, no copy
    shutil.copy(finished.out_path, tmp_path / "keep")  # the artifact itself is left for inspection
    finished.out_path.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        engine.download(finished.run_id, target)


def test_only_succeeded_runs_can_be_downloaded(store: Store, tmp_path: Path) -> None:
    run = _plan(store, tmp_path / "bundle.bin")
    with pytest.raises(UsageError, match="only a succeeded run"):
        RunEngine(store).download(run.run_id, tmp_path / "copy.bin")
    with pytest.raises(NotFoundError):
        RunEngine(store).get_run(run.run_id, tenant="globex")
