"""Paths of the raw documents a ``json:raw`` or ``json:policy`` payload ships (``stella import`` reads them back)."""

from __future__ import annotations

#: Raw documents, packed per kind: ``data/raw/<kind>.pack`` with its index ``data/raw/<kind>.index.jsonl``.
RAW_DIR = "data/raw/"
#: Raw documents concatenated into one member end in this (json packs, and the mirror's content-addressed packs).
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".index.jsonl"


def pack_path(kind: str) -> str:
    """The pack of the raw documents of ``kind``."""
    return f"{RAW_DIR}{kind}{PACK_SUFFIX}"


def index_path(kind: str) -> str:
    """The index of ``kind``'s pack: one canonical JSON line per document (sha256, offset, size, ...)."""
    return f"{RAW_DIR}{kind}{INDEX_SUFFIX}"
