"""A mirror keeps the TUF root it was first given: a later `--trust-root` naming another sender's root is refused
(exit 6) and changes nothing; only `stella mirror trust-root --replace NEW --into DIR --yes` re-pins, printing the
old and the new root and recording the change."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_mirror import SAMPLES, _export, _import, _status, sender  # noqa: F401


@pytest.fixture
def foreign(stella: Any, tmp_path: Path) -> dict[str, Path]:
    """Another sender: its own home, signing key and TUF repository, and a mirror:full bundle of its own."""
    other = tmp_path / "foreign-home"
    assert stella("--home", other, "import", "--quiet", SAMPLES / "advisories").code == 0
    assert stella("--home", other, "keys", "generate", "evil").code == 0
    assert stella("--home", other, "tuf", "init", "--key", "evil").code == 0
    pub = tmp_path / "evil.pub"
    assert stella("--home", other, "keys", "export-public", "evil", "--out", pub).code == 0
    bundle = tmp_path / "foreign.tar.zst"
    res = stella("--home", other, "export", "run", "--profile", "mirror:full", "--key", "evil", "--out", bundle)
    assert res.code == 0, res.err
    return {"bundle": bundle, "pub": pub, "root": other / "tuf" / "root" / "1.root.json"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log(mirror: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (mirror / "trust-changes.jsonl").read_text().splitlines()]


def _pinned(stella: Any, sender: dict[str, Any], tmp_path: Path) -> str:  # noqa: F811
    full, _ = _export(stella, tmp_path, "mirror:full")
    first = _import(stella, sender, full, "--trust-root", sender["root"])
    assert first.code == 0, first.err
    return str(first.json()["stateDigest"])


def test_the_first_import_pins_its_root_and_records_it(
    stella: Any,
    sender: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    _pinned(stella, sender, tmp_path)
    mirror: Path = sender["mirror"]
    assert (mirror / "trust-root.json").read_bytes() == sender["root"].read_bytes()
    [entry] = _log(mirror)
    assert entry["action"] == "pin" and entry["previousRoot"] is None
    assert entry["root"] == {"sha256": _sha(sender["root"]), "version": 1}
    # The same root again is no change: scripts that always pass it keep working.
    again, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, again, "--trust-root", sender["root"]).code == 0
    assert len(_log(mirror)) == 1


def test_a_foreign_root_is_refused_and_the_mirror_is_unchanged(
    stella: Any,
    sender: dict[str, Any],  # noqa: F811
    foreign: dict[str, Path],
    tmp_path: Path,
) -> None:
    state = _pinned(stella, sender, tmp_path)
    mirror: Path = sender["mirror"]
    before = sorted(p.name for p in (mirror / "states").iterdir())
    res = stella(
        "mirror", "import", foreign["bundle"], "--into", mirror, "--key", sender["pub"], "--key", foreign["pub"],
        "--trust-root", foreign["root"],
    )  # fmt: skip
    assert res.code == 6, res.out + res.err
    assert f"this mirror trusts TUF root sha256:{_sha(sender['root'])} (version 1)" in res.err
    assert f"gives a different root, sha256:{_sha(foreign['root'])}" in res.err
    assert "stella mirror trust-root --replace NEW_ROOT.json --into" in res.err
    assert _status(stella, sender)["current"]["stateDigest"] == state
    assert sorted(p.name for p in (mirror / "states").iterdir()) == before
    assert not (mirror / "quarantine").exists()  # the bundle is not at fault, the flag is
    assert (mirror / "trust-root.json").read_bytes() == sender["root"].read_bytes()
    assert len(_log(mirror)) == 1


def test_replacing_the_root_is_a_separate_loud_recorded_command(
    stella: Any,
    sender: dict[str, Any],  # noqa: F811
    foreign: dict[str, Path],
    tmp_path: Path,
) -> None:
    state = _pinned(stella, sender, tmp_path)
    mirror: Path = sender["mirror"]
    unsure = stella("mirror", "trust-root", "--replace", foreign["root"], "--into", mirror)
    assert unsure.code == 2 and "--yes" in unsure.err
    assert (mirror / "trust-root.json").read_bytes() == sender["root"].read_bytes()

    res = stella("mirror", "trust-root", "--replace", foreign["root"], "--into", mirror, "--yes")
    assert res.code == 0, res.err
    assert "warning:" in res.err and "was replaced" in res.err
    assert f"old root: sha256:{_sha(sender['root'])} (version 1)" in res.out
    assert f"new root: sha256:{_sha(foreign['root'])} (version 1)" in res.out
    assert (mirror / "trust-root.json").read_bytes() == foreign["root"].read_bytes()
    pin, replace = _log(mirror)
    assert pin["action"] == "pin" and replace["action"] == "replace"
    assert replace["previousRoot"]["sha256"] == _sha(sender["root"])
    assert replace["root"]["sha256"] == _sha(foreign["root"])
    assert _status(stella, sender)["current"]["stateDigest"] == state  # re-pinning alone changes no state

    # The next import verifies from the new root, with fresh TUF state; the old sender's bundles no longer verify.
    taken = stella("mirror", "import", foreign["bundle"], "--into", mirror, "--key", foreign["pub"], "--json")
    assert taken.code == 0, taken.err
    assert _status(stella, sender)["current"]["stateDigest"] == taken.json()["stateDigest"] != state
    old_sender, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, old_sender).code == 6


def test_a_replacement_must_be_a_valid_self_signed_root(
    stella: Any,
    sender: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    _pinned(stella, sender, tmp_path)
    forged = json.loads(sender["root"].read_text())
    forged["signed"]["version"] = 2  # the signatures no longer cover it
    bad = tmp_path / "forged.root.json"
    bad.write_text(json.dumps(forged))
    res = stella("mirror", "trust-root", "--replace", bad, "--into", sender["mirror"], "--yes")
    assert res.code == 6, res.out + res.err
    assert (sender["mirror"] / "trust-root.json").read_bytes() == sender["root"].read_bytes()
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}")
    assert stella("mirror", "trust-root", "--replace", garbage, "--into", sender["mirror"], "--yes").code == 3


def test_a_mirror_from_before_pins_refuses_a_foreign_root_too(
    stella: Any,
    sender: dict[str, Any],  # noqa: F811
    foreign: dict[str, Path],
    tmp_path: Path,
) -> None:
    _pinned(stella, sender, tmp_path)
    mirror: Path = sender["mirror"]
    (mirror / "trust-root.json").unlink()  # as a mirror made before this release has it
    (mirror / "trust-changes.jsonl").unlink()
    (mirror / "current" / "meta" / "trust-root.sha256").unlink()
    res = stella(
        "mirror", "import", foreign["bundle"], "--into", mirror, "--key", foreign["pub"],
        "--trust-root", foreign["root"],
    )  # fmt: skip
    assert res.code == 6, res.out + res.err
    # Its next good import pins the root its state trusted.
    again, _ = _export(stella, tmp_path, "mirror:full")
    assert _import(stella, sender, again).code == 0
    assert (mirror / "trust-root.json").read_bytes() == sender["root"].read_bytes()
