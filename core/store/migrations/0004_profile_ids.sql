-- 0004: every built-in profile id is kind:variant. The risk bundle's built-in, seeded as 'risk-bundle', is
-- renamed 'risk:bundle' with all its revisions (a run pins a revision number, which stays the same). Runs keep the
-- profile id they recorded: it is in their bundles' manifests, and a retry rebuilds the same bytes.

UPDATE export_profiles SET profile_id = 'risk:bundle' WHERE profile_id = 'risk-bundle' AND builtin;
