"""What the OCI client reads before any network: `oci://` references, credentials files and docker configs,
WWW-Authenticate challenges and token scopes. Hostile or malformed input is refused with its exit code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from adapters.oci.client import merge_scopes, parse_challenge
from adapters.oci.credentials import Credentials, from_docker_config, from_file
from adapters.oci.reference import parse
from core.errors import ExitCode, StellaError

pytestmark = pytest.mark.usefixtures("no_network")


def test_references() -> None:
    ref = parse("oci://127.0.0.1:5000/acme/feeds:v1.2@sha256:" + "a" * 64)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "acme/feeds",
        "v1.2",
        "sha256:" + "a" * 64,
    )
    assert ref.loopback and str(ref) == "127.0.0.1:5000/acme/feeds:v1.2@sha256:" + "a" * 64
    assert parse("oci://registry.lan").repository == "" and not parse("oci://registry.lan").loopback
    assert parse("oci://localhost:5000/a/b").loopback and parse("oci://[::1]:5000/a/b").loopback
    assert parse("oci://[::1]:5000/a/b").hostname == "::1"
    assert parse("oci://127.8.0.1/a/b").loopback and not parse("oci://10.0.0.1/a/b").loopback


@pytest.mark.parametrize(
    "text",
    [
        "docker://host/a/b",  # another scheme
        "oci://host/Acme/feeds",  # uppercase repository
        "oci://host/a/../b",  # path traversal
        "oci://host/a//b",
        "oci://host/a/b:-tag",  # a tag may not start with '-'
        "oci://host/a/b@sha256:abc",  # a short digest
        "oci://host/a/b@md5:" + "a" * 32,
        "oci://user:pw@host/a/b",  # credentials in the URL
        "oci://ho st/a",
        "oci://host/" + "a" * 256,
    ],
)
def test_malformed_references_are_usage_errors(text: str) -> None:
    with pytest.raises(StellaError) as caught:
        parse(text)
    assert caught.value.exit_code == ExitCode.USAGE


def _config(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def test_docker_config(tmp_path: Path) -> None:
    auth = base64.b64encode(b"stella:pa:ss").decode()
    cfg = _config(tmp_path, {"auths": {"https://registry.lan:5000/v1/": {"auth": auth}, "other": {"auth": "x"}}})
    found = from_docker_config(cfg, "registry.lan:5000")
    assert found == Credentials("stella", "pa:ss")
    assert "pa:ss" not in repr(found) and "pa:ss" not in str(found)
    assert from_docker_config(cfg, "elsewhere:5000") is None
    split = _config(tmp_path, {"auths": {"r.lan": {"username": "u", "password": "p"}}})
    assert from_docker_config(split, "R.LAN") == Credentials("u", "p")


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"credHelpers": {"r.lan": "pass"}}, "credential helper"),
        ({"credsStore": "desktop"}, "credential store"),
        ({"auths": {"r.lan": {"auth": "not base64!"}}}, "base64"),
        ({"auths": {"r.lan": {"auth": base64.b64encode(b"nocolon").decode()}}}, "USER:PASSWORD"),
        ({"auths": []}, "'auths' is not an object"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_docker_config_refusals(tmp_path: Path, doc: object, words: str) -> None:
    with pytest.raises(StellaError) as caught:
        from_docker_config(_config(tmp_path, doc), "r.lan")
    assert caught.value.exit_code == ExitCode.BAD_INPUT and words in caught.value.diagnostics()
    assert str(tmp_path / "config.json") in caught.value.diagnostics()


def test_credentials_file(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    path.write_text("stella:p:w\n")
    assert from_file(path) == Credentials("stella", "p:w")
    for bad in ("nocolon\n", ":pw\n", "a:b\nc:d\n", ""):
        path.write_text(bad)
        with pytest.raises(StellaError) as caught:
            from_file(path)
        assert caught.value.exit_code == ExitCode.BAD_INPUT and "USER:PASSWORD" in caught.value.diagnostics()
    with pytest.raises(StellaError) as caught:
        from_file(tmp_path / "missing")
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_challenges_and_scopes() -> None:
    got = parse_challenge('Bearer realm="https://auth.lan/token",service="reg",scope="repository:a/b:pull,push"')
    assert got is not None and got.scheme == "bearer"
    assert got.params == {"realm": "https://auth.lan/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    basic = parse_challenge('Basic realm="basic-realm"')
    assert basic is not None and basic.scheme == "basic" and basic.params == {"realm": "basic-realm"}
    assert parse_challenge("") is None
    assert merge_scopes("repository:a/b:pull,push", "repository:a/b:pull") == ["repository:a/b:pull,push"]
    assert merge_scopes("repository:a/b:pull", "repository:a/b:push repository:c/d:pull") == [
        "repository:a/b:pull,push",
        "repository:c/d:pull",
    ]
