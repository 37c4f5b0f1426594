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
    /// The database is reachable but refuses to write: a full disk, a read-only file or
    /// server, an I/O error. plantao stops claiming runs until writes succeed again.
    #[error("the database cannot write: {0}")]
    CannotWrite(String),
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
            _ => StoreError::from(e),
        }
    }
}

/// For `?` on driver calls where no record is named.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|db| db.code()) {
            Some(code) if refuses_writes(&code) => StoreError::CannotWrite(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Whether a database error code says the database cannot write. SQLite's codes are numbers:
/// FULL (13), READONLY (8) and IOERR (10), with their extended forms. PostgreSQL's are
/// SQLSTATEs: class 53, insufficient resources (53100 is disk_full), and 25006,
/// read_only_sql_transaction (a standby, or `default_transaction_read_only`).
fn refuses_writes(code: &str) -> bool {
    match code.parse::<i32>() {
        Ok(n) if code.len() < 5 => matches!(n & 0xff, 8 | 10 | 13),
        _ => code.starts_with("53") || code == "25006",
    }
}

#[cfg(test)]
mod tests {
    use super::refuses_writes;

    #[test]
    fn codes_that_mean_the_database_cannot_write() {
        for code in ["13", "8", "10", "778", "1034", "53100", "53200", "25006"] {
            assert!(refuses_writes(code), "{code}");
        }
        for code in ["5", "19", "2067", "23505", "40001", "42P01"] {
            assert!(!refuses_writes(code), "{code}");
        }
    }
}
