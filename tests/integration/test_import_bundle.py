"""`stella import` of a signed stella bundle: verified first with the trust rules of `stella verify`, then its raw
documents imported byte for byte with the bundle as their source; a bundle that does not verify imports nothing."""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.bundle_helpers import read_members, write_members

SAMPLE = ROOT / "samples" / "advisories" / "GO-2020-0001.json"
OTHER = ROOT / "samples" / "advisories" / "PYSEC-2023-74.json"


@pytest.fixture
def sent(stella: Any, tmp_path: Path) -> dict[str, Path]:
    """A json:raw bundle of two advisories, built in a sender's home; the signer's public key."""
    sender = tmp_path / "sender"
    assert stella("--home", sender, "import", "--quiet", SAMPLE, OTHER).code == 0
    assert stella("--home", sender, "keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("--home", sender, "keys", "export-public", "signer", "--out", pub).code == 0
    bundle = tmp_path / "raw.tar.zst"
    res = stella("--home", sender, "export", "run", "--profile", "json:raw", "--key", "signer", "--out", bundle)
    assert res.code == 0, res.err
    return {"bundle": bundle, "pub": pub}


def _documents(stella: Any) -> list[dict[str, Any]]:
    res = stella("data", "list", "documents", "--json")
    if res.code == 3:  # no store yet: nothing was ever imported
        return []
    assert res.code == 0, res.err
    page = res.json()
    assert isinstance(page, dict)
    return list(page["items"])


def _tampered(bundle: Path, target: Path, mutate: Any) -> Path:
    members = []
    for info, data in read_members(bundle):
        members.append((copy.copy(info), mutate(info, data)))
    return write_members(target, members)


def test_a_verified_bundle_imports_its_raw_documents_byte_for_byte(stella: Any, sent: dict[str, Path]) -> None:
    res = stella("import", sent["bundle"], "--key", sent["pub"])
    assert res.code == 0, res.err
    assert f"verified {sent['bundle']}: json:raw signed by " in res.out
    assert "2 imported, 0 duplicate, 0 rejected" in res.out
    documents = _documents(stella)
    assert len(documents) == 2
    for doc in documents:
        assert doc["source_path"].startswith(f"{sent['bundle']}!data/raw/advisory.pack#")
        assert doc["source_path"].endswith(doc["sha256"])
    by_id = {d["document_id"]: d["sha256"] for d in documents}
    for sample in (SAMPLE, OTHER):
        ident = json.loads(sample.read_bytes())["id"]
        raw = stella("data", "show", by_id[ident], "--raw")
        assert raw.out == sample.read_text()  # the bytes the sender imported
    again = stella("import", sent["bundle"], "--key", sent["pub"])
    assert again.code == 0 and "0 imported, 2 duplicate" in again.out


def test_json_lines_name_the_bundle_and_its_signer(stella: Any, sent: dict[str, Path]) -> None:
    res = stella("import", "--json", sent["bundle"], "--key", sent["pub"])
    assert res.code == 0, res.err
    events = res.json_lines()
    assert events[0]["event"] == "bundle" and events[0]["verified"] is True
    assert events[0]["signer"]["label"] == "signer.pub" or events[0]["signer"]["keyid"]
    assert [e["outcome"] for e in events if e["event"] == "document"] == ["imported", "imported"]


def test_a_tampered_advisory_is_refused_and_nothing_is_imported(
    stella: Any, sent: dict[str, Path], tmp_path: Path
) -> None:
    def alter(info: tarfile.TarInfo, data: bytes) -> bytes:
        if info.name == "data/raw/advisory.pack":
            return data.replace(b"Arbitrary log line injection", b"Harmless, nothing to see here")
        return data

    bad = _tampered(sent["bundle"], tmp_path / "bad.tar.zst", alter)
    res = stella("import", bad, SAMPLE, "--key", sent["pub"])
    assert res.code == 4, res.out + res.err
    assert "imported" not in res.out
    assert _documents(stella) == []  # not the bundle's documents, nor the file given beside it


def test_without_a_trusted_signer_nothing_is_imported(stella: Any, sent: dict[str, Path], tmp_path: Path) -> None:
    res = stella("import", sent["bundle"])  # an empty trust store, no --key
    assert res.code == 5, res.out + res.err
    assert "no trusted signer" in res.err
    assert _documents(stella) == []
    assert stella("keys", "generate", "stranger").code == 0
    stranger = tmp_path / "stranger.pub"
    assert stella("keys", "export-public", "stranger", "--out", stranger).code == 0
    assert stella("import", sent["bundle"], "--key", stranger).code == 5
    assert _documents(stella) == []


def test_the_trust_store_is_used_as_stella_verify_uses_it(stella: Any, sent: dict[str, Path]) -> None:
    assert stella("trust", "add", "sender", sent["pub"]).code == 0
    res = stella("import", sent["bundle"])
    assert res.code == 0, res.err
    assert len(_documents(stella)) == 2


def test_a_bundle_of_another_tenant_is_refused(stella: Any, sent: dict[str, Path]) -> None:
    res = stella("import", sent["bundle"], "--key", sent["pub"], "--tenant", "other")
    assert res.code == 7, res.out + res.err
    assert _documents(stella) == []


def test_a_bundle_inside_a_directory_is_not_read_as_an_archive(
    stella: Any, sent: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "raw.tar.zst").write_bytes(sent["bundle"].read_bytes())
    res = stella("import", folder, "--key", sent["pub"])
    assert res.code == 3, res.out + res.err
    assert "a signed stella bundle" in res.err and "verifies it before importing" in res.err
    assert _documents(stella) == []


def test_a_relabelled_bundle_does_not_verify_and_imports_nothing(
    stella: Any, sent: dict[str, Path], tmp_path: Path
) -> None:
    def relabel(info: tarfile.TarInfo, data: bytes) -> bytes:
        return data.replace(b'"kind":"json"', b'"kind":"risk"') if info.name == "export.json" else data

    relabelled = _tampered(sent["bundle"], tmp_path / "relabelled.tar.zst", relabel)
    assert stella("import", relabelled, "--key", sent["pub"]).code in (4, 5)
    assert _documents(stella) == []


def test_a_json_policy_bundle_imports_its_raw_documents_too(stella: Any, sent: dict[str, Path], tmp_path: Path) -> None:
    sender = tmp_path / "sender"
    bundle = tmp_path / "policy.tar.zst"
    res = stella("--home", sender, "export", "run", "--profile", "json:policy", "--key", "signer", "--out", bundle)
    assert res.code == 0, res.err
    assert stella("import", bundle, "--key", sent["pub"]).code == 0  # json:policy carries raw documents too
    assert len(_documents(stella)) == 2
