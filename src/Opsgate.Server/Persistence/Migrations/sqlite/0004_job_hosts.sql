-- Per-host results of Ansible runs: the PLAY RECAP figures of each host, and what failed with ansible's messages.
CREATE TABLE job_hosts (
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_order   INTEGER NOT NULL,                  -- the ansible.run step
    host         TEXT NOT NULL,                     -- inventory_hostname
    ok           INTEGER NOT NULL,
    changed      INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    skipped      INTEGER NOT NULL,
    unreachable  INTEGER NOT NULL,
    rescued      INTEGER NOT NULL,
    ignored      INTEGER NOT NULL,
    failures     TEXT NULL,                         -- JSON array of {kind, task, message, item?, rc?}
    complete     INTEGER NOT NULL,                  -- 1: ansible's own stats; 0: counted from events of a run that was stopped
    PRIMARY KEY (job_id, step_order, host)
);
