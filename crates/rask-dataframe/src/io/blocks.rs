//! Cutting CSV files into blocks at line boundaries.
//!
//! A file is split into byte ranges of about `blocksize` bytes when the graph is built, without
//! reading it (the reading side is `polars_adapter::csv::block_lines`). The task for a range decides which lines are its own by one rule: **a line
//! belongs to the block in which its first byte lies.** So a task reads its range plus the
//! rest of the line that crosses its end, and skips the partial line at its start (the
//! previous block owns it). Every line is read exactly once, whatever the block size.
//!
//! The rule is only wrong for line breaks inside quoted fields; [`quoted_newline`] finds them
//! in a sample so that reading can refuse to split such files (reading each file whole is
//! always right).

use serde::{Deserialize, Serialize};

/// One block of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte of the range (lines that start here or later belong to the block).
    pub start: u64,
    /// End of the range (lines that start here or later belong to the next block).
    pub end: u64,
}

/// Splits a file of `size` bytes into ranges of about `blocksize` bytes (one range for the
/// whole file when `blocksize` is `None`, and for empty files).
pub fn split(size: u64, blocksize: Option<u64>) -> Vec<ByteRange> {
    match blocksize {
        Some(blocksize) if blocksize > 0 && size > blocksize => {
            let count = size.div_ceil(blocksize);
            (0..count)
                .map(|i| ByteRange { start: i * blocksize, end: ((i + 1) * blocksize).min(size) })
                .collect()
        }
        _ => vec![ByteRange { start: 0, end: size }],
    }
}

/// How many bytes past `range.end` a task reads at first to find the end of the crossing line
/// (it reads more when a line is longer).
pub const LINE_OVERREAD: u64 = 64 * 1024;

/// The offset just after the header line in `sample` (the file's first bytes), or the sample's
/// length when it holds no complete line.
pub fn header_end(sample: &[u8]) -> u64 {
    sample.iter().position(|&b| b == b'\n').map_or(sample.len(), |p| p + 1) as u64
}

/// The offset of the first line break inside a quoted field in `sample`, if any.
pub fn quoted_newline(sample: &[u8], quote: u8) -> Option<u64> {
    let mut quoted = false;
    for (offset, &byte) in sample.iter().enumerate() {
        if byte == quote {
            // A doubled quote inside a quoted field toggles twice: no net change.
            quoted = !quoted;
        } else if byte == b'\n' && quoted {
            return Some(offset as u64);
        }
    }
    None
}

/// Bytes of the window a block's lines are read through: small enough to stay in cache, and
/// reused by each thread, so reading a block neither copies it into fresh memory nor holds it.
pub const WINDOW_BYTES: usize = 4 << 20;

thread_local! {
    static WINDOW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hands `visit` the bytes `start..end` of a local file as runs of whole lines (reading
/// `window_bytes` at a time) (the last run
/// may end without a line break at the end of the range), through this thread's reused window;
/// `visit` returns `false` to stop early. Returns whether it read to the end.
pub fn visit_lines(
    path: &std::path::Path,
    start: u64,
    end: u64,
    window_bytes: usize,
    mut visit: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut file = file.take(end.saturating_sub(start));
    WINDOW.with_borrow_mut(|window| {
        if window.len() != window_bytes.max(1) {
            // New, or grown for a line longer than the window last time.
            *window = vec![0; window_bytes.max(1)];
        }
        let mut filled = 0;
        loop {
            if filled == window.len() {
                window.resize(window.len() * 2, 0); // a line longer than the window
            }
            let read = file.read(&mut window[filled..])?;
            filled += read;
            let at_end = read == 0;
            let cut = if at_end {
                filled
            } else {
                match memchr::memrchr(b'\n', &window[..filled]) {
                    Some(last) => last + 1,
                    None => continue,
                }
            };
            if cut > 0 && !visit(&window[..cut]) {
                return Ok(false);
            }
            window.copy_within(cut..filled, 0);
            filled -= cut;
            if at_end {
                return Ok(true);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_file_and_a_missing_size_gives_one_block() {
        assert_eq!(split(10, Some(4)).len(), 3);
        assert_eq!(split(10, Some(4)).last().unwrap().end, 10);
        assert_eq!(split(10, None), vec![ByteRange { start: 0, end: 10 }]);
        assert_eq!(split(0, Some(4)), vec![ByteRange { start: 0, end: 0 }]);
    }

    #[test]
    fn line_breaks_in_quotes_are_found() {
        assert_eq!(quoted_newline(b"a,b\n1,\"x\ny\"\n", b'"'), Some(8));
        assert_eq!(quoted_newline(b"a,b\n1,\"x\"\"y\"\n", b'"'), None);
    }

    #[test]
    fn lines_are_visited_whole_through_any_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.csv");
        let text = "a,b\n1,22\n333,4444\n55555,666666\n7";
        std::fs::write(&path, text).unwrap();
        for window in 1..=text.len() + 1 {
            for (start, end) in [(0, text.len()), (4, 19), (10, text.len())] {
                let mut seen = Vec::new();
                let finished = visit_lines(&path, start as u64, end as u64, window, |lines| {
                    seen.push(String::from_utf8(lines.to_vec()).unwrap());
                    true
                })
                .unwrap();
                assert!(finished);
                assert_eq!(seen.concat(), &text[start..end], "window {window}");
                let (last, whole) = seen.split_last().unwrap();
                assert!(whole.iter().all(|s| s.ends_with('\n')), "window {window}: {seen:?}");
                assert!(end < text.len() || !last.is_empty());
            }
        }
        let mut calls = 0;
        let stopped = visit_lines(&path, 0, text.len() as u64, 4, |_| {
            calls += 1;
            false
        });
        assert_eq!((stopped.unwrap(), calls), (false, 1), "stops when told");
    }
}
