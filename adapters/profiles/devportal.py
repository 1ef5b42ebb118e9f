"""The ``devportal:offline`` profile: a developer portal that works with no network, as ``bundle.tgz``.

Payload, inside the normal signed bundle (``export.json`` and its signature, ``checksums.txt``, provenance)::

    manifest.dsse.json    DSSE envelope (payloadType below) over manifest.json, signed with the run's key
    manifest.json         the portal manifest: portal, tree digest, and every file with path, sha256, size,
                          mediaType and role (page | openapi | sdk | changelog | asset | script)
    portal/<path>         the portal tree exactly as imported (pages, OpenAPI specs, SDK archives, changelogs)
    serve.sh              verify, then serve portal/ on 127.0.0.1 with python3 -m http.server
    verify-portal.sh      the DSSE signature and every digest with sha256sum and openssl only

Which tree: the run's pinned inputs hold the portal's tree listings (raw documents of format
``devportal-tree``). ``stella devportal export`` pins one exactly (run options ``portal`` and ``tree``);
otherwise the inputs must name one portal, and its most recently imported listing among them is taken. Raw
documents never change, so a retry rebuilds the same bytes. The archive is gzip (``.tgz``), deterministic as
every bundle archive is.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from adapters.devportal import TREE_FORMAT, PortalTree
from core.bundle import PayloadContext
from core.canonical import canonical_json
from core.contract.devportal import MANIFEST, MANIFEST_DSSE, MANIFEST_SCHEMA, PORTAL_DIR, SCRIPTS
from core.contract.media_types import DSSE_ENVELOPE, SHELL_SCRIPT
from core.contract.payload_types import DEVPORTAL_MANIFEST
from core.errors import IntegrityError, UsageError
from core.signing import dsse_envelope

_TREES_SQL = """
SELECT i.document_sha256, r.document_id, r.imported_at
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND r.kind = 'devportal' AND r.format = ?
 ORDER BY i.ordinal
"""


def _script(name: str) -> bytes:
    return resources.files("adapters.devportal_files").joinpath(name).read_bytes()


class DevportalOffline:
    """Writes the portal tree, its manifest, the DSSE envelope over it, and the helper scripts."""

    kind = "devportal"
    variant = "offline"
    #: Encryption is refused (a portal is served as is); nothing of the payload would stay readable otherwise.
    encrypted_prefixes: tuple[str, ...] | None = None
    #: Published as ``bundle.tgz``: gzip, so any tar can open it.
    archive_compression = "gzip"

    def plan_options(self, requested: dict[str, Any], store: Any) -> dict[str, Any]:
        """Run options a plan may pin: ``portal`` and ``tree`` (set by ``stella devportal export``)."""
        unknown = sorted(set(requested) - {"portal", "tree"})
        if unknown:
            raise UsageError(f"{', '.join(unknown)} does not apply to a devportal:offline export")
        return {k: str(v) for k, v in requested.items()}

    def _tree(self, ctx: PayloadContext) -> tuple[str, list[tuple[str, str]]]:
        """The digest of the tree listing to build from, and every listing among the inputs (digest, document id)."""
        rows = ctx.query.execute(_TREES_SQL, [ctx.spec.run_id, ctx.spec.tenant, TREE_FORMAT]).fetchall()
        listings = [(str(r[0]), str(r[1])) for r in rows]
        return self._tree_sha(ctx, rows), listings

    def _tree_sha(self, ctx: PayloadContext, rows: list[Any]) -> str:
        pinned = ctx.spec.options.get("tree")
        if pinned is not None:
            if not any(r[0] == pinned for r in rows):
                raise UsageError(
                    f"the pinned portal tree {pinned[:16]} is not among the run's inputs",
                    hint="a selector left it out; export with `stella devportal export --portal NAME`",
                )
            return str(pinned)
        portals = sorted({str(r[1]) for r in rows})
        if len(portals) != 1:
            raise UsageError(
                f"the selection holds {len(portals)} portals" + (f" ({', '.join(portals)})" if portals else ""),
                hint="export one with `stella devportal export --portal NAME`, or import one first"
                if portals
                else "import one with `stella devportal import DIR`",
            )
        # The latest imported listing among the pinned ones: raw documents never change, so a retry agrees.
        latest = max(rows, key=lambda r: (r[2], r[0]))
        return str(latest[0])

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Write ``portal/``, the scripts, ``manifest.json`` and ``manifest.dsse.json``; return the role counts."""
        if ctx.spec.options.get("encryptionRecipients") or ctx.spec.profile_config.get("encryptionRecipients"):
            raise UsageError(
                "a devportal:offline bundle cannot be encrypted", hint="a portal is served as is; drop --recipient"
            )
        if ctx.signer is None:
            raise UsageError("a devportal:offline bundle needs the run's signer for manifest.dsse.json")
        tree_sha, listings = self._tree(ctx)
        # Progress counts input documents (the portal's tree listings): an earlier listing is done once one is chosen.
        for sha, doc_id in listings:
            if sha != tree_sha:
                ctx.input_done(doc_id)
        listing = ctx.raw_bytes(tree_sha)
        if hashlib.sha256(listing).hexdigest() != tree_sha:
            raise IntegrityError("the stored portal tree listing differs from its digest", path=tree_sha)
        tree = PortalTree.parse(listing, where=f"stella:document/{tree_sha}")
        entries: list[dict[str, Any]] = []
        for f in tree.files:
            data = ctx.raw_bytes(f.sha256)
            if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                raise IntegrityError("the stored bytes of a portal file differ from its digest", path=f.path)
            entry = ctx.writer.add_bytes(PORTAL_DIR + f.path, data, f.media_type)
            entries.append(f.to_dict() | {"path": entry.path})
        for name in SCRIPTS:
            entry = ctx.writer.add_bytes(name, _script(name), SHELL_SCRIPT)
            entries.append(entry.to_manifest() | {"role": "script"})
        counts = tree.counts()
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "schemaVersion": 1,
            "portal": tree.portal,
            "tree": tree_sha,
            "tenant": ctx.spec.tenant,
            "runId": ctx.spec.run_id,
            "createdAt": ctx.spec.created_at_text,
            "counts": counts,
            "files": sorted(entries, key=lambda e: str(e["path"])),
            "signing": {"algorithm": str(ctx.signer.algorithm), "keyid": ctx.signer.keyid},
        }
        body = canonical_json(manifest)
        ctx.writer.add_bytes(MANIFEST, body, "application/json")
        envelope = dsse_envelope(ctx.signer, DEVPORTAL_MANIFEST, body)
        ctx.writer.add_bytes(MANIFEST_DSSE, canonical_json(envelope), DSSE_ENVELOPE)
        ctx.extra_manifest["devportal"] = {"portal": tree.portal, "tree": tree_sha, "manifest": MANIFEST}
        ctx.input_done(tree.portal)
        return {"portalFiles": counts["files"]} | {
            name: counts[role]
            for role, name in (
                ("page", "pages"),
                ("openapi", "openapiSpecs"),
                ("sdk", "sdks"),
                ("changelog", "changelogs"),
                ("asset", "assets"),
            )
        }


PROFILE = DevportalOffline()
