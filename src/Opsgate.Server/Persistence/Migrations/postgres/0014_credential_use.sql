-- Who may use a credential (name it in a job or a project): a principal with at least use_min_role, OR an API key
-- named in use_keys, OR an OIDC principal with a group in use_groups (both JSON arrays of strings); admins always may.
-- Credentials stored before these rules existed keep what anyone could then: operators and up.
ALTER TABLE credentials ADD COLUMN use_min_role TEXT NOT NULL DEFAULT 'operator';
ALTER TABLE credentials ADD COLUMN use_keys TEXT NOT NULL DEFAULT '[]';
ALTER TABLE credentials ADD COLUMN use_groups TEXT NOT NULL DEFAULT '[]';
