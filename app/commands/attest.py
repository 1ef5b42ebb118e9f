"""`stella attest bundle verify|import`: check every attestation of an attestation bundle offline, then import."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from app.commands.verify import (
    check_printer,
    finish,
    own_tenant,
    receive_commands,
    say_not_verified,
    trusted_keys,
    verify_and_import,
)
from app.output import print_json, stderr, stdout
from core.errors import BadInputError, ExitCode, StellaError, UsageError
from core.home import Home, resolve_home
from core.ingest import FileResult, Outcome
from core.progress import CheckObserver
from verify.attest import AttestationReport, verify_attestation_bundle
from verify.attest_sigstore import (
    AttestationResult,
    IdentityPolicy,
    SigstoreRoot,
    Trust,
    load_root,
    package_production_root,
    trust_store_roots,
)

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


def identity_policy(
    identities: Sequence[str] = (),
    identity_regexp: str | None = None,
    issuer: str | None = None,
    issuer_regexp: str | None = None,
) -> IdentityPolicy:
    """The keyless identity policy of the ``--certificate-*`` options: both an identity and an issuer, or neither."""
    if identities and identity_regexp is not None:
        raise UsageError("give --certificate-identity or --certificate-identity-regexp, not both")
    if issuer is not None and issuer_regexp is not None:
        raise UsageError("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp, not both")
    try:
        policy = IdentityPolicy(
            identities=tuple(identities),
            identity_regexp=identity_regexp,
            issuer=issuer,
            issuer_regexp=issuer_regexp,
        )
    except BadInputError as exc:
        raise UsageError(exc.message) from None
    if policy.given and not policy.complete:
        raise UsageError(
            "a keyless identity policy needs both a certificate identity and an OIDC issuer",
            hint="add --certificate-identity(-regexp) and --certificate-oidc-issuer(-regexp)",
        )
    return policy


def _policy(args: argparse.Namespace) -> IdentityPolicy:
    return identity_policy(
        args.certificate_identity or (),
        args.certificate_identity_regexp,
        args.certificate_oidc_issuer,
        args.certificate_oidc_issuer_regexp,
    )


def sigstore_roots(home: Home, files: Sequence[Path] = ()) -> list[SigstoreRoot]:
    """The Sigstore trusted roots keyless attestations are checked against: ``files`` (``--trusted-root``), or
    else the sigstore package's production root and the trust store's ``sigstore/*.json``."""
    if files:
        roots = []
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read trusted root: {exc.strerror}", path=str(path)) from None
            roots.append(load_root(data, name=path.stem, source="file", path=str(path)))
        return roots
    return [package_production_root(), *trust_store_roots(home.trust_dir)]


def _roots(args: argparse.Namespace) -> list[SigstoreRoot]:
    return sigstore_roots(resolve_home(args.home), args.trusted_root or ())


def _signer(result: AttestationResult) -> str:
    if "key" in result.signer:
        return f"key {result.signer['key']}"
    identity = result.signer.get("identity")
    return f"{identity} ({result.signer.get('issuer')})" if identity else ""


def _subject(result: AttestationResult) -> str:
    if not result.subjects:
        return ""
    first = result.subjects[0]
    digest = next(iter(sorted((first.get("digest") or {}).items())), ("", ""))
    more = f" +{len(result.subjects) - 1}" if len(result.subjects) > 1 else ""
    return f"{first.get('name') or digest[0] + ':' + digest[1][:16]}{more}"


def _verify(args: argparse.Namespace, extract_to: Path | None = None) -> AttestationReport:
    policy = _policy(args)
    trust = Trust(keys=trusted_keys(args, "attestation_key"), roots=_roots(args), policy=policy)
    report = verify_attestation_bundle(
        args.bundle,
        trusted_keys(args),
        trust=trust,
        use_bundle_roots=not args.no_bundle_roots,
        observer=CheckObserver(check_printer(args, 20)),
        extract_to=extract_to,
    )
    if not args.json and report.results:
        stdout.print("[bold]attestations[/]")
        for r in report.results:
            mark = "[green]verified[/]" if r.verified else "[bold red]FAILED  [/]"
            where = f"{r.path}#{r.entry_index}" if r.entry_index else r.path
            kind = r.predicate_type or r.payload_type or r.kind
            stdout.print(
                f"  {mark} {r.method:8} {escape(kind)}  signer: {escape(_signer(r) or '-')}  "
                f"subject: {escape(_subject(r) or '-')}  [dim]{escape(where)}[/]"
            )
            if r.error is not None:
                stdout.print(f"           [red]{escape(r.error.message)}[/]")
    say_not_verified(args, report)
    return report


def run_verify(args: argparse.Namespace) -> int:
    report = _verify(args)
    return finish(
        args,
        report,
        said=True,
        verified=lambda: (
            f"{len(report.results)} attestations of tenant {report.manifest.get('tenant')}, "
            f"run {report.manifest.get('runId')}"
        ),
    )


def bundle_verified(report: AttestationReport) -> bool:
    """True when the bundle itself verified (signature, digests, its attestation manifest), whatever became of
    single attestations: then the attestations that verified may be imported."""
    return bool(report.checks) and all(c.ok for c in report.checks if c.name != "attestations")


@dataclass
class AttestationImport:
    """What importing a verified attestation bundle did: a row per attestation (``--json``'s ``imported``), the
    import outcome per stored document, and the command's exit code."""

    tenant: str
    rows: list[dict[str, Any]]
    results: list[FileResult]
    exit_code: ExitCode

    @property
    def rejected(self) -> list[FileResult]:
        return [r for r in self.results if r.outcome is Outcome.REJECTED]


def import_verified_attestations(
    home: Home, bundle: Path, report: AttestationReport, tenant: str | None = None
) -> AttestationImport:
    """Import, into the bundle's own tenant, every document whose attestations all verified (``report`` from
    ``verify_attestation_bundle`` with ``extract_to``, and ``bundle_verified``): the import half of
    `stella attest bundle import`. The stored attestations are marked verified."""
    # The store and the source adapters are loaded only here: verifying needs neither.
    from adapters.sources.dsse import FORMATS as DSSE_FORMATS
    from adapters.sources.intoto import FORMATS as INTOTO_FORMATS
    from adapters.sources.sigstore_bundle import FORMATS as BUNDLE_FORMATS
    from core.ingest import Importer
    from core.store import Store

    chosen = own_tenant(report, bundle, tenant, "an attestation bundle")
    by_path = {str(path): sha for sha, path in report.extracted.items()}
    results: list[FileResult] = []
    paths = [report.extracted[sha] for sha in sorted(report.extracted)]
    if paths:
        with Store.open(home) as store:
            importer = Importer(
                store, (*BUNDLE_FORMATS, *DSSE_FORMATS, *INTOTO_FORMATS), tenant=chosen, on_result=results.append
            )
            importer.run(paths)
            stored = [by_path[r.path] for r in results if r.outcome is not Outcome.REJECTED and r.path in by_path]
            if stored:
                with store.transaction() as conn:
                    conn.execute(
                        "UPDATE attestations SET verification = 'verified' WHERE tenant = ? "
                        f"AND document_sha256 IN ({', '.join('?' for _ in stored)})",
                        [chosen, *stored],
                    )
    outcome = {by_path.get(r.path, r.path): r for r in results}
    rows: list[dict[str, Any]] = []
    for result in report.results:
        imported = outcome.get(result.document_sha256)
        row = result.to_dict()
        if imported is None:
            row["import"] = "not imported: did not verify" if not result.verified else "not imported"
        else:
            row["import"] = str(imported.outcome)
            if imported.error is not None:
                row["importError"] = imported.error.to_dict()
        rows.append(row)
    code = report.error.exit_code if report.error is not None else ExitCode.OK
    if code is ExitCode.OK and any(r.outcome is Outcome.REJECTED for r in results):
        code = ExitCode.BAD_INPUT
    return AttestationImport(chosen, rows, results, code)


def run_import(args: argparse.Namespace) -> int:
    outcome = verify_and_import(
        args,
        lambda work: _verify(args, extract_to=work),
        lambda report: import_verified_attestations(resolve_home(args.home), args.bundle, report, args.tenant),
        verified=bundle_verified,
        nothing=[],
    )
    if isinstance(outcome, int):
        return outcome
    report, done = outcome
    tenant, rows, results, rejected, code = done.tenant, done.rows, done.results, done.rejected, done.exit_code
    if args.json:
        print_json({"verification": report.to_dict(), "tenant": tenant, "imported": rows})
    else:
        for row in rows:
            stdout.print(f"  {row['import']:28} {escape(row['path'])}#{row['entryIndex']}")
        n_new = sum(1 for r in results if r.outcome is Outcome.IMPORTED)
        n_dup = sum(1 for r in results if r.outcome is Outcome.DUPLICATE)
        left = sum(1 for r in report.results if not r.verified)
        stdout.print(
            f"[bold]imported[/] {n_new} new and {n_dup} already stored attestation documents into tenant "
            f"{escape(tenant)}; {left} attestations did not verify and were left out"
        )
    if rejected and isinstance(rejected[0].error, StellaError) and not args.json:
        stderr.print(f"[bold red]rejected:[/] {escape(rejected[0].error.diagnostics())}")
    return int(code)
