-- 0006: the timeline. Every event is CloudEvents-shaped (id, source, type, time, subject, data, specversion 1.0),
-- recorded once per (tenant, event_id) however often a producer retries, and ordered by a per-tenant sequence that
-- the one writer assigns (1, 2, 3, ... with no gaps). The payload lives in timeline_event_details so listing reads
-- only the narrow rows; timeline_event_digests links an event to evidence bundle digests and attestation subjects.
-- Rows are never updated or deleted.

CREATE TABLE timeline_events (
    tenant        VARCHAR   NOT NULL,
    seq           BIGINT    NOT NULL,   -- per-tenant order, from 1
    event_id      VARCHAR   NOT NULL,   -- CloudEvents id; the dedupe key with tenant
    source        VARCHAR   NOT NULL,   -- CloudEvents source (a URI reference naming tenant and producer)
    type          VARCHAR   NOT NULL,   -- CloudEvents type, e.g. dev.stella.export.built
    subject       VARCHAR   NOT NULL,   -- what the event is about, e.g. run:<id>, evidence:<id>
    event_time    TIMESTAMP NOT NULL,   -- when it happened (UTC)
    recorded_at   TIMESTAMP NOT NULL,   -- when the store recorded it (UTC)
    run_id        VARCHAR,              -- the export run it belongs to, if any
    trace_id      VARCHAR,              -- a correlation or trace id shared by related events
    case_id       VARCHAR,              -- a legal-hold or incident case, if any
    content_sha256 VARCHAR  NOT NULL,   -- sha256 of the canonical (source, type, subject, data, links): tells a retry
                                        -- from a different event that reuses an id
    PRIMARY KEY (tenant, event_id),
    UNIQUE (tenant, seq)
);

CREATE TABLE timeline_event_details (
    tenant           VARCHAR NOT NULL,
    event_id         VARCHAR NOT NULL,
    datacontenttype  VARCHAR NOT NULL,
    data             JSON    NOT NULL,
    PRIMARY KEY (tenant, event_id)
);

CREATE TABLE timeline_event_digests (
    tenant    VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    kind      VARCHAR NOT NULL,   -- evidence | attestation
    digest    VARCHAR NOT NULL,   -- sha256:<hex>
    name      VARCHAR NOT NULL,   -- an attestation subject's name; '' for an evidence bundle
    PRIMARY KEY (tenant, event_id, kind, digest, name)
);
