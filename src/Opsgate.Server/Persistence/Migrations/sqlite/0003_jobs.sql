-- Jobs (runbook runs), their steps, and their event streams.
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,           -- time-sortable, URL-safe (ULID, lower case)
    type                TEXT NOT NULL,              -- the runbook's name
    status              TEXT NOT NULL,              -- pending|waiting_approval|running|succeeded|failed|cancelled
    params              TEXT NOT NULL,              -- JSON, parameters after defaults
    dry_run             INTEGER NOT NULL DEFAULT 0,
    actor               TEXT NULL,
    principal_id        TEXT NULL,
    source_ip           TEXT NULL,
    created_at          TEXT NOT NULL,
    started_at          TEXT NULL,
    finished_at         TEXT NULL,
    attempt             INTEGER NOT NULL DEFAULT 0, -- how many times a worker has claimed it
    lease_owner         TEXT NULL,
    lease_expires_at    TEXT NULL,
    concurrency_key     TEXT NULL,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    cancel_requested_by TEXT NULL,
    deadline_at         TEXT NULL,                   -- job-level timeout, fixed when it first starts
    approval_expires_at TEXT NULL,
    decided_by          TEXT NULL,                  -- approver or rejecter
    decision_comment    TEXT NULL,
    error               TEXT NULL,
    last_seq            BIGINT NOT NULL DEFAULT 0   -- the newest event's seq; bumped under the row lock so seqs commit in order
);
CREATE INDEX ix_jobs_status_created ON jobs (status, created_at);
-- At most one running job per concurrency key: a second claim of the same key fails on this index.
CREATE UNIQUE INDEX ux_jobs_running_key ON jobs (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;

CREATE TABLE job_steps (
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_order   INTEGER NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,                     -- pending|running|succeeded|failed|skipped
    detail       TEXT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NULL,
    finished_at  TEXT NULL,
    output       TEXT NULL,                         -- JSON outputs for later steps
    PRIMARY KEY (job_id, step_order)
);

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    ts          TEXT NOT NULL,
    type        TEXT NOT NULL,
    step_order  INTEGER NULL,
    data        TEXT NULL,                          -- JSON
    PRIMARY KEY (job_id, seq)
);
