"""The manifest of a bundle whose signature verified, parsed once into a typed, immutable value.

A verifier reads ``export.json`` (or a developer portal's ``manifest.json``) once its signature has verified and
hands on a :class:`VerifiedManifest`: receivers ask it for the profile, tenant, run and counts instead of picking
them out of a dict. :meth:`VerifiedManifest.to_dict` gives back exactly the mapping it was made from, in its order,
so a report's JSON form is unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ProfileRef:
    """A bundle's profile as its manifest names it: ``id`` (``trivy:db``), ``kind`` (``trivy``), ``variant``
    (``db``)."""

    id: str | None
    kind: str | None
    variant: str | None

    @property
    def ref(self) -> str:
        """``kind:variant``, as messages name it."""
        return f"{self.kind}:{self.variant}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileRef:
        return cls(_optional_str(data.get("id")), _optional_str(data.get("kind")), _optional_str(data.get("variant")))


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


#: The profile of a manifest that names none (a developer portal's manifest.json, or nothing read yet).
NO_PROFILE = ProfileRef(None, None, None)


@dataclass(frozen=True)
class VerifiedManifest:
    """What a verified manifest says, typed; ``to_dict()`` round-trips the mapping ``from_dict`` was given.

    The empty manifest (:meth:`empty`) stands for a report whose manifest was never reached: its fields are None.
    """

    profile: ProfileRef = NO_PROFILE
    tenant: str | None = None
    run_id: str | None = None
    created_at: str | None = None
    file_count: int | None = None
    #: The sha256 of the manifest file's bytes, as they verified.
    sha256: str | None = None
    #: The ``encryption`` section (recipients, algorithm) of an encrypted payload; empty when not encrypted.
    encryption: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: A developer portal's name (``manifest.json`` of ``devportal:offline``).
    portal: str | None = None
    #: The whole mapping, as parsed: the sections of each profile, and the key order ``to_dict`` gives back.
    parsed_from: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifiedManifest:
        """Parse a verified manifest's mapping (its ``fileCount`` and ``sha256`` added by the verifier)."""
        fields = MappingProxyType(copy.deepcopy(dict(data)))
        profile = data.get("profile")
        count = data.get("fileCount")
        encryption = data.get("encryption")
        return cls(
            profile=ProfileRef.from_dict(profile) if isinstance(profile, Mapping) else NO_PROFILE,
            tenant=_optional_str(data.get("tenant")),
            run_id=_optional_str(data.get("runId")),
            created_at=_optional_str(data.get("createdAt")),
            file_count=count if isinstance(count, int) else None,
            sha256=_optional_str(data.get("sha256")),
            encryption=MappingProxyType(dict(encryption)) if isinstance(encryption, Mapping) else MappingProxyType({}),
            portal=_optional_str(data.get("portal")),
            parsed_from=fields,
        )

    @classmethod
    def empty(cls) -> VerifiedManifest:
        """No manifest: the verification failed before one verified."""
        return cls()

    def to_dict(self) -> dict[str, Any]:
        """The mapping this manifest was parsed from, key for key and in its order (a copy)."""
        return copy.deepcopy(dict(self.parsed_from))

    def section(self, name: str) -> Mapping[str, Any]:
        """A profile's own section of the manifest (``trivy``, ``mirror``, ``risk``); empty when absent."""
        value = self.parsed_from.get(name)
        return MappingProxyType(value) if isinstance(value, dict) else MappingProxyType({})
