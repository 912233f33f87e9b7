-- Every claim also looks for running jobs whose lease expired (their worker died). With only (status, ...) indexes
-- that search visited every running job, and on PostgreSQL every index entry left behind by jobs that ran before
-- (3.5 ms in a busy queue, more than the rest of the claim). Ordered by expiry, it stops at the first live lease.
CREATE INDEX ix_jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'running';
