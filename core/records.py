"""Normalized records: what a source adapter extracts from one raw document.

Plain dataclasses (not pydantic) because the import hot loop builds hundreds of thousands of
them. Every record belongs to exactly one raw document; the store adds ``tenant`` and the
document's sha256 when it writes them, so adapters never deal with either.

Times are UTC ``datetime`` objects without tzinfo (naive UTC), as the store keeps them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class DocumentKind(StrEnum):
    """What a raw document is, as a user would name it."""

    ADVISORY = "advisory"
    VEX = "vex"
    SBOM = "sbom"
    ATTESTATION = "attestation"
    KEV = "kev"
    EPSS = "epss"
    POLICY = "policy"
    FINDINGS = "findings"
    DEVPORTAL = "devportal"


class VexStatus(StrEnum):
    """VEX status in OpenVEX's vocabulary; CSAF and CycloneDX statuses map onto it."""

    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


@dataclass(slots=True)
class AdvisorySeverity:
    """One severity statement: a CVSS vector with its base score, or a vendor label."""

    type: str  # CVSS_V2 | CVSS_V3 | CVSS_V4 | <vendor label type, e.g. Ubuntu, GHSA, CSAF>
    score: str  # the vector string or the label as published
    base_score: float | None = None
    source: str | None = None  # who said it (CNA, ADP, ecosystem), when known


@dataclass(slots=True)
class AffectedRange:
    """One affected interval (or explicit version list) of one package or product.

    ``range_type`` keeps the source's vocabulary: OSV ``SEMVER``/``ECOSYSTEM``/``GIT``, CVE 5
    ``versionType`` values, ``VERSIONS`` for explicit lists, ``CSAF`` for product-status rows.
    ``status`` is ``affected`` unless the source says the product is fixed / not affected.
    """

    ecosystem: str | None
    name: str
    purl: str | None = None
    range_type: str | None = None
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None
    versions: list[str] = field(default_factory=list)
    status: str = "affected"
    product_id: str | None = None  # CSAF product_id, CVE 5 vendor/product, CPE


@dataclass(slots=True)
class Advisory:
    """A security advisory (OSV/GHSA record, CSAF advisory, CVE 5 record)."""

    advisory_id: str
    modified: datetime | None
    published: datetime | None = None
    withdrawn: datetime | None = None
    summary: str | None = None
    aliases: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    cwes: list[str] = field(default_factory=list)
    severities: list[AdvisorySeverity] = field(default_factory=list)
    affected: list[AffectedRange] = field(default_factory=list)


@dataclass(slots=True)
class VexStatement:
    """One VEX statement: a vulnerability's status for one product."""

    vulnerability_id: str
    product: str  # purl when the source gives one, otherwise the source's product identifier
    status: VexStatus
    aliases: list[str] = field(default_factory=list)
    product_purl: str | None = None
    subcomponents: list[str] = field(default_factory=list)
    justification: str | None = None  # in the source's vocabulary
    impact_statement: str | None = None
    action_statement: str | None = None
    timestamp: datetime | None = None


@dataclass(slots=True)
class SbomComponent:
    """One component of an SBOM (a CycloneDX component or an SPDX package)."""

    ref: str | None  # bom-ref or SPDXID
    name: str
    version: str | None = None
    purl: str | None = None
    type: str | None = None
    cpe: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    licenses: list[str] = field(default_factory=list)
    supplier: str | None = None


@dataclass(slots=True)
class Sbom:
    """What an SBOM describes (its subject) and its components."""

    spec_version: str
    serial_number: str | None  # CycloneDX serialNumber, SPDX documentNamespace
    subject_name: str | None
    subject_version: str | None = None
    subject_purl: str | None = None
    created: datetime | None = None
    components: list[SbomComponent] = field(default_factory=list)


@dataclass(slots=True)
class AttestationSubject:
    """A subject of an in-toto Statement: a name and one digest."""

    name: str
    digest_algorithm: str
    digest: str


@dataclass(slots=True)
class Attestation:
    """A DSSE envelope, an in-toto Statement or a Sigstore bundle (stored, not verified at import)."""

    envelope_kind: str  # dsse | intoto-statement | sigstore-bundle
    entry_index: int = 0  # position inside a JSONL file or a multi-attestation document
    media_type: str | None = None  # Sigstore bundle media type
    payload_type: str | None = None
    statement_type: str | None = None
    predicate_type: str | None = None
    signature_count: int = 0
    keyids: list[str] = field(default_factory=list)
    subjects: list[AttestationSubject] = field(default_factory=list)


@dataclass(slots=True)
class KevEntry:
    """One entry of the CISA Known Exploited Vulnerabilities catalog."""

    cve_id: str
    vendor_project: str
    product: str
    vulnerability_name: str
    date_added: date
    short_description: str
    required_action: str
    due_date: date | None
    known_ransomware_campaign_use: str | None = None
    notes: str | None = None
    cwes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class KevCatalog:
    """A KEV catalog snapshot (JSON or CSV form)."""

    catalog_version: str | None
    date_released: datetime | None
    entries: list[KevEntry] = field(default_factory=list)


@dataclass(slots=True)
class EpssScore:
    """One FIRST EPSS row."""

    cve_id: str
    epss: float
    percentile: float


@dataclass(slots=True)
class EpssSnapshot:
    """A FIRST EPSS CSV: model version, score date and rows.

    ``scores`` is sized and iterable, not necessarily a list: a large file's rows are read again from its bytes
    each time they are iterated, and the store writes them in bounded batches.
    """

    model_version: str | None
    score_date: datetime | None
    scores: Collection[EpssScore] = field(default_factory=list)


@dataclass(slots=True)
class Finding:
    """One evaluated finding of a policy run."""

    finding_id: str
    vulnerability_id: str
    subject: str
    decision: str  # pass | warn | fail | ignore
    purl: str | None = None
    severity: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class PolicySnapshot:
    """A policy snapshot (our own JSON format, see docs/policy-format.md)."""

    policy_id: str
    policy_version: str
    inputs_hash: str
    decision_trace_fingerprint: str
    evaluated_at: datetime
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class ParsedDocument:
    """The result of parsing one raw document with one source adapter.

    Exactly the lists that fit ``kind`` are filled. ``document_id`` is the document's own
    identifier (advisory ID, CSAF tracking ID, SBOM serial number...); ``subject`` is what the
    document is about, used for deterministic ordering in exports.
    """

    format: str
    kind: DocumentKind
    media_type: str
    document_id: str
    subject: str
    format_version: str | None = None
    advisories: list[Advisory] = field(default_factory=list)
    vex: list[VexStatement] = field(default_factory=list)
    sbom: Sbom | None = None
    attestations: list[Attestation] = field(default_factory=list)
    kev: KevCatalog | None = None
    epss: EpssSnapshot | None = None
    policy: PolicySnapshot | None = None
    warnings: list[str] = field(default_factory=list)
