-- The console's jobs list (issue 18) pages newest first (id DESC, ids are time-ordered) with filters on status, type,
-- actor and the job's targets. Each (column, id) index lets a filtered page start at its cursor and read only the rows
-- it shows, instead of walking the primary key past every job that does not match.
CREATE INDEX ix_jobs_status_id ON jobs (status, id);
CREATE INDEX ix_jobs_type_id ON jobs (type, id);
CREATE INDEX ix_jobs_actor_id ON jobs (actor, id) WHERE actor IS NOT NULL;
CREATE INDEX ix_job_targets_namespace ON job_targets (namespace, cluster, job_id);
CREATE INDEX ix_job_targets_cluster ON job_targets (cluster, job_id);
