-- Opsgate schema, PostgreSQL dialect: the same tables and columns as the SQLite one.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    namespaces  TEXT NULL,              -- JSON array; NULL = no namespace allowlist
    key_hash    TEXT NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is never stored
    key_prefix  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NULL,
    revoked_at  TIMESTAMPTZ NULL
);

-- Append-only. Each row's hash covers its fields and the previous row's hash (see AuditChain).
-- request_body is TEXT, not JSONB: JSONB would re-order keys and break the hash over the stored bytes.
CREATE TABLE audit_log (
    id             BIGINT PRIMARY KEY,
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
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX ix_audit_log_ts ON audit_log (ts);
CREATE INDEX ix_audit_log_actor ON audit_log (actor, id);
CREATE INDEX ix_audit_log_job ON audit_log (job_id) WHERE job_id IS NOT NULL;
