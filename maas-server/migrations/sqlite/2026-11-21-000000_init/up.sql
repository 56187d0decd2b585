-- Initial schema (SQLite). Paired with ../../postgres/2026-11-21-000000_init.
-- Machines keep their full model as JSON in `data`; the columns beside it are
-- the ones queries filter on and the optimistic-concurrency `version`.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    password TEXT NOT NULL,
    is_superuser BOOLEAN NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    name TEXT NOT NULL,
    consumer_key TEXT NOT NULL,
    token_key TEXT NOT NULL UNIQUE,
    token_secret TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE machines (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    system_id TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL UNIQUE,
    status INTEGER NOT NULL,
    owner TEXT,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX machines_status ON machines(status);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    system_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    username TEXT NOT NULL,
    level TEXT NOT NULL,
    type_name TEXT NOT NULL,
    description TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX events_system_id ON events(system_id);
CREATE TABLE objects (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX objects_kind ON objects(kind, name);
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
