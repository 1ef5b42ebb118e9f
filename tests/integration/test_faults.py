"""Faults a user meets: a full disk, a read-only home, a link at an output path, a process killed half-way.

Each test drives the CLI (in-process, or a child process that is killed) against a real full device: ``/dev/full``
(every write fails with ENOSPC) always, and a tiny tmpfs filled to the last byte where this machine lets root mount
one. Each asserts exit 8 with the path in the sentence, and that nothing half-written is left: no 0-byte key, no
temporary file, the old state intact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.test_trivy_profiles import build_trivy_bundles

SAMPLES = ROOT / "samples"
FULL = Path("/dev/full")


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files and directories stella may leave beside an output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock")


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def _fill(path: Path) -> None:
    """Take every free block of ``path``'s file system."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs with every free block taken by ``filler`` (delete it to free the space)."""
    mount = tmp_path / "tiny"
    if not shutil.which("mount") or not _mount_tmpfs(mount, "512k"):
        pytest.skip("mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN); the /dev/full tests run")
    try:
        _fill(mount / "filler")
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def signer(stella: Any, tmp_path: Path) -> Path:
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return pub


def _export(stella: Any, out: Path, *extra: str) -> Any:
    return stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json", *extra)


# -- a full disk: exit 8 naming the path -------------------------------------------------------------------------------
def test_public_key_to_a_full_device_exits_8_naming_it(stella: Any, signer: Path) -> None:
    res = stella("keys", "export-public", "k", "--out", FULL)
    assert res.code == 8, res.err
    assert str(FULL) in res.err and "No space left on device" in res.err
    assert "internal error" not in res.err


def test_download_to_a_full_device_exits_8_naming_it(stella: Any, signer: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    run = _export(stella, tmp_path / "b.tar.zst").json()
    res = stella("export", "download", run["runId"], "--to", FULL)
    assert res.code == 8, res.err
    assert str(FULL) in res.err and "internal error" not in res.err


def test_a_store_whose_wal_cannot_be_written_exits_8_naming_it(stella: Any, home: Path) -> None:
    """DuckDB's write-ahead log on a full device (a link to /dev/full): the import fails with exit 8, not a bug."""
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    before = stella("data", "stats", "--json").out
    wal = home / "store.duckdb.wal"
    wal.symlink_to(FULL)
    res = stella("import", "--quiet", SAMPLES / "vex")
    assert res.code == 8, res.err
    assert str(wal) in res.err and "No space left on device" in res.err
    wal.unlink()
    assert stella("data", "stats", "--json").out == before  # nothing of the failed import was kept


def test_receipt_copy_to_a_full_device_exits_8(stella: Any, signer: Path, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("tuf", "init", "--key", "k").code == 0
    bundle = tmp_path / "m.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "k", "--out", bundle).code == 0
    mirror = tmp_path / "mirror"
    root = home / "tuf" / "root" / "1.root.json"
    res = stella(
        "mirror", "import", bundle, "--into", mirror, "--key", signer, "--trust-root", root, "--receipt-out", FULL
    )
    assert res.code == 8, res.err
    assert str(FULL) in res.err


def test_keys_generate_on_a_full_disk_leaves_no_key(stella: Any, full_disk: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("STELLA_HOME", str(full_disk / "home"))
    (full_disk / "home" / "keys").mkdir(parents=True)  # directories take no data blocks on tmpfs
    res = stella("keys", "generate", "signer")
    assert res.code == 8, res.err
    assert str(full_disk / "home" / "keys") in res.err and "No space left on device" in res.err
    assert os.listdir(full_disk / "home" / "keys") == []  # no 0-byte key, no temporary file
    (full_disk / "filler").unlink()
    assert stella("keys", "generate", "signer").code == 0  # the name is free
    assert (full_disk / "home" / "keys" / "signer.key").stat().st_size > 0


def test_export_to_a_full_disk_exits_8_and_leaves_nothing(
    stella: Any, signer: Path, full_disk: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    out = full_disk / "b.tar.zst"
    res = _export(stella, out)
    assert res.code == 8, res.err
    assert str(full_disk) in res.err and "internal error" not in res.err
    assert sorted(os.listdir(full_disk)) == ["filler"]  # no bundle, no .tmp, no .staging
    (full_disk / "filler").unlink()
    assert _export(stella, out).code == 0


def test_download_to_a_full_disk_leaves_the_old_file(
    stella: Any, signer: Path, full_disk: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    run = _export(stella, tmp_path / "b.tar.zst").json()
    old = full_disk / "copy.tar.zst"
    (full_disk / "filler").unlink()
    old.write_bytes(b"the old copy")
    _fill(full_disk / "filler")
    res = stella("export", "download", run["runId"], "--to", old)
    assert res.code == 8, res.err
    assert str(old) in res.err
    assert old.read_bytes() == b"the old copy"
    assert sorted(os.listdir(full_disk)) == ["copy.tar.zst", "filler"]


# -- a link at an output path is replaced, never written through -------------------------------------------------------
def test_download_replaces_a_link_at_the_destination(stella: Any, signer: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    bundle = tmp_path / "b.tar.zst"
    run = _export(stella, bundle).json()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    link = tmp_path / "media" / "copy.tar.zst"
    link.parent.mkdir()
    link.symlink_to(victim)
    assert stella("export", "download", run["runId"], "--to", link).code == 0
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == bundle.read_bytes()
    assert _leftovers(link.parent) == []


def test_public_key_export_replaces_a_link(stella: Any, signer: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    link = tmp_path / "out.pub"
    link.symlink_to(victim)
    assert stella("keys", "export-public", "k", "--out", link).code == 0
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == signer.read_bytes()


# -- mirror import: every output is checked before the point of no return --------------------------------------------
def test_receipt_out_into_a_missing_directory_fails_before_the_swap(
    stella: Any, signer: Path, home: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("tuf", "init", "--key", "k").code == 0
    bundle = tmp_path / "m.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "k", "--out", bundle).code == 0
    mirror = tmp_path / "mirror"
    root = home / "tuf" / "root" / "1.root.json"
    receipt = tmp_path / "missing" / "receipt.json"
    args = ["mirror", "import", bundle, "--into", mirror, "--key", signer, "--trust-root", root]
    res = stella(*args, "--receipt-out", receipt)
    assert res.code == 8, res.err
    assert str(receipt) in res.err
    status = stella("mirror", "status", mirror, "--json").json()
    assert status["current"] is None  # the mirror was not changed
    assert not (mirror / "states").exists() or list((mirror / "states").iterdir()) == []
    receipt.parent.mkdir()
    assert stella(*args, "--receipt-out", receipt).code == 0
    assert receipt.read_bytes() == next((mirror / "receipts").iterdir()).read_bytes()
    assert _leftovers(receipt.parent) == [] and _leftovers(mirror / "receipts") == []


# -- a killed export: the next run clears what it left -----------------------------------------------------------------
#: A child that runs `stella export run` and kills itself with SIGKILL half-way through writing the archive
#: (argv: home, out).
_KILLED_EXPORT = """
import os, signal, sys
import core.archive.writer as writer
from app.cli import main

home, out = sys.argv[1:]
real = writer._write_tar

def write_then_die(target, *args, **kwargs):
    target.write(b"partial archive bytes")
    target.flush()
    os.kill(os.getpid(), signal.SIGKILL)

writer._write_tar = write_then_die
os.environ["STELLA_HOME"] = home
main(["export", "run", "--profile", "json:raw", "--key", "k", "--out", out])
"""


def test_a_killed_export_leaves_temporary_files_that_the_next_run_removes(
    stella: Any, signer: Path, home: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    out = tmp_path / "out" / "b.tar.zst"
    out.parent.mkdir()
    stranger = out.parent / ".b.tar.zst.someone-else.tmp"  # not named with one of our run ids: kept
    stranger.write_bytes(b"not ours")
    killed = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(home), str(out)], cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = _leftovers(out.parent)
    assert any(n.endswith(".staging") for n in left) and any(n.endswith(".tmp") and "someone" not in n for n in left)
    assert _export(stella, out).code == 0
    assert _leftovers(out.parent) == [stranger.name]
    runs = stella("export", "runs", "--json").json()["runs"]
    assert [r["state"] for r in runs] == ["succeeded", "failed"]


# -- Trivy install: one atomic swap, recovery of a half-done one -------------------------------------------------------
#: A child that installs a Trivy bundle and kills itself at the named point (argv: bundle, cache, key, point,
#: "exchange" or "renames": whether the atomic exchange is used or the two-rename fallback is forced).
_KILLED_INSTALL = """
import os, signal, sys
from pathlib import Path
import services.trivy as trivy
from services.trust import keys_from_files

bundle, cache, key, point, how = sys.argv[1:]
if how == "renames":
    trivy._exchange = lambda a, b: False

def faults(at):
    if at == point:
        os.kill(os.getpid(), signal.SIGKILL)

trivy.install_bundle(Path(bundle), Path(cache), keys_from_files([Path(key)]), faults=faults)
"""


def _exchange_works(tmp_path: Path) -> bool:
    """Whether this file system can exchange two directories atomically (renameat2 RENAME_EXCHANGE)."""
    from services.trivy import _exchange

    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    return _exchange(a, b)


@pytest.mark.parametrize(
    ("point", "how"),
    [("before-swap", "exchange"), ("after-swap", "exchange"), ("mid-swap", "renames"), ("after-swap", "renames")],
)
def test_a_killed_trivy_install_leaves_a_database_and_the_next_run_cleans_up(
    stella: Any, tmp_path: Path, point: str, how: str
) -> None:
    bundles = build_trivy_bundles(stella, tmp_path)
    cache = tmp_path / "cache"
    assert stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"]).code == 0
    (cache / "db" / "metadata.json").write_bytes(b'{"marker": "old"}')  # tell the old database from the new
    args = [str(bundles["db"]), str(cache), str(bundles["pub"]), point, how]
    killed = subprocess.run([sys.executable, "-c", _KILLED_INSTALL, *args], cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point == "mid-swap":  # only the two-rename fallback has a moment without a database
        assert not (cache / "db").exists()
    else:
        old = (cache / "db" / "metadata.json").read_bytes() == b'{"marker": "old"}'
        assert old is (point == "before-swap")
        assert (cache / "db" / "trivy.db").stat().st_size > 0
    stages = [p for p in cache.iterdir() if p.name.startswith(".stella-install-")]
    assert len(stages) == 1
    if (point, how) == ("after-swap", "exchange") and _exchange_works(tmp_path):
        # one exchange: the old database is now where the new one was staged, under the same name
        assert (stages[0] / "db" / "metadata.json").read_bytes() == b'{"marker": "old"}'
    res = stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"])
    assert res.code == 0, res.err
    assert sorted(p.name for p in cache.iterdir()) == ["db"]
    assert (cache / "db" / "metadata.json").read_bytes() != b'{"marker": "old"}'


def test_trivy_recovery_puts_back_the_old_database(stella: Any, tmp_path: Path) -> None:
    """Killed between the two renames of the fallback: the next install (here of a bundle that fails) restores it."""
    bundles = build_trivy_bundles(stella, tmp_path)
    cache = tmp_path / "cache"
    assert stella("trivy", "install", bundles["db"], "--cache-dir", cache, "--key", bundles["pub"]).code == 0
    before = (cache / "db" / "trivy.db").read_bytes()
    args = [str(bundles["db"]), str(cache), str(bundles["pub"]), "mid-swap", "renames"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_INSTALL, *args], cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (cache / "db").exists()
    res = stella("trivy", "install", bundles["java-db"], "--cache-dir", cache, "--key", bundles["pub"])
    assert res.code == 0, res.err
    assert (cache / "db" / "trivy.db").read_bytes() == before
    assert sorted(p.name for p in cache.iterdir()) == ["db", "java-db"]


# -- a read-only home can be read --------------------------------------------------------------------------------------
def _read_only_runner() -> list[str]:
    """The command prefix that runs a shell in a private mount namespace where a bind mount can be made read-only."""
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            probe = subprocess.run(
                [*prefix, "sh", "-c", "d=$(mktemp -d) && mount --bind $d $d && mount -o remount,ro,bind $d $d"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return prefix
    pytest.skip("no private mount namespace here (unshare -m / -rm refused): cannot make a read-only home")
    raise AssertionError("unreachable")


def test_readers_work_on_a_read_only_home(stella: Any, signer: Path, home: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("trust", "add", "k", signer).code == 0
    bundle = tmp_path / "b.tar.zst"
    assert _export(stella, bundle).code == 0
    prefix = _read_only_runner()
    stella_cmd = f"{sys.executable} -m app.cli --home {home}"
    script = (
        f"mount --bind {home} {home} && mount -o remount,ro,bind {home} {home} || exit 99\n"
        f"touch {home}/probe 2>/dev/null && exit 98\n"  # the home really is read-only
        f"for c in 'data stats' 'export runs' 'keys list' 'trust list' 'verify {bundle}'; do\n"
        f'  {stella_cmd} $c --json >/dev/null 2>{tmp_path}/err || {{ echo "$c: $?"; cat {tmp_path}/err; exit 1; }}\n'
        "done\n"
        f'{stella_cmd} import --quiet {SAMPLES / "vex"} 2>{tmp_path}/err; echo "writer: $?"; cat {tmp_path}/err\n'
    )
    done = subprocess.run([*prefix, "sh", "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "writer: 8" in done.stdout and str(home) in done.stdout  # a writer is refused with exit 8 naming it


def test_trust_add_on_a_full_disk_leaves_no_entry(
    stella: Any, signer: Path, home: Path, full_disk: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STELLA_HOME", str(full_disk / "home"))
    (full_disk / "home" / "trust").mkdir(parents=True)
    res = stella("trust", "add", "partner", signer)
    assert res.code == 8, res.err
    assert str(full_disk / "home" / "trust") in res.err
    assert [p for p in (full_disk / "home" / "trust").rglob("*") if not p.is_dir()] == []
    (full_disk / "filler").unlink()
    assert stella("trust", "add", "partner", signer).code == 0


def test_mirror_import_onto_a_full_disk_exits_8_and_stages_nothing(
    stella: Any, signer: Path, home: Path, full_disk: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("tuf", "init", "--key", "k").code == 0
    bundle = tmp_path / "m.tar.zst"
    assert stella("export", "run", "--profile", "mirror:full", "--key", "k", "--out", bundle).code == 0
    mirror = full_disk / "mirror"
    root = home / "tuf" / "root" / "1.root.json"
    args = ["mirror", "import", bundle, "--into", mirror, "--key", signer, "--trust-root", root]
    for min_free in ("0", "1M"):  # with no margin the extraction itself meets the full disk
        res = stella(*args, "--min-free", min_free)
        assert res.code == 8, res.err
        assert str(mirror) in res.err and "internal error" not in res.err
        assert sorted(p.name for p in mirror.iterdir()) == [".lock"]  # nothing staged, nothing quarantined
    (full_disk / "filler").unlink()
    assert stella(*args, "--min-free", "0").code == 0


def test_import_into_a_home_on_a_full_disk_exits_8_and_keeps_the_store(
    stella: Any, full_disk: Path, monkeypatch: Any
) -> None:
    home = full_disk / "home"
    monkeypatch.setenv("STELLA_HOME", str(home))
    (full_disk / "filler").unlink()
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    before = stella("data", "stats", "--json").out
    _fill(full_disk / "filler")
    res = stella("import", "--quiet", SAMPLES / "vex", SAMPLES / "sboms")
    assert res.code == 8, res.err
    assert str(home) in res.err and "internal error" not in res.err
    (full_disk / "filler").unlink()
    assert stella("data", "stats", "--json").out == before  # the failed import left nothing in the store
