"""Verification without stella cannot be fooled: the real verify.sh and verify-portal.sh, run with sh, sha256sum and
openssl on real bundles built by the CLI, refuse what an attacker who relays the media can do to an extracted
bundle, each with the exit code `stella verify` gives; `stella verify` checks the checksums signature too; and
`stella verify-script` hands out the trusted copy whose sha256 docs/verification.md publishes."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from core.archive.writer import ArchiveEntry, write_archive
from core.contract.bundle import HEAD_ORDER, VERIFY_SCRIPT, bundle_order
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer, cosign_blob_signature
from tests.conftest import FIXTURES, ROOT, CliResult, require_tool
from tests.integration.bundle_helpers import read_members
from tests.integration.test_contract import CASES

Stella = Callable[..., CliResult]
SCRIPT = ROOT / "core" / "bundle_files" / "verify.sh"
PORTAL_SCRIPT = ROOT / "adapters" / "devportal_files" / "verify-portal.sh"
SAMPLE = ROOT / "samples"
ALGORITHMS = ("ecdsa-p256", "ed25519")
EVIL = "echo pwned\n"
EVIL_SHA = hashlib.sha256(EVIL.encode()).hexdigest()


def _cli(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = ROOT / ".venv" / "bin" / "stella"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app"]
    env = dict(os.environ, STELLA_HOME=str(home))
    return subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, check=False)


def _extract(bundle: Path, into: Path) -> Path:
    """Unpack as `tar -xf` would (what the receiver of the media does before running the script)."""
    raw = bundle.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
        tar.extractall(into, filter="data")
    return into


@pytest.fixture(scope="module", params=ALGORITHMS)
def signed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A json:raw bundle signed with a fresh key of each algorithm: the archive, the extracted tree, the keys."""
    require_tool("openssl")
    require_tool("sha256sum")
    base = tmp_path_factory.mktemp(f"offline-{request.param}")
    home = base / "home"
    assert _cli(home, "import", "--quiet", SAMPLE / "advisories").returncode == 0
    assert _cli(home, "keys", "generate", "signer", "--algorithm", request.param).returncode == 0
    assert _cli(home, "keys", "generate", "other", "--algorithm", request.param).returncode == 0
    pub, other = base / "signer.pub", base / "other.pub"
    assert _cli(home, "keys", "export-public", "signer", "--out", pub).returncode == 0
    assert _cli(home, "keys", "export-public", "other", "--out", other).returncode == 0
    bundle = base / "bundle.tar.zst"
    res = _cli(home, "export", "run", "--profile", "json:raw", "--key", "signer", "--out", bundle)
    assert res.returncode == 0, res.stderr
    trusted = base / "stella-verify.sh"
    assert _cli(home, "verify-script", "--out", trusted).returncode == 0
    return {
        "home": home,
        "bundle": bundle,
        "tree": _extract(bundle, base / "tree"),
        "pub": pub,
        "other": other,
        "script": trusted,
        "signer": Signer.from_keystore(KeyStore(Home(home)), "signer"),
    }


def _copy(signed: dict[str, Any], tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed["tree"], tmp_path / "b"))


def _run(script: Path, key: Path, tree: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["sh", str(script), str(key)] + ([str(tree)] if tree is not None else [])
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _payload(tree: Path) -> Path:
    return sorted(p for p in (tree / "data").rglob("*") if p.is_file())[0]


def _resign(signed: dict[str, Any], tree: Path) -> None:
    """What only the key holder can do: sign whatever checksums.txt now says (defence in depth, below)."""
    data = (tree / "checksums.txt").read_bytes()
    (tree / "checksums.txt.sig").write_bytes(cosign_blob_signature(signed["signer"], data))


# -- the untouched bundle ------------------------------------------------------------------------
def test_the_untouched_bundle_verifies_with_the_trusted_copy_and_the_shipped_one(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    tree = _copy(signed, tmp_path)
    trusted = _run(signed["script"], signed["pub"], tree)
    assert trusted.returncode == 0, trusted.stderr
    assert "OK" in trusted.stdout and "checksums.txt" in trusted.stdout
    assert (tree / VERIFY_SCRIPT).read_bytes() == signed["script"].read_bytes()
    assert _run(tree / VERIFY_SCRIPT, signed["pub"]).returncode == 0  # without DIR: the script's own directory
    assert _run(signed["script"], signed["other"], tree).returncode == 5  # another key: not the signer


# -- what a relayer of the media can do, without the key ------------------------------------------
def _append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


def _replace_listed_and_fix_the_list(tree: Path) -> None:
    target = _payload(tree)
    target.write_bytes(b'{"id":"forged"}\n')
    rel = target.relative_to(tree).as_posix()
    lines = (tree / "checksums.txt").read_text().splitlines(keepends=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    fixed = [f"{digest}  {rel}\n" if line.endswith(f"  {rel}\n") else line for line in lines]
    (tree / "checksums.txt").write_text("".join(fixed))


def _crafted_path(tree: Path) -> None:
    """Swap a listed file for one whose crafted name made the old script's `grep -F` test pass.

    The old script accepted a line `S P` when `"path":"P","sha256":"S",` was a substring of export.json: a name
    spanning two manifest entries, with the second entry's digest, matches. Dropping the first entry's file and
    line kept the count of lines and the files present in agreement, and the old script said OK.
    """
    manifest = (tree / "export.json").read_text()
    entries = re.findall(
        r'\{"mediaType":"([^"]*)","path":"(data/[^"]*)","sha256":"([0-9a-f]{64})","size":(\d+)\}', manifest
    )
    (_, p1, s1, n1), (m2, p2, s2, _) = entries[0], entries[1]
    crafted = f'{p1}","sha256":"{s1}","size":{n1}}},{{"mediaType":"{m2}","path":"{p2}'
    assert f'"path":"{crafted}","sha256":"{s2}",' in manifest
    (tree / crafted).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tree / p2, tree / crafted)
    (tree / p1).unlink()
    lines = (tree / "checksums.txt").read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.endswith(f"  {p1}\n")]
    (tree / "checksums.txt").write_text("".join(sorted([*kept, f"{s2}  {crafted}\n"], key=lambda x: x[66:])))


def _head_name_in_new_directory(tree: Path) -> None:
    (tree / "x").mkdir()
    (tree / "x" / "export.json.sig").write_text("x")


def _plant(tree: Path, end: str) -> None:
    """An unlisted script, and a line for it appended to checksums.txt (ending in ``end``)."""
    (tree / "evil.sh").write_text(EVIL)
    _append(tree / "checksums.txt", f"{EVIL_SHA}  evil.sh{end}".encode())


RELAYER: dict[str, tuple[Callable[[Path], object], int]] = {
    "unlisted file at the root": (lambda t: (t / "evil.sh").write_text(EVIL), 4),
    "unlisted file in a payload directory": (lambda t: (t / "data" / "extra.json").write_text("{}"), 4),
    "unlisted file named like a head file, in a subdirectory": (
        lambda t: (t / "data" / "checksums.txt").write_text("x"),
        4,
    ),
    "unlisted file named like a head file, in a new directory": (_head_name_in_new_directory, 4),
    "extra empty directory": (lambda t: (t / "data" / "empty").mkdir(), 4),
    "symlink to a file outside": (lambda t: (t / "data" / "link").symlink_to("/etc/passwd"), 4),
    "file name with a newline": (lambda t: (t / "data" / "a\nb").write_text("x"), 4),
    "listed file removed": (lambda t: _payload(t).unlink(), 4),
    "listed file flipped": (lambda t: _payload(t).write_bytes(b"changed"), 4),
    "listed file replaced and checksums.txt edited to match": (_replace_listed_and_fix_the_list, 5),
    "unlisted file added to checksums.txt": (lambda t: _plant(t, "\n"), 5),
    "unlisted file on a last line without a newline": (lambda t: _plant(t, ""), 5),
    "CRLF line endings": (
        lambda t: (t / "checksums.txt").write_bytes((t / "checksums.txt").read_bytes().replace(b"\n", b"\r\n")),
        5,
    ),
    "a duplicated line": (
        lambda t: _append(t / "checksums.txt", (t / "checksums.txt").read_bytes().splitlines(keepends=True)[0]),
        5,
    ),
    "a crafted path matching the old grep substring": (_crafted_path, 5),
    "checksums.txt.sig missing": (lambda t: (t / "checksums.txt.sig").unlink(), 4),
    "checksums.txt.sig is export.json.sig": (
        lambda t: shutil.copy(t / "export.json.sig", t / "checksums.txt.sig"),
        5,
    ),
    "checksums.txt.sig not base64": (lambda t: (t / "checksums.txt.sig").write_text("not base64!"), 5),
    "export.json.sig missing": (lambda t: (t / "export.json.sig").unlink(), 5),
    "export.json edited": (
        lambda t: (t / "export.json").write_bytes((t / "export.json").read_bytes().replace(b"default", b"defaulT")),
        5,
    ),
    "provenance.json flipped": (
        lambda t: (t / "provenance.json").write_bytes((t / "provenance.json").read_bytes()[:-1] + b" "),
        4,
    ),
}


@pytest.mark.parametrize("attack", sorted(RELAYER))
def test_the_trusted_script_refuses_what_a_relayer_can_do(signed: dict[str, Any], tmp_path: Path, attack: str) -> None:
    tree = _copy(signed, tmp_path)
    mutate, code = RELAYER[attack]
    mutate(tree)
    res = _run(signed["script"], signed["pub"], tree)
    assert res.returncode == code, res.stdout + res.stderr
    assert "FAILED" in res.stderr and "OK" not in res.stdout


def test_a_listed_file_replaced_by_a_symlink_is_refused(signed: dict[str, Any], tmp_path: Path) -> None:
    tree = _copy(signed, tmp_path)
    target = _payload(tree)
    copy = tmp_path / "same-bytes"
    shutil.copy(target, copy)
    target.unlink()
    target.symlink_to(copy)  # the same bytes: sha256sum -c alone would say OK
    res = _run(signed["script"], signed["pub"], tree)
    assert res.returncode == 4 and "links or special files" in res.stderr


# -- what even the key holder cannot get past: checksums.txt is read in one form only ------------------
def _lines(tree: Path) -> list[bytes]:
    return (tree / "checksums.txt").read_bytes().splitlines(keepends=True)


NONCANONICAL: dict[str, Callable[[Path], bytes]] = {
    "no final newline": lambda t: b"".join(_lines(t))[:-1],
    "CRLF": lambda t: b"".join(_lines(t)).replace(b"\n", b"\r\n"),
    "CR on one line": lambda t: b"".join(_lines(t)[:-1]) + _lines(t)[-1].replace(b"\n", b"\r\n"),
    "a duplicated line": lambda t: b"".join(_lines(t)) + _lines(t)[-1],
    "unsorted": lambda t: b"".join(reversed(_lines(t))),
    "uppercase hex": lambda t: b"".join([_lines(t)[0][:64].upper() + _lines(t)[0][64:], *_lines(t)[1:]]),
    "one space": lambda t: b"".join([_lines(t)[0].replace(b"  ", b" ", 1), *_lines(t)[1:]]),
    "binary-mode star": lambda t: b"".join([_lines(t)[0].replace(b"  ", b" *", 1), *_lines(t)[1:]]),
    "a blank line": lambda t: b"\n" + b"".join(_lines(t)),
    "a NUL byte": lambda t: b"".join(_lines(t)).replace(b"  ", b"  \x00", 1),
    "a dot-dot path": lambda t: b"".join(_lines(t)) + b"0" * 64 + b"  data/../export.json\n",
    "an absolute path": lambda t: b"".join(_lines(t)) + b"0" * 64 + b"  /etc/passwd\n",
    "an empty component": lambda t: b"".join(_lines(t)) + b"0" * 64 + b"  data//x\n",
    "a backslash-escaped line": lambda t: b"\\" + b"".join(_lines(t)),
    "export.json not listed": lambda t: b"".join(line for line in _lines(t) if not line.endswith(b"  export.json\n")),
}


@pytest.mark.parametrize("form", sorted(NONCANONICAL))
def test_a_signed_but_noncanonical_checksums_txt_is_refused(signed: dict[str, Any], tmp_path: Path, form: str) -> None:
    tree = _copy(signed, tmp_path)
    (tree / "checksums.txt").write_bytes(NONCANONICAL[form](tree))
    _resign(signed, tree)
    res = _run(signed["script"], signed["pub"], tree)
    assert res.returncode == 4, res.stdout + res.stderr
    assert "FAILED" in res.stderr


def test_usage_errors_exit_2(signed: dict[str, Any], tmp_path: Path) -> None:
    assert _run(signed["script"], tmp_path / "missing.pub").returncode == 2
    assert _run(signed["script"], signed["pub"], tmp_path / "missing").returncode == 2
    assert subprocess.run(["sh", str(signed["script"])], capture_output=True, check=False).returncode == 2


# -- every profile's bundle passes the trusted script ---------------------------------------------
@pytest.mark.parametrize("profile", sorted(CASES))
def test_every_profiles_bundle_passes_the_trusted_script(stella: Stella, tmp_path: Path, profile: str) -> None:
    require_tool("openssl")
    require_tool("sha256sum")
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    build, _ = CASES[profile]
    tree = _extract(build(stella, tmp_path, profile), tmp_path / "tree")
    res = _run(SCRIPT, pub, tree)
    assert res.returncode == 0, (profile, res.stderr)
    (tree / "unlisted").write_text("x")
    assert _run(SCRIPT, pub, tree).returncode == 4


# -- stella verify checks the checksums signature --------------------------------------------------
def _archive(signed: dict[str, Any], tree: Path, out: Path) -> Path:
    """A canonical archive of ``tree``, in bundle order with the bundle's mtime, as the writer would lay it out."""
    names = [p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()]
    head = [n for n in HEAD_ORDER if n in names]
    rest = sorted((n for n in names if n not in head), key=bundle_order)
    entries = [ArchiveEntry(n, tree / n, 0o755 if n == VERIFY_SCRIPT else 0o644) for n in head + rest]
    mtime = read_members(signed["bundle"])[0][0].mtime
    write_archive(out, entries, mtime=int(mtime), compression="zstd")
    return out


def test_stella_verify_accepts_the_rearchived_untouched_tree(
    stella: Stella, signed: dict[str, Any], tmp_path: Path
) -> None:
    tree = _copy(signed, tmp_path)
    res = stella("verify", _archive(signed, tree, tmp_path / "same.tar.zst"), "--key", signed["pub"])
    assert res.code == 0, res.out + res.err


@pytest.mark.parametrize(
    ("attack", "code"),
    [("missing", 4), ("export.json.sig in its place", 5), ("signed by another key", 5), ("not base64", 5)],
)
def test_stella_verify_checks_the_checksums_signature(
    stella: Stella, signed: dict[str, Any], tmp_path: Path, attack: str, code: int
) -> None:
    tree = _copy(signed, tmp_path)
    sig = tree / "checksums.txt.sig"
    if attack == "missing":
        sig.unlink()
    elif attack == "export.json.sig in its place":
        shutil.copy(tree / "export.json.sig", sig)
    elif attack == "signed by another key":
        other = Signer.from_keystore(KeyStore(Home(signed["home"])), "other")
        sig.write_bytes(cosign_blob_signature(other, (tree / "checksums.txt").read_bytes()))
    else:
        sig.write_text("!!")
    res = stella("verify", _archive(signed, tree, tmp_path / "t.tar.zst"), "--key", signed["pub"], "--json")
    assert res.code == code, res.out + res.err
    report: Any = res.json()
    assert report["verified"] is False and report["error"]["path"] == "checksums.txt.sig"


# -- devportal: verify-portal.sh ------------------------------------------------------------------
@pytest.fixture
def portal(stella: Stella, tmp_path: Path) -> dict[str, Any]:
    """A devportal bundle whose portal holds legal names with `{`, `,` and a space, extracted."""
    require_tool("openssl")
    require_tool("sha256sum")
    root = Path(shutil.copytree(FIXTURES / "devportal" / "portal", tmp_path / "src"))
    for name in ("assets/{logo},v2.svg", "guides/a b, {odd} name.html"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("<p>legal</p>\n")
    assert stella("devportal", "import", root, "--portal", "petstore").code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "bundle.tgz"
    res = stella("devportal", "export", "--portal", "petstore", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    trusted = tmp_path / "stella-verify-portal.sh"
    assert stella("verify-script", "--devportal", "--out", trusted).code == 0
    return {"tree": _extract(out, tmp_path / "tree"), "pub": pub, "script": trusted}


def test_verify_portal_accepts_legal_names_with_braces_and_commas(portal: dict[str, Any]) -> None:
    tree = portal["tree"]
    assert (tree / "portal" / "assets" / "{logo},v2.svg").is_file()
    res = _run(portal["script"], portal["pub"], tree)
    assert res.returncode == 0, res.stderr
    assert (tree / "verify-portal.sh").read_bytes() == portal["script"].read_bytes()
    assert _run(SCRIPT, portal["pub"], tree).returncode == 0  # the outer bundle contract too


PORTAL_ATTACKS: dict[str, tuple[Callable[[Path], object], int]] = {
    "unlisted page": (lambda t: (t / "portal" / "evil.html").write_text("<script>x</script>"), 4),
    "unlisted file named like a head file, in a subdirectory": (
        lambda t: (t / "portal" / "manifest.json").write_text("{}"),
        4,
    ),
    "unlisted file matching a head file as a regex": (lambda t: (t / "manifestXjson").write_text("{}"), 4),
    "extra empty directory": (lambda t: (t / "portal" / "empty").mkdir(), 4),
    "symlink": (lambda t: (t / "portal" / "link").symlink_to("/etc/passwd"), 4),
    "page with braces flipped": (lambda t: (t / "portal" / "assets" / "{logo},v2.svg").write_text("<p>x</p>\n"), 4),
    "manifest.json edited": (
        lambda t: (t / "manifest.json").write_bytes(
            (t / "manifest.json").read_bytes().replace(b"petstore", b"petstorE")
        ),
        4,
    ),
    "manifest.dsse.json missing": (lambda t: (t / "manifest.dsse.json").unlink(), 5),
}


@pytest.mark.parametrize("attack", sorted(PORTAL_ATTACKS))
def test_verify_portal_refuses(portal: dict[str, Any], attack: str) -> None:
    tree = portal["tree"]
    mutate, code = PORTAL_ATTACKS[attack]
    mutate(tree)
    res = _run(portal["script"], portal["pub"], tree)
    assert res.returncode == code, res.stdout + res.stderr


# -- stella verify-script ------------------------------------------------------------------------
def _published(script: str) -> str:
    text = (ROOT / "docs" / "verification.md").read_text(encoding="utf-8")
    found = re.search(rf"`([0-9a-f]{{64}})`\s+`{re.escape(script)}`", text)
    assert found, f"docs/verification.md publishes no sha256 for {script}"
    return found.group(1)


@pytest.mark.parametrize(("flags", "shipped"), [((), SCRIPT), (("--devportal",), PORTAL_SCRIPT)])
def test_verify_script_prints_the_shipped_script_whose_digest_the_docs_publish(
    stella: Stella, tmp_path: Path, flags: tuple[str, ...], shipped: Path
) -> None:
    res = stella("verify-script", *flags)
    assert res.code == 0, res.err
    assert res.out.encode() == shipped.read_bytes()
    out = tmp_path / "v.sh"
    assert stella("verify-script", *flags, "--out", out).code == 0
    assert out.read_bytes() == shipped.read_bytes() and os.access(out, os.X_OK)
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == _published(shipped.name)
    report: Any = stella("verify-script", *flags, "--json").json()
    assert report["sha256"] == _published(shipped.name) and report["text"].encode() == shipped.read_bytes()


def test_the_copy_inside_a_bundle_is_called_untrusted_in_its_readme(signed: dict[str, Any]) -> None:
    readme = (signed["tree"] / "README.txt").read_text()
    assert "stella verify-script" in readme and "checksums.txt.sig" in readme
    assert base64.b64decode((signed["tree"] / "checksums.txt.sig").read_bytes(), validate=True)


def test_a_rewritten_bundle_is_signed_again_checksums_included(signed: dict[str, Any], tmp_path: Path) -> None:
    """core.bundle_rewrite re-derives every signature: the trusted script accepts its output and its new list."""
    from core.bundle_rewrite import rewrite_bundle

    out = tmp_path / "rewritten.tar.zst"
    rewrite_bundle(signed["bundle"], out, signed["signer"], {}, add={"data/added.json": (b"{}\n", "application/json")})
    tree = _extract(out, tmp_path / "tree")
    assert "  data/added.json\n" in (tree / "checksums.txt").read_text()
    res = _run(signed["script"], signed["pub"], tree)
    assert res.returncode == 0, res.stderr


def test_verify_script_out_replaces_a_link_instead_of_following_it(stella: Stella, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "stella-verify.sh"
    out.symlink_to(victim)
    assert stella("verify-script", "--out", out).code == 0
    assert victim.read_text() == "keep me\n"
    assert not out.is_symlink() and out.read_bytes() == SCRIPT.read_bytes()
    assert stella("verify-script", "--out", tmp_path / "missing" / "v.sh").code == 8
