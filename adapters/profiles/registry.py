"""The registry of export profile adapters, keyed by ``kind:variant``. A new profile is a module plus a line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyrage import x25519

from adapters.profiles import (
    attestation,
    bootstrap,
    devportal,
    json_policy,
    json_raw,
    mirror,
    risk_bundle,
    risk_simulation,
    trivy_db,
    trivy_java_db,
)
from core.bundle import PayloadProfile
from core.contract.profiles import (
    ATTESTATION_BUNDLE,
    BOOTSTRAP_PACK,
    DEVPORTAL_OFFLINE,
    JSON_POLICY,
    JSON_RAW,
    MIRROR_DELTA,
    MIRROR_FULL,
    RISK_BUNDLE,
    RISK_SIMULATION,
    TRIVY_DB,
    TRIVY_JAVA_DB,
)
from core.errors import BadInputError, UsageError
from core.profiles import ProfileConfig
from core.store import Store

PROFILES: dict[str, PayloadProfile] = {
    JSON_RAW: json_raw.PROFILE,
    JSON_POLICY: json_policy.PROFILE,
    TRIVY_DB: trivy_db.PROFILE,
    TRIVY_JAVA_DB: trivy_java_db.PROFILE,
    MIRROR_FULL: mirror.FULL,
    MIRROR_DELTA: mirror.DELTA,
    DEVPORTAL_OFFLINE: devportal.PROFILE,
    RISK_BUNDLE: risk_bundle.PROFILE,
    RISK_SIMULATION: risk_simulation.PROFILE,
    ATTESTATION_BUNDLE: attestation.PROFILE,
    BOOTSTRAP_PACK: bootstrap.PROFILE,
}


def get_profile(kind: str, variant: str) -> PayloadProfile:
    """The payload adapter for a profile kind and variant."""
    try:
        return PROFILES[f"{kind}:{variant}"]
    except KeyError:
        raise UsageError(f"no payload adapter for profile {kind}:{variant}", hint=", ".join(PROFILES)) from None


#: The CLI flag of each run option, for error messages.
_FLAGS = {"base": "--base", "trivySchema": "--trivy-schema", "providers": "--provider"}


def run_options(config: ProfileConfig, requested: Mapping[str, Any], store: Store) -> dict[str, Any]:
    """The run options to pin for a run of ``config``, from what the user asked (``None``/empty: not given).

    Encryption recipients apply to every profile; anything else is the profile adapter's to accept
    (``plan_options(requested, store) -> dict``): an option a profile does not know is a usage error.
    """
    options: dict[str, Any] = {}
    recipients = requested.get("encryptionRecipients") or []
    for value in recipients:
        try:
            x25519.Recipient.from_str(value)
        except Exception:
            raise BadInputError(f"{value!r} is not an age X25519 recipient (age1...)") from None
    if recipients:
        options["encryptionRecipients"] = sorted(set(recipients))
    rest = {k: v for k, v in requested.items() if k != "encryptionRecipients" and v not in (None, "", [])}
    profile = get_profile(config.kind, config.variant)
    plan = getattr(profile, "plan_options", None)
    if plan is not None:
        options.update(plan(rest, store))
    elif rest:
        names = ", ".join(_FLAGS.get(k, k) for k in sorted(rest))
        raise UsageError(f"{names} does not apply to a {config.profile_kind} export")
    return options
