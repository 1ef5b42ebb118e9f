"""Read a bundle manifest (``export.json``) without loading its file list into memory.

The manifest is canonical JSON (RFC 8785), so its ``files`` array is sorted by path and each entry is a small
object. :class:`ManifestReader` parses the top-level fields normally and streams ``files`` one entry at a time,
which keeps a verifier's memory flat whether a bundle lists 20,000 files or 2,000,000.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.contract.bundle import bundle_order
from core.errors import BadInputError

_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ListedFile:
    """One ``files`` entry of a manifest."""

    path: str
    sha256: str
    size: int
    media_type: str


class _Buffer:
    """A text window over a file that ``raw_decode`` can consume from, refilled on demand."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.eof = False
        self.label = str(path)

    def close(self) -> None:
        self._fh.close()

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self._fh.read(_CHUNK)
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise BadInputError(f"manifest is not UTF-8: {exc.reason}", path=self.label) from None
        self.text = self.text[self.pos :] + text
        self.pos = 0
        if not chunk:
            self.eof = True
            return False
        return True

    def peek(self) -> str:
        while self.pos >= len(self.text):
            if not self._fill():
                raise BadInputError("manifest ends unexpectedly", path=self.label)
        return self.text[self.pos]

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            raise BadInputError(f"manifest is not canonical JSON: expected {char!r}, found {got!r}", path=self.label)
        self.pos += 1

    def value(self) -> Any:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise BadInputError(f"manifest is not valid JSON: {exc.msg}", path=self.label) from None
            # A number at the very end of the window may continue in the next chunk.
            partial = end == len(self.text) and not self.eof and not isinstance(value, str | dict | list)
            if partial and self._fill():
                continue
            self.pos = end
            return value


class ManifestReader:
    """Top-level fields of a manifest, and a streaming iterator over its ``files``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: dict[str, Any] = {}
        self.file_count = 0
        self._keys: list[str] = []
        for _ in self._walk(collect=True):
            pass  # one pass reads the header and counts the files
        if "files" not in self._keys:
            raise BadInputError("manifest has no files list", path=str(path))

    def _walk(self, *, collect: bool) -> Iterator[tuple[str, ListedFile | None]]:
        buf = _Buffer(self.path)
        keys: list[str] = []
        try:
            buf.expect("{")
            first = True
            while True:
                if buf.peek() == "}":
                    buf.pos += 1
                    break
                if not first:
                    buf.expect(",")
                first = False
                key = buf.value()
                if not isinstance(key, str):
                    raise BadInputError("manifest key is not a string", path=str(self.path))
                buf.expect(":")
                keys.append(key)
                if key != "files":
                    value = buf.value()
                    if collect:
                        self.header[key] = value
                    continue
                buf.expect("[")
                count = 0
                while buf.peek() != "]":
                    if count:
                        buf.expect(",")
                    entry = buf.value()
                    count += 1
                    yield key, _listed(entry, str(self.path), count - 1)
                buf.pos += 1
                if collect:
                    self.file_count = count
        finally:
            buf.close()
        self._keys = keys

    def files(self) -> Iterator[ListedFile]:
        """The listed files in manifest order (sorted by path in a canonical manifest)."""
        previous = ""
        for _, entry in self._walk(collect=False):
            assert entry is not None
            if previous and bundle_order(entry.path) <= bundle_order(previous):
                raise BadInputError(
                    f"manifest files are not in bundle order ({entry.path!r} after {previous!r})", path=str(self.path)
                )
            previous = entry.path
            yield entry


def _listed(entry: Any, label: str, index: int) -> ListedFile:
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
        and isinstance(entry.get("size"), int)
        and entry["size"] >= 0
        and isinstance(entry.get("mediaType"), str)
    )
    if not ok:
        raise BadInputError(f"manifest files[{index}] is not a {{path, sha256, size, mediaType}} entry", path=label)
    return ListedFile(entry["path"], entry["sha256"], entry["size"], entry["mediaType"])
