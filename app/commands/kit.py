"""`stella kit plan|assemble|verify|restore|iso`: Offline Kit media (see docs/kit.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter
from app.output import RichSink, escape, print_json, stderr, stdout, table
from core.errors import StellaError
from core.home import resolve_home
from core.kit import volume_dir_name
from core.kit_plan import KitPlan, parse_size, size_text
from services import kit as kit_service
from verify.kit import KitReport

HELP = "Offline Kit media: lay bundles out on DVD, Blu-ray or USB volumes, verify each volume alone, restore"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("kit", parents=[common], help=HELP)
    ksub = p.add_subparsers(dest="kit_command", metavar="ACTION", required=True)

    layout = argparse.ArgumentParser(add_help=False)
    layout.add_argument("items", nargs="+", metavar="BUNDLE|RUN", help="bundle files, or ids of finished export runs")
    layout.add_argument(
        "--volume-size",
        required=True,
        type=_size,
        metavar="SIZE",
        help="each volume's capacity: 4.7G, 25G, 700M (decimal, as media are sold), 4GiB (binary), bytes, "
        "or dvd, dvd-dl, bd, bd-dl",
    )
    layout.add_argument(
        "--include-binary", type=Path, metavar="PATH", help="put this stella executable on every volume (bin/)"
    )

    pl = ksub.add_parser(
        "plan", parents=[common, layout], help="show the volume layout assemble would write (nothing is written)"
    )
    pl.add_argument("--key", metavar="NAME", help="the signing key (its public key is sized into the plan)")
    pl.set_defaults(handler=run_plan)

    a = ksub.add_parser(
        "assemble",
        parents=[common, layout],
        help="write the kit: volumes vol-01/... with signed manifests, SHA256SUMS and its signature",
        description="Lay the bundles out on volumes (whole files first, splitting only what does not fit; every "
        "file at most 4 GiB - 1 byte) and write each volume with its signed manifest, the kit index, the trust "
        "anchors, verify.sh and a README. The kit directory appears whole or not at all.",
    )
    a.add_argument("--key", required=True, metavar="NAME", help="signing key for the manifests and SHA256SUMS")
    a.add_argument("--passphrase-file", type=Path, metavar="F", help="passphrase of an encrypted key")
    a.add_argument("--out", required=True, type=Path, metavar="DIR", help="the kit directory to create")
    a.add_argument(
        "--tenant",
        metavar="T",
        help="whose evidence locker and timeline record the kit (default: the bundles' tenant when they all name "
        "one, else the default tenant)",
    )
    a.add_argument(
        "--no-evidence",
        dest="evidence",
        action="store_false",
        help="do not seal the kit index, manifests and SHA256SUMS into the evidence locker",
    )
    a.set_defaults(handler=run_assemble)

    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument(
        "--key", type=Path, action="append", metavar="PUB", help="trusted kit signer (PEM); else the trust store"
    )

    v = ksub.add_parser(
        "verify",
        parents=[common, keys],
        help="verify volumes, each alone: signature, every file and part, nothing unlisted",
        description="Verify each volume on its own (a volume directory, a kit directory, a mounted or extracted "
        "ISO) and say which bundles the volumes complete and which volumes are still needed. Exit codes: 0 "
        "verified, 3 not a kit volume, 4 integrity (a file or part, an unlisted or missing file, volumes of "
        "different kits), 5 signature.",
    )
    v.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    v.set_defaults(handler=run_verify)

    r = ksub.add_parser(
        "restore",
        parents=[common, keys],
        help="reassemble the bundles from volumes (any order, resumable), then verify each",
        description="Reassemble the bundles whose parts lie on the volumes given, checking every part against "
        "the signed manifest and every bundle against the signed index, then verify each with `stella verify`. "
        "Volumes may arrive over several runs in any order; an interrupted restore resumes.",
    )
    r.add_argument("volumes", nargs="+", type=Path, metavar="VOLUME")
    r.add_argument("--to", required=True, type=Path, metavar="DIR", help="where the bundles go")
    r.set_defaults(handler=run_restore)

    i = ksub.add_parser(
        "iso",
        parents=[common, keys],
        help="write a reproducible ISO 9660 + Joliet + Rock Ridge image of a volume (xorriso, MD5 tags)",
    )
    i.add_argument("volume", type=Path, metavar="VOLUME_DIR")
    i.add_argument("--out", required=True, type=Path, metavar="FILE.iso")
    i.set_defaults(handler=run_iso)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except StellaError as exc:
        raise argparse.ArgumentTypeError(exc.diagnostics()) from None


def _show_plan(layout: KitPlan) -> None:
    rows = []
    for v in layout.volumes:
        for p in v.parts:
            what = "whole" if p.parts == 1 else f"part {p.part}/{p.parts}"
            rows.append([volume_dir_name(v.volume), p.bundle, what, p.offset, p.size])
    table(["volume", "bundle", "file", "offset", "bytes"], rows, title=f"{len(layout.volumes)} volumes")
    for v in layout.volumes:
        stdout.print(
            f"{volume_dir_name(v.volume)}: {size_text(v.used)} of {size_text(v.capacity)} ({v.fill:.0%} full), "
            f"{len(v.parts)} bundle files, {size_text(v.support_bytes)} of the kit's own files"
        )
    if layout.split:
        stdout.print(f"split: {escape(', '.join(layout.split))}")


def run_plan(args: argparse.Namespace) -> int:
    request = kit_service.PlanRequest(tuple(args.items), args.volume_size, args.key, args.include_binary)
    layout = kit_service.plan(resolve_home(args.home), request)
    if args.json:
        print_json(layout.to_dict())
    else:
        _show_plan(layout)
    return 0


def run_assemble(args: argparse.Namespace) -> int:
    request = kit_service.AssembleRequest(
        items=tuple(args.items),
        volume_size=args.volume_size,
        key=args.key,
        out=args.out,
        passphrase_file=args.passphrase_file,
        include_binary=args.include_binary,
        tenant=args.tenant,
        evidence=args.evidence,
    )
    kit = kit_service.assemble(resolve_home(args.home), request, RichSink("assemble"))
    if args.json:
        print_json(kit.to_dict())
    else:
        _show_plan(kit.plan)
        stdout.print(
            f"[bold green]assembled[/] kit {kit.index.kit_id} in {escape(str(kit.out))}: {len(kit.plan.volumes)} "
            f"volumes, {len(kit.index.bundles)} bundles, {kit.bytes:,} bytes; SHA256SUMS sha256 {kit.sums_sha256}"
        )
    _say_records(kit.records, quiet=args.json)
    return 0


def _say_records(records: kit_service.KitRecords | None, *, quiet: bool) -> None:
    """The kit's evidence and timeline event; a failure of either goes to stderr (the kit stays written)."""
    if records is None:
        return
    tenant = escape(records.tenant)
    if records.evidence is not None and not quiet:
        stdout.print(
            f"sealed as evidence {records.evidence.evidence_id} in tenant {tenant} ({records.evidence.digest})"
        )
    if records.evidence_error is not None:
        stderr.print(
            f"[bold yellow]warning:[/] the kit is written but was not sealed into the evidence locker of tenant "
            f"{tenant}: {escape(records.evidence_error.diagnostics())}"
        )
    if records.event is not None and not quiet:
        stdout.print(f"on the timeline of tenant {tenant}: {records.event.short_type} ({records.event.id})")
    if records.event_error is not None:
        stderr.print(
            f"[bold yellow]warning:[/] the kit is written but its ready-for-transfer event was not recorded on the "
            f"timeline of tenant {tenant}: {escape(records.event_error.diagnostics())}"
        )


def _say_kit(report: KitReport) -> None:
    for v in report.volumes:
        if v.volume is None or not v.ok:
            continue
        line = f"[bold green]verified[/] volume {v.volume.volume} of {v.volume.volumes} ({v.volume.label})"
        stdout.print(f"{line} of kit {v.volume.kit_id}: {len(v.volume.files)} files")
        if v.complete:
            stdout.print(f"  completes: {escape(', '.join(v.complete))}")
        for name, needs in v.needs.items():
            stdout.print(f"  {escape(name)}: also needs volume(s) {', '.join(str(n) for n in needs)}")
    for kit_dir in report.sums_checked:
        stdout.print(f"SHA256SUMS of {escape(kit_dir)}: signed, and every line matches the volumes' signed manifests")
    if report.ok and len(report.volumes) > 1:
        missing = ", ".join(str(n) for n in report.missing) or "none"
        stdout.print(f"together: {len(report.complete)} complete bundles; volumes still needed: {missing}")


def run_verify(args: argparse.Namespace) -> int:
    report = kit_service.verify_kit(
        resolve_home(args.home), args.dirs, tuple(args.key or ()), _CheckSink(args, RichSink("verify"))
    )
    error = report.first_error
    if args.json:
        print_json(report.to_dict())
    else:
        _say_kit(report)
        if error is not None:
            stderr.print(f"[bold red]not verified:[/] {escape(error.diagnostics())}")
    return 0 if error is None else int(error.exit_code)


class _CheckSink(CheckPrinter):
    """Checks printed as `stella verify` prints them, progress drawn by ``bar`` on a terminal."""

    def __init__(self, args: argparse.Namespace, bar: RichSink) -> None:
        super().__init__(args)
        self.bar = bar

    def start(self, phase: str, total: int | None = None) -> None:
        self.bar.start(phase, total)

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.bar.advance(units, detail=detail)

    def finish(self, phase: str) -> None:
        self.bar.finish(phase)

    def is_cancelled(self) -> bool:
        return self.bar.is_cancelled()


def run_restore(args: argparse.Namespace) -> int:
    request = kit_service.RestoreRequest(tuple(args.volumes), args.to, tuple(args.key or ()))
    sink = _CheckSink(args, RichSink("restore"))
    sink.passes = False
    result = kit_service.restore(resolve_home(args.home), request, sink)
    if args.json:
        print_json(result.to_dict())
        return 0
    for r in result.restored:
        state = "already restored" if r.already else "restored and verified"
        stdout.print(f"[bold green]{state}[/] {escape(str(r.path))} (sha256 {r.sha256})")
    for name, volumes in result.waiting.items():
        stdout.print(f"waiting: {escape(name)} needs volume(s) {', '.join(str(n) for n in volumes)}")
    stdout.print(
        f"kit {result.kit_id}: {result.parts_written} parts written, {result.parts_resumed} done by an earlier run"
    )
    return 0


def run_iso(args: argparse.Namespace) -> int:
    image = kit_service.build_iso(resolve_home(args.home), args.volume, args.out, tuple(args.key or ()))
    if args.json:
        print_json(image.to_dict())
        return 0
    stdout.print(
        f"[bold green]wrote[/] {escape(str(image.out))}: label {image.label}, {image.size:,} bytes, sha256 "
        f"{image.sha256}; MD5 tags checked"
    )
    if not image.fits:
        stderr.print(
            f"[bold yellow]warning:[/] the image is larger than the kit's volume size ({image.volume_size:,} bytes)"
        )
    return 0
