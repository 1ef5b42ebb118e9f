"""Export profiles of a tenant: list, show, create and update (`stella export profile ...`, the Profiles screen)."""

from __future__ import annotations

from collections.abc import Sequence

from core.home import Home
from core.profiles import Profile, ProfileStore, ProfileUpdate, parse_overrides, parse_profile_ref
from core.store import Store
from core.tenants import validate_tenant

# The store is opened writable even to read: the builtin profiles are seeded on first use.


def list_profiles(home: Home, tenant: str) -> list[Profile]:
    """The tenant's profiles (builtins and custom), the current revision of each."""
    tenant = validate_tenant(tenant)
    with Store.open(home) as store:
        return ProfileStore(store).list(tenant)


def show_profile(home: Home, tenant: str, ref: str) -> Profile:
    """One profile by ``ID`` (its current revision) or ``ID@REVISION``."""
    name, revision = parse_profile_ref(ref)
    tenant = validate_tenant(tenant)
    with Store.open(home) as store:
        return ProfileStore(store).get(tenant, name, revision)


def profile_revisions(home: Home, tenant: str, profile_id: str) -> list[Profile]:
    """Every revision of a profile, oldest first."""
    with Store.open(home) as store:
        return ProfileStore(store).revisions(validate_tenant(tenant), profile_id)


def create_profile(home: Home, tenant: str, profile_id: str, base: str, settings: Sequence[str] = ()) -> Profile:
    """A custom profile varying builtin ``base`` by ``settings`` (``FIELD=VALUE``); revision 1."""
    tenant = validate_tenant(tenant)
    overrides = parse_overrides(settings)
    with Store.open(home) as store:
        return ProfileStore(store).create(tenant, profile_id, base, overrides)


def update_profile(home: Home, tenant: str, profile_id: str, settings: Sequence[str]) -> ProfileUpdate:
    """Change a custom profile by ``settings``: a new revision when its config changes."""
    tenant = validate_tenant(tenant)
    overrides = parse_overrides(settings)
    with Store.open(home) as store:
        return ProfileStore(store).update(tenant, profile_id, overrides)
