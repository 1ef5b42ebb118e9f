"""The Offline Kit's sizes, layout and documents, at the sizes of real media (no bytes are written)."""

from __future__ import annotations

import pytest

from core.canonical import canonical_json
from core.contract.kit import MAX_FILE_SIZE, SECTOR
from core.errors import BadInputError, UsageError
from core.kit import BundlePart, KitBundle, KitIndex, KitVolume, VolumeFile, VolumeManifest, volume_label
from core.kit_plan import MEDIA, BundleSource, KitPlan, iso_reserve, parse_size, plan_kit

GB = 10**9


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4.7G", 4_700_000_000),
        ("25G", 25_000_000_000),
        ("700M", 700_000_000),
        ("700MB", 700_000_000),
        ("4GiB", 4 * 2**30),
        ("1.5MiB", 1_572_864),
        ("123456", 123_456),
        ("dvd", 4_700_000_000),
        ("BD", 25_000_000_000),
        ("8.5G", 8_500_000_000),
    ],
)
def test_sizes_are_read_as_media_are_sold(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "4.7X", "-1G", "0", "G", "1e9", "4.7 G B"])
def test_a_size_that_is_not_one_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def _support(size: int) -> object:
    return lambda plan: [size] * len(plan.volumes)


def _check(plan: KitPlan, bundles: list[BundleSource]) -> None:
    for b in bundles:
        parts = plan.parts_of(b.name)
        assert [p.part for p in parts] == list(range(1, len(parts) + 1))
        assert sum(p.size for p in parts) == b.size
        assert [p.offset for p in parts] == [sum(q.size for q in parts[:i]) for i in range(len(parts))]
    for v in plan.volumes:
        assert all(p.size <= MAX_FILE_SIZE for p in v.parts)
        assert v.used <= v.capacity - iso_reserve(v.capacity)
        assert v.data_bytes == sum(-(-p.size // SECTOR) * SECTOR for p in v.parts)


def test_whole_files_first_and_only_what_does_not_fit_is_split() -> None:
    bundles = [
        BundleSource("mirror-full.tar.zst", 9 * GB, "mirror:full"),  # over a DVD and over 4 GiB: split
        BundleSource("trivy.tar.zst", 3 * GB, "trivy:db"),
        BundleSource("risk.tar.zst", 400_000_000, "risk:bundle"),
        BundleSource("attest.tar.zst", 2 * GB, "attestation:bundle"),
    ]
    plan = plan_kit(bundles, MEDIA["dvd"], _support(4 << 20))  # type: ignore[arg-type]
    _check(plan, bundles)
    assert plan.split == ["mirror-full.tar.zst"]
    for name in ("trivy.tar.zst", "risk.tar.zst", "attest.tar.zst"):
        assert len(plan.parts_of(name)) == 1
    # 14.4 GB over 4.7 GB discs: four volumes, the split bundle filling what the whole ones left first.
    assert len(plan.volumes) == 4
    assert plan.parts_of("mirror-full.tar.zst")[0].volume < 4


def test_a_bundle_over_4_gib_is_cut_even_on_a_medium_that_would_hold_it() -> None:
    bundles = [BundleSource("big.tar.zst", 10 * GB, "mirror:full")]
    plan = plan_kit(bundles, MEDIA["bd"], _support(1 << 20))  # type: ignore[arg-type]
    _check(plan, bundles)
    assert len(plan.volumes) == 1 and len(plan.parts_of("big.tar.zst")) == 3


def test_names_that_media_cannot_hold_and_duplicates_are_refused() -> None:
    with pytest.raises(UsageError, match="cannot be a file name"):
        plan_kit([BundleSource("../escape.tar.zst", 10, "json:raw")], MEDIA["dvd"], _support(0))  # type: ignore[arg-type]
    twice = [BundleSource("a.tar.zst", 10, "json:raw"), BundleSource("a.tar.zst", 20, "json:raw")]
    with pytest.raises(UsageError, match="two bundles"):
        plan_kit(twice, MEDIA["dvd"], _support(0))  # type: ignore[arg-type]


def test_the_kits_own_files_are_kept_room_for() -> None:
    bundles = [BundleSource("a.tar.zst", 70 * SECTOR, "json:raw")]
    plan = plan_kit(bundles, 100 * SECTOR, _support(30 * SECTOR))  # type: ignore[arg-type]
    assert len(plan.parts_of("a.tar.zst")) == 2  # 70 of 100 sectors do not fit beside 30 of support files and 1%
    with pytest.raises(UsageError, match="leaves"):
        plan_kit(bundles, 40 * SECTOR, _support(30 * SECTOR))  # type: ignore[arg-type]


def _documents() -> tuple[VolumeManifest, KitIndex]:
    kit_id = "0123456789abcdef0123456789abcdef"
    part = BundlePart(1, 1, "bundles/a.tar.zst", 0, 5, "a" * 64)
    index = KitIndex(
        kit_id, "2026-12-07T00:00:00Z", 10**6, "k" * 64, (KitVolume(1, volume_label(kit_id, 1), 3, 9),),
        (KitBundle("a.tar.zst", 5, "b" * 64, "json:raw", "run", "default", (part,)),),
    )  # fmt: skip
    files = (VolumeFile("README.txt", 3, "c" * 64), VolumeFile("bundles/a.tar.zst", 5, "a" * 64, "a.tar.zst", 1, 1, 0))
    manifest = VolumeManifest(
        kit_id, 1, 1, volume_label(kit_id, 1), index.created_at, "d" * 64, len(index.to_bytes()), files
    )
    return manifest, index


def test_documents_round_trip_through_canonical_json() -> None:
    manifest, index = _documents()
    assert VolumeManifest.from_bytes(manifest.to_bytes()) == manifest
    assert KitIndex.from_bytes(index.to_bytes()) == index
    assert manifest.to_bytes() == canonical_json(manifest.to_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="https://example.com/other"), "schema"),
        (lambda d: d["files"][0].update(path="../etc/passwd"), "unsafe"),
        (lambda d: d["files"][1].update(path="bundles/b.tar.zst"), "must lie at"),
        (lambda d: d.update(volume=2), "volume"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d["files"].reverse(), "sorted"),
    ],
)
def test_a_manifest_stella_did_not_write_is_refused(change: object, message: str) -> None:
    manifest, _ = _documents()
    doc = manifest.to_dict()
    change(doc)  # type: ignore[operator]
    with pytest.raises(BadInputError, match=message):
        VolumeManifest.from_bytes(canonical_json(doc))


def test_non_canonical_json_is_refused() -> None:
    manifest, index = _documents()
    with pytest.raises(BadInputError, match="canonical"):
        VolumeManifest.from_bytes(manifest.to_bytes() + b" ")
    with pytest.raises(BadInputError, match="canonical"):
        KitIndex.from_bytes(index.to_bytes().replace(b'"size":5', b'"size":5.0'))
