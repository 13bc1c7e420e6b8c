//! Errors from the store.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (disk full, file locked, corrupt file…).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A database or archive file could not be made private.
    #[error(transparent)]
    File(#[from] crate::private::PrivateFileError),
    /// A stored value could not be read back.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}
