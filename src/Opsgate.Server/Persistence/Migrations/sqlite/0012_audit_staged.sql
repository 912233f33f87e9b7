-- The schema stays one for both dialects, but this table stays empty on SQLite: its writes take turns anyway, so job
-- transitions chain their audit entries in their own transaction (see AuditWriter). On PostgreSQL they are staged here.
CREATE TABLE audit_staged (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             TEXT NOT NULL,
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
    dry_run        INTEGER NOT NULL DEFAULT 0,
    job_id         TEXT NULL,
    cluster        TEXT NULL
);
