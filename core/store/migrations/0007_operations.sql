-- 0007: operations. failure_class records what kind of failure ended a failed run (core/failure.py: input, integrity,
-- signature, trust, policy, environment, transient, bug); runs that failed before this migration are classed from
-- their error code where the code says it. metric_events records outcomes that are not runs (a `stella verify`), so
-- the metrics textfile is rebuilt from the store, never from the previous textfile.

ALTER TABLE export_runs ADD COLUMN failure_class VARCHAR;

UPDATE export_runs SET failure_class = CASE
    WHEN error_code IN ('usage', 'bad-input', 'schema', 'unsupported-format', 'not-found') THEN 'input'
    WHEN error_code = 'integrity' THEN 'integrity'
    WHEN error_code = 'signature' THEN 'signature'
    WHEN error_code = 'trust-metadata' THEN 'trust'
    WHEN error_code = 'policy' THEN 'policy'
    WHEN error_code IN ('environment', 'store-version') THEN 'environment'
    WHEN error_code IN ('store-locked', 'interrupted') THEN 'transient'
    WHEN error_code = 'internal' THEN 'bug'
END
WHERE state = 'failed';

CREATE TABLE metric_events (
    tenant      VARCHAR   NOT NULL,   -- the tenant the verified bundle names; '' when it could not be read that far
    recorded_at TIMESTAMP NOT NULL,   -- when it happened (UTC)
    metric      VARCHAR   NOT NULL,   -- e.g. verify
    result      VARCHAR   NOT NULL    -- e.g. verified, signature, integrity
);
