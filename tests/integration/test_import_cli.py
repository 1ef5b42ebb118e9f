"""`stella import` and `stella data` end to end on the built-in samples (real documents of every format)."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.state import counts, store_state

SAMPLES = ROOT / "samples"
SAMPLE_DOCS = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def _events(result: Any) -> list[dict[str, Any]]:
    return [e for e in result.json_lines() if e.get("event") == "document"]


def test_import_samples_imports_every_format(stella: Any) -> None:
    res = stella("import", "--json", *sorted(p for p in SAMPLES.iterdir() if p.is_dir()))
    assert res.code == 0, res.err
    docs = _events(res)
    assert [d for d in docs if d["outcome"] != "imported"] == []
    assert len(docs) == len(SAMPLE_DOCS)
    formats = {d["format"] for d in docs if d["outcome"] == "imported"}
    assert {
        "osv",
        "csaf",
        "cve5",
        "openvex",
        "csaf-vex",
        "cyclonedx-vex",
        "cyclonedx",
        "spdx",
        "dsse",
        "intoto-statement",
        "sigstore-bundle",
        "kev",
        "epss",
    } <= formats


def test_samples_normalize_to_expected_rows(stella: Any) -> None:
    assert stella("import", "--quiet", *SAMPLE_DOCS).code == 0
    stats = stella("data", "stats", "--json").json()["tenants"]["default"]  # type: ignore[index]
    assert stats["documents.advisory"] == 7
    assert stats["policy_snapshots"] == 1 and stats["findings"] > 0
    # GHSA-mp6f-p9gp-vpj9 arrives in two revisions: 7 advisory documents, 6 distinct IDs.
    assert stats["advisories.distinct_ids"] == 6
    assert stats["kev_entries"] == 1404
    assert stats["epss_scores"] == 5
    assert stats["sbom_components"] >= 62

    shown = stella("data", "show", "--json", "GHSA-mp6f-p9gp-vpj9").json()
    assert isinstance(shown, dict)
    assert len(shown["revisions"]) == 2
    latest = shown["revisions"][0]
    assert latest["modified"].startswith("2024-04-22")
    assert shown["document"]["sha256"] == latest["document_sha256"]

    log4shell = stella("data", "show", "--json", "CVE-2021-44228").json()
    assert isinstance(log4shell, dict)
    assert log4shell["document"]["format"] == "cve5"
    assert any(
        r["name"].lower().endswith("log4j2") or "log4j" in r["name"].lower() for r in log4shell["affected_packages"]
    )


def test_reimport_changes_nothing(stella: Any, home: Path) -> None:
    assert stella("import", "--quiet", *SAMPLE_DOCS).code == 0
    before = store_state(home)
    res = stella("import", "--json", *SAMPLE_DOCS)
    assert res.code == 0
    assert {d["outcome"] for d in _events(res)} == {"duplicate"}
    assert store_state(home) == before


def test_bad_file_is_rejected_with_reason_and_pointer_and_leaves_no_rows(
    stella: Any, home: Path, tmp_path: Path
) -> None:
    good = SAMPLES / "advisories" / "GO-2020-0001.json"
    bad = tmp_path / "bad-osv.json"
    # An OSV record whose range has no "introduced" event: schema-invalid at a precise place.
    bad.write_text(
        '{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": '
        '{"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]}'
    )
    res = stella("import", "--json", good, bad)
    assert res.code == 3
    by_name = {Path(d["path"]).name: d for d in _events(res)}
    assert by_name["GO-2020-0001.json"]["outcome"] == "imported"
    rej = by_name["bad-osv.json"]
    assert rej["outcome"] == "rejected"
    assert rej["pointer"].startswith("/affected/0/ranges/0")
    assert "introduced" in rej["reason"]
    state = store_state(home)
    assert all(row[1] != rej["sha256"] for row in state["raw_documents"])
    assert counts(home)["advisories"] == 1


def test_only_invalid_input_leaves_store_unchanged(stella: Any, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories" / "GO-2020-0001.json").code == 0
    before = store_state(home)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "truncated.json").write_text('{"id": "GHSA-x", "modified": ')
    (junk / "notes.txt").write_text("hello")
    (junk / "empty.json").write_text("{}")
    res = stella("import", "--json", junk)
    assert res.code == 3
    reasons = {Path(d["path"]).name: d["reason"] for d in _events(res)}
    assert "malformed JSON" in reasons["truncated.json"]
    assert "unrecognised format" in reasons["notes.txt"]
    assert "unrecognised format" in reasons["empty.json"]
    assert store_state(home) == before


def test_forced_format_mismatch_is_rejected(stella: Any) -> None:
    res = stella("import", "--json", "--format", "spdx", SAMPLES / "advisories" / "GO-2020-0001.json")
    assert res.code == 3
    (doc,) = _events(res)
    assert doc["outcome"] == "rejected" and doc["reason"]


def test_zip_and_tar_imports_give_the_same_state_as_files(stella: Any, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", *SAMPLE_DOCS).code == 0
    expected = store_state(home)
    shutil.rmtree(home)
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in reversed(SAMPLE_DOCS):
            zf.write(p, p.relative_to(SAMPLES))
    assert stella("import", "--quiet", archive).code == 0
    assert store_state(home) == expected
    shutil.rmtree(home)
    tgz = tmp_path / "all.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for p in SAMPLE_DOCS:
            tar.add(p, str(p.relative_to(SAMPLES)))
    assert stella("import", "--quiet", tgz).code == 0
    assert store_state(home) == expected


def test_truncated_archive_imports_nothing(stella: Any, home: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in SAMPLE_DOCS:
            tar.add(p, str(p.relative_to(SAMPLES)))
    data = gzip.compress(buf.getvalue(), mtime=0)
    tgz = tmp_path / "cut.tar.gz"
    tgz.write_bytes(data[: len(data) // 2])
    res = stella("import", "--json", tgz)
    assert res.code == 3
    (doc,) = _events(res)
    assert doc["path"] == str(tgz) and "truncated" in doc["reason"]
    assert sum(counts(home).values()) == 0


def test_large_document_goes_to_blob_store_and_round_trips(stella: Any, home: Path) -> None:
    kev = SAMPLES / "risk" / "known_exploited_vulnerabilities.json"
    res = stella("import", "--json", kev)
    assert res.code == 0
    sha = _events(res)[0]["sha256"]
    assert (home / "blobs" / "sha256" / sha[:2] / sha).read_bytes() == kev.read_bytes()
    raw = stella("data", "show", "--raw", sha)
    assert raw.out.encode() == kev.read_bytes()


def test_tenants_are_separate(stella: Any) -> None:
    doc = SAMPLES / "advisories" / "GO-2020-0001.json"
    assert stella("import", "--quiet", "--tenant", "blue", doc).code == 0
    # The same bytes in another tenant are new there, not a duplicate.
    res = stella("import", "--json", "--tenant", "red", doc)
    assert _events(res)[0]["outcome"] == "imported"
    stats = stella("data", "stats", "--json").json()
    assert set(stats["tenants"]) == {"blue", "red"}  # type: ignore[index]
    blue = stella("data", "list", "advisories", "--tenant", "blue", "--json").json()
    assert [a["advisory_id"] for a in blue["items"]] == ["GO-2020-0001"]  # type: ignore[index]
    assert stella("data", "list", "advisories", "--tenant", "green", "--json").json()["total"] == 0  # type: ignore[index]
    assert stella("import", "--tenant", "bad tenant!", doc).code == 2


def test_locked_store_gives_exit_8_naming_the_pid(stella: Any, home: Path) -> None:
    assert stella("data", "stats").code == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from core.home import Home
            from core.store import Store
            s = Store.open(Home(Path({str(home)!r})))
            print("ready", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        res = stella("import", SAMPLES / "advisories" / "GO-2020-0001.json")
        assert res.code == 8
        assert f"store is locked by PID {holder.pid}" in res.err
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_usage_errors_exit_2(stella: Any) -> None:
    assert stella("import").code == 2
    assert stella("import", "--format", "nope", "x").code == 2
    assert stella("data", "list", "widgets").code == 2
    assert stella().code == 2


def test_missing_path_is_bad_input(stella: Any, tmp_path: Path) -> None:
    res = stella("import", "--json", tmp_path / "does-not-exist.json")
    assert res.code == 3
    assert "no such file" in res.out


@pytest.mark.parametrize(
    "kind", ["documents", "advisories", "vex", "sboms", "components", "attestations", "kev", "epss"]
)
def test_data_list_every_kind_after_samples(stella: Any, kind: str) -> None:
    assert stella("import", "--quiet", *SAMPLE_DOCS).code == 0
    res = stella("data", "list", kind, "--json", "--limit", "3")
    assert res.code == 0
    body = res.json()
    assert isinstance(body, dict) and body["total"] > 0 and 0 < len(body["items"]) <= 3
