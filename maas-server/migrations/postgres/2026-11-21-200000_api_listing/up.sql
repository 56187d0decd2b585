-- Listing columns and child tables (PostgreSQL). Paired with
-- ../../sqlite/2026-11-21-190000_api_listing; see there for why.
ALTER TABLE machines
    ADD COLUMN zone TEXT NOT NULL DEFAULT '',
    ADD COLUMN pool TEXT NOT NULL DEFAULT '',
    ADD COLUMN domain TEXT NOT NULL DEFAULT '',
    ADD COLUMN architecture TEXT NOT NULL DEFAULT '',
    ADD COLUMN arch TEXT NOT NULL DEFAULT '',
    ADD COLUMN cpu_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN power_state TEXT NOT NULL DEFAULT 'unknown',
    ADD COLUMN agent_name TEXT NOT NULL DEFAULT '';
UPDATE machines SET
    zone = COALESCE(data::jsonb #>> '{machine,zone}', ''),
    pool = COALESCE(data::jsonb #>> '{machine,pool}', ''),
    domain = COALESCE(data::jsonb #>> '{machine,domain}', ''),
    architecture = COALESCE(data::jsonb #>> '{machine,architecture}', ''),
    arch = split_part(COALESCE(data::jsonb #>> '{machine,architecture}', ''), '/', 1),
    cpu_count = COALESCE((data::jsonb #>> '{machine,cpu_count}')::BIGINT, 0),
    memory_mib = COALESCE((data::jsonb #>> '{machine,memory_mib}')::BIGINT, 0),
    power_state = COALESCE(data::jsonb #>> '{machine,power_state}', 'unknown'),
    agent_name = COALESCE(data::jsonb #>> '{machine,agent_name}', '');
CREATE INDEX machines_zone ON machines(zone);
CREATE INDEX machines_pool ON machines(pool);
CREATE INDEX machines_owner ON machines(owner);
CREATE TABLE machine_tags (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
CREATE INDEX machine_tags_name ON machine_tags(name);
INSERT INTO machine_tags (machine_id, name)
    SELECT DISTINCT m.id, t.value
    FROM machines m,
         jsonb_array_elements_text(COALESCE(m.data::jsonb #> '{machine,tags}', '[]'::jsonb)) AS t(value);
CREATE TABLE machine_interfaces (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
CREATE INDEX machine_interfaces_mac ON machine_interfaces(mac);
INSERT INTO machine_interfaces (machine_id, name, mac)
    SELECT DISTINCT ON (m.id, i.value ->> 'name') m.id, i.value ->> 'name', i.value ->> 'mac'
    FROM machines m,
         jsonb_array_elements(COALESCE(m.data::jsonb #> '{machine,interfaces}', '[]'::jsonb)) AS i(value);
CREATE TABLE machine_blockdevices (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (machine_id, name)
);
INSERT INTO machine_blockdevices (machine_id, name, kind, size)
    SELECT DISTINCT ON (m.id, d.value ->> 'name') m.id, d.value ->> 'name',
           COALESCE(d.value ->> 'kind', 'physical'), COALESCE((d.value ->> 'size')::BIGINT, 0)
    FROM machines m,
         jsonb_array_elements(COALESCE(m.data::jsonb #> '{machine,block_devices}', '[]'::jsonb)) AS d(value);
