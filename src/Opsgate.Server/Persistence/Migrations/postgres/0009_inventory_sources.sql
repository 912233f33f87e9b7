-- Inventories sourced from a project: a version made by running a script or reading plugin configs in a project's
-- checkout records where it came from. hosts and inventory then hold the YAML generated from ansible's expansion.
ALTER TABLE inventory_versions ADD COLUMN source_project_id TEXT NULL;  -- no reference: the version outlives a deleted project
ALTER TABLE inventory_versions ADD COLUMN source_project TEXT NULL;     -- the project's name then, for the record
ALTER TABLE inventory_versions ADD COLUMN source_path TEXT NULL;        -- file or directory in the checkout
ALTER TABLE inventory_versions ADD COLUMN source_commit TEXT NULL;      -- the commit the checkout was of
