"""`stella timeline`: events recorded once however often a producer retries, in one total order per tenant, invisible
to other tenants from every command, and the export lifecycle of real runs (a succeeded one and a failed one)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import zstandard

from core.contract.timeline import (
    BUNDLE_READY_FOR_TRANSFER,
    EXPORT_BUILT,
    EXPORT_DISTRIBUTED,
    EXPORT_FAILED,
    EXPORT_REQUESTED,
)
from core.errors import ExitCode, UsageError
from core.home import Home
from core.store import Store
from core.timeline import AttestationSubject, ConflictingEvent, EventDraft
from services.timeline import record_event, record_events, source_for
from tests.conftest import ROOT
from tests.integration.test_faults import full_disk  # noqa: F401 - the fixture

SAMPLES = ROOT / "samples"
EVIDENCE = "sha256:" + "e" * 64
ATTESTED = AttestationSubject("bundle.tar.zst", "sha256:" + "a" * 64)
AT = datetime(2026, 12, 1, 12, 0, 0)


def _batch(tenant: str) -> list[EventDraft]:
    """A producer's batch: two events with the producer's own ids, one whose id is derived from its content."""
    src = source_for(tenant, "test-producer")
    return [
        EventDraft(tenant, "dev.stella.test.one", src, "thing:1", {"n": 1}, AT, event_id="one"),
        EventDraft(
            tenant,
            "dev.stella.test.two",
            src,
            "thing:2",
            {"n": 2},
            AT,
            event_id="two",
            case_id="CASE-1",
            evidence_digests=(EVIDENCE,),
        ),
        EventDraft(
            tenant,
            "dev.stella.test.three",
            src,
            "thing:3",
            {"n": 3, "nested": {"b": [1, 2]}},
            AT,
            attestation_subjects=(ATTESTED,),
            run_id="run-x",
            trace_id="trace-1",
        ),
    ]


def _list(stella: Any, *args: str) -> list[dict[str, Any]]:
    res = stella("timeline", "list", "--json", *args)
    assert res.code == 0, res.err
    events: list[dict[str, Any]] = res.json()["events"]
    return events


def test_replaying_the_same_batch_stores_one_copy_of_each_event(stella: Any, home: Path, tmp_path: Path) -> None:
    first = record_events(Home(home), _batch("default"))
    again = record_events(Home(home), _batch("default"))  # the producer retries the whole batch
    assert [e.seq for e in first] == [1, 2, 3]
    assert again == first  # the stored events, not new ones
    listed = _list(stella)
    assert [(e["seq"], e["id"], e["type"]) for e in listed] == [(e.seq, e.id, e.type) for e in first]
    derived = listed[2]
    assert derived["id"] == first[2].id and len(derived["id"]) == 32  # derived from the content, the same each time
    assert derived["specversion"] == "1.0" and derived["source"] == "urn:stella:default:test-producer"
    assert derived["sequence"] == "00000000000000000003" and derived["runid"] == "run-x"
    assert derived["attestationsubjects"] == f"{ATTESTED.name}@{ATTESTED.digest}"
    assert derived["data"] == {"n": 3, "nested": {"b": [1, 2]}}
    with Store.open(Home(home)) as store:
        rows = store.conn.execute("SELECT count(*) FROM timeline_events").fetchone()
        assert rows == (3,)
        # One by one, through the producer API, changes nothing either.
        e = record_event(
            store,
            tenant="default",
            type="dev.stella.test.one",
            source=source_for("default", "test-producer"),
            subject="thing:1",
            data={"n": 1},
            event_id="one",
            time=AT,
        )
        assert e.seq == 1
        # The same id with other content is refused (exit 3): it would silently lose one of the two events.
        with pytest.raises(ConflictingEvent) as err:
            record_event(
                store,
                tenant="default",
                type="dev.stella.test.one",
                source=source_for("default", "test-producer"),
                subject="thing:1",
                data={"n": 99},
                event_id="one",
            )
        assert err.value.exit_code == ExitCode.BAD_INPUT
    # Filters and the pagination cursor.
    assert [e["id"] for e in _list(stella, "--type", "test.two")] == ["two"]
    assert [e["id"] for e in _list(stella, "--type", "dev.stella.test.t*")] == ["two", first[2].id]
    assert [e["id"] for e in _list(stella, "--subject", "thing:1")] == ["one"]
    assert [e["id"] for e in _list(stella, "--run", "run-x")] == [first[2].id]
    assert [e["id"] for e in _list(stella, "--case", "CASE-1")] == ["two"]
    assert [e["id"] for e in _list(stella, "--trace", "trace-1")] == [first[2].id]
    assert _list(stella, "--since", "2026-12-01T12:00:01Z") == []
    assert len(_list(stella, "--until", "2026-12-01T12:00:01Z")) == 3
    page = stella("timeline", "list", "--limit", "2", "--json").json()
    assert [e["seq"] for e in page["events"]] == [1, 2] and page["nextCursor"] == "2"
    record_events(Home(home), [EventDraft("default", "dev.stella.test.four", "urn:x", "thing:4", {}, AT)])
    rest = stella("timeline", "list", "--limit", "2", "--after", page["nextCursor"], "--json").json()
    assert [e["seq"] for e in rest["events"]] == [3, 4] and rest["nextCursor"] is None  # stable while events arrive
    text = stella("timeline", "list", "--limit", "2")
    assert "test.one" in text.out and "stella timeline list --after 2" in text.out
    assert stella("timeline", "list", "--since", "yesterday").code == 2
    assert stella("timeline", "list", "--limit", "0").code == 2
    # show and export
    shown = stella("timeline", "show", "two")
    assert shown.code == 0 and "CASE-1" in shown.out and EVIDENCE in shown.out
    out = tmp_path / "siem.ndjson"
    assert stella("timeline", "export", "--out", out).code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [ln["sequence"] for ln in lines] == [f"{n:020d}" for n in (1, 2, 3, 4)]
    # A producer's text never steers the terminal; a subject that is not printable is refused.
    hostile = EventDraft("default", "dev.stella.test.x", "urn:x", "thing:5", {"t": "\x1b[2J\x1b]0;pwned\x07"}, AT)
    record_events(Home(home), [hostile], wait=5)
    for res in (stella("timeline", "show", hostile.resolved_id()), stella("timeline", "list")):
        assert res.code == 0 and "\x1b" not in res.out and "\x07" not in res.out
    with pytest.raises(UsageError):
        record_events(Home(home), [EventDraft("default", "dev.stella.test.x", "urn:x", "a\nb", {}, AT)])
    assert all({"specversion", "id", "source", "type", "time"} <= set(ln) for ln in lines)


_PRODUCER = textwrap.dedent(
    """
    import random
    import sys
    import time
    from datetime import datetime
    from pathlib import Path
    from core.home import Home
    from core.timeline import EventDraft
    from services.timeline import record_events

    home, name, count = Home(Path(sys.argv[1])), sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # both start together
    for i in range(count):
        draft = EventDraft("default", "dev.stella.test.tick", "urn:stella:default:" + name, name + ":" + str(i),
                           {"i": i}, datetime(2026, 12, 1), event_id=name + "-" + str(i))
        record_events(home, [draft], wait=120)
        record_events(home, [draft], wait=120)  # every event is sent twice: a retry
        time.sleep(random.uniform(0, 0.03))  # a producer does other work between events
    """
)


def test_two_concurrent_producers_keep_one_total_order(stella: Any, home: Path) -> None:
    Store.open(Home(home)).close()  # migrated before the race
    count = 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PRODUCER, str(home), name, str(count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    events = _list(stella, "--limit", "1000")
    assert [e["seq"] for e in events] == list(range(1, 2 * count + 1))  # one order, no gaps, no duplicates
    for name in ("A", "B"):
        mine = [e["id"] for e in events if e["id"].startswith(name + "-")]
        assert mine == [f"{name}-{i}" for i in range(count)]  # each producer's own order kept
    owners = [e["id"][0] for e in events]
    assert owners != sorted(owners), "the producers did not interleave; the test proved nothing"


def test_another_tenants_events_are_invisible_from_every_command(stella: Any, home: Path, tmp_path: Path) -> None:
    a = record_events(Home(home), _batch("alpha"))
    b = record_events(Home(home), _batch("beta"))
    assert [e.id for e in a] == ["one", "two", a[2].id] and b[0].id == "one"  # the same ids: two tenants, two rows
    assert a[2].id != b[2].id  # a derived id covers the tenant
    only_beta = record_events(
        Home(home), [EventDraft("beta", "dev.stella.test.secret", "urn:x", "secret:1", {"k": "beta-only"}, AT)]
    )[0]
    assert [e["tenant"] for e in _list(stella, "--tenant", "alpha", "--limit", "100")] == ["alpha"] * 3
    assert [e["seq"] for e in _list(stella, "--tenant", "beta")] == [1, 2, 3, 4]  # each tenant its own sequence
    for cmd in (("show",), ("evidence",)):
        res = stella("timeline", *cmd, only_beta.id, "--tenant", "alpha")
        assert res.code == ExitCode.BAD_INPUT and "beta-only" not in res.out + res.err
        assert stella("timeline", *cmd, only_beta.id, "--tenant", "beta").code == 0
    assert _list(stella, "--tenant", "alpha", "--subject", "secret:*") == []
    assert _list(stella, "--tenant", "alpha", "--case", "CASE-1")[0]["tenant"] == "alpha"
    out = tmp_path / "alpha.ndjson"
    assert stella("timeline", "export", "--tenant", "alpha", "--out", out).code == 0
    assert "beta" not in out.read_text()
    assert stella("timeline", "list", "--tenant", "no/such").code == 2


def _manifest_sha256(bundle: Path) -> str:
    with (
        bundle.open("rb") as fh,
        zstandard.ZstdDecompressor().stream_reader(fh) as raw,
        tarfile.open(fileobj=raw, mode="r|") as tar,
    ):
        for member in tar:
            data = tar.extractfile(member)
            assert member.name == "export.json" and data is not None
            return "sha256:" + hashlib.sha256(data.read()).hexdigest()
    raise AssertionError("empty bundle")


def test_a_real_export_run_emits_its_lifecycle(stella: Any, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "b.tar.zst"
    run = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert run.code == 0, run.err
    run_id = run.json()["runId"]
    events = _list(stella, "--run", run_id)
    assert [e["type"] for e in events] == [EXPORT_REQUESTED, EXPORT_BUILT, EXPORT_DISTRIBUTED]
    manifest = _manifest_sha256(out)
    built = events[1]
    assert built["data"]["manifestSha256"] == manifest
    assert built["data"]["bundle"]["sha256"] == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert events[2]["data"]["distribution"]["target"] == str(out)
    assert {e["subject"] for e in events} == {f"run:{run_id}"}
    assert len({e["traceid"] for e in events}) == 1  # the run's correlation id ties them together
    refs = stella("timeline", "evidence", built["id"], "--json").json()
    assert refs["manifestSha256"] == manifest and refs["runId"] == run_id
    assert manifest in stella("timeline", "evidence", built["id"]).out
    # The run was sealed into the evidence locker: export.built links the sealed bundle, which the locker names.
    [sealed] = refs["evidence"]
    assert built["evidencedigests"] == sealed["digest"] and sealed["evidenceId"] and sealed["rootHash"]
    assert sealed["heldBy"] == [] and not built["held"]
    # A legal hold on that evidence marks the event held, and the case finds it.
    hold = stella("evidence", "hold", "CASE-9", "--bundle", sealed["evidenceId"], "--reason", "litigation")
    assert hold.code == 0, hold.err
    held = _list(stella, "--run", run_id, "--type", "export.built")
    assert held[0]["held"] is True
    assert "held" in stella("timeline", "list", "--run", run_id).out
    case = _list(stella, "--case", "CASE-9")
    assert built["id"] in [e["id"] for e in case] and "dev.stella.evidence.hold" in [e["type"] for e in case]
    assert stella("timeline", "evidence", built["id"], "--json").json()["evidence"][0]["heldBy"] == ["CASE-9"]
    copy = tmp_path / "copy.tar.zst"
    assert stella("export", "download", run_id, "--to", copy).code == 0
    after = _list(stella, "--run", run_id, "--type", "export.distributed")
    assert [e["data"]["distribution"]["target"] for e in after] == [str(out), str(copy.resolve())]
    assert _list(stella, "--type", "bundle.*") == []  # a json:raw bundle is not a mirror: nothing to carry
    retry = stella("export", "retry", run_id, "--out", tmp_path / "again.tar.zst", "--json")
    assert retry.code == 0, retry.err
    new_run = retry.json()["runId"]
    kinds = [e["type"] for e in _list(stella, "--run", new_run)]
    assert kinds == [EXPORT_REQUESTED, EXPORT_BUILT, EXPORT_DISTRIBUTED]
    assert _list(stella, "--run", new_run)[1]["data"]["manifestSha256"] == manifest  # a retry builds the same bytes


def test_a_failed_export_run_emits_export_failed(
    stella: Any,
    home: Path,
    full_disk: Path,  # noqa: F811 - the fixture
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", full_disk / "b.tar.zst")
    assert res.code == ExitCode.ENVIRONMENT
    failed = _list(stella, "--type", "export.failed")
    assert len(failed) == 1 and failed[0]["data"]["error"]["code"]
    run_id = failed[0]["runid"]
    assert [e["type"] for e in _list(stella, "--run", run_id)] == [EXPORT_REQUESTED, EXPORT_FAILED]


def test_a_mirror_bundle_is_ready_for_transfer(stella: Any, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    out = tmp_path / "m.tar.zst"
    run = stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", out, "--json")
    assert run.code == 0, run.err
    ready = _list(stella, "--type", "bundle.ready-for-transfer")
    assert [e["type"] for e in ready] == [BUNDLE_READY_FOR_TRANSFER]
    assert ready[0]["runid"] == run.json()["runId"] and ready[0]["data"]["manifestSha256"] == _manifest_sha256(out)
