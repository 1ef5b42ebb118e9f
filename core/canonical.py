"""Canonical JSON (RFC 8785, JCS) for everything the tool signs or hashes."""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` with RFC 8785 canonicalization (sorted keys, ES6 numbers, UTF-8)."""
    data: bytes = rfc8785.dumps(value)
    return data
