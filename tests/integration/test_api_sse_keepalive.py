"""``GET /api/v1/export/runs/{id}/events`` sends ``: keep-alive`` comments while a run is quiet, and they change
nothing about resuming with ``Last-Event-ID``.

The server runs in this process with a keep-alive interval of 0.2 s (``create_app(home, keepalive=...)``; `stella
serve` uses 15 s). The run is planned with the services before the server starts, so no build of this server ever
takes it: it stays pending, with one event, until the test cancels it over the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core.home import Home
from core.store import Store
from services.export import check_selectors, default_out, plan_export
from services.tokens import create_token
from tests.conftest import ROOT
from tests.integration.test_api_verify_stream import InProcess, stella

KEEPALIVE = 0.2


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = Home(tmp_path_factory.mktemp("sse-keepalive") / "home")
    samples = [str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()]
    for argv in (["import", "--quiet", "--tenant", "acme", *samples], ["keys", "generate", "k"]):
        done = stella(home, *argv)
        assert done.returncode == 0, done.stderr
    with Store.open(home) as store:
        run = plan_export(
            store, "acme", "json:raw", check_selectors([]), requested={}, key="k", out=default_out(home, "json:raw")
        )
    _, token = create_token(
        home, tenant="acme", scopes=["export:read", "export:run"], ttl=timedelta(hours=1), subject="sse"
    )
    server = InProcess(home, keepalive=KEEPALIVE)
    try:
        yield {"url": server.url, "run": run.run_id, "headers": {"Authorization": f"Bearer {token}"}}
    finally:
        server.stop()


def read(response: httpx.Response, *, comments_wanted: int | None = None) -> tuple[list[dict[str, str]], list[str]]:
    """The events (fields of each) and the comment lines of an SSE stream, in order; stops at ``end`` or, with
    ``comments_wanted``, once that many comments came after the last event."""
    events: list[dict[str, str]] = []
    comments: list[str] = []
    since_event = 0
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            comments.append(line)
            since_event += 1
            if comments_wanted is not None and events and since_event >= comments_wanted:
                break
        elif line == "":
            if current:
                events.append(current)
                since_event = 0
                if current.get("event") == "end":
                    break
            current = {}
        else:
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    return events, comments


def test_a_quiet_run_gets_keep_alive_comments_and_resumes_where_it_stopped(quiet: dict[str, Any]) -> None:
    url = f"{quiet['url']}/api/v1/export/runs/{quiet['run']}/events"
    with httpx.stream("GET", url, headers=quiet["headers"], timeout=30) as first:
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/event-stream")
        before, comments = read(first, comments_wanted=3)  # the run is pending and quiet: comments keep it open
    assert comments[-3:] == [": keep-alive"] * 3, comments
    seen = [e for e in before if "id" in e]
    assert [e["event"] for e in seen] == ["planned"] and seen[0]["id"] == "1", before
    assert all(e.get("event") != "end" for e in before)

    cancelled = httpx.post(f"{url.removesuffix('/events')}/cancel", headers=quiet["headers"], timeout=30)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "aborted", cancelled.text

    resumed_headers = {**quiet["headers"], "Last-Event-ID": seen[-1]["id"]}
    with httpx.stream("GET", url, headers=resumed_headers, timeout=30) as second:
        rest, _ = read(second)
    assert rest[-1]["event"] == "end"
    after = [e for e in rest if "id" in e]
    whole, _ = read_all(url, quiet["headers"])
    ids = [int(e["id"]) for e in seen + after]
    assert ids == [int(e["id"]) for e in whole] == list(range(1, len(whole) + 1)), (ids, whole)  # none lost, none twice
    assert json.loads(after[-1]["data"])["to"] == "aborted"


def read_all(url: str, headers: dict[str, str]) -> tuple[list[dict[str, str]], list[str]]:
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        events, comments = read(response)
    return [e for e in events if "id" in e], comments
