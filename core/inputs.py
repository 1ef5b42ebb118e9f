"""Walk import inputs: files, directories, and .zip / .tar / .tar.gz / .tar.zst archives, streamed.

Each yielded :class:`InputItem` holds one document's bytes (bounded by ``max_document_bytes``);
an archive is never loaded whole. Archive members that are not regular files (links, devices)
are yielded as rejected items rather than silently skipped. A tar stream is read to its end once
before its members are imported, so a truncated archive is refused before anything from it is
written. An archive with a member whose name is unsafe (``..``, an absolute path or drive letter, a
backslash, NUL or another control character: the rule bundles follow, ``core.archive.rules``) is
hostile and refused as a whole (exit 4) before any of its members is yielded.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Self, cast

import zstandard

from core.archive.rules import printable, unsafe_path_reason
from core.compression import GZIP_MAGIC, ZSTD_MAGIC, ZstdReader
from core.contract.bundle import MANIFEST
from core.errors import BadInputError, EnvironmentFailure, IntegrityError

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
DEFAULT_MAX_DOCUMENT = 512 << 20
#: A document parsed whole (every JSON format) takes about 20 times its size in memory at its peak (the parsed
#: tree, schema validation, rows), so it is limited far below what a streamed format (EPSS CSV) may be.
DEFAULT_MAX_PARSED_DOCUMENT = 32 << 20
#: A member over 1 MiB expanding more than this many times its compressed size is a likely zip bomb
#: (JSON feeds compress 5-20x; deflate tops out near 1000x on degenerate input).
MAX_COMPRESSION_RATIO = 200


@dataclass
class InputItem:
    """One document to import, or an input-level rejection (``error`` set, ``data`` empty)."""

    path: str
    data: bytes = b""
    error: BadInputError | None = None
    #: Why a directory walk passed this file by (a README beside the feeds), or None.
    skipped: str | None = None


#: Files a directory walk passes by, with a note, rather than rejecting: the documentation that travels with data
#: (a README, a SOURCES.md, a LICENSE). Given by name, such a file is read like any other (and rejected).
DOCUMENTATION_SUFFIXES = (".md", ".markdown", ".rst")
DOCUMENTATION_NAMES = ("README", "LICENSE", "LICENCE", "NOTICE", "COPYING", "AUTHORS", "CHANGELOG")
SKIPPED_DOCUMENTATION = "documentation, not a document: skipped in a directory walk"


def is_documentation(name: str) -> bool:
    """Whether a directory walk passes the file ``name`` by (:data:`DOCUMENTATION_SUFFIXES`, ``_NAMES``)."""
    stem = name.split(".", 1)[0].upper()
    return name.lower().endswith(DOCUMENTATION_SUFFIXES) or stem in DOCUMENTATION_NAMES


@dataclass(frozen=True)
class InputLimits:
    """How large one document may be: read at all, and parsed whole (see ``SourceFormat.streams``)."""

    max_document_bytes: int = DEFAULT_MAX_DOCUMENT
    max_parsed_document_bytes: int = DEFAULT_MAX_PARSED_DOCUMENT


def iter_inputs(paths: list[Path], limits: InputLimits | None = None) -> Iterator[InputItem]:
    """Yield every document found under ``paths`` in a stable order."""
    lim = limits or InputLimits()
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise BadInputError("no such file or directory", path=str(path))
        if path.is_dir():
            yield from _walk_dir(path, lim)
        else:
            yield from _from_file(path, lim)


def count_documents(paths: list[Path]) -> int | None:
    """How many items :func:`iter_inputs` will yield for ``paths``, counted before the import (a progress total).

    Directories are walked and zip archives' central directories read; a plain tar's headers are read. A compressed
    stream (gzip, zstd) cannot be counted without decompressing it: then None (the total is unknown). An archive
    that cannot be read counts as one item: the one rejection the import reports for it.
    """
    total = 0
    for path in paths:
        counted = _count_dir(path) if path.is_dir() else _count_file(path)
        if counted is None:
            return None
        total += counted
    return total


def _count_dir(root: Path) -> int | None:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return None
    total = 0
    for entry in entries:
        counted = _count_dir(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else _count_file(Path(entry.path))
        if counted is None:
            return None
        total += counted
    return total


def _count_file(path: Path) -> int | None:
    """Items :func:`_from_file` yields for ``path`` (mirrors its choices), or None when only reading would tell."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return 1
        with path.open("rb") as fh:
            head = fh.read(4)
        if is_stella_bundle(path):
            return 1
        if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
            counted = _count_zip_members(path)
            if counted is not None:
                return counted
            with zipfile.ZipFile(path) as zf:
                return sum(1 for info in zf.infolist() if not info.is_dir())
        if head.startswith((GZIP_MAGIC, ZSTD_MAGIC)):
            return None
        if _is_plain_tar(path):
            with tarfile.open(path, mode="r:") as tar:
                return sum(1 for member in tar.getmembers() if not member.isdir())
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError):
        return 1
    return 1


_EOCD = struct.Struct("<4s4H2LH")
_CENTRAL = struct.Struct("<4s24xHHH12x")


_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")


def _central_directory(fh: IO[bytes]) -> tuple[int, int]:
    """Where a single-disk zip's central directory starts and how long it is, from its end record (a zip64 one
    when the archive has one, as ``zipfile`` reads them). Raises :class:`_NotPlain` for anything else, including
    data before the archive."""
    size = fh.seek(0, os.SEEK_END)
    tail_size = min(size, _EOCD.size + 0xFFFF)
    fh.seek(size - tail_size)
    tail = fh.read(tail_size)
    at = len(tail) - _EOCD.size
    if at < 0 or not (tail[at : at + 4] == b"PK\x05\x06" and tail[-2:] == b"\x00\x00"):
        at = tail.rfind(b"PK\x05\x06")  # after a comment (zipfile looks at the very end first, then searches)
    if at < 0 or len(tail) - at < _EOCD.size:
        raise _NotPlain
    end = size - tail_size + at  # the end record's offset in the file
    _, disk, cd_disk, _, _, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    if disk or cd_disk:
        raise _NotPlain
    if at >= _ZIP64_LOCATOR.size and tail[at - _ZIP64_LOCATOR.size : at - _ZIP64_LOCATOR.size + 4] == b"PK\x06\x07":
        _, locator_disk, _, disks = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
        record = end - _ZIP64_LOCATOR.size - _ZIP64_END.size
        fh.seek(record)
        raw = fh.read(_ZIP64_END.size)
        if locator_disk or disks != 1 or len(raw) != _ZIP64_END.size:
            raise _NotPlain
        signature, _, _, _, disk64, cd_disk64, _, _, cd_size, cd_offset = _ZIP64_END.unpack(raw)
        if signature != b"PK\x06\x06" or disk64 or cd_disk64:
            raise _NotPlain
        end = record
    elif 0xFFFFFFFF in (cd_size, cd_offset):
        raise _NotPlain
    if cd_offset + cd_size != end:
        raise _NotPlain
    return cd_offset, cd_size


def _count_zip_members(path: Path) -> int | None:
    """The files (not directories) a zip's central directory lists, read straight from it: a zip of 200,000 members
    is counted in a fraction of the time ``zipfile`` takes to build their entries. None for anything
    :func:`_central_directory` leaves to ``zipfile``, or a directory that does not read cleanly: then it counts."""
    with path.open("rb") as fh:
        try:
            cd_offset, cd_size = _central_directory(fh)
        except _NotPlain:
            return None
        fh.seek(cd_offset)
        directory = fh.read(cd_size)
    if len(directory) != cd_size:
        return None
    count, pos = 0, 0
    while pos < cd_size:
        if pos + _CENTRAL.size > cd_size:
            return None
        signature, name_len, extra_len, comment_len = _CENTRAL.unpack_from(directory, pos)
        if signature != b"PK\x01\x02":
            return None
        if directory[pos + _CENTRAL.size + name_len - 1 : pos + _CENTRAL.size + name_len] != b"/":
            count += 1
        pos += _CENTRAL.size + name_len + extra_len + comment_len
    return count if pos == cd_size else None


def _walk_dir(root: Path, lim: InputLimits) -> Iterator[InputItem]:
    # Depth-first in name order, so the walk order is the sorted order of relative paths.
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot list directory: {exc.strerror}", path=str(root)) from exc
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_dir(Path(entry.path), lim)
        elif is_documentation(entry.name) and entry.is_file(follow_symlinks=False):
            yield InputItem(entry.path, skipped=SKIPPED_DOCUMENTATION)
        else:
            yield from _from_file(Path(entry.path), lim)


def _from_file(path: Path, lim: InputLimits) -> Iterator[InputItem]:
    try:
        st = path.lstat()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(path)) from exc
    if stat.S_ISLNK(st.st_mode):
        yield InputItem(str(path), error=BadInputError("is a symbolic link; refusing to follow it", path=str(path)))
        return
    if not stat.S_ISREG(st.st_mode):
        yield InputItem(str(path), error=BadInputError("is not a regular file", path=str(path)))
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(path)) from exc
    if is_stella_bundle(path):  # only `stella import BUNDLE` reads one, after verifying it
        message = "a signed stella bundle: give its own path to `stella import`, which verifies it before importing"
        yield InputItem(str(path), error=BadInputError(message, path=str(path)))
        return
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        yield from _from_zip(path, lim)
    elif head.startswith(GZIP_MAGIC):
        yield from _from_compressed(path, lim, "gzip")
    elif head.startswith(ZSTD_MAGIC):
        yield from _from_compressed(path, lim, "zstd")
    elif _is_plain_tar(path):
        _preflight_tar(path, lambda: path.open("rb"))
        yield from _tar_members(path, lambda: path.open("rb"), lim)
    else:
        if st.st_size > lim.max_document_bytes:
            yield InputItem(str(path), error=_too_big(str(path), st.st_size, lim))
            return
        with path.open("rb") as fh:
            first = fh.read(_JSON_SNIFF)
        refused = _json_too_big(str(path), st.st_size, first, lim)
        yield InputItem(str(path), error=refused) if refused else InputItem(str(path), path.read_bytes())


def is_stella_bundle(path: Path) -> bool:
    """Whether ``path`` is a stella bundle: a tar (plain, ``.tar.zst`` or ``.tgz``) whose first member is the
    manifest, as every bundle's is. Such a file is imported only after it verified, never as an archive."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
        codec = "gzip" if magic.startswith(GZIP_MAGIC) else "zstd" if magic.startswith(ZSTD_MAGIC) else None
        with _open_decompressed(path, codec) if codec else path.open("rb") as fh:
            head = fh.read(512)
    except _STREAM_ERRORS:  # not readable as a bundle: the importer says why
        return False
    return len(head) == 512 and head[257:262] == b"ustar" and head[:100].rstrip(b"\0") == MANIFEST.encode()


#: How much of a document is looked at to tell JSON (parsed whole, so held to a lower limit) before reading it.
_JSON_SNIFF = 512


def _json_too_big(label: str, size: int, head: bytes, lim: InputLimits) -> BadInputError | None:
    """Refuse, from its first bytes and its size, a JSON document too large to parse whole, before reading it.

    Every JSON format is parsed whole; ``core.ingest`` applies the same limit to whatever reaches it.
    """
    if size <= lim.max_parsed_document_bytes or head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
        return None
    return BadInputError(
        f"document is {size} bytes, over the {lim.max_parsed_document_bytes}-byte limit for a document parsed whole "
        "(every format but EPSS CSV); refused before reading it",
        path=label,
        hint="split the document; stella holds a parsed document in memory",
    )


def _too_big(label: str, size: int, lim: InputLimits) -> BadInputError:
    return BadInputError(
        f"document is {size} bytes, over the {lim.max_document_bytes}-byte limit for one document",
        path=label,
    )


def _is_plain_tar(path: Path) -> bool:
    with path.open("rb") as fh:
        block = fh.read(512)
    return len(block) == 512 and block[257:262] == b"ustar"


#: What reading a damaged compressed stream raises: gzip's deflate errors surface as ``zlib.error``, not OSError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, zstandard.ZstdError)


def _open_decompressed(path: Path, codec: str) -> IO[bytes]:
    raw = path.open("rb")
    if codec == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    return io.BufferedReader(ZstdReader(raw), buffer_size=1 << 20)


def _from_compressed(path: Path, lim: InputLimits, codec: str) -> Iterator[InputItem]:
    """A .tar.gz / .tar.zst archive, or one compressed document (e.g. an EPSS ``.csv.gz``)."""
    try:
        with _open_decompressed(path, codec) as fh:
            head = fh.read(512)
    except _STREAM_ERRORS as exc:
        raise BadInputError(f"damaged {codec} stream: {exc}", path=str(path)) from None
    if len(head) == 512 and head[257:262] == b"ustar":
        _preflight_tar(path, lambda: _open_decompressed(path, codec))
        yield from _tar_members(path, lambda: _open_decompressed(path, codec), lim)
        return
    label = str(path)
    try:
        with _open_decompressed(path, codec) as fh:
            data = fh.read(lim.max_document_bytes + 1)
            if len(data) > lim.max_document_bytes:
                yield InputItem(label, error=_too_big(label, len(data), lim))
                return
            fh.read()  # reach the end so the stream's checksum is verified
    except _STREAM_ERRORS as exc:
        raise BadInputError(f"damaged or truncated {codec} stream: {exc}", path=label) from None
    yield InputItem(label, data)


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar header that remembers the name as stored: ``tarfile`` cuts a name at its first NUL, hiding the rest."""

    stored_name: str | None = None

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        buf = bytes(buf)
        fields = [buf[0:100]]
        if buf[257:265] == b"ustar\x0000":  # POSIX ustar: bytes 345-500 are the name's prefix
            fields.insert(0, buf[345:500])
        if any(field.rstrip(b"\0").count(b"\0") for field in fields):
            prefix, name = (f.rstrip(b"\0") for f in fields) if len(fields) == 2 else (b"", fields[0].rstrip(b"\0"))
            info.stored_name = (prefix + b"/" + name if prefix else name).decode("utf-8", "surrogateescape")
        return info


#: A member name that is plainly safe: components of letters, digits and a few punctuation marks, none starting
#: with a dot (so none is ``.`` or ``..``), no drive letter, control character or backslash. It needs no closer look.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]*(?:/[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]*)*/?")


def _check_member_name(archive: Path, name: str) -> None:
    """Refuse the archive when a member's name is unsafe; a leading ``./`` (``tar -C dir .``) is harmless."""
    if _PLAIN_NAME.fullmatch(name):
        return
    given = name
    while name.startswith("./"):
        name = name[2:]
    if given and name in ("", "."):  # the archive's own root ("./" or "."); an empty name is refused below
        return
    reason = unsafe_path_reason(name.removesuffix("/"))
    if reason is not None:
        raise IntegrityError(
            f"archive member '{printable(name)}' {reason}; refusing the archive, nothing from it was imported",
            path=str(archive),
        )


def _preflight_tar(path: Path, opener: object) -> None:
    """Read the whole tar stream once: a truncated or corrupt archive, or an unsafe name, fails before any import."""
    assert callable(opener)
    try:
        with opener() as fh, tarfile.open(fileobj=fh, mode="r|", tarinfo=_CheckedTarInfo) as tar:
            for member in tar:
                stored = member.stored_name if isinstance(member, _CheckedTarInfo) else None
                _check_member_name(path, stored or member.name)
                if member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        while extracted.read(1 << 20):
                            pass
    except (tarfile.TarError, *_STREAM_ERRORS) as exc:
        raise BadInputError(
            f"archive is truncated or corrupt ({exc}); nothing from it was imported", path=str(path)
        ) from None


def _tar_members(path: Path, opener: object, lim: InputLimits) -> Iterator[InputItem]:
    assert callable(opener)
    with opener() as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        for member in tar:
            label = f"{path}!{member.name}"
            if member.isdir():
                continue
            if not member.isfile():
                what = "a link" if (member.issym() or member.islnk()) else "not a regular file"
                yield InputItem(label, error=BadInputError(f"archive member is {what}; skipped", path=label))
                continue
            if member.size > lim.max_document_bytes:
                yield InputItem(label, error=_too_big(label, member.size, lim))
                continue
            extracted = tar.extractfile(member)
            first = extracted.read(_JSON_SNIFF) if extracted else b""
            refused = _json_too_big(label, member.size, first, lim)
            if refused is not None:
                yield InputItem(label, error=refused)
                continue
            yield InputItem(label, first + extracted.read() if extracted else b"")


def _from_zip(path: Path, lim: InputLimits) -> Iterator[InputItem]:
    if _is_plain_zip(path):
        yield from _from_plain_zip(path, lim)
        return
    try:
        zf = zipfile.ZipFile(path)
    # zipfile also raises NotImplementedError (an unsupported version or method) and UnicodeDecodeError (a name
    # flagged UTF-8 that is not): a damaged or hostile archive either way.
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, UnicodeDecodeError) as exc:
        raise BadInputError(
            f"not a readable zip archive ({exc}); it may be truncated. Nothing from it was imported",
            path=str(path),
        ) from None
    with zf, path.open("rb") as raw:
        for info in zf.infolist():
            # orig_filename: zipfile cuts a name at its first NUL, which is itself a trick worth refusing.
            _check_member_name(path, info.orig_filename)
        for info in zf.infolist():
            if not info.is_dir():
                yield _zip_item(path, info, lim, raw, functools.partial(zf.open, info))


def _zip_item(
    path: Path, info: zipfile.ZipInfo | _Member, lim: InputLimits, raw: IO[bytes], open_member: Callable[[], IO[bytes]]
) -> InputItem:
    """One member of a zip as an item: its bytes, or why it is refused (``open_member``: zipfile's reader of it)."""
    label = f"{path}!{info.filename}"
    # Many zip writers leave the file-type bits empty; only a declared non-regular type is refused.
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind and kind != stat.S_IFREG:
        return InputItem(label, error=BadInputError("archive member is not a regular file; skipped", path=label))
    if info.file_size > lim.max_document_bytes:
        return InputItem(label, error=_too_big(label, info.file_size, lim))
    ratio = info.file_size / info.compress_size if info.compress_size else 0
    if info.file_size > (1 << 20) and ratio > MAX_COMPRESSION_RATIO:
        return InputItem(
            label,
            error=BadInputError(
                f"archive member expands {info.file_size // info.compress_size}x; refusing a likely zip bomb",
                path=label,
            ),
        )
    if info.file_size <= lim.max_parsed_document_bytes:  # not refused for its size, whatever its start
        data = _plain_member(raw, info)
        if data is not None:
            return InputItem(label, data)
    try:
        with open_member() as member:
            data = member.read(_JSON_SNIFF)
            refused = _json_too_big(label, info.file_size, data, lim)
            if refused is None:
                data += member.read(lim.max_document_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, UnicodeDecodeError, zlib.error) as exc:
        return InputItem(label, error=BadInputError(f"damaged archive member: {exc}", path=label))
    return InputItem(label, error=refused) if refused else InputItem(label, data)


_LOCAL = struct.Struct("<4s2xH18xHH")
#: Flag bits ``zipfile`` treats specially (encryption, compressed patch data, strong encryption): left to it.
_SPECIAL_FLAGS = 0x1 | 0x20 | 0x40


def _plain_member(raw: IO[bytes], info: zipfile.ZipInfo | _Member) -> bytes | None:
    """A stored or deflated member's bytes, read and inflated in one go, or None to let ``zipfile`` read it.

    ``zipfile`` spends more on its per-member objects than on inflating a small document. This reads the same
    bytes and checks what it checks (the local header's name, the size, the CRC-32); anything unusual or damaged
    returns None, and ``zipfile`` then reads the member and reports its problem in its own words.
    """
    if info.flag_bits & _SPECIAL_FLAGS or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    try:
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL.size)
        if len(header) != _LOCAL.size:
            return None
        signature, flags, name_len, extra_len = _LOCAL.unpack(header)
        name = raw.read(name_len)
        if signature != ZIP_MAGIC or name.decode("utf-8" if flags & 0x800 else "cp437") != info.orig_filename:
            return None
        raw.seek(extra_len, os.SEEK_CUR)
        packed = raw.read(info.compress_size)
        if len(packed) != info.compress_size:
            return None
        if info.compress_type == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
            data = inflater.decompress(packed, info.file_size + 1)
            if not inflater.eof:
                return None
        else:
            data = packed
    except (OSError, UnicodeDecodeError, zlib.error):
        return None
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        return None
    return data


class _Member(NamedTuple):
    """An entry of a plain zip's central directory (see :func:`_plain_entries`): what reading a member needs."""

    orig_filename: str
    flag_bits: int
    compress_type: int
    CRC: int
    compress_size: int
    file_size: int
    external_attr: int
    header_offset: int

    @property
    def filename(self) -> str:
        return self.orig_filename

    def is_dir(self) -> bool:
        return self.orig_filename.endswith("/")


class _NotPlain(Exception):
    """The archive has something :func:`_plain_entries` leaves to ``zipfile``."""


_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
#: The newest zip format version ``zipfile`` reads (its MAX_EXTRACT_VERSION); a later one is left to it to refuse.
_ZIP_VERSION = 63


def _plain_entries(path: Path) -> Iterator[_Member]:
    """The central directory of a plain zip, entry by entry, read from the file as it goes (never held whole).

    ``zipfile`` builds every entry of a directory before it reads one member: 120 MB for 200,000 members, which a
    large import carried to its end. Plain means: one disk, no zip64 record, no data before the archive, every name
    plainly safe ASCII (:data:`_PLAIN_NAME`), well-formed extra fields. Raises :class:`_NotPlain` at anything else,
    and the archive is read by ``zipfile`` instead, which refuses or reads it as it always did.
    """
    with path.open("rb", buffering=1 << 20) as fh:
        cd_offset, cd_size = _central_directory(fh)
        fh.seek(cd_offset)
        reader = fh
        consumed = 0
        while consumed < cd_size:
            head = reader.read(_CENTRAL_ENTRY.size)
            if len(head) != _CENTRAL_ENTRY.size:
                raise _NotPlain
            fields = _CENTRAL_ENTRY.unpack(head)
            if fields[0] != b"PK\x01\x02" or fields[3] > _ZIP_VERSION:
                raise _NotPlain
            flags, method, crc, packed, unpacked = fields[5], fields[6], fields[9], fields[10], fields[11]
            name_len, extra_len, comment_len, external, offset = (
                fields[12],
                fields[13],
                fields[14],
                fields[17],
                fields[18],
            )
            rest = reader.read(name_len + extra_len + comment_len)
            if len(rest) != name_len + extra_len + comment_len or 0xFFFFFFFF in (packed, unpacked, offset):
                raise _NotPlain
            name = rest[:name_len]
            if not name.isascii() or not _PLAIN_NAME.fullmatch(text := name.decode("ascii")):
                raise _NotPlain
            extra = rest[name_len : name_len + extra_len]
            while len(extra) >= 4:  # zipfile's reading of extra fields: a zip64 one or a cut one is left to it
                kind, length = struct.unpack_from("<HH", extra)
                if kind == 0x0001 or length + 4 > len(extra):
                    raise _NotPlain
                extra = extra[length + 4 :]
            consumed += _CENTRAL_ENTRY.size + len(rest)
            yield _Member(text, flags, method, crc, packed, unpacked, external, offset)
        if consumed != cd_size:
            raise _NotPlain


def _is_plain_zip(path: Path) -> bool:
    try:
        for _ in _plain_entries(path):
            pass
    except (_NotPlain, OSError, ValueError, struct.error):
        return False
    return True


def _from_plain_zip(path: Path, lim: InputLimits) -> Iterator[InputItem]:
    """A plain zip's members (every name already checked safe by :func:`_plain_entries`), its directory streamed.

    A member that does not read cleanly is read by ``zipfile`` (its directory loaded then), which says why.
    """
    fallback: zipfile.ZipFile | None = None

    def by_zipfile(index: int) -> IO[bytes]:
        nonlocal fallback
        if fallback is None:
            fallback = zipfile.ZipFile(path)
        return fallback.open(fallback.infolist()[index])

    try:
        with path.open("rb") as raw:
            for index, entry in enumerate(_plain_entries(path)):
                if not entry.is_dir():
                    yield _zip_item(path, entry, lim, raw, functools.partial(by_zipfile, index))
    except _NotPlain:  # the file changed since it was checked
        raise BadInputError(
            "the zip archive changed while it was read; nothing more was imported", path=str(path)
        ) from None
    finally:
        if fallback is not None:
            fallback.close()
