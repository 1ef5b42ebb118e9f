"""Offline verification of an attestation bundle: the bundle contract, its signed manifest, then every attestation.

Checks, in order, each reported as it completes; the first failure decides the exit code:

1. the whole bundle contract as ``stella verify`` checks it (:func:`verify.bundle.verify_bundle`: the manifest
   signature by a trusted key, every digest and size, provenance) - exit 3, 4, 5 or 6;
2. ``attestation profile`` (3): the bundle is an ``attestation``/``bundle`` export;
3. ``attestation files`` (4): a second read of the archive finds ``export.json`` with the digest that verified,
   and every attestation, trust and log file with the digest ``export.json`` lists (so what is verified and
   imported is what the signature covers, even if the archive changed in between);
4. ``attestation manifest`` (5/4): ``attestations/manifest.dsse.json`` is signed by the key that signed
   ``export.json``, over exactly ``attestations/manifest.json``, an in-toto Statement whose subjects are every
   attestation, trust and log file; ``manifest.sigstore.json`` carries the same envelope;
5. ``trust material`` (3): the Sigstore trusted roots to check keyless attestations with;
6. ``attestations`` (3/5): every attestation of every document, verified offline
   (:mod:`verify.attest_sigstore`): keyless Sigstore bundles against a trusted root and the identity policy,
   key-based ones against the trusted keys. Each result is reported; the first failure's exit code is the
   command's.

Trusted roots: those the receiver gives (``roots``: the trust store's, or ``--trusted-root`` files), and unless
``use_bundle_roots`` is off, the roots shipped in the bundle's ``trust/sigstore/``. A shipped root is as
trustworthy as the bundle's signer, which the receiver trusts already; the identity policy still decides which
signers are accepted. Shipped public keys (``trust/keys/``) are never trusted by themselves: a key is an
identity, so key-based attestations verify only with keys of the receiver's trust store or ``--attestation-key``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from core.contract.attestation import (
    DOCUMENTS,
    INDEX,
    MANIFEST,
    MANIFEST_DSSE,
    MANIFEST_PREDICATE,
    MANIFEST_SIGSTORE,
    PREFIXES,
    SIGNED_MANIFEST,
    SIGSTORE_ROOTS,
)
from core.contract.payload_types import IN_TOTO
from core.errors import BadInputError, IntegrityError, SignatureError, StellaError
from core.progress import Observer
from core.trust import TrustedKey
from verify.attest_sigstore import AttestationResult, IdentityPolicy, SigstoreRoot, Trust, load_root, verify_document
from verify.bundle import VerifyReport, verify_then
from verify.extract import KindVerification

_MAX_MANIFEST = 64 << 20


@dataclass
class AttestationReport(VerifyReport):
    """What ``stella attest bundle verify`` says about a bundle (``stella verify``'s shape + attestations)."""

    policy: IdentityPolicy
    roots: list[SigstoreRoot] = field(default_factory=list)
    results: list[AttestationResult] = field(default_factory=list)
    #: Documents whose every attestation verified, copied out (only with ``extract_to``), by document digest.
    extracted: dict[str, Path] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        return {
            "policy": self.policy.describe(),
            "trustedRoots": [r.describe() for r in self.roots],
            "attestations": [r.to_dict() for r in self.results],
            "summary": {
                "attestations": len(self.results),
                "verified": sum(1 for r in self.results if r.verified),
                "failed": sum(1 for r in self.results if not r.verified),
            },
        }


class _AttestationVerification(KindVerification):
    kind = "attestation"
    report: AttestationReport

    def __init__(
        self,
        bundle: Path,
        keys: Sequence[TrustedKey],
        trust: Trust,
        use_bundle_roots: bool,
        report: AttestationReport,
        observer: Observer | None,
        on_result: Callable[[AttestationResult], None],
        work: Path,
        extract_to: Path | None,
    ) -> None:
        super().__init__(bundle, keys, report, observer, work, extract_to)
        self.trust = trust
        self.use_bundle_roots = use_bundle_roots
        self.on_result = on_result

    def run(self, manifest_sha: str) -> None:
        self.check_profile("an")
        files = self.read_files(manifest_sha, PREFIXES, (*SIGNED_MANIFEST, INDEX), "attestation, trust and log")
        self.check_manifest(files)
        roots = self.check_trust(files)
        self.check_attestations(files, roots)

    # -- the signed attestation manifest ----------------------------------------------------------------
    def check_manifest(self, files: dict[str, Path]) -> None:
        body, envelope, signer = self.signed_manifest(
            files,
            (MANIFEST, MANIFEST_DSSE),
            IN_TOTO,
            _MAX_MANIFEST,
            unsigned=f"{MANIFEST_DSSE} is not an in-toto envelope signed by the key that signed export.json",
            strict_type=False,
        )
        try:
            sigstore = orjson.loads(files[MANIFEST_SIGSTORE].read_bytes())
            same = sigstore["dsseEnvelope"] == envelope and sigstore["verificationMaterial"]["publicKey"]["hint"] == (
                signer.hint
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            same = False
        if not same:
            raise self.failed(
                "attestation manifest",
                SignatureError(
                    f"{MANIFEST_SIGSTORE} does not carry the signed envelope of {MANIFEST_DSSE}",
                    path=MANIFEST_SIGSTORE,
                ),
            )
        try:
            statement = orjson.loads(body)
            subjects = {str(s["name"]): str(s["digest"]["sha256"]) for s in statement["subject"]}
            predicate_type = statement.get("predicateType")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise self.failed(
                "attestation manifest", BadInputError("not an in-toto Statement", path=MANIFEST)
            ) from None
        expected = {
            name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in files.items()
            if name not in SIGNED_MANIFEST
        }
        if predicate_type != MANIFEST_PREDICATE or subjects != expected:
            extra = sorted(set(expected) ^ set(subjects)) or sorted(n for n in expected if expected[n] != subjects[n])
            raise self.failed(
                "attestation manifest",
                IntegrityError(
                    f"{MANIFEST} does not list the bundle's attestation files"
                    + (f" (first difference: {extra[0]})" if extra else f" (predicateType {predicate_type!r})"),
                    path=MANIFEST,
                ),
            )
        self.passed(
            "attestation manifest",
            f"DSSE and Sigstore bundle verified with the bundle's signer; {len(subjects)} files listed",
            MANIFEST,
        )

    # -- trust material --------------------------------------------------------------------------------
    def check_trust(self, files: dict[str, Path]) -> list[SigstoreRoot]:
        roots = list(self.trust.roots)
        shipped = sorted(name for name in files if name.startswith(SIGSTORE_ROOTS))
        if self.use_bundle_roots:
            for name in shipped:
                try:
                    root = load_root(
                        files[name].read_bytes(), name=PurePosixPath(name).stem, source="bundle", path=name
                    )
                except StellaError as exc:
                    raise self.failed("trust material", exc) from None
                if all(r.data != root.data for r in roots):
                    roots.append(root)
        self.report.roots = roots
        names = ", ".join(f"{r.name} ({r.source})" for r in roots) or "none"
        used = "" if self.use_bundle_roots or not shipped else f"; {len(shipped)} shipped roots not used"
        self.passed("trust material", f"Sigstore trusted roots: {names}; {len(self.trust.keys)} trusted keys{used}")
        return roots

    # -- every attestation -----------------------------------------------------------------------------
    def check_attestations(self, files: dict[str, Path], roots: list[SigstoreRoot]) -> None:
        documents = {name: path for name, path in files.items() if name.startswith(DOCUMENTS)}
        indexed: list[str] = []
        for n, line in enumerate(files[INDEX].read_bytes().splitlines(), start=1):
            try:
                record = orjson.loads(line)
                path = str(record["path"])
                document = str(record["document"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise self.failed(
                    "attestations", BadInputError(f"line {n} is not an index record", path=INDEX)
                ) from None
            if path != f"{DOCUMENTS}{document}.json" or path not in documents:
                raise self.failed(
                    "attestations", IntegrityError(f"line {n} names a document the bundle lacks: {path}", path=INDEX)
                )
            if path not in indexed:
                indexed.append(path)
        unindexed = sorted(set(documents) - set(indexed))
        if unindexed:
            raise self.failed("attestations", IntegrityError(f"not in {INDEX}", path=unindexed[0]))
        trust = Trust(keys=self.trust.keys, roots=roots, policy=self.trust.policy)
        first_error: StellaError | None = None
        for path in indexed:
            data = documents[path].read_bytes()
            if hashlib.sha256(data).hexdigest() != PurePosixPath(path).stem:
                raise self.failed("attestations", IntegrityError("not the document its name says", path=path))
            results = verify_document(data, path=path, trust=trust)
            for result in results:
                self.report.results.append(result)
                self.on_result(result)
                if result.error is not None and first_error is None:
                    first_error = result.error
            if self.extract_to is not None and all(r.verified for r in results):
                self.report.extracted[PurePosixPath(path).stem] = self.extract(data, PurePosixPath(path).name)
        total = len(self.report.results)
        good = sum(1 for r in self.report.results if r.verified)
        if first_error is not None:
            raise self.failed(
                "attestations",
                type(first_error)(
                    f"{total - good} of {total} attestations did not verify; first: {first_error.message}",
                    path=first_error.path,
                    hint=first_error.hint,
                ),
            )
        self.passed("attestations", f"{good} of {total} attestations verified")


def verify_attestation_bundle(
    bundle: Path,
    keys: Sequence[TrustedKey],
    *,
    trust: Trust,
    use_bundle_roots: bool = True,
    observer: Observer | None = None,
    on_result: Callable[[AttestationResult], None] | None = None,
    extract_to: Path | None = None,
) -> AttestationReport:
    """Verify an attestation bundle whose ``export.json`` is signed by one of ``keys``, then every attestation.

    ``trust`` holds what attestations are checked against (trusted keys, the receiver's Sigstore trusted roots,
    the identity policy). ``report.error`` is the first failure (its exit code is the command's). With
    ``extract_to``, each document whose every attestation verified is copied there (``report.extracted``).
    """
    report = AttestationReport(str(bundle), trust.policy)

    def then(work: Path) -> None:
        _AttestationVerification(
            bundle, keys, trust, use_bundle_roots, report, observer, on_result or (lambda _r: None), work, extract_to
        ).run(str(report.manifest.sha256))

    return verify_then(report, keys, "attestation", then, observer=observer)
