"""The evidence locker: sealed snapshots of export runs, policy evaluations and jobs, with legal holds, retention,
per-tenant quotas and a hash-chained chain of custody.

`stella evidence ...`, `stella incident ...` (through :mod:`services.incident`) and the automatic seal at the end of
every export run (:func:`seal_export_run`) call these functions. The sealed format is :mod:`core.evidence_seal`'s;
the tables are :mod:`core.evidence_store`'s. What the locker decides:

- **Holds** (S3 Object Lock's legal hold): a hold on a bundle under a case has no expiry; while any hold is active
  the bundle cannot be deleted, pruned or rewritten. Releasing is an explicit act with its own custody event.
- **Retention**: every bundle is kept at least until its ``retention_until`` (the tenant's retention when it was
  sealed, or an open incident's, whichever is longer); it can be lengthened, never shortened. Pruning removes only
  bundles whose retention has passed and that no hold protects, and says what it kept and why.
- **Quota**: a tenant's sealed archives together stay under its quota; a snapshot that would pass it is refused
  (exit 7) before anything is written.
- **Custody**: every snapshot, seal, access, export, transfer, verification, hold, release, refusal and disposal is
  an append-only event, hash-chained per tenant; each sealed bundle carries the chain up to its own snapshot event,
  its head signed (and timestamped when a TSA is configured).

Sealed archives live under the home (``evidence/bundles/<sha256 hex>.tgz``) and are checked against the digest the
locker recorded every time they are read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import secrets
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from core import __version__
from core.atomic import failing_as_environment, write_bytes
from core.canonical import canonical_json
from core.clock import rfc3339, utcnow
from core.contract import bundle as bundle_contract
from core.contract import evidence as contract
from core.custody import CUSTODY_ACTIONS, CustodyEvent, append_event, verify_chain
from core.errors import (
    BadInputError,
    EnvironmentFailure,
    IntegrityError,
    NotFoundError,
    PolicyRefusal,
    StellaError,
    StoreLockedError,
    UsageError,
)
from core.evidence_seal import (
    KINDS,
    EvidenceArtifact,
    PreviousSeal,
    Redaction,
    SealedEvidence,
    SealRequest,
    attach_timestamp,
    read_members,
    seal_evidence,
)
from core.evidence_store import (
    EvidenceArtifactRow,
    EvidenceBundle,
    EvidenceStore,
    Hold,
    Settings,
)
from core.home import Home
from core.progress import NullObserver, Observer
from core.runs import ExportRun, RunEngine, current_user
from core.signing import Signer
from core.store import Store
from core.tenants import validate_tenant
from core.trust import TrustStore
from core.tsa import HttpTimestamper, Timestamper
from services.keys import signer_for
from verify.evidence import EvidenceReport, verify_sealed_evidence

# -- names and layout -------------------------------------------------------------------------------------------

#: The sealed format's evidence kinds and custody actions by name (``KIND["RUN"]``, ``ACTION["DELETE_REFUSED"]``).
KIND = {k.upper(): k for k in KINDS}
ACTION = {a.upper().replace("-", "_"): a for a in CUSTODY_ACTIONS}
KIND_RUN, KIND_POLICY, KIND_JOB = KIND["RUN"], KIND["POLICY"], KIND["JOB"]
#: A deletion or a prune (the disposition record; its ``why`` says which), and a lengthened retention.
DISPOSE = ACTION["DISPOSE"]
RETAIN = ACTION["RETAIN"]

#: The media type of every JSON artifact the locker writes (canonical JSON).
JSON_MEDIA_TYPE = "application/json"
#: The media type of an artifact copied verbatim whose type the locker does not know.
BYTES_MEDIA_TYPE = "application/octet-stream"

#: Redaction profiles: ``standard`` keeps allowlisted fields only (no local paths, no host names), ``none`` all.
REDACTION_PROFILES = ("standard", "none")
DEFAULT_REDACTION = "standard"

#: A tenant's custody chain as carried by one bundle: at most this many of its latest events (a contiguous run).
CUSTODY_IN_BUNDLE = 1000
#: Incident mode keeps evidence at least this long unless told otherwise.
DEFAULT_INCIDENT_RETENTION = timedelta(days=365)


def evidence_dir(home: Home) -> Path:
    """Where the locker keeps its files: ``HOME/evidence``."""
    return home.root / "evidence"


def _archive_rel(digest: str) -> str:
    return f"evidence/bundles/{digest.removeprefix('sha256:')}.tgz"


def new_evidence_id(now: datetime | None = None) -> str:
    """``ev-YYYYMMDDTHHMMSSZ-xxxxxxxx``: sorts by sealing time; the random tail keeps it unique."""
    at = now or utcnow()
    return f"ev-{at:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _host() -> str:
    return socket.gethostname() or "unknown-host"


# -- redaction ----------------------------------------------------------------------------------------------------

#: An allowlist: each kept field maps to True (kept whole) or to the allowlist of its own fields.
Allow = Mapping[str, "bool | Allow"]

_PROFILE_ALLOW: Allow = {"id": True, "revision": True, "config": True, "kind": True, "variant": True}
RUN_ALLOW: Allow = {
    "runId": True,
    "tenant": True,
    "state": True,
    "profile": _PROFILE_ALLOW,
    "createdAt": True,
    "startedAt": True,
    "finishedAt": True,
    "correlationId": True,
    "error": True,
    "artifact": {"sha256": True, "size": True},
    "retryOf": True,
    "parameters": {
        "parametersVersion": True,
        "runId": True,
        "tenant": True,
        "profile": _PROFILE_ALLOW,
        "selectors": True,
        "keyName": True,
        "createdAt": True,
        "inputs": True,
        "options": True,
    },
}
EVENT_ALLOW: Allow = {
    "runId": True,
    "seq": True,
    "time": True,
    "type": True,
    "from": True,
    "to": True,
    "correlationId": True,
    "actor": True,
    "detail": {"error_code": True, "message": True, "sha256": True, "size": True, "evidenceId": True, "digest": True},
}
_DISTRIBUTION_ALLOW: Allow = {
    "distributionId": True,
    "runId": True,
    "type": True,
    "sha256": True,
    "size": True,
    "state": True,
    "createdAt": True,
    "resumedFrom": True,
}


@dataclass
class Redactor:
    """Applies a redaction profile, remembering each field it dropped (once per field, ``*`` for list items)."""

    profile: str
    dropped: dict[str, str] = field(default_factory=dict)

    def keep(self, value: Any, allow: Allow, where: str) -> Any:
        """``value`` (an object, or a list of objects) with only the allowlisted fields."""
        if self.profile == "none":
            return value
        if isinstance(value, list):
            return [self.keep(item, allow, f"{where}/*") for item in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            rule = allow.get(key, False)
            if rule is True:
                out[key] = item
            elif rule is False:
                self.dropped.setdefault(f"{where}/{key}", f"not in the allowlist of redaction profile {self.profile!r}")
            else:
                out[key] = self.keep(item, rule, f"{where}/{key}")
        return out

    def redactions(self) -> list[Redaction]:
        return [Redaction(field=k, reason=v) for k, v in sorted(self.dropped.items())]


# -- what a snapshot seals ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """What one snapshot seals: its kind, the id of what it snapshots, the subject metadata and the artifacts."""

    kind: str
    subject_id: str
    subject: dict[str, Any]
    artifacts: list[EvidenceArtifact]
    redactions: list[Redaction]


def json_artifact(path: str, value: Any) -> EvidenceArtifact:
    return EvidenceArtifact(path=path, data=canonical_json(value), media_type=JSON_MEDIA_TYPE)


def _run_artifacts(
    store: Store, run: ExportRun, redactor: Redactor, prefix: str
) -> tuple[list[EvidenceArtifact], dict[str, Any]]:
    """The run record, its inputs with digests, its events and distribution transcripts (redacted)."""
    engine = RunEngine(store)
    inputs = [
        {
            "documentSha256": i.document_sha256,
            "kind": i.kind,
            "format": i.format,
            "subject": i.subject,
            "documentId": i.document_id,
            "size": i.size,
        }
        for i in engine.inputs(run.run_id)
    ]
    events = [e.to_dict() for e in engine.events(run.run_id)]
    distributions = [d.to_dict() for d in engine.distributions(run.run_id)]
    artifacts = [
        json_artifact(f"{prefix}run.json", redactor.keep(run.to_dict(), RUN_ALLOW, f"{prefix}run.json#")),
        json_artifact(
            f"{prefix}inputs.json", {"count": run.input_count, "sha256": run.inputs_sha256, "inputs": inputs}
        ),
        json_artifact(f"{prefix}events.json", redactor.keep(events, EVENT_ALLOW, f"{prefix}events.json#")),
        json_artifact(
            f"{prefix}distributions.json",
            redactor.keep(distributions, _DISTRIBUTION_ALLOW, f"{prefix}distributions.json#"),
        ),
    ]
    summary = {
        "runId": run.run_id,
        "state": str(run.state),
        "profile": run.profile_id,
        "profileRevision": run.profile_revision,
        "inputsSha256": run.inputs_sha256,
        "inputCount": run.input_count,
        "bundleSha256": run.artifact_sha256,
        "bundleSize": run.artifact_size,
        "distributions": len(distributions),
    }
    return artifacts, summary


def _bundle_head(run: ExportRun) -> list[EvidenceArtifact]:
    """The run's manifest, provenance, checksums and signatures, read from its bundle after checking the bundle's
    digest against the run's record. Empty when the bundle is no longer where the run wrote it."""
    from core.archive.reader import ReaderLimits, SafeArchiveReader

    path = run.artifact_path
    if path is None or not path.is_file():
        return []
    digest = hashlib.sha256()
    with failing_as_environment(path, "cannot read the run's bundle"), path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != run.artifact_sha256:
        raise IntegrityError(
            f"the bundle of run {run.run_id} no longer has the digest the run recorded ({run.artifact_sha256})",
            path=str(path),
            hint="the file was changed after the run; snapshot refused",
        )
    wanted = set(bundle_contract.HEAD_ORDER) - {bundle_contract.README, bundle_contract.VERIFY_SCRIPT}
    out: list[EvidenceArtifact] = []
    with SafeArchiveReader(path, ReaderLimits()) as reader:
        for member in reader:
            if member.name not in bundle_contract.HEAD_ORDER:
                break  # the head comes first: the payload is not evidence of the run, its digests are
            if member.name in wanted:
                with member.stream() as src:
                    data = src.read()
                media = JSON_MEDIA_TYPE if member.name.endswith(".json") else BYTES_MEDIA_TYPE
                out.append(EvidenceArtifact(path=f"bundle/{member.name}", data=data, media_type=media))
    from core.contract.export_attestation import EVIDENCE_PATH
    from core.export_attestation import attestation_path, read_lines

    attestation = attestation_path(path)
    if attestation.is_file():  # the bundle's in-toto Release attestation (services/export_attest.py)
        data = b"".join(read_lines(attestation))
        out.append(EvidenceArtifact(path=EVIDENCE_PATH, data=data, media_type=BYTES_MEDIA_TYPE))
    return out


def run_content(store: Store, tenant: str, ident: str, profile: str) -> Content:
    """An export run: parameters, inputs with digests, events, distribution transcripts, and its bundle's
    manifest, provenance, checksums and signatures with the bundle digest."""
    engine = RunEngine(store)
    run = engine.get_run(_resolve_run(engine, tenant, ident), tenant)
    redactor = Redactor(profile)
    artifacts, summary = _run_artifacts(store, run, redactor, "")
    head = _bundle_head(run)
    artifacts += head
    summary["bundleIncluded"] = bool(head)
    return Content(KIND_RUN, run.run_id, summary, artifacts, redactor.redactions())


def _resolve_run(engine: RunEngine, tenant: str, ident: str) -> str:
    """A run of ``tenant`` by id or unique prefix; another tenant's run reads as one that does not exist."""
    try:
        run_id = engine.resolve_run_id(ident)
        engine.get_run(run_id, tenant)
    except NotFoundError:
        raise NotFoundError(f"no export run {ident!r} in tenant {tenant!r}", hint="see `stella export runs`") from None
    return run_id


def job_content(home: Home, store: Store, tenant: str, ident: str, profile: str) -> Content:
    """A job (any run): its inputs, outputs and the environment it ran in, by digest."""
    engine = RunEngine(store)
    run = engine.get_run(_resolve_run(engine, tenant, ident), tenant)
    redactor = Redactor(profile)
    inputs = [
        {"documentSha256": i.document_sha256, "kind": i.kind, "documentId": i.document_id, "size": i.size}
        for i in engine.inputs(run.run_id)
    ]
    outputs = {
        "artifact": None if run.artifact_sha256 is None else {"sha256": run.artifact_sha256, "size": run.artifact_size},
        "distributions": redactor.keep(
            [d.to_dict() for d in engine.distributions(run.run_id)],
            _DISTRIBUTION_ALLOW,
            "job/outputs.json#/distributions",
        ),
    }
    environment = environment_digests(home, store)
    artifacts = [
        json_artifact("job/inputs.json", {"count": run.input_count, "sha256": run.inputs_sha256, "inputs": inputs}),
        json_artifact("job/outputs.json", outputs),
        json_artifact("job/environment.json", environment),
    ]
    subject = {
        "runId": run.run_id,
        "state": str(run.state),
        "inputsSha256": run.inputs_sha256,
        "outputSha256": run.artifact_sha256,
        "environmentSha256": "sha256:" + _sha(canonical_json(environment)),
    }
    return Content(KIND_JOB, run.run_id, subject, artifacts, redactor.redactions())


def policy_content(store: Store, tenant: str, ident: str) -> Content:
    """A policy evaluation: the policy snapshot (by policy id, the latest evaluation, or by a document digest or a
    unique prefix of it), its findings, the inputs hash, and both documents as imported."""
    rows = store.conn.execute(
        "SELECT document_sha256, policy_id, policy_version, inputs_hash, decision_trace_fingerprint, evaluated_at,"
        " findings_count FROM policy_snapshots WHERE tenant = ? AND (policy_id = ? OR starts_with(document_sha256, ?))"
        " ORDER BY evaluated_at DESC, document_sha256",
        [tenant, ident, ident],
    ).fetchall()
    by_id = [r for r in rows if r[1] == ident]
    if by_id:
        rows = by_id[:1]
    if not rows or not ident:
        raise NotFoundError(
            f"no policy snapshot {ident!r} in tenant {tenant!r}",
            hint="name a policy id or a snapshot document digest (see `stella data list policies`)",
        )
    if len(rows) > 1:
        raise UsageError(
            f"{ident!r} matches {len(rows)} policy snapshots", hint="give more of the snapshot's document digest"
        )
    doc, policy_id, version, inputs_hash, fingerprint, evaluated_at, count = rows[0]
    findings = store.conn.execute(
        "SELECT document_sha256, finding_id, vulnerability_id, subject, purl, severity, decision, reason FROM findings"
        " WHERE tenant = ? AND policy_id = ? AND policy_version = ? ORDER BY document_sha256, finding_id",
        [tenant, policy_id, version],
    ).fetchall()
    snapshot = {
        "documentSha256": doc,
        "policyId": policy_id,
        "policyVersion": version,
        "inputsHash": inputs_hash,
        "decisionTraceFingerprint": fingerprint,
        "evaluatedAt": rfc3339(evaluated_at),
        "findingsCount": int(count),
    }
    finding_list = [
        {
            "documentSha256": f[0],
            "id": f[1],
            "vulnerabilityId": f[2],
            "subject": f[3],
            "purl": f[4],
            "severity": f[5],
            "decision": f[6],
            "reason": f[7],
        }
        for f in findings
    ]
    artifacts = [
        json_artifact("policy/snapshot.json", snapshot),
        json_artifact("policy/findings.json", finding_list),
    ]
    for digest in sorted({doc, *(f[0] for f in findings)}):
        artifacts.append(
            EvidenceArtifact(
                path=f"documents/{digest}.json", data=store.raw_bytes(tenant, digest), media_type=JSON_MEDIA_TYPE
            )
        )
    subject = snapshot | {"findings": len(finding_list)}
    return Content(KIND_POLICY, f"{policy_id}@{version}", subject, artifacts, [])


def environment_digests(home: Home, store: Store) -> dict[str, Any]:
    """What the job ran on: the tool's version, the platform, and digests of the home's trust state and store."""
    trusted = sorted((k.to_dict() for k in TrustStore(home).list()), key=lambda k: str(k.get("label")))
    return {
        "tool": {"name": "stella", "version": __version__},
        "python": sys.version.split()[0],
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "duckdb": duckdb.__version__,
        "storeSchemaVersion": store.schema_version(),
        "trustState": {"keys": len(trusted), "sha256": _sha(canonical_json(trusted))},
    }


# -- custody --------------------------------------------------------------------------------------------------------


def record_custody(
    cur: duckdb.DuckDBPyConnection, tenant: str, action: str, subject: str, digest: str, why: str
) -> CustodyEvent:
    """Append one custody event to the tenant's chain (inside the caller's transaction)."""
    es = EvidenceStore(cur)
    chain = es.custody(tenant, last=1)
    event = append_event(
        chain,
        at=utcnow(),
        actor=current_user(),
        action=action,
        subject=subject,
        subject_digest=digest,
        where=_host(),
        why=why,
    )
    es.append_custody(tenant, event)
    return event


def _subject(evidence_id: str) -> str:
    return f"evidence:{evidence_id}"


def _last_seq(cur: duckdb.DuckDBPyConnection, tenant: str) -> int:
    row = cur.execute("SELECT coalesce(max(seq), 0) FROM evidence_custody_events WHERE tenant = ?", [tenant]).fetchone()
    return int(row[0]) if row else 0


def publish_custody(store: Store, tenant: str, after_seq: int, *, case: str | None = None) -> None:
    """Put the tenant's custody events after ``after_seq`` on the timeline (call after the transaction that recorded
    them committed). A seal, a hold and a release have their own event types, the rest are custody events; each is
    linked to the bundle's digest, and the event's hash is its id, so publishing again records nothing twice."""
    from core.contract.timeline import EVIDENCE_CUSTODY, EVIDENCE_HOLD, EVIDENCE_RELEASE, EVIDENCE_SEALED
    from services.timeline import record_event, source_for

    types = {ACTION["SEAL"]: EVIDENCE_SEALED, ACTION["HOLD"]: EVIDENCE_HOLD, ACTION["RELEASE"]: EVIDENCE_RELEASE}
    for event in EvidenceStore(store.conn).custody(tenant, after=after_seq):
        if event.action == ACTION["SNAPSHOT"]:  # a snapshot's digest is its content's: the seal
            continue  # that follows it names the archive
        record_event(
            store,
            tenant=tenant,
            type=types.get(event.action, EVIDENCE_CUSTODY),
            source=source_for(tenant, "evidence"),
            subject=event.subject,
            data=event.to_dict(),
            event_id=event.hash,
            evidence_digests=[event.subject_digest],
            case_id=case if event.action in (ACTION["HOLD"], ACTION["RELEASE"]) else None,
        )


@contextlib.contextmanager
def _recording(store: Store, tenant: str, *, case: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A transaction on ``store`` whose custody events go on the timeline once it committed."""
    start = _last_seq(store.conn, tenant)
    with store.transaction() as cur:
        yield cur
    publish_custody(store, tenant, start, case=case)


@contextlib.contextmanager
def _locker(home: Home, tenant: str, *, case: str | None = None) -> Iterator[tuple[Store, duckdb.DuckDBPyConnection]]:
    """The store opened for writing, and a :func:`_recording` transaction on it."""
    with Store.open(home) as store, _recording(store, tenant, case=case) as cur:
        yield store, cur


@dataclass(frozen=True)
class CustodyReport:
    """The tenant's custody chain, verified: its events, head, and the bundles whose sealed head it contains."""

    tenant: str
    events: list[CustodyEvent]
    head: str
    anchored: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "verified": True,
            "head": self.head,
            "events": [e.to_dict() for e in self.events],
            "anchoredBundles": self.anchored,
        }


def custody_log(home: Home, tenant: str) -> CustodyReport:
    """`stella evidence custody`: the tenant's chain of custody, verified end to end.

    The chain must be unbroken from its first event (a removed, inserted, changed or reordered event fails, exit 4,
    naming it), and the custody head each of the tenant's bundles sealed must still be in the chain at its place.
    """
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        es = EvidenceStore(store.conn)
        events = es.custody(tenant)
        bundles = es.list(tenant)
    where = f"custody chain of tenant {tenant!r}"
    head = verify_chain(events, path=where)
    hashes = {e.hash for e in events}
    for bundle in bundles:
        if bundle.custody_head not in hashes:
            raise IntegrityError(
                f"evidence {bundle.evidence_id} sealed custody head {bundle.custody_head}, which is no longer in the"
                " chain: custody events were removed or replaced",
                path=where,
            )
    return CustodyReport(tenant, events, head, len(bundles))


# -- sealing --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TsaConfig:
    """The home's time-stamping authority: an RFC 3161 URL on the LAN, with a CA file for https."""

    url: str
    ca_file: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "caFile": None if self.ca_file is None else str(self.ca_file)}


def _tsa_path(home: Home) -> Path:
    return evidence_dir(home) / "tsa.json"


def tsa_config(home: Home) -> TsaConfig | None:
    """The configured TSA, or None."""
    path = _tsa_path(home)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        url = data["url"]
        ca = data.get("caFile")
        if not isinstance(url, str) or not (ca is None or isinstance(ca, str)):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnvironmentFailure(
            f"the TSA configuration is damaged ({exc})",
            path=str(path),
            hint="set it again: stella evidence tsa set URL",
        ) from None
    return TsaConfig(url, None if ca is None else Path(ca))


def set_tsa(home: Home, url: str | None, ca_file: Path | None = None) -> TsaConfig | None:
    """`stella evidence tsa set URL [--ca-file PEM]` (``url`` None: `tsa unset`). The CA file is copied into the
    home, so the configuration does not depend on where it came from."""
    path = _tsa_path(home)
    if url is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    if not url.startswith(("http://", "https://")):
        raise BadInputError(f"TSA URL {url!r} is not http:// or https://", hint="e.g. http://tsa.lan:318/")
    evidence_dir(home.ensure()).mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_copy: Path | None = None
    if ca_file is not None:
        try:
            pem = ca_file.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read the CA file: {exc.strerror}", path=str(ca_file)) from None
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise BadInputError("the CA file holds no PEM certificate", path=str(ca_file))
        ca_copy = evidence_dir(home) / "tsa-ca.pem"
        write_bytes(ca_copy, pem, what="cannot write the TSA CA file")
    config = TsaConfig(url, ca_copy)
    write_bytes(path, json.dumps(config.to_dict(), indent=2).encode() + b"\n", what="cannot write the TSA config")
    return config


def _timestamper(home: Home) -> Timestamper | None:
    config = tsa_config(home)
    return None if config is None else HttpTimestamper(config.url, config.ca_file)


def _retention(es: EvidenceStore, tenant: str, now: datetime) -> datetime:
    """Until when a bundle sealed now is kept: the tenant's retention, or an open incident's if longer."""
    seconds = es.settings(tenant).retention_seconds
    incident = es.open_incident(tenant)
    if incident is not None:
        seconds = max(seconds, incident.retention_seconds)
    return now + timedelta(seconds=seconds)


def _content_digest(artifacts: Sequence[EvidenceArtifact]) -> str:
    listing = [{"path": a.path, "sha256": _sha(a.data), "size": len(a.data)} for a in artifacts]
    return "sha256:" + _sha(canonical_json(listing))


def _seal(
    home: Home,
    cur: duckdb.DuckDBPyConnection,
    tenant: str,
    content: Content,
    signer: Signer,
    timestamper: Timestamper | None,
    *,
    profile: str,
    why: str,
    previous: tuple[EvidenceBundle, PreviousSeal] | None = None,
) -> EvidenceBundle:
    """Seal ``content`` into a new bundle of ``tenant`` (inside the caller's transaction): a snapshot custody event,
    the sealed archive (checked against the quota, then written under the home), a seal event, the rows."""
    es = EvidenceStore(cur)
    now = utcnow().replace(microsecond=0)
    evidence_id = new_evidence_id(now)
    snapshot = record_custody(
        cur, tenant, ACTION["SNAPSHOT"], _subject(evidence_id), _content_digest(content.artifacts), why
    )
    chain = es.custody(tenant, last=CUSTODY_IN_BUNDLE)
    sealed: SealedEvidence = seal_evidence(
        SealRequest(
            evidence_id=evidence_id,
            kind=content.kind,
            tenant=tenant,
            created_at=now,
            subject=content.subject,
            artifacts=content.artifacts,
            redaction_profile=profile,
            redactions=content.redactions,
            custody=chain,
            previous=None if previous is None else previous[1],
        ),
        signer,
        timestamper,
    )
    _check_quota(es, tenant, len(sealed.archive))
    rel = _archive_rel(sealed.digest)
    target = home.root / rel
    with failing_as_environment(target.parent, "cannot create the evidence directory"):
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_bytes(target, sealed.archive, mode=0o600, what="cannot write the sealed evidence")
    try:
        record_custody(cur, tenant, ACTION["SEAL"], _subject(evidence_id), sealed.digest, why)
        bundle = EvidenceBundle(
            tenant=tenant,
            evidence_id=evidence_id,
            kind=content.kind,
            subject=content.subject_id,
            created_at=now,
            created_by=current_user(),
            root_hash=sealed.root_hash,
            tree_size=sealed.tree_size,
            digest=sealed.digest,
            size=len(sealed.archive),
            key_id=signer.keyid,
            timestamped=sealed.timestamped,
            redaction_profile=profile,
            custody_head=snapshot.hash,
            retention_until=_retention(es, tenant, now),
            previous_id=None if previous is None else previous[0].evidence_id,
            archive_path=rel,
        )
        es.insert_bundle(
            bundle,
            [
                EvidenceArtifactRow(i, a.path, _sha(a.data), len(a.data), a.media_type)
                for i, a in enumerate(content.artifacts)
            ],
        )
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    return bundle


def _check_quota(es: EvidenceStore, tenant: str, size: int) -> None:
    quota = es.settings(tenant).quota_bytes
    if quota is None:
        return
    used = es.used_bytes(tenant)
    if used + size > quota:
        raise PolicyRefusal(
            f"tenant {tenant!r} evidence quota exceeded: {used} bytes used + {size} for this bundle > quota {quota}",
            hint="prune expired evidence (stella evidence prune), delete some, or raise the quota"
            " (stella evidence settings --quota)",
        )


@dataclass(frozen=True)
class SnapshotRequest:
    """What `stella evidence snapshot run|policy|job` asks for."""

    tenant: str
    kind: str  # KIND_RUN, KIND_POLICY or KIND_JOB
    ref: str  # a run id (or unique prefix) or a policy id / snapshot digest
    key: str
    passphrase_file: Path | None = None
    redaction: str = DEFAULT_REDACTION
    reason: str = ""


def snapshot(home: Home, request: SnapshotRequest) -> EvidenceBundle:
    """Seal a snapshot into the locker; returns the new bundle. Nothing is written when anything fails."""
    tenant = validate_tenant(request.tenant)
    if request.redaction not in REDACTION_PROFILES:
        raise UsageError(
            f"unknown redaction profile {request.redaction!r}", hint=f"one of {', '.join(REDACTION_PROFILES)}"
        )
    builders: dict[str, Callable[[Store], Content]] = {
        KIND_RUN: lambda s: run_content(s, tenant, request.ref, request.redaction),
        KIND_JOB: lambda s: job_content(home, s, tenant, request.ref, request.redaction),
        KIND_POLICY: lambda s: policy_content(s, tenant, request.ref),
    }
    if request.kind not in builders:
        raise UsageError(f"unknown snapshot kind {request.kind!r}")
    signer = signer_for(home, request.key, request.passphrase_file)
    timestamper = _timestamper(home)
    with _locker(home, tenant) as (store, cur):
        content = builders[request.kind](store)
        why = request.reason or f"snapshot of {request.kind} {content.subject_id}"
        return _seal(home, cur, tenant, content, signer, timestamper, profile=request.redaction, why=why)


def seal_export_run(store: Store, run: ExportRun, signer: Signer) -> EvidenceBundle:
    """The automatic seal at the end of a successful export run: its manifest, provenance, signatures and
    distribution transcripts, signed by the run's key, in the run's tenant (timestamped when a TSA is configured)."""
    home = store.home
    with _recording(store, run.tenant) as cur:
        content = run_content(store, run.tenant, run.run_id, DEFAULT_REDACTION)
        return _seal(
            home,
            cur,
            run.tenant,
            content,
            signer,
            _timestamper(home),
            profile=DEFAULT_REDACTION,
            why=f"sealed automatically when export run {run.run_id} succeeded",
        )


def seal_in(
    store: Store, cur: duckdb.DuckDBPyConnection, tenant: str, content: Content, signer: Signer, why: str
) -> EvidenceBundle:
    """Seal ``content`` built elsewhere (incident captures) inside the caller's transaction on ``store``; the caller
    puts the custody events on the timeline (:func:`publish_custody`) once it committed."""
    return _seal(store.home, cur, tenant, content, signer, _timestamper(store.home), profile=DEFAULT_REDACTION, why=why)


# -- reading and handing out ----------------------------------------------------------------------------------------


def _read_archive(home: Home, bundle: EvidenceBundle) -> bytes:
    """The sealed archive's bytes, checked against the digest the locker recorded (exit 4 naming it otherwise)."""
    path = home.root / bundle.archive_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(
            f"the sealed archive of evidence {bundle.evidence_id} is missing", path=str(path)
        ) from None
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read the sealed archive: {exc.strerror}", path=str(path)) from None
    if "sha256:" + _sha(data) != bundle.digest:
        raise IntegrityError(
            f"the sealed archive of evidence {bundle.evidence_id} does not have the digest recorded ({bundle.digest})",
            path=str(path),
            hint="it was changed on disk; restore it from an export",
        )
    return data


def list_evidence(home: Home, tenant: str) -> list[tuple[EvidenceBundle, list[Hold]]]:
    """`stella evidence list`: the tenant's bundles, newest first, each with its active holds."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        es = EvidenceStore(store.conn)
        return [(b, es.holds(tenant, b.evidence_id, active_only=True)) for b in es.list(tenant)]


@dataclass(frozen=True)
class EvidenceDetail:
    """One bundle with its artifacts and every hold it has had (`stella evidence show`)."""

    bundle: EvidenceBundle
    artifacts: list[EvidenceArtifactRow]
    holds: list[Hold]

    def to_dict(self) -> dict[str, Any]:
        return self.bundle.to_dict() | {
            "held": any(h.active for h in self.holds),
            "holds": [h.to_dict() for h in self.holds],
            "artifacts": [a.to_dict() for a in self.artifacts],
        }


def show_evidence(home: Home, tenant: str, ident: str, *, why: str = "") -> EvidenceDetail:
    """`stella evidence show ID`: one bundle (recorded as an access in the custody chain)."""
    tenant = validate_tenant(tenant)
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        record_custody(cur, tenant, ACTION["ACCESS"], _subject(bundle.evidence_id), bundle.digest, why or "shown")
        return EvidenceDetail(bundle, es.artifacts(tenant, bundle.evidence_id), es.holds(tenant, bundle.evidence_id))


def export_evidence(
    home: Home, tenant: str, ident: str, out: Path, *, recipient: str | None = None, why: str = ""
) -> tuple[EvidenceBundle, Path]:
    """`stella evidence export ID --out FILE.tgz [--to WHO]`: the sealed archive, written whole or not at all,
    after checking it against its recorded digest. An export is recorded in the custody chain; with ``recipient``,
    as a transfer to them."""
    from services.export import output_path

    tenant = validate_tenant(tenant)
    target = output_path(out)
    if target.exists() or target.is_symlink():
        raise UsageError("the output already exists", path=str(target), hint="move it away, or choose another --out")
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        data = _read_archive(home, bundle)
        if recipient:
            record_custody(
                cur,
                tenant,
                ACTION["TRANSFER"],
                _subject(bundle.evidence_id),
                bundle.digest,
                why or f"handed to {recipient}",
            )
        else:
            record_custody(
                cur,
                tenant,
                ACTION["EXPORT"],
                _subject(bundle.evidence_id),
                bundle.digest,
                why or f"exported to {target.name}",
            )
        write_bytes(target, data, exclusive=True, what="cannot write the evidence export")
    return bundle, target


def _held_refusal(bundle: EvidenceBundle, holds: Sequence[Hold], what: str) -> PolicyRefusal:
    cases = ", ".join(sorted({h.case_id for h in holds}))
    return PolicyRefusal(
        f"evidence {bundle.evidence_id} is under legal hold (case {cases}): it cannot be {what}",
        hint=f"release the hold first: stella evidence release {sorted({h.case_id for h in holds})[0]} --bundle"
        f" {bundle.evidence_id}",
    )


def _remove_archive(home: Home, bundle: EvidenceBundle) -> None:
    with contextlib.suppress(FileNotFoundError):
        (home.root / bundle.archive_path).unlink()


def delete_evidence(
    home: Home, tenant: str, ident: str, *, why: str = "", now: datetime | None = None
) -> EvidenceBundle:
    """`stella evidence delete ID`: remove a bundle. Refused (exit 7) while a hold is active, naming the case, or
    while its retention lasts, naming the date; a refusal under hold is itself a custody event."""
    tenant = validate_tenant(tenant)
    at = now or utcnow()
    refusal: StellaError | None = None
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        holds = es.holds(tenant, bundle.evidence_id, active_only=True)
        if holds:
            refusal = _held_refusal(bundle, holds, "deleted")
            record_custody(
                cur, tenant, ACTION["DELETE_REFUSED"], _subject(bundle.evidence_id), bundle.digest, refusal.message
            )
        elif bundle.retention_until > at:
            raise PolicyRefusal(
                f"evidence {bundle.evidence_id} is retained until {rfc3339(bundle.retention_until)}: it cannot be"
                " deleted before then",
                hint="retention can be lengthened, never shortened",
            )
        else:
            _dispose(cur, tenant, bundle, why or "deleted")
    if refusal is not None:
        raise refusal  # after the refusal's custody event committed
    _remove_archive(home, bundle)
    return bundle


def _dispose(cur: duckdb.DuckDBPyConnection, tenant: str, bundle: EvidenceBundle, why: str) -> None:
    """Remove a bundle's rows, recording the disposal in the custody chain (the caller removes the archive once the
    transaction committed, so a failed one leaves the bundle whole)."""
    EvidenceStore(cur).delete(tenant, bundle.evidence_id)
    record_custody(cur, tenant, DISPOSE, _subject(bundle.evidence_id), bundle.digest, why)


# -- holds and retention ----------------------------------------------------------------------------------------------


def _check_case(case: str) -> str:
    ok = case and len(case) <= 128 and all(c.isalnum() or c in "-_.:/#" for c in case)
    if not ok:
        raise UsageError(f"invalid case id {case!r}", hint="letters, digits and - _ . : / # (at most 128)")
    return case


def place_hold(home: Home, tenant: str, case: str, ident: str, reason: str) -> tuple[Hold, bool]:
    """`stella evidence hold CASE --bundle ID --reason ...`: a legal hold without expiry; returns the hold and
    whether it is new (holding again under the same case changes nothing)."""
    tenant = validate_tenant(tenant)
    case = _check_case(case)
    if not reason.strip():
        raise UsageError("a hold needs a reason (--reason)")
    with _locker(home, tenant, case=case) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        for hold in es.holds(tenant, bundle.evidence_id, active_only=True):
            if hold.case_id == case:
                return hold, False
        hold = Hold(case, bundle.evidence_id, reason, current_user(), utcnow(), None, None, None)
        es.place_hold(tenant, hold)
        record_custody(
            cur, tenant, ACTION["HOLD"], _subject(bundle.evidence_id), bundle.digest, f"case {case}: {reason}"
        )
        return hold, True


def release_hold(home: Home, tenant: str, case: str, ident: str, reason: str = "") -> Hold:
    """`stella evidence release CASE --bundle ID`: end the case's hold on the bundle (other cases' holds stay)."""
    tenant = validate_tenant(tenant)
    case = _check_case(case)
    with _locker(home, tenant, case=case) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        active = [h for h in es.holds(tenant, bundle.evidence_id, active_only=True) if h.case_id == case]
        if not active:
            raise NotFoundError(
                f"evidence {bundle.evidence_id} has no active hold under case {case!r}",
                hint=f"see `stella evidence show {bundle.evidence_id}`",
            )
        at = utcnow()
        who = current_user()
        es.release_hold(tenant, case, bundle.evidence_id, by=who, at=at, reason=reason or None)
        record_custody(
            cur,
            tenant,
            ACTION["RELEASE"],
            _subject(bundle.evidence_id),
            bundle.digest,
            f"case {case}: {reason or 'released'}",
        )
        held = active[0]
        return Hold(
            held.case_id, held.evidence_id, held.reason, held.placed_by, held.placed_at, who, at, reason or None
        )


def parse_until(text: str) -> datetime:
    """``--until``: an RFC 3339 time or a date (``2027-12-31``: the end of that day, UTC)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value) + timedelta(days=1) - timedelta(seconds=1)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--until {text!r} is not a date or an RFC 3339 time", hint="e.g. 2027-12-31") from None
    if parsed.tzinfo is not None:
        from datetime import UTC

        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def retain(home: Home, tenant: str, ident: str, until: datetime) -> tuple[EvidenceBundle, bool]:
    """`stella evidence retain ID --until DATE`: lengthen a bundle's retention; shortening is refused (exit 7).
    Returns the bundle as it is now and whether its retention changed."""
    tenant = validate_tenant(tenant)
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        if until < bundle.retention_until:
            raise PolicyRefusal(
                f"evidence {bundle.evidence_id} is retained until {rfc3339(bundle.retention_until)}; retention can be"
                f" lengthened, never shortened (asked for {rfc3339(until)})"
            )
        if until == bundle.retention_until:
            return bundle, False
        es.set_retention(tenant, bundle.evidence_id, until)
        record_custody(
            cur,
            tenant,
            RETAIN,
            _subject(bundle.evidence_id),
            bundle.digest,
            f"retention lengthened from {rfc3339(bundle.retention_until)} to {rfc3339(until)}",
        )
        return es.get(tenant, bundle.evidence_id), True


@dataclass(frozen=True)
class PruneOutcome:
    """What a prune did (or, dry, would do): removed, kept under hold (with the cases), kept under retention."""

    dry_run: bool
    removed: list[EvidenceBundle]
    held: list[tuple[EvidenceBundle, list[str]]]
    retained: list[EvidenceBundle]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "removed": [{"id": b.evidence_id, "digest": b.digest, "size": b.size} for b in self.removed],
            "keptHeld": [{"id": b.evidence_id, "cases": cases} for b, cases in self.held],
            "keptRetained": [
                {"id": b.evidence_id, "retentionUntil": rfc3339(b.retention_until)} for b in self.retained
            ],
        }


def prune(home: Home, tenant: str, *, dry_run: bool = False, now: datetime | None = None) -> PruneOutcome:
    """`stella evidence prune [--dry-run]`: remove the tenant's bundles whose retention has passed, except those
    under an active hold, which are kept (each keep recorded in the custody chain). A dry run changes nothing."""
    tenant = validate_tenant(tenant)
    at = now or utcnow()
    removed: list[EvidenceBundle] = []
    held: list[tuple[EvidenceBundle, list[str]]] = []
    retained: list[EvidenceBundle] = []
    with Store.open(home, read_only=dry_run) as store:
        ctx = contextlib.nullcontext(store.conn) if dry_run else _recording(store, tenant)
        with ctx as cur:
            es = EvidenceStore(cur)
            for bundle in sorted(es.list(tenant), key=lambda b: (b.created_at, b.evidence_id)):
                holds = es.holds(tenant, bundle.evidence_id, active_only=True)
                if holds:
                    cases = sorted({h.case_id for h in holds})
                    held.append((bundle, cases))
                    if not dry_run and bundle.retention_until <= at:
                        record_custody(
                            cur,
                            tenant,
                            ACTION["PRUNE_KEPT"],
                            _subject(bundle.evidence_id),
                            bundle.digest,
                            f"retention passed, kept under legal hold (case {', '.join(cases)})",
                        )
                elif bundle.retention_until > at:
                    retained.append(bundle)
                else:
                    removed.append(bundle)
                    if not dry_run:
                        _dispose(cur, tenant, bundle, f"pruned: retention ended {rfc3339(bundle.retention_until)}")
        if not dry_run:  # committed: the archives go, and any a killed process left behind
            for bundle in removed:
                _remove_archive(home, bundle)
            _sweep_orphans(home, store)
    return PruneOutcome(dry_run, removed, held, retained)


# -- settings -------------------------------------------------------------------------------------------------------


def _sweep_orphans(home: Home, store: Store) -> None:
    """Remove sealed archives no bundle of any tenant points to: what a process killed between a committed deletion
    and the file's removal left behind (a seal writes its file before it commits, under the same writer lock)."""
    folder = evidence_dir(home) / "bundles"
    if not folder.is_dir():
        return
    known = {str(r[0]) for r in store.conn.execute("SELECT archive_path FROM evidence_bundles").fetchall()}
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".tgz") and len(name) == 68 and _archive_rel("sha256:" + name[:64]) not in known:
            with contextlib.suppress(OSError):
                entry.unlink()


def parse_size(text: str) -> int:
    """``--quota``: bytes, or with a unit (``500K``, ``20M``, ``1G``; powers of 1024)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    scale = units.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in units else value
    if not number.isdigit():
        raise UsageError(f"{text!r} is not a size", hint="bytes, or a number with K, M, G or T (e.g. 500M)")
    return int(number) * scale


def evidence_settings(
    home: Home, tenant: str, *, quota: int | bool | None = False, retention: timedelta | None = None
) -> tuple[Settings, int]:
    """`stella evidence settings`: show or change the tenant's quota (``quota``: bytes, None to remove it, False to
    leave it) and the retention of new evidence; returns the settings and the bytes in use."""
    tenant = validate_tenant(tenant)
    change = quota is not False or retention is not None
    with Store.open(home, read_only=not change) as store:
        es = EvidenceStore(store.conn)
        current = es.settings(tenant)
        if change:
            new = Settings(
                current.quota_bytes if quota is False else (None if quota is None else int(quota)),
                current.retention_seconds if retention is None else int(retention.total_seconds()),
            )
            with store.transaction() as cur:
                EvidenceStore(cur).set_settings(tenant, new, by=current_user(), at=utcnow())
            current = new
        return current, es.used_bytes(tenant)


# -- verification, re-seal and attached timestamps ----------------------------------------------------------------


def verify_evidence_file(
    home: Home | None,
    tenant: str,
    path: Path,
    key_files: Sequence[Path],
    tsa_cert_files: Sequence[Path] = (),
    observer: Observer | None = None,
) -> EvidenceReport:
    """`stella evidence verify FILE --key PUB [--tsa-cert PEM]`: the sealed-bundle verifier, check by check. When
    the home's locker holds this very archive for ``tenant``, the verification is recorded in its custody chain."""
    from services.trust import keys_from_files

    if not key_files:
        raise UsageError("name the signer's public key with --key PUB")
    keys = keys_from_files(key_files)
    certs: list[bytes] = []
    for cert in tsa_cert_files:
        try:
            certs.append(cert.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read the TSA certificate: {exc.strerror}", path=str(cert)) from None
    report = verify_sealed_evidence(path, keys=keys, tsa_certs=certs or None, observer=observer or NullObserver())
    if home is not None and home.store_path.exists() and report.error is None:
        with contextlib.suppress(StoreLockedError):  # a busy store does not undo a verification: it goes unrecorded
            _record_verification(home, validate_tenant(tenant), path)
    return report


def custody_of(home: Home, tenant: str, ident: str, *, last: int = 10) -> list[CustodyEvent]:
    """The last ``last`` custody events of one bundle, oldest first (the TUI's custody tail; reading it is no access
    of its own: the caller's `show` recorded one)."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        es = EvidenceStore(store.conn)
        subject = _subject(es.get(tenant, ident).evidence_id)
        return [e for e in es.custody(tenant) if e.subject == subject][-last:]


def verify_stored_evidence(
    home: Home,
    tenant: str,
    ident: str,
    key_files: Sequence[Path] = (),
    tsa_cert_files: Sequence[Path] = (),
    observer: Observer | None = None,
) -> tuple[EvidenceBundle, EvidenceReport]:
    """Verify the locker's own archive of ``ident`` with the sealed-bundle verifier, check by check (the TUI's
    verify). The archive must first have the digest the locker recorded (exit 4 naming it). Without ``key_files``
    the trusted keys are the trust store's and, when this home holds it, the signing key that sealed the bundle
    (found by its key id). A verified bundle gets a ``verify`` custody event."""
    from services.keys import list_keys, signer_trusted_key
    from services.trust import keys_from_files, trusted_keys

    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        bundle = EvidenceStore(store.conn).get(tenant, ident)
    _read_archive(home, bundle)
    if key_files:
        keys = keys_from_files(key_files)
    else:
        keys = trusted_keys(home)
        keys += [signer_trusted_key(home, k.name) for k in list_keys(home) if k.keyid == bundle.key_id]
    certs: list[bytes] = []
    for cert in tsa_cert_files:
        try:
            certs.append(cert.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read the TSA certificate: {exc.strerror}", path=str(cert)) from None
    path = home.root / bundle.archive_path
    report = verify_sealed_evidence(path, keys=keys, tsa_certs=certs or None, observer=observer or NullObserver())
    if report.error is None:
        with contextlib.suppress(StoreLockedError):  # as for `stella evidence verify`
            _record_verification(home, tenant, path)
    return bundle, report


def _record_verification(home: Home, tenant: str, path: Path) -> None:
    try:
        digest = "sha256:" + _sha(path.read_bytes())
    except OSError:
        return
    with _locker(home, tenant) as (_store, cur):
        bundle = EvidenceStore(cur).by_digest(tenant, digest)
        if bundle is not None:
            record_custody(cur, tenant, ACTION["VERIFY"], _subject(bundle.evidence_id), digest, f"verified {path.name}")


def _archive_artifacts(data: bytes) -> dict[str, bytes]:
    """The artifacts of one of the locker's own sealed archives (digest-checked before), by path."""
    members, _ = read_members(data)
    return {
        name.removeprefix(contract.ARTIFACTS_DIR): body
        for name, body in members.items()
        if name.startswith(contract.ARTIFACTS_DIR)
    }


def reseal(
    home: Home, tenant: str, ident: str, key: str, passphrase_file: Path | None = None, why: str = ""
) -> EvidenceBundle:
    """`stella evidence reseal ID --key NAME`: a new bundle holding the earlier one's artifacts (same order) and a
    re-seal record, signed now (and timestamped when a TSA is configured), linked to the earlier root by a
    consistency proof. The earlier bundle stays as it is."""
    tenant = validate_tenant(tenant)
    signer = signer_for(home, key, passphrase_file)
    timestamper = _timestamper(home)
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        earlier = es.get(tenant, ident)
        rows = es.artifacts(tenant, earlier.evidence_id)
        found = _archive_artifacts(_read_archive(home, earlier))
        artifacts = []
        for row in rows:
            got = found.get(row.path)
            if got is None or _sha(got) != row.sha256:
                raise IntegrityError(
                    f"artifact {row.path} of evidence {earlier.evidence_id} is missing or changed",
                    path=str(home.root / earlier.archive_path),
                )
            artifacts.append(EvidenceArtifact(path=row.path, data=got, media_type=row.media_type))
        record = {
            "previous": {
                "id": earlier.evidence_id,
                "digest": earlier.digest,
                "rootHash": earlier.root_hash,
                "treeSize": earlier.tree_size,
            },
            "resealedAt": rfc3339(utcnow().replace(microsecond=0)),
            "reason": why or "re-sealed",
        }
        artifacts.append(json_artifact(f"reseals/{secrets.token_hex(4)}.json", record))
        content = Content(
            earlier.kind,
            earlier.subject,
            {"resealOf": earlier.evidence_id, "subject": earlier.subject},
            artifacts,
            [],
        )
        return _seal(
            home,
            cur,
            tenant,
            content,
            signer,
            timestamper,
            profile=earlier.redaction_profile,
            why=why or f"re-seal of {earlier.evidence_id}",
            previous=(earlier, PreviousSeal(earlier.evidence_id, earlier.tree_size, earlier.root_hash)),
        )


def attach_token(home: Home, tenant: str, ident: str, token_file: Path) -> EvidenceBundle:
    """`stella evidence timestamp ID --token FILE`: attach an RFC 3161 token made elsewhere (over the bundle's
    manifest signature). The archive is rewritten, so a held bundle is refused (exit 7)."""
    tenant = validate_tenant(tenant)
    try:
        token = token_file.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read the timestamp token: {exc.strerror}", path=str(token_file)) from None
    with _locker(home, tenant) as (_store, cur):
        es = EvidenceStore(cur)
        bundle = es.get(tenant, ident)
        holds = es.holds(tenant, bundle.evidence_id, active_only=True)
        if holds:
            raise _held_refusal(bundle, holds, "rewritten with a timestamp")
        sealed = attach_timestamp(_read_archive(home, bundle), token)
        rel = _archive_rel(sealed.digest)
        target = home.root / rel
        write_bytes(target, sealed.archive, mode=0o600, what="cannot write the sealed evidence")
        try:
            cur.execute(
                "UPDATE evidence_bundles SET digest = ?, size = ?, timestamped = ?, archive_path = ?"
                " WHERE tenant = ? AND evidence_id = ?",
                [sealed.digest, len(sealed.archive), sealed.timestamped, rel, tenant, bundle.evidence_id],
            )
            _check_quota_after(es, tenant)
            record_custody(
                cur,
                tenant,
                ACTION["SEAL"],
                _subject(bundle.evidence_id),
                sealed.digest,
                f"RFC 3161 token attached from {token_file.name}",
            )
        except BaseException:
            if rel != bundle.archive_path:
                with contextlib.suppress(OSError):
                    target.unlink()
            raise
        if rel != bundle.archive_path:
            _remove_archive(home, bundle)
        return es.get(tenant, bundle.evidence_id)


def _check_quota_after(es: EvidenceStore, tenant: str) -> None:
    quota = es.settings(tenant).quota_bytes
    used = es.used_bytes(tenant)
    if quota is not None and used > quota:
        raise PolicyRefusal(f"tenant {tenant!r} evidence quota exceeded: {used} bytes > quota {quota}")


def signature_bytes(home: Home, tenant: str, ident: str) -> bytes:
    """The bytes a TSA stamps for a bundle (its manifest signature): what `stella evidence timestamp ID
    --signature-out FILE` writes for `openssl ts -query -data FILE`."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        bundle = EvidenceStore(store.conn).get(tenant, ident)
        data = _read_archive(home, bundle)
    members, _ = read_members(data)
    if contract.SIGNATURE not in members:
        raise IntegrityError(f"evidence {bundle.evidence_id} has no {contract.SIGNATURE}", path=bundle.archive_path)
    return members[contract.SIGNATURE]


def iter_kinds() -> Iterator[str]:
    """The snapshot kinds `stella evidence snapshot` takes."""
    yield from (KIND_RUN, KIND_POLICY, KIND_JOB)
