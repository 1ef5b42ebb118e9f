"""`stella distribute RUN --to oci://...` and `stella pull oci://...@sha256:... --out F` (docs/distribution.md)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from app.output import RichSink, escape, print_json, stdout
from core.clock import parse_at
from core.home import resolve_home
from services.distribute import Access, Credentials, distribute_run, pull_bundle
from services.distribute_s3 import LockMode, S3Distribution, S3Options

DISTRIBUTE_HELP = "push a run's bundle to an OCI registry (signature and provenance as a referrer) or an S3 bucket"
PULL_HELP = "pull a bundle from an OCI registry by digest, every byte checked (then: stella verify FILE)"


def _access_options() -> argparse.ArgumentParser:
    opts = argparse.ArgumentParser(add_help=False)
    creds = opts.add_mutually_exclusive_group()
    creds.add_argument(
        "--registry-config", type=Path, metavar="FILE", help="docker config.json with the registry's 'auths' entry"
    )
    creds.add_argument(
        "--credentials-file",
        type=Path,
        metavar="FILE",
        help="a file with one line USER:PASSWORD; for s3:// an AWS credentials file",
    )
    opts.add_argument("--ca-file", type=Path, metavar="FILE", help="CA certificates (PEM) to trust for the registry")
    opts.add_argument(
        "--plain-http", action="store_true", help="HTTP without TLS: only for a registry on 127.0.0.1/::1/localhost"
    )
    opts.add_argument(
        "--chunk-size",
        type=int,
        default=8 << 20,
        metavar="BYTES",
        help="upload chunk size (default 8 MiB); each chunk is a resume point; for s3:// the part size (5 MiB min)",
    )
    return opts


def _prompt(host: str) -> Credentials | None:
    """Ask for a user name and password on the terminal (never echoed, never kept beyond this process)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    sys.stderr.write(f"{host} asks for credentials\nuser name: ")
    sys.stderr.flush()
    user = sys.stdin.readline().strip()
    if not user:
        return None
    return Credentials(user, getpass.getpass("password: "))


def _access(args: argparse.Namespace) -> Access:
    return Access(
        registry_config=args.registry_config,
        credentials_file=args.credentials_file,
        prompt=_prompt,
        plain_http=args.plain_http,
        ca_file=args.ca_file,
        chunk_size=args.chunk_size,
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("distribute", parents=[common, _access_options()], help=DISTRIBUTE_HELP)
    p.add_argument("run_id", metavar="RUN")
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="oci://HOST[/TENANT/NAME][:TAG] (default repository TENANT/PROFILE, default tag the run id), "
        "or s3://BUCKET/PREFIX (the bundle goes to PREFIX/TENANT/RUN/FILE)",
    )
    s3 = p.add_argument_group("object storage (--to s3://; docs/distribution-s3.md)")
    s3.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible store (https; http on loopback only)")
    s3.add_argument("--path-style", action="store_true", help="path-style addressing (URL/BUCKET/KEY)")
    s3.add_argument("--object-lock", choices=[m.value for m in LockMode], help="Object Lock retention mode")
    s3.add_argument("--retain-until", metavar="TIME", help="retention end, RFC 3339 (with --object-lock)")
    s3.add_argument("--legal-hold", action="store_true", help="put a legal hold on the stored object")
    p.set_defaults(handler=run_distribute)


def register_pull(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("pull", parents=[common, _access_options()], help=PULL_HELP)
    p.add_argument("source", metavar="oci://HOST/REPO@sha256:HEX")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the bundle file to write")
    p.set_defaults(handler=run_pull)


def _s3_options(args: argparse.Namespace) -> S3Options:
    retain_until = parse_at(args.retain_until) if args.retain_until else None
    return S3Options(
        endpoint_url=args.endpoint_url,
        path_style=args.path_style,
        ca_file=args.ca_file,
        credentials_file=args.credentials_file,
        lock_mode=LockMode(args.object_lock) if args.object_lock else None,
        retain_until=retain_until,
        legal_hold=args.legal_hold,
        part_size=args.chunk_size,
    )


def run_distribute(args: argparse.Namespace) -> int:
    done = distribute_run(
        resolve_home(args.home),
        args.run_id,
        args.to,
        _access(args),
        s3=_s3_options(args),
        observer=RichSink("pushing"),
    )
    if args.json:
        print_json(done.to_dict())
        return 0
    if isinstance(done, S3Distribution):
        stdout.print(escape(done.text))
        return 0
    how = {"present": "already there", "mounted": "mounted", "uploaded": "uploaded"}[done.blob]
    if done.resumed_from:
        how += f", resumed at byte {done.resumed_from}"
    stdout.print(f"pushed {escape(done.reference)} (bundle {how})")
    stdout.print(f"referrer {escape(done.referrer_digest)} ({done.referrers})")
    if not done.new:
        stdout.print("this run was already distributed there; nothing new recorded")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    done = pull_bundle(args.source, args.out, _access(args), observer=RichSink("pulling"))
    if args.json:
        print_json(done.to_dict())
        return 0
    resumed = f", resumed at byte {done.resumed_from}" if done.resumed_from else ""
    stdout.print(f"pulled {escape(str(done.out))} ({done.size} bytes, {done.layer_digest}{resumed})")
    if done.attestation is not None:
        stdout.print(f"with its attestation {escape(str(done.attestation))}")
    stdout.print(f"next: stella verify {escape(str(done.out))}")
    return 0
