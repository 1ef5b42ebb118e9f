"""Registry credentials: read from a docker ``config.json`` or a credentials file, never written, never shown.

A :class:`Credentials` keeps its password out of ``repr`` and ``str``, so it cannot reach a log line, an event or an
error message by accident. stella never runs credential helpers (``credsStore``, ``credHelpers``): a config that
names one for the registry is refused with a hint, rather than an anonymous attempt that fails later.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInputError


@dataclass(frozen=True)
class Credentials:
    """A user name and a password (or token) for one registry."""

    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"credentials of {self.username!r}"


def _host_of(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``: how docker config keys name a registry."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0].lower()


def from_docker_config(path: Path, host: str) -> Credentials | None:
    """The credentials ``config.json`` at ``path`` holds for ``host`` (``auths[host].auth`` or ``username`` and
    ``password``); None when it holds none for that host."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise BadInputError(f"cannot read the registry config: {exc.strerror}", path=str(path)) from exc
    except ValueError as exc:
        raise BadInputError("the registry config is not JSON", path=str(path)) from exc
    if not isinstance(doc, dict):
        raise BadInputError("the registry config is not a JSON object", path=str(path))
    host = host.lower()
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict) and any(_host_of(str(k)) == host for k in helpers):
        raise BadInputError(
            f"the registry config names a credential helper for {host}; stella does not run credential helpers",
            path=str(path),
            hint="give the credentials in an 'auths' entry or a --credentials-file",
        )
    auths = doc.get("auths", {})
    if not isinstance(auths, dict):
        raise BadInputError("'auths' is not an object", path=str(path), pointer="/auths")
    for key, entry in auths.items():
        if _host_of(str(key)) != host or not isinstance(entry, dict):
            continue
        pointer = f"/auths/{key}"
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            try:
                user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise BadInputError("'auth' is not base64 of USER:PASSWORD", path=str(path), pointer=pointer) from exc
            if not sep or not user:
                raise BadInputError("'auth' is not base64 of USER:PASSWORD", path=str(path), pointer=pointer)
            return Credentials(user, password)
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return Credentials(entry["username"], entry["password"])
    if isinstance(doc.get("credsStore"), str) and doc["credsStore"]:
        raise BadInputError(
            f"the registry config has no 'auths' entry for {host}, only a credential store; stella does not run"
            " credential helpers",
            path=str(path),
            hint="give the credentials in an 'auths' entry or a --credentials-file",
        )
    return None


def from_file(path: Path) -> Credentials:
    """A credentials file: one line ``USER:PASSWORD`` (the password may hold ':')."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot read the credentials file: {exc.strerror}", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise BadInputError("the credentials file is not UTF-8 text", path=str(path)) from exc
    lines = [line for line in text.splitlines() if line.strip()]
    user, sep, password = lines[0].partition(":") if len(lines) == 1 else ("", "", "")
    if not sep or not user:
        raise BadInputError("the credentials file must hold one line USER:PASSWORD", path=str(path))
    return Credentials(user, password)
