"""`stella verify BUNDLE`: offline, fail-closed verification with a check-by-check report."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519
from rich.markup import escape

from app.output import print_json, stderr, stdout
from core.errors import UsageError
from core.home import resolve_home
from core.keys import keyid_of
from core.signing import algorithm_of
from core.trust import TrustedKey, TrustStore, parse_public_key
from verify.bundle import Check, verify_bundle


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify",
        parents=[common],
        help="verify a received bundle offline (signatures, every digest and size, layout)",
        description="Verify a bundle without extracting it. Trusted signers come from --key, or else from the "
        "trust store (`stella trust add`). Exit codes: 0 verified, 3 bad input, 4 integrity, 5 signature, "
        "6 trust metadata.",
    )
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")
    p.add_argument(
        "--identity",
        type=Path,
        action="append",
        metavar="FILE",
        help="age identity file (AGE-SECRET-KEY-1...): decrypt an encrypted payload and check its plaintext digests",
    )
    p.add_argument("--at", metavar="TIME", help="evaluate time-dependent checks at this RFC 3339 time (UTC)")
    p.set_defaults(handler=run)


def keys_from_files(paths: list[Path]) -> list[TrustedKey]:
    """Trusted keys from PEM files given on the command line or in the TUI (labelled by their path)."""
    keys = []
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read key: {exc.strerror}", path=str(path)) from None
        public = parse_public_key(pem, source=str(path))
        keys.append(TrustedKey(str(path), keyid_of(public), algorithm_of(public), public))
    return keys


def read_identities(path: Path) -> list[Any]:
    """X25519 identities from an age identity file (one AGE-SECRET-KEY-1... per line, # comments)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read identity file: {exc.strerror}", path=str(path)) from None
    out = []
    for n, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise UsageError(f"line {n} is not an age X25519 identity", path=str(path)) from None
    if not out:
        raise UsageError("no identity in the file", path=str(path))
    return out


def parse_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time", hint="e.g. 2026-11-22T12:00:00Z") from None
    # Naive times are taken as UTC; zoned times are converted to UTC.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def run(args: argparse.Namespace) -> int:
    keys = keys_from_files(args.key) if args.key else TrustStore(resolve_home(args.home)).list()

    def show(check: Check) -> None:
        if args.json:
            return
        mark = "[green]  ok  [/]" if check.ok else "[bold red] FAIL [/]"
        where = f" [dim]{escape(check.path)}[/]" if check.path and not check.ok else ""
        (stdout if check.ok else stderr).print(f"{mark} {check.name:16} {escape(check.detail)}{where}")

    identities = [i for path in args.identity or [] for i in read_identities(path)]
    report = verify_bundle(args.bundle, keys, at=parse_at(args.at), on_check=show, identities=identities)
    if args.json:
        print_json(report.to_dict())
    elif report.ok:
        m = report.manifest
        profile = (m.get("profile") or {}).get("id")
        stdout.print(
            f"[bold green]verified[/] {escape(str(args.bundle))}: {profile} run {m.get('runId')} for tenant "
            f"{m.get('tenant')}, {m.get('fileCount')} files, created {m.get('createdAt')}"
        )
    if report.error is not None:
        if not args.json:
            stderr.print(f"[bold red]not verified:[/] {escape(report.error.diagnostics())}")
        return int(report.error.exit_code)
    return 0
