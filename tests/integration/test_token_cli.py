"""`stella token create|list|revoke` as a user runs them: the token alone on the last line, exit codes, JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import AuthenticationError
from core.home import Home
from services.tokens import authenticate
from tests.conftest import CliResult

Stella = Callable[..., CliResult]
URL = "http://127.0.0.1:8470/api/export/profiles"


def _check(home: Path, token: str) -> str:
    principal = authenticate(Home(home), authorization=f"Bearer {token}", dpop=None, method="GET", url=URL)
    return principal.tenant


def test_create_prints_the_token_alone_on_the_last_line_and_it_authenticates(stella: Stella, home: Path) -> None:
    res = stella(
        "token", "create", "--tenant", "acme", "--scope", "export:run", "--scope", "export:read", "--ttl", "8h"
    )
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    token = lines[-1]
    assert token.count(".") == 2 and " " not in token
    assert "acme" in lines[0] and "export:run, export:read" in lines[0] and "in 8h" in lines[0]
    assert _check(home, token) == "acme"

    listed = stella("token", "list", "--json")
    assert listed.code == 0
    (entry,) = listed.json()["tokens"]  # type: ignore[index]
    assert (
        entry["tenant"] == "acme" and entry["status"] == "active" and entry["scopes"] == ["export:run", "export:read"]
    )
    assert token not in listed.out and token.rsplit(".", 1)[1] not in listed.out
    assert token not in stella("token", "list").out

    revoked = stella("token", "revoke", entry["id"])
    assert revoked.code == 0 and "revoked" in revoked.out
    assert stella("token", "list", "--json").json()["tokens"][0]["status"] == "revoked"  # type: ignore[index]
    with pytest.raises(AuthenticationError, match="revoked"):
        _check(home, token)


def test_create_json_carries_the_token_and_the_binding(stella: Stella, home: Path) -> None:
    jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    res = stella("token", "create", "--json", "--tenant", "t1", "--scope", "export:download", "--dpop-jkt", jkt)
    assert res.code == 0, res.err
    doc = res.json()
    assert isinstance(doc, dict)
    assert doc["dpopJkt"] == jkt and doc["tenant"] == "t1" and doc["status"] == "active"
    expires = datetime.fromisoformat(doc["expiresAt"])
    assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3600  # the default ttl is 1h
    assert str(doc["token"]).count(".") == 2


def test_bad_requests_exit_2_and_mint_nothing(stella: Stella, home: Path) -> None:
    cases = [
        ("--tenant", "acme", "--scope", "export:everything"),
        ("--tenant", "a/b", "--scope", "export:read"),
        ("--tenant", "acme", "--scope", "export:read", "--ttl", "90d"),
        ("--tenant", "acme", "--scope", "export:read", "--ttl", "soon"),
        ("--tenant", "acme", "--scope", "export:read", "--dpop-jkt", "abc"),
        ("--tenant", "acme"),
    ]
    for args in cases:
        res = stella("token", "create", *args)
        assert res.code == 2, (args, res.out, res.err)
        assert res.out.count(".") < 2  # no token printed
    assert stella("token", "list", "--json").json() == {"tokens": []}
    missing = stella("token", "revoke", "f" * 32)
    assert missing.code == 3 and "no token" in missing.err
