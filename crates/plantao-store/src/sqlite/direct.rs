//! Reads run on the calling thread: read-only SQLite connections of the backend's own, driven
//! through SQLite's C interface, for the reads the API answers most often — a pipeline's
//! rollups, a run's detail, and pages of the newest runs.
//!
//! Why: sqlx gives each SQLite connection a thread of its own and hands every statement to it
//! and back. On two cores that hand-off (a futex wake and a thread switch each way) was a third
//! of the process's CPU under `plantao bench api`. These reads are one statement each, bounded
//! by an index (one pipeline's buckets in a range, one run's rows) and take well under a
//! millisecond, so running them where the request runs costs less than handing them over, and
//! holds the runtime's thread no longer than serialising the answer does. Reads that can scan
//! (lists of runs filtered by pipeline, status or trigger, which may walk far back for their
//! matches; totals over many pipelines) and every write stay with sqlx.

// The C interface is the point of this module; every call says why it is sound.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::{NonNull, null, null_mut};
use std::sync::Mutex;

use libsqlite3_sys as ffi;

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
}

/// Connections kept open between reads; more are opened while that many are busy, and closed
/// after use.
const KEPT: usize = 4;

/// How long a read waits for a lock (only a checkpoint that resets the WAL takes one readers
/// wait for), as sqlx's connections do.
const BUSY_MS: c_int = 10_000;

pub(super) struct Readers {
    path: CString,
    idle: Mutex<Vec<Conn>>,
}

impl Readers {
    pub(super) fn new(path: &str) -> Result<Readers> {
        Ok(Readers {
            path: CString::new(path)
                .map_err(|_| StoreError::Database(format!("a NUL in the path {path:?}")))?,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The first column of the first row `sql` answers, as text; `None` without a row or when
    /// that value is NULL.
    pub(super) fn text(&self, sql: &str, binds: &[Bind]) -> Result<Option<String>> {
        let first = self.rows(sql, binds, 1, |row| Ok(row.text(0)?.map(str::to_owned)))?;
        Ok(first.into_iter().next().flatten())
    }

    /// Each of the first `max` rows `sql` answers, as `each` reads it.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        binds: &[Bind],
        max: usize,
        each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match kept {
            Some(conn) => conn,
            None => Conn::open(&self.path)?,
        };
        let answer = conn.rows(sql, binds, max, each);
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

/// An open connection and its statements, prepared once each.
struct Conn {
    db: NonNull<ffi::sqlite3>,
    statements: HashMap<String, NonNull<ffi::sqlite3_stmt>>,
}

// SAFETY: a connection is opened with SQLITE_OPEN_NOMUTEX and used by one thread at a time: it
// is either in `Readers::idle` or owned by the one read using it.
unsafe impl Send for Conn {}

impl Conn {
    fn open(path: &CStr) -> Result<Conn> {
        let mut db = null_mut();
        // SAFETY: `path` is NUL-terminated and `db` receives the handle, which SQLite sets even
        // when opening fails (then it is closed below).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                path.as_ptr(),
                &raw mut db,
                ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX,
                null(),
            )
        };
        let Some(handle) = NonNull::new(db) else {
            return Err(StoreError::Database(
                "SQLite could not allocate a connection".into(),
            ));
        };
        let conn = Conn {
            db: handle,
            statements: HashMap::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error("opening the database"));
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
            return Err(conn.error("setting up a reader"));
        }
        conn.execute(c"PRAGMA cache_size = -512")?;
        Ok(conn)
    }

    fn execute(&self, sql: &CStr) -> Result<()> {
        // SAFETY: the handle is open and `sql` NUL-terminated; no callback, no error string.
        let rc = unsafe {
            ffi::sqlite3_exec(self.db.as_ptr(), sql.as_ptr(), None, null_mut(), null_mut())
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error("setting up a reader"))
        }
    }

    fn statement(&mut self, sql: &str) -> Result<NonNull<ffi::sqlite3_stmt>> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(*stmt);
        }
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Database("a statement too long".into()))?;
        let mut stmt = null_mut();
        // SAFETY: `sql` is valid for `len` bytes; `stmt` receives the statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &raw mut stmt,
                null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => {
                self.statements.insert(sql.to_owned(), stmt);
                Ok(stmt)
            }
            _ => Err(self.error("preparing a read")),
        }
    }

    fn rows<T>(
        &mut self,
        sql: &str,
        binds: &[Bind],
        max: usize,
        each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let stmt = self.statement(sql)?;
        let answer = self.step(stmt, binds, max, each);
        // SAFETY: the statement is this connection's; resetting ends its read, so the
        // connection holds no snapshot between reads.
        unsafe {
            ffi::sqlite3_reset(stmt.as_ptr());
            ffi::sqlite3_clear_bindings(stmt.as_ptr());
        }
        answer
    }

    fn step<T>(
        &self,
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
                return Err(self.error("binding a value"));
            }
        }
        let mut answer = Vec::new();
        while answer.len() < max {
            // SAFETY: the statement is live and bound.
            match unsafe { ffi::sqlite3_step(stmt.as_ptr()) } {
                ffi::SQLITE_ROW => answer.push(each(&Row { stmt })?),
                ffi::SQLITE_DONE => break,
                _ => return Err(self.error("reading")),
            }
        }
        Ok(answer)
    }

    /// The connection's last error, as the store reports database errors.
    fn error(&self, doing: &str) -> StoreError {
        // SAFETY: the handle is open (or failed to open, which still carries its message); the
        // message is copied before any other call.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        StoreError::Database(format!("{doing}: {}", message.to_string_lossy()))
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

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: the statements and then the handle are this connection's, finalised and
        // closed once.
        unsafe {
            for stmt in self.statements.values() {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}
