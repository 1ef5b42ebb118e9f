"""Offline verification of a risk bundle: the bundle contract, the risk manifest's DSSE, and freshness.

Checks, in order, each reported as it completes; the first failure decides the exit code:

1. the whole bundle contract as ``stella verify`` checks it (:func:`verify.bundle.verify_bundle`: the manifest
   signature by a trusted key, every digest and size, provenance) - exit 3, 4, 5 or 6;
2. ``risk profile`` (3): the bundle is a ``risk``/``bundle`` export;
3. ``risk files`` (4): a second read of the archive finds ``export.json`` with the digest that verified, and
   the risk manifest, its envelope and every provider file with the digests ``export.json`` lists (so what is
   extracted for import is what was verified, even if the archive changed in between);
4. ``risk manifest`` (5/4): ``risk/manifest.dsse.json`` is signed by the key that signed ``export.json``, over
   exactly ``risk/manifest.json``, which agrees with the ``risk`` section of ``export.json`` and names each
   provider's raw dataset by the digest it has;
5. ``freshness`` (7): each provider's signed expiry against the evaluation time (``--at``, or now) under a
   :class:`FreshnessPolicy`: ``warn`` accepts expired data with a warning, ``block`` refuses it, ``grace``
   accepts it with a warning for a grace window after expiry and refuses it after that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from core.archive import ReaderLimits, SafeArchiveReader
from core.clock import rfc3339, utcnow
from core.errors import BadInputError, IntegrityError, PolicyRefusal, SignatureError, StellaError
from core.signing import pae, verify_raw
from core.trust import TrustedKey
from verify.bundle import Check, verify_bundle
from verify.manifest import ManifestReader

RISK_MANIFEST = "risk/manifest.json"
RISK_MANIFEST_DSSE = "risk/manifest.dsse.json"
RISK_MANIFEST_SCHEMA = "https://stellaops.dev/schemas/risk-manifest/v1"
RISK_PAYLOAD_TYPE = "application/vnd.stellaops.risk.manifest+json"
MAX_RISK_MANIFEST = 16 << 20
_CHUNK = 1 << 20


class FreshnessPolicy(StrEnum):
    """What to do with a risk bundle whose data has expired."""

    WARN = "warn"
    BLOCK = "block"
    GRACE = "grace"


#: The grace window when ``--policy grace`` is given without ``--grace``.
DEFAULT_GRACE = timedelta(days=3)


@dataclass(frozen=True)
class ProviderFreshness:
    """One provider's freshness at the evaluation time."""

    name: str
    snapshot_at: str | None
    expires_at: datetime
    status: str  # fresh | expired-accepted | in-grace | refused
    raw_path: str
    document: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "expiresAt": rfc3339(self.expires_at),
            "status": self.status,
            "rawFile": self.raw_path,
            "document": self.document,
        }
        if self.snapshot_at is not None:
            out["snapshotAt"] = self.snapshot_at
        return out


@dataclass
class RiskReport:
    """What ``stella risk bundle verify`` says about a bundle, as text or JSON (``stella verify``'s shape + risk)."""

    bundle: str
    policy: FreshnessPolicy
    grace: timedelta | None
    evaluated_at: datetime
    checks: list[Check] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)
    signer: dict[str, Any] | None = None
    providers: list[ProviderFreshness] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: StellaError | None = None
    #: Provider raw files extracted after they verified (only when ``extract_to`` was given), by provider name.
    extracted: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        out: dict[str, Any] = {
            "bundle": self.bundle,
            "verified": self.ok,
            "exitCode": 0 if self.ok else int(self.error.exit_code if self.error else 4),
            "checks": [c.to_dict() for c in self.checks],
            "manifest": self.manifest,
            "freshness": {
                "policy": str(self.policy),
                "evaluatedAt": rfc3339(self.evaluated_at),
                "providers": [p.to_dict() for p in self.providers],
                "warnings": self.warnings,
            },
        }
        if self.grace is not None:
            out["freshness"]["graceSeconds"] = int(self.grace.total_seconds())
        if self.risk:
            out["risk"] = self.risk
        if self.signer:
            out["signer"] = self.signer
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


def _time(text: Any, what: str) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadInputError(f"{what} {text!r} is not an RFC 3339 time", path=RISK_MANIFEST) from None


class _RiskVerification:
    def __init__(
        self,
        bundle: Path,
        keys: Sequence[TrustedKey],
        report: RiskReport,
        on_check: Callable[[Check], None],
        work: Path,
        extract_to: Path | None,
    ) -> None:
        self.bundle = bundle
        self.keys = keys
        self.report = report
        self.on_check = on_check
        self.work = work
        self.extract_to = extract_to

    def passed(self, name: str, detail: str, path: str | None = None) -> None:
        check = Check(name, True, detail, path)
        self.report.checks.append(check)
        self.on_check(check)

    def failed(self, name: str, error: StellaError) -> StellaError:
        check = Check(name, False, error.message, error.path)
        self.report.checks.append(check)
        self.on_check(check)
        return error

    def run(self, manifest_sha: str) -> None:
        profile = self.report.manifest.get("profile") or {}
        if (profile.get("kind"), profile.get("variant")) != ("risk", "bundle"):
            raise self.failed(
                "risk profile",
                BadInputError(
                    f"not a risk bundle: profile {profile.get('id')!r}"
                    f" ({profile.get('kind')}:{profile.get('variant')})",
                    path=str(self.bundle),
                    hint="`stella verify` checks bundles of other profiles",
                ),
            )
        self.passed("risk profile", f"{profile.get('id')} bundle")
        files = self.read_files(manifest_sha)
        risk = self.check_manifest(files)
        self.check_freshness(risk)

    # -- a second, digest-checked read of what matters -------------------------------------------------
    def read_files(self, manifest_sha: str) -> dict[str, Path]:
        """Copy export.json, the risk manifest, its envelope and provider files out, each checked by digest."""
        copies: dict[str, Path] = {}
        listed: dict[str, tuple[str, int]] = {}
        with SafeArchiveReader(self.bundle, ReaderLimits()) as reader:
            for member in reader:
                name = member.name
                if name == "export.json":
                    target = self.work / "export.json"
                elif name.startswith(("risk/", "providers/")):
                    if name not in listed:
                        raise self.failed("risk files", IntegrityError("not listed in export.json", path=name))
                    target = self.work / "files" / PurePosixPath(name).as_posix().replace("/", "_")
                else:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                size = 0
                with member.stream() as src, target.open("wb") as out:
                    while chunk := src.read(_CHUNK):
                        sha.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                if name == "export.json":
                    if sha.hexdigest() != manifest_sha:
                        raise self.failed(
                            "risk files",
                            IntegrityError("export.json changed since it was verified", path=name),
                        )
                    listed = {
                        f.path: (f.sha256, f.size)
                        for f in ManifestReader(target).files()
                        if f.path.startswith(("risk/", "providers/"))
                    }
                    continue
                if (sha.hexdigest(), size) != listed[name]:
                    raise self.failed(
                        "risk files", IntegrityError("differs from the digest export.json lists", path=name)
                    )
                copies[name] = target
        missing = sorted(set(listed) - set(copies))
        if missing or RISK_MANIFEST not in copies or RISK_MANIFEST_DSSE not in copies:
            absent = missing[0] if missing else RISK_MANIFEST if RISK_MANIFEST not in copies else RISK_MANIFEST_DSSE
            raise self.failed("risk files", IntegrityError("missing from the bundle", path=absent))
        self.passed("risk files", f"{len(copies)} risk and provider files match export.json")
        return copies

    # -- the risk manifest ---------------------------------------------------------------------------------
    def check_manifest(self, files: dict[str, Path]) -> dict[str, Any]:
        body = files[RISK_MANIFEST].read_bytes()
        envelope_bytes = files[RISK_MANIFEST_DSSE].read_bytes()
        if len(body) > MAX_RISK_MANIFEST or len(envelope_bytes) > 2 * MAX_RISK_MANIFEST:
            raise self.failed("risk manifest", IntegrityError("oversized risk manifest", path=RISK_MANIFEST))
        try:
            envelope = orjson.loads(envelope_bytes)
            payload_type = str(envelope["payloadType"])
            payload = base64.b64decode(envelope["payload"], validate=True)
            signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            raise self.failed("risk manifest", SignatureError("not a DSSE envelope", path=RISK_MANIFEST_DSSE)) from None
        if payload_type != RISK_PAYLOAD_TYPE:
            raise self.failed(
                "risk manifest",
                SignatureError(f"payloadType {payload_type!r} is not {RISK_PAYLOAD_TYPE}", path=RISK_MANIFEST_DSSE),
            )
        keyid = (self.report.signer or {}).get("keyid")
        signer = next((k for k in self.keys if k.keyid == keyid), None)
        if signer is None or not any(verify_raw(signer.public_key, s, pae(payload_type, payload)) for s in signatures):
            raise self.failed(
                "risk manifest",
                SignatureError(
                    "risk/manifest.dsse.json is not signed by the key that signed export.json",
                    path=RISK_MANIFEST_DSSE,
                ),
            )
        if payload != body:
            raise self.failed(
                "risk manifest",
                IntegrityError("the DSSE envelope does not carry risk/manifest.json", path=RISK_MANIFEST_DSSE),
            )
        try:
            risk: dict[str, Any] = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self.failed("risk manifest", BadInputError("not JSON", path=RISK_MANIFEST)) from None
        header = self.report.manifest
        section = header.get("risk") or {}
        agrees = (
            isinstance(risk, dict)
            and risk.get("schema") == RISK_MANIFEST_SCHEMA
            and risk.get("tenant") == header.get("tenant")
            and risk.get("runId") == header.get("runId")
            and risk.get("createdAt") == header.get("createdAt")
            and risk.get("expiresAt") == section.get("expiresAt")
            and [(p.get("name"), p.get("expiresAt")) for p in risk.get("providers") or []]
            == [(p.get("name"), p.get("expiresAt")) for p in section.get("providers") or []]
        )
        if not agrees or not risk.get("providers"):
            raise self.failed(
                "risk manifest",
                IntegrityError("risk/manifest.json disagrees with the risk section of export.json", path=RISK_MANIFEST),
            )
        for provider in risk["providers"]:
            raw = str((provider.get("files") or {}).get("raw"))
            document = str((provider.get("dataset") or {}).get("sha256"))
            path = files.get(raw)
            if path is None or hashlib.sha256(path.read_bytes()).hexdigest() != document:
                raise self.failed(
                    "risk manifest",
                    IntegrityError(f"the {provider.get('name')} dataset is not the document it names", path=raw),
                )
            if self.extract_to is not None:
                target = self.extract_to / str(provider["name"]) / PurePosixPath(raw).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
                self.report.extracted[str(provider["name"])] = target
        self.report.risk = risk
        names = ", ".join(str(p["name"]) for p in risk["providers"])
        self.passed("risk manifest", f"DSSE verified with the bundle's signer; providers: {names}", RISK_MANIFEST)
        return risk

    # -- freshness ---------------------------------------------------------------------------------
    def check_freshness(self, risk: dict[str, Any]) -> None:
        at = self.report.evaluated_at
        policy = self.report.policy
        grace = self.report.grace or timedelta(0)
        refused: list[str] = []
        for provider in risk["providers"]:
            name = str(provider["name"])
            expires = _time(provider.get("expiresAt"), f"{name} expiresAt")
            snapshot = (provider.get("dataset") or {}).get("snapshotAt")
            when = f"{name} data (snapshot {snapshot or 'undated'}) expired at {rfc3339(expires)}"
            if at <= expires:
                status = "fresh"
            elif policy is FreshnessPolicy.WARN:
                status = "expired-accepted"
                self.report.warnings.append(f"{when}; accepted under policy warn")
            elif policy is FreshnessPolicy.GRACE and at <= expires + grace:
                status = "in-grace"
                self.report.warnings.append(
                    f"{when}; accepted within the grace window until {rfc3339(expires + grace)}"
                )
            else:
                status = "refused"
                refused.append(
                    when
                    + (f", grace window ended {rfc3339(expires + grace)}" if policy is FreshnessPolicy.GRACE else "")
                )
            self.report.providers.append(
                ProviderFreshness(
                    name,
                    snapshot,
                    expires,
                    status,
                    str((provider.get("files") or {}).get("raw")),
                    str((provider.get("dataset") or {}).get("sha256")),
                )
            )
        if refused:
            raise self.failed(
                "freshness",
                PolicyRefusal(
                    "; ".join(refused) + f" (evaluated at {rfc3339(at)}, policy {policy})",
                    path=RISK_MANIFEST,
                    hint="get a fresher risk bundle, or accept stale data with --policy warn or --policy grace",
                ),
            )
        detail = ", ".join(f"{p.name} {p.status} (expires {rfc3339(p.expires_at)})" for p in self.report.providers)
        self.passed("freshness", f"{detail}; evaluated at {rfc3339(at)} under policy {policy}")


def verify_risk_bundle(
    bundle: Path,
    keys: Sequence[TrustedKey],
    *,
    policy: FreshnessPolicy = FreshnessPolicy.BLOCK,
    grace: timedelta | None = None,
    at: datetime | None = None,
    on_check: Callable[[Check], None] | None = None,
    extract_to: Path | None = None,
) -> RiskReport:
    """Verify a risk bundle against ``keys`` and its freshness at ``at`` (default: now) under ``policy``.

    ``report.error`` is the first failure (its exit code is the command's). With ``extract_to``, each provider's
    raw dataset is copied there once it verified (``report.extracted``), for import.
    """
    show = on_check or (lambda _c: None)
    if policy is FreshnessPolicy.GRACE and grace is None:
        grace = DEFAULT_GRACE
    report = RiskReport(str(bundle), policy, grace, at or utcnow().replace(microsecond=0))
    base = verify_bundle(bundle, keys, at=at, on_check=show)
    report.checks = list(base.checks)
    report.manifest = base.manifest
    report.signer = base.signer
    if base.error is not None:
        report.error = base.error
        return report
    with tempfile.TemporaryDirectory(prefix="stella-risk-") as work:
        job = _RiskVerification(bundle, keys, report, show, Path(work), extract_to)
        try:
            job.run(str(base.manifest["sha256"]))
        except StellaError as exc:
            if not report.checks or report.checks[-1].ok:
                report.checks.append(Check("risk", False, exc.message, exc.path))
                show(report.checks[-1])
            report.error = exc
    return report
