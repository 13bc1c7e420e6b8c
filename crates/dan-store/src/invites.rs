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
    /// The inviter's own note of whom it is for (not part of the link).
    pub label: String,
    /// The instances that joined with it, oldest first.
    pub used_by: Vec<InviteUser>,
}

/// An instance that joined with an invite, as its join request named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteUser {
    /// The joining instance's peer id.
    pub peer_id: String,
    /// The instance name it chose.
    pub instance_name: String,
    /// Its admin's display name.
    pub admin_name: String,
    /// When the invite was used (ms since the Unix epoch).
    pub used_ms: u64,
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

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Records a new invite.
    pub async fn add_invite(&self, invite: &StoredInvite, id: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invites (id, link, created_ms, expires_ms, uses, label) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(id)
        .bind(&invite.link)
        .bind(to_i64(invite.created_ms))
        .bind(to_i64(invite.expires_ms))
        .bind(i64::from(invite.uses))
        .bind(&invite.label)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every invite issued here, newest first.
    pub async fn invites(&self) -> Result<Vec<StoredInvite>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, link, created_ms, expires_ms, uses, used, revoked, label \
             FROM invites ORDER BY created_ms DESC",
        )
        .fetch_all(self.pool())
        .await?;
        let uses = sqlx::query(
            "SELECT invite, joiner, instance_name, admin_name, used_ms \
             FROM invite_uses ORDER BY used_ms",
        )
        .fetch_all(self.pool())
        .await?;
        let mut used_by: std::collections::HashMap<Vec<u8>, Vec<InviteUser>> =
            std::collections::HashMap::new();
        for row in &uses {
            used_by
                .entry(row.try_get("invite")?)
                .or_default()
                .push(InviteUser {
                    peer_id: row.try_get("joiner")?,
                    instance_name: row.try_get("instance_name")?,
                    admin_name: row.try_get("admin_name")?,
                    used_ms: to_u64(row.try_get("used_ms")?),
                });
        }
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = row.try_get("id")?;
                Ok(StoredInvite {
                    id: hex_of(&id),
                    link: row.try_get("link")?,
                    created_ms: to_u64(row.try_get("created_ms")?),
                    expires_ms: to_u64(row.try_get("expires_ms")?),
                    uses: u32::try_from(row.try_get::<i64, _>("uses")?).unwrap_or(0),
                    used: u32::try_from(row.try_get::<i64, _>("used")?).unwrap_or(0),
                    revoked: row.try_get::<i64, _>("revoked")? != 0,
                    label: row.try_get("label")?,
                    used_by: used_by.remove(&id).unwrap_or_default(),
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

    /// Counts one use of an invite by `user`, if it is still usable, and
    /// notes who used it, in one transaction. The same joiner asking again
    /// (a lost answer) spends no second use.
    pub async fn use_invite(&self, id: &[u8], user: &InviteUser) -> Result<InviteUse, StoreError> {
        // Immediate: the transaction takes the write lock before it reads,
        // so its reads cannot go stale under the instance's other writers.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let already = sqlx::query("SELECT 1 FROM invite_uses WHERE invite = ?1 AND joiner = ?2")
            .bind(id)
            .bind(&user.peer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let revoked = sqlx::query("SELECT 1 FROM invites WHERE id = ?1 AND revoked = 1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if already.is_some() && revoked.is_none() {
            tx.commit().await?;
            return Ok(InviteUse::Counted);
        }
        let counted = sqlx::query(
            "UPDATE invites SET used = used + 1 WHERE id = ?1 AND revoked = 0 AND used < uses",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if counted == 1 {
            sqlx::query(
                "INSERT INTO invite_uses (invite, joiner, instance_name, admin_name, used_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(id)
            .bind(&user.peer_id)
            .bind(&user.instance_name)
            .bind(&user.admin_name)
            .bind(to_i64(user.used_ms))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(InviteUse::Counted);
        }
        let row = sqlx::query("SELECT revoked FROM invites WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
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
        .bind(to_i64(now_ms))
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
