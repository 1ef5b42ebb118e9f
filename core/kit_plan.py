"""Laying a kit out on volumes: the medium's size, and which bundle (or which part of one) goes on which volume.

Sizes are read as media are sold: decimal units (``4.7G`` = 4,700,000,000 bytes, ``700M`` = 700,000,000), binary
ones when written so (``4GiB``), a plain number is bytes, and the named media ``dvd`` (4.7G), ``dvd-dl`` (8.5G),
``bd`` (25G) and ``bd-dl`` (50G) are accepted too.

:func:`plan_kit` packs whole files first and splits only what does not fit: bundles that fit an empty volume go,
largest first, onto the first volume with room (a new one when none has), so they are never split; a bundle larger
than a volume (or than the 4 GiB - 1 byte a FAT32 stick or one ISO 9660 extent holds) is then cut into parts that
fill the room left on the volumes, then new ones. Every file is counted in whole 2,048-byte sectors, as it occupies
an ISO 9660 medium, and each volume keeps 1% free for the file system's own structures (directories, Rock Ridge and
Joliet records, MD5 tags) and room for the kit's own files on it (manifest, index, checksums, trust anchors, verify
script, README, binary), measured by rendering those documents for the plan itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.contract.kit import MAX_FILE_SIZE, SECTOR
from core.errors import UsageError
from core.kit import BUNDLE_NAME, MAX_PARTS, MAX_VOLUMES, part_path

#: Named media and their capacity in bytes, as sold.
MEDIA = {"dvd": 4_700_000_000, "dvd-dl": 8_500_000_000, "bd": 25_000_000_000, "bd-dl": 50_000_000_000}
_UNITS = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
#: The largest part, in whole sectors: 4 GiB - 2,048 bytes.
MAX_PART = (MAX_FILE_SIZE // SECTOR) * SECTOR


def parse_size(text: str) -> int:
    """A volume size: ``4.7G`` (decimal, as media are sold), ``4GiB`` (binary), ``700000000`` (bytes) or a medium."""
    named = MEDIA.get(text.strip().lower())
    if named is not None:
        return named
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"{text!r} is not a size",
            hint="e.g. 4.7G, 25G, 700M (decimal, as media are sold), 4GiB (binary), 1000000 (bytes), dvd or bd",
        )
    number = match.group(1)
    whole, _, fraction = number.partition(".")
    scale: int = 10 ** len(fraction)
    value = (int(whole) * scale + int(fraction or "0")) * _UNITS[unit] // scale
    if value <= 0:
        raise UsageError(f"{text!r} is not a positive size")
    return value


def size_text(n: int) -> str:
    """Bytes as media are sold, for people: ``4.70 GB``, ``96.0 kB``, ``512 B``."""
    if n >= 10**9:
        return f"{n / 10**9:.2f} GB"
    for unit, scale in (("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def sectors(size: int) -> int:
    """The whole sectors a file of ``size`` bytes occupies."""
    return -(-size // SECTOR)


@dataclass(frozen=True)
class BundleSource:
    """A bundle to put on the kit: its name on the media, its size, and what it is."""

    name: str
    size: int
    profile: str
    run_id: str | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class PlannedPart:
    """One file a volume will hold: part ``part`` of ``parts`` of bundle ``bundle`` (a whole bundle: 1 of 1)."""

    bundle: str
    part: int
    parts: int
    volume: int
    offset: int
    size: int

    @property
    def path(self) -> str:
        return part_path(self.bundle, self.part, self.parts)


@dataclass(frozen=True)
class VolumePlan:
    """What one volume will hold, and how full it will be."""

    volume: int
    parts: tuple[PlannedPart, ...]
    #: Bytes (in whole sectors) of bundle files and parts, and of the kit's own files.
    data_bytes: int
    support_bytes: int
    capacity: int

    @property
    def used(self) -> int:
        return self.data_bytes + self.support_bytes

    @property
    def fill(self) -> float:
        """The share of the medium used, from 0 to 1."""
        return self.used / self.capacity

    def to_dict(self) -> dict[str, object]:
        return {
            "volume": self.volume,
            "capacity": self.capacity,
            "used": self.used,
            "dataBytes": self.data_bytes,
            "supportBytes": self.support_bytes,
            "fill": round(self.fill, 4),
            "files": [
                {
                    "path": p.path,
                    "bundle": p.bundle,
                    "part": p.part,
                    "parts": p.parts,
                    "offset": p.offset,
                    "size": p.size,
                }
                for p in self.parts
            ],
        }


@dataclass(frozen=True)
class KitPlan:
    """The whole layout: the bundles, the volume size, and each volume's files."""

    volume_size: int
    bundles: tuple[BundleSource, ...]
    volumes: tuple[VolumePlan, ...]

    def parts_of(self, name: str) -> list[PlannedPart]:
        """The parts of bundle ``name``, in order."""
        return sorted((p for v in self.volumes for p in v.parts if p.bundle == name), key=lambda p: p.part)

    @property
    def split(self) -> list[str]:
        """The bundles cut into more than one part."""
        return [b.name for b in self.bundles if len(self.parts_of(b.name)) > 1]

    def to_dict(self) -> dict[str, object]:
        return {
            "volumeSize": self.volume_size,
            "volumes": [v.to_dict() for v in self.volumes],
            "bundles": [
                {"name": b.name, "size": b.size, "profile": b.profile, "parts": len(self.parts_of(b.name))}
                for b in self.bundles
            ],
            "split": self.split,
        }


#: Given a plan, the sectors the kit's own files take on each volume (support files and rendered documents).
SupportSize = Callable[[KitPlan], Sequence[int]]


def iso_reserve(volume_size: int) -> int:
    """Bytes of each volume left free for the ISO 9660 file system's own structures: 1%, in whole sectors."""
    return sectors(volume_size // 100) * SECTOR


def plan_kit(bundles: Sequence[BundleSource], volume_size: int, support: SupportSize) -> KitPlan:
    """Lay ``bundles`` out on volumes of ``volume_size`` bytes (see the module docstring).

    ``support`` says how many bytes (whole sectors) the kit's own files take on each volume of a plan; the layout
    is repeated with that room kept until it no longer grows.
    """
    names = [b.name for b in bundles]
    for name in names:
        if not BUNDLE_NAME.match(name):
            raise UsageError(
                f"{name!r} cannot be a file name on the media",
                hint="bundle names are letters, digits, '.', '_', '+' and '-', at most 56, starting with a letter "
                "or digit; rename the file",
            )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})[0]
        raise UsageError(f"two bundles are called {twice!r}", hint="a kit holds each file name once; rename one")
    budget = volume_size - iso_reserve(volume_size)
    reserve = 0
    for _ in range(12):
        plan = _pack(bundles, volume_size, budget - reserve, reserve)
        needed = max(support(plan), default=0)
        if needed <= reserve:
            return _with_support(plan, support(plan))
        reserve = needed + SECTOR  # a little slack, so that numbers growing by a digit do not loop
    raise UsageError(f"no stable layout for volumes of {volume_size} bytes", hint="choose a larger volume size")


def _with_support(plan: KitPlan, support: Sequence[int]) -> KitPlan:
    volumes = tuple(
        VolumePlan(v.volume, v.parts, v.data_bytes, used, v.capacity)
        for v, used in zip(plan.volumes, support, strict=True)
    )
    return KitPlan(plan.volume_size, plan.bundles, volumes)


def _pack(bundles: Sequence[BundleSource], volume_size: int, room: int, reserve: int) -> KitPlan:
    if room < 16 * SECTOR:
        raise UsageError(
            f"a volume of {volume_size} bytes leaves {max(room, 0)} bytes for bundles once the kit's own files "
            f"({reserve} bytes) and 1% for the file system are kept",
            hint="choose a larger --volume-size",
        )
    free: list[int] = []  # sectors left on each volume
    placed: list[list[PlannedPart]] = []
    cap = room // SECTOR

    def open_volume() -> int:
        if len(free) >= MAX_VOLUMES:
            raise UsageError(f"the kit needs more than {MAX_VOLUMES} volumes", hint="choose a larger volume size")
        free.append(cap)
        placed.append([])
        return len(free) - 1

    whole = [b for b in bundles if b.size <= MAX_FILE_SIZE and sectors(b.size) <= cap]
    for b in sorted(whole, key=lambda b: (-b.size, b.name)):
        need = sectors(b.size)
        slot = next((i for i, f in enumerate(free) if f >= need), None)
        if slot is None:
            slot = open_volume()
        free[slot] -= need
        placed[slot].append(PlannedPart(b.name, 1, 1, slot + 1, 0, b.size))
    smallest = max(1, min(cap // 16, (1 << 20) // SECTOR))  # no part below 1 MiB (or 1/16 of a volume)
    for b in sorted((b for b in bundles if b not in whole), key=lambda b: (-b.size, b.name)):
        cuts: list[tuple[int, int, int]] = []  # (volume index, offset, size)
        offset = 0
        while offset < b.size:
            left = b.size - offset
            slot = next((i for i, f in enumerate(free) if f >= sectors(left) and left <= MAX_PART), None)
            if slot is None:
                slot = next((i for i, f in enumerate(free) if f >= smallest), None)
            if slot is None:
                slot = open_volume()
            size = min(left, free[slot] * SECTOR, MAX_PART)
            free[slot] -= sectors(size)
            cuts.append((slot, offset, size))
            offset += size
        if len(cuts) > MAX_PARTS:
            raise UsageError(f"{b.name} would need {len(cuts)} parts, over {MAX_PARTS}", hint="choose larger volumes")
        for number, (slot, start, size) in enumerate(cuts, start=1):
            placed[slot].append(PlannedPart(b.name, number, len(cuts), slot + 1, start, size))
    volumes = tuple(
        VolumePlan(
            i + 1,
            tuple(sorted(parts, key=lambda p: p.path)),
            sum(sectors(p.size) for p in parts) * SECTOR,
            reserve,
            volume_size,
        )
        for i, parts in enumerate(placed)
    )
    if not volumes:
        raise UsageError("a kit needs at least one bundle")
    return KitPlan(volume_size, tuple(sorted(bundles, key=lambda b: b.name)), volumes)
