"""The bbolt writer (core.bbolt.write_bbolt) and the structural checker (verify.bbolt_check).

Round trips read the file back with the checker's own reader, which parses the format independently of the
writer. Damaged files are made here by patching bytes at offsets the tests compute themselves from the format
(page header, leaf element, bucket header), then fed to the checker. Interop with real bbolt/Trivy is a later,
separate step; these tests do not need Go.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.bbolt import Bucket, fnv1a64, meta_bytes, write_bbolt
from core.errors import BadInputError, ExitCode, IntegrityError
from verify.bbolt_check import check_bbolt, read_bbolt

PS = 4096


def _roundtrip(tmp_path: Path, tree: Bucket) -> Path:
    path = tmp_path / "trivy.db"
    write_bbolt(path, tree)
    assert read_bbolt(path) == tree
    return path


def _header(raw: bytes | bytearray, pgid: int) -> tuple[int, int, int, int]:
    return struct.unpack_from("<QHHI", raw, pgid * PS)


def _leaf_element(raw: bytes | bytearray, pgid: int, i: int) -> tuple[int, int, int, int, int]:
    """(flags, key offset, ksize, value offset, vsize) of leaf element i, as absolute file offsets."""
    at = pgid * PS + 16 + 16 * i
    flags, pos, ksize, vsize = struct.unpack_from("<IIII", raw, at)
    return flags, at + pos, ksize, at + pos + ksize, vsize


def _meta_root(raw: bytes | bytearray) -> int:
    root: int = struct.unpack_from("<Q", raw, 16 + 16)[0]
    return root


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _big_bucket(n: int) -> dict[bytes, bytes]:
    return {b"CVE-2024-%06d" % i: b'{"Severity":"HIGH","n":%d}' % i for i in range(n)}


# ---------------------------------------------------------------- round trips


def test_empty_database_has_metas_freelist_and_an_empty_root_leaf(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {})
    raw = path.read_bytes()
    assert len(raw) == 4 * PS
    assert _header(raw, 0) == (0, 0x04, 0, 0)
    assert _header(raw, 1) == (1, 0x04, 0, 0)
    assert _header(raw, 2) == (2, 0x10, 0, 0)
    assert _header(raw, 3) == (3, 0x02, 0, 0)
    magic, version, page_size, flags, root, seq, freelist, hwm, txid, checksum = struct.unpack_from(
        "<IIIIQQQQQQ", raw, 16
    )
    assert (magic, version, page_size, flags, root, seq, freelist, hwm, txid) == (
        0xED0CDAED,
        2,
        PS,
        0,
        3,
        0,
        2,
        4,
        0,
    )
    assert checksum == fnv1a64(raw[16:72]) != 0
    report = check_bbolt(path)
    assert (report.buckets, report.keys, report.high_water, report.meta_used, report.txid) == (0, 0, 4, 1, 1)


def test_fnv1a64_matches_published_vectors() -> None:
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_one_bucket_round_trips_and_is_inline(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"vulnerability": {b"CVE-2024-0001": b'{"Title":"x"}'}})
    report = check_bbolt(path)
    assert (report.buckets, report.inline_buckets, report.keys) == (1, 1, 1)
    raw = path.read_bytes()
    flags, _k, _ks, voff, vsize = _leaf_element(raw, report.root_pgid, 0)
    assert flags == 0x01
    root, seq = struct.unpack_from("<QQ", raw, voff)
    assert (root, seq) == (0, 0)  # inline: the bucket's leaf page follows in the value
    assert struct.unpack_from("<QHHI", raw, voff + 16)[1:3] == (0x02, 1)
    assert vsize == 16 + 16 + 16 + len(b"CVE-2024-0001") + len(b'{"Title":"x"}')


def test_nested_buckets_round_trip(tmp_path: Path) -> None:
    tree: Bucket = {
        b"data-source": {b"debian 12": b'{"ID":"debian"}'},
        b"debian 12": {
            b"openssl": {b"CVE-2024-1": b"{}", b"CVE-2024-2": b"x" * 3000},
            b"zlib": {b"CVE-2024-3": b"{}"},
            b"empty": {},
        },
        b"vulnerability": _big_bucket(50),
    }
    path = _roundtrip(tmp_path, tree)
    report = check_bbolt(path)
    assert report.buckets == 6
    assert report.keys == 1 + 3 + 50
    assert report.max_bucket_depth == 2
    # data-source, zlib and empty are small and have no sub-buckets; debian 12 has sub-buckets, openssl and
    # vulnerability are above a quarter page.
    assert report.inline_buckets == 3


def test_inline_rule_is_a_quarter_page(tmp_path: Path) -> None:
    # header 16 + element 16 + key 1 + value: 991 bytes of value make exactly 1024.
    at_limit = tmp_path / "at.db"
    write_bbolt(at_limit, {b"b": {b"k": b"v" * 991}})
    assert check_bbolt(at_limit).inline_buckets == 1
    over = tmp_path / "over.db"
    write_bbolt(over, {b"b": {b"k": b"v" * 992}})
    assert check_bbolt(over).inline_buckets == 0
    assert read_bbolt(over) == {b"b": {b"k": b"v" * 992}}


def test_many_keys_build_a_multi_level_tree(tmp_path: Path) -> None:
    tree: Bucket = {b"vulnerability": _big_bucket(20_000)}
    path = _roundtrip(tmp_path, tree)
    report = check_bbolt(path)
    assert report.keys == 20_000
    assert report.branch_pages >= 3  # at least two branch pages under a branch root
    raw = path.read_bytes()
    flags, _k, _ks, voff, _vs = _leaf_element(raw, report.root_pgid, 0)
    assert flags == 0x01
    bucket_root = struct.unpack_from("<Q", raw, voff)[0]
    assert _header(raw, bucket_root)[1] == 0x01
    first_child = struct.unpack_from("<IIQ", raw, bucket_root * PS + 16)[2]
    assert _header(raw, first_child)[1] == 0x01  # three levels: branch, branch, leaf


def test_many_buckets_put_the_root_on_a_branch(tmp_path: Path) -> None:
    tree: Bucket = {b"pip::source %05d" % i: {b"pkg": {b"CVE-1": b"{}"}} for i in range(3000)}
    path = _roundtrip(tmp_path, tree)
    report = check_bbolt(path)
    assert report.buckets == 6000
    assert _header(path.read_bytes(), report.root_pgid)[1] == 0x01


def test_value_larger_than_a_page_uses_overflow_pages(tmp_path: Path) -> None:
    big = bytes(range(256)) * 100  # 25,600 bytes
    path = _roundtrip(tmp_path, {b"o": {b"big": big, b"small": b"s"}})
    report = check_bbolt(path)
    assert report.overflow_pages == 6  # 16 + 16 + 3 + 25,600 bytes need 7 pages
    raw = path.read_bytes()
    overflowed = [p for p in range(3, report.high_water) if _header(raw, p)[0] == p and _header(raw, p)[3] == 6]
    assert len(overflowed) == 1
    assert len(raw) == report.high_water * PS


def test_large_keys_overflow_branch_pages_too(tmp_path: Path) -> None:
    tree: Bucket = {b"b": {bytes([65 + i % 26]) * 3000 + b"%04d" % i: b"v" for i in range(40)}}
    path = _roundtrip(tmp_path, tree)
    assert check_bbolt(path).keys == 40


def test_output_is_deterministic_and_ignores_insertion_order(tmp_path: Path) -> None:
    forward: dict[bytes, Bucket | bytes] = {b"a": {b"x": b"1"}, b"b": _big_bucket(2000)}
    backward: dict[bytes, Bucket | bytes] = {b"b": dict(reversed(list(_big_bucket(2000).items()))), b"a": {b"x": b"1"}}
    one, two, three = tmp_path / "1.db", tmp_path / "2.db", tmp_path / "3.db"
    write_bbolt(one, forward)
    write_bbolt(two, forward)
    write_bbolt(three, backward)
    assert one.read_bytes() == two.read_bytes() == three.read_bytes()


def test_keys_are_sorted_bytewise(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    write_bbolt(path, {b"b": {b"\xff": b"1", b"B": b"2", b"a": b"3", b"\x00": b"4"}})
    raw = path.read_bytes()
    root = check_bbolt(path).root_pgid
    _f, _k, _ks, voff, _vs = _leaf_element(raw, root, 0)
    inline_page = voff + 16
    keys = []
    for i in range(4):
        at = inline_page + 16 + 16 * i
        _fl, pos, ksize, _vsize = struct.unpack_from("<IIII", raw, at)
        keys.append(raw[at + pos : at + pos + ksize])
    assert keys == [b"\x00", b"B", b"a", b"\xff"]


# Large values are a repeated byte so that generating them costs little entropy.
_big = st.builds(lambda n, b: bytes([b]) * n, st.integers(900, 9000), st.integers(0, 255))
_values = st.binary(max_size=60) | _big
_keys = st.binary(min_size=1, max_size=24) | st.builds(lambda n: b"k" * n, st.integers(200, 1500))
_buckets = st.recursive(
    st.dictionaries(_keys, _values, max_size=40),
    lambda inner: st.dictionaries(_keys, inner | _values, max_size=6),
    max_leaves=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _buckets, max_size=5), st.sampled_from([1024, 4096]))
def test_random_trees_round_trip_and_pass_the_checker(tmp_path: Path, tree: Bucket, page_size: int) -> None:
    path = tmp_path / "random.db"
    written = write_bbolt(path, tree, page_size=page_size)
    assert read_bbolt(path) == tree
    report = check_bbolt(path)
    assert (report.buckets, report.keys, report.high_water) == (written.buckets, written.keys, written.pages)
    assert report.page_size == page_size


@pytest.mark.parametrize(
    "tree",
    [
        {b"top": b"not a bucket"},
        {b"b": {b"": b"empty key"}},
        {b"b": {"text": b"str key"}},
        {b"b": {b"k": 5}},
        {b"b": {b"k" * 32769: b"v"}},
    ],
)
def test_writer_refuses_what_bbolt_cannot_store(tmp_path: Path, tree: Bucket) -> None:
    with pytest.raises(BadInputError):
        write_bbolt(tmp_path / "bad.db", tree)


# ---------------------------------------------------------------- damaged files


def test_one_bad_meta_checksum_is_reported_and_the_other_meta_is_used(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    _patch(path, PS + 16 + 56, bytes([path.read_bytes()[PS + 16 + 56] ^ 0x01]))
    report = check_bbolt(path)
    assert report.metas[0].valid and not report.metas[1].valid
    assert report.metas[1].problem == "checksum mismatch"
    assert report.meta_used == 0
    assert read_bbolt(path) == {b"b": {b"k": b"v"}}


def test_bad_first_meta_falls_back_to_the_second(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    _patch(path, 16 + 56, b"\x00" * 8)  # a zero checksum: accepted by bbolt 1.3.6, rejected since 1.3.7
    report = check_bbolt(path)
    assert not report.metas[0].valid and report.metas[1].valid
    assert report.meta_used == 1


def test_both_meta_checksums_bad_is_an_integrity_error(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    raw = path.read_bytes()
    _patch(path, 16 + 56, bytes([raw[16 + 56] ^ 0x80]))
    _patch(path, PS + 16 + 56, bytes([raw[PS + 16 + 56] ^ 0x80]))
    with pytest.raises(IntegrityError) as err:
        check_bbolt(path)
    assert err.value.exit_code == ExitCode.INTEGRITY
    assert "both meta pages are invalid" in err.value.message
    assert "checksum mismatch" in err.value.message


def test_bad_magic_is_named(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {})
    _patch(path, 16, b"\x00\x00\x00\x00")
    assert check_bbolt(path).metas[0].problem == "bad magic 0x00000000"


def _point_first_bucket_at(path: Path, pgid: int) -> None:
    raw = path.read_bytes()
    _f, _k, _ks, voff, _vs = _leaf_element(raw, _meta_root(raw), 0)
    _patch(path, voff, struct.pack("<Q", pgid))


def test_page_beyond_high_water_mark_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": _big_bucket(100)})
    _point_first_bucket_at(path, 10_000)
    with pytest.raises(IntegrityError, match=r"page 10000: .*beyond the high-water mark"):
        check_bbolt(path)


def test_cycle_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": _big_bucket(100)})
    root = _meta_root(path.read_bytes())
    _point_first_bucket_at(path, root)  # the bucket's tree now starts at the page that holds it
    with pytest.raises(IntegrityError, match=rf"page {root}: referenced twice"):
        check_bbolt(path)


def test_shared_page_is_rejected_and_orphan_is_named(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"a": _big_bucket(100), b"b": _big_bucket(100)})
    raw = path.read_bytes()
    root = _meta_root(raw)
    _f, _k, _ks, a_value, _vs = _leaf_element(raw, root, 0)
    _f, _k, _ks, b_value, _vs = _leaf_element(raw, root, 1)
    a_root = struct.unpack_from("<Q", raw, a_value)[0]
    _patch(path, b_value, struct.pack("<Q", a_root))
    with pytest.raises(IntegrityError, match=r"referenced twice"):
        check_bbolt(path)


def test_unsorted_leaf_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"aa": {}, b"ab": {}})
    raw = path.read_bytes()
    root = _meta_root(raw)
    _f, koff, ksize, _v, _vs = _leaf_element(raw, root, 1)
    assert raw[koff : koff + ksize] == b"ab"
    _patch(path, koff, b"a0")
    with pytest.raises(IntegrityError, match=rf"page {root}: keys not sorted"):
        check_bbolt(path)


def test_key_outside_parent_branch_range_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": _big_bucket(2000)})
    raw = path.read_bytes()
    _f, _k, _ks, voff, _vs = _leaf_element(raw, _meta_root(raw), 0)
    branch = struct.unpack_from("<Q", raw, voff)[0]
    assert _header(raw, branch)[1] == 0x01
    second_leaf = struct.unpack_from("<IIQ", raw, branch * PS + 16 + 16)[2]
    _f, koff, _ks, _v, _vs = _leaf_element(raw, second_leaf, 0)
    _patch(path, koff, b"A")  # "A..." sorts below every "CVE-..." key of the first leaf
    with pytest.raises(IntegrityError, match=rf"page {second_leaf}: key .* below its parent branch key"):
        check_bbolt(path)


def test_page_header_id_must_match_its_position(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    _patch(path, 3 * PS, struct.pack("<Q", 7))
    with pytest.raises(IntegrityError, match=r"page 3: page header carries id 7"):
        check_bbolt(path)


def test_freelist_entry_that_is_reachable_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    _patch(path, 2 * PS, struct.pack("<QHHI", 2, 0x10, 1, 0) + struct.pack("<Q", 3))
    with pytest.raises(IntegrityError, match=r"page 3: reachable but also on the freelist"):
        check_bbolt(path)


def _rewrite_metas(path: Path, high_water: int) -> None:
    raw = path.read_bytes()
    root = _meta_root(raw)
    for txid in (0, 1):
        _patch(path, txid * PS + 16, meta_bytes(page_size=PS, root=root, freelist=2, high_water=high_water, txid=txid))


def test_unreachable_page_not_on_freelist_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": {b"k": b"v"}})
    with path.open("ab") as fh:
        fh.write(struct.pack("<QHHI", 4, 0x02, 0, 0).ljust(PS, b"\0"))
    _rewrite_metas(path, high_water=5)
    with pytest.raises(IntegrityError, match=r"page 4: unreachable and not on the freelist"):
        check_bbolt(path)
    _patch(path, 2 * PS, struct.pack("<QHHI", 2, 0x10, 1, 0) + struct.pack("<Q", 4))
    assert check_bbolt(path).free_pages == 1


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, {b"b": _big_bucket(500)})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - PS])
    with pytest.raises(IntegrityError, match=r"shorter than"):
        check_bbolt(path)


def test_tiny_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "tiny.db"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(IntegrityError, match=r"too short"):
        check_bbolt(path)


def test_checker_only_ever_raises_integrity_error_on_random_damage(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    write_bbolt(
        source,
        {
            b"debian 12": {b"openssl": {b"CVE-%d" % i: b"x" * (i % 50) for i in range(300)}, b"zlib": {b"a": b"b"}},
            b"vulnerability": {b"CVE-%05d" % i: b"{}" for i in range(2000)},
            b"big": {b"v": b"z" * 9000},
        },
    )
    raw = source.read_bytes()
    rng = random.Random(7)
    damaged = tmp_path / "damaged.db"
    rejected = 0
    for _ in range(300):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            # Half the hits land in page headers and element tables, where damage matters most.
            page = rng.randrange(len(raw) // PS)
            pos = page * PS + rng.randrange(64) if rng.random() < 0.5 else rng.randrange(len(raw))
            mutated[pos] = rng.randrange(256)
        damaged.write_bytes(bytes(mutated))
        try:
            read_bbolt(damaged)
        except IntegrityError:
            rejected += 1
    assert rejected > 150
