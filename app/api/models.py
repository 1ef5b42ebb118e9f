"""Response bodies of the API, as the OpenAPI contract (and the generated SDK) describe them.

Each names the fields every answer carries and allows the rest (``additionalProperties``): the services' ``--json``
forms are the bodies, and a field they add later is not a breaking change of the contract."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from core.contract.bundle import MANIFEST
from core.contract.media_types import OCI_INDEX
from core.contract.profiles import JSON_RAW


def _open(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="allow", json_schema_extra={"examples": [example]})


_PROFILE = {
    "tenant": "default",
    "id": "nightly-osv",
    "revision": 1,
    "builtin": False,
    "createdAt": "2026-12-07T09:00:00Z",
    "config": {"kind": "json", "variant": "raw", "compressionLevel": 19},
}
_RUN = {
    "id": "01JEXAMPLE0000000000000000",
    "status": "succeeded",
    "tenant": "default",
    "profile": JSON_RAW,
    "progress": None,
    "artifact": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 48213},
}


class Readiness(BaseModel):
    model_config = _open(
        {
            "status": "ready",
            "checks": {
                "store": {"ok": True, "schemaVersion": 6},
                "signer": {"ok": True, "keys": 1},
                "adapters": {"ok": True, "profiles": [JSON_RAW]},
            },
        }
    )
    status: str
    checks: dict[str, Any]


class Profile(BaseModel):
    model_config = _open(_PROFILE)
    id: str
    revision: int


class ProfileUpdate(BaseModel):
    model_config = _open({"changed": True, **_PROFILE, "revision": 2})
    changed: bool
    id: str
    revision: int


class ProfileList(BaseModel):
    model_config = _open({"tenant": "default", "profiles": [_PROFILE]})
    tenant: str
    profiles: list[dict[str, Any]]


class Run(BaseModel):
    model_config = _open(_RUN)
    id: str
    status: str


class RunList(BaseModel):
    model_config = _open({"tenant": "default", "runs": [_RUN]})
    tenant: str
    runs: list[dict[str, Any]]


class VerifyReport(BaseModel):
    model_config = _open(
        {
            "run": "01JEXAMPLE0000000000000000",
            "verified": True,
            "exitCode": 0,
            "checks": [{"check": "signature", "ok": True, "detail": "signed by api-key"}],
            "exitMeaning": "success",
            "code": None,
            "provenance": "json:raw run 01JEXAMPLE0000000000000000 for tenant default",
        }
    )
    verified: bool
    exitCode: int
    checks: list[dict[str, Any]]


class TimelinePage(BaseModel):
    model_config = _open(
        {
            "tenant": "default",
            "events": [{"id": "01JEVENT", "type": "export.run.built", "seq": 3, "held": False}],
            "nextCursor": None,
        }
    )
    tenant: str
    events: list[dict[str, Any]]


class TimelineEvent(BaseModel):
    model_config = _open(
        {"id": "01JEVENT", "type": "export.run.built", "source": "stella", "seq": 3, "held": False, "data": {}}
    )
    id: str


class EventEvidence(BaseModel):
    model_config = _open(
        {
            "id": "01JEVENT",
            "type": "export.run.built",
            "subject": "01JEXAMPLE0000000000000000",
            "runId": "01JEXAMPLE0000000000000000",
            "evidence": [{"evidenceId": "ev-20261207-0001", "kind": "run", "timestamped": False}],
        }
    )
    id: str


class Evidence(BaseModel):
    model_config = _open(
        {
            "id": "ev-20261207-0001",
            "tenant": "default",
            "kind": "run",
            "subject": "01JEXAMPLE0000000000000000",
            "held": False,
            "holds": [],
            "artifacts": [{"leafIndex": 0, "path": MANIFEST, "sha256": "9f86d0...", "size": 812}],
        }
    )
    id: str


class EvidenceCheck(BaseModel):
    model_config = _open(
        {"id": "ev-20261207-0001", "verified": True, "exitCode": 0, "checks": [{"check": "merkle-root", "ok": True}]}
    )
    id: str


class Hold(BaseModel):
    model_config = _open(
        {
            "new": True,
            "case": "case-42",
            "evidenceId": "ev-20261207-0001",
            "reason": "litigation",
            "placedBy": "ci-bot",
            "active": True,
        }
    )
    new: bool


_DISTRIBUTION = {
    "distributionId": "dist-3f2a9c0d1e4b5a68",
    "runId": "01JEXAMPLE0000000000000000",
    "type": "oci",
    "target": "oci://127.0.0.1:5000/default/json-raw@sha256:5d41402abc4b2a76b9719d911017c592",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "size": 48213,
    "state": "completed",
    "createdAt": "2026-12-07T09:05:00Z",
    "resumedFrom": 0,
}


class Distributed(BaseModel):
    model_config = _open(
        {
            "type": "oci",
            "distribution": _DISTRIBUTION,
            "reference": "127.0.0.1:5000/default/json-raw:01JEXAMPLE0000000000000000",
            "manifestDigest": "sha256:5d41402abc4b2a76b9719d911017c592",
            "layerDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "blob": "uploaded",
            "resumedFrom": 0,
            "referrerDigest": "sha256:7c211433f02071597741e6ff5a8ea34789abbf43",
            "referrers": "tag-schema",
            "recorded": True,
            "trivyReference": None,
        }
    )
    type: str
    distribution: dict[str, Any]


class DistributionList(BaseModel):
    model_config = _open({"run": "01JEXAMPLE0000000000000000", "distributions": [_DISTRIBUTION]})
    run: str
    distributions: list[dict[str, Any]]


class KitReport(BaseModel):
    model_config = _open(
        {
            "verified": True,
            "exitCode": 0,
            "kitId": "kit-20261207T090000Z-3f2a9c",
            "volumes": [
                {
                    "volumeDir": "/media/kit/vol-01",
                    "verified": True,
                    "exitCode": 0,
                    "checks": [{"check": "signature", "ok": True, "detail": "signed by kit-signer"}],
                    "volume": 1,
                    "volumes": 1,
                }
            ],
            "present": [1],
            "missing": [],
            "completes": ["json-raw-20261207T090000Z-fe53c0.tar.zst"],
            "sha256sums": [],
        }
    )
    verified: bool
    exitCode: int
    volumes: list[dict[str, Any]]


_PACK_ENTRY = {
    "type": "image",
    "refName": "library/busybox:1.36",
    "digest": "sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79",
    "mediaType": OCI_INDEX,
    "size": 2295,
    "source": "oci-layout://images/busybox",
    "platforms": [{"os": "linux", "architecture": "amd64"}],
}


class BootstrapPack(BaseModel):
    model_config = _open(
        {
            "verification": {"verified": True, "exitCode": 0, "checks": [{"check": "signature", "ok": True}]},
            "entries": [_PACK_ENTRY],
        }
    )
    verification: dict[str, Any]
    entries: list[dict[str, Any]]


class BootstrapPushed(BaseModel):
    model_config = _open(
        {
            "run": "01JEXAMPLE0000000000000000",
            "pushed": [
                {
                    "refName": "library/busybox:1.36",
                    "type": "image",
                    "reference": "127.0.0.1:5000/mirror/library/busybox:1.36@" + str(_PACK_ENTRY["digest"]),
                    "digest": _PACK_ENTRY["digest"],
                    "blobs": {"uploaded": 3, "mounted": 0, "present": 0},
                }
            ],
        }
    )
    run: str
    pushed: list[dict[str, Any]]
