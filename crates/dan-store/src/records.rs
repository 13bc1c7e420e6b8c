//! The materialized `records` table: queries and row conversion.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::{FieldValue, Hash32, PeerKey, RecordId, RecordView};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// How a record list is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSort {
    /// Most recently changed first.
    #[default]
    UpdatedDesc,
    /// Least recently changed first.
    UpdatedAsc,
    /// By title, A to Z.
    TitleAsc,
    /// By title, Z to A.
    TitleDesc,
    /// Newest first.
    CreatedDesc,
    /// By record id (bytewise): the order that pages read with
    /// [`RecordQuery::after_id`] follow, so that an export of a table that
    /// changes meanwhile neither skips nor repeats a record.
    IdAsc,
}

impl RecordSort {
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            RecordSort::UpdatedDesc => "updated_at DESC, id",
            RecordSort::UpdatedAsc => "updated_at ASC, id",
            RecordSort::TitleAsc => "title COLLATE NOCASE ASC, id",
            RecordSort::TitleDesc => "title COLLATE NOCASE DESC, id",
            RecordSort::CreatedDesc => "created_at DESC, id",
            RecordSort::IdAsc => "id",
        }
    }
}

/// A filter over records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordQuery {
    /// Only this collection.
    pub collection: Option<String>,
    /// Text that must appear in the title or a field value, whatever its
    /// case or Unicode form (both sides in NFC and lower case).
    pub search: Option<String>,
    /// Whether deleted records are listed too.
    pub include_deleted: bool,
    /// Ordering.
    pub sort: RecordSort,
    /// At most this many (0 means no limit).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
    /// Only records whose id sorts after this one (bytewise): with
    /// [`RecordSort::IdAsc`], the page after the last id read, found by the
    /// index whatever the page's depth (an offset is counted row by row).
    pub after_id: Option<String>,
}

impl RecordQuery {
    /// The LIKE pattern for `search` (folded as [`search_text`]), with
    /// `%`, `_` and `\` escaped.
    pub(crate) fn like_pattern(&self) -> Option<String> {
        let text = self.search.as_deref()?.trim();
        if text.is_empty() {
            return None;
        }
        let mut pattern = String::from("%");
        for c in fold(text).chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Some(pattern)
    }
}

/// Text in the one form search compares: NFC, lower case in every script.
fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfc().collect::<String>().to_lowercase()
}

/// What search matches for a record with this title and fields (as
/// stored): both folded, so that the Unicode form and case a writer used
/// do not hide a record.
pub(crate) fn search_text(title: &str, fields_json: &str) -> String {
    format!("{}\n{}", fold(title), fold(fields_json))
}

/// A row of the `records` table that does not read back as a record (it was
/// edited by hand or damaged).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record row `{id}` is damaged: {problem}")]
pub struct RowError {
    /// The row's id column.
    pub id: String,
    /// What is wrong.
    pub problem: String,
}

/// The column values a record is stored as.
pub(crate) struct RecordRow {
    pub(crate) id: String,
    pub(crate) collection: String,
    pub(crate) title: String,
    pub(crate) fields: String,
    pub(crate) tags: String,
    pub(crate) deleted: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) origin: String,
    pub(crate) version: String,
}

impl RecordRow {
    pub(crate) fn from_view(view: &RecordView) -> Self {
        RecordRow {
            id: view.id.to_string(),
            collection: view.collection.clone(),
            title: view.title.clone(),
            fields: serde_json::to_string(&view.fields).unwrap_or_else(|_| "{}".into()),
            tags: serde_json::to_string(&view.tags).unwrap_or_else(|_| "[]".into()),
            deleted: i64::from(view.deleted),
            created_at: clamp_i64(view.created_at),
            updated_at: clamp_i64(view.updated_at),
            origin: view.origin.to_string(),
            version: view.version.to_hex(),
        }
    }

    pub(crate) fn read(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(RecordRow {
            id: row.try_get("id")?,
            collection: row.try_get("collection")?,
            title: row.try_get("title")?,
            fields: row.try_get("fields")?,
            tags: row.try_get("tags")?,
            deleted: row.try_get("deleted")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            origin: row.try_get("origin")?,
            version: row.try_get("version")?,
        })
    }

    pub(crate) fn into_view(self, origins: &mut Origins) -> Result<RecordView, RowError> {
        let problem = |what: String| RowError {
            id: self.id.clone(),
            problem: what,
        };
        let fields: BTreeMap<String, FieldValue> =
            serde_json::from_str(&self.fields).map_err(|e| problem(format!("fields: {e}")))?;
        let tags: BTreeSet<String> =
            serde_json::from_str(&self.tags).map_err(|e| problem(format!("tags: {e}")))?;
        let origin = origins
            .parse(&self.origin)
            .map_err(|e| problem(format!("origin: {e}")))?;
        let version: Hash32 = self
            .version
            .parse()
            .map_err(|e| problem(format!("version: {e}")))?;
        let id = RecordId::new(&self.id).map_err(|e| problem(e.to_string()))?;
        let deleted = match self.deleted {
            0 => false,
            1 => true,
            other => return Err(problem(format!("deleted is {other}"))),
        };
        let time = |value: i64, what: &str| {
            u64::try_from(value).map_err(|_| problem(format!("{what} is negative")))
        };
        Ok(RecordView {
            created_at: time(self.created_at, "created_at")?,
            updated_at: time(self.updated_at, "updated_at")?,
            id,
            collection: self.collection,
            title: self.title,
            fields,
            tags,
            deleted,
            origin,
            version,
        })
    }
}

/// The peer ids of rows read together, each parsed (and its key checked)
/// once: a table holds the records of a few members, and checking a key
/// cost about as much as the rest of reading a row.
#[derive(Default)]
pub(crate) struct Origins(std::collections::HashMap<String, PeerKey>);

impl Origins {
    /// Most peer ids kept (a table edited to hold more only costs time).
    const MOST: usize = 1024;

    fn parse(&mut self, text: &str) -> Result<PeerKey, dan_core::identity::IdentityError> {
        if let Some(key) = self.0.get(text) {
            return Ok(*key);
        }
        let key: PeerKey = text.parse()?;
        if self.0.len() >= Self::MOST {
            self.0.clear();
        }
        self.0.insert(text.to_owned(), key);
        Ok(key)
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::Origins;

    #[test]
    fn bad_input_an_origin_is_checked_whatever_was_read_before_it() {
        let key = dan_core::Keypair::from_secret([5; 32]).public();
        let mut origins = Origins::default();
        for _ in 0..2 {
            assert_eq!(origins.parse(&key.to_string()), Ok(key));
            assert!(origins.parse("not a peer id").is_err());
        }
        // Past the most it keeps, every key still reads as itself.
        for n in 0..Origins::MOST + 10 {
            let mut secret = [1u8; 32];
            secret[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let other = dan_core::Keypair::from_secret(secret).public();
            assert_eq!(origins.parse(&other.to_string()), Ok(other));
        }
        assert!(origins.0.len() <= Origins::MOST);
    }
}
