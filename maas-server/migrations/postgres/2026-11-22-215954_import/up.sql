-- Boot sources, selections and boot resources as real tables (PostgreSQL).
-- Paired with ../../sqlite/2026-11-22-215954_import (see the notes there).
CREATE TABLE boot_sources (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL UNIQUE,
    keyring_filename TEXT NOT NULL DEFAULT '',
    keyring_data TEXT NOT NULL DEFAULT '',
    priority BIGINT NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    skip_keyring_verification BOOLEAN NOT NULL DEFAULT FALSE,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE boot_source_selections (
    id BIGSERIAL PRIMARY KEY,
    boot_source_id BIGINT NOT NULL REFERENCES boot_sources(id) ON DELETE CASCADE,
    os TEXT NOT NULL,
    release TEXT NOT NULL,
    arches TEXT NOT NULL DEFAULT '["*"]',
    subarches TEXT NOT NULL DEFAULT '["*"]',
    labels TEXT NOT NULL DEFAULT '["*"]',
    UNIQUE (boot_source_id, os, release)
);
CREATE TABLE boot_resources (
    id BIGSERIAL PRIMARY KEY,
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
    SELECT DISTINCT ON (data::jsonb->>'url') id, name,
           COALESCE(data::jsonb->>'url', ''),
           COALESCE(data::jsonb->>'keyring_filename', ''),
           COALESCE(data::jsonb->>'keyring_data', ''),
           COALESCE((data::jsonb->>'priority')::bigint, 0),
           COALESCE((data::jsonb->>'enabled')::boolean, TRUE),
           COALESCE((data::jsonb->>'skip_keyring_verification')::boolean, FALSE),
           COALESCE(floor(EXTRACT(EPOCH FROM NULLIF(data::jsonb->>'created', '')::timestamp))::bigint * 1000, 0),
           COALESCE(floor(EXTRACT(EPOCH FROM NULLIF(data::jsonb->>'updated', '')::timestamp))::bigint * 1000, 0)
    FROM objects WHERE kind = 'boot_source'
    ORDER BY data::jsonb->>'url', id;
INSERT INTO boot_source_selections (id, boot_source_id, os, release, arches, subarches, labels)
    SELECT DISTINCT ON ((o.data::jsonb->>'boot_source_id')::bigint, o.data::jsonb->>'os', o.data::jsonb->>'release')
           o.id, (o.data::jsonb->>'boot_source_id')::bigint,
           COALESCE(o.data::jsonb->>'os', ''),
           COALESCE(o.data::jsonb->>'release', ''),
           COALESCE((o.data::jsonb->'arches')::text, '["*"]'),
           COALESCE((o.data::jsonb->'subarches')::text, '["*"]'),
           COALESCE((o.data::jsonb->'labels')::text, '["*"]')
    FROM objects o
    WHERE o.kind = 'boot_source_selection'
      AND (o.data::jsonb->>'boot_source_id')::bigint IN (SELECT id FROM boot_sources)
    ORDER BY (o.data::jsonb->>'boot_source_id')::bigint, o.data::jsonb->>'os', o.data::jsonb->>'release', o.id;
-- Explicit ids were inserted: move the sequences past them.
SELECT setval(pg_get_serial_sequence('boot_sources', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM boot_sources;
SELECT setval(pg_get_serial_sequence('boot_source_selections', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM boot_source_selections;
DELETE FROM objects WHERE kind IN ('boot_source', 'boot_source_selection', 'boot_resource');
