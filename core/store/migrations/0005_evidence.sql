-- 0005: the evidence locker (`stella evidence ...`, `stella incident ...`).
-- A sealed evidence bundle is a deterministic .tgz written under the home (evidence/bundles/<sha256 hex>.tgz), not a
-- BLOB here: the archive is read back by digest and checked against `digest` before anything is served from it, it
-- can be copied out by streaming, and deleting one frees its space at once (DuckDB keeps freed blocks in the file).
-- Every row carries tenant; every query filters by it. Times are UTC (TIMESTAMP without zone).

CREATE TABLE evidence_bundles (
    tenant            VARCHAR   NOT NULL,
    evidence_id       VARCHAR   NOT NULL,
    kind              VARCHAR   NOT NULL,   -- run | policy | job
    subject           VARCHAR   NOT NULL,   -- what was snapshotted: a run id, a policy snapshot digest, ...
    created_at        TIMESTAMP NOT NULL,
    created_by        VARCHAR   NOT NULL,
    root_hash         VARCHAR   NOT NULL,   -- hex RFC 9162 Merkle root over the artifacts, in leaf order
    tree_size         INTEGER   NOT NULL,
    digest            VARCHAR   NOT NULL,   -- sha256:<hex> of the sealed archive
    size              BIGINT    NOT NULL,
    key_id            VARCHAR   NOT NULL,   -- the signing key's id
    timestamped       BOOLEAN   NOT NULL,   -- carries an RFC 3161 token
    redaction_profile VARCHAR   NOT NULL,
    custody_head      VARCHAR   NOT NULL,   -- hash of the last custody event sealed into the bundle
    retention_until   TIMESTAMP NOT NULL,   -- lengthened, never shortened
    previous_id       VARCHAR,              -- a re-seal: the bundle it extends
    archive_path      VARCHAR   NOT NULL,   -- relative to the home
    PRIMARY KEY (tenant, evidence_id)
);

CREATE TABLE evidence_artifacts (
    tenant      VARCHAR NOT NULL,
    evidence_id VARCHAR NOT NULL,
    leaf_index  INTEGER NOT NULL,
    path        VARCHAR NOT NULL,   -- relative POSIX path under artifacts/ in the sealed archive
    sha256      VARCHAR NOT NULL,
    size        BIGINT  NOT NULL,
    media_type  VARCHAR NOT NULL,
    PRIMARY KEY (tenant, evidence_id, leaf_index)
);

-- A legal hold has no expiry: it blocks deletion and pruning until released. Rows are never deleted; a release
-- fills released_by/released_at, so the history of every hold stays.
CREATE TABLE evidence_holds (
    tenant         VARCHAR   NOT NULL,
    case_id        VARCHAR   NOT NULL,
    evidence_id    VARCHAR   NOT NULL,
    reason         VARCHAR   NOT NULL,
    placed_by      VARCHAR   NOT NULL,
    placed_at      TIMESTAMP NOT NULL,
    released_by    VARCHAR,
    released_at    TIMESTAMP,
    release_reason VARCHAR
);

-- The chain of custody: append-only (never updated or deleted), hash-chained per tenant. `hash` covers the RFC 8785
-- form of the event without it, `prev` is the previous event's hash (64 zeros for a tenant's first event).
CREATE TABLE evidence_custody_events (
    tenant         VARCHAR   NOT NULL,
    seq            INTEGER   NOT NULL,
    event_at       VARCHAR   NOT NULL,   -- RFC 3339 UTC, exactly as hashed
    actor          VARCHAR   NOT NULL,
    action         VARCHAR   NOT NULL,
    subject        VARCHAR   NOT NULL,
    subject_digest VARCHAR   NOT NULL,
    host           VARCHAR   NOT NULL,
    why            VARCHAR   NOT NULL,
    prev           VARCHAR   NOT NULL,
    hash           VARCHAR   NOT NULL,
    PRIMARY KEY (tenant, seq)
);

-- Per-tenant settings of the locker: a size quota (NULL: none) and the default retention of new bundles.
CREATE TABLE evidence_settings (
    tenant            VARCHAR   NOT NULL PRIMARY KEY,
    quota_bytes       BIGINT,
    retention_seconds BIGINT    NOT NULL,   -- 0: new evidence may be pruned at once
    updated_by        VARCHAR   NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

-- Incident mode: while an incident is open, new evidence is kept at least retention_seconds and every bundle's
-- retention is lengthened to it when the incident starts.
CREATE TABLE evidence_incidents (
    tenant            VARCHAR   NOT NULL,
    incident_id       VARCHAR   NOT NULL,
    reason            VARCHAR   NOT NULL,
    retention_seconds BIGINT    NOT NULL,
    started_by        VARCHAR   NOT NULL,
    started_at        TIMESTAMP NOT NULL,
    start_evidence_id VARCHAR,
    stopped_by        VARCHAR,
    stopped_at        TIMESTAMP,
    stop_reason       VARCHAR,
    stop_evidence_id  VARCHAR,
    PRIMARY KEY (tenant, incident_id)
);
