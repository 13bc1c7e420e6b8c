-- Invites this instance issued: counted and revocable only here, by the
-- inviter, which is the one instance that approves joins made with them.
CREATE TABLE invites (
    id         BLOB PRIMARY KEY NOT NULL,
    link       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;
