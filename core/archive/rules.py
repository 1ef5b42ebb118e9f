"""What a bundle archive may hold, as the writer and the reader both apply it: its compressions and safe names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

Compression = Literal["zstd", "gzip", "none"]


def unsafe_path_reason(name: str) -> str | None:
    """Why ``name`` may not be a path inside a bundle, or None when it is a safe, normalized relative path.

    Safe means: relative POSIX path (no drive letter such as ``C:``), no ``..``, ``.`` or empty component, no
    backslash, NUL or other control character. The writer and the reader apply the same rule, so every name one
    writes the other accepts.
    """
    if not name:
        return "has an empty name"
    if name.startswith("/"):
        return "is an absolute path"
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "contains a control character"
    parts = name.split("/")
    if len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isascii() and parts[0][0].isalpha():
        return "starts with a drive letter"
    if ".." in parts:
        return "has a '..' component that escapes the bundle root"
    if "" in parts or "." in parts:
        return "is not a normalized relative path (empty or '.' component)"
    return None


def printable(name: str) -> str:
    """A name as it can be shown in a message: control characters and undecodable bytes escaped."""
    return name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace").translate(_CONTROL_ESCAPES)


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def parent_dirs(name: str) -> Iterator[str]:
    """The directories ``name`` lies in, outermost first (``a``, ``a/b`` for ``a/b/c``)."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
