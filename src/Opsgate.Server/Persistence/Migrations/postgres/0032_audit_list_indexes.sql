-- The console's audit page (issue 18) pages the log newest first (id DESC) filtered by action or namespace, as
-- GET /api/v1/audit does. A (column, id) index lets a filtered page start at its cursor and read only the entries it
-- shows; without one a rare action walks the primary key past every entry (actor and cluster have theirs already).
CREATE INDEX ix_audit_log_action_id ON audit_log (action, id);
CREATE INDEX ix_audit_log_namespace_id ON audit_log (namespace, id) WHERE namespace IS NOT NULL;
