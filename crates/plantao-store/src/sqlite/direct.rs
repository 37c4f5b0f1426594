//! SQLite driven through its C interface, where sqlx's way costs more than the work.
//!
//! sqlx gives each SQLite connection a thread of its own and hands every statement to it and
//! back (a futex wake and a thread switch each way). On two cores that hand-off was a third of
//! the process's CPU under `plantao bench api`, and most of a batch of pings' time. So:
//!
//! - [`Readers`]: read-only connections of the backend's own, read on the calling thread, for
//!   the reads the API answers most often — a pipeline's rollups, a run's detail, pages of the
//!   newest runs, the open runs. Each is one statement bounded by an index and takes well under
//!   a millisecond, holding the runtime's thread no longer than serialising the answer does.
//!   Reads that can scan (lists of runs filtered by pipeline, status or trigger, which may walk
//!   far back for their matches; totals over many pipelines) stay with sqlx's reader threads.
//! - [`OwnWriter`]: a writer connection of the backend's own for the batches made only of the
//!   writes runs and pings are made of (runs inserted, started and ended, stages, checks'
//!   counts, with their rollups): the whole transaction on one blocking thread, its statements
//!   prepared once for the connection's life. sqlx's writer and this one take turns
//!   ([`super::connection::Writers`]), so neither waits for the other in SQLite's busy handler.
//! - [`lend`]: the same writes inside a transaction of sqlx's writer (a batch that also holds
//!   other writes), through its handle, lent while its thread waits: a statement per row,
//!   prepared once per batch.

// The C interface is the point of this module; every call says why it is sound.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::{NonNull, null, null_mut};
use std::sync::{Arc, Mutex};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::checkpoint::Checkpointer;
use crate::error::{Result, StoreError};

/// A value bound to a statement's parameter, in order from `?1`.
pub(super) enum Bind<'a> {
    Null,
    Text(&'a str),
    Int(i64),
}

impl<'a> Bind<'a> {
    pub(super) fn text_or_null(value: Option<&'a str>) -> Bind<'a> {
        value.map_or(Bind::Null, Bind::Text)
    }

    pub(super) fn int_or_null(value: Option<i64>) -> Bind<'a> {
        value.map_or(Bind::Null, Bind::Int)
    }
}

/// Connections kept open between reads; more are opened while that many are busy, and closed
/// after use.
const KEPT: usize = 4;

/// How long a connection waits for a lock, as sqlx's connections do: a reader only for a
/// checkpoint that resets the WAL, the own writer for another process's write transaction.
const BUSY_MS: c_int = 10_000;

fn c_path(path: &str) -> Result<CString> {
    CString::new(path).map_err(|_| StoreError::Database(format!("a NUL in the path {path:?}")))
}

pub(super) struct Readers {
    path: CString,
    idle: Mutex<Vec<Conn>>,
}

impl Readers {
    pub(super) fn new(path: &str) -> Result<Readers> {
        Ok(Readers {
            path: c_path(path)?,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The first column of the first row `sql` answers, as text; `None` without a row or when
    /// that value is NULL.
    pub(super) fn text(&self, sql: &str, binds: &[Bind]) -> Result<Option<String>> {
        self.with_conn(|conn| conn.statements.text(sql, binds))
    }

    /// Each of the first `max` rows `sql` answers, as `each` reads it.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        binds: &[Bind],
        max: usize,
        each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.with_conn(|conn| conn.statements.rows(sql, binds, max, each))
    }

    /// `read` on a kept connection, or a new one while all are busy.
    fn with_conn<T>(&self, read: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match kept {
            Some(conn) => conn,
            None => Conn::open(&self.path, false)?,
        };
        let answer = read(&mut conn);
        // A connection that failed is closed: whatever went wrong stays with it.
        if answer.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEPT {
                idle.push(conn);
            }
        }
        answer
    }

    /// Closes the connections kept (before the file is closed for good).
    pub(super) fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Statements prepared on one connection, each once, finalised when dropped (before their
/// connection closes).
struct Statements {
    db: NonNull<ffi::sqlite3>,
    prepared: HashMap<String, NonNull<ffi::sqlite3_stmt>>,
    flags: std::ffi::c_uint,
}

impl Statements {
    fn on(db: NonNull<ffi::sqlite3>, flags: std::ffi::c_uint) -> Statements {
        Statements {
            db,
            prepared: HashMap::new(),
            flags,
        }
    }

    fn get(&mut self, sql: &str) -> Result<NonNull<ffi::sqlite3_stmt>> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(*stmt);
        }
        let stmt = prepare(self.db, sql, self.flags)?;
        self.prepared.insert(sql.to_owned(), stmt);
        Ok(stmt)
    }

    /// Each of the first `max` rows `sql` answers, as `each` reads it.
    fn rows<T>(
        &mut self,
        sql: &str,
        binds: &[Bind],
        max: usize,
        each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let stmt = self.get(sql)?;
        run(self.db, stmt, binds, max, each)
    }

    /// The first column of the first row `sql` answers, as text; `None` without a row or when
    /// that value is NULL.
    fn text(&mut self, sql: &str, binds: &[Bind]) -> Result<Option<String>> {
        let first = self.rows(sql, binds, 1, |row| Ok(row.text(0)?.map(str::to_owned)))?;
        Ok(first.into_iter().next().flatten())
    }

    fn finalize(&mut self) {
        for (_, stmt) in self.prepared.drain() {
            // SAFETY: prepared here on `db`, which is still open, and finalised once.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
        }
    }
}

impl Drop for Statements {
    fn drop(&mut self) {
        self.finalize();
    }
}

/// An open connection of the backend's own and its statements, prepared once each.
pub(super) struct Conn {
    statements: Statements,
}

// SAFETY: a connection is opened with SQLITE_OPEN_NOMUTEX and used by one thread at a time: it
// is either kept idle (behind a mutex) or owned by the one read or write using it.
unsafe impl Send for Conn {}

impl Conn {
    /// Opens the file read-only, or for writing with the settings sqlx gives its writer.
    pub(super) fn open(path: &CStr, writable: bool) -> Result<Conn> {
        let flags = if writable {
            ffi::SQLITE_OPEN_READWRITE
        } else {
            ffi::SQLITE_OPEN_READONLY
        };
        let mut db = null_mut();
        // SAFETY: `path` is NUL-terminated and `db` receives the handle, which SQLite sets even
        // when opening fails (then it is closed below).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                path.as_ptr(),
                &raw mut db,
                flags | ffi::SQLITE_OPEN_NOMUTEX,
                null(),
            )
        };
        let Some(handle) = NonNull::new(db) else {
            return Err(StoreError::Database(
                "SQLite could not allocate a connection".into(),
            ));
        };
        let conn = Conn {
            statements: Statements::on(handle, ffi::SQLITE_PREPARE_PERSISTENT),
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(handle, "opening the database"));
        }
        // Plans that do not depend on the values bound (SQLite's "query planner stability
        // guarantee"): otherwise a statement whose plan may use a bound value (`LIMIT ?`, for
        // one) is marked expired at every bind and compiled again at every step, which `perf`
        // showed as a large share of a page of runs.
        // SAFETY: the handle is open; ENABLE_QPSG takes an int and an optional int pointer.
        let rc = unsafe {
            ffi::sqlite3_busy_timeout(db, BUSY_MS);
            ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_QPSG, 1, null_mut::<c_int>())
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(handle, "setting up a connection"));
        }
        conn.execute(c"PRAGMA cache_size = -512")?;
        if writable {
            // What sqlx's writer is opened with (`SqliteStore::open`); WAL is the file's already.
            conn.execute(c"PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")?;
        }
        Ok(conn)
    }

    pub(super) fn db(&self) -> NonNull<ffi::sqlite3> {
        self.statements.db
    }

    pub(super) fn execute(&self, sql: &CStr) -> Result<()> {
        // SAFETY: the handle is open and `sql` NUL-terminated; no callback, no error string.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db().as_ptr(),
                sql.as_ptr(),
                None,
                null_mut(),
                null_mut(),
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db(), "running a statement"))
        }
    }

    /// Whether a transaction is still open (after a failed COMMIT or ROLLBACK, say).
    fn in_transaction(&self) -> bool {
        // SAFETY: the handle is open; this only reads its state.
        unsafe { ffi::sqlite3_get_autocommit(self.db().as_ptr()) == 0 }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.statements.finalize();
        // SAFETY: the handle is this connection's, its statements finalised, closed once.
        unsafe { ffi::sqlite3_close(self.db().as_ptr()) };
    }
}

/// The writer connection of the backend's own (see the module's documentation), opened on
/// first use and kept; closed after a transaction it could not end, so nothing stays open. Its
/// commits leave checkpoints to `checkpoints`.
pub(super) struct OwnWriter {
    path: CString,
    conn: Mutex<Option<Conn>>,
    checkpoints: Arc<Checkpointer>,
}

impl OwnWriter {
    pub(super) fn new(path: &str, checkpoints: Arc<Checkpointer>) -> Result<OwnWriter> {
        Ok(OwnWriter {
            path: c_path(path)?,
            conn: Mutex::new(None),
            checkpoints,
        })
    }

    /// `work` in one write transaction (`BEGIN IMMEDIATE` … `COMMIT`), on the calling thread:
    /// call it where blocking is allowed, holding the turn to write.
    pub(super) fn transaction<T>(&self, work: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => {
                let conn = Conn::open(&self.path, true)?;
                self.checkpoints.watch(conn.db())?;
                conn
            }
        };
        let done = conn.execute(c"BEGIN IMMEDIATE").and_then(|()| {
            let answer = work(&mut Writer {
                statements: &mut conn.statements,
            })?;
            conn.execute(c"COMMIT")?;
            Ok(answer)
        });
        if done.is_err() && conn.in_transaction() {
            // A failed ROLLBACK leaves the transaction open: the connection is closed then.
            let _ = conn.execute(c"ROLLBACK");
        }
        if !conn.in_transaction() {
            *slot = Some(conn);
        }
        done
    }

    /// Closes the connection (before the file is closed for good).
    pub(super) fn close(&self) {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Writes through a connection's statements (see the module's documentation).
pub(super) struct Writer<'s> {
    statements: &'s mut Statements,
}

/// `work` through the handle of sqlx's writer, lent while its thread waits: inside whatever
/// transaction that connection is in. Its statements are finalised before the handle goes back.
pub(super) fn lend<T>(
    handle: &mut LockedSqliteHandle<'_>,
    work: impl FnOnce(&mut Writer) -> Result<T>,
) -> Result<T> {
    let mut statements = Statements::on(handle.as_raw_handle(), 0);
    work(&mut Writer {
        statements: &mut statements,
    })
}

impl Writer<'_> {
    /// Runs `sql` and says how many rows it changed; a foreign key that points nowhere is
    /// [`StoreError::NotFound`] of `what`.
    pub(super) fn execute(
        &mut self,
        sql: &str,
        binds: &[Bind],
        what: impl FnOnce() -> String,
    ) -> Result<u64> {
        let db = self.statements.db;
        match self.statements.rows(sql, binds, usize::MAX, |_| Ok(())) {
            Ok(_) => {
                // SAFETY: the handle is ours for now; this reads the last statement's count.
                let changed = unsafe { ffi::sqlite3_changes64(db.as_ptr()) };
                Ok(u64::try_from(changed).unwrap_or(0))
            }
            // SAFETY: the handle is ours for now; this reads the last error's code.
            Err(_)
                if unsafe { ffi::sqlite3_extended_errcode(db.as_ptr()) }
                    == ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
            {
                Err(StoreError::NotFound(what()))
            }
            Err(e) => Err(e),
        }
    }

    /// Each row `sql` answers, as `each` reads it.
    pub(super) fn rows<T>(
        &mut self,
        sql: &str,
        binds: &[Bind],
        each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.statements.rows(sql, binds, usize::MAX, each)
    }

    /// The first column of the first row `sql` answers, as text; `None` without a row or when
    /// that value is NULL.
    pub(super) fn text(&mut self, sql: &str, binds: &[Bind]) -> Result<Option<String>> {
        self.statements.text(sql, binds)
    }
}

fn prepare(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    flags: std::ffi::c_uint,
) -> Result<NonNull<ffi::sqlite3_stmt>> {
    let len = c_int::try_from(sql.len())
        .map_err(|_| StoreError::Database("a statement too long".into()))?;
    let mut stmt = null_mut();
    // SAFETY: `sql` is valid for `len` bytes; `stmt` receives the statement.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db.as_ptr(),
            sql.as_ptr().cast::<c_char>(),
            len,
            flags,
            &raw mut stmt,
            null_mut(),
        )
    };
    match NonNull::new(stmt) {
        Some(stmt) if rc == ffi::SQLITE_OK => Ok(stmt),
        _ => Err(error(db, "preparing a statement")),
    }
}

/// Binds `binds` to `stmt`, steps it through its first `max` rows (each read by `each`), and
/// resets it: a read ends there, so a connection holds no snapshot between statements.
fn run<T>(
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    binds: &[Bind],
    max: usize,
    each: impl FnMut(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let answer = bind_and_step(db, stmt, binds, max, each);
    // SAFETY: the statement is live and belongs to `db`.
    unsafe {
        ffi::sqlite3_reset(stmt.as_ptr());
        ffi::sqlite3_clear_bindings(stmt.as_ptr());
    }
    answer
}

fn bind_and_step<T>(
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    binds: &[Bind],
    max: usize,
    mut each: impl FnMut(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    for (i, bind) in binds.iter().enumerate() {
        let at = c_int::try_from(i + 1).unwrap_or(c_int::MAX);
        // SAFETY: the statement is live; SQLITE_TRANSIENT makes SQLite copy the text.
        let rc = unsafe {
            match bind {
                Bind::Text(text) => ffi::sqlite3_bind_text(
                    stmt.as_ptr(),
                    at,
                    text.as_ptr().cast::<c_char>(),
                    c_int::try_from(text.len()).unwrap_or(c_int::MAX),
                    ffi::SQLITE_TRANSIENT(),
                ),
                Bind::Int(n) => ffi::sqlite3_bind_int64(stmt.as_ptr(), at, *n),
                Bind::Null => ffi::sqlite3_bind_null(stmt.as_ptr(), at),
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, "binding a value"));
        }
    }
    let mut answer = Vec::new();
    while answer.len() < max {
        // SAFETY: the statement is live and bound.
        match unsafe { ffi::sqlite3_step(stmt.as_ptr()) } {
            ffi::SQLITE_ROW => answer.push(each(&Row { stmt })?),
            ffi::SQLITE_DONE => break,
            _ => return Err(error(db, "running a statement")),
        }
    }
    Ok(answer)
}

/// The connection's last error, as the store reports database errors: one that says the
/// database cannot write (full, read-only, I/O) is [`StoreError::CannotWrite`].
pub(super) fn error(db: NonNull<ffi::sqlite3>, doing: &str) -> StoreError {
    // SAFETY: the handle is open (or failed to open, which still carries its message); the
    // message is copied before any other call.
    let (code, message) = unsafe {
        (
            ffi::sqlite3_extended_errcode(db.as_ptr()),
            CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr()))
                .to_string_lossy()
                .into_owned(),
        )
    };
    let text = format!("{doing}: (code: {code}) {message}");
    if matches!(
        code & 0xff,
        ffi::SQLITE_READONLY | ffi::SQLITE_IOERR | ffi::SQLITE_FULL
    ) {
        StoreError::CannotWrite(text)
    } else {
        StoreError::Database(text)
    }
}

/// The row a statement stands on. Borrowed only while `each` of [`Readers::rows`] reads it:
/// what it hands out lives no longer than the borrow, and the next step or reset comes after.
pub(super) struct Row {
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Row {
    /// Column `i` as text (SQLite turns a number into its text), `None` when NULL.
    pub(super) fn text(&self, i: c_int) -> Result<Option<&str>> {
        // SAFETY: the row is current; the text stays valid until the next step or reset, which
        // only come once this borrow of the row has ended.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            if p.is_null() {
                return Ok(None);
            }
            let len =
                usize::try_from(ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i)).unwrap_or(0);
            std::slice::from_raw_parts(p, len)
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Database(format!("a read answered non-UTF-8: {e}")))
    }

    /// Column `i` as an integer, `None` when NULL.
    pub(super) fn int(&self, i: c_int) -> Option<i64> {
        // SAFETY: the row is current; reading a column's type and value has no other effect
        // than converting the value, which a NULL check before makes moot.
        unsafe {
            (ffi::sqlite3_column_type(self.stmt.as_ptr(), i) != ffi::SQLITE_NULL)
                .then(|| ffi::sqlite3_column_int64(self.stmt.as_ptr(), i))
        }
    }
}
