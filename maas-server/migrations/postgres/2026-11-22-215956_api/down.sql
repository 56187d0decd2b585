-- Back into `objects`. Lossy by design: rows get new ids there (the old ones
-- may be taken by other kinds by now), and unset keys come back as null.
INSERT INTO objects (kind, name, data)
    SELECT 'iprange', name, json_build_object('subnet_id', subnet_id, 'type', range_type, 'start_ip', start_ip, 'end_ip', end_ip, 'comment', comment, 'user', username)::text FROM ipranges ORDER BY id;
DROP TABLE ipranges;
INSERT INTO objects (kind, name, data)
    SELECT 'subnet', name, json_build_object('cidr', cidr, 'vlan_id', vlan_id, 'gateway_ip', gateway_ip, 'dns_servers', (dns_servers)::jsonb, 'rdns_mode', rdns_mode, 'allow_dns', allow_dns, 'allow_proxy', allow_proxy, 'active_discovery', active_discovery, 'managed', managed, 'description', description, 'space', space)::text FROM subnets ORDER BY id;
DROP TABLE subnets;
INSERT INTO objects (kind, name, data)
    SELECT 'vlan', name, json_build_object('fabric_id', fabric_id, 'vid', vid, 'mtu', mtu, 'dhcp_on', dhcp_on, 'fabric', fabric, 'space', space, 'description', description)::text FROM vlans ORDER BY id;
DROP TABLE vlans;
INSERT INTO objects (kind, name, data)
    SELECT 'fabric', name, json_build_object('class_type', class_type, 'description', description)::text FROM fabrics ORDER BY id;
DROP TABLE fabrics;
INSERT INTO objects (kind, name, data)
    SELECT 'sshkey', name, json_build_object('key', public_key, 'keysource', keysource)::text FROM sshkeys ORDER BY id;
DROP TABLE sshkeys;
INSERT INTO objects (kind, name, data)
    SELECT 'tag', name, json_build_object('description', description, 'comment', comment, 'definition', definition, 'kernel_opts', kernel_opts)::text FROM tags ORDER BY id;
DROP TABLE tags;
INSERT INTO objects (kind, name, data)
    SELECT 'domain', name, json_build_object('authoritative', authoritative, 'ttl', ttl, 'is_default', is_default)::text FROM domains ORDER BY id;
DROP TABLE domains;
INSERT INTO objects (kind, name, data)
    SELECT 'pool', name, json_build_object('description', description)::text FROM resource_pools ORDER BY id;
DROP TABLE resource_pools;
INSERT INTO objects (kind, name, data)
    SELECT 'zone', name, json_build_object('description', description)::text FROM zones ORDER BY id;
DROP TABLE zones;
ALTER TABLE machines DROP COLUMN listing;
