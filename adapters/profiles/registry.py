"""The registry of export profile adapters, keyed by ``kind:variant``. A new profile is a module plus a line."""

from __future__ import annotations

from adapters.profiles import json_policy, json_raw
from core.bundle import PayloadProfile
from core.errors import UsageError

PROFILES: dict[str, PayloadProfile] = {
    "json:raw": json_raw.PROFILE,
    "json:policy": json_policy.PROFILE,
}


def get_profile(kind: str, variant: str) -> PayloadProfile:
    """The payload adapter for a profile kind and variant."""
    try:
        return PROFILES[f"{kind}:{variant}"]
    except KeyError:
        raise UsageError(f"no payload adapter for profile {kind}:{variant}", hint=", ".join(PROFILES)) from None
