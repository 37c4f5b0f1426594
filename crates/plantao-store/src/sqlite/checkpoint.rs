//! Checkpoints off the writers' path.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that makes the WAL reach 1,000 pages:
//! that writer copies the pages into the database file and syncs both files while every other
//! write of the process waits for its turn. Under `plantao bench pings` that was 8 % of the
//! process's CPU and a stall of about 4 ms every few hundred transactions, on the one path that
//! writes. So the writers' connections do not checkpoint: a hook on each says when its commits
//! added [`COPY_EVERY`] pages to the WAL since the last checkpoint, and the [`Checkpointer`]'s
//! thread copies them into the file on its own connection while the writers go on appending
//! (SQLite's PASSIVE mode never blocks them).
//!
//! SQLite only starts the WAL over (instead of growing it) when a write begins after everything
//! in it was copied, and writers that appended during the copy leave a tail. So once the WAL
//! holds [`RESTART_AT`] pages, the thread copies that tail holding the process's turn to write
//! ([`super::connection::Writers`]) and starts the WAL over (RESTART mode): a stall of two
//! syncs and a few pages, once for every four copies. Restarting at every copy stalled the
//! writers four times as often (p99 of the pings 7.2 ms against 4.8 ms); copying only once the
//! WAL is that long made each copy, and its tail, four times longer (p99 9–10 ms).

// The C interface again (see `direct`); every call says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr::{NonNull, null, null_mut};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use libsqlite3_sys as ffi;

use super::direct::{Conn, error};
use crate::error::{Result, StoreError};

/// Pages added to the WAL since the last checkpoint that call for the next: SQLite's own
/// default.
const COPY_EVERY: c_int = 1000;
/// The WAL's length, in pages, from which a checkpoint also starts it over (16 MiB with pages of
/// 4 KiB).
const RESTART_AT: c_int = 4000;

/// How long a restart waits for readers (each takes well under a millisecond) and another
/// program's writer: the writers of this process wait as long, and a long read in another
/// program must not stop them.
const RESTART_WAIT_MS: c_int = 20;

/// The name the hook's [`Signal`] is kept under on a connection (SQLite's client data).
const CLIENT_DATA: &std::ffi::CStr = c"plantao.checkpoints";

/// What the writers' hooks tell the checkpointer's thread.
pub(super) struct Signal {
    state: Mutex<State>,
    wake: Condvar,
    /// The WAL's length, in pages, at the last checkpoint (0 once started over).
    copied: AtomicI32,
}

#[derive(Default)]
struct State {
    due: bool,
    stop: bool,
}

impl Signal {
    fn set(&self, apply: impl FnOnce(&mut State)) {
        apply(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_one();
    }

    /// Waits until a checkpoint is due (true) or the checkpointer stops (false).
    fn wait(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.due && !state.stop {
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.due = false;
        !state.stop
    }
}

/// The thread that checkpoints the file's WAL, and how to wake it.
pub(super) struct Checkpointer {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread; its connection is opened at the first checkpoint. `turn` is the
    /// process's turn to write.
    pub(super) fn start(path: &str, turn: Arc<tokio::sync::Mutex<()>>) -> Result<Checkpointer> {
        let path = CString::new(path)
            .map_err(|_| StoreError::Database(format!("a NUL in the path {path:?}")))?;
        let signal = Arc::new(Signal {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            copied: AtomicI32::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("plantao-checkpoint".into())
            .spawn({
                let signal = signal.clone();
                move || checkpoints(&path, &signal, &turn)
            })
            .map_err(|e| {
                StoreError::Database(format!("cannot start the checkpoints' thread: {e}"))
            })?;
        Ok(Checkpointer {
            signal,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Makes the writer connection `db` wake the thread when its commits have added
    /// [`COPY_EVERY`] pages to the WAL, instead of checkpointing itself.
    pub(super) fn watch(&self, db: NonNull<ffi::sqlite3>) -> Result<()> {
        let ctx = Arc::into_raw(self.signal.clone())
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `db` is an open connection used by this thread alone for now. The client data
        // owns one count of the signal and gives it back when the connection closes (or at
        // once, if SQLite cannot store it); the hook borrows it, so it is live at every call.
        let rc = unsafe {
            let rc =
                ffi::sqlite3_set_clientdata(db.as_ptr(), CLIENT_DATA.as_ptr(), ctx, Some(release));
            if rc == ffi::SQLITE_OK {
                ffi::sqlite3_wal_hook(db.as_ptr(), Some(wal_grew), ctx);
            }
            rc
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(db, "watching the WAL"))
        }
    }

    /// Stops the thread once its checkpoint, if one is running, is done.
    pub(super) fn stop(&self) {
        self.signal.set(|s| s.stop = true);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.set(|s| s.stop = true);
    }
}

/// The hook SQLite calls after each commit of a watched connection, with the WAL's length.
unsafe extern "C" fn wal_grew(
    ctx: *mut c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const c_char,
    pages: c_int,
) -> c_int {
    // SAFETY: `ctx` is the signal the connection's client data keeps alive (`watch`).
    let signal = unsafe { &*ctx.cast::<Signal>() };
    // Shorter than at the last checkpoint: the WAL started over since (another program's
    // write may do that too).
    let copied = signal.copied.load(Ordering::Relaxed);
    let added = if pages < copied {
        pages
    } else {
        pages - copied
    };
    if added >= COPY_EVERY {
        signal.set(|s| s.due = true);
    }
    ffi::SQLITE_OK
}

/// Gives back the count of the signal a connection's client data held.
unsafe extern "C" fn release(ctx: *mut c_void) {
    // SAFETY: `ctx` came from `Arc::into_raw` in `watch`, and SQLite calls this once for it.
    drop(unsafe { Arc::from_raw(ctx.cast::<Signal>()) });
}

/// The thread's loop: a checkpoint each time one is due, until stopped.
fn checkpoints(path: &std::ffi::CStr, signal: &Signal, turn: &tokio::sync::Mutex<()>) {
    let mut conn: Option<Conn> = None;
    let mut failing = false;
    while signal.wait() {
        let done = match conn.take() {
            Some(open) => Ok(open),
            None => Conn::open(path, true).inspect(|open| {
                // SAFETY: the connection is open and this thread's.
                unsafe { ffi::sqlite3_busy_timeout(open.db().as_ptr(), RESTART_WAIT_MS) };
            }),
        }
        .and_then(|open| copy(conn.insert(open), turn));
        if let Ok(Some(length)) = done {
            signal.copied.store(length, Ordering::Relaxed);
        }
        // Commits during the checkpoint asked for this one; the next asks anew.
        signal.state.lock().unwrap_or_else(|e| e.into_inner()).due = false;
        match done {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("SQLite's checkpoints work again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite could not checkpoint its WAL; it keeps growing until a checkpoint can be made");
            }
            Err(_) => {}
        }
    }
}

/// Copies the WAL into the file while writers go on; once it is [`RESTART_AT`] long, also the
/// tail they wrote meanwhile, holding the turn to write, and starts it over. Answers the WAL's
/// length at the end, or `None` when another connection was checkpointing.
fn copy(conn: &Conn, turn: &tokio::sync::Mutex<()>) -> Result<Option<c_int>> {
    let length = checkpoint(conn, ffi::SQLITE_CHECKPOINT_PASSIVE)?;
    if length.is_none_or(|pages| pages < RESTART_AT) {
        return Ok(length);
    }
    // The pages written during that copy, still without the turn: what is left is shorter.
    let length = checkpoint(conn, ffi::SQLITE_CHECKPOINT_PASSIVE)?;
    let _turn = turn.blocking_lock();
    Ok(checkpoint(conn, ffi::SQLITE_CHECKPOINT_RESTART)?.map_or(length, |_| Some(0)))
}

/// One checkpoint in `mode`: the WAL's length, or `None` when it could not be made now —
/// another connection was checkpointing, or (RESTART) a reader or another program's writer was
/// still busy after [`RESTART_WAIT_MS`]; the next checkpoint tries again.
fn checkpoint(conn: &Conn, mode: c_int) -> Result<Option<c_int>> {
    let mut length = 0;
    // SAFETY: the connection is open and this thread's; the WAL's length is written on return.
    let rc = unsafe {
        ffi::sqlite3_wal_checkpoint_v2(
            conn.db().as_ptr(),
            null(),
            mode,
            &raw mut length,
            null_mut(),
        )
    };
    match rc {
        ffi::SQLITE_OK => Ok(Some(length)),
        ffi::SQLITE_BUSY => Ok(None),
        _ => Err(error(conn.db(), "checkpointing the WAL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAL's checkpoint sequence number, from its header: SQLite adds one each time the
    /// WAL starts over.
    fn restarts(wal: &std::path::Path) -> u32 {
        let header = std::fs::read(wal).expect("the WAL is there");
        u32::from_be_bytes(header[12..16].try_into().expect("a WAL header"))
    }

    /// A database in a folder of its own, its checkpointer (stopped at once unless `running`),
    /// the turn to write, and a writer connection it watches, on a table of blobs.
    struct Fixture {
        dir: tempfile::TempDir,
        turn: Arc<tokio::sync::Mutex<()>>,
        checkpoints: Checkpointer,
        conn: Conn,
    }

    impl Fixture {
        fn new(running: bool) -> Fixture {
            let dir = tempfile::tempdir().expect("a folder");
            let path = dir.path().join("t.db").display().to_string();
            let turn = Arc::new(tokio::sync::Mutex::new(()));
            let checkpoints = Checkpointer::start(&path, turn.clone()).expect("started");
            if !running {
                checkpoints.stop();
            }
            // An empty file is an empty database.
            std::fs::File::create(&path).expect("created");
            let conn = Conn::open(&CString::new(path).expect("a path"), true).expect("opened");
            conn.execute(c"PRAGMA journal_mode = WAL; CREATE TABLE t (b BLOB NOT NULL)")
                .expect("set up");
            checkpoints.watch(conn.db()).expect("watched");
            Fixture {
                dir,
                turn,
                checkpoints,
                conn,
            }
        }

        /// Writes about 10 pages in one transaction, holding the turn as the store's writers
        /// do.
        fn write(&self) {
            let _turn = self.turn.blocking_lock();
            self.conn
                .execute(c"INSERT INTO t VALUES (zeroblob(40000))")
                .expect("written");
        }

        fn wal(&self) -> std::path::PathBuf {
            self.dir.path().join("t.db-wal")
        }
    }

    #[test]
    fn watched_writers_leave_checkpoints_to_the_thread() {
        let db = Fixture::new(false);
        for _ in 0..600 {
            db.write();
        }
        // 6,000 pages and more, and the WAL never started over: with the thread stopped,
        // nothing checkpointed (SQLite's own checkpoint would have, at 1,000 pages).
        assert_eq!(restarts(&db.wal()), 0);
        let wal = std::fs::metadata(db.wal()).expect("the WAL");
        assert!(wal.len() > 6000 * 4096, "{} bytes", wal.len());
    }

    #[test]
    fn the_thread_copies_the_wal_and_starts_it_over() {
        let db = Fixture::new(true);
        let path = db.dir.path().join("t.db").display().to_string();
        // Reads all along, as the API's and the ping writer's are: with them, and writes that
        // never pause, SQLite alone starts the WAL over too seldom (the pings' benchmark saw it
        // reach 500 MB in 10 s); the thread's last copy, holding the turn, is what does it.
        let reading = std::sync::atomic::AtomicBool::new(true);
        let mut rows = 0;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let readers = super::super::direct::Readers::new(&path).expect("readers");
                while reading.load(Ordering::Relaxed) {
                    readers.text("SELECT count(*) FROM t", &[]).expect("read");
                }
            });
            // Writing on until the WAL starts over; the thread works beside, so how soon is
            // not known: a minute is far more than it needs.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while restarts(&db.wal()) == 0 && std::time::Instant::now() < deadline {
                db.write();
                rows += 1;
            }
            reading.store(false, Ordering::Relaxed);
        });
        assert!(restarts(&db.wal()) > 0, "no restart after {rows} rows");
        db.checkpoints.stop();
        let Fixture { dir, conn, .. } = db;
        drop(conn);
        // Everything written is there, read from a fresh connection.
        let count =
            super::super::direct::Readers::new(&dir.path().join("t.db").display().to_string())
                .and_then(|readers| readers.text("SELECT count(*) FROM t", &[]))
                .expect("counted");
        assert_eq!(count, Some(rows.to_string()));
    }
}
