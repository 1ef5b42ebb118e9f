"""`stella verify-script [--out FILE] [--devportal]`: the trusted copy of the stella-less verifier.

The ``verify.sh`` inside a bundle travelled with the bundle, so whoever could alter the bundle could alter the
script too. This command prints the script this stella version ships (``verify-portal.sh`` with ``--devportal``),
byte for byte as the bundle writer embeds it; docs/verification.md publishes its sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from app.output import escape, print_json, stdout
from core.contract.bundle import VERIFY_SCRIPT
from core.contract.devportal import VERIFY_PORTAL
from core.errors import EnvironmentFailure, UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify-script",
        parents=[common],
        help="print the trusted verify.sh (or verify-portal.sh) for checking a bundle without stella",
        description="Print the offline verification script this stella version puts into every bundle, to run "
        "instead of the copy inside a received bundle (which its sender, or anyone who could alter the bundle, "
        "wrote). Run it as `sh SCRIPT SIGNER.pub EXTRACTED-BUNDLE-DIR`; docs/verification.md publishes its sha256.",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the script to FILE (mode 0755) instead of stdout")
    p.add_argument(
        "--devportal", action="store_true", help="the devportal:offline bundle's verify-portal.sh instead of verify.sh"
    )
    p.set_defaults(handler=run)


def script(devportal: bool) -> tuple[str, bytes]:
    """The shipped script's name and bytes: the ones the bundle writer embeds."""
    if devportal:
        return VERIFY_PORTAL, resources.files("adapters.devportal_files").joinpath(VERIFY_PORTAL).read_bytes()
    return VERIFY_SCRIPT, resources.files("core.bundle_files").joinpath(VERIFY_SCRIPT).read_bytes()


def _write(out: Path, data: bytes) -> None:
    """Write ``out`` beside and rename: a link at ``out`` is replaced, never followed."""
    if out.is_dir():
        raise UsageError(f"{out} is a directory; name the file to write", path=str(out))
    part = out.with_name(f".{out.name}.part")
    try:
        part.unlink(missing_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        part.chmod(0o755)
        part.replace(out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise EnvironmentFailure(f"cannot write the script: {exc.strerror}", path=str(out)) from exc


def run(args: argparse.Namespace) -> int:
    name, data = script(bool(args.devportal))
    digest = hashlib.sha256(data).hexdigest()
    if args.out is not None:
        _write(args.out, data)
    if args.json:
        report: dict[str, Any] = {"script": name, "sha256": digest, "size": len(data)}
        if args.out is not None:
            report["out"] = str(args.out)
        else:
            report["text"] = data.decode("utf-8")
        print_json(report)
    elif args.out is not None:
        stdout.print(f"wrote {escape(str(args.out))}: stella's {name}, sha256 {digest}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
