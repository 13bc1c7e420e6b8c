//! The SQLite store of one instance.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dan_core::{Payload, RecordId, RecordView, VerifiedOp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqlitePool};

use crate::error::StoreError;
use crate::log_digest::LogDigest;
use crate::records::{Origins, RecordQuery, RecordRow, RowError, search_text};

/// One entry of the op log as stored: its local position and canonical
/// bytes. Decoding and verifying is the caller's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOp {
    /// Local arrival order, from 1.
    pub pos: i64,
    /// The op id column as stored.
    pub op_id: Vec<u8>,
    /// The canonical signed op.
    pub bytes: Vec<u8>,
}

/// The database of one instance. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The digest of the op log as written through this store, once the
    /// instance said where it starts ([`Store::follow_log`]).
    log: Arc<std::sync::Mutex<Option<LogDigest>>>,
}

/// The database file and SQLite's write-ahead log and shared memory beside
/// it (created with the database file's mode).
fn database_files(path: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

const RECORD_COLUMNS: &str =
    "id, collection, title, fields, tags, deleted, created_at, updated_at, origin, version";

impl Store {
    /// Opens (or creates) the database file at `path` and brings its schema
    /// up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_connections(path, 4).await
    }

    /// [`open`](Self::open) with one connection, opened before this
    /// returns and kept: every read goes through the one file it opened
    /// (a check of the file that a swap of the path cannot split).
    pub async fn open_one_connection(path: &Path) -> Result<Store, StoreError> {
        Self::open_connections(path, 1).await
    }

    async fn open_connections(path: &Path, connections: u32) -> Result<Store, StoreError> {
        if std::fs::symlink_metadata(path).is_err() {
            crate::private::create_empty(path)?;
        }
        for file in database_files(path) {
            if std::fs::symlink_metadata(&file).is_ok() {
                crate::private::protect(&file)?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::open_with(options, connections).await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        connections: u32,
    ) -> Result<Store, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // The WAL is copied into the database once it holds 64 MiB
            // rather than 4 MiB: a batch of 1000 ops dirties about 2000
            // pages (its random-keyed index entries), so the default ran a
            // checkpoint inside nearly every commit (ingest 10.1-10.4k
            // ops/s instead of 8.6-8.9k, `cargo bench -p dan-node --bench
            // ingest`, 2026-12-03; pages are 4 KiB). Durability is the
            // WAL's, unchanged. After a checkpoint the file is cut back
            // to 64 MiB, so reads that kept it from restarting cannot
            // leave it larger for good.
            .pragma("wal_autocheckpoint", "16384")
            .pragma("journal_size_limit", "67108864");
        // Switch to WAL and migrate on one connection first: several
        // connections racing to change the journal mode of a new file
        // would fail with SQLITE_BUSY.
        let first = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&first).await?;
        fill_search_text(&first).await?;
        first.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            log: Arc::default(),
        })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The canonical bytes of the ops with these ids (those held), in no
    /// particular order. One statement per few hundred ids: a peer's fetch
    /// asks for a thousand at once, and a query per id cost most of
    /// serving one.
    pub async fn ops_by_id(&self, ids: &[dan_core::OpId]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new("SELECT bytes FROM ops WHERE op_id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(&id.0[..]);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *conn).await? {
                found.push(row.try_get("bytes")?);
            }
        }
        Ok(found)
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads a setting.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    /// Writes settings, all in one durable transaction.
    pub async fn set_meta(&self, entries: &[(&str, &[u8])]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        upsert_meta(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends `ops` to the log and writes the records they changed, in one
    /// transaction. When this returns, the write is durable.
    pub async fn commit(
        &self,
        ops: &[VerifiedOp],
        records: &[RecordView],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut appended: Vec<(i64, Vec<u8>)> = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ops (op_id, origin, origin_seq, record_id, bytes) ",
            );
            insert.push_values(chunk, |mut row, op| {
                let body = op.body();
                let record_id = match &body.payload {
                    Payload::Record { id, .. } => Some(id.to_string()),
                    Payload::Governance(_) => None,
                };
                row.push_bind(op.id().0.to_vec())
                    .push_bind(body.origin.to_string())
                    .push_bind(i64::try_from(body.seq).unwrap_or(i64::MAX))
                    .push_bind(record_id)
                    .push_bind(op.bytes().to_vec());
            });
            // An op the log holds but the replica left out (it waited, or
            // its origin was cut off and later counted again) may arrive
            // again: it keeps its first place in the log.
            insert.push(" ON CONFLICT (op_id) DO NOTHING RETURNING pos, op_id");
            for row in insert.build().fetch_all(&mut *tx).await? {
                appended.push((row.try_get("pos")?, row.try_get("op_id")?));
            }
        }
        upsert_records(&mut tx, records).await?;
        tx.commit().await?;
        appended.sort_unstable();
        if let Some(log) = self.followed().as_mut() {
            for (pos, id) in &appended {
                log.add(*pos, id);
            }
        }
        Ok(())
    }

    /// The digest of the log followed, if it is.
    fn followed(&self) -> std::sync::MutexGuard<'_, Option<LogDigest>> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From now on, keeps the digest of the op log as this store writes it,
    /// starting from `read` (the digest of the log as it is now, read and
    /// checked by the instance).
    pub fn follow_log(&self, read: LogDigest) {
        *self.followed() = Some(read);
    }

    /// The digest of the op log as written, if followed and nothing but
    /// this store changed the log since (see [`LogDigest`]).
    pub fn log_digest(&self) -> Option<([u8; 32], u64)> {
        self.followed().as_ref().map(LogDigest::value)
    }

    /// The whole op log in arrival order.
    pub async fn ops(&self) -> Result<Vec<StoredOp>, StoreError> {
        let rows = sqlx::query("SELECT pos, op_id, bytes FROM ops ORDER BY pos")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_op).collect()
    }

    /// The ops that changed one record, in arrival order.
    pub async fn record_ops(&self, id: &RecordId) -> Result<Vec<StoredOp>, StoreError> {
        let rows =
            sqlx::query("SELECT pos, op_id, bytes FROM ops WHERE record_id = ?1 ORDER BY pos")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(stored_op).collect()
    }

    /// Number of record rows.
    pub async fn record_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Number of ops in the log.
    pub async fn op_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ops")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Deletes ops from the log (used only by repair, for ops whose bytes no
    /// longer verify). Returns how many were removed.
    pub async fn delete_ops(&self, positions: &[i64]) -> Result<u64, StoreError> {
        // The log is no longer the one followed.
        *self.followed() = None;
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for pos in positions {
            removed += sqlx::query("DELETE FROM ops WHERE pos = ?1")
                .bind(pos)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// One record's current version. `Err` carries a row that does not read
    /// back (damaged).
    pub async fn record(
        &self,
        id: &RecordId,
    ) -> Result<Option<Result<RecordView, RowError>>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ?1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(RecordRow::read(&r)?.into_view(&mut Origins::default())))
            .transpose()
    }

    /// Records matching `query`. Damaged rows are skipped with a warning
    /// (the integrity check reports them).
    pub async fn records(&self, query: &RecordQuery) -> Result<Vec<RecordView>, StoreError> {
        Ok(self.records_and_rows(query).await?.0)
    }

    /// [`records`](Self::records), and how many rows matched (damaged ones
    /// included, as [`count_records`](Self::count_records) counts them).
    async fn records_and_rows(
        &self,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordView>, u64), StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records {} ORDER BY {} LIMIT ?5 OFFSET ?6",
            FILTER,
            query.sort.order_by()
        );
        let limit = if query.limit == 0 {
            -1
        } else {
            i64::from(query.limit)
        };
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(query.collection.as_deref())
            .bind(query.like_pattern())
            .bind(i64::from(query.include_deleted))
            .bind(query.after_id.as_deref())
            .bind(limit)
            .bind(i64::from(query.offset))
            .fetch_all(&self.pool)
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        let mut origins = Origins::default();
        for row in &rows {
            match RecordRow::read(row)?.into_view(&mut origins) {
                Ok(view) => views.push(view),
                Err(damaged) => tracing::warn!("{damaged}"),
            }
        }
        Ok((views, rows.len() as u64))
    }

    /// A page of the records matching `query` and how many match in all.
    /// A first page shorter than its limit holds every match, so the
    /// count is not read again: a search that matches few records scans
    /// the table once, not twice.
    pub async fn record_page(
        &self,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordView>, u64), StoreError> {
        let (page, rows) = self.records_and_rows(query).await?;
        let whole = query.offset == 0 && (query.limit == 0 || rows < u64::from(query.limit));
        let total = if whole {
            rows
        } else {
            self.count_records(query).await?
        };
        Ok((page, total))
    }

    /// How many records match `query` (ignoring limit and offset; counting
    /// from `after_id` when given).
    pub async fn count_records(&self, query: &RecordQuery) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM records {FILTER}");
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(query.collection.as_deref())
            .bind(query.like_pattern())
            .bind(i64::from(query.include_deleted))
            .bind(query.after_id.as_deref())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Up to `limit` ops of the log after position `after` (from the first
    /// with `None`), in log order: the log read in pages, so that a check
    /// of a long log never holds all of it.
    pub async fn ops_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredOp>, StoreError> {
        // Two statements, not `?1 IS NULL OR pos > ?1`: SQLite cannot seek
        // to a position through an OR, and each page would scan the log
        // from its start.
        let limit = i64::from(limit);
        let rows = match after {
            None => {
                sqlx::query("SELECT pos, op_id, bytes FROM ops ORDER BY pos LIMIT ?1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(after) => {
                sqlx::query(
                    "SELECT pos, op_id, bytes FROM ops WHERE pos > ?1 ORDER BY pos LIMIT ?2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(stored_op).collect()
    }

    /// Up to `limit` record rows after row number `after` (from the first
    /// with `None`), as stored (damaged ones as errors), each with its row
    /// number to go on from: the integrity check reads the table in pages.
    pub async fn records_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NumberedRow>, StoreError> {
        // As in `ops_after`, a statement that can seek.
        let from = if after.is_some() {
            "WHERE rowid > ?2"
        } else {
            "WHERE ?2 IS NULL"
        };
        let sql = format!(
            "SELECT rowid AS row_number, {RECORD_COLUMNS} FROM records {from} ORDER BY rowid LIMIT ?1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        numbered_views(&rows)
    }

    /// The ops at about `picks.len()` positions spread over the log as the
    /// picks say (each taken modulo the span of positions; gaps left by a
    /// repair give fewer): samples to check again at a start that does not
    /// read the whole log.
    pub async fn sample_ops(&self, picks: &[u64]) -> Result<Vec<StoredOp>, StoreError> {
        let Some(positions) = self.spread("ops", "pos", picks).await? else {
            return Ok(Vec::new());
        };
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT pos, op_id, bytes FROM ops WHERE pos IN (");
        let mut list = query.separated(", ");
        for pos in positions {
            list.push_bind(pos);
        }
        query.push(") ORDER BY pos");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(stored_op).collect()
    }

    /// Record rows at about `picks.len()` row numbers spread over the
    /// table, as stored (damaged ones as errors), each with its row number
    /// as [`records_after`](Self::records_after) gives them: samples, as
    /// [`sample_ops`](Self::sample_ops).
    pub async fn sample_records(&self, picks: &[u64]) -> Result<Vec<NumberedRow>, StoreError> {
        let Some(numbers) = self.spread("records", "rowid", picks).await? else {
            return Ok(Vec::new());
        };
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT rowid AS row_number, {RECORD_COLUMNS} FROM records WHERE rowid IN ("
        ));
        let mut list = query.separated(", ");
        for number in numbers {
            list.push_bind(number);
        }
        query.push(")");
        let rows = query.build().fetch_all(&self.pool).await?;
        numbered_views(&rows)
    }

    /// `picks` spread over the span of `key` in `table` (`None` when it is
    /// empty).
    async fn spread(
        &self,
        table: &str,
        key: &str,
        picks: &[u64],
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let sql = format!("SELECT min({key}), max({key}) FROM {table}");
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let span = last.abs_diff(first).saturating_add(1);
        Ok(Some(
            picks
                .iter()
                .take(IDS_PER_STATEMENT)
                .map(|pick| first.saturating_add_unsigned(pick % span))
                .collect(),
        ))
    }

    /// Moves everything in the write-ahead log into the database file, so
    /// that the file alone holds the data. `false` when another connection
    /// (not this store's) kept it from finishing.
    pub async fn flush_wal(&self) -> Result<bool, StoreError> {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await?;
        Ok(busy == 0)
    }

    /// Every record row as stored, damaged ones as errors, for the integrity
    /// check.
    pub async fn all_records(&self) -> Result<Vec<Result<RecordView, RowError>>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut origins = Origins::default();
        rows.iter()
            .map(|row| Ok(RecordRow::read(row)?.into_view(&mut origins)))
            .collect()
    }

    /// Writes a consistent copy of the whole database to `path`, a new
    /// private file.
    pub async fn snapshot(&self, path: &Path) -> Result<(), StoreError> {
        crate::private::create_empty(path)?;
        let target = path.to_string_lossy().into_owned();
        sqlx::query("VACUUM INTO ?1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Copies the whole database to `archive` (a consistent snapshot), then
    /// empties everything that belongs to the current network (ops,
    /// records, invites and their uses, evidence, peer addresses) and writes `meta` (the
    /// new start), in one transaction. Used when an instance leaves its
    /// network for a fork, or starts afresh to be readmitted.
    pub async fn archive_and_reset(
        &self,
        archive: &Path,
        meta: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        self.snapshot(archive).await?;
        let mut tx = self.pool.begin().await?;
        let tables = [
            "ops",
            "records",
            "invite_uses",
            "invites",
            "evidence",
            "peer_addresses",
        ];
        for table in tables {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM meta WHERE key IN ('genesis', 'joining_invite')")
            .execute(&mut *tx)
            .await?;
        upsert_meta(&mut tx, meta).await?;
        tx.commit().await?;
        // The log starts over, empty.
        if let Some(log) = self.followed().as_mut() {
            *log = LogDigest::default();
        }
        Ok(())
    }

    /// Replaces the whole records table with `views` (repair after the
    /// integrity check found rows that do not match the op log).
    pub async fn rematerialize(&self, views: &[RecordView]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM records").execute(&mut *tx).await?;
        upsert_records(&mut tx, views).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A record row as stored with its row number: its view, or why it is
/// damaged.
pub type NumberedRow = (i64, Result<RecordView, RowError>);

/// Record rows read with their row number (`row_number`), as views
/// (damaged ones as errors).
fn numbered_views(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<NumberedRow>, StoreError> {
    let mut origins = Origins::default();
    rows.iter()
        .map(|row| {
            let number: i64 = row.try_get("row_number")?;
            Ok((number, RecordRow::read(row)?.into_view(&mut origins)))
        })
        .collect()
}

const FILTER: &str = "WHERE (?1 IS NULL OR collection = ?1) \
     AND (?2 IS NULL OR search_text LIKE ?2 ESCAPE '\\') \
     AND (?3 = 1 OR deleted = 0) \
     AND (?4 IS NULL OR id > ?4)";

async fn upsert_meta(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entries: &[(&str, &[u8])],
) -> Result<(), StoreError> {
    for (key, value) in entries {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(*key)
        .bind(*value)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn stored_op(row: &sqlx::sqlite::SqliteRow) -> Result<StoredOp, StoreError> {
    Ok(StoredOp {
        pos: row.try_get("pos")?,
        op_id: row.try_get("op_id")?,
        bytes: row.try_get("bytes")?,
    })
}

/// Fills in what search matches for rows stored before it was kept (once,
/// after the migration that added it).
async fn fill_search_text(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut filled = 0usize;
    loop {
        // In batches, so that millions of old rows never sit in memory at
        // once.
        let rows = sqlx::query(
            "SELECT id, title, fields FROM records WHERE search_text IS NULL LIMIT 1000",
        )
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = pool.begin().await?;
        for row in &rows {
            let (id, title, fields): (String, String, String) = (
                row.try_get("id")?,
                row.try_get("title")?,
                row.try_get("fields")?,
            );
            sqlx::query("UPDATE records SET search_text = ?1 WHERE id = ?2")
                .bind(search_text(&title, &fields))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        filled += rows.len();
    }
    if filled > 0 {
        tracing::info!("prepared {filled} records for search");
    }
    Ok(())
}

/// Rows per multi-row statement (fewer statements, less overhead per row).
const ROWS_PER_STATEMENT: usize = 100;

/// Ids looked up per statement (well under SQLite's limit on bound
/// parameters).
const IDS_PER_STATEMENT: usize = 500;

async fn upsert_records(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    views: &[RecordView],
) -> Result<(), StoreError> {
    for chunk in views.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO records (id, collection, title, fields, tags, deleted, created_at, updated_at, origin, version, search_text) ",
        );
        upsert.push_values(chunk, |mut row, view| {
            let r = RecordRow::from_view(view);
            let search = search_text(&r.title, &r.fields);
            row.push_bind(r.id)
                .push_bind(r.collection)
                .push_bind(r.title)
                .push_bind(r.fields)
                .push_bind(r.tags)
                .push_bind(r.deleted)
                .push_bind(r.created_at)
                .push_bind(r.updated_at)
                .push_bind(r.origin)
                .push_bind(r.version)
                .push_bind(search);
        });
        upsert.push(
            " ON CONFLICT (id) DO UPDATE SET collection = excluded.collection, title = excluded.title, \
             fields = excluded.fields, tags = excluded.tags, deleted = excluded.deleted, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, \
             origin = excluded.origin, version = excluded.version, search_text = excluded.search_text",
        );
        upsert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_stored_before_search_text_was_kept_are_found_after_opening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("dan.db")).await.expect("open");
        sqlx::query(
            "INSERT INTO records (id, collection, title, fields, tags, deleted, created_at, updated_at, origin, version) \
             VALUES ('old', 'books', 'ÉCOLE', '{}', '[]', 0, 1, 1, 'o', 'v')",
        )
        .execute(store.pool())
        .await
        .expect("insert");
        let search = RecordQuery {
            search: Some("école".into()),
            ..Default::default()
        };
        assert_eq!(store.count_records(&search).await.expect("count"), 0);
        fill_search_text(store.pool()).await.expect("fill");
        assert_eq!(store.count_records(&search).await.expect("count"), 1);
    }
}
