-- Encrypted secrets (LocalSecretStore), the cluster registry, and the cluster an audit entry concerns.
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,          -- aesgcm1:<base64 nonce|tag|ciphertext>
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE clusters (
    name                TEXT PRIMARY KEY,
    context             TEXT NULL,
    allowed_namespaces  TEXT NOT NULL,  -- JSON array
    server              TEXT NOT NULL,  -- API server URL, for display; the kubeconfig itself is in secrets
    created_at          TIMESTAMPTZ NOT NULL,
    created_by          TEXT NOT NULL
);

-- Operations on a cluster are audited with its name; the newest one is the cluster's latest execution.
ALTER TABLE audit_log ADD COLUMN cluster TEXT NULL;
CREATE INDEX ix_audit_log_cluster ON audit_log (cluster, id) WHERE cluster IS NOT NULL;
