//! A step's log, bounded: the first and the last bytes are kept, with a marker saying how much
//! was cut between them, so a step printing a gigabyte costs a fixed amount of memory.

use std::collections::VecDeque;

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

    pub fn finish(self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_logs_are_kept_whole() {
        let mut log = BoundedLog::new(100);
        log.push(b"hello ");
        log.push(b"world");
        assert_eq!(log.finish(), "hello world");
    }

    #[test]
    fn long_logs_keep_head_and_tail_with_a_marker() {
        let mut log = BoundedLog::new(2048);
        for i in 0..10_000 {
            log.push(format!("line {i}\n").as_bytes());
        }
        let text = log.finish();
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
            log.finish(),
            "01234\n[… 10 bytes cut: the log keeps its first and last 0 KiB …]\nfghij"
        );
    }
}
