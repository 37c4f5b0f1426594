//! The system calls the standard library does not offer: waiting for a child with its
//! resource usage (`wait4`), signalling a whole process group (`killpg`), and a filesystem's
//! free space (`statvfs`). The only unsafe code in plantao; each call's contract is stated
//! where it is made.
#![allow(unsafe_code)]

use std::io;

/// How a child ended, and what it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reaped {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    pub cpu_user_ms: i64,
    pub cpu_system_ms: i64,
    /// Peak resident set size, in KiB (Linux reports `ru_maxrss` in KiB).
    pub peak_rss_kb: i64,
}

/// Blocks until the child `pid` ends, reaps it and returns its status and resource usage.
// time_t, suseconds_t and c_long are i64 here but not on every target.
#[allow(clippy::useless_conversion)]
pub(crate) fn wait4(pid: u32) -> io::Result<Reaped> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the call; `pid` names
        // a child of this process that nothing else waits for (the runner owns its reaping).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let ms = |t: libc::timeval| i64::from(t.tv_sec) * 1000 + i64::from(t.tv_usec) / 1000;
    Ok(Reaped {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        cpu_user_ms: ms(usage.ru_utime),
        cpu_system_ms: ms(usage.ru_stime),
        peak_rss_kb: i64::from(usage.ru_maxrss),
    })
}

/// Sends `signal` to every process of the group `pgid`; a group that is already gone is fine.
pub(crate) fn killpg(pgid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg takes plain integers and has no memory effects; a missing group gives
    // ESRCH, which is the wanted outcome anyway.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

pub(crate) const SIGTERM: i32 = libc::SIGTERM;
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// The bytes free (to an unprivileged user) and in all on the filesystem holding `path`.
// fsblkcnt_t and c_ulong are u64 here but not on every target.
#[allow(clippy::useless_conversion)]
pub(crate) fn statvfs(path: &std::path::Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid, writable struct, both live for the
    // call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let block = u64::from(s.f_frsize);
    Ok((
        u64::from(s.f_bavail).saturating_mul(block),
        u64::from(s.f_blocks).saturating_mul(block),
    ))
}
