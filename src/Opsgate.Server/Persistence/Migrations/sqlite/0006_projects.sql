-- Credentials (the secret itself is in the secret store, as credential/<name>/secret), playbook projects from git,
-- and the commit each ansible.run step of a job pinned, so a retry or a resume runs the very same commit.
CREATE TABLE credentials (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,          -- ssh_key | token | password
    username    TEXT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,       -- ULID, lower case
    name        TEXT NOT NULL UNIQUE,
    git_repo    TEXT NOT NULL,
    ref         TEXT NULL,              -- branch, tag or commit; null: the remote's HEAD
    credential  TEXT NULL REFERENCES credentials (name),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    last_commit TEXT NULL,              -- what ref resolved to at the last fetch
    synced_at   TEXT NULL
);

CREATE TABLE project_pins (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_order  INTEGER NOT NULL,
    project_id  TEXT NOT NULL,          -- no reference: the pin outlives a deleted project, for the record
    commit_sha  TEXT NOT NULL,
    pinned_at   TEXT NOT NULL,
    PRIMARY KEY (job_id, step_order)
);
