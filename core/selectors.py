"""Selectors: which documents of a tenant an export takes, from ``key=value`` strings.

Selectors combine with AND; repeating a key (``ecosystem=npm ecosystem=PyPI``) means OR. A selector
restricts only the record types it describes (``sbom_subject`` says nothing about advisories, which
pass it unchanged); ``format``, ``include_id`` and ``exclude_id`` apply to every record type. Only the
latest revision of each advisory is ever selected, and the selection happens after that choice.

Inputs are resolved in SQL, always filtered by tenant, in a deterministic order (tenant, subject,
document id, sha256) that does not depend on import order, and streamed with ``fetchmany``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from packageurl import PackageURL

from core.clock import rfc3339
from core.errors import BadInputError, PolicyRefusal, UsageError
from core.store import Store
from core.tenants import validate_tenant

#: Every selector key, in the order the docs list them.
SELECTOR_KEYS: tuple[str, ...] = (
    "tenant",
    "modified_since",
    "modified_until",
    "published_since",
    "published_until",
    "ecosystem",
    "purl",
    "product",
    "sbom_subject",
    "format",
    "include_id",
    "exclude_id",
)
#: Keys that may be given more than once (their values combine with OR).
REPEATABLE: frozenset[str] = frozenset(
    {"ecosystem", "purl", "product", "sbom_subject", "format", "include_id", "exclude_id"}
)
_TIME_KEYS = ("modified_since", "modified_until", "published_since", "published_until")

#: The order every export takes its inputs in (the tenant is fixed by the WHERE clause).
INPUT_ORDER = "subject, document_id, sha256"
FETCH_ROWS = 1000

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Selectors:
    """Parsed selectors. Repeatable keys hold sorted, de-duplicated tuples; times hold canonical text.

    A time is either ``YYYY-MM-DD`` (a whole UTC day) or RFC 3339 normalized to UTC with a ``Z``.
    ``*_since`` is inclusive; ``*_until`` is inclusive too, and a bare date there means the end of that day.
    """

    tenant: str | None = None
    modified_since: str | None = None
    modified_until: str | None = None
    published_since: str | None = None
    published_until: str | None = None
    ecosystem: tuple[str, ...] = ()
    purl: tuple[str, ...] = ()
    product: tuple[str, ...] = ()
    sbom_subject: tuple[str, ...] = ()
    format: tuple[str, ...] = ()
    include_id: tuple[str, ...] = ()
    exclude_id: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form for the manifest and the run's parameters: only the keys that were given."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_args(self) -> list[str]:
        """``key=value`` strings that parse back to these selectors."""
        args: list[str] = []
        for key, value in self.to_dict().items():
            values = value if isinstance(value, list) else [value]
            args.extend(f"{key}={v}" for v in values)
        return args

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selectors:
        """Rebuild from :meth:`to_dict` output, with the same checks as :func:`parse_selectors`."""
        args: list[str] = []
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            args.extend(f"{key}={v}" for v in values)
        return parse_selectors(args)

    def check_tenant(self, run_tenant: str) -> None:
        """Refuse (exit 7) a ``tenant=`` selector naming another tenant than the run's.

        No profile of this version allows cross-tenant selection.
        """
        if self.tenant is not None and self.tenant != run_tenant:
            raise PolicyRefusal(
                f"selector tenant={self.tenant} asks for another tenant than the run's ({run_tenant!r});"
                " cross-tenant export is not allowed by this profile",
                hint=f"run the export with --tenant {self.tenant}, or drop the tenant selector",
            )

    # -- time windows, as the SQL needs them ----------------------------------------------
    def window(self, which: str) -> tuple[datetime | None, datetime | None]:
        """(inclusive start, exclusive end) in naive UTC for ``modified`` or ``published``."""
        since = getattr(self, f"{which}_since")
        until = getattr(self, f"{which}_until")
        return (
            None if since is None else _instant(since, end=False),
            None if until is None else _instant(until, end=True),
        )


def parse_selectors(items: Sequence[str], *, known_formats: Collection[str] | None = None) -> Selectors:
    """Parse ``key=value`` strings.

    Unknown keys and items without ``=`` are a :class:`UsageError` (exit 2); bad values a
    :class:`BadInputError` (exit 3) naming the selector and why. ``known_formats``, when given, is the
    list of source format names ``format=`` may take.
    """
    singles: dict[str, str] = {}
    multi: dict[str, set[str]] = {k: set() for k in REPEATABLE}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"selector {item!r} is not KEY=VALUE", hint="keys: " + ", ".join(SELECTOR_KEYS))
        if key not in SELECTOR_KEYS:
            raise UsageError(f"unknown selector {key!r} in {item!r}", hint="keys: " + ", ".join(SELECTOR_KEYS))
        value = raw.strip()
        if not value:
            raise BadInputError(f"selector {item!r} has an empty value")
        if key in REPEATABLE:
            multi[key].add(_check_value(key, value, item, known_formats))
        elif key in singles:
            raise BadInputError(f"selector {key!r} is given twice", hint="only the repeatable keys may be repeated")
        else:
            singles[key] = _check_value(key, value, item, known_formats)
    both = sorted(i for i in multi["include_id"] if i.lower() in {e.lower() for e in multi["exclude_id"]})
    if both:
        raise BadInputError(f"{', '.join(both)} is both included and excluded (include_id and exclude_id)")
    sel = Selectors(
        tenant=singles.get("tenant"),
        modified_since=singles.get("modified_since"),
        modified_until=singles.get("modified_until"),
        published_since=singles.get("published_since"),
        published_until=singles.get("published_until"),
        **{k: tuple(sorted(v)) for k, v in multi.items()},
    )
    for which in ("modified", "published"):
        start, end = sel.window(which)
        if start is not None and end is not None and start >= end:
            raise BadInputError(
                f"{which}_since={getattr(sel, which + '_since')} is after"
                f" {which}_until={getattr(sel, which + '_until')}: the window is empty"
            )
    return sel


def _check_value(key: str, value: str, item: str, known_formats: Collection[str] | None) -> str:
    if key == "tenant":
        try:
            return validate_tenant(value)
        except UsageError:
            raise BadInputError(
                f"selector {item!r}: {value!r} is not a tenant name", hint="letters, digits, '-', '_' or '.'"
            ) from None
    if key in _TIME_KEYS:
        return _canonical_time(value, item)
    if key == "purl":
        try:
            PackageURL.from_string(value)
        except ValueError as exc:
            raise BadInputError(f"selector {item!r}: not a package URL: {exc}", hint="e.g. pkg:npm/lodash") from None
        return value
    if key == "format" and known_formats is not None and value not in known_formats:
        raise BadInputError(
            f"selector {item!r}: unknown source format {value!r}", hint="formats: " + ", ".join(sorted(known_formats))
        )
    if key in ("include_id", "exclude_id") and len(value) == 64 and _SHA256.match(value.lower()):
        return value.lower()
    return value


def _canonical_time(value: str, item: str) -> str:
    if _DATE.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise BadInputError(f"selector {item!r}: {value!r} is not a calendar date") from None
        return value
    m = _RFC3339.match(value)
    if not m:
        raise BadInputError(
            f"selector {item!r}: {value!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 time",
            hint="e.g. 2024-01-31 or 2024-01-31T12:00:00Z; a time needs Z or an offset",
        )
    day, clock, frac, zone = m.groups()
    # datetime keeps microseconds: longer fractions are cut, not rounded, so the bound never moves later.
    frac = (frac or "")[:7]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{frac}{zone}")
    except ValueError:
        raise BadInputError(f"selector {item!r}: {value!r} is not a valid time") from None
    return rfc3339(parsed.astimezone(UTC).replace(tzinfo=None))


def _instant(text: str, *, end: bool) -> datetime:
    """Naive UTC bound: inclusive for a start, exclusive for an end."""
    if _DATE.match(text):
        day = datetime.combine(date.fromisoformat(text), datetime.min.time())
        return day + timedelta(days=1) if end else day
    at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    # The store keeps microseconds: "t <= until" is "t < until + 1 µs".
    return at + timedelta(microseconds=1) if end else at


@dataclass(frozen=True)
class InputRef:
    """One input document of an export, as resolved at plan time."""

    document_sha256: str
    kind: str
    format: str
    subject: str
    document_id: str
    size: int


# -- SQL -----------------------------------------------------------------------------------

# Per-document dates, per record type: (kind, sha, modified, published). Undated types (attestations) are not
# restricted by time windows; a document of a dated type without the date is not selected by a window (it
# cannot be shown to be in it).
_DATED_KINDS = ("advisory", "vex", "sbom", "policy", "findings", "kev", "epss")
_DATES_SQL = """
    SELECT 'advisory' AS kind, document_sha256 AS sha, max(modified) AS modified, min(published) AS published
      FROM advisories_latest WHERE tenant = $tenant GROUP BY document_sha256
    UNION ALL
    SELECT 'vex', document_sha256, max(statement_time), min(statement_time)
      FROM vex_statements WHERE tenant = $tenant GROUP BY document_sha256
    UNION ALL
    SELECT 'sbom', document_sha256, max(created), min(created)
      FROM sbom_documents WHERE tenant = $tenant GROUP BY document_sha256
    UNION ALL
    SELECT 'policy', document_sha256, max(evaluated_at), min(evaluated_at)
      FROM policy_snapshots WHERE tenant = $tenant GROUP BY document_sha256
    UNION ALL
    -- a findings document is as old as the evaluation of the policy snapshot it belongs to
    SELECT 'findings', f.document_sha256, max(p.evaluated_at), min(p.evaluated_at)
      FROM findings f JOIN policy_snapshots p
        ON p.tenant = f.tenant AND p.policy_id = f.policy_id AND p.policy_version = f.policy_version
      WHERE f.tenant = $tenant GROUP BY f.document_sha256
    UNION ALL
    SELECT 'kev', document_sha256, max(date_released), min(date_released)
      FROM kev_catalogs WHERE tenant = $tenant GROUP BY document_sha256
    UNION ALL
    SELECT 'epss', document_sha256, max(score_date), min(score_date)
      FROM epss_snapshots WHERE tenant = $tenant GROUP BY document_sha256
"""

# Package URLs a document mentions, per record type: what `purl=` and `ecosystem=` look at.
_PURLS_SQL = {
    "advisory": "SELECT purl AS p FROM affected_packages x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
    "vex": "SELECT product_purl AS p FROM vex_statements x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT unnest(subcomponents) AS p FROM vex_statements x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
    "sbom": "SELECT purl AS p FROM sbom_components x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT subject_purl AS p FROM sbom_documents x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
    "findings": "SELECT purl AS p FROM findings x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
}
_PURL_TYPE = "lower(split_part(split_part(p, '/', 1), ':', 2))"

# Product names a document speaks about, lower-cased: what `product=` looks at.
_PRODUCTS_SQL = {
    "advisory": "SELECT lower(product_id) AS n FROM affected_packages x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT lower(name) AS n FROM affected_packages x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
    "vex": "SELECT lower(product) AS n FROM vex_statements x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT lower(product_purl) AS n FROM vex_statements x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256",
}

# What `sbom_subject=` compares with: name, name@version, the subject purl, the document's subject.
_SBOM_SUBJECTS_SQL = (
    "SELECT lower(subject_name) AS n FROM sbom_documents x WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT lower(subject_name || '@' || subject_version) AS n FROM sbom_documents x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT lower(subject_purl) AS n FROM sbom_documents x"
    " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
    " UNION ALL SELECT lower(r.subject) AS n"
)


def _per_kind(kinds: Mapping[str, str], predicate: str) -> str:
    """``predicate`` over the rows of the kind-specific subquery; other kinds pass."""
    others = ", ".join(f"'{k}'" for k in kinds)
    parts = [f"r.kind NOT IN ({others})"]
    parts += [f"(r.kind = '{k}' AND EXISTS (SELECT 1 FROM ({sql}) WHERE {predicate}))" for k, sql in kinds.items()]
    return "(" + " OR ".join(parts) + ")"


def _purl_regex(values: Iterable[str]) -> str:
    """One RE2 pattern: a purl matches a selector when it equals it or continues at a component boundary."""
    forms: set[str] = set()
    for value in values:
        forms.add(value)
        forms.add(PackageURL.from_string(value).to_string())
    alternatives = "|".join(re.escape(f) for f in sorted(forms))
    return f"(?i)^(?:{alternatives})(?:$|[@?#/])"


def selection_sql(tenant: str, selectors: Selectors, record_types: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """``SELECT sha256, kind, format, subject, document_id, size`` of the selected documents (unordered).

    Always filtered by ``tenant``; callers add ``ORDER BY`` :data:`INPUT_ORDER`.
    """
    params: dict[str, Any] = {"tenant": tenant, "kinds": sorted(set(record_types))}
    conds = [
        "r.tenant = $tenant",
        "list_contains($kinds, r.kind)",
        # Only the latest revision of an advisory is exported.
        "(r.kind <> 'advisory' OR r.sha256 IN (SELECT document_sha256 FROM advisories_latest WHERE tenant = $tenant))",
    ]
    if selectors.format:
        params["formats"] = list(selectors.format)
        conds.append("list_contains($formats, r.format)")
    for key in ("include_id", "exclude_id"):
        ids = getattr(selectors, key)
        if not ids:
            continue
        params[key] = [i.lower() for i in ids]
        match = (
            f"(list_contains(${key}, lower(r.document_id)) OR list_contains(${key}, r.sha256)"
            f" OR (r.kind = 'advisory' AND EXISTS (SELECT 1 FROM advisories a WHERE a.tenant = r.tenant"
            f" AND a.document_sha256 = r.sha256 AND list_contains(${key}, lower(a.advisory_id)))))"
        )
        conds.append(match if key == "include_id" else f"NOT {match}")
    windows: list[str] = []
    for which in ("modified", "published"):
        since, until = selectors.window(which)
        if since is not None:
            params[f"{which}_since"] = since
            windows.append(f"d.{which} >= ${which}_since")
        if until is not None:
            params[f"{which}_until"] = until
            windows.append(f"d.{which} < ${which}_until")
    if windows:
        dated = ", ".join(f"'{k}'" for k in _DATED_KINDS)
        conds.append(f"(r.kind NOT IN ({dated}) OR coalesce({' AND '.join(windows)}, false))")
    if selectors.ecosystem:
        params["ecosystems"] = sorted({e.lower() for e in selectors.ecosystem})
        by_purl = f"list_contains($ecosystems, {_PURL_TYPE})"
        # OSV ecosystems may carry a release ("Debian:11"): "Debian" selects every release.
        eco_sql = dict(_PURLS_SQL)
        eco_sql["advisory"] = (
            "SELECT purl AS p, ecosystem AS e FROM affected_packages x"
            " WHERE x.tenant = r.tenant AND x.document_sha256 = r.sha256"
        )
        by_name = "list_contains($ecosystems, lower(e)) OR list_contains($ecosystems, lower(split_part(e, ':', 1)))"
        advisory = _per_kind({"advisory": eco_sql["advisory"]}, f"{by_purl} OR {by_name}")
        rest = _per_kind({k: v for k, v in eco_sql.items() if k != "advisory"}, by_purl)
        conds.append(f"({advisory} AND {rest})")
    if selectors.purl:
        params["purl_re"] = _purl_regex(selectors.purl)
        conds.append(_per_kind(_PURLS_SQL, "regexp_matches(p, $purl_re)"))
    if selectors.product:
        params["products"] = sorted({p.lower() for p in selectors.product})
        conds.append(_per_kind(_PRODUCTS_SQL, "list_contains($products, n)"))
    if selectors.sbom_subject:
        params["sbom_subjects"] = sorted({s.lower() for s in selectors.sbom_subject})
        conds.append(_per_kind({"sbom": _SBOM_SUBJECTS_SQL}, "list_contains($sbom_subjects, n)"))
    source = "raw_documents r"
    if windows:
        source += f" LEFT JOIN ({_DATES_SQL}) d ON d.sha = r.sha256 AND d.kind = r.kind"
    sql = f"SELECT r.sha256, r.kind, r.format, r.subject, r.document_id, r.size FROM {source} WHERE " + (
        " AND ".join(conds)
    )
    return sql, params


def resolve_inputs(store: Store, tenant: str, selectors: Selectors, record_types: Iterable[str]) -> Iterator[InputRef]:
    """The documents an export with these selectors takes, in export order, streamed.

    Raises :class:`PolicyRefusal` (exit 7) for a cross-tenant ``tenant=`` selector, at the call, before
    anything is read.
    """
    validate_tenant(tenant)
    selectors.check_tenant(tenant)
    sql, params = selection_sql(tenant, selectors, record_types)
    return _stream(store, f"{sql} ORDER BY {INPUT_ORDER}", params)


def _stream(store: Store, sql: str, params: dict[str, Any]) -> Iterator[InputRef]:
    # A cursor of its own, so the caller may query the store while iterating.
    cur = store.cursor()
    try:
        cur.execute(sql, params)
        while rows := cur.fetchmany(FETCH_ROWS):
            for sha, kind, fmt, subject, doc_id, size in rows:
                yield InputRef(sha, kind, fmt, subject, doc_id, int(size))
    finally:
        cur.close()


def count_inputs(store: Store, tenant: str, selectors: Selectors, record_types: Iterable[str]) -> dict[str, int]:
    """How many documents an export with these selectors would take now, per record type.

    The same selection :func:`resolve_inputs` streams and the planner pins, counted in the database; record types
    with nothing selected are left out. Raises like :func:`resolve_inputs`.
    """
    validate_tenant(tenant)
    selectors.check_tenant(tenant)
    sql, params = selection_sql(tenant, selectors, record_types)
    cur = store.cursor()
    try:
        rows = cur.execute(f"SELECT kind, count(*) FROM ({sql}) s GROUP BY kind ORDER BY kind", params).fetchall()
    finally:
        cur.close()
    return {str(kind): int(n) for kind, n in rows}
