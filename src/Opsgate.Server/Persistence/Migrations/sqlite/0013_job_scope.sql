-- Namespace scope of jobs (issue 15). A job's targets are the (cluster, namespace) pairs its steps act on: those known
-- at submit are stored with it, those a step learns at run time are added when the step's target is checked. A
-- principal with a namespace allowlist sees and touches a job only when every target lies in its allowlist.
CREATE TABLE job_targets (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    cluster    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    PRIMARY KEY (job_id, cluster, namespace)
);
-- Jobs from before this migration have no recorded targets: scoped stays false and only principals without an
-- allowlist see them.
ALTER TABLE jobs ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
-- JSON arrays of the submitter's and the approver's namespace allowlists when they acted (NULL: no allowlist);
-- targets learned at run time are checked against both.
ALTER TABLE jobs ADD COLUMN submitter_namespaces TEXT NULL;
ALTER TABLE jobs ADD COLUMN approver_namespaces TEXT NULL;
-- Secret parameter values (and secret-named extra vars) live in the secret store as job/<id>/params; params holds
-- [REDACTED] in their place. Jobs from before this migration are sealed by the server at start (JobSecrets).
ALTER TABLE jobs ADD COLUMN secrets_sealed INTEGER NOT NULL DEFAULT 0;
