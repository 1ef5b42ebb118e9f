"""core.atomic: whole or nothing, never through a link, I/O failures as exit 8 naming the path."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from core.atomic import PreparedFile, atomic_file, environment_failure, write_bytes
from core.errors import EnvironmentFailure, ExitCode


def test_a_failure_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(dest) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed half-way")
    assert dest.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_exclusive_refuses_a_taken_name_and_leaves_it_alone(tmp_path: Path) -> None:
    dest = tmp_path / "k.key"
    write_bytes(dest, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_bytes(dest, b"second", exclusive=True)
    assert dest.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["k.key"]


def test_a_link_at_the_destination_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "out"
    link.symlink_to(victim)
    write_bytes(link, b"new")
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_a_full_device_is_exit_8_naming_it() -> None:
    with pytest.raises(EnvironmentFailure) as err:
        write_bytes(Path("/dev/full"), b"x" * 100_000, what="cannot write the key")
    assert err.value.exit_code == ExitCode.ENVIRONMENT and err.value.path == "/dev/full"
    assert "No space left on device" in err.value.diagnostics()


def test_a_prepared_file_appears_only_on_commit(tmp_path: Path) -> None:
    dest = tmp_path / "receipt.json"
    prepared = PreparedFile.prepare(dest, b"{}")
    assert not dest.exists() and len(os.listdir(tmp_path)) == 1
    prepared.commit()
    assert dest.read_bytes() == b"{}" and os.listdir(tmp_path) == ["receipt.json"]
    with PreparedFile.prepare(tmp_path / "other.json", b"{}"):
        pass  # left without commit: discarded
    assert os.listdir(tmp_path) == ["receipt.json"]


def test_os_and_duckdb_io_errors_become_exit_8_with_the_path() -> None:
    failure = environment_failure(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/m/x"))
    assert failure is not None and failure.path == "/m/x" and "quota" in (failure.hint or "")
    wal = duckdb.TransactionException(
        "TransactionContext Error: Failed to commit: "
        'Could not write file "/h/store.duckdb.wal": No space left on device'
    )
    failure = environment_failure(wal)
    assert failure is not None and failure.path == "/h/store.duckdb.wal"
    assert failure.message.endswith("No space left on device")
    assert environment_failure(duckdb.CatalogException("Table with name x does not exist")) is None
    assert environment_failure(ValueError("a bug")) is None
