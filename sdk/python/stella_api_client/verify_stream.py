"""The streamed verification report of ``POST /api/v1/verify``, line by line (hand-written; kept across regeneration).

The server streams ``application/x-ndjson``: a ``{"type": "check", ...}`` line as each check completes, then one
``{"type": "result", ...}`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``, ``checkCount``...), or a
``{"type": "problem", "problem": {...}}`` line if the verification could not finish. :func:`iter_verify` yields the
lines as they arrive; :func:`verify_report` collects them into the one-document form (``checks`` and the result's
fields). The generated ``verify_bundle`` operation asks for that document at once instead (``Accept:
application/json``), and so sees nothing until the last check.

    for line in iter_verify(client, run="01J..."):
        if line["type"] == "check":
            print("ok " if line["ok"] else "FAIL", line["check"], line["detail"])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .client import AuthenticatedClient, Client

VERIFY_PATH = "/api/v1/verify"
NDJSON = "application/x-ndjson"
_CHUNK = 1 << 20


class VerifyProblem(Exception):
    """The server could not verify: an RFC 9457 problem, answered before the report or as its last line."""

    def __init__(self, problem: dict[str, Any], status: int) -> None:
        super().__init__(f"{status} {problem.get('code', 'error')}: {problem.get('detail', '')}")
        self.problem = problem
        self.status = status
        self.code: str = str(problem.get("code", "error"))
        self.exit_code: int | None = problem.get("exitCode")


class IncompleteReport(Exception):
    """The stream ended without its result or problem line (the connection was cut)."""


def _upload(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            yield block


def iter_verify(
    client: AuthenticatedClient | Client,
    *,
    run: str | None = None,
    bundle: str | os.PathLike[str] | bytes | None = None,
) -> Iterator[dict[str, Any]]:
    """Verify run ``run``'s bundle, or upload ``bundle`` (a path, streamed from disk, or bytes), and yield each line
    of the report as it arrives: the check lines, then the result line (last). Raises :class:`VerifyProblem` for a
    problem (the answer's, or a problem line's), :class:`IncompleteReport` when the stream stops short."""
    if (run is None) == (bundle is None):
        raise ValueError("give run or bundle, not both")
    headers = {"Accept": NDJSON}
    kwargs: dict[str, Any]
    if run is not None:
        kwargs = {"json": {"run": run}}
    elif isinstance(bundle, bytes):
        kwargs = {"content": bundle}
        headers["Content-Type"] = "application/octet-stream"
    else:
        assert bundle is not None
        path = Path(bundle)
        kwargs = {"content": _upload(path)}
        headers |= {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
    with client.get_httpx_client().stream("POST", VERIFY_PATH, headers=headers, **kwargs) as response:
        if response.status_code != 200:
            response.read()
            try:
                problem = response.json()
            except ValueError:
                problem = {"code": "http-error", "detail": response.text[:500]}
            raise VerifyProblem(problem if isinstance(problem, dict) else {}, response.status_code)
        for text in response.iter_lines():
            if not text.strip():
                continue
            line: dict[str, Any] = json.loads(text)
            if line.get("type") == "problem":
                problem = line.get("problem") or {}
                raise VerifyProblem(problem, int(problem.get("status", 500)))
            yield line
            if line.get("type") == "result":
                return
    raise IncompleteReport("the report stream ended before its result line")


def verify_report(
    client: AuthenticatedClient | Client,
    *,
    run: str | None = None,
    bundle: str | os.PathLike[str] | bytes | None = None,
) -> dict[str, Any]:
    """The whole report of :func:`iter_verify` as one document: the result line's fields and ``checks``."""
    checks: list[dict[str, Any]] = []
    for line in iter_verify(client, run=run, bundle=bundle):
        if line["type"] == "check":
            checks.append({k: v for k, v in line.items() if k != "type"})
        elif line["type"] == "result":
            result = {k: v for k, v in line.items() if k not in ("type", "checkCount")}
            return {**result, "checks": checks}
    raise IncompleteReport("the report stream ended before its result line")
