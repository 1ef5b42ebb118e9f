"""``trivy:db``: a Trivy DB (schema 2 bbolt file) built from the run's advisories, for an unmodified Trivy client.

The advisories of the run (latest revisions, in input order) are read in three flat streams
(:mod:`adapters.profiles._trivy_rows`), mapped to Trivy's buckets by :mod:`adapters.profiles._trivy_mapping`,
sorted and merged in flat memory and streamed into our bbolt writer (:mod:`adapters.profiles._trivy_build`,
:mod:`core.bbolt`), and shipped as ``db.tar.gz``, a ready Trivy cache layout and an OCI layout
(:mod:`adapters.profiles._trivy_package`).
"""

from __future__ import annotations

from typing import Any

from adapters.profiles._trivy_build import PARALLEL_FROM, TrivyDbBuilder, worker_split
from adapters.profiles._trivy_package import MAIN_DB, plan_schema, schema_of, workdir, write_outputs
from adapters.profiles._trivy_rows import last_ordinal, write_part
from core.bundle import PayloadContext
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
        run_id, tenant = ctx.spec.run_id, ctx.spec.tenant
        with (
            workdir(ctx) as work,
            TrivyDbBuilder(work, report=ctx.input_done, is_cancelled=ctx.cancel.is_cancelled) as builder,
        ):
            # A large run is read in two parts, the second first: a worker process (started first, so that it
            # loads while the store is read) maps it while this one reads and maps the first.
            end = last_ordinal(ctx.query, run_id, tenant) + 1
            if end < PARALLEL_FROM:
                halves = [(0, end)]
            else:
                builder.start_worker()
                split = worker_split(end)
                halves = [(split, end), (0, split)]
            for lo, hi in halves:
                index = 0 if lo == 0 else 1
                builder.map_part(write_part(ctx.query, run_id, tenant, lo, hi, work / f"part-{index}"), index)
            db_path = work / MAIN_DB.db_file
            result = builder.write(db_path)
            facts = write_outputs(ctx, MAIN_DB, db_path, version, work)
        ctx.extra_manifest["trivy"] = facts
        return {
            "advisories": builder.counts.advisories,
            "withdrawnSkipped": builder.counts.withdrawn,
            "unmappedSkipped": builder.counts.unmapped,
            "vulnerabilities": builder.vulnerabilities,
            "packages": builder.package_count,
            "sourceBuckets": builder.source_buckets,
            "bboltPages": result.pages,
        }


PROFILE = TrivyDb()
