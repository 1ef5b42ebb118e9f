"""``risk:simulation``: findings ranked by exploitation risk (KEV, EPSS, CVSS), with every score explained.

Payload, inside the normal signed bundle::

    report/ranking.json   canonical JSON: formula, the datasets used, and every ranked item with its factors,
                          score and the explanation of its rank
    report/ranking.md     the same ranking as a readable Markdown report

What is ranked: the policy findings among the run's inputs (``findings`` documents); when the selection has
none, every advisory among the inputs instead. An item is known by its vulnerability id and by every alias
an advisory among the inputs gives it (a ``GHSA-...`` finding reaches KEV and EPSS through its CVE alias).

The formula (``FORMULA``), 0 to 100::

    score = 50 * kev + 10 * ransomware + 25 * epss + 15 * cvss / 10

``kev`` is 1 when one of the item's CVEs is in the newest KEV catalog among the inputs (exploitation observed),
``ransomware`` is 1 when that entry says ``knownRansomwareCampaignUse: Known``, ``epss`` is the highest EPSS
probability of its CVEs in the newest EPSS snapshot among the inputs, and ``cvss`` the highest CVSS base score
any advisory among the inputs gives it. Items are ordered by: findings the policy decided to ``ignore`` last
(e.g. VEX not_affected), then score, KEV, EPSS, CVSS (each descending), then vulnerability id, finding id and
subject. Nothing reads the wall clock: the report's time is the run's ``createdAt``, so a retry is identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from adapters.profiles.risk_bundle import Dataset, newest_dataset
from core.bundle import PayloadContext
from core.canonical import canonical_json

REPORT_JSON = "report/ranking.json"
REPORT_MD = "report/ranking.md"
REPORT_SCHEMA = "https://stellaops.dev/schemas/risk-simulation/v1"
WEIGHTS = {"kev": 50.0, "ransomware": 10.0, "epss": 25.0, "cvss": 15.0}
FORMULA = "score = 50 * kev + 10 * ransomware + 25 * epss + 15 * cvss / 10"
ORDER = [
    "findings the policy decided to ignore come last",
    "score, descending",
    "KEV listed before not listed",
    "EPSS probability, descending",
    "CVSS base score, descending",
    "vulnerability id, finding id, subject (ascending)",
]
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

_FINDINGS = """
SELECT f.finding_id, f.vulnerability_id, f.subject, f.purl, f.severity, f.decision, f.reason, f.policy_id,
       f.policy_version
  FROM export_inputs i
  JOIN findings f ON f.tenant = i.tenant AND f.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'findings'
 ORDER BY i.ordinal, f.finding_id
"""
_ADVISORY_ITEMS = """
SELECT a.advisory_id,
       (SELECT list(DISTINCT coalesce(p.purl, coalesce(p.ecosystem || '/', '') || p.name) ORDER BY 1)
          FROM affected_packages p
         WHERE p.tenant = a.tenant AND p.document_sha256 = a.document_sha256 AND p.advisory_id = a.advisory_id)
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory'
 ORDER BY i.ordinal, a.advisory_id
"""
_ALIASES = """
SELECT a.advisory_id, a.aliases
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory'
   AND (list_contains(?, a.advisory_id) OR list_has_any(coalesce(a.aliases, []), ?))
"""
_CVSS = """
SELECT s.advisory_id, s.type, s.score, s.base_score
  FROM export_inputs i
  JOIN advisory_severities s ON s.tenant = i.tenant AND s.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory' AND s.base_score IS NOT NULL
   AND s.type LIKE 'CVSS%' AND list_contains(?, s.advisory_id)
"""
_KEV = """
SELECT cve_id, vulnerability_name, date_added, due_date, known_ransomware_campaign_use
  FROM kev_entries WHERE tenant = ? AND document_sha256 = ? AND list_contains(?, cve_id)
"""
_EPSS = """
SELECT cve_id, epss, percentile
  FROM epss_scores WHERE tenant = ? AND document_sha256 = ? AND list_contains(?, cve_id)
"""


@dataclass
class Item:
    """One ranked finding (or advisory) with its factors."""

    vulnerability_id: str
    finding_id: str | None = None
    subject: str | None = None
    purl: str | None = None
    severity: str | None = None
    decision: str | None = None
    reason: str | None = None
    policy: dict[str, str] | None = None
    ids: set[str] = field(default_factory=set)
    kev: dict[str, Any] | None = None
    epss: dict[str, Any] | None = None
    cvss: dict[str, Any] | None = None

    @property
    def suppressed(self) -> bool:
        return self.decision == "ignore"

    @property
    def cves(self) -> list[str]:
        return sorted(i for i in self.ids if _CVE.match(i))

    def points(self) -> dict[str, float]:
        kev = 1.0 if self.kev else 0.0
        ransomware = 1.0 if self.kev and self.kev.get("knownRansomwareCampaignUse") == "Known" else 0.0
        epss = float(self.epss["epss"]) if self.epss else 0.0
        cvss = float(self.cvss["baseScore"]) if self.cvss else 0.0
        return {
            "kev": round(WEIGHTS["kev"] * kev, 4),
            "ransomware": round(WEIGHTS["ransomware"] * ransomware, 4),
            "epss": round(WEIGHTS["epss"] * epss, 4),
            "cvss": round(WEIGHTS["cvss"] * cvss / 10, 4),
        }

    @property
    def score(self) -> float:
        return round(sum(self.points().values()), 4)

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.suppressed,
            -self.score,
            self.kev is None,
            -(float(self.epss["epss"]) if self.epss else -1.0),
            -(float(self.cvss["baseScore"]) if self.cvss else -1.0),
            self.vulnerability_id,
            self.finding_id or "",
            self.subject or "",
        )


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _factors(item: Item) -> list[str]:
    """A sentence per factor: what the data says and the points it gives."""
    pts = item.points()
    out = []
    if item.kev:
        k = item.kev
        due = f", due {k['dueDate']}" if k.get("dueDate") else ""
        out.append(f"CISA KEV lists {k['cve']} since {k['dateAdded']}{due} (+{_fmt(pts['kev'])})")
        use = k.get("knownRansomwareCampaignUse") or "not stated"
        out.append(f"known ransomware campaign use: {use} (+{_fmt(pts['ransomware'])})")
    else:
        cves = ", ".join(item.cves) or "no CVE id"
        out.append(f"not in CISA KEV ({cves}) (+0.00)")
    if item.epss:
        e = item.epss
        out.append(f"EPSS {e['epss']} (percentile {e['percentile']}) for {e['cve']} (+{_fmt(pts['epss'])})")
    else:
        out.append("no EPSS score (+0.00)")
    if item.cvss:
        c = item.cvss
        out.append(f"CVSS base score {c['baseScore']} ({c['type']} from {c['advisory']}) (+{_fmt(pts['cvss'])})")
    else:
        out.append("no CVSS base score among the advisories (+0.00)")
    if item.suppressed:
        reason = f": {item.reason}" if item.reason else ""
        out.append(f"the policy decided to ignore this finding{reason}; ranked after every finding it did not ignore")
    return out


def _why(item: Item, rank: int, above: Item | None) -> str:
    """Why this item is at ``rank``: the first ordering rule that puts it below the item ranked above it."""
    if above is None:
        return f"rank 1: score {_fmt(item.score)}, the highest"
    if item.suppressed and not above.suppressed:
        return f"rank {rank}: score {_fmt(item.score)}; ignored by the policy, so after rank {rank - 1}"
    if item.score != above.score:
        return f"rank {rank}: score {_fmt(item.score)}, below rank {rank - 1} ({_fmt(above.score)})"
    for label, mine, theirs in (
        ("KEV listing", item.kev is not None, above.kev is not None),
        ("EPSS", item.epss["epss"] if item.epss else -1.0, above.epss["epss"] if above.epss else -1.0),
        ("CVSS", item.cvss["baseScore"] if item.cvss else -1.0, above.cvss["baseScore"] if above.cvss else -1.0),
    ):
        if mine != theirs:
            return f"rank {rank}: same score as rank {rank - 1} ({_fmt(item.score)}), ordered after it by {label}"
    return f"rank {rank}: same score and factors as rank {rank - 1} ({_fmt(item.score)}), ordered by id"


def _chunks(values: Iterable[str]) -> list[str]:
    return sorted(set(values))


class RiskSimulation:
    """Ranks the run's findings by KEV, EPSS and CVSS into ``report/ranking.json`` and ``report/ranking.md``."""

    kind = "risk"
    variant = "simulation"
    encrypted_prefixes: tuple[str, ...] | None = None

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Rank, then write the JSON and Markdown reports; return the counts."""
        spec = ctx.spec
        run = [spec.run_id, spec.tenant]
        items, basis = self._items(ctx.query, run)
        self._resolve_aliases(ctx.query, run, items)
        kev = newest_dataset(ctx.query, spec.run_id, spec.tenant, "kev")
        epss = newest_dataset(ctx.query, spec.run_id, spec.tenant, "epss")
        cves = _chunks(c for item in items for c in item.cves)
        self._kev(ctx.query, spec.tenant, kev, cves, items)
        self._epss(ctx.query, spec.tenant, epss, cves, items)
        self._cvss(ctx.query, run, items)
        ranked = sorted(items, key=Item.sort_key)
        entries = []
        for n, item in enumerate(ranked, start=1):
            entries.append(self._entry(item, n, ranked[n - 2] if n > 1 else None))
        report = {
            "schema": REPORT_SCHEMA,
            "schemaVersion": 1,
            "tenant": spec.tenant,
            "runId": spec.run_id,
            "createdAt": spec.created_at_text,
            "basis": basis,
            "formula": {"expression": FORMULA, "weights": WEIGHTS, "order": ORDER},
            "sources": {
                "kev": kev.describe() if kev else None,
                "epss": epss.describe() if epss else None,
            },
            "items": entries,
        }
        ctx.writer.add_bytes(REPORT_JSON, canonical_json(report), "application/json")
        ctx.writer.add_bytes(REPORT_MD, _markdown(report).encode("utf-8"), "text/markdown; charset=utf-8")
        ctx.extra_manifest["riskSimulation"] = {"report": REPORT_JSON, "basis": basis, "formula": FORMULA}
        return {
            "rankedItems": len(entries),
            "kevListed": sum(1 for i in items if i.kev),
            "withEpss": sum(1 for i in items if i.epss),
        }

    # -- gathering ----------------------------------------------------------------------------
    def _items(self, query: Any, run: list[str]) -> tuple[list[Item], str]:
        items = []
        for fid, vid, subject, purl, severity, decision, reason, pid, pver in query.execute(_FINDINGS, run).fetchall():
            items.append(Item(vid, fid, subject, purl, severity, decision, reason, {"id": pid, "version": pver}, {vid}))
        if items:
            return items, "findings"
        for aid, packages in query.execute(_ADVISORY_ITEMS, run).fetchall():
            subject = ", ".join(packages) if packages else None
            items.append(Item(aid, subject=subject, ids={aid}))
        return items, "advisories"

    def _resolve_aliases(self, query: Any, run: list[str], items: list[Item]) -> None:
        ids = _chunks(i for item in items for i in item.ids)
        if not ids:
            return
        groups = [{aid, *(aliases or [])} for aid, aliases in query.execute(_ALIASES, [*run, ids, ids]).fetchall()]
        for item in items:
            for group in groups:
                if item.vulnerability_id in group:
                    item.ids |= group

    def _kev(self, query: Any, tenant: str, kev: Dataset | None, cves: list[str], items: list[Item]) -> None:
        if kev is None or not cves:
            return
        found = {}
        for cve, name, added, due, ransomware in query.execute(_KEV, [tenant, kev.sha256, cves]).fetchall():
            entry: dict[str, Any] = {"cve": cve, "vulnerabilityName": name, "dateAdded": added.isoformat()}
            if due is not None:
                entry["dueDate"] = due.isoformat()
            if ransomware is not None:
                entry["knownRansomwareCampaignUse"] = ransomware
            found[cve] = entry
        for item in items:
            listed = [found[c] for c in item.cves if c in found]
            if listed:
                # A known ransomware use outweighs any other listing of the same item; then the first CVE.
                item.kev = min(listed, key=lambda e: (e.get("knownRansomwareCampaignUse") != "Known", e["cve"]))

    def _epss(self, query: Any, tenant: str, epss: Dataset | None, cves: list[str], items: list[Item]) -> None:
        if epss is None or not cves:
            return
        found = {
            cve: {"cve": cve, "epss": score, "percentile": pct}
            for cve, score, pct in query.execute(_EPSS, [tenant, epss.sha256, cves]).fetchall()
        }
        for item in items:
            scored = [found[c] for c in item.cves if c in found]
            if scored:
                item.epss = max(scored, key=lambda e: (e["epss"], e["percentile"], e["cve"]))

    def _cvss(self, query: Any, run: list[str], items: list[Item]) -> None:
        ids = _chunks(i for item in items for i in item.ids)
        if not ids:
            return
        by_id: dict[str, list[dict[str, Any]]] = {}
        for aid, kind, vector, base in query.execute(_CVSS, [*run, ids]).fetchall():
            by_id.setdefault(aid, []).append({"advisory": aid, "type": kind, "vector": vector, "baseScore": base})
        for item in items:
            scores = [s for i in item.ids for s in by_id.get(i, [])]
            if scores:
                item.cvss = max(scores, key=lambda s: (s["baseScore"], s["type"], s["advisory"], s["vector"]))

    def _entry(self, item: Item, rank: int, above: Item | None) -> dict[str, Any]:
        pts = item.points()
        entry: dict[str, Any] = {
            "rank": rank,
            "score": item.score,
            "vulnerabilityId": item.vulnerability_id,
            "ids": sorted(item.ids),
            "cves": item.cves,
            "factors": {
                "kev": ({"listed": True} | item.kev if item.kev else {"listed": False}) | {"points": pts["kev"]},
                "ransomware": {"points": pts["ransomware"]},
                "epss": (item.epss or {}) | {"points": pts["epss"]},
                "cvss": (item.cvss or {}) | {"points": pts["cvss"]},
            },
            "explanation": [_why(item, rank, above), *_factors(item)],
        }
        for key, value in (
            ("findingId", item.finding_id),
            ("subject", item.subject),
            ("purl", item.purl),
            ("severity", item.severity),
            ("decision", item.decision),
            ("reason", item.reason),
            ("policy", item.policy),
        ):
            if value is not None:
                entry[key] = value
        return entry


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(report: dict[str, Any]) -> str:
    """The readable report: formula, sources, a ranking table, then each item's explanation."""
    lines = [
        "# Risk simulation report",
        "",
        f"Tenant `{report['tenant']}`, run `{report['runId']}`, created {report['createdAt']}.",
        f"Ranked: {len(report['items'])} {report['basis']}.",
        "",
        "## Formula",
        "",
        f"`{report['formula']['expression']}` (0 to 100)",
        "",
        "- kev: 1 when a CVE of the item is in the CISA KEV catalog",
        "- ransomware: 1 when that KEV entry says knownRansomwareCampaignUse: Known",
        "- epss: the highest EPSS probability of the item's CVEs",
        "- cvss: the highest CVSS base score an advisory gives the item",
        "",
        "Order: " + "; ".join(report["formula"]["order"]) + ".",
        "",
        "## Sources",
        "",
    ]
    for name in ("kev", "epss"):
        src = report["sources"][name]
        if src is None:
            lines.append(f"- {name.upper()}: none among the inputs")
        else:
            version = src.get("catalogVersion") or src.get("modelVersion") or "unversioned"
            lines.append(
                f"- {name.upper()}: `{src['documentId']}` ({version}), snapshot {src.get('snapshotAt', 'undated')},"
                f" sha256 `{src['sha256'][:16]}`"
            )
    lines += [
        "",
        "## Ranking",
        "",
        "| Rank | Score | Finding | Vulnerability | Subject | KEV | EPSS | CVSS | Decision |",
        "|---:|---:|---|---|---|---|---:|---:|---|",
    ]
    for e in report["items"]:
        f = e["factors"]
        kev = "yes" if f["kev"]["listed"] else "no"
        if f["kev"].get("knownRansomwareCampaignUse") == "Known":
            kev += " (ransomware)"
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    e["rank"],
                    _fmt(e["score"]),
                    e.get("findingId", ""),
                    e["vulnerabilityId"],
                    e.get("subject", ""),
                    kev,
                    f["epss"].get("epss", ""),
                    f["cvss"].get("baseScore", ""),
                    e.get("decision", ""),
                )
            )
            + " |"
        )
    lines += ["", "## Explanations", ""]
    for e in report["items"]:
        title = " ".join(str(x) for x in (e.get("findingId"), e["vulnerabilityId"]) if x)
        lines += [f"### {e['rank']}. {_cell(title)} (score {_fmt(e['score'])})", ""]
        lines += [f"- {_cell(text)}" for text in e["explanation"]]
        lines.append("")
    return "\n".join(lines)


PROFILE = RiskSimulation()
