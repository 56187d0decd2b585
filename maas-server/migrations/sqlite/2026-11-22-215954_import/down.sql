-- Sources and selections go back to `objects` documents; boot resources are
-- rebuilt by the next import.
INSERT INTO objects (id, kind, name, data)
    SELECT id, 'boot_source', name, json_object(
        'url', url, 'keyring_filename', keyring_filename, 'keyring_data', keyring_data,
        'priority', priority, 'enabled', json(CASE WHEN enabled THEN 'true' ELSE 'false' END),
        'skip_keyring_verification',
        json(CASE WHEN skip_keyring_verification THEN 'true' ELSE 'false' END),
        'created', strftime('%Y-%m-%dT%H:%M:%S.000', created / 1000, 'unixepoch'),
        'updated', strftime('%Y-%m-%dT%H:%M:%S.000', updated / 1000, 'unixepoch'))
    FROM boot_sources;
INSERT INTO objects (kind, name, data)
    SELECT 'boot_source_selection', os || '/' || release, json_object(
        'boot_source_id', boot_source_id, 'os', os, 'release', release,
        'arches', json(arches), 'subarches', json(subarches), 'labels', json(labels))
    FROM boot_source_selections;
DROP TABLE boot_resources;
DROP TABLE boot_source_selections;
DROP TABLE boot_sources;
