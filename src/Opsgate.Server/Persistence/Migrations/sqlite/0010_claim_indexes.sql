-- The claim looks for the oldest pending (or lease-expired) job of one kind, top-level or child (shard), in
-- (created_at, id) order. With only ix_jobs_status_created, a claim for child jobs read every queued top-level job
-- to find none (0.8 ms with 7,000 queued, on every wake-up); these indexes hold each kind apart, in claim order.
CREATE INDEX ix_jobs_claim_top ON jobs (status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX ix_jobs_claim_child ON jobs (status, created_at, id) WHERE parent_id IS NOT NULL;
