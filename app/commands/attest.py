"""`stella attest bundle verify|import`: check every attestation of an attestation bundle offline, then import
(the workflow is :mod:`services.attest`'s)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.verify import CheckPrinter, finish, not_imported, receive_commands, say_not_verified
from app.output import escape, print_json, stderr, stdout
from core.errors import StellaError
from core.home import resolve_home
from services.attest import signer_label
from services.receive import ATTESTATION, ReceiveRequest
from verify.attest import AttestationReport
from verify.attest_sigstore import AttestationResult

_EXIT_CODES = (
    "Exit codes: 0 every attestation verified, 3 bad input, 4 integrity, 5 signature (a bad signature, "
    "no trusted signer, or a signer the identity policy refuses), 6 trust metadata."
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    checks = argparse.ArgumentParser(add_help=False)
    checks.add_argument("bundle", type=Path)
    checks.add_argument(
        "--key", type=Path, action="append", metavar="PUB", help="trusted key of the bundle's signer (PEM); repeatable"
    )
    checks.add_argument(
        "--attestation-key",
        type=Path,
        action="append",
        metavar="PUB",
        help="trusted key of key-based attestations (PEM); repeatable (default: the trust store's keys)",
    )
    checks.add_argument(
        "--trusted-root",
        type=Path,
        action="append",
        metavar="FILE",
        help="Sigstore trusted_root.json for keyless attestations; repeatable (default: the production root of "
        "the sigstore package and the trust store's sigstore/*.json)",
    )
    checks.add_argument(
        "--no-bundle-roots",
        action="store_true",
        help="do not use the trusted roots shipped in the bundle (trust/sigstore/)",
    )
    checks.add_argument(
        "--certificate-identity", action="append", metavar="ID", help="accepted keyless signer (SAN); repeatable"
    )
    checks.add_argument("--certificate-identity-regexp", metavar="RE", help="accepted keyless signers (full match)")
    checks.add_argument("--certificate-oidc-issuer", metavar="URL", help="accepted OIDC issuer of keyless signers")
    checks.add_argument("--certificate-oidc-issuer-regexp", metavar="RE", help="accepted OIDC issuers (full match)")

    receive_commands(
        sub,
        common,
        "attest",
        ("attestation bundles: verify offline and import", "verify or import an attestation bundle"),
        checks,
        (
            "verify an attestation bundle and every attestation in it, offline",
            "Verifies the bundle (as `stella verify`), its signed attestation manifest, then every "
            "attestation: keyless Sigstore bundles against a trusted root and the identity policy, key-based ones "
            "against trusted keys. " + _EXIT_CODES,
            run_verify,
        ),
        (
            "verify an attestation bundle (same checks), then import the attestations that verified",
            "Verifies exactly as `attest bundle verify`, then imports every document whose attestations "
            "all verified, byte for byte, into the bundle's tenant; the others are reported and left out. "
            + _EXIT_CODES,
            run_import,
        ),
    )


def _request(args: argparse.Namespace, tenant: str | None = None) -> ReceiveRequest:
    return ReceiveRequest(
        args.bundle,
        key_files=tuple(args.key or ()),
        tenant=tenant,
        attestation_key_files=tuple(args.attestation_key or ()),
        trusted_root_files=tuple(args.trusted_root or ()),
        use_bundle_roots=not args.no_bundle_roots,
        certificate_identities=tuple(args.certificate_identity or ()),
        certificate_identity_regexp=args.certificate_identity_regexp,
        oidc_issuer=args.certificate_oidc_issuer,
        oidc_issuer_regexp=args.certificate_oidc_issuer_regexp,
    )


def _subject(result: AttestationResult) -> str:
    if not result.subjects:
        return ""
    first = result.subjects[0]
    digest = next(iter(sorted((first.get("digest") or {}).items())), ("", ""))
    more = f" +{len(result.subjects) - 1}" if len(result.subjects) > 1 else ""
    return f"{first.get('name') or digest[0] + ':' + digest[1][:16]}{more}"


def _verified(args: argparse.Namespace, report: AttestationReport) -> None:
    """Each attestation's verdict, and the failure of the verification, once it is done."""
    if not args.json and report.results:
        stdout.print("[bold]attestations[/]")
        for r in report.results:
            mark = "[green]verified[/]" if r.verified else "[bold red]FAILED  [/]"
            where = f"{r.path}#{r.entry_index}" if r.entry_index else r.path
            kind = r.predicate_type or r.payload_type or r.kind
            stdout.print(
                f"  {mark} {r.method:8} {escape(kind)}  signer: {escape(signer_label(r) or '-')}  "
                f"subject: {escape(_subject(r) or '-')}  [dim]{escape(where)}[/]"
            )
            if r.error is not None:
                stdout.print(f"           [red]{escape(r.error.message)}[/]")
        for line in _advice(report):
            stderr.print(f"[bold yellow]hint:[/] {escape(line)}")
    say_not_verified(args, report)


def _unsigned_advice(n: int) -> str:
    """What to do about unsigned in-toto Statements, the one failure no option on the receiving side can fix."""
    one = n == 1
    what, it, they, be = (
        ("a bare in-toto Statement", "it", "it", "is") if one else ("bare in-toto Statements", "them", "they", "are")
    )
    return (
        f"{n} of the attestations {be} {what} with no signature: nothing can verify {it}, so {they} {be} never "
        f"imported. Sign {it} before exporting (a DSSE envelope, e.g. `cosign attest-blob`, or a Sigstore bundle), "
        "or leave unsigned Statements out of the bundle: stella export run --profile attestation:bundle "
        "--selector format=sigstore-bundle (or format=dsse) ..."
    )


def _advice(report: AttestationReport) -> list[str]:
    """One line per kind of failure saying what to do, each once: unsigned Statements first, then each distinct
    hint the failures carry (a missing identity policy, no trusted key, ...)."""
    failed = [r for r in report.results if not r.verified and r.error is not None]
    unsigned = sum(1 for r in failed if r.method == "unsigned")
    out: list[str] = []
    if unsigned:
        out.append(_unsigned_advice(unsigned))
    for r in failed:
        hint = r.error.hint if r.error is not None and r.method != "unsigned" else None
        if hint and hint not in out:
            out.append(hint)
    return out


def run_verify(args: argparse.Namespace) -> int:
    report = ATTESTATION.verify(resolve_home(args.home), _request(args), CheckPrinter(args, 20))
    _verified(args, report)
    return finish(
        args,
        report,
        said=True,
        verified=lambda: (
            f"{len(report.results)} attestations of tenant {report.manifest.tenant}, run {report.manifest.run_id}"
        ),
    )


def run_import(args: argparse.Namespace) -> int:
    receipt = ATTESTATION.receive(
        resolve_home(args.home),
        _request(args, args.tenant),
        CheckPrinter(args, 20),
        on_report=lambda r: _verified(args, r),
    )
    report, done = receipt.report, receipt.imported
    if done is None:
        return not_imported(args, report, [])
    tenant, rows, results, rejected, code = done.tenant, done.rows, done.results, done.rejected, done.exit_code
    if args.json:
        print_json({"verification": report.to_dict(), "tenant": tenant, "imported": rows})
    else:
        for row in rows:
            stdout.print(f"  {row['import']:28} {escape(row['path'])}#{row['entryIndex']}")
        n_new = sum(1 for r in results if str(r.outcome) == "imported")
        n_dup = sum(1 for r in results if str(r.outcome) == "duplicate")
        left = sum(1 for r in report.results if not r.verified)
        stdout.print(
            f"[bold]imported[/] {n_new} new and {n_dup} already stored attestation documents into tenant "
            f"{escape(tenant)}; {left} attestations did not verify and were left out"
        )
    if rejected and isinstance(rejected[0].error, StellaError) and not args.json:
        stderr.print(f"[bold red]rejected:[/] {escape(rejected[0].error.diagnostics())}")
    return int(code)
