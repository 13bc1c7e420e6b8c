-- Evidence this instance has seen: proven (the offender is deprecated),
-- unfounded (a false accusation), or pending (not decidable yet).
CREATE TABLE evidence (
    id          BLOB PRIMARY KEY NOT NULL,
    bytes       BLOB NOT NULL,
    accuser     TEXT NOT NULL,
    offender    TEXT,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    cutoff      INTEGER,
    received_ms INTEGER NOT NULL
) STRICT;
