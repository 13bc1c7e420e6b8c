-- Instance settings and secrets (sealed key, genesis, counters).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

-- The signed op log: append-only, in local arrival order. The source of
-- truth; everything else is derived from it.
CREATE TABLE ops (
    pos        INTEGER PRIMARY KEY,
    op_id      BLOB NOT NULL UNIQUE,
    origin     TEXT NOT NULL,
    origin_seq INTEGER NOT NULL,
    record_id  TEXT,
    bytes      BLOB NOT NULL
) STRICT;
CREATE INDEX ops_by_record ON ops (record_id) WHERE record_id IS NOT NULL;
CREATE UNIQUE INDEX ops_by_origin ON ops (origin, origin_seq);

-- Materialized records: the current version of every record, derived from
-- the op log and checked against it on every start.
CREATE TABLE records (
    id         TEXT PRIMARY KEY NOT NULL,
    collection TEXT NOT NULL,
    title      TEXT NOT NULL,
    fields     TEXT NOT NULL,
    tags       TEXT NOT NULL,
    deleted    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    origin     TEXT NOT NULL,
    version    TEXT NOT NULL
) STRICT;
CREATE INDEX records_by_collection ON records (collection, updated_at);
CREATE INDEX records_by_update ON records (updated_at);
