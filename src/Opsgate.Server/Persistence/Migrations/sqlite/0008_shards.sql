-- Child jobs: a sharded Ansible run (the parent) fans out into one child job per shard. Children run on their own
-- worker slots (Jobs:ChildWorkers), so a parent waiting for them never holds the slots they need.
ALTER TABLE jobs ADD COLUMN parent_id TEXT NULL REFERENCES jobs (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN shard_index INTEGER NULL;              -- 0-based shard of the parent's run
ALTER TABLE jobs ADD COLUMN shard_round INTEGER NULL;              -- which run of the parent step (a retried parent starts a new round)
ALTER TABLE jobs ADD COLUMN shard_hosts INTEGER NULL;              -- hosts in the shard
ALTER TABLE jobs ADD COLUMN relayed_seq BIGINT NOT NULL DEFAULT 0; -- the child's last event already relayed to the parent's stream
CREATE INDEX ix_jobs_parent ON jobs (parent_id, shard_round, shard_index) WHERE parent_id IS NOT NULL;
