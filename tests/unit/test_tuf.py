"""TUF metadata for a mirror tree (core.tuf_repo) and its offline receiver (verify.tuf_client), with real keys."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from tuf.api.metadata import Metadata, Root, Targets, Timestamp  # type: ignore[attr-defined]
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater  # type: ignore[attr-defined]

from core.errors import ExitCode, IntegrityError, SignatureError, StellaError, TrustMetadataError
from core.signing import Signer
from core.tuf_repo import (
    Expiries,
    Thresholds,
    TufKeys,
    TufSigner,
    init_repository,
    load_root,
    rotate_root,
    write_repository,
)
from verify.tuf_client import LocalDirFetcher, verify_mirror

NOW = datetime.now(UTC).replace(microsecond=0)
FILES = {
    "data/raw/osv/GHSA-1.json": b'{"id":"GHSA-1"}\n',
    "indexes/by-id.jsonl": b'{"id":"GHSA-1","path":"data/raw/osv/GHSA-1.json"}\n',
    "manifests/export.json": b'{"profile":"mirror:full"}\n',
}


def ecdsa() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def ed() -> Signer:
    return Signer(ed25519.Ed25519PrivateKey.generate())


@dataclass
class Repo:
    mirror: Path
    keys: TufKeys
    pinned_root: bytes


def make_keys() -> TufKeys:
    return TufKeys(root=[ecdsa(), ed()], targets=[ecdsa()], snapshot=[ecdsa()], timestamp=[ed()])


def populate(mirror: Path) -> None:
    for rel, data in FILES.items():
        path = mirror / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    mirror = tmp_path / "mirror"
    populate(mirror)
    keys = make_keys()
    write_repository(mirror, mirror, keys, now=NOW, thresholds=Thresholds(root=2))
    return Repo(mirror, keys, (mirror / "tuf/metadata/1.root.json").read_bytes())


def expect(exc: pytest.ExceptionInfo[StellaError], code: ExitCode, *words: str) -> None:
    assert exc.value.exit_code == code
    text = exc.value.diagnostics()
    for word in words:
        assert word in text, text


def test_client_verifies_every_target(repo: Repo) -> None:
    result = verify_mirror(repo.mirror, repo.pinned_root)
    assert [t.path for t in result.targets] == sorted(FILES)
    assert (result.root_version, result.timestamp_version, result.snapshot_version, result.targets_version) == (
        1,
        1,
        1,
        1,
    )
    first = result.targets[0]
    assert first.length == len(FILES[first.path])
    files = sorted(p.name for p in (repo.mirror / "tuf/metadata").iterdir())
    assert files == ["1.root.json", "1.snapshot.json", "1.targets.json", "timestamp.json"]


def test_output_is_deterministic(tmp_path: Path) -> None:
    keys = make_keys()
    outputs = []
    for name in ("a", "b"):
        mirror = tmp_path / name
        populate(mirror)
        write_repository(mirror, mirror, keys, now=NOW)
        outputs.append({p.name: p.read_bytes() for p in (mirror / "tuf/metadata").iterdir()})
    assert outputs[0] == outputs[1]


def test_root_needs_a_threshold_of_keys() -> None:
    keys = make_keys()
    with pytest.raises(StellaError, match="threshold 3"):
        init_repository(keys, Thresholds(root=3), now=NOW)


def test_second_write_bumps_versions(repo: Repo) -> None:
    (repo.mirror / "data/raw/osv/GHSA-2.json").write_bytes(b'{"id":"GHSA-2"}\n')
    state = write_repository(repo.mirror, repo.mirror, repo.keys, now=NOW)
    assert (state.root_version, state.targets_version, state.snapshot_version, state.timestamp_version) == (1, 2, 2, 2)
    result = verify_mirror(repo.mirror, repo.pinned_root)
    assert "data/raw/osv/GHSA-2.json" in [t.path for t in result.targets]
    assert result.timestamp_version == 2


def test_tampered_target_is_an_integrity_failure(repo: Repo) -> None:
    (repo.mirror / "indexes/by-id.jsonl").write_bytes(b'{"id":"EVIL"}\n')
    with pytest.raises(IntegrityError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.INTEGRITY, "indexes/by-id.jsonl")


def test_missing_and_unlisted_targets_are_integrity_failures(repo: Repo) -> None:
    (repo.mirror / "data/raw/osv/extra.json").write_bytes(b"{}")
    with pytest.raises(IntegrityError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.INTEGRITY, "not listed", "extra.json")
    (repo.mirror / "data/raw/osv/extra.json").unlink()
    (repo.mirror / "manifests/export.json").unlink()
    with pytest.raises(IntegrityError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.INTEGRITY, "manifests/export.json", "missing")


def test_tampered_metadata_is_a_trust_failure(repo: Repo) -> None:
    path = repo.mirror / "tuf/metadata/1.targets.json"
    md = Metadata[Targets].from_bytes(path.read_bytes())
    md.signed.targets["indexes/by-id.jsonl"].length += 1
    path.write_bytes(md.to_bytes(JSONSerializer(compact=False)))
    with pytest.raises(TrustMetadataError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.TRUST, "targets", "1.targets.json", "signed by 0/1")


def test_expired_timestamp_is_a_trust_failure(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    populate(mirror)
    keys = make_keys()
    then = NOW - timedelta(days=2)
    write_repository(mirror, mirror, keys, now=then, expiries=Expiries(timestamp=timedelta(days=1)))
    pinned = (mirror / "tuf/metadata/1.root.json").read_bytes()
    with pytest.raises(TrustMetadataError) as exc:
        verify_mirror(mirror, pinned)
    expect(exc, ExitCode.TRUST, "expired", "timestamp")
    # An air-gapped receiver may state the time to evaluate expiry at.
    assert len(verify_mirror(mirror, pinned, at=then + timedelta(hours=1)).targets) == len(FILES)


def rotate(repo: Repo) -> TufKeys:
    """Root 2: the first root key and the timestamp key are replaced."""
    old_root = list(repo.keys.root)
    new_keys = TufKeys(
        root=[old_root[1], ecdsa()], targets=repo.keys.targets, snapshot=repo.keys.snapshot, timestamp=[ed()]
    )
    rotate_root(repo.mirror, old_root, new_keys, Thresholds(root=2), now=NOW)
    write_repository(repo.mirror, repo.mirror, new_keys, now=NOW)
    return new_keys


def test_client_with_old_pinned_root_follows_rotation(repo: Repo) -> None:
    rotate(repo)
    assert (repo.mirror / "tuf/metadata/2.root.json").is_file()
    result = verify_mirror(repo.mirror, repo.pinned_root)
    assert result.root_version == 2
    assert [t.path for t in result.targets] == sorted(FILES)


def test_rotation_without_old_root_threshold_is_refused(repo: Repo) -> None:
    new_keys = TufKeys(root=[ecdsa()], targets=repo.keys.targets, snapshot=repo.keys.snapshot, timestamp=[ed()])
    with pytest.raises(SignatureError, match="root 1"):
        rotate_root(repo.mirror, [repo.keys.root[0]], new_keys, now=NOW)
    assert not (repo.mirror / "tuf/metadata/2.root.json").exists()
    # A root 2 forged outside stella, signed by the new key only, is refused by the receiver.
    old = load_root(repo.mirror / "tuf/metadata").signed
    forged = Metadata(
        Root(version=2, expires=old.expires, keys=dict(old.keys), roles=dict(old.roles), consistent_snapshot=True)
    )
    forged.sign(TufSigner(new_keys.root[0]))
    (repo.mirror / "tuf/metadata/2.root.json").write_bytes(forged.to_bytes(JSONSerializer(compact=False)))
    with pytest.raises(TrustMetadataError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.TRUST, "2.root.json", "root was signed by 0/2")


def test_revoked_timestamp_key_is_no_longer_accepted(repo: Repo) -> None:
    rotate(repo)
    path = repo.mirror / "tuf/metadata/timestamp.json"
    md = Metadata[Timestamp].from_bytes(path.read_bytes())
    md.signatures.clear()
    md.sign(TufSigner(repo.keys.timestamp[0]))  # the key root 2 revoked
    path.write_bytes(md.to_bytes(JSONSerializer(compact=False)))
    with pytest.raises(TrustMetadataError) as exc:
        verify_mirror(repo.mirror, repo.pinned_root)
    expect(exc, ExitCode.TRUST, "timestamp", "signed by 0/1")


def test_rollback_to_older_mirror_is_refused(repo: Repo, tmp_path: Path) -> None:
    old_copy = tmp_path / "old"
    shutil.copytree(repo.mirror, old_copy)
    write_repository(repo.mirror, repo.mirror, repo.keys, now=NOW)
    state = tmp_path / "state"
    assert verify_mirror(repo.mirror, repo.pinned_root, state_dir=state).timestamp_version == 2
    with pytest.raises(TrustMetadataError) as exc:
        verify_mirror(old_copy, repo.pinned_root, state_dir=state)
    expect(exc, ExitCode.TRUST, "rollback", "timestamp")
    # The same mirror again is fine: equal versions are not a rollback.
    assert verify_mirror(repo.mirror, repo.pinned_root, state_dir=state).timestamp_version == 2


def test_hash_prefixed_targets_serve_a_stock_tuf_client(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    populate(mirror)
    write_repository(mirror, mirror, make_keys(), now=NOW, link_targets=True)
    base = "stella-mirror://local/"
    updater = Updater(
        metadata_dir=str(tmp_path / "cache"),
        metadata_base_url=base + "metadata/",
        target_base_url=base + "targets/",
        target_dir=str(tmp_path / "downloads"),
        fetcher=LocalDirFetcher(mirror / "tuf", base),
        bootstrap=(mirror / "tuf/metadata/1.root.json").read_bytes(),
    )
    (tmp_path / "downloads").mkdir()
    updater.refresh()
    info = updater.get_targetinfo("data/raw/osv/GHSA-1.json")
    assert info is not None
    assert Path(updater.download_target(info)).read_bytes() == FILES["data/raw/osv/GHSA-1.json"]
    # The links are not targets themselves: our receiver skips tuf/ when looking for unlisted files.
    assert len(verify_mirror(mirror, (mirror / "tuf/metadata/1.root.json").read_bytes()).targets) == len(FILES)
