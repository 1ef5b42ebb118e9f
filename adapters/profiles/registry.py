"""The registry of export profile adapters, keyed by ``kind:variant``. A new profile is a module plus a line.

Each adapter module is imported when its profile is first asked for, so listing the profiles, or a run of one,
never loads the others' libraries (mirror's TUF and securesystemslib, which brings boto3; Trivy's bbolt writer).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from core.bundle import PayloadProfile
    from core.profiles import ProfileConfig
    from core.store import Store

#: Profile id -> (module under adapters.profiles, the name of its PayloadProfile there).
_ADAPTERS: dict[str, tuple[str, str]] = {
    JSON_RAW: ("json_raw", "PROFILE"),
    JSON_POLICY: ("json_policy", "PROFILE"),
    TRIVY_DB: ("trivy_db", "PROFILE"),
    TRIVY_JAVA_DB: ("trivy_java_db", "PROFILE"),
    MIRROR_FULL: ("mirror", "FULL"),
    MIRROR_DELTA: ("mirror", "DELTA"),
    DEVPORTAL_OFFLINE: ("devportal", "PROFILE"),
    RISK_BUNDLE: ("risk_bundle", "PROFILE"),
    RISK_SIMULATION: ("risk_simulation", "PROFILE"),
    ATTESTATION_BUNDLE: ("attestation", "PROFILE"),
    BOOTSTRAP_PACK: ("bootstrap", "PROFILE"),
}


class _Registry(Mapping[str, "PayloadProfile"]):
    """Profile id -> its payload adapter; the adapter's module is imported on first use."""

    def __getitem__(self, profile_id: str) -> PayloadProfile:
        module, name = _ADAPTERS[profile_id]
        adapter: PayloadProfile = getattr(importlib.import_module(f"adapters.profiles.{module}"), name)
        return adapter

    def __iter__(self) -> Iterator[str]:
        return iter(_ADAPTERS)

    def __len__(self) -> int:
        return len(_ADAPTERS)


PROFILES: Mapping[str, PayloadProfile] = _Registry()


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
    if recipients:
        from pyrage import x25519  # only a run that encrypts

        for value in recipients:
            try:
                x25519.Recipient.from_str(value)
            except Exception:
                raise BadInputError(f"{value!r} is not an age X25519 recipient (age1...)") from None
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
