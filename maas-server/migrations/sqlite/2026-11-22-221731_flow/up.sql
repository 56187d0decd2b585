-- Script results (SQLite). Paired with ../../postgres/2026-11-22-221731_flow.
-- One script set per run of a machine's commissioning, testing or
-- installation (MAAS's ScriptSet; result_type 0, 2 and 1 as MAAS), one
-- result per script in it with its status, exit code, raw output and times.
CREATE TABLE script_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    system_id TEXT NOT NULL,
    result_type INTEGER NOT NULL,
    last_ping BIGINT,
    created BIGINT NOT NULL
);
CREATE INDEX script_sets_system_id ON script_sets(system_id, result_type);
CREATE TABLE script_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    script_set_id BIGINT NOT NULL REFERENCES script_sets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    script_id BIGINT,
    status INTEGER NOT NULL,
    exit_status INTEGER,
    output BLOB NOT NULL,
    stdout BLOB NOT NULL,
    stderr BLOB NOT NULL,
    result BLOB NOT NULL,
    runtime_ms BIGINT,
    started BIGINT,
    ended BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX script_results_set ON script_results(script_set_id);
