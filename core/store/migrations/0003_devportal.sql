-- 0003: developer-portal trees (`stella devportal import`, the devportal:offline profile).
-- Each file's bytes are a raw document (kind 'devportal'); this table says where each one sits in which portal.
-- A portal import is one tree revision: `tree_sha256` is the digest of the canonical tree listing, itself kept
-- as a raw document (format 'devportal-tree'), so a run that pinned a tree reproduces it whatever came after.
-- Rows are never updated: importing a changed tree adds a revision; the latest import of a portal is current.

CREATE TABLE devportal_assets (
    tenant      VARCHAR   NOT NULL,
    portal      VARCHAR   NOT NULL,
    tree_sha256 VARCHAR   NOT NULL,
    path        VARCHAR   NOT NULL,   -- relative POSIX path inside the portal tree
    sha256      VARCHAR   NOT NULL,   -- the raw document holding the bytes
    size        BIGINT    NOT NULL,
    media_type  VARCHAR   NOT NULL,
    role        VARCHAR   NOT NULL,   -- page | openapi | sdk | changelog | asset
    api_version VARCHAR,              -- openapi: the spec's `openapi` / `swagger` version
    imported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant, portal, tree_sha256, path)
);

-- One row per portal import that changed the portal (or re-instated an earlier tree): which tree is current.
CREATE TABLE devportal_imports (
    tenant      VARCHAR   NOT NULL,
    portal      VARCHAR   NOT NULL,
    tree_sha256 VARCHAR   NOT NULL,
    import_id   VARCHAR   NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    file_count  INTEGER   NOT NULL,
    total_size  BIGINT    NOT NULL
);
