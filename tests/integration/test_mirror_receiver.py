"""A new operator's first mirror, through the CLI: the sender's `tuf init` and `tuf status` say which root file the
receiver pins, a fresh receiver home imports without any key setup (its receipt key is made and named), the
receipt it signed is the base of the next delta once the sender trusts that key, `mirror query --id` finds an
advisory by a CVE alias as `data show` does, and `mirror rollback` names both states and asks before it acts.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
GHSA = SAMPLES / "advisories" / "GHSA-mp6f-p9gp-vpj9.json"  # a real GHSA advisory whose alias is CVE-2020-25792


@pytest.fixture
def sender(stella: Any, home: Path, tmp_path: Path) -> dict[str, Any]:
    """A sender home with the sample advisories, a signer and a TUF repository; the receiver's home is apart."""
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("keys", "generate", "signer").code == 0
    init = stella("tuf", "init", "--key", "signer")
    assert init.code == 0, init.err
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    return {
        "pub": pub,
        "init": init,
        "receiver": tmp_path / "receiver-home",
        "mirror": tmp_path / "mirror",
        "tmp": tmp_path,
    }


def _export(stella: Any, sender: dict[str, Any], profile: str, *extra: str | Path) -> Path:
    out: Path = sender["tmp"] / f"{profile.replace(':', '-')}-{len(list(sender['tmp'].glob('*.tar.zst')))}.tar.zst"
    result = stella("export", "run", "--profile", profile, "--key", "signer", "--out", out, *extra, "--json")
    assert result.code == 0, result.err
    return out


def _on_a_terminal(mirror: Path, answer: str) -> tuple[int, str]:
    """`stella mirror rollback DIR` on a terminal (stdin, stdout, stderr), typing ``answer``: exit code, output."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "stella"), "mirror", "rollback", mirror],
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    os.write(primary, answer.encode())
    out = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    return proc.wait(timeout=60), out.decode(errors="replace").replace("\r\n", "\n")


def _receive(stella: Any, sender: dict[str, Any], bundle: Path, *extra: str | Path) -> Any:
    return stella(
        "mirror", "import", bundle, "--into", sender["mirror"], "--key", sender["pub"], "--home", sender["receiver"],
        *extra,
    )  # fmt: skip


def test_tuf_init_and_status_say_which_root_file_the_receiver_pins(
    stella: Any, sender: dict[str, Any], home: Path
) -> None:
    root = home / "tuf" / "root" / "1.root.json"
    assert root.is_file()
    assert f"root file: {root}" in sender["init"].out
    assert "--trust-root 1.root.json" in sender["init"].out
    status = stella("tuf", "status")
    assert status.code == 0 and f"root file: {root}" in status.out
    assert stella("tuf", "status", "--json").json()["rootPath"] == str(root)
    assert stella("keys", "generate", "signer2").code == 0
    rotated = stella("tuf", "rotate", "root", "--key", "signer2", "--json")
    assert rotated.code == 0, rotated.err
    assert rotated.json()["rootPath"] == str(home / "tuf" / "root" / "2.root.json")
    assert stella("tuf", "status", "--json").json()["rootPath"] == rotated.json()["rootPath"]


def test_a_fresh_receiver_imports_and_its_new_receipt_key_bases_the_next_delta(
    stella: Any, sender: dict[str, Any], home: Path
) -> None:
    root = stella("tuf", "status", "--json").json()["rootPath"]
    full = _export(stella, sender, "mirror:full")
    first = _receive(stella, sender, full, "--trust-root", root)
    assert first.code == 0, first.err
    assert "created key 'receipt'" in first.err and "stella keys export-public receipt" in first.err
    assert (sender["receiver"] / "keys" / "receipt.pub").is_file()

    # The sender trusts the receiver's receipt key and builds the delta on the receipt.
    receiver_pub = sender["tmp"] / "receiver.pub"
    exported = stella("keys", "export-public", "receipt", "--out", receiver_pub, "--home", sender["receiver"])
    assert exported.code == 0, exported.err
    assert stella("trust", "add", "receiver", receiver_pub).code == 0
    assert stella("import", "--quiet", SAMPLES / "advisories" / "ghsa-upstream").code == 0
    receipt = sender["mirror"] / "current" / "meta" / "receipt.json"
    delta = _export(stella, sender, "mirror:delta", "--base", receipt)
    second = _receive(stella, sender, delta, "--json")
    assert second.code == 0, second.err
    assert "created key" not in second.err  # the key made on first use signs from then on
    assert second.json()["receiptKey"] == {"name": "receipt", "created": False}
    assert second.json()["sequence"] == 1


def test_a_receiver_whose_first_attempt_failed_still_hears_which_key_signs(stella: Any, sender: dict[str, Any]) -> None:
    full = _export(stella, sender, "mirror:full")
    refused = _receive(stella, sender, full)  # a first import needs --trust-root
    assert refused.code == 2 and "--trust-root" in refused.err
    root = stella("tuf", "status", "--json").json()["rootPath"]
    imported = _receive(stella, sender, full, "--trust-root", root)
    assert imported.code == 0, imported.err
    assert "import receipts are signed by key 'receipt'" in imported.err
    assert "stella keys export-public receipt" in imported.err


def test_a_receiver_with_several_keys_is_asked_which_signs(stella: Any, sender: dict[str, Any]) -> None:
    for name in ("one", "two"):
        assert stella("keys", "generate", name, "--home", sender["receiver"]).code == 0
    full = _export(stella, sender, "mirror:full")
    root = stella("tuf", "status", "--json").json()["rootPath"]
    refused = _receive(stella, sender, full, "--trust-root", root)
    assert refused.code == 2 and "--receipt-key" in refused.err and "one, two" in refused.err
    assert not (sender["mirror"] / "current").exists()
    assert _receive(stella, sender, full, "--trust-root", root, "--receipt-key", "two").code == 0


def test_mirror_query_finds_an_advisory_by_its_cve_alias_as_data_show_does(stella: Any, sender: dict[str, Any]) -> None:
    cve = json.loads(GHSA.read_text())["aliases"][0]
    assert cve.startswith("CVE-")
    shown = stella("data", "show", cve, "--json")
    assert shown.code == 0, shown.err
    assert "GHSA-mp6f-p9gp-vpj9" in shown.out
    full = _export(stella, sender, "mirror:full")
    root = stella("tuf", "status", "--json").json()["rootPath"]
    assert _receive(stella, sender, full, "--trust-root", root).code == 0
    hits = stella("mirror", "query", sender["mirror"], "--id", cve, "--json")
    assert hits.code == 0, hits.err
    found = hits.json()["documents"]
    assert [d["documentId"] for d in found] == ["GHSA-mp6f-p9gp-vpj9"]
    assert cve in found[0]["aliases"]
    raw = stella("mirror", "query", sender["mirror"], "--id", cve, "--raw")
    assert json.loads(raw.out)["id"] == "GHSA-mp6f-p9gp-vpj9"
    assert stella("mirror", "query", sender["mirror"], "--id", "CVE-0000-00000", "--json").json()["documents"] == []


def test_rollback_names_both_states_and_needs_a_confirmation(stella: Any, sender: dict[str, Any]) -> None:
    root = stella("tuf", "status", "--json").json()["rootPath"]
    full = _export(stella, sender, "mirror:full")
    assert _receive(stella, sender, full, "--trust-root", root).code == 0
    receiver_pub = sender["tmp"] / "receiver.pub"
    assert stella("keys", "export-public", "receipt", "--out", receiver_pub, "--home", sender["receiver"]).code == 0
    assert stella("trust", "add", "receiver", receiver_pub).code == 0
    first = stella("mirror", "status", sender["mirror"], "--json").json()["current"]
    assert stella("import", "--quiet", SAMPLES / "advisories" / "ghsa-upstream").code == 0
    delta = _export(stella, sender, "mirror:delta", "--base", sender["mirror"] / "current" / "meta" / "receipt.json")
    claimed = stella("inspect", delta, "--json").json()  # a delta names its base, unverified
    assert claimed["verified"] is False and claimed["profile"] == "mirror:delta"
    assert claimed["base"]["stateDigest"] == first["stateDigest"] and claimed["base"]["sequence"] == 0
    assert f"base        state {first['stateDigest'][:12]} (sequence 0)" in stella("inspect", delta).out
    assert _receive(stella, sender, delta).code == 0
    second = stella("mirror", "status", sender["mirror"], "--json").json()["current"]

    refused = stella("mirror", "rollback", sender["mirror"])
    assert refused.code == 2 and "--yes" in refused.err
    assert f"current: state {second['stateDigest'][:12]} (sequence 1" in refused.err
    assert f"rollback makes current: state {first['stateDigest'][:12]} (sequence 0" in refused.err
    assert stella("mirror", "status", sender["mirror"], "--json").json()["current"] == second  # unchanged

    # On a terminal it asks; anything but yes changes nothing (exit 130), yes rolls back.
    declined = _on_a_terminal(sender["mirror"], "n\n")
    assert declined[0] == 130 and "make state " + first["stateDigest"][:12] + " current again? [y/N]" in declined[1]
    assert stella("mirror", "status", sender["mirror"], "--json").json()["current"] == second
    confirmed = _on_a_terminal(sender["mirror"], "y\n")
    assert confirmed[0] == 0 and "rolled back: current state " + first["stateDigest"][:12] in confirmed[1]
    assert (
        stella("mirror", "status", sender["mirror"], "--json").json()["current"]["stateDigest"] == first["stateDigest"]
    )

    done = stella("mirror", "rollback", sender["mirror"], "--yes", "--json")  # and forward again, without asking
    assert done.code == 0, done.err
    assert done.json()["stateDigest"] == second["stateDigest"]
