use thiserror::Error;

/// What can go wrong at the storage boundary. `NotFound` and `Conflict` are the caller's
/// mistakes (mapped to 404 and 409 in one place by the web layer); the rest are the database's.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this database was written by a newer plantao (schema version {found}; this plantao knows up to {known}): upgrade plantao, or point [storage] url at another database"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("`{0}` is not a storage URL: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    BadUrl(String),
    #[error("cannot reach the database at {url}: {reason}")]
    Unavailable { url: String, reason: String },
    #[error("database error: {0}")]
    Database(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Maps a driver error; `what` names the record for foreign-key failures.
    pub(crate) fn from_sqlx(e: sqlx::Error, what: impl FnOnce() -> String) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound(what())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound(what()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// For `?` on driver calls where no record is named.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}
