-- API remainder (postgres). Paired with ../../sqlite/2026-11-22-215954_api.
-- `listing`: the machine's list JSON rendered when the row is written, with
-- the nested domain, zone and pool left as slots (they are shared objects
-- that change on their own), so `GET machines/` copies text instead of
-- decoding and re-rendering every machine's model. NULL (rows written before
-- this migration) means "render from `data`".
ALTER TABLE machines ADD COLUMN listing TEXT;

-- The named resources the API and allocation query (zones, pools, domains,
-- tags, SSH keys, fabrics, VLANs, subnets, IP ranges) move out of the
-- `objects` document store into a table each, keeping their ids (other rows
-- and machine models refer to them). A key a document did not have becomes
-- NULL, which reads back as "not set". Boot sources, selections and
-- resources, scripts and results stay in `objects`.
CREATE TABLE zones (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT
);
CREATE INDEX zones_name ON zones(name);
INSERT INTO zones (id, name, description)
    SELECT id, name, (data::jsonb)->>'description'
    FROM objects WHERE kind = 'zone' ORDER BY id;
SELECT setval(pg_get_serial_sequence('zones', 'id'), COALESCE((SELECT MAX(id) FROM zones), 0) + 1, false);
DELETE FROM objects WHERE kind = 'zone';
CREATE TABLE resource_pools (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT
);
CREATE INDEX resource_pools_name ON resource_pools(name);
INSERT INTO resource_pools (id, name, description)
    SELECT id, name, (data::jsonb)->>'description'
    FROM objects WHERE kind = 'pool' ORDER BY id;
SELECT setval(pg_get_serial_sequence('resource_pools', 'id'), COALESCE((SELECT MAX(id) FROM resource_pools), 0) + 1, false);
DELETE FROM objects WHERE kind = 'pool';
CREATE TABLE domains (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    authoritative BOOLEAN,
    ttl BIGINT,
    is_default BOOLEAN
);
CREATE INDEX domains_name ON domains(name);
INSERT INTO domains (id, name, authoritative, ttl, is_default)
    SELECT id, name, ((data::jsonb)->>'authoritative')::boolean, ((data::jsonb)->>'ttl')::bigint, ((data::jsonb)->>'is_default')::boolean
    FROM objects WHERE kind = 'domain' ORDER BY id;
SELECT setval(pg_get_serial_sequence('domains', 'id'), COALESCE((SELECT MAX(id) FROM domains), 0) + 1, false);
DELETE FROM objects WHERE kind = 'domain';
CREATE TABLE tags (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    comment TEXT,
    definition TEXT,
    kernel_opts TEXT
);
CREATE INDEX tags_name ON tags(name);
INSERT INTO tags (id, name, description, comment, definition, kernel_opts)
    SELECT id, name, (data::jsonb)->>'description', (data::jsonb)->>'comment', (data::jsonb)->>'definition', (data::jsonb)->>'kernel_opts'
    FROM objects WHERE kind = 'tag' ORDER BY id;
SELECT setval(pg_get_serial_sequence('tags', 'id'), COALESCE((SELECT MAX(id) FROM tags), 0) + 1, false);
DELETE FROM objects WHERE kind = 'tag';
CREATE TABLE sshkeys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    public_key TEXT,
    keysource TEXT
);
CREATE INDEX sshkeys_name ON sshkeys(name);
INSERT INTO sshkeys (id, name, public_key, keysource)
    SELECT id, name, (data::jsonb)->>'key', (data::jsonb)->>'keysource'
    FROM objects WHERE kind = 'sshkey' ORDER BY id;
SELECT setval(pg_get_serial_sequence('sshkeys', 'id'), COALESCE((SELECT MAX(id) FROM sshkeys), 0) + 1, false);
DELETE FROM objects WHERE kind = 'sshkey';
CREATE TABLE fabrics (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    class_type TEXT,
    description TEXT
);
CREATE INDEX fabrics_name ON fabrics(name);
INSERT INTO fabrics (id, name, class_type, description)
    SELECT id, name, (data::jsonb)->>'class_type', (data::jsonb)->>'description'
    FROM objects WHERE kind = 'fabric' ORDER BY id;
SELECT setval(pg_get_serial_sequence('fabrics', 'id'), COALESCE((SELECT MAX(id) FROM fabrics), 0) + 1, false);
DELETE FROM objects WHERE kind = 'fabric';
CREATE TABLE vlans (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    fabric_id BIGINT,
    vid BIGINT,
    mtu BIGINT,
    dhcp_on BOOLEAN,
    fabric TEXT,
    space TEXT,
    description TEXT
);
CREATE INDEX vlans_name ON vlans(name);
INSERT INTO vlans (id, name, fabric_id, vid, mtu, dhcp_on, fabric, space, description)
    SELECT id, name, ((data::jsonb)->>'fabric_id')::bigint, ((data::jsonb)->>'vid')::bigint, ((data::jsonb)->>'mtu')::bigint, ((data::jsonb)->>'dhcp_on')::boolean, (data::jsonb)->>'fabric', (data::jsonb)->>'space', (data::jsonb)->>'description'
    FROM objects WHERE kind = 'vlan' ORDER BY id;
SELECT setval(pg_get_serial_sequence('vlans', 'id'), COALESCE((SELECT MAX(id) FROM vlans), 0) + 1, false);
DELETE FROM objects WHERE kind = 'vlan';
CREATE TABLE subnets (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    cidr TEXT,
    vlan_id BIGINT,
    gateway_ip TEXT,
    dns_servers TEXT,
    rdns_mode BIGINT,
    allow_dns BOOLEAN,
    allow_proxy BOOLEAN,
    active_discovery BOOLEAN,
    managed BOOLEAN,
    description TEXT,
    space TEXT
);
CREATE INDEX subnets_name ON subnets(name);
INSERT INTO subnets (id, name, cidr, vlan_id, gateway_ip, dns_servers, rdns_mode, allow_dns, allow_proxy, active_discovery, managed, description, space)
    SELECT id, name, (data::jsonb)->>'cidr', ((data::jsonb)->>'vlan_id')::bigint, (data::jsonb)->>'gateway_ip', ((data::jsonb)->'dns_servers')::text, ((data::jsonb)->>'rdns_mode')::bigint, ((data::jsonb)->>'allow_dns')::boolean, ((data::jsonb)->>'allow_proxy')::boolean, ((data::jsonb)->>'active_discovery')::boolean, ((data::jsonb)->>'managed')::boolean, (data::jsonb)->>'description', (data::jsonb)->>'space'
    FROM objects WHERE kind = 'subnet' ORDER BY id;
SELECT setval(pg_get_serial_sequence('subnets', 'id'), COALESCE((SELECT MAX(id) FROM subnets), 0) + 1, false);
DELETE FROM objects WHERE kind = 'subnet';
CREATE TABLE ipranges (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    subnet_id BIGINT,
    range_type TEXT,
    start_ip TEXT,
    end_ip TEXT,
    comment TEXT,
    username TEXT
);
CREATE INDEX ipranges_name ON ipranges(name);
INSERT INTO ipranges (id, name, subnet_id, range_type, start_ip, end_ip, comment, username)
    SELECT id, name, ((data::jsonb)->>'subnet_id')::bigint, (data::jsonb)->>'type', (data::jsonb)->>'start_ip', (data::jsonb)->>'end_ip', (data::jsonb)->>'comment', (data::jsonb)->>'user'
    FROM objects WHERE kind = 'iprange' ORDER BY id;
SELECT setval(pg_get_serial_sequence('ipranges', 'id'), COALESCE((SELECT MAX(id) FROM ipranges), 0) + 1, false);
DELETE FROM objects WHERE kind = 'iprange';
