-- Opsgate schema, SQLite dialect. Timestamps are UTC text; booleans are 0/1.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    namespaces  TEXT NULL,              -- JSON array; NULL = no namespace allowlist
    key_hash    TEXT NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is never stored
    key_prefix  TEXT NOT NULL,          -- first characters, to recognise a key in listings
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TEXT NULL,
    revoked_at  TEXT NULL
);

-- Append-only. Each row's hash covers its fields and the previous row's hash (see AuditChain).
-- request_body stays TEXT (not JSON-normalised) so the hashed bytes are exactly what is stored.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
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
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX ix_audit_log_ts ON audit_log (ts);
CREATE INDEX ix_audit_log_actor ON audit_log (actor, id);
CREATE INDEX ix_audit_log_job ON audit_log (job_id) WHERE job_id IS NOT NULL;
