"""Notifications: a bundle ready for transfer (or a failed run) lands once in the spool directory, atomically, and
reaches a real webhook on 127.0.0.1 that fails twice before it accepts; nothing is sent twice."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.contract.timeline import BUNDLE_READY_FOR_TRANSFER, EXPORT_FAILED
from core.errors import ExitCode, StellaError
from core.home import Home
from core.runs import ExportRun
from core.timeline import EventDraft, TimelineEvent
from services import notify
from services.export import ExportRequest, run_export
from services.timeline import record_bundle_ready, record_events
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"


class Receiver:
    """A webhook receiver: answers 503 to the first ``failures`` requests, then 200; keeps what it was sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if len(receiver.requests) < receiver.failures else 200
                receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [body for status, _, body in self.requests if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def test_a_mirror_bundle_ready_for_transfer_is_spooled_and_delivered_once(
    stella: Any, home: Path, tmp_path: Path, receiver: Receiver
) -> None:
    spool = tmp_path / "spool"
    res = stella(
        "timeline", "notify", "set", "--spool", spool, "--webhook", receiver.url, "--attempts", "4",
        "--backoff", "0.05", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    assert res.json()["webhook"]["url"] == receiver.url
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "signer").code == 0
    assert stella("tuf", "init", "--key", "signer").code == 0
    run = stella("export", "run", "--profile", "mirror:full", "--key", "signer", "--out", tmp_path / "m.tar.zst")
    assert run.code == 0, run.err
    _delivered()
    # The spool: one JSON file for the one notified event (built, distributed and requested are not notified).
    files = sorted(spool.iterdir())
    assert [f.suffix for f in files] == [".json"]  # no temporary file left beside it
    event = json.loads(files[0].read_text())
    assert event["type"] == BUNDLE_READY_FOR_TRANSFER and event["specversion"] == "1.0"
    # The webhook: 503, 503, then accepted; the same CloudEvent every time.
    assert [status for status, _, _ in receiver.requests] == [503, 503, 200]
    assert {body["id"] for _, _, body in receiver.requests} == {event["id"]}
    headers = receiver.requests[-1][1]
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    assert headers["Idempotency-Key"] == f"default/{event['id']}"
    # Dedupe: the producer retrying the event, and notifying it again, send nothing more.
    listed = stella("timeline", "list", "--type", "bundle.ready-for-transfer", "--json").json()["events"]
    assert [e["id"] for e in listed] == [event["id"]]
    stored = stella("timeline", "show", event["id"], "--json").json()
    again = notify.notify(Home(home), _as_event(stored))
    assert again is not None and again.webhook == "already-sent"
    assert len(receiver.requests) == 3 and sorted(spool.iterdir()) == files
    show = stella("timeline", "notify", "show", "--json").json()
    assert show["waiting"] == []


def _delivered() -> None:
    """Wait for the webhook deliveries an export started once it let the store go (a CLI process waits for them
    before it exits; these tests run the CLI in-process)."""
    for thread in threading.enumerate():
        if thread.name == "stella-notify":
            thread.join(30)


def _as_event(d: dict[str, Any]) -> TimelineEvent:
    return TimelineEvent(
        tenant=d["tenant"],
        seq=d["seq"],
        id=d["id"],
        source=d["source"],
        type=d["type"],
        subject=d["subject"],
        time=datetime.fromisoformat(d["time"].removesuffix("Z")),
        recorded_at=datetime.fromisoformat(d["recordedtime"].removesuffix("Z")),
        data=d["data"],
    )


def test_a_delivery_that_runs_out_of_attempts_waits_in_the_outbox(stella: Any, home: Path, tmp_path: Path) -> None:
    down = Receiver(failures=1000)
    try:
        spool = tmp_path / "spool"
        assert stella("timeline", "notify", "set", "--spool", spool, "--webhook", down.url, "--attempts", "2",
                      "--backoff", "0").code == 0  # fmt: skip
        failed = EventDraft(
            "default", EXPORT_FAILED, "urn:stella:default:export", "run:r1", {"error": {}}, datetime(2026, 12, 1)
        )
        record_events(Home(home), [failed])
        record_events(Home(home), [failed])  # a retry: not notified again
        assert len(down.requests) == 2  # two attempts, then it waits
        assert len(list(spool.iterdir())) == 1
        shown = stella("timeline", "notify", "show")
        assert "waiting  1 in the outbox" in shown.out
        res = stella("timeline", "notify", "deliver")
        assert res.code == 8 and "HTTP 503" in res.out
        assert len(down.requests) == 4
        down.failures = 0  # the receiver is back
        res = stella("timeline", "notify", "deliver", "--json")
        assert res.code == 0, res.out
        assert [d["webhook"] for d in res.json()["deliveries"]] == ["sent"]
        assert len(down.accepted()) == 1 and down.accepted()[0]["type"] == EXPORT_FAILED
        assert stella("timeline", "notify", "deliver").out.strip() == "nothing waits in the outbox"
        assert len(down.requests) == 5
    finally:
        down.close()


def test_notification_settings_are_checked(stella: Any, home: Path, tmp_path: Path) -> None:
    assert stella("timeline", "notify", "set", "--webhook", "http://8.8.8.8/hook").code == 2  # not on the LAN
    assert stella("timeline", "notify", "set", "--webhook", "file:///etc/passwd").code == 2
    assert stella("timeline", "notify", "set", "--webhook", "http://10.1.2.3/h", "--attempts", "0").code == 2
    assert stella("timeline", "notify", "set", "--attempts", "3").code == 2  # no webhook to change
    assert stella("timeline", "notify", "set", "--webhook", "http://nas.lan:8080/h").code == 0  # a LAN host name
    (home / "notify.json").write_text('{"spool": "relative/dir"}')
    res = stella("timeline", "notify", "show")
    assert res.code == 3 and "notify.json" in res.err
    assert stella("timeline", "notify", "deliver").code == 3


def test_a_run_that_fails_is_on_the_timeline_and_in_the_spool(stella: Any, home: Path, tmp_path: Path) -> None:
    """The run's output directory is swapped, once the run is planned, for a place nothing can be written to (even by
    root: /proc): the build fails, the run is failed, and export.failed is recorded and notified."""
    spool = tmp_path / "spool"
    assert stella("timeline", "notify", "set", "--spool", spool).code == 0
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0
    media = tmp_path / "media"
    media.mkdir()
    request = ExportRequest(tenant="default", profile="json:raw", key="k", out=media / "b.tar.zst")

    def swap_media(run: ExportRun) -> None:
        media.rmdir()
        media.symlink_to("/proc")

    with pytest.raises(StellaError) as err:
        run_export(Home(home), request, on_planned=swap_media)
    assert err.value.exit_code == ExitCode.ENVIRONMENT
    failed = stella("timeline", "list", "--type", "export.failed", "--json").json()["events"]
    assert len(failed) == 1 and failed[0]["data"]["error"]["code"] == err.value.code
    run_id = failed[0]["runid"]
    assert stella("export", "show", run_id, "--json").json()["state"] == "failed"
    kinds = [e["type"] for e in stella("timeline", "list", "--run", run_id, "--json").json()["events"]]
    assert kinds == ["dev.stella.export.requested", EXPORT_FAILED]
    [note] = spool.iterdir()
    assert json.loads(note.read_text())["id"] == failed[0]["id"]


def test_a_bundle_built_outside_a_run_can_be_announced_once(stella: Any, home: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    assert stella("timeline", "notify", "set", "--spool", spool).code == 0
    pack = tmp_path / "pack.tgz"
    pack.write_bytes(b"pack")
    digest = "sha256:" + hashlib.sha256(b"pack").hexdigest()
    for _ in range(2):  # announced twice (a retry): one event, one notification
        event = record_bundle_ready(
            Home(home),
            tenant="default",
            producer="kit",
            kind="kit",
            subject="kit:k1",
            bundle=pack,
            bundle_sha256=digest,
        )
    listed = stella("timeline", "list", "--type", "bundle.*", "--json").json()["events"]
    assert [e["id"] for e in listed] == [event.id] and listed[0]["data"]["bundle"]["sha256"] == digest
    assert [json.loads(p.read_text())["id"] for p in spool.iterdir()] == [event.id]


def test_a_slow_webhook_does_not_hold_the_store(stella: Any, home: Path, tmp_path: Path) -> None:
    """export.failed is recorded while the export holds the store; its webhook delivery waits on a receiver that
    does not answer yet, and meanwhile the store is free for the next writer."""
    answer = threading.Event()
    slow = Receiver(failures=0)
    handler = slow.server.RequestHandlerClass
    original = handler.do_POST  # type: ignore[attr-defined]

    def do_post(self: BaseHTTPRequestHandler) -> None:
        answer.wait(20)
        original(self)

    handler.do_POST = do_post  # type: ignore[attr-defined]
    try:
        assert stella("timeline", "notify", "set", "--webhook", slow.url, "--timeout", "30").code == 0
        assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
        assert stella("keys", "generate", "k").code == 0
        media = tmp_path / "media"
        media.mkdir()

        def swap_media(run: ExportRun) -> None:
            media.rmdir()
            media.symlink_to("/proc")

        request = ExportRequest(tenant="default", profile="json:raw", key="k", out=media / "b.tar.zst")
        with pytest.raises(StellaError):
            run_export(Home(home), request, on_planned=swap_media)
        [delivering] = [t for t in threading.enumerate() if t.name == "stella-notify"]
        assert delivering.is_alive()  # the receiver has not answered
        assert stella("import", "--quiet", SAMPLES / "advisories").code == 0  # the store is free: all duplicates
        answer.set()
        delivering.join(20)
        assert not delivering.is_alive()
        [body] = slow.accepted()
        assert body["type"] == EXPORT_FAILED
        assert notify.pending(Home(home)) == []
    finally:
        answer.set()
        slow.close()


def test_an_entry_another_process_is_sending_is_not_sent_twice(stella: Any, home: Path, receiver: Receiver) -> None:
    """A background delivery and `stella timeline notify deliver` that reach the same outbox entry together: the one
    that holds the entry's lock sends it, the other reports it in flight and sends nothing."""
    import fcntl

    receiver.failures = 0
    failed = EventDraft(
        "default", EXPORT_FAILED, "urn:stella:default:export", "run:r2", {"error": {}}, datetime(2026, 12, 1)
    )
    event = record_events(Home(home), [failed])[0]  # nothing configured yet: not notified
    assert stella("timeline", "notify", "set", "--webhook", receiver.url, "--backoff", "0").code == 0
    queued = notify.notify(Home(home), event, deliver=False)
    assert queued is not None and queued.webhook == "queued" and queued.outbox is not None
    with queued.outbox.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another sender is in the middle of it
        res = stella("timeline", "notify", "deliver", "--json")
        assert res.code == 0, res.out
        assert [d["webhook"] for d in res.json()["deliveries"]] == ["in-flight"]
        assert receiver.requests == []
    res = stella("timeline", "notify", "deliver", "--json")
    assert [d["webhook"] for d in res.json()["deliveries"]] == ["sent"]
    assert len(receiver.accepted()) == 1
    assert stella("timeline", "notify", "deliver").out.strip() == "nothing waits in the outbox"
