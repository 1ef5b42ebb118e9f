"""The Offline Kit as a field engineer and a receiver use it: `stella kit assemble|plan|verify|restore|iso`.

One kit is built per module from the samples: three bundles (json:raw, json:policy and a risk bundle larger than a
volume) over volumes of 96 KB, which gives five volumes with the risk bundle cut into parts on all of them. Each
test copies the kit before damaging it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.contract.kit import MAX_FILE_SIZE
from tests.conftest import ROOT, require_tool

SAMPLES = ROOT / "samples"
VOLUME_SIZE = "96K"


def _cli(home: Path, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STELLA_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three bundles of the samples, their signer's public key, and the kit assembled from them."""
    base = tmp_path_factory.mktemp("kit")
    home = base / "home"
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir())
    assert _cli(home, "import", "--quiet", *samples).returncode == 0
    assert _cli(home, "keys", "generate", "signer").returncode == 0
    pub = base / "signer.pub"
    assert _cli(home, "keys", "export-public", "signer", "--out", pub).returncode == 0
    bundles: dict[str, Path] = {}
    runs: dict[str, str] = {}
    (base / "bundles").mkdir()
    for profile, name in (("json:raw", "raw"), ("json:policy", "policy"), ("risk:bundle", "risk")):
        out = base / "bundles" / f"{name}.tar.zst"
        done = _cli(home, "export", "run", "--profile", profile, "--key", "signer", "--out", out, "--json")
        assert done.returncode == 0, done.stderr
        bundles[name] = out
        runs[name] = json.loads(done.stdout)["runId"]
    made = _cli(
        home,
        "kit",
        "assemble",
        "--volume-size",
        VOLUME_SIZE,
        "--key",
        "signer",
        "--out",
        base / "kit",
        "--json",
        *bundles.values(),
    )
    assert made.returncode == 0, made.stderr
    yield {
        "home": home,
        "pub": pub,
        "bundles": bundles,
        "runs": runs,
        "dir": base / "kit",
        "made": json.loads(made.stdout),
    }


@pytest.fixture
def copy(kit: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the kit to damage."""
    target = tmp_path / "kit"
    shutil.copytree(kit["dir"], target)
    return target


def _index(kit_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((kit_dir / "vol-01" / "KIT-INDEX.json").read_bytes())
    return data


def _volumes(kit_dir: Path) -> list[Path]:
    return sorted(p for p in kit_dir.iterdir() if p.is_dir())


def _parts(kit_dir: Path) -> list[Path]:
    """Every bundle file and part of the kit, on its volume."""
    return [kit_dir / f"vol-{p['volume']:02d}" / p["path"] for b in _index(kit_dir)["bundles"] for p in b["parts"]]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# -- the layout --------------------------------------------------------------------------------------------------------
def test_the_kit_spans_several_volumes_whole_files_first(kit: dict[str, Any]) -> None:
    index = _index(kit["dir"])
    volumes = _volumes(kit["dir"])
    assert [v.name for v in volumes] == [f"vol-{n:02d}" for n in range(1, len(volumes) + 1)]
    assert len(volumes) >= 3
    parts = {b["name"]: b["parts"] for b in index["bundles"]}
    # The risk bundle (227 KB) is larger than a volume and is cut; the two others fit a volume and stay whole.
    assert len(parts["risk.tar.zst"]) >= 3
    assert len(parts["raw.tar.zst"]) == 1 and len(parts["policy.tar.zst"]) == 1
    for name, path in kit["bundles"].items():
        entry = next(b for b in index["bundles"] if b["name"] == f"{name}.tar.zst")
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert sum(p["size"] for p in entry["parts"]) == path.stat().st_size
    # Every volume's files fit the volume size, counted in 2,048-byte sectors, with 1% kept for the ISO structures.
    for volume in volumes:
        used = sum(-(-f.stat().st_size // 2048) * 2048 for f in volume.rglob("*") if f.is_file())
        assert used <= 96_000 - 2048, volume
        assert all(f.stat().st_size <= MAX_FILE_SIZE for f in volume.rglob("*") if f.is_file())
        names = {str(f.relative_to(volume)) for f in volume.rglob("*") if f.is_file()}
        assert {"KIT-VOLUME.json", "KIT-VOLUME.json.sig", "KIT-INDEX.json", "KIT-VOLUME.sha256", "README.txt"} <= names
        assert {"verify.sh", "trust/kit-signer.pub"} <= names
        assert (volume / "KIT-INDEX.json").read_bytes() == (volumes[0] / "KIT-INDEX.json").read_bytes()


def test_plan_shows_the_layout_assemble_writes(kit: dict[str, Any]) -> None:
    done = _cli(
        kit["home"], "kit", "plan", "--volume-size", VOLUME_SIZE, "--key", "signer", "--json", *kit["bundles"].values()
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [[f["path"] for f in v["files"]] for v in plan["volumes"]] == [
        [f["path"] for f in v["files"]] for v in kit["made"]["volumes"]
    ]
    assert plan["split"] == ["risk.tar.zst"]
    assert all(0 < v["fill"] <= 1 for v in plan["volumes"])
    human = _cli(kit["home"], "kit", "plan", "--volume-size", VOLUME_SIZE, *kit["bundles"].values())
    assert human.returncode == 0 and "part 1/" in human.stdout and "split: risk.tar.zst" in human.stdout


def test_assemble_takes_finished_runs_by_id(kit: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "by-run"
    runs = list(kit["runs"].values())
    done = _cli(kit["home"], "kit", "assemble", "--volume-size", "1M", "--key", "signer", "--out", out, "--json", *runs)
    assert done.returncode == 0, done.stderr
    names = [b["name"] for b in json.loads(done.stdout)["bundles"]]
    assert names == sorted(p.name for p in kit["bundles"].values())
    assert len(_volumes(out)) == 1  # 1 MB holds the three bundles whole


def test_bad_arguments_are_refused_with_their_exit_codes(kit: dict[str, Any], tmp_path: Path) -> None:
    bundles = list(kit["bundles"].values())
    bad_size = _cli(kit["home"], "kit", "plan", "--volume-size", "4.7X", *bundles)
    assert bad_size.returncode == 2 and "not a size" in bad_size.stderr
    too_small = _cli(kit["home"], "kit", "plan", "--volume-size", "20K", *bundles)
    assert too_small.returncode == 2 and "--volume-size" in too_small.stderr
    not_a_bundle = tmp_path / "notes.txt"
    not_a_bundle.write_text("hello\n")
    refused = _cli(kit["home"], "kit", "plan", "--volume-size", "1M", not_a_bundle)
    assert refused.returncode == 3 and "notes.txt" in refused.stderr
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    exists = _cli(kit["home"], "kit", "assemble", "--volume-size", "1M", "--key", "signer", "--out", taken, *bundles)
    assert exists.returncode == 2 and "not empty" in exists.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "taken"]  # nothing half-written beside it


# -- verify ------------------------------------------------------------------------------------------------------------
def test_each_volume_verifies_alone_and_says_what_it_completes(stella: Any, kit: dict[str, Any]) -> None:
    index = _index(kit["dir"])
    for volume in _volumes(kit["dir"]):
        res = stella("kit", "verify", volume, "--key", kit["pub"], "--json")
        assert res.code == 0, res.err
        report = res.json()
        number = report["volumes"][0]["volume"]
        here = [b for b in index["bundles"] if any(p["volume"] == number for p in b["parts"])]
        assert report["volumes"][0]["completes"] == [
            b["name"] for b in here if {p["volume"] for p in b["parts"]} == {number}
        ]
        assert report["volumes"][0]["needs"] == {
            b["name"]: sorted({p["volume"] for p in b["parts"]} - {number})
            for b in here
            if {p["volume"] for p in b["parts"]} != {number}
        }
        assert report["missing"] == [n for n in range(1, len(index["volumes"]) + 1) if n != number]
    human = stella("kit", "verify", kit["dir"] / "vol-01", "--key", kit["pub"])
    assert human.code == 0 and "verified volume 1 of" in human.out and "also needs volume(s)" in human.out


def test_the_whole_kit_verifies_and_completes_every_bundle(stella: Any, kit: dict[str, Any]) -> None:
    res = stella("kit", "verify", kit["dir"], "--key", kit["pub"], "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["missing"] == [] and report["completes"] == sorted(p.name for p in kit["bundles"].values())
    assert report["sha256sums"] == [str(kit["dir"])]


def test_the_kit_wide_sha256sums_is_checked_with_the_kit(stella: Any, copy: Path, kit: dict[str, Any]) -> None:
    sums = copy / "SHA256SUMS"
    original = sums.read_bytes()
    sums.write_bytes(original.replace(b"vol-01/README.txt", b"vol-01/README.TXT"))
    res = stella("kit", "verify", copy, "--key", kit["pub"], "--json")
    assert res.code == 5 and "SHA256SUMS.sig" in res.json()["error"]["message"]
    sums.write_bytes(original)
    (copy / "SHA256SUMS.sig").unlink()
    assert stella("kit", "verify", copy, "--key", kit["pub"]).code == 5
    assert stella("kit", "verify", copy / "vol-01", "--key", kit["pub"]).code == 0  # a volume alone needs neither
    # Signed by the kit's own key, but one file short: the lines must be the volumes' files, each with its digest.
    from core.home import Home
    from core.signing import cosign_blob_signature
    from services.keys import signer_for

    short = b"".join(line for line in original.splitlines(keepends=True) if b"vol-02/README.txt" not in line)
    sums.write_bytes(short)
    (copy / "SHA256SUMS.sig").write_bytes(cosign_blob_signature(signer_for(Home(kit["home"]), "signer"), short))
    res = stella("kit", "verify", copy, "--key", kit["pub"], "--json")
    assert res.code == 4 and "vol-02/README.txt" in res.json()["error"]["message"]


def test_the_trust_store_stands_in_for_key(stella: Any, kit: dict[str, Any]) -> None:
    assert stella("kit", "verify", kit["dir"] / "vol-02").code == 5  # empty trust store: no trusted signer
    assert stella("trust", "add", "field", kit["pub"]).code == 0
    assert stella("kit", "verify", kit["dir"] / "vol-02").code == 0


def test_a_flipped_byte_in_any_part_is_refused_naming_it(stella: Any, kit: dict[str, Any], tmp_path: Path) -> None:
    for n, part in enumerate(_parts(kit["dir"])):
        damaged = tmp_path / f"kit-{n}"
        shutil.copytree(kit["dir"], damaged)
        target = damaged / part.relative_to(kit["dir"])
        _flip(target)
        res = stella("kit", "verify", target.parent.parent, "--key", kit["pub"])
        assert res.code == 4, (part, res.err)
        assert str(target.relative_to(target.parent.parent)) in res.err
        out = tmp_path / f"out-{n}"
        restored = stella("kit", "restore", "--to", out, "--key", kit["pub"], *_volumes(damaged))
        assert restored.code == 4 and "corrupted part" in restored.err and target.name in restored.err
        assert f"volume {target.parent.parent.name[-1]}" in restored.err
        assert part.name.split(".part")[0] not in [p.name for p in out.iterdir()]


def test_a_missing_part_is_refused(stella: Any, copy: Path, kit: dict[str, Any], tmp_path: Path) -> None:
    part = next(p for p in _parts(copy) if ".part" in p.name)
    part.unlink()
    res = stella("kit", "verify", part.parent.parent, "--key", kit["pub"])
    assert res.code == 4 and "missing file" in res.err and part.name in res.err
    restored = stella("kit", "restore", "--to", tmp_path / "out", "--key", kit["pub"], *_volumes(copy))
    assert restored.code == 4 and part.name in restored.err


def test_an_unlisted_file_is_refused(stella: Any, copy: Path, kit: dict[str, Any], tmp_path: Path) -> None:
    (copy / "vol-02" / "bundles" / "extra.tar.zst").write_bytes(b"not in the manifest")
    res = stella("kit", "verify", copy / "vol-02", "--key", kit["pub"])
    assert res.code == 4 and "unlisted file" in res.err and "extra.tar.zst" in res.err
    restored = stella("kit", "restore", "--to", tmp_path / "out", "--key", kit["pub"], copy / "vol-02")
    assert restored.code == 4


def test_a_volume_from_another_kit_is_refused(stella: Any, kit: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other"
    made = _cli(kit["home"], "kit", "assemble", "--volume-size", "120K", "--key", "signer", "--out", other,
                *kit["bundles"].values())  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert stella("kit", "verify", other / "vol-02", "--key", kit["pub"]).code == 0  # alone it is fine
    mixed = stella("kit", "verify", kit["dir"] / "vol-01", other / "vol-02", "--key", kit["pub"], "--json")
    assert mixed.code == 4 and "not of kit" in mixed.json()["error"]["message"]
    restored = stella("kit", "restore", "--to", tmp_path / "out", "--key", kit["pub"], kit["dir"] / "vol-01",
                      other / "vol-02")  # fmt: skip
    assert restored.code == 4 and not (tmp_path / "out").exists()


def test_a_wrong_key_or_an_altered_manifest_is_a_signature_failure(
    stella: Any, copy: Path, kit: dict[str, Any], tmp_path: Path
) -> None:
    assert stella("keys", "generate", "stranger").code == 0
    stranger = tmp_path / "stranger.pub"
    assert stella("keys", "export-public", "stranger", "--out", stranger).code == 0
    assert stella("kit", "verify", copy / "vol-01", "--key", stranger).code == 5
    manifest = copy / "vol-01" / "KIT-VOLUME.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"volume":1', b'"volume":2'))
    res = stella("kit", "verify", copy / "vol-01", "--key", kit["pub"])
    assert res.code == 5 and "KIT-VOLUME.json" in res.err
    assert stella("kit", "verify", tmp_path, "--key", kit["pub"]).code == 3  # not a kit volume


# -- restore -----------------------------------------------------------------------------------------------------------
def test_restore_in_reverse_order_gives_identical_bundles_that_stella_verify_accepts(
    stella: Any, kit: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "received"
    volumes = _volumes(kit["dir"])
    waiting: list[dict[str, Any]] = []
    for volume in reversed(volumes):  # one volume at a time, as the discs arrive, last first
        res = stella("kit", "restore", "--to", out, "--key", kit["pub"], volume, "--json")
        assert res.code == 0, res.err
        waiting.append(res.json()["waiting"])
    assert "risk.tar.zst" in waiting[0] and waiting[-1] == {}
    for name, original in kit["bundles"].items():
        restored = out / f"{name}.tar.zst"
        assert restored.read_bytes() == original.read_bytes()
        assert stella("verify", restored, "--key", kit["pub"]).code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in kit["bundles"].values())  # no leftovers
    again = stella("kit", "restore", "--to", out, "--key", kit["pub"], *volumes, "--json")
    assert again.code == 0 and all(r["alreadyRestored"] for r in again.json()["restored"])


#: A child that restores the kit and kills itself with SIGKILL once it has recorded ``argv[4]`` parts.
_KILLED_RESTORE = """
import os, signal, sys
import services.kit as kit
from app.cli import main

out, key, volumes, after = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
real = kit._State.mark
count = 0

def mark_then_die(self, bundle, part):
    global count
    real(self, bundle, part)
    count += 1
    if count == after:
        os.kill(os.getpid(), signal.SIGKILL)

kit._State.mark = mark_then_die
main(["kit", "restore", "--to", out, "--key", key, *volumes])
"""


def test_a_killed_restore_resumes_and_completes(stella: Any, kit: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "received"
    volumes = ",".join(str(v) for v in _volumes(kit["dir"]))
    args = [sys.executable, "-c", _KILLED_RESTORE, str(out), str(kit["pub"]), volumes, "3"]
    killed = subprocess.run(args, cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    work = [p for p in out.iterdir() if p.name.startswith(".stella-kit-")]
    assert len(work) == 1 and (work[0] / "state.json").is_file()  # the partial bundles and the state survived
    res = stella("kit", "restore", "--to", out, "--key", kit["pub"], *_volumes(kit["dir"]), "--json")
    assert res.code == 0, res.err
    result = res.json()
    assert result["partsAlreadyDone"] == 3 and result["waiting"] == {}
    for name, original in kit["bundles"].items():
        assert (out / f"{name}.tar.zst").read_bytes() == original.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in kit["bundles"].values())


# -- without stella: verify.sh, SHA256SUMS -----------------------------------------------------------------------------
_TOOLS = (
    "sh", "openssl", "sha256sum", "base64", "find", "sed", "grep", "sort", "comm", "cut", "tr", "cmp", "wc", "head",
    "tail", "mktemp", "rm", "cat", "dirname", "basename",
)  # fmt: skip


def _restricted_path(tmp_path: Path) -> str:
    """A PATH with openssl, sha256sum and the POSIX shell tools only: no stella, no python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in _TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_verify_sh_needs_only_openssl_and_sha256sum(copy: Path, kit: dict[str, Any], tmp_path: Path) -> None:
    env = {"PATH": _restricted_path(tmp_path), "LC_ALL": "C"}
    script = kit["dir"] / "vol-01" / "verify.sh"
    for volume in _volumes(copy):
        ok = subprocess.run(["sh", str(script), str(kit["pub"]), str(volume)], env=env, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("OK: ")
    part = next(p for p in _parts(copy) if ".part" in p.name)
    _flip(part)
    bad = subprocess.run(["sh", str(script), str(kit["pub"]), str(part.parent.parent)], env=env, capture_output=True)
    assert bad.returncode == 4
    (copy / "vol-01" / "stowaway").write_bytes(b"x")
    added = subprocess.run(["sh", str(script), str(kit["pub"]), str(copy / "vol-01")], env=env, capture_output=True)
    assert added.returncode == 4 and b"unlisted file: stowaway" in added.stderr
    assert stranger_key_fails(script, copy / "vol-02", tmp_path, env) == 5


def stranger_key_fails(script: Path, volume: Path, tmp_path: Path, env: dict[str, str]) -> int:
    key = tmp_path / "stranger.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
    pub = tmp_path / "stranger.pub"
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    return subprocess.run(["sh", str(script), str(pub), str(volume)], env=env, capture_output=True).returncode


def test_sha256sums_covers_the_kit_and_openssl_verifies_its_signature(kit: dict[str, Any], tmp_path: Path) -> None:
    kit_dir = kit["dir"]
    sums = (kit_dir / "SHA256SUMS").read_text()
    listed = {line.split("  ", 1)[1] for line in sums.splitlines()}
    assert listed == {str(p.relative_to(kit_dir)) for v in _volumes(kit_dir) for p in v.rglob("*") if p.is_file()}
    checked = subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=kit_dir, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    sig = tmp_path / "sums.sig"
    sig.write_bytes(base64.b64decode((kit_dir / "SHA256SUMS.sig").read_bytes()))
    cmd = ["openssl", "dgst", "-sha256", "-verify", str(kit["pub"]), "-signature", str(sig)]
    assert subprocess.run([*cmd, str(kit_dir / "SHA256SUMS")], capture_output=True).returncode == 0
    tampered = tmp_path / "SHA256SUMS"
    tampered.write_text(sums.replace(sums[:1], "f" if sums[0] != "f" else "e", 1))
    assert subprocess.run([*cmd, str(tampered)], capture_output=True).returncode != 0


# -- ISO ---------------------------------------------------------------------------------------------------------------
def test_iso_is_byte_identical_md5_tagged_and_verifies_extracted(
    stella: Any, kit: dict[str, Any], tmp_path: Path
) -> None:
    xorriso = require_tool("xorriso")
    first = tmp_path / "vol-01.iso"
    res = stella("kit", "iso", kit["dir"] / "vol-01", "--out", first, "--key", kit["pub"], "--json")
    assert res.code == 0, res.err
    # The same volume copied elsewhere, later, with other times: the same image, byte for byte.
    again = tmp_path / "again" / "vol-01"
    shutil.copytree(kit["dir"] / "vol-01", again)
    for f in again.rglob("*"):
        os.utime(f, (1_234_567_890, 1_234_567_890))
    second = tmp_path / "second.iso"
    assert stella("kit", "iso", again, "--out", second, "--key", kit["pub"]).code == 0
    assert first.read_bytes() == second.read_bytes()
    assert res.json()["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert res.json()["label"] == json.loads((kit["dir"] / "vol-01" / "KIT-VOLUME.json").read_bytes())["label"]
    check = subprocess.run(
        [xorriso, "-no_rc", "-md5", "on", "-indev", first, "-check_md5_r", "FAILURE", "/", "--"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "File contents and their MD5 checksums match" in check.stdout + check.stderr
    pvd = first.read_bytes()[16 * 2048 : 17 * 2048]  # the primary volume descriptor: ISO 9660, its volume id
    assert pvd[1:6] == b"CD001" and pvd[40:72].decode().strip() == res.json()["label"]
    extracted = tmp_path / "extracted"
    subprocess.run([xorriso, "-no_rc", "-osirrox", "on", "-indev", first, "-extract", "/", extracted], check=True,
                   capture_output=True)  # fmt: skip
    assert stella("kit", "verify", extracted, "--key", kit["pub"]).code == 0
    env = {"PATH": _restricted_path(tmp_path), "LC_ALL": "C"}
    sh = subprocess.run(
        ["sh", str(extracted / "verify.sh"), str(kit["pub"]), str(extracted)], env=env, capture_output=True
    )
    assert sh.returncode == 0, sh.stderr


def test_a_corrupted_iso_fails_its_md5_check(stella: Any, kit: dict[str, Any], tmp_path: Path) -> None:
    xorriso = require_tool("xorriso")
    image = tmp_path / "vol-01.iso"
    assert stella("kit", "iso", kit["dir"] / "vol-01", "--out", image, "--key", kit["pub"]).code == 0
    data = bytearray(image.read_bytes())
    policy = (kit["dir"] / "vol-01" / "bundles").iterdir().__next__().read_bytes()
    at = bytes(data).find(policy[:4096])
    assert at > 0
    data[at + 100] ^= 0x01
    image.write_bytes(bytes(data))
    check = subprocess.run(
        [xorriso, "-no_rc", "-md5", "on", "-indev", image, "-check_md5_r", "FAILURE", "/", "--"],
        capture_output=True,
        text=True,
    )
    assert check.returncode != 0 and "MD5 checksums match" not in check.stdout


def test_docs_publish_the_sha256_of_the_verify_sh_every_volume_carries(kit: dict[str, Any]) -> None:
    script = (ROOT / "core" / "kit_files" / "verify.sh").read_bytes()
    assert all((v / "verify.sh").read_bytes() == script for v in _volumes(kit["dir"]))
    published = f"| `{hashlib.sha256(script).hexdigest()}` | the Offline Kit's `verify.sh` |"
    assert published in (ROOT / "docs" / "kit.md").read_text()


def test_a_mirror_kit_carries_the_tuf_root_and_the_binary_and_its_mirror_imports(tmp_path: Path) -> None:
    """The receiver's trust anchors travel on every volume: the kit signer's key and, for a mirror bundle, the TUF
    root a mirror pins; with --include-binary, the stella executable too."""
    home = tmp_path / "home"
    assert _cli(home, "import", "--quiet", SAMPLES / "advisories").returncode == 0
    assert _cli(home, "keys", "generate", "signer").returncode == 0
    assert _cli(home, "tuf", "init", "--key", "signer").returncode == 0
    bundle = tmp_path / "mirror-full.tar.zst"
    assert _cli(home, "export", "run", "--profile", "mirror:full", "--key", "signer", "--out", bundle).returncode == 0
    binary = tmp_path / "stella-binary"
    binary.write_bytes(b"#!/bin/sh\necho stand-in for the onefile stella\n")
    kit_dir = tmp_path / "kit"
    made = _cli(home, "kit", "assemble", "--volume-size", "1M", "--key", "signer", "--out", kit_dir,
                "--include-binary", binary, bundle)  # fmt: skip
    assert made.returncode == 0, made.stderr
    volume = kit_dir / "vol-01"
    root = home / "tuf" / "root" / "1.root.json"
    assert (volume / "trust" / "tuf" / "1.root.json").read_bytes() == root.read_bytes()
    assert (volume / "bin" / "stella").read_bytes() == binary.read_bytes()
    assert os.access(volume / "bin" / "stella", os.X_OK) and os.access(volume / "verify.sh", os.X_OK)
    pub = volume / "trust" / "kit-signer.pub"  # the same key signed the bundle; a receiver compares its fingerprint
    receiver = tmp_path / "receiver"
    restored = _cli(receiver, "kit", "restore", "--to", tmp_path / "received", "--key", pub, volume)
    assert restored.returncode == 0, restored.stderr
    imported = _cli(receiver, "mirror", "import", tmp_path / "received" / bundle.name, "--into", tmp_path / "mirror",
                    "--key", pub, "--trust-root", volume / "trust" / "tuf" / "1.root.json")  # fmt: skip
    assert imported.returncode == 0, imported.stderr


def test_a_mounted_iso_verifies(stella: Any, kit: dict[str, Any], tmp_path: Path) -> None:
    """Where this machine can loop-mount an ISO 9660 image (root, the iso9660 module), the mounted volume verifies."""
    require_tool("xorriso")
    image = tmp_path / "vol-02.iso"
    assert stella("kit", "iso", kit["dir"] / "vol-02", "--out", image, "--key", kit["pub"]).code == 0
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-o", "loop,ro", str(image), str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot loop-mount an ISO here: {done.stderr.strip()}")
    try:
        res = stella("kit", "verify", mount, "--key", kit["pub"], "--json")
        assert res.code == 0, res.err
        assert res.json()["volumes"][0]["volume"] == 2
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_part_replaced_by_a_link_is_refused(stella: Any, copy: Path, kit: dict[str, Any], tmp_path: Path) -> None:
    part = next(p for p in _parts(copy) if ".part" in p.name)
    outside = tmp_path / "outside"
    shutil.copy(part, outside)  # the same bytes, reached through a link: still refused
    part.unlink()
    part.symlink_to(outside)
    res = stella("kit", "verify", part.parent.parent, "--key", kit["pub"])
    assert res.code == 4 and "link or special file" in res.err
    env = {"PATH": _restricted_path(tmp_path), "LC_ALL": "C"}
    script = kit["dir"] / "vol-01" / "verify.sh"
    sh = subprocess.run(["sh", str(script), str(kit["pub"]), str(part.parent.parent)], env=env, capture_output=True)
    assert sh.returncode == 4


class _CancelAfter:
    """An observer that asks to stop once ``units`` bytes went by."""

    def __init__(self, units: int) -> None:
        self.left = units

    def start(self, phase: str, total: int | None = None) -> None:
        return None

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.left -= units

    def finish(self, phase: str) -> None:
        return None

    def check(self, check: Any) -> None:
        return None

    def is_cancelled(self) -> bool:
        return self.left <= 0


def test_a_cancelled_assemble_leaves_nothing_and_a_cancelled_restore_resumes(
    kit: dict[str, Any], tmp_path: Path
) -> None:
    from core.errors import Cancelled
    from core.home import Home
    from services import kit as kit_service

    home = Home(kit["home"])
    out = tmp_path / "kit"
    request = kit_service.AssembleRequest(tuple(map(str, kit["bundles"].values())), 96_000, "signer", out)
    with pytest.raises(Cancelled):
        kit_service.assemble(home, request, _CancelAfter(100_000))
    assert list(tmp_path.iterdir()) == []  # no kit, no temporary directory beside it
    to = tmp_path / "received"
    restore = kit_service.RestoreRequest(tuple(_volumes(kit["dir"])), to, (kit["pub"],))
    with pytest.raises(Cancelled):
        kit_service.restore(home, restore, _CancelAfter(150_000))
    assert not any((to / p.name).exists() for p in kit["bundles"].values())
    work = next(to.glob(".stella-kit-*"))
    recorded = json.loads((work / "state.json").read_bytes())["done"]
    assert recorded
    (work / sorted(recorded)[0]).unlink()  # a partial bundle removed by hand: its parts are copied again
    done = kit_service.restore(home, restore)
    assert done.parts_resumed > 0 and done.waiting == {}
    for original in kit["bundles"].values():
        assert (to / original.name).read_bytes() == original.read_bytes()


# -- the evidence locker and the timeline ------------------------------------------------------------------------------
def test_assemble_seals_the_kit_into_the_evidence_locker_and_the_sealed_bundle_verifies(
    kit: dict[str, Any], tmp_path: Path
) -> None:
    made = kit["made"]
    index_bytes = (kit["dir"] / "vol-01" / "KIT-INDEX.json").read_bytes()
    index_sha = hashlib.sha256(index_bytes).hexdigest()
    assert made["indexSha256"] == index_sha and made["tenant"] == "default"
    evidence_id = made["evidence"]["id"]
    shown = _cli(kit["home"], "evidence", "show", evidence_id, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (
        detail["kind"] == "kit"
        and detail["subject"] == made["kitId"]
        and detail["digest"] == made["evidence"]["digest"]
    )
    sealed = {a["path"]: a["sha256"] for a in detail["artifacts"]}
    volumes = [v.name for v in _volumes(kit["dir"])]
    assert sealed["KIT-INDEX.json"] == index_sha
    assert set(sealed) == {
        "KIT-INDEX.json",
        "SHA256SUMS",
        "SHA256SUMS.sig",
        *(f"{v}/KIT-VOLUME.json" for v in volumes),
        *(f"{v}/KIT-VOLUME.json.sig" for v in volumes),
    }
    for path, sha in sealed.items():
        on_disk = kit["dir"] / (path if "/" in path or path.startswith("SHA") else f"vol-01/{path}")
        assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == sha, path
    human = _cli(kit["home"], "evidence", "show", evidence_id)
    assert f"{index_sha[:16]}" in human.stdout and "KIT-INDEX.json" in human.stdout

    exported = tmp_path / "kit-evidence.tgz"
    assert _cli(kit["home"], "evidence", "export", evidence_id, "--out", exported).returncode == 0
    verified = _cli(kit["home"], "evidence", "verify", exported, "--key", kit["pub"], "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["verified"] and report["manifest"]["kind"] == "kit"
    with tarfile.open(exported) as tar:
        member = tar.extractfile("artifacts/KIT-INDEX.json")
        assert member is not None and member.read() == index_bytes
        signed = tar.extractfile("manifest.json")
        assert signed is not None
        listed = {a["path"]: a["sha256"] for a in json.loads(signed.read())["artifacts"]}
        assert listed["artifacts/KIT-INDEX.json"] == index_sha  # the signed manifest names the kit index's digest
    # An artifact changed inside the sealed bundle is caught.
    tampered = tmp_path / "tampered.tgz"
    with tarfile.open(exported) as src, tarfile.open(tampered, "w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            if info.name == "artifacts/KIT-INDEX.json":
                data = data.replace(b'"volumeSize"', b'"volumeSIZE"')
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    refused = _cli(kit["home"], "evidence", "verify", tampered, "--key", kit["pub"])
    assert refused.returncode == 4, refused.stdout + refused.stderr


def test_an_assembled_kit_is_on_the_timeline_ready_for_transfer(kit: dict[str, Any]) -> None:
    made = kit["made"]
    listed = _cli(kit["home"], "timeline", "list", "--type", "bundle.ready-for-transfer", "--json")
    assert listed.returncode == 0, listed.stderr
    events = [e for e in json.loads(listed.stdout)["events"] if e["subject"] == f"kit:{made['kitId']}"]
    assert len(events) == 1
    event = events[0]
    assert event["id"] == made["timeline"]["id"] and event["source"] == "urn:stella:default:kit"
    assert event["data"]["kitId"] == made["kitId"]
    assert event["data"]["indexSha256"] == f"sha256:{made['indexSha256']}"
    assert event["data"]["bundle"]["sha256"] == f"sha256:{made['sha256sums']}"
    assert event["data"]["evidenceId"] == made["evidence"]["id"]
    assert event["evidencedigests"] == made["evidence"]["digest"]  # linked to the evidence sealing it
    human = _cli(kit["home"], "timeline", "list")
    assert f"kit:{made['kitId']}" in human.stdout and "bundle.ready-for-transfer" in human.stdout
    linked = _cli(kit["home"], "timeline", "evidence", event["id"], "--json")
    assert linked.returncode == 0 and made["evidence"]["digest"] in linked.stdout


def test_a_refused_seal_is_reported_and_leaves_the_kit_written(kit: dict[str, Any], tmp_path: Path) -> None:
    home = kit["home"]
    assert _cli(home, "evidence", "settings", "--tenant", "field", "--quota", "1").returncode == 0
    out = tmp_path / "kit"
    args = ("kit", "assemble", "--volume-size", VOLUME_SIZE, "--key", "signer", "--tenant", "field", "--out", out)
    done = _cli(home, *args, *kit["bundles"].values())
    assert done.returncode == 0, done.stderr
    assert "not sealed into the evidence locker of tenant field" in done.stderr and "quota" in done.stderr
    assert _cli(home, "kit", "verify", out, "--key", kit["pub"]).returncode == 0  # the kit is whole
    assert json.loads(_cli(home, "evidence", "list", "--tenant", "field", "--json").stdout)["evidence"] == []
    events = json.loads(_cli(home, "timeline", "list", "--tenant", "field", "--json").stdout)["events"]
    ready = [e for e in events if e["type"].endswith("bundle.ready-for-transfer")]
    assert len(ready) == 1 and ready[0]["data"]["evidenceId"] is None and "evidencedigests" not in ready[0]
    again = _cli(home, *args[:-1], tmp_path / "again", "--json", *kit["bundles"].values())
    made = json.loads(again.stdout)
    assert again.returncode == 0 and made["evidence"]["error"]["exitCode"] == 7 and made["timeline"]["id"]


def test_no_evidence_skips_the_seal_but_not_the_timeline(kit: dict[str, Any], tmp_path: Path) -> None:
    home = kit["home"]
    before = json.loads(_cli(home, "evidence", "list", "--json").stdout)["evidence"]
    args = ("kit", "assemble", "--volume-size", "1M", "--key", "signer", "--no-evidence", "--json")
    done = _cli(home, *args, "--out", tmp_path / "kit", *kit["bundles"].values())
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["evidence"] is None and made["timeline"]["id"] == f"kit-{made['kitId']}.ready"
    assert json.loads(_cli(home, "evidence", "list", "--json").stdout)["evidence"] == before
    # A tenant that is no tenant name is refused before anything is written.
    bad = _cli(home, *args, "--tenant", "no such/tenant", "--out", tmp_path / "bad", *kit["bundles"].values())
    assert bad.returncode == 2 and "invalid tenant" in bad.stderr and not (tmp_path / "bad").exists()
