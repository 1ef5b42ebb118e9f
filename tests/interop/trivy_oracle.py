"""An oracle for the Trivy differential test, independent of stella's code.

Version order comes from ``univers`` (its PyPI, semver, Maven, NuGet, RubyGems, Composer, Debian and Alpine classes),
CVSS base scores from ``cvss``; neither is used by stella's mapping. On top of them this module applies OSV's own
evaluation rules to the records (a version is affected when some ECOSYSTEM/SEMVER range's events leave it inside
an introduced..fixed / introduced..last_affected interval, or when the affected entry lists it in ``versions``) and
stella's documented naming and severity rules (docs/trivy.md): findings are keyed by each CVE among a record's ID
and aliases, else by the record's ID; severity is GitHub's ``database_specific.severity`` label, else the highest
CVSS base score, else unknown; records sharing a key take the highest severity.

It also reads a ``trivy.db`` (bbolt) with its own small reader and evaluates what stella wrote the way Trivy's
matching is specified (``VulnerableVersions`` constraints OR-ed, a match in ``PatchedVersions`` /
``UnaffectedVersions`` clears it; OS buckets: vulnerable below ``FixedVersion``, always when there is none), with
the correct version order. That second verdict tells a stella mapping error (the entry itself says something other
than the record) from a Trivy matching limit (the entry is right, Trivy's own version comparison disagrees).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, total_ordering
from pathlib import Path
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from univers import versions as uv

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_LABELS = {"LOW": 1, "MODERATE": 2, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


@dataclass(frozen=True)
class Family:
    """How one OSV ecosystem is versioned, scanned by Trivy, and keyed (Trivy's package-name normalization)."""

    name: str  # the label the test prints
    version: Callable[[str], Any]
    os: bool = False

    def parse(self, text: str) -> Any | None:
        try:
            return _Ordered(self.version(text))
        except Exception:  # univers raises assorted errors for strings outside the scheme
            return None


@total_ordering
class _Ordered:
    """A univers version compared through its ``<`` alone: univers' ``AlpineLinuxVersion`` (a Gentoo subclass)
    overrides ``<`` but inherits ``>=``/``==`` comparing the text, so ``8.3.0-r0 >= 8.12.0-r0`` is True there."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Ordered) -> bool:
        return bool(self.v < other.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and not self.v < other.v and not other.v < self.v

    def __hash__(self) -> int:
        return 0  # equal versions may be spelled differently; nothing here needs a spread

    def __repr__(self) -> str:
        return f"_Ordered({self.v!s})"


def _semver(text: str) -> Any:
    return uv.SemverVersion(text[1:] if text.startswith("v") else text)


FAMILIES: dict[str, Family] = {
    "PyPI": Family("PyPI", uv.PypiVersion),
    "Go": Family("Go", _semver),
    "crates.io": Family("crates.io", _semver),
    "npm": Family("npm", _semver),
    "Maven": Family("Maven", uv.MavenVersion),
    "RubyGems": Family("RubyGems", uv.RubygemsVersion),
    "NuGet": Family("NuGet", uv.NugetVersion),
    "Packagist": Family("Packagist", uv.ComposerVersion),
    "Debian": Family("Debian", uv.DebianVersion, os=True),
    "Ubuntu": Family("Ubuntu", uv.DebianVersion, os=True),
    "Alpine": Family("Alpine", uv.AlpineLinuxVersion, os=True),
    "Wolfi": Family("Wolfi", uv.AlpineLinuxVersion, os=True),
    "Chainguard": Family("Chainguard", uv.AlpineLinuxVersion, os=True),
}


def family_of(ecosystem: str) -> tuple[Family, str] | None:
    """``("Debian:12")`` -> (Debian family, "12"); ``Alpine:v3.19`` -> "3.19"; language ecosystems -> ""."""
    base, _, release = ecosystem.partition(":")
    fam = FAMILIES.get(base)
    if fam is None:
        return None
    if base == "Alpine":
        release = release.removeprefix("v")
    if base == "Ubuntu":  # "Ubuntu:Pro:16.04:LTS": a release with Ubuntu Pro (ESM), which Trivy calls "16.04-ESM"
        parts = release.split(":")
        numbers = [p for p in parts if p[:1].isdigit()]
        release = (numbers[0] if numbers else "") + ("-ESM" if "Pro" in parts else "")
    return fam, release


def normalize_name(family: str, name: str) -> str:
    """Trivy's key for a package name (trivy-db NormalizePkgName): pip folds case and separators, Go keeps case."""
    if family == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if family == "Go":
        return name
    return name.lower()


# --- OSV evaluation ----------------------------------------------------------------------------------------------

_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def _range_affects(fam: Family, events: list[dict[str, str]], version: Any) -> bool | None:
    """OSV's rule for one range, as osv.dev applies it: events sorted by version ("0" first, ties keep the record's
    order), then walked: introduced opens, fixed closes at, last_affected closes after. None: an unparsable event."""
    zero: list[tuple[str, Any]] = []
    keyed: list[tuple[str, Any]] = []
    for event in events:
        for kind, value in event.items():
            if kind not in _ORDER:
                continue
            if kind == "introduced" and value == "0":
                zero.append((kind, None))
                continue
            parsed = fam.parse(value)
            if parsed is None:
                return None
            keyed.append((kind, parsed))
    keyed.sort(key=lambda k: k[1])  # stable: ties keep the record's order, as osv.dev sorts
    affected = False
    for kind, at in [*zero, *keyed]:
        if kind == "introduced":
            affected = affected or at is None or version >= at
        elif (kind in ("fixed", "limit") and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


@dataclass
class Verdict:
    affected: bool
    fixes: set[str] = field(default_factory=set)  # fixes of the ranges that contain the version
    all_fixes: set[str] = field(default_factory=set)  # every fixed event of the package in this record
    open_interval: bool = False  # affected by an interval (or a listed version) that no fix closes
    representable_os: bool = True  # one range from 0 (Trivy's OS advisory form: a single FixedVersion)


def evaluate(fam: Family, affected: dict[str, Any], text: str) -> Verdict | None:
    """Is ``text`` affected per this OSV affected entry? None when a version in play does not parse."""
    version = fam.parse(text)
    if version is None:
        return None
    verdict = Verdict(False)
    ranges = [r for r in affected.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
    for rng in ranges:
        events = rng.get("events") or []
        fixes = {e["fixed"] for e in events if "fixed" in e}
        verdict.all_fixes |= fixes
        hit = _range_affects(fam, events, version)
        if hit is None:
            return None
        if hit:
            verdict.affected = True
            above = sorted((p, f) for f in fixes if (p := fam.parse(f)) is not None and p > version)
            if above:
                verdict.fixes.add(above[0][1])  # the fix that closes the interval holding the version
            else:
                verdict.open_interval = True
        intro = [e["introduced"] for e in events if "introduced" in e]
        if intro != ["0"] or len(fixes) > 1 or any("last_affected" in e or "limit" in e for e in events):
            verdict.representable_os = False
    if len(ranges) > 1:
        verdict.representable_os = False
    listed = affected.get("versions") or []
    if listed and ranges and verdict.representable_os:
        # a list beside one range from 0 is expressible only if every listed version lies inside that range
        only_fix = [fam.parse(f) for f in verdict.all_fixes]
        if only_fix and (only_fix[0] is None or any((p := fam.parse(v)) is None or p >= only_fix[0] for v in listed)):
            verdict.representable_os = False
    if listed and not ranges:
        verdict.representable_os = False
    for item in listed:
        other = fam.parse(item)
        if item == text or (other is not None and other == version):
            if not verdict.affected:
                verdict.open_interval = True
            verdict.affected = True
    return verdict


def keys_of(record: dict[str, Any]) -> list[str]:
    """The vulnerability IDs Trivy reports a record under: every CVE among ID and aliases, else the record's ID."""
    ids = [record["id"], *(record.get("aliases") or [])]
    cves = sorted({i for i in ids if i.startswith("CVE-")})
    return cves or [record["id"]]


def _cvss_rank(entry: dict[str, Any]) -> tuple[float, int] | None:
    score_type, vector = entry.get("type"), entry.get("score", "")
    try:
        if score_type == "CVSS_V2":
            score = float(CVSS2(vector).base_score)
            return score, (3 if score >= 7.0 else 2 if score >= 4.0 else 1 if score > 0.0 else 0)
        if score_type == "CVSS_V3":
            score = float(CVSS3(vector).base_score)
        elif score_type == "CVSS_V4":
            score = float(CVSS4(vector).base_score)
        else:
            return None
    except Exception:  # a vector the library refuses: no score from it
        return None
    # CVSS v3/v4 qualitative ratings; 0.0 is "None", which Trivy can only show as UNKNOWN
    return score, (4 if score >= 9.0 else 3 if score >= 7.0 else 2 if score >= 4.0 else 1 if score > 0.0 else 0)


def record_severity(record: dict[str, Any]) -> int:
    """GitHub's label, else the highest rating among the CVSS base scores (v2, v3, v4), else 0 (unknown)."""
    label = str((record.get("database_specific") or {}).get("severity") or "").upper()
    if label in _LABELS:
        return _LABELS[label]
    entries = list(record.get("severity") or [])
    for aff in record.get("affected") or []:
        entries += aff.get("severity") or []
    ratings = [r[1] for r in map(_cvss_rank, entries) if r is not None]  # each on its own version's scale
    return max(ratings, default=0)


# --- the records -------------------------------------------------------------------------------------------------


@dataclass
class Record:
    path: Path
    doc: dict[str, Any]
    schema_errors: list[str]

    @property
    def id(self) -> str:
        return str(self.doc["id"])


def load_records(root: Path, validator: Any) -> list[Record]:
    """Every ``*.json`` under ``root``; ``validator`` is the official OSV JSON Schema's (jsonschema) validator."""
    out = []
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(path.read_bytes())
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}" for e in validator.iter_errors(doc)]
        out.append(Record(path, doc, errors))
    return out


def packages(records: Iterable[Record]) -> Iterator[tuple[Record, dict[str, Any], Family, str]]:
    """(record, affected entry, family, release) for every affected entry of a family the test covers."""
    for rec in records:
        if rec.doc.get("withdrawn"):
            continue
        for aff in rec.doc.get("affected") or []:
            pkg = aff.get("package") or {}
            found = family_of(str(pkg.get("ecosystem", "")))
            if found and pkg.get("name"):
                yield rec, aff, found[0], found[1]


# --- boundary versions -------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def neighbours(text: str) -> list[str]:
    """Just below and just above ``text``: its last number minus one (or its last non-zero one) and plus one."""
    runs = list(_DIGITS.finditer(text))
    if not runs:
        return []
    last = runs[-1]
    up = f"{text[: last.start()]}{int(last.group()) + 1}{text[last.end() :]}"
    out = [up]
    for run in reversed(runs):
        if int(run.group()) > 0:
            out.append(f"{text[: run.start()]}{int(run.group()) - 1}{text[run.end() :]}")
            break
    return out


def boundary_versions(fam: Family, affected: dict[str, Any], cap: int = 10) -> set[str]:
    """Each introduced/fixed/last_affected and its neighbours; listed versions: every one no range holds (the ones
    a mapping that drops the list would miss) and up to ``cap`` others, evenly spread, with their neighbours."""
    out: set[str] = set()
    ranges = [r for r in affected.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
    for rng in ranges:
        for event in rng.get("events") or []:
            for kind, value in event.items():
                if kind in ("introduced", "fixed", "last_affected") and value != "0":
                    out |= {value, *neighbours(value)}
    listed = list(affected.get("versions") or [])
    outside = []
    for value in listed:
        parsed = fam.parse(value)
        if parsed is not None and not any(_range_affects(fam, r.get("events") or [], parsed) for r in ranges):
            outside.append(value)
    out |= set(outside)
    if len(listed) > cap:
        step = len(listed) / cap
        listed = [listed[int(i * step)] for i in range(cap)] + [listed[-1]]
    for value in listed:
        out |= {value, *neighbours(value)}
    if not out and ranges:  # "introduced: 0" alone, every version affected: any version will do
        out.add(_ANY_VERSION.get(fam.name, "1.0.0"))
    return out


_ANY_VERSION = {"Debian": "1.0-1", "Ubuntu": "1.0-1", "Alpine": "1.0-r0", "Wolfi": "1.0-r0", "Chainguard": "1.0-r0"}


# --- what stella wrote: a bbolt reader and Trivy's matching, with the right version order -------------------------


def read_bbolt(path: Path) -> dict[bytes, Any]:
    """The whole bucket tree of a bbolt file: bucket -> {key: value bytes | nested dict}."""
    data = path.read_bytes()
    metas = []
    for page in (0, 1):
        base = page * 4096 + 16
        magic, _version, page_size = struct.unpack_from("<III", data, base)
        if magic == 0xED0CDAED:
            root, _seq, _free, _pgid, txid = struct.unpack_from("<QQQQQ", data, base + 16)
            metas.append((txid, page_size, root))
    _, page_size, root = max(metas)

    def walk(buf: bytes, offset: int, into: dict[bytes, Any]) -> None:
        _pid, flags, count, _overflow = struct.unpack_from("<QHHI", buf, offset)
        for i in range(count):
            elem = offset + 16 + i * 16
            if flags & 0x01:  # branch
                pos, ksize, child = struct.unpack_from("<IIQ", buf, elem)
                walk(data, child * page_size, into)
            else:
                eflags, pos, ksize, vsize = struct.unpack_from("<IIII", buf, elem)
                key = bytes(buf[elem + pos : elem + pos + ksize])
                value = bytes(buf[elem + pos + ksize : elem + pos + ksize + vsize])
                if eflags & 0x01:
                    child_root = struct.unpack_from("<Q", value)[0]
                    sub: dict[bytes, Any] = {}
                    if child_root:
                        walk(data, child_root * page_size, sub)
                    else:
                        walk(value, 16, sub)
                    into[key] = sub
                else:
                    into[key] = value

    tree: dict[bytes, Any] = {}
    walk(data, root * page_size, tree)
    return tree


_CONSTRAINT = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*v?(\S+)\s*$")


@cache
def _parse_cached(family: str, text: str) -> Any | None:
    return FAMILIES[family].parse(text)


def _satisfies(fam: Family, version: Any, expr: str) -> bool | None:
    """One comma-joined AND group of Trivy constraints ('>=1.0, <1.2'); an empty string matches everything."""
    if not expr.strip():
        return True
    for part in expr.split(","):
        match = _CONSTRAINT.match(part)
        if not match:
            return None
        op, ver = match.group(1) or "=", _parse_cached(fam.name, match.group(2))
        if ver is None:
            return None
        ok = {
            "<": version < ver,
            "<=": version <= ver,
            ">": version > ver,
            ">=": version >= ver,
            "=": version == ver,
            "==": version == ver,
            "!=": version != ver,
        }[op]
        if not ok:
            return False
    return True


def entry_says_affected(fam: Family, advisory: dict[str, Any], text: str) -> bool | None:
    """What stella's advisory value means for ``text`` when read with the right version order."""
    version = fam.parse(text)
    if version is None:
        return None
    if fam.os:
        fixed = advisory.get("FixedVersion") or ""
        if not fixed:
            return True
        bound = fam.parse(fixed)
        return None if bound is None else bool(version < bound)
    vulnerable = advisory.get("VulnerableVersions") or []
    hits = [_satisfies(fam, version, v) for v in vulnerable]
    if None in hits:
        return None
    if not any(hits):
        return False
    for clear in [*(advisory.get("PatchedVersions") or []), *(advisory.get("UnaffectedVersions") or [])]:
        if _satisfies(fam, version, clear):
            return False
    return True
