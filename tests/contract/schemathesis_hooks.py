"""Schemathesis hooks for tests/contract/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

One extra check: every error answer is an RFC 9457 problem (``application/problem+json`` whose ``status`` member
equals the HTTP status), whatever schemathesis sent."""

from __future__ import annotations

import json
from typing import Any

import schemathesis

PROBLEM = "application/problem+json"


@schemathesis.check
def problem_details(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media != PROBLEM:
        raise AssertionError(f"a {response.status_code} answered {media or 'no content type'}, not {PROBLEM}")
    body = json.loads(response.content)
    if not isinstance(body, dict) or body.get("status") != response.status_code or "title" not in body:
        raise AssertionError(f"a {response.status_code} problem without a matching status and a title: {body!r}")
    return None
