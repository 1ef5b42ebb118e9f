"""Bootstrap packs: images built at test time (a layer from a Debian package's files, and files the test writes)
and a small Helm chart, into a signed pack; skopeo reads the pack's layout and, after `stella bootstrap push` to
Debian's docker-registry on 127.0.0.1, the registry, with the digests the pack manifest lists."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.conftest import require_tool
from tests.interop.test_oci_distribution import registry_factory  # noqa: F401 (the fixture)

pytestmark = pytest.mark.interop
REF = "org.opencontainers.image.ref.name"
NAMES = {"apps/hello:2.10", "apps/motd:1", "apps/hello-docker:2.10", "hello:0.1.0_build.1", "tiny:1.0.0"}


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(root: Path) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), path.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_symlink() or not path.is_file():
                tar.addfile(info)
            else:
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue(), diff_id


def make_image(layout: Path, rootfs: Path, ref: str) -> str:
    """A one-layer OCI image of ``rootfs`` in the layout ``layout``; returns its manifest digest."""
    layer, diff_id = _layer(rootfs)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, layer)}],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    desc = _blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **desc,
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return str(desc["digest"])


def make_index(layout: Path, rootfs: Path, ref: str) -> str:
    """A two-platform image (an OCI index over linux/amd64 and linux/arm64 manifests) in ``layout``."""
    children = []
    for arch in ("amd64", "arm64"):
        make_image(layout, rootfs, f"{ref}-{arch}")
        entry = json.loads((layout / "index.json").read_text())["manifests"][0]
        manifest = json.loads((layout / "blobs/sha256" / entry["digest"].removeprefix("sha256:")).read_bytes())
        base = layout / "blobs/sha256" / manifest["config"]["digest"].removeprefix("sha256:")
        diff_ids = json.loads(base.read_bytes())["rootfs"]["diff_ids"]
        config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        manifest["config"].update(_blob(layout, json.dumps(config, sort_keys=True).encode()))
        body = json.dumps(manifest, sort_keys=True).encode()
        children.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(layout, body),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children},
        sort_keys=True,
    ).encode()
    desc = _blob(layout, index)
    entry = {"mediaType": "application/vnd.oci.image.index.v1+json", **desc, "annotations": {REF: ref}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return str(desc["digest"])


def _tar_dir(src: Path, out: Path) -> None:
    with tarfile.open(out, "w") as tar:
        for path in sorted(src.rglob("*")):
            tar.add(path, path.relative_to(src).as_posix(), recursive=False)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Any]:
    """A spec naming an image from a Debian package's files (oci-archive), an image of written files (oci layout
    directory) and a chart directory."""
    work = tmp_path / "inputs"
    work.mkdir()
    rootfs = work / "rootfs"
    rootfs.mkdir()
    deb = None
    if shutil.which("apt-get") and shutil.which("dpkg-deb"):
        got = subprocess.run(["apt-get", "download", "-q", "hello"], cwd=work, capture_output=True)
        debs = sorted(work.glob("hello_*.deb"))
        if got.returncode == 0 and debs:
            deb = debs[0]
            subprocess.run(["dpkg-deb", "-x", str(deb), str(rootfs)], check=True)
    if deb is None:  # no package mirror reachable: the layer is files the test writes
        (rootfs / "usr/bin").mkdir(parents=True)
        (rootfs / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    layout_a = work / "a-layout"
    digest_a = make_image(layout_a, rootfs, "hello:2.10")
    _tar_dir(layout_a, work / "hello.oci.tar")
    # An independent producer's docker-archive of the same image (skopeo writes docker save's format).
    skopeo = require_tool("skopeo")
    subprocess.run(
        [skopeo, "copy", f"oci:{layout_a}:hello:2.10", f"docker-archive:{work / 'hello.docker.tar'}:hello:2.10"],
        check=True,
        capture_output=True,
    )
    files = work / "files"
    (files / "etc").mkdir(parents=True)
    (files / "etc" / "motd").write_text("stella bootstrap test\n")
    layout_b = work / "motd-layout"
    digest_b = make_image(layout_b, files, "motd:1")
    chart = work / "hello-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: hello\nversion: 0.1.0+build.1\ndescription: A test chart\nhome: https://example.org\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\ndata:\n  greeting: {{ .Values.greeting }}\n"
    )
    tiny = work / "tiny"
    tiny.mkdir()
    (tiny / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 1.0.0\ntype: library\n")
    tgz = io.BytesIO()
    with gzip.GzipFile(fileobj=tgz, mode="wb", mtime=1700000000) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        data = (tiny / "Chart.yaml").read_bytes()
        info = tarfile.TarInfo("tiny/Chart.yaml")
        info.size, info.mtime = len(data), 1700000000
        tar.addfile(info, io.BytesIO(data))
    (work / "tiny-1.0.0.tgz").write_bytes(tgz.getvalue())
    spec = work / "bootstrap.yaml"
    spec.write_text(
        "images:\n"
        "  - source: oci-archive:hello.oci.tar\n    name: apps/hello:2.10\n"
        "  - source: oci:motd-layout:motd:1\n    name: apps/motd:1\n"
        "  - source: docker-archive:hello.docker.tar\n    name: apps/hello-docker:2.10\n"
        "charts:\n  - source: hello-chart\n  - source: tiny-1.0.0.tgz\n"
    )
    return {
        "spec": spec,
        "work": work,
        "digests": {"apps/hello:2.10": digest_a, "apps/motd:1": digest_b},
        "tgz": work / "tiny-1.0.0.tgz",
    }


def _build(stella: Any, spec: Path, out: Path) -> dict[str, Any]:
    res = stella("bootstrap", "build", spec, "--out", out, "--signing-key", "k", "--json")
    assert res.code == 0, res.err
    return dict(res.json())


def _extract(pack: Path, into: Path) -> None:
    with (
        pack.open("rb") as fh,
        zstandard.ZstdDecompressor().stream_reader(fh) as z,
        tarfile.open(fileobj=z, mode="r|") as t,
    ):
        t.extractall(into, filter="data")


def test_pack_builds_lists_and_reads_with_skopeo(stella: Any, tmp_path: Path, inputs: dict[str, Any]) -> None:
    skopeo = require_tool("skopeo")
    assert stella("keys", "generate", "k").code == 0
    one, two = tmp_path / "one.tar.zst", tmp_path / "two.tar.zst"
    _build(stella, inputs["spec"], one)
    _build(stella, inputs["spec"], two)
    assert stella("keys", "export-public", "k", "--out", tmp_path / "k.pub").code == 0
    listed = stella("bootstrap", "list", one, "--key", tmp_path / "k.pub", "--json")
    assert listed.code == 0, listed.err
    entries = {e["refName"]: e for e in listed.json()["entries"]}
    assert set(entries) == NAMES
    for name, digest in inputs["digests"].items():
        assert entries[name]["digest"] == digest
    for name in ("apps/hello:2.10", "apps/motd:1", "apps/hello-docker:2.10"):
        assert entries[name]["platforms"] == [{"architecture": "amd64", "os": "linux"}]
    assert entries["tiny:1.0.0"]["chartDigest"] == "sha256:" + hashlib.sha256(inputs["tgz"].read_bytes()).hexdigest()
    assert entries["apps/hello:2.10"]["source"] == "oci-archive:hello.oci.tar"
    # The pack is an ordinary signed bundle; a retry of its run rebuilds it byte for byte.
    pub = ("--key", tmp_path / "k.pub")
    assert stella("verify", one, *pub).code == 0
    run_id = stella(
        "bootstrap", "build", inputs["spec"], "--out", tmp_path / "r.tar.zst", "--signing-key", "k", "--json"
    ).json()["runId"]
    assert stella("export", "retry", run_id, "--key", "k", "--out", tmp_path / "r2.tar.zst").code == 0
    assert (tmp_path / "r.tar.zst").read_bytes() == (tmp_path / "r2.tar.zst").read_bytes()
    # export run names the way to build one.
    assert (
        stella("export", "run", "--profile", "bootstrap:pack", "--key", "k", "--out", tmp_path / "x.tar.zst").code == 2
    )
    # Same inputs, same pack content: every payload file of the two builds is byte-identical.
    a, b = tmp_path / "a", tmp_path / "b"
    _extract(one, a)
    _extract(two, b)
    layout_files = sorted(p.relative_to(a) for p in (a / "layout").rglob("*") if p.is_file())
    assert layout_files and all((a / p).read_bytes() == (b / p).read_bytes() for p in layout_files)
    doc_a, doc_b = json.loads((a / "bootstrap.json").read_text()), json.loads((b / "bootstrap.json").read_text())
    assert doc_a["entries"] == doc_b["entries"]
    # Helm's layout for the chart: config and content media types, title/version annotations, '+' -> '_' tag.
    chart = entries["hello:0.1.0_build.1"]
    manifest = json.loads((a / "layout/blobs/sha256" / chart["digest"].removeprefix("sha256:")).read_text())
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    ]
    assert manifest["annotations"]["org.opencontainers.image.title"] == "hello"
    assert manifest["annotations"]["org.opencontainers.image.version"] == "0.1.0+build.1"
    # skopeo reads the pack's layout by ref name with the digests the manifest lists, and copies them unchanged.
    for name, entry in entries.items():
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", f"oci:{a / 'layout'}:{name}"], capture_output=True, check=True
        )
        assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == entry["digest"]
    info = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"oci:{a / 'layout'}:apps/hello:2.10"], capture_output=True, check=True
        ).stdout
    )
    assert info["Digest"] == entries["apps/hello:2.10"]["digest"]
    copy = tmp_path / "copy"
    subprocess.run(
        [skopeo, "copy", "--preserve-digests", f"oci:{a / 'layout'}:apps/motd:1", f"oci:{copy}:m"],
        check=True,
        capture_output=True,
    )
    assert json.loads((copy / "index.json").read_text())["manifests"][0]["digest"] == entries["apps/motd:1"]["digest"]


def test_push_to_registry(stella: Any, tmp_path: Path, inputs: dict[str, Any], registry_factory: Any) -> None:  # noqa: F811
    skopeo = require_tool("skopeo")
    reg = registry_factory()
    assert stella("keys", "generate", "k").code == 0
    pack = tmp_path / "pack.tar.zst"
    _build(stella, inputs["spec"], pack)
    assert stella("keys", "export-public", "k", "--out", tmp_path / "k.pub").code == 0
    key = ("--key", tmp_path / "k.pub")
    res = stella("bootstrap", "push", pack, *key, "--registry", f"{reg.host}/site", "--plain-http", "--json")
    assert res.code == 0, res.err
    refs = {p["refName"]: p for p in res.json()}
    assert set(refs) == NAMES
    # apps/hello and apps/hello-docker share their config: the second repository mounts it from the first.
    assert sum(p["blobs"]["mounted"] for p in refs.values()) >= 1
    for name, digest in inputs["digests"].items():
        repo, _, tag = name.rpartition(":")
        out = subprocess.run(
            [skopeo, "inspect", "--tls-verify=false", f"docker://{reg.host}/site/{repo}:{tag}"],
            capture_output=True,
            check=True,
        )
        assert json.loads(out.stdout)["Digest"] == digest == refs[name]["digest"]
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/site/hello:0.1.0_build.1"],
        capture_output=True,
        check=True,
    )
    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == refs["hello:0.1.0_build.1"]["digest"]
    again = stella("bootstrap", "push", pack, *key, "--registry", f"{reg.host}/site", "--plain-http", "--json")
    assert again.code == 0 and [p["digest"] for p in again.json()] == [p["digest"] for p in res.json()]
    assert all(p["blobs"]["uploaded"] == p["blobs"]["mounted"] == 0 for p in again.json())


def test_hostile_inputs_are_refused(stella: Any, tmp_path: Path, inputs: dict[str, Any]) -> None:
    assert stella("keys", "generate", "k").code == 0
    work = inputs["work"]
    evil = work / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        data = json.dumps([{"Config": "../../etc/passwd", "RepoTags": ["x:1"], "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    spec = work / "evil.yaml"
    spec.write_text("images:\n  - source: docker-archive:evil.tar\n    name: x/y:1\n")
    res = stella("bootstrap", "build", spec, "--out", tmp_path / "e.tar.zst", "--signing-key", "k")
    assert res.code == 3 and "path traversal" in res.err
    assert not (tmp_path / "e.tar.zst").exists()
    trav = work / "trav.tar"
    with tarfile.open(trav, "w") as tar:
        info = tarfile.TarInfo("../index.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    spec.write_text("images:\n  - source: oci-archive:trav.tar\n    name: x/y:1\n")
    res = stella("bootstrap", "build", spec, "--out", tmp_path / "e.tar.zst", "--signing-key", "k")
    assert res.code == 3 and "path traversal" in res.err
    # A layout whose manifest points at a blob that is not there.
    layout = work / "motd-layout"
    index = json.loads((layout / "index.json").read_text())
    manifest = layout / "blobs/sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")
    layer = json.loads(manifest.read_text())["layers"][0]["digest"].removeprefix("sha256:")
    (layout / "blobs/sha256" / layer).write_bytes(b"tampered")
    spec.write_text("images:\n  - source: oci:motd-layout\n    name: x/y:1\n")
    res = stella("bootstrap", "build", spec, "--out", tmp_path / "e.tar.zst", "--signing-key", "k")
    assert res.code == 4, res.err
    assert not (tmp_path / "e.tar.zst").exists()


def test_a_multi_platform_image_goes_through_whole(
    stella: Any,
    tmp_path: Path,
    registry_factory: Any,  # noqa: F811
) -> None:
    skopeo = require_tool("skopeo")
    files = tmp_path / "files"
    (files / "etc").mkdir(parents=True)
    (files / "etc" / "motd").write_text("two platforms\n")
    digest = make_index(tmp_path / "multi", files, "multi")
    spec = tmp_path / "bootstrap.yaml"
    spec.write_text("images:\n  - source: oci:multi\n    name: apps/multi:1\n")
    assert stella("keys", "generate", "k").code == 0
    assert stella("keys", "export-public", "k", "--out", tmp_path / "k.pub").code == 0
    pack = tmp_path / "pack.tar.zst"
    _build(stella, spec, pack)
    listed = stella("bootstrap", "list", pack, "--key", tmp_path / "k.pub", "--json").json()
    (entry,) = listed["entries"]
    assert entry["digest"] == digest
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["platforms"] == [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    reg = registry_factory()
    res = stella(
        "bootstrap", "push", pack, "--key", tmp_path / "k.pub", "--registry", reg.host, "--plain-http", "--json"
    )
    assert res.code == 0, res.err
    assert res.json()[0]["reference"] == f"{reg.host}/apps/multi:1@{digest}"
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/apps/multi:1"],
        capture_output=True,
        check=True,
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    arm = subprocess.run(
        [skopeo, "inspect", "--override-arch", "arm64", "--tls-verify=false", f"docker://{reg.host}/apps/multi:1"],
        capture_output=True,
        check=True,
    ).stdout
    assert json.loads(arm)["Architecture"] == "arm64"


def test_an_input_changed_after_planning_is_refused_on_retry(stella: Any, tmp_path: Path) -> None:
    files = tmp_path / "files"
    (files / "etc").mkdir(parents=True)
    (files / "etc" / "motd").write_text("first\n")
    make_image(tmp_path / "img", files, "motd:1")
    spec = tmp_path / "bootstrap.yaml"
    spec.write_text("images:\n  - source: oci:img\n    name: apps/motd:1\n")
    assert stella("keys", "generate", "k").code == 0
    run_id = _build(stella, spec, tmp_path / "a.tar.zst")["runId"]
    (files / "etc" / "motd").write_text("second\n")
    make_image(tmp_path / "img", files, "motd:1")
    res = stella("export", "retry", run_id, "--key", "k", "--out", tmp_path / "b.tar.zst")
    assert res.code == 4 and "changed since the run was planned" in res.err
    assert not (tmp_path / "b.tar.zst").exists()


def test_an_image_from_a_registry_is_fetched_checked_and_packed(
    stella: Any,
    tmp_path: Path,
    registry_factory: Any,  # noqa: F811
) -> None:
    skopeo = require_tool("skopeo")
    reg = registry_factory()
    files = tmp_path / "files"
    (files / "etc").mkdir(parents=True)
    (files / "etc" / "motd").write_text("from a registry\n")
    digest = make_image(tmp_path / "img", files, "motd:1")
    subprocess.run(
        [skopeo, "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'img'}:motd:1", f"docker://{reg.host}/up/motd:1"],
        check=True,
        capture_output=True,
    )
    spec = tmp_path / "bootstrap.yaml"
    spec.write_text(f"images:\n  - source: docker://{reg.host}/up/motd:1\n    name: apps/motd:1\n")
    assert stella("keys", "generate", "k").code == 0
    assert stella("keys", "export-public", "k", "--out", tmp_path / "k.pub").code == 0
    res = stella("bootstrap", "build", spec, "--out", tmp_path / "p.tar.zst", "--signing-key", "k", "--plain-http")
    assert res.code == 0, res.err
    (entry,) = stella("bootstrap", "list", tmp_path / "p.tar.zst", "--key", tmp_path / "k.pub", "--json").json()[
        "entries"
    ]
    assert entry["digest"] == digest and entry["source"] == f"docker://{reg.host}/up/motd:1"
    # A layer altered on the registry's disk is caught while fetching (exit 4), and no pack is written.
    other = tmp_path / "files2"
    (other / "etc").mkdir(parents=True)
    (other / "etc" / "motd").write_text("another\n")
    make_image(tmp_path / "img2", other, "m:2")
    subprocess.run(
        [skopeo, "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'img2'}:m:2", f"docker://{reg.host}/up/m:2"],
        check=True,
        capture_output=True,
    )
    index = json.loads((tmp_path / "img2" / "index.json").read_text())
    body = (tmp_path / "img2/blobs/sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")).read_bytes()
    layer = json.loads(body)["layers"][0]["digest"]
    blob = reg.blob_file(layer)
    blob.write_bytes(b"x" * blob.stat().st_size)
    spec.write_text(f"images:\n  - source: docker://{reg.host}/up/m:2\n    name: apps/m:2\n")
    res = stella("bootstrap", "build", spec, "--out", tmp_path / "q.tar.zst", "--signing-key", "k", "--plain-http")
    assert res.code == 4, res.err
    assert not (tmp_path / "q.tar.zst").exists()


def test_a_pack_run_is_listed_and_pushed_over_the_api(
    stella: Any,
    home: Path,
    tmp_path: Path,
    inputs: dict[str, Any],
    registry_factory: Any,  # noqa: F811
) -> None:
    """`GET /api/v1/export/runs/{id}/bootstrap` and `POST .../bootstrap/push` answer what `stella bootstrap list`
    and `push` print with --json, for the tenant's own pack run only, and refuse a run that is not a pack."""
    from datetime import timedelta

    import httpx

    from core.home import Home
    from services.tokens import create_token
    from tests.integration.test_api_verify_stream import InProcess

    reg = registry_factory()
    assert stella("keys", "generate", "k").code == 0
    run = _build(stella, inputs["spec"], tmp_path / "pack.tar.zst")
    raw_out = tmp_path / "raw.tar.zst"
    raw = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", raw_out, "--allow-empty", "--json")
    assert raw.code == 0, raw.err
    assert stella("keys", "export-public", "k", "--out", tmp_path / "k.pub").code == 0
    assert stella("trust", "add", "packs", tmp_path / "k.pub").code == 0  # the API verifies against the trust store
    cli_list = stella("bootstrap", "list", tmp_path / "pack.tar.zst", "--json").json()
    tokens = {
        tenant: create_token(
            Home(home), tenant=tenant, scopes=("export:read", "export:run"), ttl=timedelta(hours=1), subject="pack-api"
        )[1]
        for tenant in ("default", "acme")
    }
    server = InProcess(Home(home), store_linger=0)
    try:
        url = f"{server.url}/api/v1/export/runs"
        auth = {"Authorization": f"Bearer {tokens['default']}"}
        listed = httpx.get(f"{url}/{run['runId']}/bootstrap", headers=auth, timeout=60)
        assert listed.status_code == 200, listed.text
        assert listed.json()["entries"] == cli_list["entries"]
        assert listed.json()["verification"]["verified"] is True
        other = httpx.get(f"{url}/{run['runId']}/bootstrap", headers={"Authorization": f"Bearer {tokens['acme']}"})
        assert other.status_code == 404  # another tenant's run does not exist for it
        not_pack = httpx.get(f"{url}/{raw.json()['runId']}/bootstrap", headers=auth, timeout=60)
        assert not_pack.status_code == 409 and "not a bootstrap pack" in not_pack.json()["detail"]
        body = {"registry": f"{reg.host}/api", "plainHttp": True}
        pushed = httpx.post(f"{url}/{run['runId']}/bootstrap/push", json=body, headers=auth, timeout=120)
        assert pushed.status_code == 200, pushed.text
        refs = {p["refName"]: p for p in pushed.json()["pushed"]}
        assert set(refs) == NAMES
        for entry in cli_list["entries"]:
            assert refs[entry["refName"]]["digest"] == entry["digest"]
        skopeo = require_tool("skopeo")
        for name, digest in inputs["digests"].items():
            repo, _, tag = name.rpartition(":")
            seen = subprocess.run(
                [skopeo, "inspect", "--tls-verify=false", f"docker://{reg.host}/api/{repo}:{tag}"],
                capture_output=True,
                check=True,
            )
            assert json.loads(seen.stdout)["Digest"] == digest
    finally:
        server.stop()
