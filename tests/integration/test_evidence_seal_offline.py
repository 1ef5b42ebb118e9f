"""A sealed evidence bundle verifies with nothing but ``openssl``, ``sha256sum`` and ``python3 -I``, in a network
namespace with no interfaces (``unshare -rn``), and every tampering is refused there with stella's exit code.

The bundle is extracted as a receiver would; ``verify.sh`` and ``verify.py`` run with ``env -i`` and a ``PATH`` that
holds only ``sh``, ``openssl``, ``sha256sum`` and ``python3``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from core.contract.evidence import MANIFEST, PROOFS, SIGNATURE, TIMESTAMP
from tests import evidence_fixture
from tests.conftest import require_tool
from tests.unit.test_evidence_seal import CASES, Verdict, repack, stella_verdict, trusted

FIXTURE = evidence_fixture.FIXTURE
KEY = FIXTURE / "signer.pub"
TSA_CA = FIXTURE / "tsa-ca.pem"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command prefix: no network, an empty environment, a PATH of four tools."""
    tools = {name: require_tool(name) for name in ("openssl", "sha256sum", "python3", "sh")}
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare -rn is not permitted here")
    # `python3` may be a launcher script (pyenv's shim needs bash): link the interpreter it runs.
    real = subprocess.run([tools["python3"], "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    tools["python3"] = real.stdout.strip() or tools["python3"]
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, path in tools.items():
        os.symlink(path, bin_dir / name)
    return [unshare, "-rn", "env", "-i", f"PATH={bin_dir}"]


def _extract(archive: bytes, target: Path) -> Path:
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
    return target


def _run(sandbox: list[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*sandbox, *map(str, args)], capture_output=True, text=True, check=False, timeout=120)


def test_the_sample_verifies_offline_with_the_shell_wrapper_and_the_script(sandbox: list[str], tmp_path: Path) -> None:
    for name in evidence_fixture.BUNDLES:
        archive = (FIXTURE / f"{name}.tgz").read_bytes()
        folder = _extract(archive, tmp_path / name)
        done = _run(sandbox, "sh", folder / "verify.sh", "--key", KEY, "--tsa-ca", TSA_CA)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok    timestamp: stamped" in done.stdout and "by a trusted TSA (openssl ts -verify)" in done.stdout
        assert done.stdout.rstrip().splitlines()[-1].startswith(f"verified: evidence {'ev-sample-000'}")
        # The script also reads the archive itself, without extracting it.
        direct = _run(
            sandbox, "python3", "-I", folder / "verify.py", "--key", KEY, "--tsa-ca", TSA_CA, FIXTURE / f"{name}.tgz"
        )
        assert direct.returncode == 0, direct.stdout + direct.stderr
        assert direct.stdout.splitlines()[2:] == done.stdout.splitlines()[2:]


def test_without_the_signers_key_the_offline_verdict_is_a_signature_failure(sandbox: list[str], tmp_path: Path) -> None:
    folder = _extract((FIXTURE / "sample.tgz").read_bytes(), tmp_path / "b")
    done = _run(sandbox, "sh", folder / "verify.sh")
    assert done.returncode == 5
    assert "which is not a trusted key: pass the signer's public key with --key" in done.stdout


#: Tampering done to the extracted files, as a receiver would meet it; SHA256SUMS updated unless said otherwise.
OFFLINE = [
    "artifact bytes changed",
    "artifact bytes changed, SHA256SUMS left",
    "inclusion proof reordered",
    "consistency proof hash changed",
    "manifest edited",
    "signature bytes changed",
    "re-signed by an untrusted key",
    "timestamp for other bytes",
    "timestamp removed",
    "custody event deleted",
    "custody events reordered",
    "redacted field restored",
]


@pytest.mark.parametrize("name", OFFLINE)
def test_each_tampering_is_refused_offline_with_stellas_exit_code(
    name: str, sandbox: list[str], tmp_path: Path
) -> None:
    bundle, mutate, fix_sums, code, _check = CASES[name]
    tampered = repack((FIXTURE / f"{bundle}.tgz").read_bytes(), mutate, fix_sums=fix_sums)
    path = tmp_path / "tampered.tgz"
    path.write_bytes(tampered)
    ours = stella_verdict(path, [trusted(KEY.read_bytes())], [TSA_CA.read_bytes()])
    assert ours.code == code
    folder = _extract(tampered, tmp_path / "x")
    done = _run(sandbox, "sh", folder / "verify.sh", "--key", KEY, "--tsa-ca", TSA_CA)
    assert done.returncode == code, done.stdout + done.stderr
    assert f"NOT verified (exit {code})" in done.stdout
    if ours.check != "checksums":
        assert f"FAIL  {ours.check}:" in done.stdout


def test_the_offline_checks_never_touch_the_network_or_other_tools(sandbox: list[str], tmp_path: Path) -> None:
    # The sandbox itself is the proof: no interfaces but loopback (down), four tools on PATH. A bundle still verifies.
    probe = _run(sandbox, "python3", "-I", "-c", "import socket; socket.create_connection(('127.0.0.1', 9), 1)")
    assert probe.returncode != 0 and "Network is unreachable" in probe.stderr
    assert _run(sandbox, "sh", "-c", "command -v tar || command -v ls").returncode != 0
    names = {SIGNATURE, TIMESTAMP, MANIFEST, PROOFS}
    folder = _extract((FIXTURE / "sample.tgz").read_bytes(), tmp_path / "b")
    assert names <= {p.name for p in folder.iterdir()}
    assert _run(sandbox, "sh", folder / "verify.sh", "--key", KEY, "--tsa-ca", TSA_CA).returncode == 0
    assert Verdict(0, None) == stella_verdict(
        FIXTURE / "sample.tgz", [trusted(KEY.read_bytes())], [TSA_CA.read_bytes()]
    )
