-- Boot sources, selections and boot resources as real tables (SQLite).
-- Paired with ../../postgres/2026-11-22-215954_import.
-- Sources and selections used to live in `objects` as JSON documents; they
-- move here with their ids, so API ids and resource_uris stay the same.
-- keyring_data is kept base64-encoded, the form the API reads and writes.
CREATE TABLE boot_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL UNIQUE,
    keyring_filename TEXT NOT NULL DEFAULT '',
    keyring_data TEXT NOT NULL DEFAULT '',
    priority BIGINT NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    skip_keyring_verification BOOLEAN NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE boot_source_selections (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    boot_source_id BIGINT NOT NULL REFERENCES boot_sources(id) ON DELETE CASCADE,
    os TEXT NOT NULL,
    release TEXT NOT NULL,
    arches TEXT NOT NULL DEFAULT '["*"]',
    subarches TEXT NOT NULL DEFAULT '["*"]',
    labels TEXT NOT NULL DEFAULT '["*"]',
    UNIQUE (boot_source_id, os, release)
);
-- What the image store holds, as the API lists it. `sets` is the JSON the
-- API shows under `sets` (version -> files); rewritten after every import.
CREATE TABLE boot_resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    rtype TEXT NOT NULL,
    name TEXT NOT NULL,
    architecture TEXT NOT NULL,
    subarches TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    sets TEXT NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    UNIQUE (name, architecture, rtype)
);
INSERT INTO boot_sources (id, name, url, keyring_filename, keyring_data, priority,
                          enabled, skip_keyring_verification, created, updated)
    SELECT id, name,
           COALESCE(json_extract(data, '$.url'), ''),
           COALESCE(json_extract(data, '$.keyring_filename'), ''),
           COALESCE(json_extract(data, '$.keyring_data'), ''),
           COALESCE(json_extract(data, '$.priority'), 0),
           COALESCE(json_extract(data, '$.enabled'), 1),
           COALESCE(json_extract(data, '$.skip_keyring_verification'), 0),
           COALESCE(CAST(strftime('%s', substr(json_extract(data, '$.created'), 1, 19)) AS INTEGER) * 1000, 0),
           COALESCE(CAST(strftime('%s', substr(json_extract(data, '$.updated'), 1, 19)) AS INTEGER) * 1000, 0)
    FROM objects WHERE kind = 'boot_source'
    -- The URL became unique: the first of duplicates wins.
    GROUP BY json_extract(data, '$.url');
INSERT OR IGNORE INTO boot_source_selections (id, boot_source_id, os, release, arches, subarches, labels)
    SELECT o.id, json_extract(o.data, '$.boot_source_id'),
           COALESCE(json_extract(o.data, '$.os'), ''),
           COALESCE(json_extract(o.data, '$.release'), ''),
           COALESCE(json_extract(o.data, '$.arches'), '["*"]'),
           COALESCE(json_extract(o.data, '$.subarches'), '["*"]'),
           COALESCE(json_extract(o.data, '$.labels'), '["*"]')
    FROM objects o
    WHERE o.kind = 'boot_source_selection'
      AND json_extract(o.data, '$.boot_source_id') IN (SELECT id FROM boot_sources);
DELETE FROM objects WHERE kind IN ('boot_source', 'boot_source_selection', 'boot_resource');
