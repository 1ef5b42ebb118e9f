-- 0008: scheduled runs and retention (`stella schedule ...`, `stella retention ...`, docs/operations-schedules.md).
-- Every row carries tenant; every query filters by it. Times are UTC (TIMESTAMP without zone).

-- A schedule fires an export (profile, key, selectors) or a retention prune, on a calendar (`calendar`, in the
-- grammar of core/schedule.py) or after new documents of some kinds were imported (`import_kinds`).
CREATE TABLE schedules (
    tenant       VARCHAR   NOT NULL,
    name         VARCHAR   NOT NULL,
    action       VARCHAR   NOT NULL,   -- export | retention
    trigger      VARCHAR   NOT NULL,   -- calendar | import
    calendar     VARCHAR,              -- canonical calendar text, when trigger = calendar
    import_kinds VARCHAR[],            -- document kinds whose import fires it, when trigger = import
    profile_id   VARCHAR,              -- export: the profile (its latest revision when it fires)
    key_name     VARCHAR,              -- export: the signing key
    selectors    VARCHAR[] NOT NULL,   -- export: KEY=VALUE selectors, as given
    providers    VARCHAR[] NOT NULL,   -- export of a risk bundle: its --provider values, as given
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR   NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- One row per slot a schedule fired for. run_key = sha256(tenant, profile, revision, schedule, slot) is the
-- idempotency key: a second firing of the same slot (a timer re-fire, a concurrent `run-due`) finds it taken.
CREATE TABLE schedule_firings (
    run_key       VARCHAR   NOT NULL PRIMARY KEY,
    tenant        VARCHAR   NOT NULL,
    schedule_name VARCHAR   NOT NULL,
    slot          TIMESTAMP NOT NULL,   -- the calendar instant, or the newest import that fired it
    fired_at      TIMESTAMP NOT NULL,
    outcome       VARCHAR   NOT NULL,   -- running | succeeded | failed
    attempts      INTEGER   NOT NULL,
    run_id        VARCHAR,              -- the last run it started (export schedules)
    failure_class VARCHAR,
    error_code    VARCHAR,
    error_message VARCHAR,
    detail        JSON                  -- retention schedules: what the prune removed
);

-- Every export run a firing started (a transient failure retried is a second run of the same firing).
CREATE TABLE schedule_runs (
    tenant  VARCHAR NOT NULL,
    run_id  VARCHAR NOT NULL PRIMARY KEY,
    run_key VARCHAR NOT NULL,
    attempt INTEGER NOT NULL
);

-- How long a profile's bundles and distribution records are kept. Runs and distributions without a policy never
-- expire; expires_at is stamped once, from the policy in force when the bundle or distribution was first seen.
CREATE TABLE retention_policies (
    tenant            VARCHAR   NOT NULL,
    profile_id        VARCHAR   NOT NULL,
    retention_seconds BIGINT    NOT NULL,
    updated_by        VARCHAR   NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant, profile_id)
);

ALTER TABLE export_runs ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE export_distributions ADD COLUMN expires_at TIMESTAMP;
