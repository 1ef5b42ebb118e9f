"""Shared helpers of the advisory adapters: CVSS 3.x scoring and the CSAF 2.0 mandatory tests.

The CVSS part implements the base-score equations of the FIRST CVSS v3.0 and v3.1
specifications (section 7 of v3.1). The CSAF part implements the subset of the CSAF 2.0
mandatory tests (spec section 6.1) that a JSON Schema cannot express and that need no external
data: 6.1.1-6.1.6, 6.1.8 (clearer messages than the schema's), 6.1.13, the profile tests
6.1.27.3/4/6 and, for ``csaf_vex``, 6.1.27.7-6.1.27.10, and 6.1.33. Every failure is a
:class:`SchemaError` with a JSON pointer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.sources._common import check_purl
from core.errors import SchemaError
from core.records import AdvisorySeverity
from core.schema import json_pointer
from core.sources import Candidate

# --------------------------------------------------------------------------- JSON input


def json_object(candidate: Candidate, what: str) -> dict[str, Any]:
    """The candidate's JSON object, or a :class:`SchemaError` saying why it is not one."""
    value = candidate.json
    if value is None:
        reason = candidate.json_error or "not a JSON document"
        raise SchemaError(f"cannot read the {what}: {reason}", path=candidate.path)
    if not isinstance(value, dict):
        found = "JSON Lines" if candidate.is_jsonl else f"a JSON {type(value).__name__}"
        raise SchemaError(f"expected the {what} as one JSON object, found {found}", path=candidate.path)
    return value


# --------------------------------------------------------------------------- CVSS 3.x

CVSS3_BASE_METRICS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")
_CVSS3_ALLOWED: dict[str, str] = {
    "AV": "NALP",
    "AC": "LH",
    "PR": "NLH",
    "UI": "NR",
    "S": "UC",
    "C": "NLH",
    "I": "NLH",
    "A": "NLH",
    "E": "XUPFH",
    "RL": "XOTWU",
    "RC": "XURC",
    "CR": "XLMH",
    "IR": "XLMH",
    "AR": "XLMH",
    "MAV": "XNALP",
    "MAC": "XLH",
    "MPR": "XNLH",
    "MUI": "XNR",
    "MS": "XUC",
    "MC": "XNLH",
    "MI": "XNLH",
    "MA": "XNLH",
}
_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def parse_cvss3(vector: str) -> tuple[str, dict[str, str]]:
    """Split a CVSS v3.x vector into its version (``3.0``/``3.1``) and metrics.

    Raises ``ValueError`` naming the problem: unknown prefix, unknown or repeated metric,
    invalid value, or a missing base metric.
    """
    prefix, _, body = vector.partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"{vector!r} does not start with CVSS:3.0/ or CVSS:3.1/")
    metrics: dict[str, str] = {}
    for part in body.split("/"):
        key, sep, value = part.partition(":")
        if not sep or key not in _CVSS3_ALLOWED:
            raise ValueError(f"{vector!r} has an unknown CVSS v3 metric {part!r}")
        if key in metrics:
            raise ValueError(f"{vector!r} gives the metric {key} more than once")
        if len(value) != 1 or value not in _CVSS3_ALLOWED[key]:
            raise ValueError(f"{vector!r} has an invalid value {value!r} for metric {key}")
        metrics[key] = value
    missing = [m for m in CVSS3_BASE_METRICS if m not in metrics]
    if missing:
        raise ValueError(f"{vector!r} lacks the base metric(s) {', '.join(missing)}")
    return prefix[5:], metrics


def _roundup(value: float, version: str) -> float:
    if version == "3.0":
        return math.ceil(value * 10) / 10
    # CVSS 3.1 Appendix A: integer arithmetic so that e.g. 4.000000000000001 rounds to 4.0.
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of ``vector`` (temporal/environmental metrics ignored)."""
    version, m = parse_cvss3(vector)
    changed = m["S"] == "C"
    iss = 1 - (1 - _CIA[m["C"]]) * (1 - _CIA[m["I"]]) * (1 - _CIA[m["A"]])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    pr = (_PR_CHANGED if changed else _PR_UNCHANGED)[m["PR"]]
    exploitability = 8.22 * _AV[m["AV"]] * _AC[m["AC"]] * pr * _UI[m["UI"]]
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return _roundup(min(total, 10.0), version)


def score_mismatch(vector: str, published: Any) -> str | None:
    """A warning when a published CVSS v3 base score differs from the one the vector gives."""
    if not isinstance(published, int | float) or not vector.startswith("CVSS:3"):
        return None
    try:
        computed = cvss3_base_score(vector)
    except ValueError:
        return None
    if abs(computed - float(published)) < 0.05:
        return None
    return f"published base score {published} differs from {computed} computed from {vector!r}"


def add_cvss(
    out: list[AdvisorySeverity],
    warnings: list[str],
    kind: str,
    cvss: Mapping[str, Any],
    source: str | None,
    pointer: list[str | int],
) -> None:
    """Record a CVSS object (CSAF ``scores[]`` or CVE 5 ``metrics[]``) once, and warn when its score is off."""
    severity = AdvisorySeverity(kind, cvss["vectorString"], float(cvss["baseScore"]), source)
    if severity not in out:
        out.append(severity)
    problem = score_mismatch(cvss["vectorString"], cvss["baseScore"])
    if problem:
        warnings.append(f"{json_pointer(pointer)}: {problem}")


# --------------------------------------------------------------------------- CSAF product tree

STATUS_GROUP = {
    "first_affected": "affected",
    "known_affected": "affected",
    "last_affected": "affected",
    "known_not_affected": "not_affected",
    "first_fixed": "fixed",
    "fixed": "fixed",
    "under_investigation": "under_investigation",
}
"""CSAF product_status lists and the status they mean (``recommended`` has none)."""

_VEX_STATUSES = ("fixed", "known_affected", "known_not_affected", "under_investigation")
_PRODUCT_REFS = ("remediations", "threats", "flags")


@dataclass(frozen=True, slots=True)
class Product:
    """One product the product_tree defines."""

    product_id: str
    name: str
    purl: str | None  # the product's own product_identification_helper.purl
    component: str | None  # product_reference, for a product defined by a relationship


@dataclass(slots=True)
class ProductTree:
    """The product and group IDs a CSAF document defines."""

    products: dict[str, Product] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def purl_of(self, product_id: str) -> str | None:
        """The product's purl, or for a relationship product that of the component it names.

        Red Hat, for one, puts purls only on the component ("git-lfs"), not on the
        "git-lfs as a component of RHEL 8" product that product_status lists.
        """
        seen: set[str] = set()
        current: str | None = product_id
        while current is not None and current not in seen:
            seen.add(current)
            product = self.products.get(current)
            if product is None:
                return None
            if product.purl:
                return product.purl
            current = product.component
        return None

    def members(self, item: Mapping[str, Any]) -> set[str]:
        """Product IDs an item names directly (``product_ids``) or through ``group_ids``."""
        out = {p for p in item.get("product_ids") or () if isinstance(p, str)}
        for gid in item.get("group_ids") or ():
            out.update(self.groups.get(gid, ()))
        return out


def _branch_products(branches: Any, base: list[str | int]) -> Iterator[tuple[Any, list[str | int]]]:
    for i, branch in enumerate(branches if isinstance(branches, list) else ()):
        if not isinstance(branch, dict):
            continue
        if isinstance(branch.get("product"), dict):
            yield branch["product"], [*base, i, "product"]
        yield from _branch_products(branch.get("branches"), [*base, i, "branches"])


def _definitions(tree: Mapping[str, Any]) -> Iterator[tuple[Any, list[str | int], str | None]]:
    """Every full_product_name with its location and, for relationships, the component."""
    yield from ((fpn, loc, None) for fpn, loc in _branch_products(tree.get("branches"), ["product_tree", "branches"]))
    for i, fpn in enumerate(tree.get("full_product_names") or ()):
        yield fpn, ["product_tree", "full_product_names", i], None
    for i, rel in enumerate(tree.get("relationships") or ()):
        yield (
            rel.get("full_product_name"),
            ["product_tree", "relationships", i, "full_product_name"],
            rel.get("product_reference"),
        )


def index_product_tree(doc: Mapping[str, Any], *, path: str) -> ProductTree:
    """Index product and group IDs; runs tests 6.1.2, 6.1.5 (multiple definition) and 6.1.13 (PURL)."""
    tree = doc.get("product_tree") or {}
    index = ProductTree()
    where: dict[str, str] = {}
    for fpn, loc, component in _definitions(tree):
        pid = fpn["product_id"]
        pointer = json_pointer([*loc, "product_id"])
        if pid in where:
            raise SchemaError(
                f"product ID {pid!r} is defined more than once (first at {where[pid]})",
                path=path,
                pointer=pointer,
            )
        where[pid] = pointer
        purl = (fpn.get("product_identification_helper") or {}).get("purl")
        if purl is not None:
            check_purl(purl, path=path, pointer=json_pointer([*loc, "product_identification_helper", "purl"]))
        index.products[pid] = Product(pid, fpn["name"], purl, component)
    for i, group in enumerate(tree.get("product_groups") or ()):
        gid = group["group_id"]
        if gid in index.groups:
            raise SchemaError(
                f"product group ID {gid!r} is defined more than once",
                path=path,
                pointer=json_pointer(["product_tree", "product_groups", i, "group_id"]),
            )
        index.groups[gid] = list(group["product_ids"])
    return index


def _product_refs(doc: Mapping[str, Any]) -> Iterator[tuple[str, Any, list[str | int]]]:
    """(what, product ID, location) for every reference to a product ID (test 6.1.1)."""
    tree = doc.get("product_tree") or {}
    for i, group in enumerate(tree.get("product_groups") or ()):
        for j, pid in enumerate(group["product_ids"]):
            yield "product_groups", pid, ["product_tree", "product_groups", i, "product_ids", j]
    for i, rel in enumerate(tree.get("relationships") or ()):
        for key in ("product_reference", "relates_to_product_reference"):
            yield "relationship", rel[key], ["product_tree", "relationships", i, key]
    for v, vuln in enumerate(doc.get("vulnerabilities") or ()):
        for status, ids in (vuln.get("product_status") or {}).items():
            for j, pid in enumerate(ids):
                yield "product_status", pid, ["vulnerabilities", v, "product_status", status, j]
        for i, score in enumerate(vuln.get("scores") or ()):
            for j, pid in enumerate(score.get("products") or ()):
                yield "score", pid, ["vulnerabilities", v, "scores", i, "products", j]
        for key in _PRODUCT_REFS:
            for i, item in enumerate(vuln.get(key) or ()):
                for j, pid in enumerate(item.get("product_ids") or ()):
                    yield key[:-1], pid, ["vulnerabilities", v, key, i, "product_ids", j]


def check_references(doc: Mapping[str, Any], index: ProductTree, *, path: str) -> None:
    """Tests 6.1.1 and 6.1.4: every referenced product / group ID is defined."""
    for what, pid, loc in _product_refs(doc):
        if pid not in index.products:
            raise SchemaError(
                f"{what} references product ID {pid!r} that the product_tree does not define",
                path=path,
                pointer=json_pointer(loc),
            )
    for v, vuln in enumerate(doc.get("vulnerabilities") or ()):
        for key in _PRODUCT_REFS:
            for i, item in enumerate(vuln.get(key) or ()):
                for j, gid in enumerate(item.get("group_ids") or ()):
                    if gid not in index.groups:
                        raise SchemaError(
                            f"{key[:-1]} references product group ID {gid!r} that the product_tree does not define",
                            path=path,
                            pointer=json_pointer(["vulnerabilities", v, key, i, "group_ids", j]),
                        )


def check_circular(doc: Mapping[str, Any], *, path: str) -> None:
    """Test 6.1.3: no relationship defines a product in terms of itself, directly or not."""
    rels = (doc.get("product_tree") or {}).get("relationships") or ()
    edges: dict[str, list[str]] = {}
    for rel in rels:
        pid = rel["full_product_name"]["product_id"]
        edges.setdefault(pid, []).extend((rel["product_reference"], rel["relates_to_product_reference"]))
    for i, rel in enumerate(rels):
        start = rel["full_product_name"]["product_id"]
        for key in ("product_reference", "relates_to_product_reference"):
            stack, seen = [rel[key]], set()
            while stack:
                node = stack.pop()
                if node == start:
                    raise SchemaError(
                        f"relationship defines product ID {start!r} in terms of itself (circular definition)",
                        path=path,
                        pointer=json_pointer(["product_tree", "relationships", i, key]),
                    )
                if node not in seen:
                    seen.add(node)
                    stack.extend(edges.get(node, ()))


def _check_vulnerability(vuln: Mapping[str, Any], v: int, index: ProductTree, vex: bool, path: str) -> None:
    statuses = vuln.get("product_status") or {}
    seen: dict[str, str] = {}
    for status, ids in statuses.items():
        group = STATUS_GROUP.get(status)
        if group is None:
            continue  # 'recommended' goes with any status
        for j, pid in enumerate(ids):
            first = seen.setdefault(pid, status)
            if STATUS_GROUP[first] != group:
                raise SchemaError(
                    f"product ID {pid!r} is both {first} and {status} for the same vulnerability "
                    "(contradicting product status)",
                    path=path,
                    pointer=json_pointer(["vulnerabilities", v, "product_status", status, j]),
                )
    flagged: set[str] = set()
    for i, flag in enumerate(vuln.get("flags") or ()):
        members = index.members(flag)
        twice = sorted(members & flagged)
        if twice:
            raise SchemaError(
                f"product ID {twice[0]!r} has more than one flag (VEX justification) for this vulnerability",
                path=path,
                pointer=json_pointer(["vulnerabilities", v, "flags", i]),
            )
        flagged |= members
    if vex:
        _check_vex_profile(vuln, v, index, flagged, path)


def _check_vex_profile(vuln: Mapping[str, Any], v: int, index: ProductTree, flagged: set[str], path: str) -> None:
    statuses = vuln.get("product_status") or {}
    if not any(statuses.get(s) for s in _VEX_STATUSES):
        raise SchemaError(
            "a csaf_vex vulnerability must list products under fixed, known_affected, known_not_affected "
            "or under_investigation, and this one lists none",
            path=path,
            pointer=json_pointer(["vulnerabilities", v, "product_status"] if statuses else ["vulnerabilities", v]),
        )
    if not vuln.get("cve") and not vuln.get("ids"):
        raise SchemaError(
            "a csaf_vex vulnerability needs a 'cve' or an 'ids' entry to say which vulnerability it is",
            path=path,
            pointer=json_pointer(["vulnerabilities", v]),
        )
    impact = set(flagged)
    for threat in vuln.get("threats") or ():
        if threat.get("category") == "impact":
            impact |= index.members(threat)
    action: set[str] = set()
    for remediation in vuln.get("remediations") or ():
        action |= index.members(remediation)
    for status, covered, need, fix in (
        ("known_not_affected", impact, "impact statement", "add a flag or a threat of category 'impact'"),
        ("known_affected", action, "action statement", "add a remediation"),
    ):
        for j, pid in enumerate(statuses.get(status) or ()):
            if pid not in covered:
                raise SchemaError(
                    f"product ID {pid!r} is {status} but has no {need}: {fix} that names it",
                    path=path,
                    pointer=json_pointer(["vulnerabilities", v, "product_status", status, j]),
                )


def run_mandatory_tests(doc: Mapping[str, Any], *, path: str) -> ProductTree:
    """Run the implemented CSAF 2.0 mandatory tests on a schema-valid document.

    Returns the product-tree index the adapters need to normalize the document.
    """
    category = doc["document"]["category"]
    # A missing product_tree is clearer than every reference into it being undefined.
    _check_profile(doc, category, path)
    index = index_product_tree(doc, path=path)
    check_references(doc, index, path=path)
    check_circular(doc, path=path)
    for v, vuln in enumerate(doc.get("vulnerabilities") or ()):
        _check_vulnerability(vuln, v, index, category == "csaf_vex", path)
    return index


def _check_profile(doc: Mapping[str, Any], category: str, path: str) -> None:
    """Tests 6.1.27.3, 6.1.27.4 and 6.1.27.6: what the informational, advisory and VEX profiles need."""
    if category == "csaf_informational_advisory" and "vulnerabilities" in doc:
        raise SchemaError(
            "a csaf_informational_advisory must not have vulnerabilities; use csaf_security_advisory",
            path=path,
            pointer="/vulnerabilities",
        )
    if category in ("csaf_security_advisory", "csaf_vex") and "product_tree" not in doc:
        raise SchemaError(f"a {category} document must have a product_tree", path=path, pointer="")
    if category == "csaf_security_advisory":
        for v, vuln in enumerate(doc.get("vulnerabilities") or ()):
            if "product_status" not in vuln:
                raise SchemaError(
                    "a csaf_security_advisory vulnerability must have a product_status",
                    path=path,
                    pointer=json_pointer(["vulnerabilities", v]),
                )


_CVSS_REQUIRED = {
    "cvss_v2": ("version", "vectorString", "baseScore"),
    "cvss_v3": ("version", "vectorString", "baseScore", "baseSeverity"),
}


def explain_cvss(doc: Any, *, path: str) -> SchemaError | None:
    """Test 6.1.8 in words, for a document that failed the schema on a CVSS object.

    The schema reports such a failure as an opaque ``oneOf`` mismatch; this names the
    missing property or the version / vector disagreement instead.
    """
    vulns = doc.get("vulnerabilities") if isinstance(doc, dict) else None
    for v, vuln in enumerate(vulns if isinstance(vulns, list) else ()):
        scores = vuln.get("scores") if isinstance(vuln, dict) else None
        for i, score in enumerate(scores if isinstance(scores, list) else ()):
            for key, required in _CVSS_REQUIRED.items():
                cvss = score.get(key) if isinstance(score, dict) else None
                if not isinstance(cvss, dict):
                    continue
                pointer = json_pointer(["vulnerabilities", v, "scores", i, key])
                missing = [name for name in required if name not in cvss]
                if missing:
                    return SchemaError(
                        f"invalid CVSS object: the required property {missing[0]!r} is missing",
                        path=path,
                        pointer=pointer,
                    )
                version, vector = cvss["version"], cvss["vectorString"]
                if key == "cvss_v3" and isinstance(vector, str) and not vector.startswith(f"CVSS:{version}/"):
                    return SchemaError(
                        f"invalid CVSS object: version is {version!r} but the vectorString is {vector!r}",
                        path=path,
                        pointer=pointer + "/vectorString",
                    )
    return None
