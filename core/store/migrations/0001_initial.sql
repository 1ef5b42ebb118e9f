-- 0001: raw documents, normalized rows, and the export tables named in the seed design.
-- Every row carries tenant; every query filters by it. Times are UTC (TIMESTAMP without zone).

CREATE TABLE raw_documents (
    tenant          VARCHAR   NOT NULL,
    sha256          VARCHAR   NOT NULL,
    size            BIGINT    NOT NULL,
    format          VARCHAR   NOT NULL,
    format_version  VARCHAR,
    kind            VARCHAR   NOT NULL,
    media_type      VARCHAR   NOT NULL,
    document_id     VARCHAR   NOT NULL,
    subject         VARCHAR   NOT NULL,
    source_path     VARCHAR   NOT NULL,
    imported_at     TIMESTAMP NOT NULL,
    content         BLOB,                -- NULL when the bytes live in blobs/sha256/<hex>
    PRIMARY KEY (tenant, sha256)
);

CREATE TABLE advisories (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    advisory_id     VARCHAR NOT NULL,
    source_format   VARCHAR NOT NULL,
    modified        TIMESTAMP,
    published       TIMESTAMP,
    withdrawn       TIMESTAMP,
    summary         VARCHAR,
    aliases         VARCHAR[],
    related         VARCHAR[],
    cwes            VARCHAR[]
);

CREATE TABLE advisory_severities (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    advisory_id     VARCHAR NOT NULL,
    type            VARCHAR NOT NULL,
    score           VARCHAR NOT NULL,
    base_score      DOUBLE,
    source          VARCHAR
);

CREATE TABLE affected_packages (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    advisory_id     VARCHAR NOT NULL,
    ecosystem       VARCHAR,
    name            VARCHAR NOT NULL,
    purl            VARCHAR,
    range_type      VARCHAR,
    introduced      VARCHAR,
    fixed           VARCHAR,
    last_affected   VARCHAR,
    "limit"         VARCHAR,
    versions        VARCHAR[],
    status          VARCHAR NOT NULL,
    product_id      VARCHAR
);

CREATE TABLE vex_statements (
    tenant           VARCHAR NOT NULL,
    document_sha256  VARCHAR NOT NULL,
    vex_format       VARCHAR NOT NULL,
    vulnerability_id VARCHAR NOT NULL,
    aliases          VARCHAR[],
    product          VARCHAR NOT NULL,
    product_purl     VARCHAR,
    subcomponents    VARCHAR[],
    status           VARCHAR NOT NULL,
    justification    VARCHAR,
    impact_statement VARCHAR,
    action_statement VARCHAR,
    statement_time   TIMESTAMP
);

CREATE TABLE sbom_documents (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    sbom_format     VARCHAR NOT NULL,
    spec_version    VARCHAR NOT NULL,
    serial_number   VARCHAR,
    subject_name    VARCHAR,
    subject_version VARCHAR,
    subject_purl    VARCHAR,
    created         TIMESTAMP,
    component_count INTEGER NOT NULL
);

CREATE TABLE sbom_components (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    ref             VARCHAR,
    name            VARCHAR NOT NULL,
    version         VARCHAR,
    purl            VARCHAR,
    type            VARCHAR,
    cpe             VARCHAR,
    sha1            VARCHAR,
    sha256          VARCHAR,
    licenses        VARCHAR[],
    supplier        VARCHAR
);

CREATE TABLE attestations (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    entry_index     INTEGER NOT NULL,
    envelope_kind   VARCHAR NOT NULL,
    media_type      VARCHAR,
    payload_type    VARCHAR,
    statement_type  VARCHAR,
    predicate_type  VARCHAR,
    signature_count INTEGER NOT NULL,
    keyids          VARCHAR[],
    verification    VARCHAR NOT NULL   -- 'unverified' until a verifier has checked it
);

CREATE TABLE attestation_subjects (
    tenant           VARCHAR NOT NULL,
    document_sha256  VARCHAR NOT NULL,
    entry_index      INTEGER NOT NULL,
    name             VARCHAR NOT NULL,
    digest_algorithm VARCHAR NOT NULL,
    digest           VARCHAR NOT NULL
);

CREATE TABLE kev_catalogs (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    catalog_version VARCHAR,
    date_released   TIMESTAMP,
    entry_count     INTEGER NOT NULL
);

CREATE TABLE kev_entries (
    tenant                        VARCHAR NOT NULL,
    document_sha256               VARCHAR NOT NULL,
    cve_id                        VARCHAR NOT NULL,
    vendor_project                VARCHAR NOT NULL,
    product                       VARCHAR NOT NULL,
    vulnerability_name            VARCHAR NOT NULL,
    date_added                    DATE NOT NULL,
    short_description             VARCHAR NOT NULL,
    required_action               VARCHAR NOT NULL,
    due_date                      DATE,
    known_ransomware_campaign_use VARCHAR,
    notes                         VARCHAR,
    cwes                          VARCHAR[]
);

CREATE TABLE epss_snapshots (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    model_version   VARCHAR,
    score_date      TIMESTAMP,
    row_count       INTEGER NOT NULL
);

CREATE TABLE epss_scores (
    tenant          VARCHAR NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    cve_id          VARCHAR NOT NULL,
    epss            DOUBLE NOT NULL,
    percentile      DOUBLE NOT NULL
);

CREATE TABLE policy_snapshots (
    tenant                     VARCHAR NOT NULL,
    document_sha256            VARCHAR NOT NULL,
    policy_id                  VARCHAR NOT NULL,
    policy_version             VARCHAR NOT NULL,
    inputs_hash                VARCHAR NOT NULL,
    decision_trace_fingerprint VARCHAR NOT NULL,
    evaluated_at               TIMESTAMP NOT NULL,
    findings_count             INTEGER NOT NULL
);

CREATE TABLE findings (
    tenant           VARCHAR NOT NULL,
    document_sha256  VARCHAR NOT NULL,
    policy_id        VARCHAR NOT NULL,
    policy_version   VARCHAR NOT NULL,
    finding_id       VARCHAR NOT NULL,
    vulnerability_id VARCHAR NOT NULL,
    subject          VARCHAR NOT NULL,
    purl             VARCHAR,
    severity         VARCHAR,
    decision         VARCHAR NOT NULL,
    reason           VARCHAR
);

-- One row per `stella import` invocation and tenant: the audit trail of what arrived.
CREATE TABLE import_log (
    tenant      VARCHAR   NOT NULL,
    import_id   VARCHAR   NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    imported    INTEGER   NOT NULL,
    duplicates  INTEGER   NOT NULL,
    rejected    INTEGER   NOT NULL,
    paths       VARCHAR[] NOT NULL
);

-- Export tables (seed design names). Filled by the export engine.
CREATE TABLE export_profiles (
    tenant      VARCHAR   NOT NULL,
    profile_id  VARCHAR   NOT NULL,
    revision    INTEGER   NOT NULL,
    kind        VARCHAR   NOT NULL,
    variant     VARCHAR   NOT NULL,
    config      JSON      NOT NULL,
    builtin     BOOLEAN   NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant, profile_id, revision)
);

CREATE TABLE export_runs (
    tenant           VARCHAR   NOT NULL,
    run_id           VARCHAR   NOT NULL PRIMARY KEY,
    profile_id       VARCHAR   NOT NULL,
    profile_revision INTEGER   NOT NULL,
    state            VARCHAR   NOT NULL,
    parameters       JSON      NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    correlation_id   VARCHAR   NOT NULL,
    error_code       VARCHAR,
    error_message    VARCHAR,
    artifact_path    VARCHAR,
    artifact_sha256  VARCHAR,
    artifact_size    BIGINT
);

CREATE TABLE export_inputs (
    tenant          VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    ordinal         INTEGER NOT NULL,
    document_sha256 VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    subject         VARCHAR NOT NULL,
    document_id     VARCHAR NOT NULL
);

CREATE TABLE export_distributions (
    tenant          VARCHAR   NOT NULL,
    run_id          VARCHAR   NOT NULL,
    distribution_id VARCHAR   NOT NULL,
    type            VARCHAR   NOT NULL,
    target          VARCHAR   NOT NULL,
    sha256          VARCHAR,
    size            BIGINT,
    state           VARCHAR   NOT NULL,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE export_events (
    tenant         VARCHAR   NOT NULL,
    run_id         VARCHAR   NOT NULL,
    seq            INTEGER   NOT NULL,
    event_time     TIMESTAMP NOT NULL,
    event_type     VARCHAR   NOT NULL,
    from_state     VARCHAR,
    to_state       VARCHAR,
    correlation_id VARCHAR   NOT NULL,
    actor          VARCHAR,
    detail         JSON
);

-- The latest revision of each advisory wins in exports; every revision stays.
-- Ties on `modified` are broken by document digest so the choice never depends on import order.
CREATE VIEW advisories_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT a.*, row_number() OVER (
        PARTITION BY tenant, advisory_id
        ORDER BY modified DESC NULLS LAST, document_sha256 DESC
    ) AS rn
    FROM advisories a
) WHERE rn = 1;
