-- A retry on failed hosts (POST /api/v1/jobs/{id}/retry with {"hosts": "failed"}) is a new job over the original's
-- failed and unreachable hosts: retry_of links it to the original, and the index lists the original's retries.
ALTER TABLE jobs ADD COLUMN retry_of TEXT NULL REFERENCES jobs (id) ON DELETE SET NULL;
CREATE INDEX ix_jobs_retry_of ON jobs (retry_of, created_at) WHERE retry_of IS NOT NULL;
