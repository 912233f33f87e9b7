-- Encrypted secrets (LocalSecretStore) and the cluster registry.
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,          -- aesgcm1:<base64 nonce|tag|ciphertext>
    updated_at  TEXT NOT NULL
);

CREATE TABLE clusters (
    name                TEXT PRIMARY KEY,
    context             TEXT NULL,
    allowed_namespaces  TEXT NOT NULL,  -- JSON array
    server              TEXT NOT NULL,  -- API server URL, for display; the kubeconfig itself is in secrets
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL
);

-- The newest operation per cluster, shown as latest_execution in cluster status.
CREATE TABLE cluster_operations (
    cluster        TEXT PRIMARY KEY,
    action         TEXT NOT NULL,
    namespace      TEXT NULL,
    resource_name  TEXT NULL,
    status         TEXT NOT NULL,
    actor          TEXT NULL,
    dry_run        INTEGER NOT NULL DEFAULT 0,
    at             TEXT NOT NULL
);
