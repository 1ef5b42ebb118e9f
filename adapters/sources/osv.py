"""OSV importer: OSV 1.x records, including GitHub Security Advisories in OSV form.

Validation is the official OSV JSON Schema plus the osv-linter rules it cannot express. Only the
schema and the rules without which a record means nothing reject it (an ``affected`` list that says
something, valid purls, complete CVSS v3 vectors); the lint rules that leave the record meaningful
are import warnings (range events listed twice, an empty interval, events out of version order,
listed ``versions`` outside the ranges). One known upstream quirk is tolerated: older GitHub
advisories end CVSS vectors with a ``/`` that the current schema rejects; the slash is dropped
before validation and a warning is recorded (the raw bytes are stored unchanged elsewhere).
Ranges are evaluated as the OSV specification says (see :func:`_intervals`); CVSS v2, v3.x and
v4.0 vectors get their base scores (:mod:`core.cvss`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from adapters.sources._common import check_purl, get_in, parse_time, purl_problem, validator
from adapters.sources._csaf_checks import json_object, parse_cvss3
from core.cvss import base_score
from core.errors import SchemaError, UnsupportedFormatError
from core.records import Advisory, AdvisorySeverity, AffectedRange, DocumentKind, ParsedDocument
from core.schema import json_pointer
from core.sources import Candidate, SourceFormat
from core.versions import pep440_key, semver_key

OSV_MEDIA_TYPE = "application/vnd.osv+json"
_SCHEMA = "osv/osv-schema.json"
# Top-level keys of the other JSON formats the registry knows; an OSV record has none of them.
_FOREIGN_KEYS = frozenset(
    {
        "document",
        "dataType",
        "dataVersion",
        "@context",
        "bomFormat",
        "spdxVersion",
        "_type",
        "payloadType",
        "mediaType",
        "predicateType",
        "statements",
        "catalogVersion",
    }
)
#: The OSV schema's top-level fields (``properties``; tests/unit/test_ingest_detect.py holds them to the schema).
_FIELDS = frozenset(
    {
        "affected",
        "aliases",
        "credits",
        "database_specific",
        "details",
        "id",
        "modified",
        "published",
        "references",
        "related",
        "schema_version",
        "severity",
        "summary",
        "upstream",
        "withdrawn",
    }
)
#: Formats whose sniffers claim no JSON object whose keys are all OSV fields (each needs a key of its own, such as
#: ``mediaType``, ``payloadType``, ``document`` or ``bomFormat``); tests/unit/test_ingest_detect.py checks each.
_SNIFF_NOTHING_OF_OURS = frozenset(
    {
        "sigstore-bundle",
        "dsse",
        "intoto-statement",
        "csaf-vex",
        "csaf",
        "cve5",
        "openvex",
        "cyclonedx-vex",
        "cyclonedx",
        "spdx",
    }
)
_CVSS_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4"})
_END_EVENTS = ("fixed", "last_affected", "limit")

Interval = tuple[str, str | None, str | None]  # introduced, end event kind, end version
#: Version-against-interval comparisons the listed-versions check may spend on one affected entry.
_CHECK_BUDGET = 50_000  # about a quarter of a second


def _severity_lists(doc: Mapping[str, Any]) -> Iterator[tuple[list[str | int], Any]]:
    yield ["severity"], doc.get("severity")
    for i, entry in enumerate(doc.get("affected") or ()):
        if isinstance(entry, dict):
            yield ["affected", i, "severity"], entry.get("severity")


def _drop_trailing_slash(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Copy ``doc`` with the GitHub trailing-'/' CVSS quirk removed; never mutates the input."""
    warnings: list[str] = []
    out = dict(doc)
    for loc, severities in _severity_lists(doc):
        if not isinstance(severities, list):
            continue
        fixed = []
        for j, item in enumerate(severities):
            if (
                isinstance(item, dict)
                and item.get("type") in _CVSS_TYPES
                and isinstance(score := item.get("score"), str)
                and score.endswith("/")
            ):
                warnings.append(
                    f"{json_pointer([*loc, j, 'score'])}: dropped the trailing '/' of CVSS vector {score!r} "
                    "(known GitHub advisory quirk)"
                )
                item = {**item, "score": score[:-1]}
            fixed.append(item)
        if fixed != severities:
            if len(loc) == 1:
                out["severity"] = fixed
            else:
                affected = out["affected"] = list(out["affected"])
                affected[int(loc[1])] = {**affected[int(loc[1])], "severity": fixed}
    return out, warnings


def _explain_ranges(doc: Mapping[str, Any], path: str) -> SchemaError | None:
    """Name a range without 'introduced' plainly; the schema reports it as an opaque 'contains' failure."""
    for i, entry in enumerate(get_in(doc, "affected") or ()):
        for j, rng in enumerate(get_in(entry, "ranges") or ()):
            events = get_in(rng, "events")
            if isinstance(events, list) and not any(isinstance(e, dict) and "introduced" in e for e in events):
                return SchemaError(
                    "range has no 'introduced' event: every OSV range must say where the vulnerable "
                    'versions start ("0" for the very first version)',
                    path=path,
                    pointer=json_pointer(["affected", i, "ranges", j, "events"]),
                )
    return None


_EVENT_KINDS = frozenset({"introduced", *_END_EVENTS})


def _event(event: Mapping[str, str]) -> tuple[str, str]:
    """(kind, version) of a schema-valid range event (it has exactly one of the four kinds)."""
    if len(event) == 1:
        for kind, value in event.items():
            if kind in _EVENT_KINDS:
                return kind, value
    kind = next(k for k in ("introduced", *_END_EVENTS) if k in event)
    return kind, event[kind]


#: Distinct values whose parse is remembered per worker (versions, CVSS vectors): feeds repeat them endlessly.
_CACHE = 1 << 16
_semver_key = functools.lru_cache(maxsize=_CACHE)(semver_key)
_pep440_key = functools.lru_cache(maxsize=_CACHE)(pep440_key)


@functools.lru_cache(maxsize=_CACHE)
def _cvss3_problem(vector: str) -> str | None:
    """Why a CVSS v3 vector is invalid, or None."""
    try:
        parse_cvss3(vector)
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=_CACHE)
def _base_score(kind: str, vector: str) -> float | str:
    """The vector's base score, or why it has none."""
    try:
        return base_score(kind, vector)
    except ValueError as exc:
        return str(exc)


class _Ranges:
    """Each range's affected intervals, computed once per record (the lint rules and the rows both need them)."""

    def __init__(self) -> None:
        self._done: dict[int, list[Interval]] = {}

    def intervals(self, rng: Mapping[str, Any], ecosystem: str | None) -> list[Interval]:
        found = self._done.get(id(rng))
        if found is None:
            found = self._done[id(rng)] = _intervals(rng, ecosystem)
        return found


def _lint_events(rng: Mapping[str, Any], loc: list[str | int], ecosystem: str | None, ranges: _Ranges) -> list[str]:
    """osv-linter rules on one range, as warnings: an event listed twice, an interval that holds no version.

    Neither makes the record meaningless (its other intervals still say what is affected), so the record is
    imported as published and the importer says what it noticed.
    """
    warnings: list[str] = []
    seen: set[tuple[str, str]] = set()
    for k, event in enumerate(rng["events"]):
        kind, value = _event(event)
        if (kind, value) in seen:
            warnings.append(f"{json_pointer([*loc, 'events', k])}: '{kind}: {value}' is listed twice (osv-linter)")
        seen.add((kind, value))
    intervals = ranges.intervals(rng, ecosystem)
    for introduced, end_kind, end in intervals:
        if end_kind in ("fixed", "limit") and end == introduced:
            warnings.append(
                f"{json_pointer(loc)}: the interval 'introduced: {introduced}', '{end_kind}: {end}' is empty, "
                "no version lies in it (osv-linter); the range's other intervals are imported"
            )
    # Without a version order the intervals are the events paired as published: nothing to compare.
    ordered = _version_key(rng["type"], ecosystem) is not None
    if ordered and set(intervals) != set(_pair([_event(e) for e in rng["events"]])):
        shown = "; ".join(_show(i) for i in intervals) or "none"
        warnings.append(
            f"{json_pointer(loc)}: the events are not in version order; evaluated in version order as OSV "
            f"specifies, the affected intervals are: {shown}"
        )
    return warnings


def _show(interval: Interval) -> str:
    introduced, end_kind, end = interval
    return f"introduced {introduced}" + (f", {end_kind} {end}" if end_kind else "")


_GIT_COMMIT = re.compile(r"^(0|[a-f0-9]{40}|[a-f0-9]{64})$")


def _describe_range(entry: Mapping[str, Any], rng: Mapping[str, Any]) -> str:
    package = get_in(entry, "package") or {}
    events = ", ".join(f"{k} {v}" for e in get_in(rng, "events") or () if isinstance(e, dict) for k, v in e.items())
    return f"{package.get('ecosystem')}/{package.get('name')} {get_in(rng, 'type')} ({events})"


def _explain_git(doc: Mapping[str, Any], path: str) -> SchemaError | None:
    """Name a GIT range event that is not a full commit hash, and the version ranges lost with the record.

    The schema reports it as an opaque 'oneOf' failure; the record is rightly refused, but an operator needs
    to know which package-version ranges (ECOSYSTEM, SEMVER) it carried, since no advisory for them is imported.
    """
    affected = get_in(doc, "affected") or ()
    for i, entry in enumerate(affected):
        for j, rng in enumerate(get_in(entry, "ranges") or ()):
            if get_in(rng, "type") != "GIT":
                continue
            for k, event in enumerate(get_in(rng, "events") or ()):
                if not isinstance(event, dict) or len(event) != 1:
                    continue
                ((kind, value),) = event.items()
                if isinstance(value, str) and not _GIT_COMMIT.match(value):
                    lost = [
                        _describe_range(e, r)
                        for e in affected
                        for r in get_in(e, "ranges") or ()
                        if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
                    ]
                    tail = (
                        f"; the record's version ranges are not imported with it: {'; '.join(lost)}"
                        if lost
                        else "; the record has no version ranges besides its GIT ranges"
                    )
                    return SchemaError(
                        f"GIT range event '{kind}: {value}' is not a full-length commit hash "
                        f"(the OSV schema requires 40 or 64 hex digits){tail}",
                        path=path,
                        pointer=json_pointer(["affected", i, "ranges", j, "events", k]),
                    )
    return None


def _check_semantics(doc: Mapping[str, Any], path: str, ranges: _Ranges) -> list[str]:
    """The osv-linter rules the schema cannot express: the ones that make a record meaningless reject it,
    the others come back as warnings."""
    warnings: list[str] = []
    affected = doc.get("affected")
    if not affected:
        raise SchemaError(
            "the record lists no affected packages ('affected' is missing or empty), "
            "so it cannot be matched against anything",
            path=path,
            pointer="/affected" if "affected" in doc else "",
        )
    for i, entry in enumerate(affected):
        package = entry.get("package") or {}  # the schema made each entry and package an object
        purl = package.get("purl")
        if purl is not None and purl_problem(purl) is not None:
            check_purl(purl, path=path, pointer=json_pointer(["affected", i, "package", "purl"]))
        ecosystem = package.get("ecosystem")
        for j, rng in enumerate(entry.get("ranges") or ()):
            warnings += _lint_events(rng, ["affected", i, "ranges", j], ecosystem, ranges)
        if entry.get("versions"):
            warnings += _unranged_versions(entry, i, ranges)
    for loc, severities in _severity_lists(doc):
        for j, item in enumerate(severities or ()):
            if item["type"] == "CVSS_V3":
                problem = _cvss3_problem(item["score"])
                if problem is not None:
                    raise SchemaError(
                        f"invalid CVSS v3 vector: {problem}", path=path, pointer=json_pointer([*loc, j, "score"])
                    )
    return warnings


def _intervals(rng: Mapping[str, Any], ecosystem: str | None) -> list[Interval]:
    """The affected intervals of a range, as OSV's evaluation defines them.

    Where the versions can be ordered here (SEMVER ranges; PyPI ECOSYSTEM ranges) the events are sorted by
    version, stably ("0" first, ties keep the record's order), and walked: an 'introduced' opens an interval
    unless one is open, an end event closes the open one and is ignored otherwise. That is the spec's
    algorithm (and osv.dev's): PYSEC-2022-42972's "introduced 0.13.0, fixed 0.14.0rc1, introduced 0.12.2,
    fixed 0.13.0" affects [0.12.2, 0.13.0) only. Other ranges keep the publisher's order and pair each end
    event with the latest 'introduced' (GIT: several 'fixed' commits on different branches close the same one).
    """
    events = [_event(e) for e in rng["events"]]
    key = _version_key(rng["type"], ecosystem)
    if key is not None:
        try:
            ordered = sorted(events, key=lambda e: (0, 0) if e[1] == "0" else (1, key(e[1])))
        except (ValueError, TypeError):
            pass  # a version outside the scheme (the schema allows it): keep the publisher's order
        else:
            return _walk(ordered)
    return _pair(events)


def _walk(events: list[tuple[str, str]]) -> list[Interval]:
    out: list[Interval] = []
    start: str | None = None
    for kind, value in events:
        if kind == "introduced":
            start = value if start is None else start
        elif start is not None:
            out.append((start, kind, value))
            start = None
    if start is not None:
        out.append((start, None, None))
    return out


def _pair(events: list[tuple[str, str]]) -> list[Interval]:
    first = next(k for k, (kind, _) in enumerate(events) if kind == "introduced")
    # End events listed before any 'introduced' belong to the first one.
    events = [events[first], *events[:first], *events[first + 1 :]]
    out: list[Interval] = []
    current, open_ = events[0][1], True
    for kind, value in events[1:]:
        if kind == "introduced":
            if open_:
                out.append((current, None, None))
            current, open_ = value, True
        else:
            out.append((current, kind, value))
            open_ = False
    if open_:
        out.append((current, None, None))
    return out


def _version_key(range_type: str, ecosystem: str | None) -> Callable[[str], Any] | None:
    """How to order a range's versions, where this importer knows the rules: SemVer, and PEP 440 for PyPI."""
    if range_type == "SEMVER":
        return _semver_key
    if range_type == "ECOSYSTEM" and ecosystem == "PyPI":
        return _pep440_key
    return None


def _keyed(key: Callable[[str], Any], interval: Interval) -> tuple[Any, str | None, Any]:
    """An interval with its bounds turned into sort keys once (``None``: unbounded)."""
    introduced, end_kind, end = interval
    return (None if introduced == "0" else key(introduced)), end_kind, (None if end is None else key(end))


def _covered(version: Any, keyed: tuple[Any, str | None, Any]) -> bool:
    low, end_kind, high = keyed
    if low is not None and version < low:
        return False
    if high is None:
        return True
    return bool(version <= high if end_kind == "last_affected" else version < high)


def _unranged_versions(entry: Mapping[str, Any], i: int, ranged: _Ranges) -> list[str]:
    """A warning when the entry's ``versions`` list names versions its ranges leave out.

    OSV: a version is affected if it is in a range *or* listed, so such versions are imported as affected;
    the record contradicts itself, which the operator should know. Checked where the versions can be ordered
    here (SEMVER ranges, PyPI ECOSYSTEM ranges) and skipped when any version does not parse.
    """
    versions, ranges = entry.get("versions") or [], entry.get("ranges") or []
    ecosystem = get_in(entry, "package", "ecosystem")
    keys = [_version_key(r["type"], ecosystem) for r in ranges]
    if not versions or not ranges or any(k is None for k in keys):
        return []
    try:
        pairs = zip(keys, ranges, strict=True)
        intervals = [(key, _keyed(key, i)) for key, rng in pairs if key for i in ranged.intervals(rng, ecosystem)]
        if len(versions) * len(intervals) > _CHECK_BUDGET:
            return []  # a hostile size: the check is advice, the import must not stall on it
        outside = []
        for version in versions:
            for key, keyed in intervals:
                if _covered(key(version), keyed):
                    break
            else:
                outside.append(version)
    except (ValueError, TypeError):
        return []
    if not outside:
        return []
    shown = ", ".join(outside[:8]) + (f" and {len(outside) - 8} more" if len(outside) > 8 else "")
    return [
        f"{json_pointer(['affected', i, 'versions'])}: {len(outside)} listed version(s) lie outside the entry's "
        f"ranges ({shown}); OSV counts a listed version as affected, so they are imported as affected"
    ]


def _affected(doc: Mapping[str, Any], ranged: _Ranges) -> list[AffectedRange]:
    rows: list[AffectedRange] = []
    for entry in doc["affected"]:
        package = entry.get("package") or {}
        ecosystem, name, purl = package.get("ecosystem"), package.get("name"), package.get("purl")
        ranges = entry.get("ranges") or []
        for rng in ranges:
            # A package-less entry (CVE-converted records) names its code by the GIT repo.
            row_name = name or rng.get("repo") or doc["id"]
            for introduced, end_kind, end in ranged.intervals(rng, ecosystem):
                row = AffectedRange(ecosystem, row_name, purl, rng["type"], introduced=introduced)
                if end_kind is not None:
                    setattr(row, end_kind, end)
                rows.append(row)
        versions = entry.get("versions") or []
        if versions:
            rows.append(AffectedRange(ecosystem, name or doc["id"], purl, "VERSIONS", versions=list(versions)))
        if not ranges and not versions:
            rows.append(AffectedRange(ecosystem, name or doc["id"], purl))
    return rows


def _severities(doc: Mapping[str, Any], warnings: list[str]) -> list[AdvisorySeverity]:
    out: list[AdvisorySeverity] = []
    for loc, severities in _severity_lists(doc):
        source = None
        if len(loc) > 1:
            package = get_in(doc, "affected", loc[1], "package") or {}
            source = f"{package.get('ecosystem')}/{package.get('name')}" if package else None
        for j, item in enumerate(severities or ()):
            score = item["score"]
            base = None
            if item["type"] in _CVSS_TYPES:
                scored = _base_score(item["type"], score)
                if isinstance(scored, str):  # v3 was checked already; a v2/v4 vector the schema let through
                    warnings.append(f"{json_pointer([*loc, j, 'score'])}: {scored}; no base score for it")
                else:
                    base = scored
            severity = AdvisorySeverity(item["type"], score, base, source)
            if severity not in out:
                out.append(severity)
    label = get_in(doc, "database_specific", "severity")
    if doc["id"].startswith("GHSA-") and isinstance(label, str):
        out.append(AdvisorySeverity("GHSA", label))
    return out


def _cwes(doc: Mapping[str, Any]) -> list[str]:
    cwes = [c for c in get_in(doc, "database_specific", "cwe_ids") or () if isinstance(c, str)]
    # The osv-schema GHSA converter puts CWEs on each affected entry instead.
    for entry in doc["affected"]:
        for cwe in get_in(entry, "database_specific", "cwes") or ():
            if isinstance(get_in(cwe, "cweId"), str):
                cwes.append(cwe["cweId"])
    return list(dict.fromkeys(cwes))


def _summary(doc: Mapping[str, Any]) -> str | None:
    if doc.get("summary"):
        return str(doc["summary"])
    lines = [line.strip() for line in str(doc.get("details") or "").splitlines()]
    return next((line for line in lines if line), None)


def _advisory(doc: Mapping[str, Any], path: str, warnings: list[str], ranges: _Ranges) -> Advisory:
    return Advisory(
        advisory_id=doc["id"],
        modified=parse_time(doc["modified"], path=path, pointer="/modified", required=True),
        published=parse_time(doc.get("published"), path=path, pointer="/published"),
        withdrawn=parse_time(doc.get("withdrawn"), path=path, pointer="/withdrawn"),
        summary=_summary(doc),
        aliases=list(doc.get("aliases") or ()),
        # 'upstream' (OSV 1.7) names the records this one derives from; closest to 'related'.
        related=list(dict.fromkeys([*(doc.get("related") or ()), *(doc.get("upstream") or ())])),
        cwes=_cwes(doc),
        severities=_severities(doc, warnings),
        affected=_affected(doc, ranges),
    )


class OsvFormat:
    """OSV 1.x vulnerability records (OSV.dev, GitHub, Go, PyPA, distributions...)."""

    name = "osv"
    kind = DocumentKind.ADVISORY
    media_type = OSV_MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object with string ``id`` and ``modified`` and no key of another known format."""
        data = candidate.json
        return (
            isinstance(data, dict)
            and isinstance(data.get("id"), str)
            and isinstance(data.get("modified"), str)
            and not _FOREIGN_KEYS.intersection(data)
        )

    def sniff_first(self, candidate: Candidate, before: Collection[str]) -> bool:
        """True when ``candidate`` is an OSV record that no format named in ``before`` (those detection asks first)
        can claim: an object of OSV fields only that :meth:`sniff` takes. Detection may then stop here at once."""
        if not _SNIFF_NOTHING_OF_OURS.issuperset(before):
            return False
        data = candidate.json
        return isinstance(data, dict) and data.keys() <= _FIELDS and self.sniff(candidate)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate (schema and osv-linter rules) and normalize to one :class:`Advisory`."""
        path = candidate.path
        doc = json_object(candidate, "OSV record")
        missing = [key for key in ("id", "modified") if key not in doc]
        if missing:
            raise SchemaError(
                f"not an OSV record: the required field(s) {', '.join(missing)} are missing",
                path=path,
                pointer="",
            )
        version = doc.get("schema_version")
        if isinstance(version, str) and version.split(".")[0] != "1":
            raise UnsupportedFormatError(
                f"OSV schema version {version} is not supported; this tool imports OSV 1.x",
                path=path,
                pointer="/schema_version",
            )
        doc, warnings = _drop_trailing_slash(doc)
        try:
            validator("OSV schema", _SCHEMA).check(doc, path=path)
        except SchemaError as exc:
            clearer = _explain_ranges(doc, path) or _explain_git(doc, path)
            if clearer is not None:
                raise clearer from exc
            raise
        ranges = _Ranges()
        warnings += _check_semantics(doc, path, ranges)
        advisory = _advisory(doc, path, warnings, ranges)
        first = advisory.affected[0]
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=advisory.advisory_id,
            subject=f"{first.ecosystem}/{first.name}" if first.ecosystem else advisory.advisory_id,
            format_version=version if isinstance(version, str) else None,
            advisories=[advisory],
            warnings=warnings,
        )


OSV = OsvFormat()
FORMATS: tuple[SourceFormat, ...] = (OSV,)
