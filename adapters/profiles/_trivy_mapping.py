"""Normalized advisories (OSV, GHSA, CSAF, CVE 5 rows) -> Trivy DB schema 2 buckets and values.

Where an advisory goes (trivy-db ``pkg/vulnsrc/osv`` and Trivy's detectors):

* OS packages go to the OS bucket Trivy looks up by exact name (``debian 12``, ``alpine 3.19``,
  ``ubuntu 22.04``, ``wolfi``, ``chainguard``); the value is ``{"FixedVersion": V}``, or ``{"Status": 2}``
  (affected, no fix yet) when no range names a fix.
* Language packages go to ``<ecosystem>::StellaOps Export Center``; Trivy collects every root bucket with the
  ``<ecosystem>::`` prefix, so no change to Trivy is needed. The value carries ``VulnerableVersions`` only: one
  constraint per affected interval (rendered as trivy-db renders OSV ranges) and ``=V`` per listed version. No
  ``PatchedVersions``: Trivy treats a match there as "not vulnerable" whatever ``VulnerableVersions`` says, so the
  fix of one interval, entry or record that lies inside another interval would hide it. Trivy derives the
  FixedVersion it reports from the ``<X`` bounds instead (``createFixedVersions``), so intervals of one entry
  that touch or overlap are merged where the ecosystem's version order is known: no ``<X`` is then the start of
  another vulnerable interval, and Trivy never offers a vulnerable version as the fix.
* The key is the vulnerability ID Trivy reports: every CVE among the advisory ID and its aliases (one entry each,
  as upstream does), or else the advisory ID; the other IDs become ``VendorIDs``.
* ``vulnerability/<ID>`` holds title, severity (integer ``VendorSeverity`` under our data-source ID, so Trivy
  reports it with ``SeveritySource`` = that ID), CVSS vectors, CWEs and dates. ``data-source/<bucket>`` names us.

Package names are normalized exactly as Trivy normalizes the scanned package (``NormalizePkgName``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import orjson
from packageurl import PackageURL

from core import cvss
from core.versions import pep440_key, semver_key

#: Distinct values remembered per cache (purls, targets, intervals): a feed repeats its packages and ranges; the
#: bound keeps memory flat (a few MB per cache) however large the feed.
CACHE_SIZE = 1 << 13

#: Our data source, as Trivy reports it in each finding's ``DataSource``.
SOURCE_ID = "stellaops"
SOURCE_NAME = "StellaOps Export Center"
SOURCE_URL = "https://stellaops.dev/export-center"

#: Trivy's Advisory.Status integers (trivy-db ``pkg/types/status.go``).
STATUS_AFFECTED = 2
#: Trivy's Severity integers (trivy-db ``pkg/types/types.go``).
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")

#: OSV ecosystem name (lowercase) -> Trivy ecosystem slug (trivy-db ``osv.go: convertEcosystem`` plus Conan/Julia).
_OSV_LANGUAGES = {
    "go": "go",
    "npm": "npm",
    "pypi": "pip",
    "rubygems": "rubygems",
    "crates.io": "cargo",
    "packagist": "composer",
    "maven": "maven",
    "nuget": "nuget",
    "hex": "erlang",
    "pub": "pub",
    "swifturl": "swift",
    "purl-type:swift": "swift",
    "bitnami": "bitnami",
    "kubernetes": "k8s",
    "conancenter": "conan",
    "julia": "julia",
}
#: purl type -> Trivy ecosystem slug.
_PURL_LANGUAGES = {
    "golang": "go",
    "npm": "npm",
    "pypi": "pip",
    "gem": "rubygems",
    "cargo": "cargo",
    "composer": "composer",
    "maven": "maven",
    "nuget": "nuget",
    "hex": "erlang",
    "pub": "pub",
    "swift": "swift",
    "bitnami": "bitnami",
    "conan": "conan",
    "julia": "julia",
}
#: CVE 5 ``collectionURL`` host -> Trivy ecosystem slug.
_COLLECTION_HOSTS = {
    "pypi.org": "pip",
    "pypi.python.org": "pip",
    "www.npmjs.com": "npm",
    "registry.npmjs.org": "npm",
    "npmjs.com": "npm",
    "repo.maven.apache.org": "maven",
    "repo1.maven.org": "maven",
    "central.sonatype.com": "maven",
    "pkg.go.dev": "go",
    "proxy.golang.org": "go",
    "crates.io": "cargo",
    "rubygems.org": "rubygems",
    "packagist.org": "composer",
    "www.nuget.org": "nuget",
    "api.nuget.org": "nuget",
    "hex.pm": "erlang",
    "pub.dev": "pub",
}
#: Debian code names, for purls that give ``distro=bookworm`` rather than ``debian-12``.
_DEBIAN_CODENAMES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
#: OSV OS ecosystems without a release suffix, bucket name = the Trivy name.
_VERSIONLESS_OS = {"wolfi": "wolfi", "chainguard": "chainguard"}
_UBUNTU_RELEASE = re.compile(r"^\d{2}\.\d{2}$")

_GHSA_LABELS = {"LOW": 1, "MODERATE": 2, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
_CSAF_LABELS = {"low": 1, "moderate": 2, "medium": 2, "important": 3, "high": 3, "critical": 4}
_T = TypeVar("_T")
_NO_LOWER_BOUND = {"", "0", "*"}
_EVERY_VERSION = ">=0"
#: Trivy ecosystem slug -> the version order its comparer applies (OSV: SEMVER ranges for Go, npm, crates.io;
#: PEP 440 for PyPI). Other ecosystems' intervals are written as published, unmerged.
_VERSION_ORDER: dict[str, Callable[[str], Any]] = {
    "go": semver_key,
    "npm": semver_key,
    "cargo": semver_key,
    "pip": pep440_key,
}


class Target(NamedTuple):
    """Where one package's advisories go: the root bucket and the (normalized) package bucket.

    A named tuple: hashed (grouping rows by target) with C code, not a dataclass's generated ``__hash__``.
    """

    bucket: str
    package: str
    os: bool
    ecosystem: str  # Trivy slug for languages, the OS family for OS buckets


def language_bucket(ecosystem: str) -> str:
    """The root bucket for a language ecosystem: ``<ecosystem>::<our data source name>``."""
    return f"{ecosystem}::{SOURCE_NAME}"


def normalize_name(ecosystem: str, name: str) -> str:
    """Trivy's ``NormalizePkgName``: pip lowercases and turns ``_`` into ``-``; go, cocoapods, julia keep case;
    swift drops ``https://`` and ``.git``; everything else is lowercased."""
    if ecosystem == "pip":
        return name.lower().replace("_", "-")
    if ecosystem in ("go", "cocoapods", "julia"):
        return name
    if ecosystem == "swift":
        name = name.removeprefix("https://")
        return name.removesuffix(".git")
    return name.lower()


def severity_label(value: int) -> str:
    """``HIGH`` for 3 and so on; Trivy's deprecated string form."""
    return SEVERITIES[value]


def _os_target(ecosystem: str, name: str) -> Target | None:
    parts = ecosystem.split(":")
    family = parts[0].strip().lower()
    release = parts[1].strip() if len(parts) > 1 else ""
    if family in _VERSIONLESS_OS:
        return Target(_VERSIONLESS_OS[family], name, True, family)
    if family == "debian" and release:
        return Target(f"debian {release.split('.')[0]}", name, True, "debian")
    if family == "alpine" and release:
        release = release.removeprefix("v")
        minor = ".".join(release.split(".")[:2])
        return Target(f"alpine {minor}", name, True, "alpine")
    if family == "ubuntu":
        return _ubuntu_target(parts[1:], name)
    return None


def _ubuntu_target(parts: list[str], name: str) -> Target | None:
    """``Ubuntu:22.04:LTS`` -> ``ubuntu 22.04``; ``Ubuntu:Pro:14.04:LTS`` -> ``ubuntu 14.04-ESM``, the release name
    Trivy's Ubuntu detector asks for on an ESM host. Other variants (FIPS streams) have no Trivy bucket."""
    words = [p.strip() for p in parts]
    releases = [w for w in words if _UBUNTU_RELEASE.match(w)]
    extras = {w.lower() for w in words if w not in releases}
    if len(releases) != 1 or not extras <= {"pro", "lts"}:
        return None
    suffix = "-ESM" if "pro" in extras else ""
    return Target(f"ubuntu {releases[0]}{suffix}", name, True, "ubuntu")


def _purl_name(purl: PackageURL) -> str:
    if purl.type == "maven" and purl.namespace:
        return f"{purl.namespace}:{purl.name}"
    if purl.type == "npm" and purl.namespace:
        ns = purl.namespace if purl.namespace.startswith("@") else f"@{purl.namespace}"
        return f"{ns}/{purl.name}"
    if purl.type in ("golang", "composer", "swift") and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    return str(purl.name)


def _purl_os_target(purl: PackageURL) -> Target | None:
    distro = str((purl.qualifiers or {}).get("distro") or "")
    if purl.type == "deb" and purl.namespace in ("debian", "ubuntu"):
        release = distro.split("-", 1)[1] if "-" in distro else _DEBIAN_CODENAMES.get(distro, "")
        # Only a release number names a bucket (``ubuntu-22.04``); Ubuntu Pro's ``esm-infra-legacy/trusty`` does not.
        if re.fullmatch(r"\d+(\.\d+)*", release):
            return _os_target(f"{purl.namespace}:{release}", purl.name)
    if purl.type == "apk" and purl.namespace in ("alpine", "wolfi", "chainguard"):
        if purl.namespace != "alpine":
            return _os_target(str(purl.namespace), purl.name)
        release = distro.split("-", 1)[1] if "-" in distro else distro
        if release:
            return _os_target(f"alpine:{release}", purl.name)
    return None


def _name_in_collection_url(path: str) -> str | None:
    """``protobuf`` from ``/project/protobuf/`` (PyPI) or ``@scope/name`` from ``/package/@scope/name`` (npm)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] in ("project", "package", "packages", "crates", "gems"):
        return "/".join(parts[1:3]) if parts[1].startswith("@") else parts[1]
    return None


@lru_cache(maxsize=CACHE_SIZE)
def parse_purl(text: str | None) -> PackageURL | None:
    """A purl, or None when absent or malformed (a bad purl never fails an export: the row is skipped)."""
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


@lru_cache(maxsize=CACHE_SIZE)  # a feed names the same packages again and again; a Target is immutable
def target_of(ecosystem: str | None, name: str, purl_text: str | None) -> Target | None:
    """Where a package's advisories go, from the OSV ecosystem, a CVE 5 collection URL, or the purl.

    None when Trivy has no bucket for it (an ecosystem it does not scan, a CSAF product without a purl).
    """
    if ecosystem:
        slug = _OSV_LANGUAGES.get(ecosystem.lower())
        if slug is None and ecosystem.startswith(("http://", "https://")):
            url = urlsplit(ecosystem)
            slug = _COLLECTION_HOSTS.get(url.netloc.lower())
            # CVE 5 records without packageName fall back to "vendor/product"; the collection URL may name it.
            name = _name_in_collection_url(url.path) or name
        if slug is not None:
            return Target(language_bucket(slug), normalize_name(slug, name), False, slug)
        os_target = _os_target(ecosystem, name)
        if os_target is not None:
            return os_target
    # Parsing a purl costs more than the rest of the mapping: only rows without a usable ecosystem pay for it.
    purl = parse_purl(purl_text)
    if purl is not None:
        slug = _PURL_LANGUAGES.get(purl.type)
        if slug is not None:
            return Target(language_bucket(slug), normalize_name(slug, _purl_name(purl)), False, slug)
        return _purl_os_target(purl)
    return None


class _Interval(NamedTuple):
    """Affected versions from ``lower`` (``"0"``: the first version) up to ``upper`` (None: no end), ``upper``
    itself included when ``closed``. A single version ``V`` is ``_Interval(V, V, closed=True)``.

    A named tuple, not a dataclass: a large feed makes millions of them, and a tuple is built several times faster.
    """

    lower: str
    upper: str | None = None
    closed: bool = False

    def render(self) -> str:
        """The Trivy constraint, as trivy-db renders OSV ranges (``range.go``)."""
        if self.upper is None:
            return f">={self.lower}"
        if self.closed and self.lower == self.upper:
            return f"={self.lower}"
        upper = f"<={self.upper}" if self.closed else f"<{self.upper}"
        return upper if self.lower == "0" else f">={self.lower}, {upper}"


def _interval(introduced: str | None, fixed: str | None, last_affected: str | None, limit: str | None) -> _Interval:
    lower = (introduced or "0").strip()
    lower = "0" if lower in _NO_LOWER_BOUND else lower
    if last_affected and lower == last_affected:
        return _Interval(lower, lower, closed=True)
    if fixed:
        return _Interval(lower, fixed)
    if last_affected:
        return _Interval(lower, last_affected, closed=True)
    return _Interval(lower, limit or None)


def constraint(introduced: str | None, fixed: str | None, last_affected: str | None, limit: str | None) -> str:
    """One affected interval as a Trivy constraint, rendered as trivy-db renders OSV ranges (``range.go``).

    ``introduced 0, fixed X`` -> ``<X``; ``introduced A, fixed B`` -> ``>=A, <B``; ``last_affected L`` -> ``<=L``;
    a single version (``introduced == last_affected``) -> ``=V``; introduced only -> ``>=A``. An OSV ``limit``
    ends the range like ``fixed`` but is not a fix.
    """
    return _interval(introduced, fixed, last_affected, limit).render()


def merge_intervals(intervals: Iterable[_Interval], ecosystem: str) -> list[_Interval]:
    """The union of ``intervals`` with every pair that touches or overlaps merged into one, in the version order
    of ``ecosystem``'s Trivy comparer; sorted by lower bound.

    ``>=1.21.0-0, <1.21.4`` and ``>=1.21.4, <1.21.5`` become ``>=1.21.0-0, <1.21.5``: as two constraints,
    Trivy would show 1.21.4 as a fixed version to a user who has 1.21.4, which is vulnerable. A listed version
    inside an interval is dropped; one right at an interval's ``<V`` end extends it to ``<=V``. The set of
    versions is unchanged. Intervals with a bound the order cannot parse, and every interval of an ecosystem
    without a known order, are kept as they are (after the merged ones, in their first-seen order).
    """
    order = _VERSION_ORDER.get(ecosystem)
    if order is None:
        return list(intervals)
    ordered: list[tuple[Any, Any, _Interval]] = []
    kept: list[_Interval] = []
    for item in intervals:
        try:
            low = (0,) if item.lower == "0" else (1, order(item.lower))
            high = (2,) if item.upper is None else (1, order(item.upper))
        except ValueError:
            kept.append(item)
            continue
        ordered.append((low, high, item))
    ordered.sort(key=lambda entry: entry[0])
    merged: list[tuple[Any, _Interval]] = []
    for low, high, item in ordered:
        if merged and low <= merged[-1][0]:  # starts inside the previous interval or right at its end
            end, current = merged[-1]
            if high > end or (high == end and item.closed and not current.closed):
                merged[-1] = (high, _Interval(current.lower, item.upper, item.closed))
            continue
        merged.append((high, item))
    return [item for _, item in merged] + kept


#: A severity row as a tuple (what :func:`map_advisory` also takes in place of a dict), None where a dict would
#: lack the field.
SEVERITY_FIELDS = ("type", "score", "baseScore")


def _as_severity(item: Mapping[str, Any] | tuple[Any, ...]) -> tuple[Any, ...]:
    """A severity row, given as a dict or as the tuple of :data:`SEVERITY_FIELDS`, as that tuple."""
    if type(item) is tuple:
        return item
    get = item.get  # type: ignore[union-attr]
    return (get("type"), get("score"), get("baseScore"))


def severity_of(severities: Iterable[Mapping[str, Any] | tuple[Any, ...]]) -> int:
    """Trivy severity (0-4) of an advisory: the GHSA label; else the highest rating of its CVSS base scores
    (v2, v3.x, v4.0), each rated on its own version's scale (:func:`core.cvss.rating`: v2 tops out at high);
    else CSAF's text. A vector stored without a score is scored here."""
    return _severity_level([_as_severity(s) for s in severities])


def _severity_level(items: list[tuple[Any, ...]]) -> int:
    labels = [
        _GHSA_LABELS.get(str("" if score is None else score).upper(), 0) for kind, score, _ in items if kind == "GHSA"
    ]
    if any(labels):
        return max(labels)
    ratings = [cvss.rating(kind, score) for kind, score in _scores(items)]
    if ratings:
        return max(ratings)
    texts = [
        _CSAF_LABELS.get(str("" if score is None else score).lower(), 0) for kind, score, _ in items if kind == "CSAF"
    ]
    return max(texts, default=0)


def _base_score(kind: Any, score: Any, base: Any) -> float | None:
    """A severity row's base score: the stored one, else its vector's."""
    if base is not None:
        return float(base)
    try:
        return cvss.base_score(str(kind), str(score))
    except ValueError:
        return None  # a malformed vector (the importer warned about it): no score rather than a wrong one


def _scores(items: Iterable[tuple[Any, ...]]) -> Iterator[tuple[str, float]]:
    for kind, score, base in items:
        kind = str(kind)
        if kind in _CVSS_PREFIX:
            value = _base_score(kind, score, base)
            if value is not None:
                yield kind, value


_CVSS_PREFIX = {"CVSS_V2": "V2", "CVSS_V3": "V3", "CVSS_V4": "V40"}


def _cvss(severities: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, score, base in severities:
        prefix = _CVSS_PREFIX.get(str(kind))
        if prefix is None or f"{prefix}Vector" in out:
            continue
        out[f"{prefix}Vector"] = score
        value = _base_score(kind, score, base)
        if value is not None:
            out[f"{prefix}Score"] = value
    return out


def vulnerability_ids(advisory_id: str, aliases: Iterable[str]) -> tuple[list[str], list[str]]:
    """(IDs to key the advisory under, vendor IDs), as trivy-db's ``groupVulnIDs``: CVEs first, else the ID."""
    ids = list(dict.fromkeys([*aliases, advisory_id]))
    cves = sorted(i for i in ids if i.startswith("CVE-"))
    if not cves:
        return [advisory_id], sorted(i for i in ids if i != advisory_id)
    return cves, sorted(i for i in ids if not i.startswith("CVE-"))


@dataclass(slots=True)
class _LangValue:
    ecosystem: str
    vulnerable: list[_Interval] = field(default_factory=list)
    vendor_ids: list[str] = field(default_factory=list)
    # ``VulnerableVersions`` of ``vulnerable`` when known from the start (one record's value, never changed).
    rendered: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.vendor_ids:
            out["VendorIDs"] = self.vendor_ids
        if self.vulnerable:
            rendered = self.rendered
            if rendered is None:
                rendered = _vulnerable_versions(self.ecosystem, tuple(self.vulnerable))
            out["VulnerableVersions"] = rendered
        return out


@lru_cache(maxsize=CACHE_SIZE)  # the same intervals recur across a feed's packages: merge and render them once
def _vulnerable_versions(ecosystem: str, intervals: tuple[_Interval, ...]) -> list[str]:
    return _render_versions(ecosystem, intervals)


def _render_versions(ecosystem: str, intervals: tuple[_Interval, ...]) -> list[str]:
    rendered = [i.render() for i in merge_intervals(intervals, ecosystem)]
    # "Every version" subsumes the other intervals, and their "<X" bounds would show as fixes that are none.
    return [_EVERY_VERSION] if _EVERY_VERSION in rendered else rendered


@dataclass(slots=True)
class _OsValue:
    fixed: str | None = None
    vendor_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.vendor_ids:
            out["VendorIDs"] = self.vendor_ids
        if self.fixed:
            out["FixedVersion"] = self.fixed
        else:
            out["Status"] = STATUS_AFFECTED
        return out


def _extend(target: list[_T], values: Iterable[_T]) -> None:
    """Append the values not in ``target`` yet, in order (a list used as an ordered set of hashable values)."""
    seen = set(target)
    for value in values:
        if value not in seen:
            seen.add(value)
            target.append(value)


@dataclass
class MappingCounts:
    """What the mapping did, for the bundle manifest's counts."""

    advisories: int = 0
    withdrawn: int = 0
    unmapped: int = 0  # advisories none of whose packages Trivy can look up


@dataclass(slots=True)
class MappedAdvisory:
    """One advisory as Trivy sees it: the IDs it is keyed under, a value per package, and its details."""

    keys: list[str]
    values: list[tuple[Target, _LangValue | _OsValue]]
    detail: dict[str, Any]


def map_advisory(record: Mapping[str, Any], counts: MappingCounts) -> MappedAdvisory | None:
    """Map one advisory record (the shape ``_records.ADVISORIES`` yields), counting it in ``counts``.

    None when it is withdrawn or none of its packages has a Trivy bucket; several records' values for the same
    package and ID are merged by :func:`merge_values`, their details by :func:`merge_details`, in input order.
    """
    if record.get("withdrawn"):
        counts.withdrawn += 1
        return None
    advisory_id = str(record["advisoryId"])
    keys, vendor_ids = vulnerability_ids(advisory_id, record.get("aliases") or ())
    values: list[tuple[Target, _LangValue | _OsValue]] = []
    for target, rows in _group_rows(record.get("affected") or ()).items():
        if target.os:
            value: _LangValue | _OsValue | None = _os_value(rows)
        else:
            value = _lang_value(rows, target.ecosystem)
        if value is None:
            continue
        value.vendor_ids = list(vendor_ids)
        values.append((target, value))
    counts.advisories += 1
    if not values:
        counts.unmapped += 1
        return None
    return MappedAdvisory(keys, values, _vulnerability(record))


def value_state(value: _LangValue | _OsValue) -> tuple[Any, ...]:
    """A package value as plain tuples: ``(0, ecosystem, intervals, vendor IDs)`` for a language package,
    ``(1, fix, vendor IDs)`` for an OS package. The build stores it as JSON; :func:`merge_values` takes it back
    with lists for tuples as well."""
    if isinstance(value, _LangValue):
        return (0, value.ecosystem, tuple(map(tuple, value.vulnerable)), tuple(value.vendor_ids))
    return (1, value.fixed, tuple(value.vendor_ids))


def _from_state(state: Sequence[Any]) -> _LangValue | _OsValue:
    if state[0] == 0:
        return _LangValue(state[1], [_Interval(*i) for i in state[2]], list(state[3]))
    return _OsValue(state[1], list(state[2]))


def value_json(value: _LangValue | _OsValue) -> bytes:
    """The JSON Trivy reads for a package and ID that one record alone names (for copying at once: as orjson
    gives it, not right-sized as :func:`_dumps` makes what is kept)."""
    return orjson.dumps(value.to_json(), option=orjson.OPT_SORT_KEYS)


def merge_values(states: Iterable[Sequence[Any]]) -> bytes:
    """The JSON Trivy reads for one package and ID, from the :func:`value_state` of every record that has it,
    in input order (merged as :class:`TrivyDbModel` merges them)."""
    slot: dict[str, _LangValue | _OsValue] = {}
    for state in states:
        _merge(slot, "", _from_state(state))
    return _dumps(slot[""].to_json())


def merge_details(details: Iterable[bytes]) -> bytes:
    """``vulnerability/<ID>``'s JSON from the details (:func:`detail_json`) of every record keyed under the ID."""
    merged: dict[str, bytes] = {}
    for detail in details:
        if "" in merged:
            _merge_vulnerability(merged, "", orjson.loads(detail))
        else:
            merged[""] = detail
    return merged[""]


def data_source_json() -> bytes:
    """``data-source/<bucket>``: our data source, as Trivy names it in findings."""
    return _dumps({"ID": SOURCE_ID, "Name": SOURCE_NAME, "URL": SOURCE_URL})


def detail_json(detail: Mapping[str, Any]) -> bytes:
    """One record's vulnerability details as JSON (sorted keys), the form :func:`merge_details` takes (for
    copying at once, as :func:`value_json`)."""
    return orjson.dumps(detail, option=orjson.OPT_SORT_KEYS)


class TrivyDbModel:
    """Accumulates advisories into the Trivy DB layout; :meth:`take_root` gives the bucket tree to write.

    Advisories arrive in the run's input order; merging is order-independent for ranges (lists are de-duplicated
    and kept in first-seen order) and for severities (the highest wins), and first-wins for texts.
    """

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, dict[str, _LangValue | _OsValue]]] = {}
        # Details are kept serialized (right-sized bytes): a dict per vulnerability would cost ~5x the memory.
        self.vulns: dict[str, bytes] = {}
        self.counts = MappingCounts()

    def add(self, record: Mapping[str, Any]) -> None:
        """Add one advisory record (the shape ``_records.ADVISORIES`` yields)."""
        mapped = map_advisory(record, self.counts)
        if mapped is None:
            return
        for target, value in mapped.values:
            bucket = self.packages.setdefault(target.bucket, {}).setdefault(target.package, {})
            for key in mapped.keys:
                _merge(bucket, key, value)
        for key in mapped.keys:
            _merge_vulnerability(self.vulns, key, mapped.detail)

    def take_root(self) -> dict[bytes, Any]:
        """The bbolt bucket tree: data-source, vulnerability, and one root bucket per OS release / ecosystem.

        The model is emptied on the way (each entry is dropped as soon as it is serialized), so the mapped
        advisories and their JSON are never both held in full.
        """
        root: dict[bytes, Any] = {}
        sources: dict[bytes, bytes] = {}
        source = data_source_json()
        while self.packages:
            bucket_name, packages = self.packages.popitem()
            bucket: dict[bytes, Any] = {}
            while packages:
                pkg, values = packages.popitem()
                bucket[pkg.encode()] = {vid.encode(): _dumps(v.to_json()) for vid, v in values.items()}
            root[bucket_name.encode()] = bucket
            sources[bucket_name.encode()] = source
        root[b"data-source"] = sources
        root[b"vulnerability"] = {vid.encode(): detail for vid, detail in self.vulns.items()}
        self.vulns = {}
        return root

    @property
    def package_count(self) -> int:
        """Package buckets so far (read it before :meth:`take_root`)."""
        return sum(len(p) for p in self.packages.values())


def _dumps(value: Any) -> bytes:
    # orjson's result keeps its 4 KiB working buffer; a right-sized copy makes the tree ~10x smaller in memory.
    return memoryview(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).tobytes()


#: An affected package row as a tuple (what :func:`map_advisory` also takes in place of a dict): these fields, in
#: this order, None where a dict would lack the field.
AFFECTED_FIELDS = (
    "ecosystem",
    "name",
    "purl",
    "rangeType",
    "introduced",
    "fixed",
    "lastAffected",
    "limit",
    "versions",
    "status",
)


def _as_row(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An affected row given as a dict, as the tuple of :data:`AFFECTED_FIELDS` (the name is required)."""
    get = row.get
    return (
        get("ecosystem"),
        row["name"],
        get("purl"),
        get("rangeType"),
        get("introduced"),
        get("fixed"),
        get("lastAffected"),
        get("limit"),
        get("versions"),
        get("status"),
    )


def _group_rows(affected: Iterable[Mapping[str, Any] | tuple[Any, ...]]) -> dict[Target, list[tuple[Any, ...]]]:
    """The affected rows (dicts, or tuples of :data:`AFFECTED_FIELDS`) by target, each reduced to what its
    value reads, open upper bounds made None: ``(kind, status, introduced, fixed, last affected, limit,
    purl)`` for an OS target; for a language target, what :func:`_lang_intervals` reads (not the package: the
    same ranges recur across many)."""
    groups: dict[Target, list[tuple[Any, ...]]] = {}
    for row in affected:
        ecosystem, name, purl, kind, introduced, fixed, last_affected, limit, versions, status = (
            row if type(row) is tuple else _as_row(row)  # type: ignore[arg-type]
        )
        if status is not None and status != "affected" and status != "fixed":
            continue  # not_affected, under_investigation, unknown: Trivy has no way to say "maybe"
        if kind and str(kind).upper() == "GIT":
            continue  # commit ranges cannot be compared with package versions
        target = target_of(ecosystem, str(name), purl)
        if target is None:
            continue
        # CVE 5 writes ``lessThan: "*"`` for "and every later version": that is no upper bound at all; nor is "".
        if fixed == "*" or fixed == "":
            fixed = None
        if last_affected == "*" or last_affected == "":
            last_affected = None
        if limit == "*" or limit == "":
            limit = None
        if target.os:
            item: tuple[Any, ...] = (kind, status, introduced, fixed, last_affected, limit, purl)
        else:
            versions = tuple(versions) if versions else ()
            item = (kind, status, introduced, fixed, last_affected, limit, versions, purl if kind == "CSAF" else None)
        group = groups.get(target)
        if group is None:
            groups[target] = [item]
        else:
            group.append(item)
    return groups


def _purl_version(purl_text: str | None) -> str | None:
    purl = parse_purl(purl_text)
    return purl.version if purl is not None and purl.version else None


def _lang_value(ranges: list[tuple[Any, ...]], ecosystem: str) -> _LangValue | None:
    intervals, rendered = _lang_intervals(ecosystem, tuple(ranges))
    return _LangValue(ecosystem, list(intervals), rendered=rendered) if intervals else None


@lru_cache(maxsize=CACHE_SIZE)
def _lang_intervals(ecosystem: str, ranges: tuple[tuple[Any, ...], ...]) -> tuple[tuple[_Interval, ...], list[str]]:
    """The affected intervals of one language package's rows (each as :func:`_group_rows` gives it), in order,
    and their ``VulnerableVersions`` (as :func:`_vulnerable_versions` renders them: one cache for both)."""
    # A dict as the ordered set of intervals: setting a key already there keeps its first position.
    vulnerable: dict[_Interval, None] = {}
    for kind, status, introduced, fixed, last_affected, limit, versions, purl in ranges:
        if kind == "CSAF":
            version = _purl_version(purl)
            if version is None:
                continue
            vulnerable[_Interval("0", version) if status == "fixed" else _Interval(version, version, True)] = None
        elif kind == "VERSIONS":
            # OSV: a version is affected if a range holds it *or* it is listed (even below the ranges).
            pip = ecosystem == "pip"
            for v in versions:
                if _comparable(ecosystem, v) if pip else v:
                    vulnerable[_new_interval(_Interval, (v, v, True))] = None
        elif introduced or fixed or last_affected or limit:
            if introduced is not None and introduced in (fixed, limit):
                continue  # "introduced X, fixed X" holds no version; its X is no fix either (see _os_value)
            vulnerable[_interval(introduced, fixed, last_affected, limit)] = None
        elif status == "affected" and not kind:
            # An OSV entry with neither ranges nor versions: every version is affected.
            vulnerable[_Interval("0")] = None
    intervals = tuple(vulnerable)
    return intervals, _render_versions(ecosystem, intervals) if intervals else []


#: Builds an :class:`_Interval` from a full tuple of its fields without the named tuple's Python ``__new__``.
_new_interval = tuple.__new__


def _comparable(ecosystem: str, version: str) -> bool:
    """Whether Trivy's comparer can parse ``version``: one unparsable constraint makes Trivy drop the whole
    advisory for the package (``IsVulnerable`` logs the error and answers "not vulnerable"). Checked for PyPI,
    whose legacy releases include versions PEP 440 rejects; other ecosystems' listed versions are kept."""
    if ecosystem != "pip":
        return bool(version)
    try:
        pep440_key(version)
    except ValueError:
        return False
    return True


def _os_value(rows: list[tuple[Any, ...]]) -> _OsValue | None:
    """One OS advisory (its rows as :func:`_group_rows` gives them): the fix of the range that starts at the
    beginning (else the first fix), or unfixed."""
    fixes: list[tuple[bool, str]] = []
    affected = False
    for kind, status, introduced, fixed, last_affected, limit, purl in rows:
        if kind == "CSAF":
            version = _purl_version(purl)
            if status == "fixed" and version:
                fixes.append((True, version))
            else:
                affected = True
        elif introduced is not None and introduced in (fixed, limit):
            continue  # an interval that holds no version: its end (a fix or a limit) is its start
        elif fixed:
            fixes.append((str(introduced or "0") in _NO_LOWER_BOUND, str(fixed)))
        elif last_affected or limit:
            continue  # "up to and including L" has no OS-bucket form: leave it out rather than over-report
        else:
            affected = True
    if fixes:
        from_start = [v for starts, v in fixes if starts]
        return _OsValue(fixed=(from_start or [v for _, v in fixes])[0])
    return _OsValue() if affected else None


def _merge(bucket: dict[str, _LangValue | _OsValue], key: str, value: _LangValue | _OsValue) -> None:
    current = bucket.get(key)
    if current is None:
        copy: _LangValue | _OsValue
        if isinstance(value, _LangValue):
            copy = _LangValue(value.ecosystem, list(value.vulnerable), list(value.vendor_ids))
        else:
            copy = _OsValue(value.fixed, list(value.vendor_ids))
        bucket[key] = copy
        return
    _extend(current.vendor_ids, value.vendor_ids)
    current.vendor_ids.sort()
    if isinstance(current, _LangValue) and isinstance(value, _LangValue):
        _extend(current.vulnerable, value.vulnerable)
    elif isinstance(current, _OsValue) and isinstance(value, _OsValue) and current.fixed is None:
        current.fixed = value.fixed


def _vulnerability(record: Mapping[str, Any]) -> dict[str, Any]:
    severities = [_as_severity(s) for s in record.get("severities") or ()]
    level = _severity_level(severities)
    out: dict[str, Any] = {}
    if record.get("summary"):
        out["Title"] = record["summary"]
    if level:
        out["Severity"] = severity_label(level)
        out["VendorSeverity"] = {SOURCE_ID: level}
    cvss = _cvss(severities)
    if cvss:
        out["CVSS"] = {SOURCE_ID: cvss}
    if record.get("cwes"):
        out["CweIDs"] = list(record["cwes"])
    if record.get("published"):
        out["PublishedDate"] = record["published"]
    if record.get("modified"):
        out["LastModifiedDate"] = record["modified"]
    return out


def _merge_vulnerability(vulns: dict[str, bytes], key: str, detail: dict[str, Any]) -> None:
    stored = vulns.get(key)
    if stored is None:
        vulns[key] = _dumps(detail)
        return
    current: dict[str, Any] = orjson.loads(stored)
    for name, value in detail.items():
        current.setdefault(name, value)
    level = max(current.get("VendorSeverity", {}).get(SOURCE_ID, 0), detail.get("VendorSeverity", {}).get(SOURCE_ID, 0))
    if level:
        current["VendorSeverity"] = {SOURCE_ID: level}
        current["Severity"] = severity_label(level)
    if "CweIDs" in detail:
        _extend(current["CweIDs"], detail["CweIDs"])
    vulns[key] = _dumps(current)
