-- Event retention: a job's events can be pruned apart from the job, its steps and its per-host results.
-- events_pruned_seq: the events up to this seq were deleted (the job's last_seq when they were); events_pruned_at: when.
ALTER TABLE jobs ADD COLUMN events_pruned_at TEXT NULL;
ALTER TABLE jobs ADD COLUMN events_pruned_seq BIGINT NULL;
-- The pruner's look-up: finished jobs whose events are still there, oldest first.
CREATE INDEX ix_jobs_events_unpruned ON jobs (finished_at) WHERE events_pruned_seq IS NULL AND finished_at IS NOT NULL;
