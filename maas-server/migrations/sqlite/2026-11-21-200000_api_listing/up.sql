-- Listing columns and child tables (SQLite). Paired with
-- ../../postgres/2026-11-21-190000_api_listing.
-- The full machine model stays in `data` (actions read and write it whole);
-- what the list endpoints filter on becomes columns and child rows, so
-- `GET machines/?zone=…&tags=…&mac_address=…` is answered by SQL and only
-- the matching rows are decoded. Existing rows are converted from `data`.
ALTER TABLE machines ADD COLUMN zone TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN pool TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN domain TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN architecture TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN arch TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN cpu_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE machines ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0;
ALTER TABLE machines ADD COLUMN power_state TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE machines ADD COLUMN agent_name TEXT NOT NULL DEFAULT '';
UPDATE machines SET
    zone = COALESCE(json_extract(data, '$.machine.zone'), ''),
    pool = COALESCE(json_extract(data, '$.machine.pool'), ''),
    domain = COALESCE(json_extract(data, '$.machine.domain'), ''),
    architecture = COALESCE(json_extract(data, '$.machine.architecture'), ''),
    arch = CASE
        WHEN instr(COALESCE(json_extract(data, '$.machine.architecture'), ''), '/') > 0
        THEN substr(json_extract(data, '$.machine.architecture'), 1,
                    instr(json_extract(data, '$.machine.architecture'), '/') - 1)
        ELSE COALESCE(json_extract(data, '$.machine.architecture'), '') END,
    cpu_count = COALESCE(json_extract(data, '$.machine.cpu_count'), 0),
    memory_mib = COALESCE(json_extract(data, '$.machine.memory_mib'), 0),
    power_state = COALESCE(json_extract(data, '$.machine.power_state'), 'unknown'),
    agent_name = COALESCE(json_extract(data, '$.machine.agent_name'), '');
CREATE INDEX machines_zone ON machines(zone);
CREATE INDEX machines_pool ON machines(pool);
CREATE INDEX machines_owner ON machines(owner);
CREATE TABLE machine_tags (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
CREATE INDEX machine_tags_name ON machine_tags(name);
INSERT OR IGNORE INTO machine_tags (machine_id, name)
    SELECT m.id, t.value FROM machines m, json_each(m.data, '$.machine.tags') t;
CREATE TABLE machine_interfaces (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
CREATE INDEX machine_interfaces_mac ON machine_interfaces(mac);
INSERT OR IGNORE INTO machine_interfaces (machine_id, name, mac)
    SELECT m.id, json_extract(i.value, '$.name'), json_extract(i.value, '$.mac')
    FROM machines m, json_each(m.data, '$.machine.interfaces') i;
CREATE TABLE machine_blockdevices (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
INSERT OR IGNORE INTO machine_blockdevices (machine_id, name, kind, size)
    SELECT m.id, json_extract(d.value, '$.name'),
           COALESCE(json_extract(d.value, '$.kind'), 'physical'),
           COALESCE(json_extract(d.value, '$.size'), 0)
    FROM machines m, json_each(m.data, '$.machine.block_devices') d;
