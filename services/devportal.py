"""Developer portals: import a portal tree, list what is imported, export a portal as a signed bundle.

Verifying and serving a portal bundle are receiving workflows (see the verifier in :mod:`verify.devportal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.devportal import PortalImport, import_portal, list_portals, resolve_portal
from core.contract.profiles import DEVPORTAL_OFFLINE
from core.home import Home
from core.progress import Observer
from core.runs import ExportRun
from core.selectors import parse_selectors
from core.store import Store
from core.tenants import validate_tenant
from services.export import build_run, default_out, output_path, plan_export

#: The profile of a portal bundle.
PROFILE_ID = DEVPORTAL_OFFLINE


def import_devportal(
    home: Home, root: Path, *, portal: str | None = None, tenant: str, observer: Observer | None = None
) -> PortalImport:
    """`stella devportal import DIR`: the whole tree or nothing (one invalid spec or unsafe path refuses it)."""
    with Store.open(home) as store:
        return import_portal(store, root, portal=portal, tenant=validate_tenant(tenant), sink=observer)


def list_devportals(home: Home, tenant: str) -> list[dict[str, Any]]:
    """`stella devportal list`: every portal of the tenant with its current tree."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        return list_portals(store, tenant)


@dataclass(frozen=True)
class PortalExport:
    """A finished devportal:offline run and the portal tree it pinned."""

    run: ExportRun
    portal: str
    tree: str

    def to_dict(self) -> dict[str, Any]:
        return self.run.to_dict() | {"portal": self.portal, "tree": self.tree}


def export_devportal(
    home: Home,
    tenant: str,
    *,
    portal: str | None = None,
    out: Path | None = None,
    mkdir: bool = False,
    key: str | None = None,
    passphrase_file: Path | None = None,
    observer: Observer | None = None,
) -> PortalExport:
    """`stella devportal export`: a devportal:offline run of the portal's current tree (default: the only portal).

    The directory of ``out`` must exist unless ``mkdir`` (:func:`services.export.output_path`).
    """
    tenant = validate_tenant(tenant)
    target = output_path(out, mkdir=mkdir) if out is not None else None
    with Store.open(home) as store:
        name, tree = resolve_portal(store, tenant, portal)
        target = target or default_out(home, f"devportal-{name}", ".tgz")
        # The portal's tree listings are its only inputs: they pin every file by digest (see docs/devportal.md).
        selectors = parse_selectors([f"include_id={name}"])
        run = plan_export(
            store,
            tenant,
            PROFILE_ID,
            selectors,
            requested={"portal": name, "tree": tree},
            key=key,
            out=target.resolve(),
        )
        done = build_run(store, home, run, key=key, passphrase_file=passphrase_file, observer=observer)
    return PortalExport(done, name, tree)
