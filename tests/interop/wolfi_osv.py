"""Wolfi advisories (wolfi-dev/advisories YAML) as OSV, the way wolfictl's OSV builder writes Chainguard's feed.

The facts, from wolfictl ``pkg/advisory/osv.go`` (``BuildOSVDataset``) and ``pkg/cli/advisory_osv.go``:

* one record per advisory, ``id`` the advisory's ``CGA-...`` ID, ``related`` that ID and then the advisory's
  ``aliases`` (the builder writes no ``aliases`` field), ``modified`` the timestamp of the latest event;
* only the latest event (by timestamp) counts: ``fixed`` gives one ECOSYSTEM range ``introduced 0, fixed V``;
  ``false-positive-determination`` gives ``introduced 0, fixed 0`` with ``database_specific.false_positive``;
  every other type (``pending-upstream-fix``, ``detection``, ``analysis-not-planned``...) gives no record;
* the affected packages are the origin package and its subpackages (sorted; from the package's melange build
  file), each in the ``Chainguard`` ecosystem and, for the Wolfi repository, again in ``Wolfi``, with purl
  ``pkg:apk/<ecosystem lower-cased>/<name>``; every one carries the same range;
* JSON as Go's encoder writes it with two-space indentation: ``modified``, ``id``, ``related``, ``affected``.

``python -m tests.interop.wolfi_osv`` rewrites tests/fixtures/trivy-differential/osv/wolfi from the vendored YAML;
the differential test checks that the vendored records are exactly this conversion.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "trivy-differential"
YAML_DIR = HERE / "wolfi-advisories"
OSV_DIR = HERE / "osv" / "wolfi"
ECOSYSTEMS = ("Chainguard", "Wolfi")  # the Wolfi repository's index gets the added ecosystem "Wolfi"
#: subpackages of each origin package, from wolfi-dev/os ``<package>.yaml`` (SOURCES.md names the commits)
SUBPACKAGES: dict[str, list[str]] = {
    "busybox": [],
    "curl": ["curl-dev", "curl-doc", "curl-oci-entrypoint", "curl-static", "libcurl-openssl4"],
    "libssh2": ["libssh2-dev", "libssh2-doc"],
    "nghttp2": ["libnghttp2-14", "nghttp2-dev", "nghttp2-doc"],
    "zlib": ["zlib-dev", "zlib-static"],
}


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _rfc3339(when: dt.datetime) -> str:
    """Go's time.Time JSON form (RFC 3339, fractional seconds only when present)."""
    when = when.astimezone(dt.UTC)
    frac = f".{when.microsecond:06d}".rstrip("0") if when.microsecond else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def convert(document: dict[str, Any], subpackages: list[str]) -> list[dict[str, Any]]:
    """The OSV records the builder writes for one advisories document."""
    origin = document["package"]["name"]
    packages = [origin, *sorted(subpackages)]
    records = []
    for adv in document.get("advisories") or []:
        events = sorted(adv.get("events") or [], key=lambda e: _timestamp(e["timestamp"]))
        if not events:
            continue
        latest = events[-1]
        if latest["type"] == "fixed":
            rng: dict[str, Any] = {
                "type": "ECOSYSTEM",
                "events": [{"introduced": "0"}, {"fixed": str(latest["data"]["fixed-version"])}],
            }
        elif latest["type"] == "false-positive-determination":
            rng = {
                "type": "ECOSYSTEM",
                "events": [{"introduced": "0"}, {"fixed": "0"}],
                "database_specific": {"false_positive": True},
            }
        else:
            continue
        affected = [
            {"package": {"ecosystem": eco, "name": pkg, "purl": f"pkg:apk/{eco.lower()}/{pkg}"}, "ranges": [rng]}
            for pkg in packages
            for eco in ECOSYSTEMS
        ]
        records.append(
            {
                "modified": _rfc3339(_timestamp(latest["timestamp"])),
                "id": adv["id"],
                "related": [adv["id"], *(adv.get("aliases") or [])],
                "affected": affected,
            }
        )
    return records


def render(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def converted() -> dict[str, str]:
    """File name -> text, for every vendored advisories document."""
    out: dict[str, str] = {}
    for path in sorted(YAML_DIR.glob("*.advisories.yaml")):
        document = yaml.safe_load(path.read_text())
        for record in convert(document, SUBPACKAGES[document["package"]["name"]]):
            out[f"{record['id']}.json"] = render(record)
    return out


if __name__ == "__main__":
    OSV_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in converted().items():
        (OSV_DIR / name).write_text(text)
