"""`stella tuf init|rotate|expiry|refresh|status`: the TUF repository that signs mirror bundles."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.markup import escape

from adapters.profiles.mirror_refresh import refresh_bundle
from app.output import RichSink, print_json, stdout, table
from core.clock import utcnow
from core.errors import UsageError
from core.home import Home, resolve_home
from core.keys import KeyStore, read_passphrase_file
from core.signing import Signer
from core.trust import TrustedKey
from core.tuf_home import DEFAULT_EXPIRIES, TufHome, parse_duration
from core.tuf_repo import TOP_LEVEL_ROLES, Expiries, role_keyids
from verify.bundle import verify_bundle


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tuf", parents=[common], help="TUF keys, thresholds, expiry and root rotation for mirrors")
    tsub = p.add_subparsers(dest="tuf_command", metavar="ACTION", required=True)
    pw = argparse.ArgumentParser(add_help=False)
    pw.add_argument("--passphrase-file", type=Path, metavar="F", help="passphrase of encrypted role keys")

    init = tsub.add_parser(
        "init",
        parents=[common, pw],
        help="create the TUF repository (root version 1)",
        description="Name the key-store keys of each top-level role. --key sets every role not given its own.",
    )
    init.add_argument("--key", metavar="NAME", help="key for every role without its own option")
    for role in TOP_LEVEL_ROLES:
        init.add_argument(f"--{role}-key", action="append", default=[], metavar="NAME", help=f"{role} key; repeatable")
    init.add_argument("--threshold", action="append", default=[], metavar="ROLE=N", help="signatures a role needs")
    init.add_argument("--expires", action="append", default=[], metavar="ROLE=DURATION", help="e.g. timestamp=7d")
    init.set_defaults(handler=run_init)

    rot = tsub.add_parser(
        "rotate",
        parents=[common, pw],
        help="new keys for a role: root N+1 signed by the old and the new root keys",
    )
    rot.add_argument("role", choices=TOP_LEVEL_ROLES)
    rot.add_argument("--key", action="append", required=True, metavar="NAME", help="the role's new key; repeatable")
    rot.add_argument("--threshold", type=int, help="signatures the role needs from now on")
    rot.set_defaults(handler=run_rotate)

    exp = tsub.add_parser("expiry", parents=[common], help="how long a role's metadata stays valid")
    exp.add_argument("role", choices=TOP_LEVEL_ROLES)
    exp.add_argument("duration", help="e.g. 7d, 12h, 2w")
    exp.set_defaults(handler=run_expiry)

    rf = tsub.add_parser(
        "refresh",
        parents=[common, pw],
        help="new snapshot and timestamp for a mirror bundle that waited too long (payload unchanged)",
    )
    rf.add_argument("bundle", type=Path)
    rf.add_argument("--out", type=Path, required=True, help="the refreshed bundle")
    rf.add_argument("--key", required=True, metavar="NAME", help="the key that signed the bundle (signs it again)")
    rf.set_defaults(handler=run_refresh)

    st = tsub.add_parser("status", parents=[common], help="roles, keys, thresholds, expiry and root versions")
    st.set_defaults(handler=run_status)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or role not in TOP_LEVEL_ROLES:
            raise UsageError(f"{what} {item!r} is not ROLE=VALUE", hint="roles: " + ", ".join(TOP_LEVEL_ROLES))
        out[role] = value
    return out


def _passphrase(args: argparse.Namespace) -> bytes | None:
    return read_passphrase_file(args.passphrase_file) if args.passphrase_file else None


def run_init(args: argparse.Namespace) -> int:
    role_keys: dict[str, tuple[str, ...]] = {}
    for role in TOP_LEVEL_ROLES:
        names = getattr(args, f"{role}_key") or ([args.key] if args.key else [])
        if not names:
            raise UsageError(f"no key for the {role} role", hint="give --key NAME, or --{role}-key NAME")
        role_keys[role] = tuple(names)
    thresholds = {}
    for role, value in _pairs(args.threshold, "--threshold").items():
        if not value.isdigit():
            raise UsageError(f"threshold {value!r} for {role} is not a number")
        thresholds[role] = int(value)
    expires = {r: parse_duration(v) for r, v in _pairs(args.expires, "--expires").items()}
    body, text = init_tuf(resolve_home(args.home), role_keys, thresholds, expires, passphrase=_passphrase(args))
    _say(args, body, text)
    return 0


def init_tuf(
    home: Home,
    role_keys: dict[str, tuple[str, ...]],
    thresholds: dict[str, int] | None = None,
    expires: dict[str, timedelta] | None = None,
    *,
    passphrase: bytes | None = None,
) -> tuple[dict[str, Any], str]:
    """What `stella tuf init` does, without printing: its ``--json`` body and its sentence.

    Roles missing from ``expires`` get the default expiry (:data:`core.tuf_home.DEFAULT_EXPIRIES`)."""
    durations = {r: getattr(DEFAULT_EXPIRIES, r) for r in TOP_LEVEL_ROLES}
    durations.update(expires or {})
    tuf = TufHome(home)
    md = tuf.init(role_keys, thresholds or {}, Expiries(**durations), now=utcnow(), passphrase=passphrase)
    body = {"rootVersion": md.signed.version, "expires": _iso(md.signed.expires), **tuf.config().to_dict()}
    return body, f"TUF repository created: root version 1, expires {_iso(md.signed.expires)}"


def run_rotate(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    body, text = rotate_role(home, args.role, args.key, threshold=args.threshold, passphrase=_passphrase(args))
    _say(args, body, text)
    return 0


def rotate_role(
    home: Home, role: str, keys: list[str], *, threshold: int | None = None, passphrase: bytes | None = None
) -> tuple[dict[str, Any], str]:
    """What `stella tuf rotate ROLE --key ...` does, without printing: its ``--json`` body and its sentence."""
    md = TufHome(home).rotate(role, tuple(keys), threshold=threshold, now=utcnow(), passphrase=passphrase)
    version = md.signed.version
    return (
        {"rootVersion": version, "role": role, "keys": keys, "expires": _iso(md.signed.expires)},
        f"root {version} names new {role} keys ({', '.join(keys)}), signed by the old and new root "
        f"keys; the next mirror bundle ships {version}.root.json",
    )


def run_expiry(args: argparse.Namespace) -> int:
    body, text = set_role_expiry(resolve_home(args.home), args.role, args.duration)
    _say(args, body, text)
    return 0


def set_role_expiry(home: Home, role: str, duration_text: str) -> tuple[dict[str, Any], str]:
    """What `stella tuf expiry ROLE DURATION` does, without printing: its ``--json`` body and its sentence."""
    duration = parse_duration(duration_text)
    config = TufHome(home).set_expiry(role, duration)
    note = " (applies from the next root rotation)" if role == "root" else " (applies to the next export)"
    return config.to_dict(), f"{role} metadata now expires {human_duration(duration)} after signing{note}"


def run_refresh(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    signer = Signer.from_keystore(KeyStore(home), args.key, _passphrase(args))
    own = TrustedKey(args.key, signer.keyid, signer.algorithm, signer.public_key)
    report = verify_bundle(args.bundle, [own])  # refresh only what we signed and what is intact
    if report.error is not None:
        raise report.error
    sha, size = refresh_bundle(args.bundle, args.out, signer, home, now=utcnow(), sink=RichSink("refreshing"))
    _say(
        args,
        {"bundle": str(args.out), "sha256": sha, "size": size},
        f"refreshed {args.out}: new snapshot and timestamp, payload unchanged ({size} bytes, sha256 {sha})",
    )
    return 0


@dataclass(frozen=True)
class RoleStatus:
    """One top-level role as `stella tuf status` shows it, with the key ids the latest root names for it."""

    role: str
    keys: tuple[str, ...]
    keyids: tuple[str, ...]
    threshold: int
    expires_after: timedelta


@dataclass(frozen=True)
class TufStatus:
    """The home's TUF repository: roles in the order TUF names them, and the latest root."""

    roles: list[RoleStatus]
    root_version: int
    root_expires: datetime
    root_versions: list[int]
    body: dict[str, Any]


def tuf_status(home: Home) -> TufStatus:
    """What `stella tuf status` shows, without printing (the CLI and the TUI's keys screen share it).

    Raises :class:`core.errors.NotFoundError` when the home has no TUF repository (``stella tuf init``)."""
    tuf = TufHome(home)
    config = tuf.config()
    root = tuf.latest_root()
    keyids = role_keyids(root)
    roles = [
        RoleStatus(role, c.keys, keyids.get(role, ()), c.threshold, getattr(config.expiries, role))
        for role, c in sorted(config.roles.items(), key=lambda rc: TOP_LEVEL_ROLES.index(rc[0]))
    ]
    body = {
        "rootVersion": root.signed.version,
        "rootExpires": _iso(root.signed.expires),
        "rootVersions": [v for v, _ in tuf.roots()],
        **config.to_dict(),
    }
    expires = root.signed.expires.astimezone(UTC).replace(tzinfo=None)
    return TufStatus(roles, root.signed.version, expires, body["rootVersions"], body)


def run_status(args: argparse.Namespace) -> int:
    status = tuf_status(resolve_home(args.home))
    if args.json:
        print_json(status.body)
        return 0
    rows = [[r.role, ", ".join(r.keys), r.threshold, human_duration(r.expires_after)] for r in status.roles]
    table(["role", "keys", "threshold", "expires after"], rows)
    stdout.print(f"root version {status.root_version}, expires {status.body['rootExpires']}")
    return 0


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def human_duration(value: timedelta) -> str:
    """``7d``, ``12h``, ``2w``: a duration as `stella tuf` prints it (the largest unit that divides it)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _say(args: argparse.Namespace, body: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(body)
    else:
        stdout.print(escape(text))
