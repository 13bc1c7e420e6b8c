-- A label the inviter gives an invite ("for Bob"; never put in the link),
-- and who used each invite, so the inviter's list can say "used by …".
ALTER TABLE invites ADD COLUMN label TEXT NOT NULL DEFAULT '';

CREATE TABLE invite_uses (
    invite        BLOB NOT NULL REFERENCES invites (id),
    joiner        TEXT NOT NULL,  -- the joining instance's peer id
    instance_name TEXT NOT NULL,  -- the names the joiner chose
    admin_name    TEXT NOT NULL,
    used_ms       INTEGER NOT NULL,
    PRIMARY KEY (invite, joiner)
) STRICT;
