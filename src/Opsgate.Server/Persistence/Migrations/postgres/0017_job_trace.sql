-- The W3C traceparent of the span that queued a job (the submit request, or the parent job's step for a shard):
-- the worker that runs the job, on any replica and after any restart, starts the job's span under it.
ALTER TABLE jobs ADD COLUMN trace_parent TEXT NULL;
