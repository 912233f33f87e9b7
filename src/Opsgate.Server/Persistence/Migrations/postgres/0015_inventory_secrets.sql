-- Secret inventory variables (Secrets/SecretVariables.cs) are kept in the secret store, encrypted, and stored here
-- as [REDACTED]. secret_name names the secret holding a version's values (null: it had none). Versions written
-- before have secrets_sealed = 0: encryption cannot happen in SQL, so the server seals them at start-up
-- (InventorySealer), the secret first and then the row.
ALTER TABLE inventory_versions ADD COLUMN secret_name TEXT NULL;
ALTER TABLE inventory_versions ADD COLUMN secrets_sealed INTEGER NOT NULL DEFAULT 0;
-- Start-up finds the versions still to seal without reading the whole table.
CREATE INDEX inventory_versions_unsealed ON inventory_versions (inventory_id, seq) WHERE secrets_sealed = 0;
