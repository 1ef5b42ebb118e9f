"""VerifiedManifest: parsed once, typed, immutable, and given back key for key (a report's JSON is unchanged)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from core.contract.manifest import NO_PROFILE, VerifiedManifest

HEADER = {
    "schema": "https://stellaops.dev/schemas/export-manifest/v1",
    "runId": "run-1",
    "tenant": "default",
    "profile": {"id": "trivy:db", "kind": "trivy", "variant": "db"},
    "createdAt": "2026-01-01T00:00:00Z",
    "trivy": {"schemaVersion": 2},
    "selectors": None,
    "fileCount": 7,
    "sha256": "ab" * 32,
}


def test_the_fields_a_receiver_reads_are_typed() -> None:
    m = VerifiedManifest.from_dict(HEADER)
    assert (m.profile.id, m.profile.kind, m.profile.variant, m.profile.ref) == ("trivy:db", "trivy", "db", "trivy:db")
    assert (m.tenant, m.run_id, m.created_at, m.file_count, m.sha256) == (
        "default", "run-1", "2026-01-01T00:00:00Z", 7, "ab" * 32,
    )  # fmt: skip
    assert m.section("trivy") == {"schemaVersion": 2} and m.section("mirror") == {}
    assert not m.encryption and m.portal is None


def test_to_dict_gives_back_the_mapping_byte_for_byte() -> None:
    m = VerifiedManifest.from_dict(HEADER)
    assert orjson.dumps(m.to_dict()) == orjson.dumps(HEADER)  # same keys, same order
    m.to_dict()["trivy"]["schemaVersion"] = 9  # a copy: the manifest does not change
    assert m.section("trivy")["schemaVersion"] == 2


def test_it_cannot_be_changed() -> None:
    m = VerifiedManifest.from_dict(HEADER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.tenant = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.section("trivy")["schemaVersion"] = 3  # type: ignore[index]


def test_the_empty_manifest_of_a_report_that_never_reached_one() -> None:
    m = VerifiedManifest.empty()
    assert m.to_dict() == {} and m.profile is NO_PROFILE and m.profile.ref == "None:None"
    assert m.tenant is None and m.sha256 is None
