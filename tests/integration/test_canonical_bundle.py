"""`stella verify` refuses every byte of a bundle that no signature covers unless it is the writer's own.

A real signed json:raw bundle is edited the way someone with the media would: a PAX record, a user name, a set-uid
mode, uid 1000, non-zero padding, an appended directory entry, another mtime, a skippable or second zstd frame,
bytes after the end. Each is exit 4 with the member or offset named. The property tests flip, insert and delete
bytes anywhere (in the tar, recompressed as the writer would, and in the compressed file itself) and assert the
verdict is never "verified".
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.archive.canonical import BLOCK, end_of_archive, member_header, zstd_compressor
from tests.conftest import CliResult
from tests.integration.bundle_helpers import read_members, write_members
from tests.unit.test_archive_canonical import _members_end, _mutate, _not_data, _offsets, _with_field

Stella = Callable[..., CliResult]
SAMPLES = Path(__file__).parent.parent.parent / "samples"
PAYLOAD = "data/raw/advisory.pack"


@pytest.fixture
def built(stella: Stella, home: Path, tmp_path: Path) -> dict[str, Any]:
    """A signed json:raw bundle of the samples, its public key, and its tar stream decompressed."""
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "bundle.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out, "--json").code == 0
    tar = zstandard.ZstdDecompressor().decompressobj().decompress(out.read_bytes())
    return {"bundle": out, "pub": pub, "tar": tar}


def _zstd(tar: bytes, level: int = 3) -> bytes:
    """Compressed with the writer's settings (any level's frame is canonical; 3 keeps the tests quick)."""
    cobj = zstd_compressor(level).compressobj()
    return cobj.compress(tar) + cobj.flush()


def _verify(stella: Stella, built: dict[str, Any], data: bytes, name: str = "edited.tar.zst") -> CliResult:
    path = built["bundle"].parent / name
    path.write_bytes(data)
    return stella("verify", path, "--key", built["pub"], "--json")


def _refused(stella: Stella, built: dict[str, Any], data: bytes) -> dict[str, Any]:
    res = _verify(stella, built, data)
    assert res.code == 4, res.out + res.err
    report: dict[str, Any] = res.json()  # type: ignore[assignment]
    assert report["verified"] is False
    return report


def test_the_bundle_as_written_verifies_and_recompressing_it_canonically_changes_nothing(
    stella: Stella, built: dict[str, Any]
) -> None:
    assert _zstd(built["tar"], level=9) == built["bundle"].read_bytes()  # the default compressionLevel
    res = _verify(stella, built, built["bundle"].read_bytes())
    assert res.code == 0, res.out


def _set_field(start: int, value: bytes) -> Callable[[bytes], bytes]:
    def edit(tar: bytes) -> bytes:
        return _with_field(tar, _offsets(tar)[PAYLOAD], start, value)

    return edit


def _pax_before_payload(tar: bytes) -> bytes:
    at = _offsets(tar)[PAYLOAD]
    records = b"17 uname=mallory\n"
    pax = _with_field(member_header("x", 0, 0, 0), 0, 0, b"././@PaxHeader".ljust(100, b"\x00"))
    pax = _with_field(_with_field(pax, 0, 156, b"x"), 0, 124, b"%011o\x00" % len(records))
    return tar[:at] + pax + records.ljust(BLOCK, b"\x00") + tar[at:]


def _nonzero_padding(tar: bytes) -> bytes:
    at = _offsets(tar)["export.json"]
    data = bytearray(tar)
    size = int(tar[at + 124 : at + 135], 8)
    assert size % BLOCK, "export.json fills its last block; pick another member"
    data[at + BLOCK + size] = 0x41
    return bytes(data)


def _directory_appended(tar: bytes) -> bytes:
    end = _members_end(tar)
    directory = _with_field(member_header("data/", 0, 0o755, int(tar[136:147], 8)), 0, 156, b"5")
    return tar[:end] + directory + end_of_archive(end + BLOCK)


TAR_EDITS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "pax-header": (_pax_before_payload, "pax extended header"),
    "uname": (_set_field(265, b"mallory\x00"), "field uname"),
    "uid-1000": (_set_field(108, b"0001750\x00"), "field uid"),
    "gid-1000": (_set_field(116, b"0001750\x00"), "field gid"),
    "mode-04777": (_set_field(100, b"0004777\x00"), "mode 0o4777"),
    "mtime": (_set_field(136, b"00000000001\x00"), "mtime"),
    "nonzero-padding": (_nonzero_padding, "padding"),
    "directory-entry": (_directory_appended, "directory entry"),
    "after-end": (lambda tar: tar + b"smuggled", "after its end-of-archive"),
    "extra-zero-record": (lambda tar: tar + bytes(20 * BLOCK), "after its end-of-archive"),
}


@pytest.mark.parametrize("case", TAR_EDITS)
def test_a_non_canonical_tar_is_refused_with_exit_4(stella: Stella, built: dict[str, Any], case: str) -> None:
    edit, problem = TAR_EDITS[case]
    report = _refused(stella, built, _zstd(edit(built["tar"])))
    assert problem in report["error"]["message"], report


def test_mode_0755_on_a_payload_file_is_refused_by_the_verifier(stella: Stella, built: dict[str, Any]) -> None:
    """0755 is a mode the writer uses (verify.sh), so the reader takes it; the bundle's rule puts it on verify.sh
    alone."""
    report = _refused(stella, built, _zstd(_set_field(100, b"0000755\x00")(built["tar"])))
    assert report["error"]["path"] == PAYLOAD and "mode 0o755" in report["error"]["message"]


def test_every_member_moved_to_another_mtime_is_refused(stella: Stella, built: dict[str, Any]) -> None:
    """All members agree, so only the signed createdAt shows that the time was changed."""
    tar = built["tar"]
    for at in _offsets(tar).values():
        tar = _with_field(tar, at, 136, b"%011o\x00" % (int(tar[at + 136 : at + 147], 8) - 3600))
    report = _refused(stella, built, _zstd(tar))
    assert "createdAt" in report["error"]["message"]


def _skippable(payload: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A50, len(payload)) + payload


COMPRESSED_EDITS: dict[str, tuple[Callable[[bytes, bytes], bytes], str]] = {
    "skippable-before": (lambda frame, tar: _skippable(b"unsigned") + frame, "skippable frame"),
    "skippable-after": (lambda frame, tar: frame + _skippable(b"unsigned"), "after the zstd frame"),
    "second-frame": (lambda frame, tar: _zstd(tar[:BLOCK]) + _zstd(tar[BLOCK:]), "after the zstd frame"),
    "trailing-garbage": (lambda frame, tar: frame + b"garbage", "after the zstd frame"),
    "content-size": (
        lambda frame, tar: zstandard.ZstdCompressor(level=9, write_checksum=True).compress(tar),
        "zstd frame header",
    ),
    "no-checksum": (
        lambda frame, tar: zstandard.ZstdCompressor(level=9, write_content_size=False).compress(tar),
        "zstd frame header",
    ),
}


@pytest.mark.parametrize("case", COMPRESSED_EDITS)
def test_a_non_canonical_zstd_stream_is_refused_with_exit_4(stella: Stella, built: dict[str, Any], case: str) -> None:
    edit, problem = COMPRESSED_EDITS[case]
    report = _refused(stella, built, edit(built["bundle"].read_bytes(), built["tar"]))
    assert problem in report["error"]["message"], report


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete"]),
    st.floats(0, 1, exclude_max=True),
    st.integers(1, 255),
    st.integers(1, 3),
)
_PROPERTY = settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(mutation=_MUTATION)
def test_a_changed_tar_byte_is_never_verified(
    stella: Stella, built: dict[str, Any], mutation: tuple[str, float, int, int]
) -> None:
    tar = built["tar"]
    changed = _mutate(tar, mutation, built.setdefault("not_data", _not_data(tar)))
    assert changed != tar
    res = _verify(stella, built, _zstd(changed))
    assert res.code != 0 and '"verified": false' in res.out, (mutation, res.out)


@_PROPERTY
@given(mutation=_MUTATION)
def test_a_changed_compressed_byte_is_never_verified(
    stella: Stella, built: dict[str, Any], mutation: tuple[str, float, int, int]
) -> None:
    data = built["bundle"].read_bytes()
    changed = _mutate(data, mutation, [*range(16), *range(len(data) - 16, len(data))])
    assert changed != data
    res = _verify(stella, built, changed)
    assert res.code != 0 and '"verified": false' in res.out, (mutation, res.out)


_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _same_signature_other_bytes(sig: bytes) -> list[bytes]:
    """Other spellings of the same base64 signature: surrounding whitespace, and set padding bits where the last
    character has unused bits (every base64 decoder ignores them)."""
    variants = [sig + b"\n", b" " + sig, sig + b"\r\n"]
    if sig.endswith(b"="):
        core = sig.rstrip(b"=")
        last = _B64.index(core[-1:])
        variants.append(core[:-1] + _B64[last ^ 1 : (last ^ 1) + 1] + sig[len(core) :])
    return variants


@pytest.mark.parametrize("name", ["export.json.sig", "checksums.txt.sig"])
def test_a_signature_file_spelled_differently_is_refused(stella: Stella, built: dict[str, Any], name: str) -> None:
    """Signature files are the only members no digest covers, so they too have exactly one accepted form."""
    members = read_members(built["bundle"])
    sig = next(data for info, data in members if info.name == name)
    for variant in _same_signature_other_bytes(sig):
        assert base64.b64decode(variant.strip()) == base64.b64decode(sig)
        edited = [(info, variant if info.name == name else data) for info, data in members]
        path = write_members(built["bundle"].parent / "respelled.tar.zst", edited)
        res = stella("verify", path, "--key", built["pub"], "--json")
        assert res.code == 5 and '"verified": false' in res.out, (variant, res.out)
