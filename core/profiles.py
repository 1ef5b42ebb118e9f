"""Export profiles: what a bundle contains and how it is written, versioned per tenant.

A profile is a named, revisioned :class:`ProfileConfig`. Two profiles are built in (``json:raw`` and
``json:policy``); a tenant may add custom profiles that vary one of them (fewer record types, another
compression level, a redaction allowlist, a default signing key). Rows live in ``export_profiles`` with the
config as canonical JSON (RFC 8785), so "the same config" means "the same bytes", and a run pins the exact
revision it was planned with.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyrage
from pyrage import x25519

from core.canonical import canonical_json
from core.clock import rfc3339, utcnow
from core.contract.profiles import (
    ATTESTATION_BUNDLE,
    BOOTSTRAP_PACK,
    DEVPORTAL_OFFLINE,
    FORMER_IDS,
    JSON_POLICY,
    JSON_RAW,
    MIRROR_DELTA,
    MIRROR_FULL,
    RISK_BUNDLE,
    RISK_SIMULATION,
    TRIVY_DB,
    TRIVY_JAVA_DB,
)
from core.errors import BadInputError, NotFoundError, UsageError
from core.records import DocumentKind
from core.store import Store, transaction
from core.tenants import validate_tenant

#: Every record type a profile may select, in their canonical order.
RECORD_TYPES: tuple[str, ...] = tuple(k.value for k in DocumentKind)
#: Record types only the ``policy`` variant knows how to write.
POLICY_RECORD_TYPES = frozenset({"policy", "findings"})

#: (kind, variant) pairs this version can build.
KNOWN_VARIANTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("json", "raw"),
        ("json", "policy"),
        ("mirror", "full"),
        ("mirror", "delta"),
        ("trivy", "db"),
        ("trivy", "java-db"),
        ("attestation", "bundle"),
        ("risk", "bundle"),
        ("risk", "simulation"),
        ("devportal", "offline"),
        ("bootstrap", "pack"),
    }
)
#: Record types each non-JSON kind may select (JSON kinds: every type, policy ones only in the policy variant).
_KIND_RECORD_TYPES: dict[str, frozenset[str]] = {
    "mirror": frozenset({"advisory", "vex", "sbom", "attestation", "kev", "epss", "policy", "findings"}),
    "trivy": frozenset({"advisory", "sbom"}),
    "attestation": frozenset({"attestation"}),
    "risk": frozenset({"advisory", "kev", "epss", "policy", "findings"}),
    "devportal": frozenset({"devportal"}),
    # A bootstrap pack ships files a pack spec names, not documents; its selection is pinned empty.
    "bootstrap": frozenset({"sbom"}),
}

MIN_COMPRESSION_LEVEL = 1
MAX_COMPRESSION_LEVEL = 22
DEFAULT_COMPRESSION_LEVEL = 9

_PROFILE_ID = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,63}$")
# The same rule `stella keys generate` applies to key names.
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*$")

# Overridable fields: snake_case (Python, CLI) and camelCase (stored JSON) spellings both work.
_FIELD_ALIASES: dict[str, str] = {
    "record_types": "record_types",
    "recordTypes": "record_types",
    "compression_level": "compression_level",
    "compressionLevel": "compression_level",
    "redaction_allowlist": "redaction_allowlist",
    "redactionAllowlist": "redaction_allowlist",
    "signing_key": "signing_key",
    "signingKey": "signing_key",
    "encryption_recipients": "encryption_recipients",
    "encryptionRecipients": "encryption_recipients",
}
_FIXED_FIELDS = {"kind", "variant"}


# -- validation ----------------------------------------------------------------------------


def _fields_hint() -> str:
    return "fields: record_types, compression_level, redaction_allowlist, signing_key"


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadInputError(f"{field} must be a non-empty string, not {value!r}")
    return value


def _str_list(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadInputError(f"{field} must be a list of strings, not {value!r}")
    return tuple(_str(v, field) for v in value)


def _check_record_types(values: Sequence[str], kind: str, variant: str) -> tuple[str, ...]:
    if not values:
        raise BadInputError("record_types is empty", hint="known record types: " + ", ".join(RECORD_TYPES))
    unknown = sorted(set(values) - set(RECORD_TYPES))
    if unknown:
        raise BadInputError(
            f"unknown record type(s): {', '.join(unknown)}", hint="known record types: " + ", ".join(RECORD_TYPES)
        )
    allowed = _KIND_RECORD_TYPES.get(kind)
    if allowed is not None:
        wrong = sorted(set(values) - allowed)
        if wrong:
            raise BadInputError(
                f"record type(s) {', '.join(wrong)} cannot go into a {kind} bundle",
                hint=f"{kind} profiles take: " + ", ".join(t for t in RECORD_TYPES if t in allowed),
            )
    elif variant != "policy":
        wrong = sorted(set(values) & POLICY_RECORD_TYPES)
        if wrong:
            raise BadInputError(
                f"record type(s) {', '.join(wrong)} need the policy variant",
                hint="base the profile on json:policy",
            )
    return tuple(t for t in RECORD_TYPES if t in set(values))


def _check_level(level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int):
        raise BadInputError(f"compression_level must be an integer, not {level!r}")
    if not MIN_COMPRESSION_LEVEL <= level <= MAX_COMPRESSION_LEVEL:
        raise BadInputError(
            f"compression_level {level} is out of range",
            hint=f"zstd levels run from {MIN_COMPRESSION_LEVEL} to {MAX_COMPRESSION_LEVEL}",
        )
    return level


def _check_allowlist(paths: Sequence[str]) -> tuple[str, ...]:
    for path in paths:
        if not _FIELD_PATH.match(path):
            raise BadInputError(
                f"redaction_allowlist entry {path!r} is not a dotted field path",
                hint="e.g. advisory_id or affected.purl",
            )
    # Order does not change what is kept: sort, so equal allowlists give equal revisions.
    return tuple(sorted(set(paths)))


def _check_recipients(values: Sequence[str]) -> tuple[str, ...]:
    """age X25519 recipients (``age1...``), sorted and de-duplicated; a bad one is named."""
    out = sorted(set(values))
    if not out:
        raise BadInputError("encryption_recipients needs at least one age recipient (age1...)")
    for value in out:
        try:
            x25519.Recipient.from_str(value)
        except pyrage.RecipientError:
            raise BadInputError(f"{value!r} is not an age X25519 recipient (age1...)") from None
    return tuple(out)


def _check_key_name(name: str) -> None:
    if not _KEY_NAME.match(name):
        raise BadInputError(
            f"signing_key {name!r} is not a key name", hint="letters, digits, '.', '_' and '-' (at most 64)"
        )


@dataclass(frozen=True)
class ProfileConfig:
    """Everything about a profile that changes the bytes of a bundle.

    ``redaction_allowlist`` lists dotted field paths kept in the JSONL records (``None``: no redaction).
    Encryption is not a field yet: it arrives with the mirror profiles.
    """

    kind: str
    variant: str
    record_types: tuple[str, ...]
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    redaction_allowlist: tuple[str, ...] | None = None
    signing_key: str | None = None
    encryption_recipients: tuple[str, ...] | None = None  # age X25519 recipients (public); payload is encrypted

    def __post_init__(self) -> None:
        if (self.kind, self.variant) not in KNOWN_VARIANTS:
            known = ", ".join(sorted(f"{k}:{v}" for k, v in KNOWN_VARIANTS))
            raise BadInputError(f"unknown profile kind {self.kind}:{self.variant}", hint=f"known: {known}")
        object.__setattr__(self, "record_types", _check_record_types(self.record_types, self.kind, self.variant))
        object.__setattr__(self, "compression_level", _check_level(self.compression_level))
        if self.redaction_allowlist is not None:
            object.__setattr__(self, "redaction_allowlist", _check_allowlist(self.redaction_allowlist))
        if self.signing_key is not None:
            _check_key_name(self.signing_key)
        if self.encryption_recipients is not None:
            object.__setattr__(self, "encryption_recipients", _check_recipients(self.encryption_recipients))

    @property
    def profile_kind(self) -> str:
        """``kind:variant``, e.g. ``json:raw``: the builtin this config is a variation of."""
        return f"{self.kind}:{self.variant}"

    def to_dict(self) -> dict[str, Any]:
        """The stored and manifest form (camelCase keys, lists in canonical order)."""
        return {
            "kind": self.kind,
            "variant": self.variant,
            "recordTypes": list(self.record_types),
            "compressionLevel": self.compression_level,
            "redactionAllowlist": None if self.redaction_allowlist is None else list(self.redaction_allowlist),
            "signingKey": self.signing_key,
        } | ({"encryptionRecipients": list(self.encryption_recipients)} if self.encryption_recipients else {})

    def canonical(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`: equal configs give equal bytes."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileConfig:
        """Read a stored config (as :meth:`to_dict` writes it); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise BadInputError("a profile config must be a JSON object")
        unknown = sorted(set(data) - {"kind", "variant"} - set(_FIELD_ALIASES))
        if unknown:
            raise UsageError(f"unknown profile field(s): {', '.join(unknown)}", hint=_fields_hint())
        for required in ("kind", "variant", "recordTypes"):
            if required not in data:
                raise BadInputError(f"profile config lacks {required!r}")
        base = cls(
            kind=_str(data["kind"], "kind"),
            variant=_str(data["variant"], "variant"),
            record_types=_str_list(data["recordTypes"], "record_types"),
        )
        rest = {k: v for k, v in data.items() if k not in ("kind", "variant", "recordTypes")}
        return base.with_overrides(rest)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ProfileConfig:
        """A copy with ``overrides`` applied (field name -> typed value); bad names or values raise.

        Unknown names are a :class:`UsageError` (exit 2); values of the wrong type or out of range a
        :class:`BadInputError` (exit 3). ``kind`` and ``variant`` come from the base and cannot change.
        """
        fields: dict[str, Any] = {
            "kind": self.kind,
            "variant": self.variant,
            "record_types": self.record_types,
            "compression_level": self.compression_level,
            "redaction_allowlist": self.redaction_allowlist,
            "signing_key": self.signing_key,
            "encryption_recipients": self.encryption_recipients,
        }
        for name, value in overrides.items():
            if name in _FIXED_FIELDS:
                if value == fields[name]:
                    continue
                raise UsageError(
                    f"profile field {name!r} cannot be changed",
                    hint="kind and variant come from the base profile; create a profile from another base",
                )
            field = _FIELD_ALIASES.get(name)
            if field is None:
                raise UsageError(f"unknown profile field {name!r}", hint=_fields_hint())
            if field == "record_types":
                fields[field] = _str_list(value, field)
            elif field == "compression_level":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise BadInputError(f"compression_level must be an integer, not {value!r}")
                fields[field] = value
            elif field in ("redaction_allowlist", "encryption_recipients"):
                fields[field] = None if value is None else _str_list(value, field)
            else:
                fields[field] = None if value is None else _str(value, field)
        return ProfileConfig(**fields)


#: The builtin profiles: every tenant has them, as revision 1, without asking.
BUILTIN_PROFILES: dict[str, ProfileConfig] = {
    JSON_RAW: ProfileConfig(kind="json", variant="raw", record_types=("advisory", "vex", "sbom")),
    JSON_POLICY: ProfileConfig(
        kind="json", variant="policy", record_types=("advisory", "vex", "sbom", "policy", "findings")
    ),
    MIRROR_FULL: ProfileConfig(
        kind="mirror", variant="full", record_types=("advisory", "vex", "sbom", "attestation", "policy", "findings")
    ),
    MIRROR_DELTA: ProfileConfig(
        kind="mirror", variant="delta", record_types=("advisory", "vex", "sbom", "attestation", "policy", "findings")
    ),
    TRIVY_DB: ProfileConfig(kind="trivy", variant="db", record_types=("advisory",)),
    TRIVY_JAVA_DB: ProfileConfig(kind="trivy", variant="java-db", record_types=("sbom",)),
    ATTESTATION_BUNDLE: ProfileConfig(kind="attestation", variant="bundle", record_types=("attestation",)),
    RISK_BUNDLE: ProfileConfig(kind="risk", variant="bundle", record_types=("kev", "epss")),
    RISK_SIMULATION: ProfileConfig(
        kind="risk", variant="simulation", record_types=("advisory", "kev", "epss", "policy", "findings")
    ),
    DEVPORTAL_OFFLINE: ProfileConfig(kind="devportal", variant="offline", record_types=("devportal",)),
    BOOTSTRAP_PACK: ProfileConfig(kind="bootstrap", variant="pack", record_types=("sbom",)),
}


@dataclass(frozen=True)
class Profile:
    """One revision of a profile of one tenant."""

    tenant: str
    profile_id: str
    revision: int
    config: ProfileConfig
    builtin: bool
    created_at: datetime | None  # None only for a builtin shown from a read-only store before it was seeded

    @property
    def ref(self) -> str:
        """``id@revision``: how a run names the profile it pinned."""
        return f"{self.profile_id}@{self.revision}"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "tenant": self.tenant,
            "id": self.profile_id,
            "revision": self.revision,
            "builtin": self.builtin,
            "createdAt": None if self.created_at is None else rfc3339(self.created_at),
            "config": self.config.to_dict(),
        }


@dataclass(frozen=True)
class ProfileUpdate:
    """The result of :meth:`ProfileStore.update`: the revision now current, and whether it is new."""

    profile: Profile
    changed: bool

    @property
    def text(self) -> str:
        """The sentence `stella export profile update` prints."""
        return f"profile {self.profile.ref}" + (" (new revision)" if self.changed else " unchanged: same config")

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form: the profile, and whether the update made a new revision."""
        return {"changed": self.changed, **self.profile.to_dict()}


def current_profile_id(profile_id: str) -> str:
    """``profile_id`` itself, unless it is a former spelling (``risk-bundle``): that is refused, naming the id to
    use, so that one spelling (``kind:variant``) is accepted everywhere."""
    now = FORMER_IDS.get(profile_id)
    if now is not None:
        raise UsageError(
            f"profile {profile_id!r} is now called {now!r}",
            hint=f"use --profile {now}: every built-in profile id is kind:variant (`stella export profile list`)",
        )
    return profile_id


def parse_profile_ref(text: str) -> tuple[str, int | None]:
    """``json:raw`` -> (``json:raw``, None); ``nightly@3`` -> (``nightly``, 3); a former spelling is refused."""
    name, sep, rev = text.rpartition("@")
    if not sep:
        return current_profile_id(text), None
    current_profile_id(name)
    if not rev.isdigit() or int(rev) < 1:
        raise UsageError(f"invalid profile revision in {text!r}", hint="write ID or ID@REVISION, e.g. json:raw@1")
    return name, int(rev)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Typed overrides from ``field=value`` strings (the CLI's ``--set``).

    ``record_types`` and ``redaction_allowlist`` take comma-separated lists; an empty value unsets
    ``redaction_allowlist`` (no redaction) and ``signing_key``.
    """
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"profile setting {item!r} is not FIELD=VALUE", hint=_fields_hint())
        field = _FIELD_ALIASES.get(name)
        if field is None:
            if name in _FIXED_FIELDS:
                raise UsageError(f"profile field {name!r} cannot be changed", hint="it comes from the base profile")
            raise UsageError(f"unknown profile field {name!r}", hint=_fields_hint())
        if field in out:
            raise UsageError(f"profile field {name!r} given twice")
        value = value.strip()
        if field == "compression_level":
            if not value.lstrip("-").isdigit():
                raise BadInputError(f"compression_level must be an integer, not {value!r}")
            out[field] = int(value)
        elif field in ("record_types", "redaction_allowlist", "encryption_recipients"):
            parts = [p.strip() for p in value.split(",")] if value else []
            if field in ("redaction_allowlist", "encryption_recipients") and not parts:
                out[field] = None
            else:
                out[field] = parts
        else:
            out[field] = value or None
    return out


class ProfileStore:
    """Profiles of every tenant, in ``export_profiles``.

    Builtins are seeded lazily: the first time a tenant's profiles are read through a writable store, each
    builtin is written as revision 1. Should a later version of stella change a builtin's defaults, the next
    read adds a new revision rather than altering the old one, so runs that pinned revision 1 stay
    reproducible.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ---------------------------------------------------------------------------
    def list(self, tenant: str) -> list[Profile]:
        """The latest revision of every profile of ``tenant``, builtins first, then by id."""
        validate_tenant(tenant)
        cur = self.store.cursor()
        try:
            self._seed(cur, tenant)
            rows = cur.execute(
                "SELECT profile_id, revision, config, builtin, created_at FROM ("
                " SELECT *, row_number() OVER (PARTITION BY profile_id ORDER BY revision DESC) AS rn"
                " FROM export_profiles WHERE tenant = ?) WHERE rn = 1 ORDER BY builtin DESC, profile_id",
                [tenant],
            ).fetchall()
        finally:
            cur.close()
        found = {r[0]: _profile(tenant, r) for r in rows}
        for pid, synthetic in self._unseeded(tenant, found):
            found[pid] = synthetic
        return sorted(found.values(), key=lambda p: (not p.builtin, p.profile_id))

    def get(self, tenant: str, profile_id: str, revision: int | None = None) -> Profile:
        """One revision of a profile (the latest when ``revision`` is None)."""
        validate_tenant(tenant)
        current_profile_id(profile_id)
        cur = self.store.cursor()
        try:
            self._seed(cur, tenant)
            rows = cur.execute(
                "SELECT profile_id, revision, config, builtin, created_at FROM export_profiles"
                " WHERE tenant = ? AND profile_id = ? ORDER BY revision DESC",
                [tenant, profile_id],
            ).fetchall()
        finally:
            cur.close()
        if not rows:
            for pid, synthetic in self._unseeded(tenant, {}):
                if pid == profile_id and revision in (None, 1):
                    return synthetic
            raise NotFoundError(
                f"no profile {profile_id!r} in tenant {tenant!r}", hint="see `stella export profile list`"
            )
        if revision is None:
            return _profile(tenant, rows[0])
        for row in rows:
            if row[1] == revision:
                return _profile(tenant, row)
        raise NotFoundError(f"profile {profile_id!r} has no revision {revision} (the latest is {rows[0][1]})")

    def revisions(self, tenant: str, profile_id: str) -> builtins.list[Profile]:
        """Every revision of a profile, oldest first."""
        latest = self.get(tenant, profile_id)
        return [self.get(tenant, profile_id, rev) for rev in range(1, latest.revision + 1)]

    # -- writing ---------------------------------------------------------------------------
    def create(self, tenant: str, profile_id: str, base: str, overrides: Mapping[str, Any]) -> Profile:
        """A custom profile varying the builtin ``base``, as revision 1."""
        validate_tenant(tenant)
        if not _PROFILE_ID.match(profile_id):
            raise UsageError(
                f"invalid profile id {profile_id!r}",
                hint="lower-case letters, digits, '.', '_', ':' and '-' (at most 64)",
            )
        if profile_id in BUILTIN_PROFILES or profile_id in FORMER_IDS:
            raise UsageError(
                f"{profile_id!r} is a builtin profile", hint="choose another id for a custom profile based on it"
            )
        base_config = BUILTIN_PROFILES.get(current_profile_id(base))
        if base_config is None:
            raise UsageError(f"unknown base profile {base!r}", hint="bases: " + ", ".join(BUILTIN_PROFILES))
        config = base_config.with_overrides(overrides)
        cur = self.store.cursor()
        try:
            with transaction(cur):
                exists = cur.execute(
                    "SELECT count(*) FROM export_profiles WHERE tenant = ? AND profile_id = ?", [tenant, profile_id]
                ).fetchone()
                if exists and exists[0]:
                    raise UsageError(
                        f"profile {profile_id!r} already exists in tenant {tenant!r}",
                        hint="change it with `stella export profile update`",
                    )
                profile = _insert(cur, tenant, profile_id, 1, config, builtin=False)
        finally:
            cur.close()
        return profile

    def update(self, tenant: str, profile_id: str, overrides: Mapping[str, Any]) -> ProfileUpdate:
        """Apply ``overrides`` to the latest revision; a new revision only when the config changes."""
        current = self.get(tenant, profile_id)
        if current.builtin:
            raise UsageError(
                f"builtin profile {profile_id!r} cannot be changed",
                hint=f"create a custom profile based on it: `stella export profile create NAME --base {profile_id}`",
            )
        config = current.config.with_overrides(overrides)
        if config.canonical() == current.config.canonical():
            return ProfileUpdate(current, changed=False)
        cur = self.store.cursor()
        try:
            with transaction(cur):
                profile = _insert(cur, tenant, profile_id, current.revision + 1, config, builtin=False)
        finally:
            cur.close()
        return ProfileUpdate(profile, changed=True)

    # -- builtins --------------------------------------------------------------------------
    def _seed(self, cur: duckdb.DuckDBPyConnection, tenant: str) -> None:
        if self.store.read_only:
            return
        latest = dict(
            cur.execute(
                "SELECT profile_id, max(revision) FROM export_profiles WHERE tenant = ? AND builtin"
                " GROUP BY profile_id",
                [tenant],
            ).fetchall()
        )
        todo: list[tuple[str, int, ProfileConfig]] = []
        for pid, config in BUILTIN_PROFILES.items():
            rev = latest.get(pid)
            if rev is None:
                todo.append((pid, 1, config))
                continue
            row = cur.execute(
                "SELECT config FROM export_profiles WHERE tenant = ? AND profile_id = ? AND revision = ?",
                [tenant, pid, rev],
            ).fetchone()
            if row is None or _config_bytes(row[0]) != config.canonical():
                todo.append((pid, int(rev) + 1, config))
        if not todo:
            return
        with transaction(cur):
            for pid, rev, config in todo:
                _insert(cur, tenant, pid, rev, config, builtin=True)

    def _unseeded(self, tenant: str, found: Mapping[str, Profile]) -> Iterable[tuple[str, Profile]]:
        # A read-only store cannot seed; show the builtins as they would be seeded.
        if not self.store.read_only:
            return []
        return [
            (pid, Profile(tenant, pid, 1, config, True, None))
            for pid, config in BUILTIN_PROFILES.items()
            if pid not in found
        ]


# -- helpers -------------------------------------------------------------------------------


def _insert(
    cur: duckdb.DuckDBPyConnection, tenant: str, profile_id: str, revision: int, config: ProfileConfig, *, builtin: bool
) -> Profile:
    now = utcnow().replace(microsecond=0)
    cur.execute(
        "INSERT INTO export_profiles (tenant, profile_id, revision, kind, variant, config, builtin, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            tenant,
            profile_id,
            revision,
            config.kind,
            config.variant,
            config.canonical().decode("utf-8"),
            builtin,
            now,
        ],
    )
    return Profile(tenant, profile_id, revision, config, builtin, now)


def _profile(tenant: str, row: Sequence[Any]) -> Profile:
    pid, revision, config, builtin, created_at = row
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise BadInputError(f"stored config of profile {pid!r} revision {revision} is not JSON: {exc}") from None
    return Profile(tenant, pid, int(revision), ProfileConfig.from_dict(parsed), bool(builtin), created_at)


def _config_bytes(stored: Any) -> bytes:
    return canonical_json(json.loads(stored))
