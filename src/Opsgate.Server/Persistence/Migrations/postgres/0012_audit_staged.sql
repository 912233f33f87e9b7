-- Audit entries of job engine transitions, written in the transition's own transaction and chained into audit_log
-- shortly after by AuditWriter (see there): chaining inside every such transaction held the chain's advisory lock
-- until its commit, and all of them queued on it. The columns are audit_log's, without the chain (id, hashes).
CREATE TABLE audit_staged (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts             TIMESTAMPTZ NOT NULL,
    actor          TEXT NULL,
    source_ip      TEXT NULL,
    action         TEXT NOT NULL,
    resource_kind  TEXT NULL,
    namespace      TEXT NULL,
    resource_name  TEXT NULL,
    request_body   TEXT NULL,
    status         TEXT NOT NULL,
    http_status    INTEGER NULL,
    error_message  TEXT NULL,
    principal_id   TEXT NULL,
    auth_method    TEXT NULL,
    request_id     TEXT NULL,
    dry_run        BOOLEAN NOT NULL DEFAULT FALSE,
    job_id         TEXT NULL,
    cluster        TEXT NULL
);
