"""Export profiles: builtins per tenant, custom profiles, revisions, validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.canonical import canonical_json
from core.errors import BadInputError, ExitCode, NotFoundError, UsageError
from core.home import Home
from core.profiles import BUILTIN_PROFILES, ProfileConfig, ProfileStore, parse_overrides, parse_profile_ref
from core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Home(tmp_path / "home")) as s:
        yield s


def _rows(store: Store, tenant: str) -> list[tuple[str, int, str, bool]]:
    return store.conn.execute(
        "SELECT profile_id, revision, config, builtin FROM export_profiles WHERE tenant = ? ORDER BY 1, 2", [tenant]
    ).fetchall()


def test_builtins_are_seeded_per_tenant_as_revision_1_with_canonical_config(store: Store) -> None:
    assert _rows(store, "acme") == []
    profiles = ProfileStore(store).list("acme")
    assert [(p.profile_id, p.revision, p.builtin) for p in profiles] == [
        (pid, 1, True) for pid in sorted(BUILTIN_PROFILES)
    ]
    assert {"json:raw", "json:policy", "mirror:full", "mirror:delta", "trivy:db", "risk:bundle"} <= set(
        BUILTIN_PROFILES
    )
    raw = {p.profile_id: p for p in profiles}["json:raw"].config
    assert raw.record_types == ("advisory", "vex", "sbom")
    assert raw.compression_level == 9
    assert raw.redaction_allowlist is None and raw.signing_key is None
    policy = {p.profile_id: p for p in profiles}["json:policy"].config
    assert policy.record_types == ("advisory", "vex", "sbom", "policy", "findings")
    rows = _rows(store, "acme")
    # The stored config is the RFC 8785 form: sorted keys, no spaces.
    assert {r[0]: r for r in rows}["json:raw"][
        2
    ] == '{"compressionLevel":9,"kind":"json","recordTypes":["advisory","vex","sbom"],' + (
        '"redactionAllowlist":null,"signingKey":null,"variant":"raw"}'
    )
    # Seeding is lazy and happens once: reading again adds nothing, and another tenant is untouched.
    ProfileStore(store).list("acme")
    assert len(_rows(store, "acme")) == len(BUILTIN_PROFILES)
    assert _rows(store, "other") == []


def test_create_a_custom_profile_varying_a_builtin(store: Store) -> None:
    profiles = ProfileStore(store)
    created = profiles.create(
        "acme",
        "nightly",
        "json:raw",
        {"compression_level": 3, "record_types": ["sbom", "advisory"], "signing_key": "ops-2025"},
    )
    assert (created.profile_id, created.revision, created.builtin) == ("nightly", 1, False)
    assert created.config.record_types == ("advisory", "sbom")  # canonical order, whatever the input order
    assert created.config.profile_kind == "json:raw"
    again = profiles.get("acme", "nightly")
    assert again.config == created.config
    assert [p.profile_id for p in profiles.list("acme")] == [*sorted(BUILTIN_PROFILES), "nightly"]
    with pytest.raises(NotFoundError):
        profiles.get("other", "nightly")  # profiles belong to one tenant


def test_update_makes_a_new_revision_only_when_the_config_changes(store: Store) -> None:
    profiles = ProfileStore(store)
    profiles.create("acme", "redacted", "json:policy", {"redaction_allowlist": ["advisory_id", "affected.purl"]})
    changed = profiles.update("acme", "redacted", {"compression_level": 5})
    assert changed.changed and changed.profile.revision == 2
    # The same config, even with the allowlist in another order, is the same revision, and says so.
    same = profiles.update("acme", "redacted", {"redaction_allowlist": ["affected.purl", "advisory_id"]})
    assert not same.changed and same.profile.revision == 2
    assert len([r for r in _rows(store, "acme") if r[0] == "redacted"]) == 2
    # Old revisions stay as they were: a run pinned to revision 1 rebuilds with level 9.
    assert profiles.get("acme", "redacted", 1).config.compression_level == 9
    assert profiles.get("acme", "redacted").config.compression_level == 5
    assert [p.revision for p in profiles.revisions("acme", "redacted")] == [1, 2]
    with pytest.raises(NotFoundError) as err:
        profiles.get("acme", "redacted", 7)
    assert "the latest is 2" in err.value.message


def test_builtins_cannot_be_changed_or_shadowed(store: Store) -> None:
    profiles = ProfileStore(store)
    with pytest.raises(UsageError) as err:
        profiles.update("acme", "json:raw", {"compression_level": 3})
    assert "builtin" in err.value.message and err.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError) as err:
        profiles.create("acme", "json:policy", "json:raw", {})
    assert "builtin" in err.value.message
    profiles.create("acme", "mine", "json:raw", {})
    with pytest.raises(UsageError) as err:
        profiles.create("acme", "mine", "json:raw", {})
    assert "already exists" in err.value.message


@pytest.mark.parametrize(
    ("base", "overrides", "error", "words"),
    [
        ("json:raw", {"compresion_level": 3}, UsageError, "unknown profile field 'compresion_level'"),
        ("json:raw", {"variant": "policy"}, UsageError, "cannot be changed"),
        ("json:raw", {"compression_level": 0}, BadInputError, "compression_level 0 is out of range"),
        ("json:raw", {"compression_level": 23}, BadInputError, "compression_level 23 is out of range"),
        ("json:raw", {"compression_level": "9"}, BadInputError, "must be an integer"),
        ("json:raw", {"record_types": ["advisory", "cves"]}, BadInputError, "unknown record type(s): cves"),
        ("json:raw", {"record_types": []}, BadInputError, "record_types is empty"),
        ("json:raw", {"record_types": ["advisory", "findings"]}, BadInputError, "need the policy variant"),
        ("json:raw", {"redaction_allowlist": ["advisory id"]}, BadInputError, "not a dotted field path"),
        ("json:raw", {"signing_key": "../etc/passwd"}, BadInputError, "is not a key name"),
        ("json:mirror", {}, UsageError, "unknown base profile 'json:mirror'"),
    ],
)
def test_bad_profiles_are_refused_with_a_reason(
    store: Store, base: str, overrides: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as err:
        ProfileStore(store).create("acme", "custom", base, overrides)
    assert words in str(err.value)
    assert _rows(store, "acme") == []  # nothing was written


def test_invalid_profile_id_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError) as err:
        ProfileStore(store).create("acme", "Has Spaces", "json:raw", {})
    assert "invalid profile id" in err.value.message


def test_overrides_from_command_line_strings() -> None:
    assert parse_overrides(
        ["compression_level=7", "record_types=advisory, sbom", "redaction_allowlist=", "signingKey=k1"]
    ) == {
        "compression_level": 7,
        "record_types": ["advisory", "sbom"],
        "redaction_allowlist": None,
        "signing_key": "k1",
    }
    with pytest.raises(UsageError):
        parse_overrides(["compression_level"])
    with pytest.raises(UsageError):
        parse_overrides(["level=3"])
    with pytest.raises(BadInputError):
        parse_overrides(["compression_level=high"])
    base = BUILTIN_PROFILES["json:raw"]
    config = base.with_overrides(parse_overrides(["compression_level=7", "redaction_allowlist=a.b,a.b,c"]))
    assert config.compression_level == 7 and config.redaction_allowlist == ("a.b", "c")


def test_profile_refs() -> None:
    assert parse_profile_ref("json:raw") == ("json:raw", None)
    assert parse_profile_ref("nightly@3") == ("nightly", 3)
    with pytest.raises(UsageError):
        parse_profile_ref("nightly@latest")


def test_config_round_trips_through_its_stored_form() -> None:
    config = BUILTIN_PROFILES["json:policy"].with_overrides({"redaction_allowlist": ["z", "a"], "signing_key": "k"})
    stored = canonical_json(config.to_dict())
    assert ProfileConfig.from_dict(json.loads(stored)) == config
    with pytest.raises(UsageError):
        ProfileConfig.from_dict({**config.to_dict(), "encryption": {"age": []}})


def test_read_only_store_lists_builtins_without_writing(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    Store.open(home).close()
    with Store.open(home, read_only=True) as ro:
        listed = ProfileStore(ro).list("acme")
        assert [p.profile_id for p in listed] == sorted(BUILTIN_PROFILES)
        assert ProfileStore(ro).get("acme", "json:raw").revision == 1
    with Store.open(home) as rw:
        assert _rows(rw, "acme") == []
