//! Cutting CSV files into blocks at line boundaries.
//!
//! A file is split into byte ranges of about `blocksize` bytes when the graph is built, without
//! reading it. The task for a range decides which lines are its own by one rule: **a line
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

/// The lines of `range` given the bytes `window` that start at byte `window_start`
/// (`window_start` is `range.start - 1` when the range does not start the file, so the byte
/// before the range shows whether the range starts on a line boundary; `window` runs to the
/// end of the line that crosses `range.end`, or to the end of the file). `header_end` is the
/// offset just after the header line: no block returns the header.
///
/// Returns the byte span of `window` that holds the block's complete lines.
pub fn own_lines(
    window: &[u8],
    window_start: u64,
    range: &ByteRange,
    header_end: u64,
) -> std::ops::Range<usize> {
    let first_line_start = |from: u64| -> usize {
        // The first position p >= from where a line starts: p is 0, or byte p-1 is '\n'.
        if from == 0 {
            return 0;
        }
        let from_index = (from - window_start) as usize;
        if from_index > window.len() {
            return window.len();
        }
        match window[from_index - 1..].iter().position(|&b| b == b'\n') {
            Some(offset) => from_index + offset,
            None => window.len(),
        }
    };
    let begin = first_line_start(range.start.max(header_end));
    let end_offset = range.end.max(header_end);
    let end = if end_offset >= window_start + window.len() as u64 {
        window.len()
    } else {
        first_line_start(end_offset)
    };
    begin.min(end)..end
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `text` into ranges of `blocksize` and returns each block's lines as the tasks would
    /// (each task sees the byte before its range and the whole rest of the file).
    fn blocks(text: &str, blocksize: u64) -> Vec<String> {
        let bytes = text.as_bytes();
        let header = header_end(bytes);
        split(bytes.len() as u64, Some(blocksize))
            .iter()
            .map(|range| {
                let window_start = range.start.saturating_sub(1);
                let window = &bytes[window_start as usize..];
                let span = own_lines(window, window_start, range, header);
                String::from_utf8(window[span].to_vec()).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_line_is_read_once_for_every_block_size() {
        for text in [
            "a,b\n1,2\n33,44\n555,666\n7,8\n",
            "a,b\r\n1,2\r\n33,44\r\n555,666\r\n",
            "a,b\n1,2\n33,44\n555,666",
            "a,b\n",
            "a,b",
            "h\n\n\nx\n",
            "é,ü\n1,ß\n€,2\n",
        ] {
            let body = &text[header_end(text.as_bytes()) as usize..];
            for blocksize in 1..=text.len() as u64 + 1 {
                let joined: String = blocks(text, blocksize).concat();
                assert_eq!(joined, body, "blocksize {blocksize} of {text:?}");
            }
        }
    }

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
}
