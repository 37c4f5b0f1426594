//! One attempt of a `run` or `argv` step: a real process in its own process group, its output
//! captured (stdout and stderr interleaved) into a bounded log, its time limit enforced on the
//! whole group, its CPU time and peak memory read from the kernel when it is reaped.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::attempt::{StopSignal, cancelled};
use super::log::LiveLog;
use super::sys::{self, Reaped, SIGKILL, SIGTERM};

/// How long a process group gets between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// Why an attempt was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    TimedOut,
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct Finished {
    pub reaped: Reaped,
    pub stopped: Option<Stopped>,
    pub log: String,
}

/// Starts `command` in a process group of its own, its output (stdout and stderr) into a pipe:
/// the pipe's reading end and the process's id.
fn start(mut command: Command) -> std::io::Result<(std::io::PipeReader, u32)> {
    let (reader, writer) = std::io::pipe()?;
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let child = command.spawn()?;
    // The command holds our copies of the pipe's write end: drop it so the reader sees the end
    // of output once the group's processes are gone.
    drop(command);
    Ok((reader, child.id()))
}

/// Runs `command` to its end, or until `limit` passes or `cancel` turns true; then the whole
/// process group is stopped. Either way no process of the group is left behind.
pub(crate) async fn run(
    command: Command,
    limit: Option<Duration>,
    cancel: StopSignal,
    live: LiveLog,
) -> std::io::Result<Finished> {
    // Started on a blocking thread, which then reads its output: `spawn` holds the calling
    // thread until the child has called exec, which must not stall the runtime's workers (the
    // scheduler's wake-up at a due instant shares them).
    let (started, pid) = tokio::sync::oneshot::channel();
    let pushed = live.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let mut reader = match start(command) {
            Ok((reader, pid)) => {
                if started.send(Ok(pid)).is_err() {
                    // The caller gave up while it started: nothing else will stop the group.
                    sys::killpg(pid, SIGKILL);
                    let _ = sys::wait4(pid);
                    return;
                }
                reader
            }
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => pushed.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    let pid = pid.await.map_err(std::io::Error::other)??;
    // Should this future be dropped before the end (its caller gave up), the group goes too.
    let guard = KillOnDrop(pid);

    let mut waiting = tokio::task::spawn_blocking(move || sys::wait4(pid));

    let deadline = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = cancelled(cancel);
    let (reaped, stopped) = tokio::select! {
        r = &mut waiting => (r, None),
        () = deadline => (stop(pid, &mut waiting).await, Some(Stopped::TimedOut)),
        () = cancelled => (stop(pid, &mut waiting).await, Some(Stopped::Cancelled)),
    };
    let reaped = reaped.map_err(std::io::Error::other)??;
    // The leader is gone; whatever it left running in its group goes too.
    sys::killpg(pid, SIGTERM);
    let mut reading = reading;
    let log = match tokio::time::timeout(KILL_GRACE, &mut reading).await {
        Ok(log) => log,
        Err(_) => {
            sys::killpg(pid, SIGKILL);
            tokio::time::timeout(KILL_GRACE, &mut reading).await.map_err(|_| {
                std::io::Error::other(
                    "a process of the step kept its output open after SIGKILL (it left the process group)",
                )
            })?
        }
    };
    log.map_err(std::io::Error::other)?;
    let log = live.snapshot().1;
    std::mem::forget(guard);
    Ok(Finished {
        reaped,
        stopped,
        log,
    })
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        sys::killpg(self.0, SIGKILL);
    }
}

/// SIGTERM to the group, SIGKILL after the grace, and the leader's reaping.
async fn stop(
    pid: u32,
    waiting: &mut tokio::task::JoinHandle<std::io::Result<Reaped>>,
) -> Result<std::io::Result<Reaped>, tokio::task::JoinError> {
    sys::killpg(pid, SIGTERM);
    match tokio::time::timeout(KILL_GRACE, &mut *waiting).await {
        Ok(r) => r,
        Err(_) => {
            sys::killpg(pid, SIGKILL);
            waiting.await
        }
    }
}
