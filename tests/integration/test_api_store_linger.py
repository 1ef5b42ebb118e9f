"""The API server keeps its store open for a moment after the last use (``app.api.store.StoreHolder``): requests
that follow one another share one open store instead of opening it each time, and once the server is idle the
store is closed, so the CLI (another writer) can use the home.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.api.store import StoreHolder
from core import __version__
from core.errors import StoreLockedError
from core.home import Home
from core.store import Store
from services.tokens import create_token
from tests.integration.test_api_verify_stream import InProcess


@pytest.fixture
def home(tmp_path: Any) -> Home:
    home = Home(tmp_path / "home").ensure()
    Store.open(home).close()  # created and migrated
    return home


def can_open(home: Home) -> bool:
    """Whether another writer could open the store now (the holder's flock refuses it even in this process)."""
    try:
        Store.open(home).close()
    except StoreLockedError:
        return False
    return True


def wait_until_free(home: Home, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not can_open(home):
        assert time.monotonic() < deadline, "the server never let the store go"
        time.sleep(0.05)


def test_uses_in_a_row_share_one_open_store_which_is_closed_once_idle(home: Home) -> None:
    holder = StoreHolder(home, linger=0.3)
    with holder.use() as first:
        first.cursor().execute("select 1")
    with holder.use() as second, holder.use() as nested:
        assert second is first and nested is first  # not closed and opened again in between
    assert holder.opened == 1 and not can_open(home)  # still held, for the next request
    wait_until_free(home)  # ...and let go once idle
    with holder.use() as third:
        assert third is not first
    assert holder.opened == 2
    wait_until_free(home)


def test_a_store_in_use_is_never_closed_under_its_user(home: Home) -> None:
    holder = StoreHolder(home, linger=0.05)
    with holder.use() as store:
        time.sleep(0.3)  # several lingers long
        assert store.cursor().execute("select 42").fetchone() == (42,)
    wait_until_free(home)


def test_alone_closes_a_lingering_store_at_once_and_linger_zero_never_keeps_it(home: Home) -> None:
    holder = StoreHolder(home, linger=600)
    with holder.use():
        pass
    assert not can_open(home)
    with holder.alone():
        assert can_open(home)  # a service that opens the store itself is not locked out by the linger
    eager = StoreHolder(home, linger=0)
    with eager.use():
        assert not can_open(home)
    assert can_open(home)


@pytest.fixture(params=[30.0, 0.0], ids=["linger", "no-linger"])
def served(home: Home, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    _, token = create_token(home, tenant="acme", scopes=["export:read"], ttl=timedelta(hours=1), subject="linger")
    server = InProcess(home, store_linger=request.param)
    try:
        yield {"url": server.url, "token": token, "holder": server.app.state.holder, "linger": request.param}
    finally:
        server.stop()


def test_a_burst_of_requests_opens_the_store_once(served: dict[str, Any]) -> None:
    holder: StoreHolder = served["holder"]
    before = holder.opened
    with httpx.Client(headers={"Authorization": f"Bearer {served['token']}"}, timeout=30) as client:
        for _ in range(20):
            got = client.get(f"{served['url']}/api/v1/export/runs")
            assert got.status_code == 200, got.text
            assert got.headers["x-stella-version"] == __version__
    # Without the linger, each of these requests (one at a time) opened the store again.
    assert holder.opened - before == (1 if served["linger"] else 20), holder.opened
