"""Whether to trust a mirror state: the checks an import and ``stella mirror verify`` make, in order.

1. ``base``: a full bundle replaces whatever the mirror holds; a delta must name the mirror's current state as its
   base (:func:`check_base`).
2. The state the bundle carries (``manifests/state.json``) is the one its signed manifest names, with the base the
   manifest names (:func:`check_signed_state`), and it is for the tenant the mirror already holds
   (:func:`check_tenant`).
3. ``tuf``: the TUF chain from the trusted root through any rotations to timestamp, snapshot and targets, expiry at
   ``at``, versions that only go up, every target's length and digest, and no file the targets do not list
   (:func:`verify.tuf_client.verify_mirror`).
4. ``state``: the state lists exactly the TUF targets (:func:`verify_state`, for a state already in place).

The mirror directory itself (lock, staging, swap, quarantine, receipts, rollback) is :mod:`services.mirror`'s;
these functions decide trust from what they are given and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.contract.mirror import STATE
from core.errors import IntegrityError, PolicyRefusal, StellaError, TrustMetadataError
from core.mirror_layout import MirrorState, load_state
from core.progress import Check, NullObserver, Observer
from verify.tuf_client import TufVerification, verify_mirror


def tuf_detail(tuf: TufVerification) -> str:
    """The ``tuf`` check's sentence: the role versions trusted and how many targets matched."""
    return (
        f"TUF chain verified: root {tuf.root_version}, timestamp {tuf.timestamp_version}, snapshot "
        f"{tuf.snapshot_version}, targets {tuf.targets_version}; {len(tuf.targets)} targets match"
    )


def check_base(base: Mapping[str, Any] | None, current: MirrorState | None, *, source: str) -> str:
    """The ``base`` check: ``base`` (the signed manifest's, None for a full bundle) against the mirror's current
    state. Returns the check's detail; raises :class:`TrustMetadataError` (exit 6) for a delta that does not apply."""
    if not base:
        return "full bundle: replaces whatever the mirror holds"
    want = str(base.get("stateDigest"))
    if current is None:
        raise TrustMetadataError(
            f"this delta applies to mirror state {want[:12]}, but the mirror is empty",
            path=source,
            hint="import the full bundle of its chain first",
        )
    if current.digest != want:
        raise TrustMetadataError(
            f"this delta applies to mirror state {want[:12]} (sequence {base.get('sequence')}), but the mirror "
            f"is at {current.digest[:12]} (sequence {current.sequence})",
            path=source,
            hint="ask the sender for a delta against this mirror's receipt (stella mirror status shows it)",
        )
    return f"delta base {want[:12]} is the mirror's current state"


def check_signed_state(state: MirrorState, *, state_digest: object, base_digest: object) -> None:
    """The state read from the bundle is the one the signed manifest names (``mirror.stateDigest``), derived from
    the base it names (``base.stateDigest``, None for a full bundle); raises :class:`IntegrityError` otherwise."""
    if state.digest != state_digest:
        raise IntegrityError("manifests/state.json differs from the state the signed manifest names", path=STATE)
    if state.base != base_digest:
        raise IntegrityError("the state's base differs from the signed manifest's base", path=STATE)


def check_tenant(state: MirrorState, current: MirrorState | None, *, source: str) -> None:
    """A mirror holds one tenant: a state for another is refused (:class:`PolicyRefusal`, exit 7)."""
    if current is not None and current.tenant != state.tenant:
        raise PolicyRefusal(
            f"this mirror holds tenant {current.tenant!r}; the bundle is for {state.tenant!r}", path=source
        )


@dataclass(frozen=True)
class MirrorVerification:
    """A mirror state that verified afresh: the state, its TUF verification and how many files it has."""

    state: MirrorState
    tuf: TufVerification
    files: int

    def to_dict(self) -> dict[str, Any]:
        return {"stateDigest": self.state.digest, "sequence": self.state.sequence, "files": self.files} | (
            self.tuf.to_dict()
        )


def verify_state(
    tree: Path, root: bytes, *, at: datetime | None = None, observer: Observer | None = None
) -> MirrorVerification:
    """Verify a mirror tree in place from the TUF ``root`` it trusts: checks ``tuf`` and ``state`` (see the module
    docstring). ``observer`` hears each check as it completes, a failed one included, before its error is raised."""
    report = observer or NullObserver()

    def failed(name: str, error: StellaError) -> StellaError:
        report.check(Check(name, False, error.message, error.path))
        return error

    try:
        tuf = verify_mirror(tree, root, at=at, strict=True)
    except StellaError as exc:
        raise failed("tuf", exc) from exc
    report.check(Check("tuf", True, tuf_detail(tuf)))
    state = load_state(tree)
    listed = {f.path for f in state.files} | {STATE}
    targets = {t.path for t in tuf.targets}
    if listed != targets:
        odd = sorted(listed ^ targets)[0]
        raise failed("state", IntegrityError("the mirror state and the TUF targets disagree", path=odd))
    report.check(
        Check("state", True, f"state {state.digest[:12]} (sequence {state.sequence}) lists exactly the targets")
    )
    return MirrorVerification(state, tuf, len(listed))
