//! The `evidence` table: signed evidence seen by this instance.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

/// Evidence as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvidence {
    /// Its id (hex of BLAKE3 of its bytes).
    pub id: String,
    /// The signed evidence (canonical bytes).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Who reported it.
    pub accuser: String,
    /// Who it proves broke the rules (once proven).
    pub offender: Option<String>,
    /// `proven`, `unfounded`, `pending`, or `against_this_instance`.
    pub status: String,
    /// In plain words.
    pub reason: String,
    /// The offender's first refused seq (once proven).
    pub cutoff: Option<u64>,
    /// When it arrived (ms since the Unix epoch).
    pub received_ms: u64,
}

impl Store {
    /// Stores or updates evidence.
    pub async fn save_evidence(
        &self,
        evidence: &StoredEvidence,
        id: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO evidence (id, bytes, accuser, offender, status, reason, cutoff, received_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (id) DO UPDATE SET offender = excluded.offender, status = excluded.status, \
             reason = excluded.reason, cutoff = excluded.cutoff WHERE evidence.status = 'pending'",
        )
        .bind(id)
        .bind(&evidence.bytes)
        .bind(&evidence.accuser)
        .bind(&evidence.offender)
        .bind(&evidence.status)
        .bind(&evidence.reason)
        .bind(evidence.cutoff.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
        .bind(i64::try_from(evidence.received_ms).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// All stored evidence, oldest first.
    pub async fn evidence(&self) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, bytes, accuser, offender, status, reason, cutoff, received_ms FROM evidence ORDER BY received_ms",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = row.try_get("id")?;
                Ok(StoredEvidence {
                    id: id.iter().map(|b| format!("{b:02x}")).collect(),
                    bytes: row.try_get("bytes")?,
                    accuser: row.try_get("accuser")?,
                    offender: row.try_get("offender")?,
                    status: row.try_get("status")?,
                    reason: row.try_get("reason")?,
                    cutoff: row
                        .try_get::<Option<i64>, _>("cutoff")?
                        .and_then(|c| u64::try_from(c).ok()),
                    received_ms: u64::try_from(row.try_get::<i64, _>("received_ms")?).unwrap_or(0),
                })
            })
            .collect()
    }
}
