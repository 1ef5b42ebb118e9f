"""Each OCI or S3 copy of a bundle gets its own signed line in the run's in-toto attestation (type and location,
no credentials), and the attestation travels with the copy: in the OCI referrer (so `stella pull` writes it beside
the pulled bundle) and as an object beside the S3 object; `stella verify` checks it there."""

# ruff: noqa: F811 (the fixtures of the two distribution test modules are imported and then requested by name)

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.test_oci_distribution import Registry, registry_factory, run  # noqa: F401 (fixtures)
from tests.interop.test_s3_distribution import _bucket, _distribute, _run, aws_env, moto_endpoint, s3  # noqa: F401

pytestmark = pytest.mark.interop


def _statements(path: Path) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in path.read_bytes().splitlines()]


def _release_check(report: dict[str, Any]) -> str:
    (check,) = [c for c in report["checks"] if c["check"] == "in-toto release"]
    return str(check["detail"])


def test_oci_copy_line_travels_in_the_referrer_and_verifies_after_pull(
    stella: Any, run: dict[str, Any], registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    reg = registry_factory()
    source = Path(f"{run['bundle']}.intoto.jsonl")
    before = _statements(source)
    res = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json")
    assert res.code == 0, res.err
    pushed = res.json()
    after = _statements(source)
    assert len(after) == len(before) + 1 and after[: len(before)] == before
    line = after[-1]
    dist = line["predicate"]["distribution"]
    assert dist["type"] == "oci" and dist["location"] == pushed["distribution"]["target"]
    assert dist["id"] == pushed["distribution"]["distributionId"]
    assert line["subject"][0]["digest"]["sha256"] == pushed["layerDigest"].removeprefix("sha256:")

    # The referrer carries the whole file as a layer.
    referrer = json.loads(
        reg.get(
            f"/v2/default/json-raw/manifests/{pushed['referrerDigest']}",
            accept="application/vnd.oci.image.manifest.v1+json",
        ).content
    )
    (layer,) = [x for x in referrer["layers"] if x["mediaType"].endswith("attestation.v1+jsonl")]
    assert layer["size"] == source.stat().st_size

    # A retried push signs no second line and pushes the same referrer.
    again = stella("distribute", run["id"], "--to", f"oci://{reg.host}", "--plain-http", "--json").json()
    assert len(_statements(source)) == len(after) and again["referrerDigest"] == pushed["referrerDigest"]

    out = tmp_path / "pulled" / "b.tar.zst"
    out.parent.mkdir()
    ref = f"oci://{reg.host}/default/json-raw@{pushed['manifestDigest']}"
    pulled = stella("pull", ref, "--out", out, "--plain-http", "--json")
    assert pulled.code == 0, pulled.err
    assert pulled.json()["attestation"] == f"{out}.intoto.jsonl"
    assert Path(f"{out}.intoto.jsonl").read_bytes() == source.read_bytes()
    verified = stella("verify", out, "--key", run["pub"], "--json")
    assert verified.code == 0, verified.out
    assert "distributed cop" in _release_check(verified.json()) and "oci" in _release_check(verified.json())

    # A tampered attestation on the far side is not ignored: the pulled file fails verify.
    tampered = Path(f"{out}.intoto.jsonl")
    lines = tampered.read_bytes().splitlines(keepends=True)
    envelope = json.loads(lines[-1])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["distribution"]["location"] = "oci://elsewhere/x@sha256:" + "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered.write_bytes(b"".join(lines[:-1]) + json.dumps(envelope).encode() + b"\n")
    assert stella("verify", out, "--key", run["pub"]).code == 5


def test_s3_copy_line_and_the_attestation_object_beside_it(
    stella: Any, tmp_path: Path, s3: Any, moto_endpoint: str
) -> None:
    bucket = _bucket(s3, "att")
    run_id, bundle = _run(stella, tmp_path, "acme")
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    res = _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}/exports", "--json")
    assert res.code == 0, res.err
    done = res.json()
    assert done["attestation"] == done["url"] + ".intoto.jsonl"
    source = Path(f"{bundle}.intoto.jsonl")
    line = _statements(source)[-1]
    assert line["predicate"]["distribution"]["type"] == "s3"
    assert line["predicate"]["distribution"]["location"] == done["url"]
    dumped = source.read_text()
    assert "stella-test-secret" not in dumped and "stella-test-key" not in dumped and moto_endpoint not in dumped

    key = done["url"].split("/", 3)[3]
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    copy = fetched / Path(key).name
    copy.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    Path(f"{copy}.intoto.jsonl").write_bytes(s3.get_object(Bucket=bucket, Key=key + ".intoto.jsonl")["Body"].read())
    assert Path(f"{copy}.intoto.jsonl").read_bytes() == source.read_bytes()
    verified = stella("verify", copy, "--key", pub, "--json")
    assert verified.code == 0, verified.out
    assert "s3" in _release_check(verified.json())

    # Distributed again (idempotent): no second line, the same object beside it.
    assert _distribute(stella, moto_endpoint, run_id, f"s3://{bucket}/exports").code == 0
    assert len(_statements(source)) == len(_statements(Path(f"{copy}.intoto.jsonl")))
