"""Receive an attestation bundle: verify every attestation in it offline, then import the documents whose
attestations all verified and mark them verified in the store (`stella attest bundle verify|import`, the TUI's
receive screen)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BadInputError, ExitCode, UsageError
from core.home import Home
from core.ingest import FileResult, Outcome
from core.progress import Observer
from services.receive import ReceiveRequest, own_tenant, verify_then_import
from services.trust import trusted_keys, trusted_signers
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


def signer_label(result: AttestationResult, *, issuer: bool = True) -> str:
    """Who signed an attestation: ``key KEYID``, or a keyless signer's identity (with its OIDC issuer, unless
    ``issuer`` is False: the TUI's narrow column); empty when unknown."""
    if "key" in result.signer:
        return f"key {result.signer['key']}"
    identity = result.signer.get("identity")
    if not identity:
        return ""
    return f"{identity} ({result.signer.get('issuer')})" if issuer else str(identity)


def verify_attestations(
    home: Home, request: ReceiveRequest, *, observer: Observer | None = None, extract_to: Path | None = None
) -> AttestationReport:
    """Verify an attestation bundle (`stella attest bundle verify`): the bundle (signed by ``request.key_files``,
    else the trust store), its attestation manifest, then every attestation: keyless ones against the Sigstore
    roots and the identity policy, key-based ones against ``request.attestation_key_files`` (else the trust
    store). With ``extract_to``, each document whose attestations all verified is copied there."""
    policy = identity_policy(
        request.certificate_identities,
        request.certificate_identity_regexp,
        request.oidc_issuer,
        request.oidc_issuer_regexp,
    )
    trust = Trust(
        keys=trusted_signers(home, request.attestation_key_files),
        roots=sigstore_roots(home, request.trusted_root_files),
        policy=policy,
    )
    return verify_attestation_bundle(
        request.bundle,
        trusted_keys(home, request.key_files),
        trust=trust,
        use_bundle_roots=request.use_bundle_roots,
        observer=observer,
        extract_to=extract_to,
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
    home: Home,
    bundle: Path,
    report: AttestationReport,
    tenant: str | None = None,
    *,
    store_lock: AbstractContextManager[object] | None = None,
) -> AttestationImport:
    """Import, into the bundle's own tenant, every document whose attestations all verified (``report`` from
    ``verify_attestation_bundle`` with ``extract_to``, and ``bundle_verified``); the stored attestations are
    marked verified. ``store_lock`` is held while the store is open."""
    # The store and the source adapters are loaded only here: verifying needs neither.
    from adapters.sources.dsse import FORMATS as DSSE_FORMATS
    from adapters.sources.intoto import FORMATS as INTOTO_FORMATS
    from adapters.sources.sigstore_bundle import FORMATS as BUNDLE_FORMATS
    from core.attestations import mark_verified
    from core.ingest import Importer
    from core.store import Store

    chosen = own_tenant(report.manifest, bundle, tenant, "an attestation bundle")
    by_path = {str(path): sha for sha, path in report.extracted.items()}
    results: list[FileResult] = []
    paths = [report.extracted[sha] for sha in sorted(report.extracted)]
    if paths:
        with store_lock or nullcontext(), Store.open(home) as store:
            importer = Importer(
                store, (*BUNDLE_FORMATS, *DSSE_FORMATS, *INTOTO_FORMATS), tenant=chosen, on_result=results.append
            )
            importer.run(paths)
            stored = [by_path[r.path] for r in results if r.outcome is not Outcome.REJECTED and r.path in by_path]
            mark_verified(store, chosen, stored)
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


@dataclass
class AttestationReceipt:
    """The verification of an attestation bundle and, if the bundle itself verified, what was imported (None:
    nothing)."""

    report: AttestationReport
    imported: AttestationImport | None


def receive_attestations(
    home: Home,
    request: ReceiveRequest,
    *,
    observer: Observer | None = None,
    on_report: Callable[[AttestationReport], None] | None = None,
    store_lock: AbstractContextManager[object] | None = None,
) -> AttestationReceipt:
    """Verify an attestation bundle, then import the documents whose attestations all verified into
    ``request.tenant`` (the bundle's own) (`stella attest bundle import`). ``on_report`` hears the verification's
    report before anything is imported; a bundle that did not itself verify imports nothing."""

    def verify(work: Path) -> AttestationReport:
        report = verify_attestations(home, request, observer=observer, extract_to=work)
        if on_report is not None:
            on_report(report)
        return report

    report, imported = verify_then_import(
        verify,
        lambda report: import_verified_attestations(
            home, request.bundle, report, request.tenant, store_lock=store_lock
        ),
        verified=bundle_verified,
    )
    return AttestationReceipt(report, imported)
