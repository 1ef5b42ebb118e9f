"""Failure classes: each error family maps to its class once (core/failure.py); a failed run records its class, and
`stella export show` prints it.

The per-class tests raise the real errors stella raises (and the real OS errors the run engine wraps); the run tests
fail real runs: a full disk (environment) and a process killed half-way (transient, found by the next run).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.atomic import environment_failure
from core.errors import (
    BadInputError,
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    NotFoundError,
    PolicyRefusal,
    SchemaError,
    SignatureError,
    StoreLockedError,
    TrustMetadataError,
    UsageError,
)
from core.failure import FailureClass, classify
from core.planner import EmptySelection
from core.selectors import Selectors
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"


def _as_the_engine_raises(raw: OSError) -> BaseException:
    """``raw`` as core.runs raises it from a builder: an EnvironmentFailure naming the output, caused by ``raw``."""
    failure = environment_failure(raw, what="cannot build the bundle")
    assert failure is not None
    try:
        raise failure from raw
    except EnvironmentFailure as exc:
        return exc


def test_input_class_covers_usage_and_every_bad_input_error() -> None:
    empty = EmptySelection("default", "json:raw", Selectors.from_dict({}))
    for exc in (UsageError("x"), BadInputError("x"), SchemaError("x"), NotFoundError("x"), empty):
        assert classify(exc) is FailureClass.INPUT, type(exc).__name__


def test_integrity_class() -> None:
    assert classify(IntegrityError("digest mismatch")) is FailureClass.INTEGRITY


def test_signature_class() -> None:
    assert classify(SignatureError("no trusted signer")) is FailureClass.SIGNATURE


def test_trust_class() -> None:
    assert classify(TrustMetadataError("rollback")) is FailureClass.TRUST


def test_policy_class() -> None:
    assert classify(PolicyRefusal("quota")) is FailureClass.POLICY


def test_environment_class_covers_a_full_disk_and_a_permission_error() -> None:
    assert classify(EnvironmentFailure("disk full")) is FailureClass.ENVIRONMENT
    for code in (errno.ENOSPC, errno.EACCES, errno.EROFS):
        raw = OSError(code, os.strerror(code), "/out/b.tar.zst")
        assert classify(raw) is FailureClass.ENVIRONMENT
        assert classify(_as_the_engine_raises(raw)) is FailureClass.ENVIRONMENT


def test_transient_class_covers_a_locked_store_timeouts_and_retryable_errnos() -> None:
    assert classify(StoreLockedError("another process writes the store")) is FailureClass.TRANSIENT
    assert classify(TimeoutError("read timed out")) is FailureClass.TRANSIENT
    assert classify(ConnectionResetError(errno.ECONNRESET, "reset")) is FailureClass.TRANSIENT
    assert classify(_as_the_engine_raises(OSError(errno.EAGAIN, os.strerror(errno.EAGAIN)))) is FailureClass.TRANSIENT


def test_bug_class_is_every_unexpected_exception() -> None:
    for exc in (KeyError("profile"), TypeError("bad operand"), ZeroDivisionError(), AssertionError()):
        assert classify(exc) is FailureClass.BUG, type(exc).__name__
    assert classify(Cancelled("x")) is FailureClass.BUG  # a cancelled run is aborted, never failed: not a class


# -- failed runs record their class --------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs with every free block taken by ``filler``."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if not shutil.which("mount") or done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)")
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def exported(stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "k").code == 0


def test_a_run_failing_on_a_full_disk_is_class_environment(stella: Any, exported: None, full_disk: Path) -> None:
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", full_disk / "b.tar.zst")
    assert res.code == 8, res.err
    run = stella("export", "runs", "--json").json()["runs"][0]
    assert run["state"] == "failed"
    assert run["error"]["failureClass"] == "environment"
    shown = stella("export", "show", run["runId"])
    assert "failure   environment" in shown.out
    detail = stella("export", "show", run["runId"], "--json").json()
    failed = [e for e in detail["events"] if e["type"] == "failed"]
    assert failed[0]["detail"]["failure_class"] == "environment"


_KILLED_EXPORT = """
import os, signal, sys
import core.archive.writer as writer
from app.cli import main

home, out = sys.argv[1:]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

writer._write_tar = die
os.environ["STELLA_HOME"] = home
main(["export", "run", "--profile", "json:raw", "--key", "k", "--out", out])
"""


def test_a_run_whose_process_died_is_class_transient(stella: Any, exported: None, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.zst"
    killed = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(home), str(out)], cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The next run finds the dead one and fails it.
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "c.tar.zst").code == 0
    runs = stella("export", "runs", "--json").json()["runs"]
    dead = next(r for r in runs if r["state"] == "failed")
    assert dead["error"]["code"] == "interrupted"
    assert dead["error"]["failureClass"] == "transient"
    assert "failure   transient" in stella("export", "show", dead["runId"]).out
    succeeded = next(r for r in runs if r["state"] == "succeeded")
    assert succeeded["error"] is None
    assert json.dumps(succeeded).count("failureClass") == 0
