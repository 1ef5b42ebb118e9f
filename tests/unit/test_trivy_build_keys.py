"""The trivy:db build's run entries sort as their keys' tuples would, whatever the strings hold (NULs included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.profiles._trivy_build import _text, _untext

_TEXT = st.text(alphabet=st.sampled_from(["\0", "\1", "a", "b", "\x7f", "é", "\U0001f600"]), max_size=6)


@given(st.lists(st.tuples(_TEXT, _TEXT, _TEXT, st.integers(0, 1 << 41)), max_size=30))
def test_concatenated_parts_sort_as_the_tuples(keys: list[tuple[str, str, str, int]]) -> None:
    def encoded(key: tuple[str, str, str, int]) -> bytes:
        return _text(key[0]) + _text(key[1]) + _text(key[2]) + key[3].to_bytes(8, "big")

    assert sorted(keys, key=encoded) == sorted(keys)
    assert sorted(set(map(encoded, keys))) == [encoded(k) for k in sorted(set(keys))]


@given(_TEXT)
def test_a_part_gives_its_utf8_bytes_back(value: str) -> None:
    part = _text(value)
    assert part.endswith(b"\0\0")
    assert _untext(part[:-2]) == value.encode()
    # Its first NUL NUL is its end, so no part is a prefix of another (the merge groups entries by prefix).
    assert part.find(b"\0\0") == len(part) - 2
