-- API remainder (sqlite). Paired with ../../postgres/2026-11-22-215954_api.
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
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT
);
CREATE INDEX zones_name ON zones(name);
INSERT INTO zones (id, name, description)
    SELECT id, name, json_extract(data, '$."description"')
    FROM objects WHERE kind = 'zone' ORDER BY id;
DELETE FROM objects WHERE kind = 'zone';
CREATE TABLE resource_pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT
);
CREATE INDEX resource_pools_name ON resource_pools(name);
INSERT INTO resource_pools (id, name, description)
    SELECT id, name, json_extract(data, '$."description"')
    FROM objects WHERE kind = 'pool' ORDER BY id;
DELETE FROM objects WHERE kind = 'pool';
CREATE TABLE domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    authoritative BOOLEAN,
    ttl BIGINT,
    is_default BOOLEAN
);
CREATE INDEX domains_name ON domains(name);
INSERT INTO domains (id, name, authoritative, ttl, is_default)
    SELECT id, name, json_extract(data, '$."authoritative"'), json_extract(data, '$."ttl"'), json_extract(data, '$."is_default"')
    FROM objects WHERE kind = 'domain' ORDER BY id;
DELETE FROM objects WHERE kind = 'domain';
CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    comment TEXT,
    definition TEXT,
    kernel_opts TEXT
);
CREATE INDEX tags_name ON tags(name);
INSERT INTO tags (id, name, description, comment, definition, kernel_opts)
    SELECT id, name, json_extract(data, '$."description"'), json_extract(data, '$."comment"'), json_extract(data, '$."definition"'), json_extract(data, '$."kernel_opts"')
    FROM objects WHERE kind = 'tag' ORDER BY id;
DELETE FROM objects WHERE kind = 'tag';
CREATE TABLE sshkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT,
    keysource TEXT
);
CREATE INDEX sshkeys_name ON sshkeys(name);
INSERT INTO sshkeys (id, name, public_key, keysource)
    SELECT id, name, json_extract(data, '$."key"'), json_extract(data, '$."keysource"')
    FROM objects WHERE kind = 'sshkey' ORDER BY id;
DELETE FROM objects WHERE kind = 'sshkey';
CREATE TABLE fabrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    class_type TEXT,
    description TEXT
);
CREATE INDEX fabrics_name ON fabrics(name);
INSERT INTO fabrics (id, name, class_type, description)
    SELECT id, name, json_extract(data, '$."class_type"'), json_extract(data, '$."description"')
    FROM objects WHERE kind = 'fabric' ORDER BY id;
DELETE FROM objects WHERE kind = 'fabric';
CREATE TABLE vlans (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
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
    SELECT id, name, json_extract(data, '$."fabric_id"'), json_extract(data, '$."vid"'), json_extract(data, '$."mtu"'), json_extract(data, '$."dhcp_on"'), json_extract(data, '$."fabric"'), json_extract(data, '$."space"'), json_extract(data, '$."description"')
    FROM objects WHERE kind = 'vlan' ORDER BY id;
DELETE FROM objects WHERE kind = 'vlan';
CREATE TABLE subnets (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
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
    SELECT id, name, json_extract(data, '$."cidr"'), json_extract(data, '$."vlan_id"'), json_extract(data, '$."gateway_ip"'), json_extract(data, '$."dns_servers"'), json_extract(data, '$."rdns_mode"'), json_extract(data, '$."allow_dns"'), json_extract(data, '$."allow_proxy"'), json_extract(data, '$."active_discovery"'), json_extract(data, '$."managed"'), json_extract(data, '$."description"'), json_extract(data, '$."space"')
    FROM objects WHERE kind = 'subnet' ORDER BY id;
DELETE FROM objects WHERE kind = 'subnet';
CREATE TABLE ipranges (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
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
    SELECT id, name, json_extract(data, '$."subnet_id"'), json_extract(data, '$."type"'), json_extract(data, '$."start_ip"'), json_extract(data, '$."end_ip"'), json_extract(data, '$."comment"'), json_extract(data, '$."user"')
    FROM objects WHERE kind = 'iprange' ORDER BY id;
DELETE FROM objects WHERE kind = 'iprange';
