"""`stella tuf init|rotate|expiry|refresh|status`: the TUF repository that signs mirror bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.output import RichSink, escape, print_json, stdout, table
from core.durations import human_duration, parse_duration
from core.errors import UsageError
from core.home import resolve_home
from core.tuf_repo import TOP_LEVEL_ROLES
from services.tuf import (
    TufChange,
    init_tuf,
    pin_hint,
    refresh_mirror_bundle,
    rotate_role,
    set_role_expiry,
    tuf_status,
)


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
    rf.add_argument("--mkdir", "-p", action="store_true", help="create the directory of --out when it is missing")
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
    home = resolve_home(args.home)
    _say(args, init_tuf(home, role_keys, thresholds, expires, passphrase_file=args.passphrase_file))
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    _say(args, rotate_role(home, args.role, args.key, threshold=args.threshold, passphrase_file=args.passphrase_file))
    return 0


def run_expiry(args: argparse.Namespace) -> int:
    _say(args, set_role_expiry(resolve_home(args.home), args.role, args.duration))
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    refreshed = refresh_mirror_bundle(
        resolve_home(args.home),
        args.bundle,
        args.out,
        args.key,
        passphrase_file=args.passphrase_file,
        mkdir=args.mkdir,
        observer=RichSink("refreshing"),
    )
    if args.json:
        print_json(refreshed.to_dict())
    else:
        stdout.print(escape(refreshed.text))
    return 0


def run_status(args: argparse.Namespace) -> int:
    status = tuf_status(resolve_home(args.home))
    if args.json:
        print_json(status.body)
        return 0
    rows = [[r.role, ", ".join(r.keys), r.threshold, human_duration(r.expires_after)] for r in status.roles]
    table(["role", "keys", "threshold", "expires after"], rows)
    stdout.print(f"root version {status.root_version}, expires {status.body['rootExpires']}")
    stdout.print(escape(pin_hint(status.root_path)))
    return 0


def _say(args: argparse.Namespace, change: TufChange) -> None:
    if args.json:
        print_json(change.body)
    else:
        stdout.print(escape(change.text))
