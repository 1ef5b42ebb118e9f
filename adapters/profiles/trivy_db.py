"""``trivy:db``: a Trivy DB (schema 2 bbolt file) built from the run's advisories, for an unmodified Trivy client.

The advisories of the run (latest revisions, in input order) are mapped to Trivy's buckets by
:mod:`adapters.profiles._trivy_mapping`, written with our bbolt writer (:mod:`core.bbolt`), and shipped as
``db.tar.gz``, a ready Trivy cache layout and an OCI layout (:mod:`adapters.profiles._trivy_package`).
"""

from __future__ import annotations

from typing import Any

from adapters.profiles._records import ADVISORIES, stream
from adapters.profiles._trivy_mapping import TrivyDbModel
from adapters.profiles._trivy_package import MAIN_DB, plan_schema, schema_of, workdir, write_outputs
from core.bbolt import write_bbolt
from core.bundle import PayloadContext
from core.errors import Cancelled
from core.store import Store


class TrivyDb:
    """The ``trivy:db`` profile."""

    kind = "trivy"
    variant = "db"
    encrypted_prefixes: tuple[str, ...] | None = None

    def plan_options(self, requested: dict[str, Any], store: Store) -> dict[str, Any]:
        """Pin the Trivy DB schema version (default 2); any other version is a usage error."""
        return plan_schema(MAIN_DB, requested, store)

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        version = schema_of(ctx, MAIN_DB)
        model = TrivyDbModel()
        document: str | None = None
        advisory_id = ""
        for n, record in enumerate(stream(ctx.query, ADVISORIES, [ctx.spec.run_id, ctx.spec.tenant]), start=1):
            if n % 1000 == 0 and ctx.cancel.is_cancelled():
                raise Cancelled("export cancelled")
            # Rows come in input order, a document's advisories together: the payload phase counts documents.
            if record["documentSha256"] != document:
                if document is not None:
                    ctx.input_done(advisory_id)
                document = record["documentSha256"]
            advisory_id = str(record["advisoryId"])
            model.add(record)
        if document is not None:
            ctx.input_done(advisory_id)
        counts = {
            "advisories": model.counts.advisories,
            "withdrawnSkipped": model.counts.withdrawn,
            "unmappedSkipped": model.counts.unmapped,
            "vulnerabilities": len(model.vulns),
            "packages": model.package_count,
            "sourceBuckets": len(model.packages),
        }
        with workdir(ctx) as work:
            db_path = work / MAIN_DB.db_file
            result = write_bbolt(db_path, model.take_root())
            facts = write_outputs(ctx, MAIN_DB, db_path, version, work)
        ctx.extra_manifest["trivy"] = facts
        return {**counts, "bboltPages": result.pages}


PROFILE = TrivyDb()
