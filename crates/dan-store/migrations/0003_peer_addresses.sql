-- Where other instances were last reachable, so a restarted instance can
-- find its network again without an invite or mDNS.
CREATE TABLE peer_addresses (
    peer       TEXT PRIMARY KEY NOT NULL,
    addrs      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
