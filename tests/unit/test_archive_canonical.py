"""The reader accepts only the canonical bytes the writer emits (core.archive.canonical).

Every test starts from a real archive written by :func:`write_archive` and edits its bytes the way an attacker
with the media would: a pax record, a user name, a set-uid mode, non-zero padding, an extra directory entry, a
skippable zstd frame, a gzip file name, bytes after the end. Each is an IntegrityError (exit 4) naming the member
or the offset. The property tests flip, insert and delete bytes anywhere and assert a changed archive never reads
back as the same members.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.archive.canonical import (
    BLOCK,
    EXEC_MODE,
    FILE_MODE,
    end_of_archive,
    member_header,
    padding,
    zstd_compressor,
    zstd_frame_headers,
)
from core.archive.reader import SafeArchiveReader
from core.archive.writer import ArchiveEntry, write_archive
from core.errors import BadInputError, ExitCode, IntegrityError, StellaError

MTIME = 1_700_000_000
LONG = "data/raw/" + "osv-" * 30 + "GHSA-xxxx.json"
ENTRIES = [
    ArchiveEntry("export.json", b'{"schema":"stella.export/v1"}'),
    ArchiveEntry("verify.sh", b"#!/bin/sh\nexit 0\n", EXEC_MODE),
    ArchiveEntry("data/a.json", b'{"a":1}\n' * 40),
    ArchiveEntry(LONG, b'{"long":true}'),
    ArchiveEntry("data/\u00fc.json", b"{}"),
    ArchiveEntry("data/z.json", b'{"z":"' + b"z" * 700 + b'"}'),
]


def _plain(tmp_path: Path) -> bytes:
    path = tmp_path / "canonical.tar"
    write_archive(path, ENTRIES, mtime=MTIME, compression="none")
    return path.read_bytes()


def _zstd(tar: bytes, level: int = 3) -> bytes:
    cobj = zstd_compressor(level).compressobj()
    return cobj.compress(tar) + cobj.flush()


def _gzip(tar: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(tar)
    return buf.getvalue()


COMPRESS = {"none": lambda tar: tar, "zstd": _zstd, "gzip": _gzip}


def _read(path: Path) -> list[tuple[str, int, int, bytes]]:
    with SafeArchiveReader(path) as reader:
        return [(m.name, m.mode, m.mtime, m.stream().read()) for m in reader]


def _refused(tmp_path: Path, data: bytes) -> IntegrityError:
    path = tmp_path / "edited.tar"
    path.write_bytes(data)
    with pytest.raises(IntegrityError) as exc:
        _read(path)
    assert exc.value.exit_code == ExitCode.INTEGRITY
    return exc.value


def _offsets(tar: bytes) -> dict[str, int]:
    """Where each member's ustar header starts in a canonical tar."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for info in archive:
            found[info.name] = info.offset_data - BLOCK
    return found


def _members_end(tar: bytes) -> int:
    """Where the end-of-archive blocks start in a canonical tar."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        last = archive.getmembers()[-1]
    return last.offset_data + last.size + padding(last.size)


def _with_field(tar: bytes, header_at: int, start: int, value: bytes) -> bytes:
    """``tar`` with bytes ``start..`` of the header at ``header_at`` set to ``value`` and the checksum recomputed,
    as an attacker who knows the format would do it."""
    block = bytearray(tar[header_at : header_at + BLOCK])
    block[start : start + len(value)] = value
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\x00" % sum(block)
    return tar[:header_at] + bytes(block) + tar[header_at + BLOCK :]


# -- the writer is the definition -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.json", "x/" * 55 + "y.json", "data/\u00fc-\u00e9.json", "a" * 100, "a" * 101])
@pytest.mark.parametrize("mode", [FILE_MODE, EXEC_MODE])
def test_canonical_headers_are_what_python_tarfile_writes_in_pax_format(name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = 1234, mode, MTIME
    assert member_header(name, 1234, mode, MTIME) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_a_file_of_8_gib_gets_a_pax_size_record() -> None:
    info = tarfile.TarInfo("big.bin")
    info.size, info.mtime = 8**11, MTIME
    header = member_header("big.bin", 8**11, FILE_MODE, MTIME)
    assert header == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert b" size=8589934592\n" in header


def test_the_written_archive_is_the_canonical_bytes(tmp_path: Path) -> None:
    tar = _plain(tmp_path)
    expected = b""
    for entry in ENTRIES:
        assert isinstance(entry.source, bytes)
        size = len(entry.source)
        expected += member_header(entry.path, size, entry.mode, MTIME) + entry.source + bytes(padding(size))
    assert tar == expected + end_of_archive(len(expected))
    assert len(tar) % (20 * BLOCK) == 0


def test_the_canonical_zstd_frame_headers_are_what_the_compressor_writes_at_each_level() -> None:
    written = set()
    for level in range(1, 23):
        cobj = zstd_compressor(level).compressobj()
        written.add((cobj.compress(bytes(BLOCK)) + cobj.flush())[:6])
    assert written == zstd_frame_headers()


@pytest.mark.parametrize("level", [1, 3, 19])
def test_written_zstd_frames_start_with_a_canonical_frame_header(tmp_path: Path, level: int) -> None:
    path = tmp_path / "b.tar.zst"
    write_archive(path, ENTRIES, mtime=MTIME, compression="zstd", level=level)
    assert path.read_bytes()[:6] in zstd_frame_headers()
    assert [n for n, *_ in _read(path)] == [e.path for e in ENTRIES]


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
def test_every_written_archive_reads_back(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"b.{codec}"
    write_archive(path, ENTRIES, mtime=MTIME, compression=codec, level=9)  # type: ignore[arg-type]
    got = _read(path)
    assert [(n, mode, t) for n, mode, t, _ in got] == [(e.path, e.mode, MTIME) for e in ENTRIES]
    assert [d for *_, d in got] == [e.source for e in ENTRIES]


# -- tar layer: every header byte, padding and the end -----------------------------------------------------------


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_a_pax_header_inserted_before_a_member_is_refused(tmp_path: Path, codec: str) -> None:
    tar = _plain(tmp_path)
    at = _offsets(tar)["data/a.json"]
    records = b"30 mtime=1700000000.123456789\n"
    pax = member_header("x", 0, 0, 0)  # a ustar block to reshape into a pax header
    pax = _with_field(pax, 0, 0, b"././@PaxHeader".ljust(100, b"\x00"))
    pax = _with_field(pax, 0, 156, b"x")
    pax = _with_field(pax, 0, 124, b"%011o\x00" % len(records))
    edited = tar[:at] + pax + records + bytes(padding(len(records))) + tar[at:]
    error = _refused(tmp_path, COMPRESS[codec](edited))
    assert error.path == "data/a.json"
    assert "pax extended header" in error.message and f"offset {at}" in error.message


@pytest.mark.parametrize(
    ("field", "start", "value"),
    [
        ("uname", 265, b"mallory\x00"),
        ("gname", 297, b"wheel\x00"),
        ("uid", 108, b"0001750\x00"),  # uid 1000
        ("gid", 116, b"0001750\x00"),
        ("linkname", 157, b"/etc/passwd\x00"),
        ("devmajor", 329, b"0000000\x00"),
        ("prefix", 345, b"hidden\x00"),
        ("unused tail", 500, b"smuggled"),
        ("magic and version", 257, b"ustar\x00\x00\x00"),
    ],
)
def test_a_header_field_the_writer_leaves_fixed_is_refused_naming_it(
    tmp_path: Path, field: str, start: int, value: bytes
) -> None:
    tar = _plain(tmp_path)
    at = _offsets(tar)["data/a.json"]
    error = _refused(tmp_path, _zstd(_with_field(tar, at, start, value)))
    assert error.path == "data/a.json"
    assert f"field {field}" in error.message and f"offset {at + start}" in error.message


@pytest.mark.parametrize("mode", [0o4777, 0o666, 0o2755, 0o600])
def test_a_mode_other_than_0644_or_0755_is_refused(tmp_path: Path, mode: int) -> None:
    tar = _plain(tmp_path)
    at = _offsets(tar)["data/a.json"]
    error = _refused(tmp_path, _zstd(_with_field(tar, at, 100, b"%07o\x00" % mode)))
    assert error.path == "data/a.json"
    assert f"mode {mode:#o}" in error.message


def test_a_member_with_another_mtime_is_refused(tmp_path: Path) -> None:
    tar = _plain(tmp_path)
    at = _offsets(tar)["data/z.json"]
    error = _refused(tmp_path, _zstd(_with_field(tar, at, 136, b"%011o\x00" % (MTIME + 1))))
    assert error.path == "data/z.json"
    assert f"mtime {MTIME}" in error.message


def test_the_first_members_mtime_is_the_archives(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_plain(tmp_path))
    with SafeArchiveReader(path) as reader:
        before = reader.mtime
        names = [m.name for m in reader]
        after = reader.mtime
    assert (before, after, len(names)) == (None, MTIME, len(ENTRIES))


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_non_zero_padding_after_member_data_is_refused(tmp_path: Path, codec: str) -> None:
    tar = bytearray(_plain(tmp_path))
    at = _offsets(bytes(tar))["data/z.json"]
    size = len(ENTRIES[-1].source)  # type: ignore[arg-type]
    tar[at + BLOCK + size + 3] = ord("!")
    error = _refused(tmp_path, COMPRESS[codec](bytes(tar)))
    assert error.path == "data/z.json"
    assert "padding" in error.message and f"offset {at + BLOCK + size}" in error.message


@pytest.mark.parametrize("name", ["data", "extra"])
def test_an_appended_directory_entry_is_refused(tmp_path: Path, name: str) -> None:
    tar = _plain(tmp_path)
    end = _members_end(tar)
    directory = _with_field(member_header(name + "/", 0, EXEC_MODE, MTIME), 0, 156, b"5")
    edited = tar[:end] + directory + end_of_archive(end + BLOCK)
    error = _refused(tmp_path, _zstd(edited))
    assert error.path == name
    assert "directory entry" in error.message


def test_a_gnu_long_name_entry_is_refused(tmp_path: Path) -> None:
    tar = _plain(tmp_path)
    at = _offsets(tar)["data/a.json"]
    longname = _with_field(member_header("././@LongLink", 9, FILE_MODE, MTIME), 0, 156, b"L")
    edited = tar[:at] + longname + b"data/b.j\x00".ljust(BLOCK, b"\x00") + tar[at:]
    error = _refused(tmp_path, _zstd(edited))
    assert "GNU long name" in error.message


@pytest.mark.parametrize("extra", [bytes(BLOCK), b"\x00" * 10, b"garbage", bytes(20 * BLOCK)])
@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_bytes_after_the_end_of_archive_padding_are_refused(tmp_path: Path, extra: bytes, codec: str) -> None:
    tar = _plain(tmp_path)
    error = _refused(tmp_path, COMPRESS[codec](tar + extra))
    assert "after its end-of-archive" in error.message and f"offset {len(tar)}" in error.message


def test_end_of_archive_without_the_record_padding_is_refused(tmp_path: Path) -> None:
    tar = _plain(tmp_path)
    end = _members_end(tar)
    error = _refused(tmp_path, _zstd(tar[: end + 2 * BLOCK]))
    assert "short of the writer's zero padding" in error.message


def test_data_hidden_in_the_end_of_archive_blocks_is_refused(tmp_path: Path) -> None:
    tar = bytearray(_plain(tmp_path))
    tar[-1] = 1
    error = _refused(tmp_path, _zstd(bytes(tar)))
    assert f"offset {len(tar) - 1}" in error.message


# -- compression layer ------------------------------------------------------------------------------------------


def _skippable(payload: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A50, len(payload)) + payload


def test_a_skippable_zstd_frame_before_the_archive_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, _skippable(b"unsigned") + _zstd(_plain(tmp_path)))
    assert "skippable frame" in error.message


@pytest.mark.parametrize(
    "after",
    [_skippable(b"unsigned"), b"garbage", b"\x00" * 4],
    ids=["skippable-frame", "garbage", "zeros"],
)
def test_anything_after_the_zstd_frame_is_refused(tmp_path: Path, after: bytes) -> None:
    frame = _zstd(_plain(tmp_path))
    error = _refused(tmp_path, frame + after)
    assert "after the zstd frame" in error.message and f"offset {len(frame)}" in error.message


def test_a_second_zstd_frame_is_refused(tmp_path: Path) -> None:
    tar = _plain(tmp_path)
    # The tar split over two frames decompresses to the same stream; a bundle is one frame.
    error = _refused(tmp_path, _zstd(tar[:BLOCK]) + _zstd(tar[BLOCK:]))
    assert "after the zstd frame" in error.message


@pytest.mark.parametrize(
    "compressor",
    [
        lambda data: zstd_compressor(3).compress(data),  # one-shot: records the content size
        lambda data: __import__("zstandard").ZstdCompressor(level=3, write_checksum=False).compress(data),
    ],
    ids=["content-size", "no-checksum"],
)
def test_a_zstd_frame_header_the_writer_never_emits_is_refused(tmp_path: Path, compressor: object) -> None:
    error = _refused(tmp_path, compressor(_plain(tmp_path)))  # type: ignore[operator]
    assert "zstd frame header" in error.message


def test_the_ignored_reserved_bit_of_the_zstd_frame_descriptor_is_refused(tmp_path: Path) -> None:
    data = bytearray(_zstd(_plain(tmp_path)))
    data[4] |= 0x10  # "unused bit": a decoder must ignore it, so the frame decompresses the same
    error = _refused(tmp_path, bytes(data))
    assert "zstd frame header" in error.message


def _gzip_with(flags: int, fields: bytes, tar: bytes, mtime: int = 0) -> bytes:
    body = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = body.compress(tar) + body.flush()
    header = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", mtime) + b"\x00\xff"
    return header + fields + deflated + struct.pack("<II", zlib.crc32(tar), len(tar) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("flags", "fields", "named"),
    [
        (0x08, b"bundle.tar\x00", "FNAME"),
        (0x10, b"signed by nobody\x00", "FCOMMENT"),
        (0x04, b"\x04\x00ABCD", "FEXTRA"),
        (0x02, b"\x00\x00", "FHCRC"),
    ],
)
def test_gzip_header_fields_are_refused(tmp_path: Path, flags: int, fields: bytes, named: str) -> None:
    tar = _plain(tmp_path)
    if named == "FHCRC":
        header = b"\x1f\x8b\x08\x02\x00\x00\x00\x00\x00\xff"
        fields = struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    data = _gzip_with(flags, fields, tar)
    assert gzip.decompress(data) == tar  # any gzip reader takes it
    error = _refused(tmp_path, data)
    assert named in error.message


def test_a_gzip_mtime_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, _gzip_with(0, b"", _plain(tmp_path), mtime=1_700_000_000))
    assert "mtime" in error.message


@pytest.mark.parametrize("after", ["second-member", "zeros", "garbage"])
def test_anything_after_the_gzip_member_is_refused(tmp_path: Path, after: str) -> None:
    tar = _plain(tmp_path)
    member = _gzip(tar)
    extra = {"second-member": _gzip(b""), "zeros": bytes(16), "garbage": b"garbage"}[after]
    assert after == "garbage" or gzip.decompress(member + extra) == tar  # Python's gzip module accepts these
    error = _refused(tmp_path, member + extra)
    assert "after the gzip member" in error.message and f"offset {len(member)}" in error.message


def _ignored_padding_bits(member: bytes, at: int) -> list[int]:
    """The bits of byte ``at`` that zlib ignores: flipping one leaves the decompressed data the same."""
    ignored = []
    for bit in range(8):
        edited = bytearray(member)
        edited[at] ^= 1 << bit
        try:
            if gzip.decompress(bytes(edited)) == gzip.decompress(member):
                ignored.append(bit)
        except (EOFError, OSError, zlib.error):
            pass
    return ignored


def test_set_padding_bits_after_the_last_deflate_code_are_refused(tmp_path: Path) -> None:
    member = _gzip(_plain(tmp_path))
    last = len(member) - 9  # the deflate stream's last byte, before the 8-byte trailer
    bits = _ignored_padding_bits(member, last)
    assert bits  # a real hole: every gzip reader takes these bytes as the same archive
    for bit in bits:
        edited = bytearray(member)
        edited[last] ^= 1 << bit
        error = _refused(tmp_path, bytes(edited))
        assert "padding after the deflate stream" in error.message and f"offset {last}" in error.message


def test_a_truncated_gzip_header_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "cut.tgz"
    path.write_bytes(_gzip(_plain(tmp_path))[:6])
    with pytest.raises(BadInputError, match="truncated"):
        _read(path)


# -- property: a changed byte never reads back as the same archive ----------------------------------------------

_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete"]),
    st.floats(0, 1, exclude_max=True),
    st.integers(1, 255),
    st.integers(1, 3),
)


def _mutate(data: bytes, mutation: tuple[str, float, int, int], interesting: list[int]) -> bytes:
    kind, where, value, count = mutation
    # Half the time aim at the bytes no digest covers (headers, padding, the end), else anywhere.
    pool = interesting if value % 2 and interesting else range(len(data))
    at = pool[int(where * len(pool))]
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ value]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + bytes([value]) * count + data[at:]
    return data[:at] + data[at + count :]


def _outcome(path: Path) -> list[tuple[str, int, int, bytes]] | str:
    try:
        return _read(path)
    except StellaError as exc:
        return f"refused: exit {exc.exit_code}"


def _not_data(tar: bytes) -> list[int]:
    """Offsets of every tar byte that is not member data: headers, padding, the end-of-archive blocks."""
    data: set[int] = set()
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for info in archive:
            data.update(range(info.offset_data, info.offset_data + info.size))
    return [i for i in range(len(tar)) if i not in data]


_PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@_PROPERTY
@given(mutation=_MUTATION)
def test_a_changed_tar_byte_never_reads_back_as_the_same_archive(
    tmp_path: Path, codec: str, mutation: tuple[str, float, int, int]
) -> None:
    tar = _plain(tmp_path)
    original = _outcome(_write(tmp_path, "original", COMPRESS[codec](tar)))
    changed = _mutate(tar, mutation, _not_data(tar))
    assert changed != tar
    # The changed tar, compressed exactly as the writer would: only the tar layer differs.
    assert _outcome(_write(tmp_path, "changed", COMPRESS[codec](changed))) != original


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
@_PROPERTY
@given(mutation=_MUTATION)
def test_a_changed_compressed_byte_never_reads_back_as_the_same_archive(
    tmp_path: Path, codec: str, mutation: tuple[str, float, int, int]
) -> None:
    compressed = COMPRESS[codec](_plain(tmp_path))
    original = _outcome(_write(tmp_path, "original", compressed))
    # The frame or member header and trailer and the last bytes (where bit padding lives) are aimed at too.
    interesting = [*range(16), *range(len(compressed) - 16, len(compressed))]
    changed = _mutate(compressed, mutation, interesting)
    assert changed != compressed
    assert _outcome(_write(tmp_path, "changed", changed)) != original


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
