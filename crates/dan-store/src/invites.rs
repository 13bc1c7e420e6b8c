//! The `invites` table (invites this instance issued) and the
//! `peer_addresses` table (where other instances were last reachable).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

/// An invite as stored by its inviter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInvite {
    /// The invite id (hex).
    pub id: String,
    /// The `dan://join/…` link.
    pub link: String,
    /// When it was made (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it expires.
    pub expires_ms: u64,
    /// How many joins it allows.
    pub uses: u32,
    /// How many joins it was used for.
    pub used: u32,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Why an invite cannot be used (any more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteUse {
    /// Counted; the join may proceed.
    Counted,
    /// This instance never issued it.
    Unknown,
    /// Revoked by its inviter.
    Revoked,
    /// All its uses are spent.
    UsedUp,
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// Records a new invite.
    pub async fn add_invite(&self, invite: &StoredInvite, id: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO invites (id, link, created_ms, expires_ms, uses) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(id)
            .bind(&invite.link)
            .bind(i64::try_from(invite.created_ms).unwrap_or(i64::MAX))
            .bind(i64::try_from(invite.expires_ms).unwrap_or(i64::MAX))
            .bind(i64::from(invite.uses))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every invite issued here, newest first.
    pub async fn invites(&self) -> Result<Vec<StoredInvite>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, link, created_ms, expires_ms, uses, used, revoked FROM invites ORDER BY created_ms DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredInvite {
                    id: hex_of(&row.try_get::<Vec<u8>, _>("id")?),
                    link: row.try_get("link")?,
                    created_ms: to_u64(row.try_get("created_ms")?),
                    expires_ms: to_u64(row.try_get("expires_ms")?),
                    uses: u32::try_from(row.try_get::<i64, _>("uses")?).unwrap_or(0),
                    used: u32::try_from(row.try_get::<i64, _>("used")?).unwrap_or(0),
                    revoked: row.try_get::<i64, _>("revoked")? != 0,
                })
            })
            .collect()
    }

    /// Revokes an invite. Returns whether it existed.
    pub async fn revoke_invite(&self, id: &[u8]) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE invites SET revoked = 1 WHERE id = ?1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one use of an invite, atomically, if it is still usable.
    pub async fn use_invite(&self, id: &[u8]) -> Result<InviteUse, StoreError> {
        let counted = sqlx::query(
            "UPDATE invites SET used = used + 1 WHERE id = ?1 AND revoked = 0 AND used < uses",
        )
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if counted == 1 {
            return Ok(InviteUse::Counted);
        }
        let row = sqlx::query("SELECT revoked FROM invites WHERE id = ?1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            None => InviteUse::Unknown,
            Some(row) if row.try_get::<i64, _>("revoked")? != 0 => InviteUse::Revoked,
            Some(_) => InviteUse::UsedUp,
        })
    }
}

impl Store {
    /// Remembers where `peer` listens.
    pub async fn save_peer_addrs(
        &self,
        peer: &str,
        addrs: &[String],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let addrs = serde_json::to_string(addrs).map_err(|e| StoreError::Damaged(e.to_string()))?;
        sqlx::query(
            "INSERT INTO peer_addresses (peer, addrs, updated_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (peer) DO UPDATE SET addrs = excluded.addrs, updated_ms = excluded.updated_ms",
        )
        .bind(peer)
        .bind(addrs)
        .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every remembered peer address list.
    pub async fn peer_addrs(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows = sqlx::query("SELECT peer, addrs FROM peer_addresses")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let peer: String = row.try_get("peer").ok()?;
                let addrs: String = row.try_get("addrs").ok()?;
                Some((peer, serde_json::from_str(&addrs).ok()?))
            })
            .collect())
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
