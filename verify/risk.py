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
5. ``freshness`` (7): each provider's data against the evaluation time (``--at``, or now) under a
   :class:`FreshnessPolicy`: ``warn`` accepts stale data with a warning, ``block`` refuses it, ``grace``
   accepts it with a warning for a grace window after expiry and refuses it after that. Data goes stale
   ``freshnessSeconds`` after its own snapshot time (KEV ``dateReleased``, EPSS ``score_date``), not after the
   bundle was built, and never later than the signed ``expiresAt``: a bundle built today from a year-old catalog
   is stale (bundles written before the expiry counted from the snapshot are judged the same way).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from core.clock import rfc3339, utcnow
from core.contract.payload_types import RISK_MANIFEST as RISK_PAYLOAD_TYPE
from core.contract.risk import MANIFEST as RISK_MANIFEST
from core.contract.risk import MANIFEST_DSSE as RISK_MANIFEST_DSSE
from core.contract.risk import MANIFEST_SCHEMA as RISK_MANIFEST_SCHEMA
from core.contract.risk import PREFIXES
from core.errors import BadInputError, IntegrityError, PolicyRefusal
from core.progress import Observer
from core.trust import TrustedKey
from verify.bundle import VerifyReport, verify_then
from verify.extract import KindVerification

MAX_RISK_MANIFEST = 16 << 20


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

    @property
    def data_date(self) -> str:
        """The day the data was published (its snapshot time's date), or ``undated``."""
        return self.snapshot_at[:10] if self.snapshot_at else "undated"

    def line(self) -> str:
        """One line a receiver reads: the data's date and whether it is still current, e.g.
        ``kev data of 2025-08-25: stale since 2025-09-08T17:04:19Z (accepted under policy warn)``."""
        since = rfc3339(self.expires_at)
        if self.status == "fresh":
            return f"{self.name} data of {self.data_date}: fresh until {since}"
        verdict = {"expired-accepted": "accepted under policy warn", "in-grace": "accepted within the grace window"}
        return f"{self.name} data of {self.data_date}: stale since {since} ({verdict.get(self.status, 'refused')})"

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
class RiskReport(VerifyReport):
    """What ``stella risk bundle verify`` says about a bundle, as text or JSON (``stella verify``'s shape + risk)."""

    policy: FreshnessPolicy
    grace: timedelta | None
    evaluated_at: datetime
    risk: dict[str, Any] = field(default_factory=dict)
    providers: list[ProviderFreshness] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Provider raw files extracted after they verified (only when ``extract_to`` was given), by provider name.
    extracted: dict[str, Path] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        freshness: dict[str, Any] = {
            "policy": str(self.policy),
            "evaluatedAt": rfc3339(self.evaluated_at),
            "providers": [p.to_dict() for p in self.providers],
            "warnings": self.warnings,
        }
        if self.grace is not None:
            freshness["graceSeconds"] = int(self.grace.total_seconds())
        return {"freshness": freshness} | ({"risk": self.risk} if self.risk else {})

    def freshness_text(self) -> str:
        """Each provider's data date and freshness, for the line that ends a verify or an import."""
        return "; ".join(p.line() for p in self.providers)


def _time(text: Any, what: str) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadInputError(f"{what} {text!r} is not an RFC 3339 time", path=RISK_MANIFEST) from None


class _RiskVerification(KindVerification):
    kind = "risk"
    report: RiskReport

    def run(self, manifest_sha: str) -> None:
        self.check_profile()
        files = self.read_files(manifest_sha, PREFIXES, (RISK_MANIFEST, RISK_MANIFEST_DSSE), "risk and provider")
        risk = self.check_manifest(files)
        self.check_freshness(risk)

    # -- the risk manifest ---------------------------------------------------------------------------------
    def check_manifest(self, files: dict[str, Path]) -> dict[str, Any]:
        body, _, _ = self.signed_manifest(
            files,
            (RISK_MANIFEST, RISK_MANIFEST_DSSE),
            RISK_PAYLOAD_TYPE,
            MAX_RISK_MANIFEST,
            unsigned="risk/manifest.dsse.json is not signed by the key that signed export.json",
            strict_type=True,
        )
        try:
            risk: dict[str, Any] = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self.failed("risk manifest", BadInputError("not JSON", path=RISK_MANIFEST)) from None
        header = self.report.manifest
        section = header.section("risk")
        agrees = (
            isinstance(risk, dict)
            and risk.get("schema") == RISK_MANIFEST_SCHEMA
            and risk.get("tenant") == header.tenant
            and risk.get("runId") == header.run_id
            and risk.get("createdAt") == header.created_at
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
                name = str(provider["name"])
                self.report.extracted[name] = self.extract(path.read_bytes(), name, PurePosixPath(raw).name)
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
            window = provider.get("freshnessSeconds")
            if snapshot is not None and isinstance(window, int) and not isinstance(window, bool):
                # Stale counts from the data's own snapshot time, whatever the bundle's build time said.
                expires = min(expires, _time(snapshot, f"{name} snapshotAt") + timedelta(seconds=window))
            when = f"{name} data of {str(snapshot)[:10] if snapshot else 'undated'} is stale since {rfc3339(expires)}"
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
        self.passed("freshness", f"{self.report.freshness_text()}; evaluated at {rfc3339(at)} under policy {policy}")


def verify_risk_bundle(
    bundle: Path,
    keys: Sequence[TrustedKey],
    *,
    policy: FreshnessPolicy = FreshnessPolicy.BLOCK,
    grace: timedelta | None = None,
    at: datetime | None = None,
    observer: Observer | None = None,
    extract_to: Path | None = None,
) -> RiskReport:
    """Verify a risk bundle against ``keys`` and its freshness at ``at`` (default: now) under ``policy``.

    ``report.error`` is the first failure (its exit code is the command's). With ``extract_to``, each provider's
    raw dataset is copied there once it verified (``report.extracted``), for import.
    """
    if policy is FreshnessPolicy.GRACE and grace is None:
        grace = DEFAULT_GRACE
    report = RiskReport(str(bundle), policy, grace, at or utcnow().replace(microsecond=0))

    def then(work: Path) -> None:
        _RiskVerification(bundle, keys, report, observer, work, extract_to).run(str(report.manifest.sha256))

    return verify_then(report, keys, "risk", then, at=at, observer=observer)
