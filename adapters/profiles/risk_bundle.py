"""``risk:bundle``: provider datasets with snapshot times and a signed expiry.

Payload, inside the normal signed bundle (``export.json`` and its signature, ``checksums.txt``, provenance)::

    providers/kev/known_exploited_vulnerabilities.json   the KEV catalog exactly as imported (or ``.csv``)
    providers/kev/entries.jsonl.zst                      its entries as canonical JSON Lines, by CVE
    providers/epss/epss_scores.csv                       the EPSS snapshot exactly as imported
    providers/epss/scores.jsonl.zst                      its scores as canonical JSON Lines, by CVE
    risk/manifest.json                                   the risk manifest: providers, snapshot times, expiry
    risk/manifest.dsse.json                              DSSE envelope over risk/manifest.json, run's key

Which providers: the run option ``providers`` (``stella export run --provider kev --provider epss``; a window
may follow the name, ``--provider epss=3d``), pinned at plan time with each provider's freshness window
(defaults: KEV 14 days, EPSS 7 days). With no ``--provider`` every provider is taken. An unknown provider is
refused when the run is planned.

Which dataset: the newest snapshot of each provider among the run's pinned inputs (KEV: ``dateReleased``, or
the newest ``dateAdded`` for the CSV form, which has no release time; EPSS: ``score_date``). Raw documents
never change, so a retry picks the same one and rebuilds the same bytes.

Expiry: each provider's data goes stale its window after its own snapshot time (``createdAt`` when it has none):
a bundle built today from a year-old catalog is already stale, and the build says so on the run's observer (a
failed ``stale data`` check, which the CLI prints as a warning) but still writes it, so a receiver's policy
decides. The bundle expires with its first provider. The
expiry is in ``export.json`` (``risk``), covered by ``export.json.sig``, and in ``risk/manifest.json``,
covered by its own DSSE envelope, so a receiver checks it with nothing but the signer's public key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from core.bundle import PayloadContext
from core.canonical import canonical_json
from core.clock import rfc3339
from core.contract.media_types import DSSE_ENVELOPE
from core.contract.payload_types import RISK_MANIFEST as RISK_PAYLOAD_TYPE
from core.contract.risk import MANIFEST as RISK_MANIFEST
from core.contract.risk import MANIFEST_DSSE as RISK_MANIFEST_DSSE
from core.contract.risk import MANIFEST_SCHEMA as RISK_MANIFEST_SCHEMA
from core.contract.risk import PROVIDERS_DIR
from core.durations import parse_duration
from core.errors import IntegrityError, UsageError
from core.progress import Check
from core.signing import dsse_envelope

FETCH = 5000


@dataclass(frozen=True)
class Provider:
    """A risk data provider a bundle can carry."""

    name: str
    title: str
    default_freshness: timedelta


PROVIDERS: dict[str, Provider] = {
    "epss": Provider("epss", "FIRST Exploit Prediction Scoring System", timedelta(days=7)),
    "kev": Provider("kev", "CISA Known Exploited Vulnerabilities", timedelta(days=14)),
}


def pinned_providers(options: Mapping[str, Any]) -> list[tuple[Provider, int]]:
    """The providers a run pinned, with their freshness windows in seconds (every provider by default)."""
    pinned = options.get("providers")
    if not pinned:
        return [(p, int(p.default_freshness.total_seconds())) for p in PROVIDERS.values()]
    out = []
    for item in pinned:
        provider = PROVIDERS.get(str(item.get("name")))
        if provider is None:
            raise UsageError(f"the run pinned an unknown risk provider {item.get('name')!r}")
        out.append((provider, int(item["freshnessSeconds"])))
    return out


# -- the newest dataset of each provider among the run's inputs -----------------------------------


@dataclass(frozen=True)
class Dataset:
    """One provider document among a run's inputs, with its snapshot time."""

    provider: str
    sha256: str
    document_id: str
    format: str
    media_type: str
    size: int
    snapshot_at: datetime | None
    version: str | None  # KEV catalogVersion, EPSS model version
    rows: int

    def describe(self) -> dict[str, Any]:
        """The dataset as the risk manifest and the simulation report name it."""
        out: dict[str, Any] = {
            "sha256": self.sha256,
            "documentId": self.document_id,
            "format": self.format,
            "mediaType": self.media_type,
            "size": self.size,
            "rows": self.rows,
        }
        if self.snapshot_at is not None:
            out["snapshotAt"] = rfc3339(self.snapshot_at)
        if self.version is not None:
            out["catalogVersion" if self.provider == "kev" else "modelVersion"] = self.version
        return out


_KEV_SQL = """
SELECT r.sha256, r.document_id, r.format, r.media_type, r.size, c.date_released, c.catalog_version, c.entry_count,
       (SELECT max(e.date_added) FROM kev_entries e
         WHERE e.tenant = c.tenant AND e.document_sha256 = c.document_sha256) AS newest
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
  JOIN kev_catalogs c ON c.tenant = i.tenant AND c.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'kev'
"""

_EPSS_SQL = """
SELECT r.sha256, r.document_id, r.format, r.media_type, r.size, s.score_date, s.model_version, s.row_count, NULL
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
  JOIN epss_snapshots s ON s.tenant = i.tenant AND s.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'epss'
"""


def newest_dataset(query: Any, run_id: str, tenant: str, provider: str) -> Dataset | None:
    """The newest snapshot of ``provider`` among the run's inputs (None: the selection has none)."""
    return _newest(provider_datasets(query, run_id, tenant, provider))


def provider_datasets(query: Any, run_id: str, tenant: str, provider: str) -> list[Dataset]:
    """Every snapshot of ``provider`` among the run's inputs, in no particular order."""
    sql = _KEV_SQL if provider == "kev" else _EPSS_SQL
    found: list[Dataset] = []
    for sha, doc_id, fmt, media, size, snapshot, version, rows, newest in query.execute(
        sql, [run_id, tenant]
    ).fetchall():
        when = snapshot
        if when is None and isinstance(newest, date):
            when = datetime(newest.year, newest.month, newest.day)  # a KEV CSV: its newest dateAdded
        found.append(Dataset(provider, sha, doc_id, fmt, media, int(size), when, version, int(rows)))
    return found


def _newest(found: list[Dataset]) -> Dataset | None:
    if not found:
        return None
    # Newest snapshot first; a dated one beats an undated one; then a versioned (JSON) one; the digest settles it.
    return max(
        found, key=lambda d: (d.snapshot_at is not None, d.snapshot_at or datetime.min, d.version is not None, d.sha256)
    )


# -- the profile ---------------------------------------------------------------------------------

_KEV_ENTRIES = """
SELECT cve_id, vendor_project, product, vulnerability_name, date_added, short_description, required_action,
       due_date, known_ransomware_campaign_use, notes, cwes
  FROM kev_entries WHERE tenant = ? AND document_sha256 = ? ORDER BY cve_id
"""
_EPSS_SCORES = (
    "SELECT cve_id, epss, percentile FROM epss_scores WHERE tenant = ? AND document_sha256 = ? ORDER BY cve_id"
)


def _kev_records(query: Any, tenant: str, sha: str) -> Iterator[dict[str, Any]]:
    cur = query.execute(_KEV_ENTRIES, [tenant, sha])
    while rows := cur.fetchmany(FETCH):
        for cve, vendor, product, name, added, desc, action, due, ransomware, notes, cwes in rows:
            record: dict[str, Any] = {
                "cveID": cve,
                "vendorProject": vendor,
                "product": product,
                "vulnerabilityName": name,
                "dateAdded": added.isoformat(),
                "shortDescription": desc,
                "requiredAction": action,
                "cwes": list(cwes or []),
            }
            if due is not None:
                record["dueDate"] = due.isoformat()
            if ransomware is not None:
                record["knownRansomwareCampaignUse"] = ransomware
            if notes is not None:
                record["notes"] = notes
            yield record


def _epss_records(query: Any, tenant: str, sha: str) -> Iterator[dict[str, Any]]:
    cur = query.execute(_EPSS_SCORES, [tenant, sha])
    while rows := cur.fetchmany(FETCH):
        for cve, epss, percentile in rows:
            yield {"cve": cve, "epss": epss, "percentile": percentile}


def _raw_name(dataset: Dataset) -> str:
    if dataset.provider == "kev":
        suffix = ".csv" if dataset.media_type == "text/csv" else ".json"
        return f"{PROVIDERS_DIR}kev/known_exploited_vulnerabilities{suffix}"
    return f"{PROVIDERS_DIR}epss/epss_scores.csv"


class RiskBundle:
    """Writes each provider's raw dataset and JSONL, the risk manifest and its DSSE envelope."""

    kind = "risk"
    variant = "bundle"
    #: Encryption is refused (see write_payload); nothing of the payload would stay readable otherwise.
    encrypted_prefixes: tuple[str, ...] | None = None

    def plan_options(self, requested: Mapping[str, Any], store: Any) -> dict[str, Any]:
        """Pin ``providers``: ``NAME`` or ``NAME=DURATION`` values, unknown names refused, default windows."""
        unknown = sorted(set(requested) - {"providers"})
        if unknown:
            raise UsageError(f"option {unknown[0]} does not apply to a risk:bundle export")
        values = requested.get("providers") or list(PROVIDERS)
        pinned: dict[str, int] = {}
        for value in values:
            name, sep, window = str(value).partition("=")
            name = name.strip().lower()
            provider = PROVIDERS.get(name)
            if provider is None:
                raise UsageError(f"unknown risk provider {name!r}", hint="providers: " + ", ".join(sorted(PROVIDERS)))
            if name in pinned:
                raise UsageError(f"risk provider {name!r} given twice")
            freshness = parse_duration(window, f"--provider {name}") if sep else provider.default_freshness
            pinned[name] = int(freshness.total_seconds())
        return {"providers": [{"name": n, "freshnessSeconds": pinned[n]} for n in sorted(pinned)]}

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Write the provider files, ``risk/manifest.json`` and its DSSE envelope; return the counts."""
        spec = ctx.spec
        if spec.options.get("encryptionRecipients") or spec.profile_config.get("encryptionRecipients"):
            raise UsageError(
                "a risk bundle cannot be encrypted",
                hint="KEV and EPSS are public data and a receiver checks freshness before import; drop --recipient",
            )
        if ctx.signer is None:
            raise UsageError("a risk bundle needs the run's signer for risk/manifest.dsse.json")
        providers: list[dict[str, Any]] = []
        listed: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        shipped: set[str] = set()
        pinned = pinned_providers(spec.options)
        for provider, freshness in pinned:
            found = provider_datasets(ctx.query, spec.run_id, spec.tenant, provider.name)
            dataset = _newest(found)
            if dataset is None:
                raise UsageError(
                    f"no {provider.name.upper()} dataset among the run's inputs",
                    hint=f"import one first (`stella import FILE`), or leave out --provider {provider.name}",
                )
            # Progress counts input documents: an older snapshot is done once the newest is chosen.
            for older in found:
                if older is not dataset:
                    ctx.input_done(older.document_id)
            data = ctx.raw_bytes(dataset.sha256)
            raw = ctx.writer.add_bytes(_raw_name(dataset), data, dataset.media_type)
            if raw.sha256 != dataset.sha256:
                raise IntegrityError("the stored bytes of a risk dataset differ from its digest", path=dataset.sha256)
            normalized = f"{PROVIDERS_DIR}{provider.name}/{'entries' if provider.name == 'kev' else 'scores'}.jsonl.zst"
            records = _kev_records if provider.name == "kev" else _epss_records
            n = 0
            with ctx.writer.jsonl_zst(normalized, spec.compression_level) as write:
                for record in records(ctx.query, spec.tenant, dataset.sha256):
                    write(record)
                    n += 1
            counts["kevEntries" if provider.name == "kev" else "epssScores"] = n
            shipped.add(dataset.sha256)
            ctx.input_done(dataset.document_id)
            expires = min(spec.created_at, dataset.snapshot_at or spec.created_at) + timedelta(seconds=freshness)
            if expires < spec.created_at:
                ctx.sink.check(
                    Check(
                        "stale data",
                        False,
                        f"the {provider.name} data of {dataset.snapshot_at:%Y-%m-%d} went stale at {rfc3339(expires)}, "
                        f"before this build ({spec.created_at_text}; window {timedelta(seconds=freshness)}); "
                        "receivers under the default policy will refuse it: import a newer dataset",
                        path=dataset.document_id,
                    )
                )
            providers.append(
                {
                    "name": provider.name,
                    "title": provider.title,
                    "dataset": dataset.describe(),
                    "freshnessSeconds": freshness,
                    "expiresAt": rfc3339(expires),
                    "files": {"raw": raw.path, "normalized": normalized},
                }
            )
            listed += [raw.to_manifest(), ctx.writer.files[normalized].to_manifest()]
        # A provider left out (`--provider kev`) ships nothing of its documents the selection matched.
        for name in sorted(set(PROVIDERS) - {provider.name for provider, _ in pinned}):
            for left_out in provider_datasets(ctx.query, spec.run_id, spec.tenant, name):
                ctx.input_done(left_out.document_id)
        expires_at = min(p["expiresAt"] for p in providers)
        manifest = {
            "schema": RISK_MANIFEST_SCHEMA,
            "schemaVersion": 1,
            "tenant": spec.tenant,
            "runId": spec.run_id,
            "createdAt": spec.created_at_text,
            "expiresAt": expires_at,
            "providers": providers,
            "files": sorted(listed, key=lambda f: str(f["path"])),
            "signing": {"algorithm": str(ctx.signer.algorithm), "keyid": ctx.signer.keyid},
        }
        body = canonical_json(manifest)
        ctx.writer.add_bytes(RISK_MANIFEST, body, "application/json")
        envelope = dsse_envelope(ctx.signer, RISK_PAYLOAD_TYPE, body)
        ctx.writer.add_bytes(RISK_MANIFEST_DSSE, canonical_json(envelope), DSSE_ENVELOPE)
        ctx.extra_manifest["risk"] = {
            "manifest": RISK_MANIFEST,
            "expiresAt": expires_at,
            "providers": [
                {
                    "name": p["name"],
                    "document": p["dataset"]["sha256"],
                    "snapshotAt": p["dataset"].get("snapshotAt"),
                    "expiresAt": p["expiresAt"],
                }
                for p in providers
            ],
        }
        # Provenance names the datasets shipped, not every KEV/EPSS document the selection matched.
        ctx.provenance_keep = shipped
        return {"providers": len(providers)} | counts


PROFILE = RiskBundle()
