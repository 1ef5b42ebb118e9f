"""Tenants: the default one and what a tenant's name may be. Light on purpose: every command's parser needs
:data:`DEFAULT_TENANT`, and importing :mod:`core.ingest` for it would load the import pipeline (pyarrow, DuckDB)."""

from __future__ import annotations

from core.errors import UsageError

DEFAULT_TENANT = "default"


def validate_tenant(tenant: str) -> str:
    """Tenants are short identifiers: letters, digits, '-', '_' and '.'."""
    ok = tenant and len(tenant) <= 64 and all(c.isalnum() or c in "-_." for c in tenant)
    if not ok:
        raise UsageError(f"invalid tenant {tenant!r}", hint="use letters, digits, '-', '_' or '.' (at most 64)")
    return tenant
