//! A step's log, bounded: the first and the last bytes are kept, with a marker saying how much
//! was cut between them, so a step printing a gigabyte costs a fixed amount of memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The default bound of a stage's stored log.
pub const DEFAULT_LOG_LIMIT: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct BoundedLog {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half: usize,
    total: u64,
}

impl BoundedLog {
    pub fn new(limit: usize) -> Self {
        let half = (limit / 2).max(1);
        BoundedLog {
            head: Vec::new(),
            tail: VecDeque::new(),
            half,
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.half {
            let take = bytes.len().min(self.half - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// How many bytes were pushed, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The log as stored: head, a marker for what was cut, tail.
    pub fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            out.push_str(&format!(
                "\n[… {} bytes cut: the log keeps its first and last {} KiB …]\n",
                self.total - kept,
                self.half / 1024
            ));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// The log of a process still running: its reader pushes, the runner takes snapshots to
/// record while the stage runs, so `plantao logs -f` and the API can follow it.
#[derive(Clone, Debug)]
pub(crate) struct LiveLog(Arc<Mutex<BoundedLog>>);

impl LiveLog {
    pub fn new(limit: usize) -> Self {
        LiveLog(Arc::new(Mutex::new(BoundedLog::new(limit))))
    }

    pub fn push(&self, bytes: &[u8]) {
        self.lock().push(bytes);
    }

    /// The bytes pushed so far and the log as it stands.
    pub fn snapshot(&self) -> (u64, String) {
        let log = self.lock();
        (log.total(), log.render())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedLog> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_logs_are_kept_whole() {
        let mut log = BoundedLog::new(100);
        log.push(b"hello ");
        log.push(b"world");
        assert_eq!(log.render(), "hello world");
    }

    #[test]
    fn long_logs_keep_head_and_tail_with_a_marker() {
        let mut log = BoundedLog::new(2048);
        for i in 0..10_000 {
            log.push(format!("line {i}\n").as_bytes());
        }
        let text = log.render();
        assert!(text.starts_with("line 0\nline 1\n"), "{}", &text[..50]);
        assert!(text.ends_with("line 9999\n"));
        assert!(text.contains("bytes cut"));
        assert!(text.len() < 2048 + 200);
    }

    #[test]
    fn one_huge_write_keeps_its_end() {
        let mut log = BoundedLog::new(10);
        log.push(b"0123456789abcdefghij");
        assert_eq!(
            log.render(),
            "01234\n[… 10 bytes cut: the log keeps its first and last 0 KiB …]\nfghij"
        );
    }
}
