"""Generate a realistic OSV ``all.zip`` (deterministic for a given seed and size).

Records look like real OSV/GHSA exports: GHSA/PYSEC/GO/RUSTSEC IDs, CVE aliases, CVSS v3.1
vectors, 1-3 affected packages with ECOSYSTEM/SEMVER ranges and explicit version lists,
references, credits and database_specific blocks; 1.5-3 KB each, like osv.dev's records.
"""

from __future__ import annotations

import random
import string
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ECOSYSTEMS = [
    ("PyPI", "pypi", "ECOSYSTEM"),
    ("npm", "npm", "SEMVER"),
    ("Go", "golang", "SEMVER"),
    ("Maven", "maven", "ECOSYSTEM"),
    ("crates.io", "cargo", "SEMVER"),
    ("RubyGems", "gem", "ECOSYSTEM"),
    ("NuGet", "nuget", "ECOSYSTEM"),
    ("Packagist", "composer", "ECOSYSTEM"),
]
WORDS = [
    "improper",
    "validation",
    "input",
    "allows",
    "remote",
    "attackers",
    "execute",
    "arbitrary",
    "code",
    "crafted",
    "request",
    "buffer",
    "overflow",
    "denial",
    "service",
    "memory",
    "exhaustion",
    "path",
    "traversal",
    "sanitization",
    "header",
    "injection",
    "deserialization",
    "untrusted",
    "data",
    "authentication",
    "bypass",
    "race",
    "condition",
    "integer",
    "overflow",
    "heap",
    "use",
    "after",
    "free",
    "cross",
    "site",
    "scripting",
]
CVSS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H",
]


def _ghsa(rng: random.Random) -> str:
    alphabet = "23456789cfghjmpqrvwx"
    return "GHSA-" + "-".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(3))


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def record(i: int, rng: random.Random) -> dict[str, object]:
    eco, purl_type, range_type = ECOSYSTEMS[i % len(ECOSYSTEMS)]
    base = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3_000_000))
    modified = base + timedelta(days=rng.randrange(1, 900))
    affected = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        name = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 12)))
        if eco == "Maven":
            name = f"org.{name[:4]}:{name}"
        major = rng.randint(0, 9)
        fixed = f"{major}.{rng.randint(0, 20)}.{rng.randint(1, 30)}"
        versions = [f"{major}.{m}.{p}" for m in range(2) for p in range(rng.randint(1, 4))]
        affected.append(
            {
                "package": {
                    "ecosystem": eco,
                    "name": name,
                    "purl": f"pkg:{purl_type}/{name.replace(':', '/')}",
                },
                "ranges": [{"type": range_type, "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "versions": versions,
                "database_specific": {"source": f"https://example.invalid/{eco}/{name}.json"},
            }
        )
    ident = _ghsa(rng) if i % 3 else f"PYSEC-{2019 + i % 7}-{i}"
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "published": base.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aliases": [f"CVE-{2019 + i % 7}-{10000 + i}"],
        "summary": _sentence(rng, 8),
        "details": " ".join(_sentence(rng, rng.randint(10, 25)) for _ in range(rng.randint(2, 6))),
        "severity": [{"type": "CVSS_V3", "score": rng.choice(CVSS)}],
        "affected": affected,
        "references": [
            {"type": "ADVISORY", "url": f"https://nvd.nist.gov/vuln/detail/CVE-{2019 + i % 7}-{10000 + i}"},
            {"type": "WEB", "url": f"https://example.invalid/issues/{i}"},
            {"type": "PACKAGE", "url": f"https://example.invalid/pkg/{i}"},
        ],
        "database_specific": {
            "cwe_ids": [f"CWE-{rng.choice([20, 22, 79, 89, 400, 787])}"],
            "severity": "HIGH",
        },
    }


def write_all_zip(path: Path, count: int, seed: int = 2026) -> Path:
    """Write ``count`` advisories into ``path`` as ``<ID>.json`` members (deflate), like osv.dev's all.zip."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for i in range(count):
            rec = record(i, rng)
            zf.writestr(f"{rec['id']}.json", orjson.dumps(rec, option=orjson.OPT_INDENT_2))
    return path
