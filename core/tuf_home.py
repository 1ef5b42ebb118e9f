"""The sending side's TUF repository: which key-store keys sign each role, thresholds, expiries, root history.

Kept in the home::

    tuf/config.json         roles -> key names and threshold, expiry per role (seconds)
    tuf/root/N.root.json    every root version: 1 from ``stella tuf init``, N+1 from each ``stella tuf rotate``

Every mirror bundle ships all root versions, so a receiver that pinned root 1 walks the rotations itself.
Targets, snapshot and timestamp are not kept here: each bundle signs its own, with versions taken from the
run's ``createdAt`` (seconds since the epoch), so versions only go up from one export to the next while a
retried run reproduces the same bytes.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]
from tuf.api.serialization.json import JSONSerializer

from core.errors import BadInputError, EnvironmentFailure, NotFoundError, UsageError
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer
from core.tuf_repo import (
    TOP_LEVEL_ROLES,
    Expiries,
    Thresholds,
    TufKeys,
    init_repository,
    rotate_root,
)

CONFIG_VERSION = 1
_ROOT_FILE = re.compile(r"^([1-9][0-9]*)\.root\.json$")
DEFAULT_EXPIRIES = Expiries()


def _role(role: str) -> str:
    if role not in TOP_LEVEL_ROLES:
        raise UsageError(f"unknown TUF role {role!r}", hint="roles: " + ", ".join(TOP_LEVEL_ROLES))
    return role


@dataclass(frozen=True)
class RoleConfig:
    keys: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class TufConfig:
    """The role keys (key-store names), thresholds and expiries of the home's TUF repository."""

    roles: dict[str, RoleConfig]
    expiries: Expiries

    def to_dict(self) -> dict[str, Any]:
        return {
            "configVersion": CONFIG_VERSION,
            "roles": {r: {"keys": list(c.keys), "threshold": c.threshold} for r, c in sorted(self.roles.items())},
            "expiresSeconds": {r: int(getattr(self.expiries, r).total_seconds()) for r in TOP_LEVEL_ROLES},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str) -> TufConfig:
        try:
            roles = {
                _role(r): RoleConfig(tuple(str(k) for k in c["keys"]), int(c["threshold"]))
                for r, c in doc["roles"].items()
            }
            expiries = Expiries(**{r: timedelta(seconds=int(v)) for r, v in doc["expiresSeconds"].items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"TUF configuration is malformed: {exc!r}", path=source) from None
        if set(roles) != set(TOP_LEVEL_ROLES):
            raise BadInputError("TUF configuration must name keys for every top-level role", path=source)
        return cls(roles, expiries)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(**{r: c.threshold for r, c in self.roles.items()})


class TufHome:
    """The TUF repository of one stella home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.dir = home.root / "tuf"
        self.config_path = self.dir / "config.json"
        self.root_dir = self.dir / "root"

    @property
    def initialized(self) -> bool:
        return self.config_path.is_file()

    def config(self) -> TufConfig:
        if not self.initialized:
            raise NotFoundError(
                "this home has no TUF repository", hint="create one with `stella tuf init` before mirror exports"
            )
        try:
            doc = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read the TUF configuration: {exc}", path=str(self.config_path)) from None
        return TufConfig.from_dict(doc, str(self.config_path))

    def _save(self, config: TufConfig) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
            tmp.replace(self.config_path)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write the TUF configuration: {exc.strerror}", path=str(tmp)) from exc

    def root_path(self, version: int) -> Path:
        """The file of root ``version``: the one a receiver pins (``stella mirror import --trust-root``)."""
        return self.root_dir / f"{version}.root.json"

    def _write_root(self, md: Metadata[Root]) -> Path:
        path = self.root_path(md.signed.version)
        try:
            self.root_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_bytes(md.to_bytes(JSONSerializer(compact=False)))
        except OSError as exc:
            raise EnvironmentFailure(f"cannot write TUF root metadata: {exc.strerror}", path=str(path)) from exc
        return path

    def next_version(self, now: datetime) -> int:
        """A targets/snapshot/timestamp version above every one this home issued: ``now`` in epoch seconds, or
        one more than the last when exports come faster than one a second. Pinned in the run's options."""
        path = self.dir / "last-version"
        try:
            last = int(path.read_text().strip()) if path.is_file() else 0
        except (OSError, ValueError):
            last = 0
        epoch = int((now.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds())
        version = max(epoch, last + 1)
        try:
            path.write_text(f"{version}\n")
        except OSError as exc:
            raise EnvironmentFailure(f"cannot record the TUF version: {exc.strerror}", path=str(path)) from exc
        return version

    def roots(self) -> list[tuple[int, bytes]]:
        """Every root version, oldest first, as (version, file bytes)."""
        if not self.root_dir.is_dir():
            return []
        found = sorted((int(m.group(1)), p) for p in self.root_dir.iterdir() if (m := _ROOT_FILE.match(p.name)))
        return [(v, p.read_bytes()) for v, p in found]

    def latest_root(self) -> Metadata[Root]:
        roots = self.roots()
        if not roots:
            raise NotFoundError("this home has no TUF root", hint="run `stella tuf init`")
        md: Metadata[Root] = Metadata.from_bytes(roots[-1][1])
        return md

    def _signers(self, names: tuple[str, ...], passphrase: bytes | None) -> list[Signer]:
        store = KeyStore(self.home)
        return [Signer.from_keystore(store, name, passphrase) for name in names]

    def keys(self, passphrase: bytes | None = None) -> TufKeys:
        """The signers of every role, loaded from the key store."""
        config = self.config()
        loaded = {r: self._signers(c.keys, passphrase) for r, c in config.roles.items()}
        return TufKeys(**loaded)

    def init(
        self,
        role_keys: dict[str, tuple[str, ...]],
        thresholds: dict[str, int],
        expiries: Expiries,
        *,
        now: datetime,
        passphrase: bytes | None = None,
    ) -> Metadata[Root]:
        """Create the repository: config and root version 1 naming ``role_keys``; refused if one exists."""
        if self.initialized or self.roots():
            raise UsageError(
                f"this home already has a TUF repository (root {self.latest_root().signed.version})",
                hint="change keys with `stella tuf rotate ROLE`",
            )
        config = TufConfig(
            {r: RoleConfig(tuple(role_keys[r]), thresholds.get(r, 1)) for r in TOP_LEVEL_ROLES}, expiries
        )
        keys = TufKeys(**{r: self._signers(c.keys, passphrase) for r, c in config.roles.items()})
        md = init_repository(keys, config.thresholds, expiries, now=now)
        self._write_root(md)
        self._save(config)
        return md

    def rotate(
        self,
        role: str,
        new_keys: tuple[str, ...],
        *,
        threshold: int | None,
        now: datetime,
        passphrase: bytes | None = None,
    ) -> Metadata[Root]:
        """Root N+1 naming ``new_keys`` for ``role``, signed by the current root keys and the new ones.

        The old keys of ``role`` are revoked from root N+1 on; the next mirror bundle ships N+1.root.json.
        """
        config = self.config()
        _role(role)
        if not new_keys:
            raise UsageError("a rotation needs at least one new key (--key NAME)")
        old_root_signers = self._signers(config.roles["root"].keys, passphrase)
        roles = dict(config.roles)
        roles[role] = RoleConfig(tuple(new_keys), threshold or min(roles[role].threshold, len(set(new_keys))))
        new = TufConfig(roles, config.expiries)
        keys = TufKeys(**{r: self._signers(c.keys, passphrase) for r, c in roles.items()})
        with _RootWorkdir(self) as work:
            md = rotate_root(work, old_root_signers, keys, new.thresholds, new.expiries, now=now)
        self._write_root(md)
        self._save(new)
        return md

    def set_expiry(self, role: str, duration: timedelta) -> TufConfig:
        """Change how long ``role``'s metadata stays valid (root: from the next rotation on)."""
        config = self.config()
        values = {r: getattr(config.expiries, r) for r in TOP_LEVEL_ROLES}
        values[_role(role)] = duration
        new = TufConfig(config.roles, Expiries(**values))
        self._save(new)
        return new


class _RootWorkdir:
    """``core.tuf_repo.rotate_root`` works on a repository directory: give it one holding the latest root."""

    def __init__(self, tuf: TufHome) -> None:
        self.tuf = tuf
        self.path = tuf.dir / ".rotate"

    def __enter__(self) -> Path:
        shutil.rmtree(self.path, ignore_errors=True)
        meta = self.path / "tuf" / "metadata"
        meta.mkdir(parents=True)
        version, data = self.tuf.roots()[-1]
        (meta / f"{version}.root.json").write_bytes(data)
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
