-- Durable workflows (SQLite). Paired with ../../postgres/2026-11-21-190000_flow.
-- One running operation per machine, written in the transaction that changes
-- the machine's status; power effects as jobs a worker drains in id order.
CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    system_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    system_id TEXT NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    not_before BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX jobs_system_id ON jobs(system_id);
-- The in-process rack: the DHCP leases it handed out and the MACs it saw
-- that no machine has (MAAS's discovered devices).
CREATE TABLE rack_leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    mac TEXT NOT NULL UNIQUE,
    ip TEXT NOT NULL,
    hostname TEXT NOT NULL,
    state TEXT NOT NULL,
    expires BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE rack_unknown_macs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    mac TEXT NOT NULL UNIQUE,
    arch TEXT NOT NULL,
    vendor_class TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
