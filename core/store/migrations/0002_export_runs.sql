-- 0002: the export engine's additions to export_runs.
-- retry_of links a retried run to the run it repeats (same parameters, same inputs, same createdAt), so the
-- history of an export that needed several attempts reads as one chain.

ALTER TABLE export_runs ADD COLUMN retry_of VARCHAR;
