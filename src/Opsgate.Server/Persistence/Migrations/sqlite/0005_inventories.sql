-- Stored Ansible inventories. An inventory is a name; each POST of that name adds a version. A version keeps what
-- the user sent (hosts, vars), the YAML ansible reads (hosts with vars merged in) and ansible-inventory's expansion
-- (--list --export JSON), so runs and shards never expand it again. Ids are never reused: jobs refer to them.
CREATE TABLE inventories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE inventory_versions (
    inventory_id  INTEGER NOT NULL REFERENCES inventories (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,     -- 1, 2, 3... per inventory: the order versions were created in
    version       TEXT NOT NULL,        -- the label: given by the user, or seq
    env           TEXT NULL,
    hosts         TEXT NOT NULL,        -- as sent (YAML)
    vars          TEXT NULL,            -- as sent (YAML): group name -> variables
    inventory     TEXT NOT NULL,        -- the YAML ansible reads: hosts with vars merged in
    expanded      TEXT NOT NULL,        -- ansible-inventory --list --export, JSON
    host_count    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (inventory_id, seq),
    UNIQUE (inventory_id, version)
);
