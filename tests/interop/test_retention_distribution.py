"""`stella retention prune` deletes expired copies where the target allows it: an OCI push by manifest digest on
distribution 2.8 (with and without ``storage.delete.enabled``), an S3 version on moto (not under Object Lock retention
or legal hold), never a copy of a run whose evidence is under a legal hold; what went and what stayed is recorded."""

# ruff: noqa: F811 (the fixtures of the two distribution test modules are imported and then requested by name)

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import rfc3339
from tests.interop.test_oci_distribution import Registry, registry_factory, run  # noqa: F401 (fixtures)
from tests.interop.test_s3_distribution import _bucket, _distribute, _in_a_day, _run, aws_env, moto_endpoint, s3  # noqa: F401

pytestmark = pytest.mark.interop
MANIFESTS = "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"


def _later(days: int) -> str:
    return rfc3339(datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(days=days))


def _show(stella: Any, run_id: str, *tenant: str) -> dict[str, Any]:
    res = stella("export", "show", run_id, *tenant, "--json")
    assert res.code == 0, res.err
    return res.json()  # type: ignore[no-any-return]


def _oci_push(stella: Any, run_id: str, reg: Registry) -> dict[str, Any]:
    res = stella("distribute", run_id, "--to", f"oci://{reg.host}", "--plain-http", "--json")
    assert res.code == 0, res.err
    return res.json()  # type: ignore[no-any-return]


def test_oci_copy_is_deleted_by_digest_with_its_referrers(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry]
) -> None:
    assert stella("retention", "set", "json:raw", "--keep", "1d").code == 0
    reg = registry_factory()
    pushed = _oci_push(stella, run["id"], reg)
    digest, repo = pushed["manifestDigest"], "default/json-raw"
    index_tag = "sha256-" + digest.removeprefix("sha256:")
    assert pushed["referrers"] == "tag-schema"
    for ref in (digest, run["id"], index_tag, pushed["referrerDigest"]):
        assert reg.get(f"/v2/{repo}/manifests/{ref}", accept=MANIFESTS).status_code == 200
    target = pushed["distribution"]["target"]

    # Not expired: nothing is deleted.
    assert stella("retention", "prune", "--plain-http", "--json").json()["removed"] == []
    assert reg.get(f"/v2/{repo}/manifests/{digest}", accept=MANIFESTS).status_code == 200

    dry = stella("retention", "prune", "--plain-http", "--dry-run", "--at", _later(2), "--json").json()
    (would,) = dry["removed"]
    assert would["copiesDeleted"] == [target]
    assert reg.get(f"/v2/{repo}/manifests/{digest}", accept=MANIFESTS).status_code == 200

    res = stella("retention", "prune", "--plain-http", "--at", _later(2))
    assert res.code == 0, res.err
    assert f"deleted the copy at {target}" in res.out
    # The manifest, its tag, the referrer and the tag-schema index are gone from the registry.
    for ref in (digest, run["id"], index_tag, pushed["referrerDigest"]):
        assert reg.get(f"/v2/{repo}/manifests/{ref}", accept=MANIFESTS).status_code == 404, ref
    shown = _show(stella, run["id"])
    assert [d for d in shown["distributions"] if d["type"] == "oci"] == []
    (event,) = [e for e in shown["events"] if e["type"] == "retention-pruned"]
    assert event["detail"]["copiesDeleted"] == [target] and event["detail"]["copiesKept"] == []
    again = stella("retention", "prune", "--plain-http", "--at", _later(2), "--json").json()
    assert again["removed"] == [] and [k["copiesKept"] for k in again["kept"]] == [[]]  # the --out bundle stays


def test_a_registry_refusing_deletes_keeps_the_copy_and_says_so(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry]
) -> None:
    assert stella("retention", "set", "json:raw", "--keep", "1d").code == 0
    reg = registry_factory(delete=False)
    pushed = _oci_push(stella, run["id"], reg)
    digest, target = pushed["manifestDigest"], pushed["distribution"]["target"]
    res = stella("retention", "prune", "--plain-http", "--at", _later(2))
    assert res.code == 0, res.err
    assert f"kept the copy at {target}" in res.out and "refuses deletes (405)" in res.out
    assert "1 expired copy(ies) elsewhere" in res.out
    assert reg.get(f"/v2/default/json-raw/manifests/{digest}", accept=MANIFESTS).status_code == 200
    shown = _show(stella, run["id"])
    assert [d["target"] for d in shown["distributions"] if d["type"] == "oci"] == [target]  # the record stays
    (event,) = [e for e in shown["events"] if e["type"] == "retention-pruned"]  # the --out file record went
    (kept,) = event["detail"]["copiesKept"]
    assert kept["target"] == target and "405" in kept["reason"]

    # Asked again, it is still refused; only a retention-kept event records it (nothing else of the run is left).
    report = stella("retention", "prune", "--plain-http", "--at", _later(2), "--json").json()
    (only,) = report["kept"]
    assert only["copiesKept"][0]["target"] == target
    assert [e["type"] for e in _show(stella, run["id"])["events"]].count("retention-kept") == 1


def test_a_copy_of_held_evidence_is_never_deleted(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry]
) -> None:
    assert stella("retention", "set", "json:raw", "--keep", "1d").code == 0
    reg = registry_factory()
    pushed = _oci_push(stella, run["id"], reg)
    evidence = stella("evidence", "list", "--json").json()["evidence"]
    (sealed,) = [e for e in evidence if e["subject"] == run["id"]]
    assert stella("evidence", "hold", "CASE-9", "--bundle", sealed["id"], "--reason", "audit").code == 0
    report = stella("retention", "prune", "--plain-http", "--at", _later(2), "--json").json()
    assert report["removed"] == [] and "CASE-9" in report["kept"][0]["kept"]
    assert reg.get(f"/v2/default/json-raw/manifests/{pushed['manifestDigest']}", accept=MANIFESTS).status_code == 200
    assert stella("evidence", "release", "CASE-9", "--bundle", sealed["id"], "--reason", "done").code == 0
    report = stella("retention", "prune", "--plain-http", "--at", _later(2), "--json").json()
    assert report["removed"][0]["copiesDeleted"] == [pushed["distribution"]["target"]]
    assert reg.get(f"/v2/default/json-raw/manifests/{pushed['manifestDigest']}", accept=MANIFESTS).status_code == 404


def test_s3_versions_are_deleted_unless_locked_or_held(
    stella: Any, home: Path, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    plain, locked = _bucket(s3, "plain"), _bucket(s3, "locked", lock=True)
    run_id, _ = _run(stella, tmp_path, "acme")
    assert stella("retention", "set", "json:raw", "--keep", "1d", "--tenant", "acme").code == 0
    assert _distribute(stella, moto_endpoint, run_id, f"s3://{plain}/exports").code == 0
    held = _distribute(stella, moto_endpoint, run_id, f"s3://{locked}/held", "--legal-hold", "--json")
    assert held.code == 0, held.err
    retained = _distribute(
        stella, moto_endpoint, run_id, f"s3://{locked}/kept", "--object-lock", "governance",
        "--retain-until", _in_a_day(), "--json",
    )  # fmt: skip
    assert retained.code == 0, retained.err
    urls = {d["type"] + d["target"] for d in _show(stella, run_id)["distributions"]}
    assert len([u for u in urls if u.startswith("s3")]) == 3

    # At +2 days: the policy expired all three. The plain copy goes; the legal hold keeps its version; the
    # governance retention (a day) is over at +2 days, so stella asks, and the store, whose clock is now, refuses
    # (no bypass is ever sent): that version stays too, with the store's answer as the reason.
    res = stella(
        "retention", "prune", "--tenant", "acme", "--endpoint-url", moto_endpoint, "--path-style",
        "--at", _later(2), "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    (removal,) = res.json()["removed"]
    held_url = held.json()["url"]
    assert removal["copiesDeleted"] == [f"s3://{plain}/exports/acme/{run_id}/acme.tar.zst"]
    kept = {k["target"]: k["reason"] for k in removal["copiesKept"]}
    assert "legal hold" in kept[held_url], kept
    refused = kept[retained.json()["url"]]
    assert refused.startswith("not deleted: deleting s3://") and "AccessDenied" in refused
    assert s3.list_objects_v2(Bucket=plain).get("KeyCount") == 0
    keys = {v["Key"] for v in s3.list_object_versions(Bucket=locked).get("Versions", [])}
    kept_keys = {held_url.split("/", 3)[3], retained.json()["url"].split("/", 3)[3]}
    assert keys == kept_keys | {k + ".intoto.jsonl" for k in kept_keys}  # kept copies keep their attestation
    remaining = [d["target"] for d in _show(stella, run_id)["distributions"] if d["type"] == "s3"]
    assert sorted(remaining) == sorted([held_url, retained.json()["url"]])


def test_s3_retention_extended_on_the_store_keeps_the_version(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    locked = _bucket(s3, "locked", lock=True)
    run_id, _ = _run(stella, tmp_path, "acme")
    put = _distribute(
        stella, moto_endpoint, run_id, f"s3://{locked}/x", "--object-lock", "governance", "--retain-until",
        _in_a_day(), "--json",
    )  # fmt: skip
    assert put.code == 0, put.err
    key, version = put.json()["url"].split("/", 3)[3], put.json()["versionId"]
    # Someone extends the retention in the store: the record's expiry (a day) has passed at +2 days, the lock has not.
    s3.put_object_retention(
        Bucket=locked, Key=key, VersionId=version,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=10)},
    )  # fmt: skip
    args = ("retention", "prune", "--tenant", "acme", "--endpoint-url", moto_endpoint, "--path-style", "--json")
    res = stella(*args, "--at", _later(2))
    assert res.code == 0, res.err
    (kept,) = res.json()["kept"]
    assert "governance retention until" in kept["copiesKept"][0]["reason"]
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=locked)["Versions"] if v["Key"] == key] == [version]
    # At +11 days stella sees the retention over and asks; the store (whose clock is now) refuses: kept, with why.
    res = stella(*args, "--at", _later(11))
    (kept,) = res.json()["kept"]
    assert kept["copiesKept"][0]["reason"].startswith("not deleted: deleting s3://")
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=locked)["Versions"] if v["Key"] == key] == [version]
