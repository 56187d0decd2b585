-- Sources and selections go back to `objects` documents; boot resources are
-- rebuilt by the next import.
INSERT INTO objects (id, kind, name, data)
    SELECT id, 'boot_source', name, json_build_object(
        'url', url, 'keyring_filename', keyring_filename, 'keyring_data', keyring_data,
        'priority', priority, 'enabled', enabled,
        'skip_keyring_verification', skip_keyring_verification,
        'created', to_char(to_timestamp(created / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS'),
        'updated', to_char(to_timestamp(updated / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS'))::text
    FROM boot_sources;
INSERT INTO objects (kind, name, data)
    SELECT 'boot_source_selection', os || '/' || release, json_build_object(
        'boot_source_id', boot_source_id, 'os', os, 'release', release,
        'arches', arches::json, 'subarches', subarches::json, 'labels', labels::json)::text
    FROM boot_source_selections;
DROP TABLE boot_resources;
DROP TABLE boot_source_selections;
DROP TABLE boot_sources;
