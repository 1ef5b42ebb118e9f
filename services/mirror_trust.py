"""Which TUF root a mirror directory trusts, and the one loud way to change it.

The first import into a mirror pins the root given with ``--trust-root``: its bytes are kept beside the states
as ``DIR/trust-root.json`` (written with the import's other outputs, before the swap, renamed into place after
it), and each import verifies from it, walking the root rotations the bundles carry. A later ``--trust-root``
must be that same root: a different one is refused (exit 6) whatever it would verify, since it would let another
sender's repository replace the mirror. Changing the pinned root is a separate command,
``stella mirror trust-root --replace NEW_ROOT --into DIR --yes`` (:func:`replace_trust_root`), which prints the old
and the new root's digests and appends the change to ``DIR/trust-changes.jsonl``; the next import then verifies
from the new root with fresh TUF state (the old sender's versions say nothing about the new one's).

Each state records the digest of the root it was verified under (``meta/trust-root.sha256``), so an import knows
whether the pin changed since. A mirror made before pins were kept has no ``trust-root.json``: the root its
current state trusts is taken as the pin, and written by its next import.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]
from tuf.api.serialization import DeserializationError

from core.atomic import PreparedFile
from core.clock import rfc3339, utcnow
from core.errors import BadInputError, TrustMetadataError, UsageError
from services.mirror_dir import MirrorDir

#: The pinned root, in the mirror directory.
TRUST_ROOT = "trust-root.json"
#: One JSON line per pin and per replacement, oldest first, in the mirror directory.
TRUST_LOG = "trust-changes.jsonl"
#: In a state's ``meta/``: the sha256 of the pinned root its import verified from.
STATE_PIN = "trust-root.sha256"
#: In a state's ``meta/``: the TUF metadata its import trusted (rollback protection for the next import).
STATE_TUF = "tuf"

REPLACE_HINT = "stella mirror trust-root --replace NEW_ROOT.json --into {into} --yes"


@dataclass(frozen=True)
class RootInfo:
    """A TUF root by its bytes' sha256 and its version."""

    sha256: str
    version: int

    @classmethod
    def of(cls, data: bytes) -> RootInfo:
        try:
            version = int(json.loads(data)["signed"]["version"])
        except (ValueError, KeyError, TypeError):
            version = 0
        return cls(hashlib.sha256(data).hexdigest(), version)

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "version": self.version}

    def __str__(self) -> str:
        return f"sha256:{self.sha256} (version {self.version})"


@dataclass(frozen=True)
class RootChoice:
    """What an import verifies from: ``root`` (None: the current state's cached root), whether to start from the
    current state's TUF state (``keep_state``), and the pin to write with the import (None: already written)."""

    root: bytes | None
    keep_state: bool
    pin: bytes | None
    pinned: RootInfo | None


def pinned_root(into: Path) -> bytes | None:
    """The root the mirror at ``into`` is pinned to (None: no pin written yet)."""
    path = into / TRUST_ROOT
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TrustMetadataError(f"cannot read the pinned TUF root: {exc.strerror}", path=str(path)) from None


def choose_root(into: Path, given: bytes | None, current: Path | None) -> RootChoice:
    """The root an import into ``into`` verifies from, given ``--trust-root`` bytes (``given``) and the current
    state's directory; refuses a ``given`` root other than the pinned one (exit 6)."""
    pin = pinned_root(into)
    cached = current / "meta" / STATE_TUF / "root.json" if current is not None else None
    if pin is None and cached is not None and cached.is_file():
        # A mirror from before pins were kept: the root its current state trusts is the pin.
        legacy = cached.read_bytes()
        if given is not None and given != legacy:
            raise _refused(into, RootInfo.of(legacy), RootInfo.of(given))
        return RootChoice(given, True, legacy, RootInfo.of(legacy))
    if pin is None:
        return RootChoice(given, current is not None, given, RootInfo.of(given) if given is not None else None)
    info = RootInfo.of(pin)
    if given is not None and given != pin:
        raise _refused(into, info, RootInfo.of(given))
    verified_under = _state_pin(current)
    if verified_under is not None and verified_under != info.sha256:
        # The pin was replaced since the current state was imported: start from the new root, afresh.
        return RootChoice(pin, False, None, info)
    return RootChoice(given if given is not None else (None if current is not None else pin), True, None, info)


def _state_pin(current: Path | None) -> str | None:
    """The sha256 of the pinned root ``current`` was verified under; for a state imported before pins were kept,
    the root it trusted (which is what its mirror was pinned to)."""
    if current is None:
        return None
    try:
        return (current / "meta" / STATE_PIN).read_text().strip() or None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    cached = current / "meta" / STATE_TUF / "root.json"
    return RootInfo.of(cached.read_bytes()).sha256 if cached.is_file() else None


def _refused(into: Path, pinned: RootInfo, given: RootInfo) -> TrustMetadataError:
    return TrustMetadataError(
        f"this mirror trusts TUF root {pinned}; --trust-root gives a different root, {given}, and is refused",
        path=str(into / TRUST_ROOT),
        hint="to trust another sender's root on purpose: " + REPLACE_HINT.format(into=into),
    )


def _log_line(action: str, previous: RootInfo | None, root: RootInfo, **extra: Any) -> bytes:
    entry: dict[str, Any] = {"at": rfc3339(utcnow().replace(microsecond=0)), "action": action}
    entry["previousRoot"] = previous.to_dict() if previous is not None else None
    entry["root"] = root.to_dict()
    return json.dumps(entry | extra, sort_keys=True).encode() + b"\n"


def _log_with(into: Path, line: bytes) -> bytes:
    try:
        return (into / TRUST_LOG).read_bytes() + line
    except FileNotFoundError:
        return line


def prepare_pin(into: Path, choice: RootChoice) -> list[PreparedFile]:
    """The pin files an import writes when it pins its mirror's root (the first import, or the first since pins
    were kept), prepared before the swap; :meth:`PreparedFile.commit` renames them into place after it."""
    if choice.pin is None:
        return []
    info = RootInfo.of(choice.pin)
    prepared = [PreparedFile.prepare(into / TRUST_ROOT, choice.pin, what="cannot write the pinned TUF root")]
    try:
        log = _log_with(into, _log_line("pin", None, info))
        prepared.append(PreparedFile.prepare(into / TRUST_LOG, log, what="cannot write the trust-change log"))
    except BaseException:
        prepared[0].discard()
        raise
    return prepared


@dataclass(frozen=True)
class TrustChange:
    """A replaced pin: the mirror, the old root (None: none was pinned) and the new one."""

    into: Path
    previous: RootInfo | None
    root: RootInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            "mirror": str(self.into),
            "previousRoot": self.previous.to_dict() if self.previous is not None else None,
            "root": self.root.to_dict(),
            "log": str(self.into / TRUST_LOG),
        }


def _valid_root(data: bytes, source: Path) -> Metadata[Root]:
    """``data`` as TUF root metadata signed by its own threshold of root keys."""
    try:
        md: Metadata[Root] = Metadata[Root].from_bytes(data)
        md.verify_delegate(Root.type, md)
    except DeserializationError as exc:
        raise BadInputError(f"not TUF root metadata: {exc}", path=str(source)) from None
    except (UnsignedMetadataError, ValueError, TypeError) as exc:
        raise TrustMetadataError(f"the root is not signed by its own root keys: {exc}", path=str(source)) from None
    return md


def replace_trust_root(into: Path, new_root: Path, *, yes: bool) -> TrustChange:
    """`stella mirror trust-root --replace NEW_ROOT --into DIR --yes`: pin ``new_root`` for the mirror at ``into``
    (it must be a valid self-signed TUF root), recording the change; ``yes`` says the operator means it."""
    if not yes:
        raise UsageError(
            "replacing the TUF root a mirror trusts lets another sender's repository replace the mirror",
            hint="check the new root's digest out of band, then add --yes",
        )
    mirror = MirrorDir(into)
    if not into.is_dir() or (mirror.current() is None and pinned_root(into) is None):
        raise UsageError("not a mirror directory with an import to re-pin", path=str(into))
    try:
        data = new_root.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read the TUF root: {exc.strerror}", path=str(new_root)) from None
    _valid_root(data, new_root)
    with mirror.locked():
        current = mirror.current()
        old = pinned_root(into)
        if old is None and current is not None and (current / "meta" / STATE_TUF / "root.json").is_file():
            old = (current / "meta" / STATE_TUF / "root.json").read_bytes()
        previous = RootInfo.of(old) if old is not None else None
        root = RootInfo.of(data)
        line = _log_line("replace", previous, root, rootFile=str(new_root))
        prepared = [
            PreparedFile.prepare(into / TRUST_LOG, _log_with(into, line), what="cannot write the trust-change log")
        ]
        try:
            prepared.append(PreparedFile.prepare(into / TRUST_ROOT, data, what="cannot write the pinned TUF root"))
        except BaseException:
            prepared[0].discard()
            raise
        for file in prepared:  # the log first: a change is never made without its record
            file.commit(what="cannot re-pin the TUF root")
    return TrustChange(into, previous, root)
