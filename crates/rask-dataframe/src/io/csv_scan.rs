//! A fast path for plain CSV blocks: only the columns a query uses are parsed.
//!
//! A general CSV reader tokenizes every field of every line. Most analyses read a few columns
//! of wide files (the NYC-taxi walkthrough reads two to four of nineteen), so this scanner
//! walks each line only as far as the last wanted field, skips the rest of the line with
//! `memchr` (counting its separators so a short or long line is still noticed), and parses
//! the wanted fields with the same number parsers Polars' CSV reader uses (`atoi_simd`,
//! `fast-float2`), so values are identical.
//!
//! Null markers (`NA`, `NaN`, `null`, ... as `CsvOptions` sets them) are read as null as
//! Polars reads them: a field equal to a marker, byte for byte. They are checked only where a
//! marker could stand: for numbers, when the field does not parse (or parses as NaN); for
//! text, against the markers of the field's length.
//!
//! It is optimistic: anything it does not handle exactly as Polars does — a quote character
//! anywhere in the block, a line with the wrong number of fields, a value that does not parse,
//! leading whitespace, a date that is not `%Y-%m-%d %H:%M:%S`, invalid UTF-8 — makes it return
//! `None`, and the caller reads the block with Polars' reader instead, which gives Polars'
//! answer or Polars' error. So the fast path can only make a read faster, never different.

use crate::calendar::{days_from_civil, days_in_month};

/// How a wanted field is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Not wanted: skipped.
    Skip,
    /// A 64-bit integer.
    Int64,
    /// A 64-bit float.
    Float64,
    /// Text (valid UTF-8).
    Utf8,
    /// `%Y-%m-%d %H:%M:%S`, as microseconds since the Unix epoch.
    DatetimeMicros,
}

/// The parsed values of one wanted column; `valid` is `None` when no value is null.
#[derive(Clone, Debug, PartialEq)]
pub enum ScannedColumn {
    /// Integers (and datetimes, as microseconds).
    Int64 {
        /// The values (0 where null).
        values: Vec<i64>,
        /// Which are not null.
        valid: Option<Vec<bool>>,
    },
    /// Floats.
    Float64 {
        /// The values (0 where null).
        values: Vec<f64>,
        /// Which are not null.
        valid: Option<Vec<bool>>,
    },
    /// Text: all values one after another, and where each ends (`None`: null).
    Utf8 {
        /// The values' bytes, concatenated (valid UTF-8).
        text: String,
        /// The end of each value in `text`.
        ends: Vec<Option<usize>>,
    },
}

impl ScannedColumn {
    /// The text values, for a `Utf8` column.
    pub fn strings(&self) -> Option<Vec<Option<&str>>> {
        let ScannedColumn::Utf8 { text, ends } = self else { return None };
        let mut start = 0;
        Some(
            ends.iter()
                .map(|end| {
                    let end = (*end)?;
                    let value = &text[start..end];
                    start = end;
                    Some(value)
                })
                .collect(),
        )
    }
}

/// A block scanned by [`Scanner`]: the rows and, per field, its column (`None` for skipped).
#[derive(Debug)]
pub struct Scanned {
    /// How many lines were read.
    pub rows: usize,
    /// One entry per field of the line.
    pub columns: Vec<Option<ScannedColumn>>,
}

/// Null bookkeeping: no validity vector until the first null.
fn push_null(valid: &mut Option<Vec<bool>>, rows_before: usize) {
    valid.get_or_insert_with(|| vec![true; rows_before]).push(false);
}

fn push_valid(valid: &mut Option<Vec<bool>>) {
    if let Some(valid) = valid {
        valid.push(true);
    }
}

/// The null markers, grouped by length so a field is compared only with markers as long as
/// it (most fields match no marker's length at all).
#[derive(Clone, Debug, Default)]
struct NullMarkers {
    by_len: Vec<Vec<Box<[u8]>>>,
    /// Whether a marker is itself a number or a date (`-999`): then numeric fields are checked
    /// against the markers before they are parsed, as Polars does.
    looks_numeric: bool,
}

impl NullMarkers {
    fn new(markers: &[String]) -> Self {
        let mut by_len: Vec<Vec<Box<[u8]>>> = Vec::new();
        for marker in markers.iter().filter(|m| !m.is_empty()) {
            let len = marker.len();
            if by_len.len() <= len {
                by_len.resize(len + 1, Vec::new());
            }
            by_len[len].push(marker.as_bytes().into());
        }
        let looks_numeric = markers.iter().any(|m| {
            m.bytes().next().is_some_and(|b| b.is_ascii_digit())
                || fast_float2::parse::<f64, _>(m.as_bytes()).is_ok_and(|v| !v.is_nan())
        });
        NullMarkers { by_len, looks_numeric }
    }

    /// Whether a numeric field is a marker that parses as a number.
    #[inline]
    fn numeric_marker(&self, field: &[u8]) -> bool {
        self.looks_numeric && self.matches(field)
    }

    #[inline]
    fn matches(&self, field: &[u8]) -> bool {
        self.by_len.get(field.len()).is_some_and(|ms| ms.iter().any(|m| **m == *field))
    }
}

/// Parses the wanted fields of whole lines fed to it piece by piece (so a block can be read
/// through a small window that stays in cache), up to a row limit.
pub struct Scanner {
    kinds: Vec<FieldKind>,
    /// The wanted fields, in order.
    wanted: Vec<usize>,
    separator: u8,
    quote: u8,
    max_rows: usize,
    rows: usize,
    columns: Vec<Option<ScannedColumn>>,
    /// Bytes of lines expected in all, to size the columns once the first lines show how
    /// long a line is (growing them by doubling cost a sixth of a wide read in copies).
    expected_bytes: usize,
    sized: bool,
    /// The date of the last datetime parsed (rows of a file mostly share their dates).
    last_date: LastDate,
    null_markers: NullMarkers,
}

impl Scanner {
    /// A scanner for lines of `kinds.len()` fields; `None` if nothing is wanted or the
    /// separator is a line break.
    pub fn new(
        kinds: &[FieldKind],
        separator: u8,
        quote: u8,
        max_rows: Option<usize>,
    ) -> Option<Self> {
        let wanted: Vec<usize> =
            (0..kinds.len()).filter(|&i| kinds[i] != FieldKind::Skip).collect();
        if wanted.is_empty() {
            return None;
        }
        if separator == b'\n' || separator == b'\r' {
            return None;
        }
        let columns = kinds
            .iter()
            .map(|kind| match kind {
                FieldKind::Skip => None,
                FieldKind::Int64 | FieldKind::DatetimeMicros => {
                    Some(ScannedColumn::Int64 { values: Vec::new(), valid: None })
                }
                FieldKind::Float64 => {
                    Some(ScannedColumn::Float64 { values: Vec::new(), valid: None })
                }
                FieldKind::Utf8 => {
                    Some(ScannedColumn::Utf8 { text: String::new(), ends: Vec::new() })
                }
            })
            .collect();
        Some(Scanner {
            kinds: kinds.to_vec(),
            wanted,
            separator,
            quote,
            max_rows: max_rows.unwrap_or(usize::MAX),
            rows: 0,
            columns,
            expected_bytes: 0,
            sized: false,
            last_date: LastDate::default(),
            null_markers: NullMarkers::default(),
        })
    }

    /// Fields equal to one of `markers` are read as null (as Polars' `null_values`).
    pub fn with_null_markers(mut self, markers: &[String]) -> Self {
        self.null_markers = NullMarkers::new(markers);
        self
    }

    /// Tells the scanner how many bytes of lines are coming in all, so it sizes its columns
    /// after the first piece instead of growing them.
    pub fn expect_bytes(&mut self, bytes: usize) {
        self.expected_bytes = bytes;
    }

    /// Reserves room for the rows `expected_bytes` should hold, from the line length seen in
    /// the first piece (`fed` bytes, `self.rows` rows).
    fn size_columns(&mut self, fed: usize) {
        self.sized = true;
        if self.rows == 0 || self.expected_bytes <= fed {
            return;
        }
        let bytes_per_row = fed as f64 / self.rows as f64;
        let more = ((self.expected_bytes - fed) as f64 / bytes_per_row * 1.05) as usize + 16;
        let more = more.min(self.max_rows.saturating_sub(self.rows));
        let rows = self.rows.max(1);
        for column in self.columns.iter_mut().flatten() {
            match column {
                ScannedColumn::Int64 { values, .. } => values.reserve(more),
                ScannedColumn::Float64 { values, .. } => values.reserve(more),
                ScannedColumn::Utf8 { text, ends } => {
                    ends.reserve(more);
                    text.reserve(text.len() / rows * more + 16);
                }
            }
        }
    }

    /// Whether the row limit is reached.
    pub fn is_full(&self) -> bool {
        self.rows >= self.max_rows
    }

    /// Scans whole lines (the last may lack its line break only at the end of the data);
    /// `None` if they need the general reader.
    pub fn feed(&mut self, lines: &[u8]) -> Option<()> {
        if memchr::memchr(self.quote, lines).is_some() {
            return None;
        }
        let (separator, ncols) = (self.separator, self.kinds.len());
        let n = lines.len();
        let mut pos = 0;
        while pos < n && self.rows < self.max_rows {
            // The field `start` begins, its number, and whether the line has ended.
            let mut start = pos;
            let mut field = 0;
            let mut line_end = None;
            for &wanted in &self.wanted {
                if wanted > field {
                    // Skipped fields are never split: jump to the wanted one's start.
                    start = skip_separators(lines, start, (wanted - field) as u32, separator)?;
                    field = wanted;
                }
                let end = next_delimiter(lines, start, separator);
                let at_line_end = end >= n || lines[end] == b'\n';
                let mut value_end = end;
                if at_line_end && value_end > start && lines[value_end - 1] == b'\r' {
                    value_end -= 1; // CRLF
                }
                let column = self.columns[field].as_mut().expect("wanted fields have columns");
                let value = &lines[start..value_end];
                let kind = self.kinds[field];
                parse_field(
                    column,
                    kind,
                    value,
                    self.rows,
                    &mut self.last_date,
                    &self.null_markers,
                )?;
                field += 1;
                if at_line_end {
                    line_end = Some(end);
                    break;
                }
                start = end + 1;
            }
            let line_end = match line_end {
                Some(end) => end,
                None => {
                    // The rest of the line is not wanted: find its end, count its fields.
                    let rest_end = memchr::memchr(b'\n', &lines[start..]).map_or(n, |o| start + o);
                    field += lines[start..rest_end].iter().filter(|&&b| b == separator).count() + 1;
                    rest_end
                }
            };
            let empty = line_end == pos || (line_end == pos + 1 && lines[pos] == b'\r');
            if field != ncols || empty {
                return None; // a short, long or empty line: the general reader decides
            }
            self.rows += 1;
            pos = line_end + 1;
        }
        if !self.sized {
            self.size_columns(lines.len());
        }
        Some(())
    }

    /// The columns read.
    pub fn finish(self) -> Scanned {
        Scanned { rows: self.rows, columns: self.columns }
    }
}

/// Scans all of `lines` at once (see [`Scanner`]).
pub fn scan(
    lines: &[u8],
    separator: u8,
    quote: u8,
    kinds: &[FieldKind],
    max_rows: Option<usize>,
) -> Option<Scanned> {
    let mut scanner = Scanner::new(kinds, separator, quote, max_rows)?;
    scanner.feed(lines)?;
    Some(scanner.finish())
}

/// Bytes that are zero in `word`, as their high bit (exact: no false positives).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// The position of the next separator or line break at or after `at` (`lines.len()` if none),
/// eight bytes at a time: fields are short, so this mostly decides within one word.
#[inline]
fn next_delimiter(lines: &[u8], mut at: usize, separator: u8) -> usize {
    let separators = u64::from_ne_bytes([separator; 8]);
    let breaks = u64::from_ne_bytes([b'\n'; 8]);
    while let Some(chunk) = lines.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = zero_bytes(word ^ separators) | zero_bytes(word ^ breaks);
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < lines.len() && lines[at] != separator && lines[at] != b'\n' {
        at += 1;
    }
    at
}

/// The position just after the `count`-th separator from `at` (`count` ≥ 1), eight bytes at
/// a time; `None` if a line break or the end of the data comes first (a short line).
#[inline]
fn skip_separators(lines: &[u8], mut at: usize, mut count: u32, separator: u8) -> Option<usize> {
    let separators = u64::from_ne_bytes([separator; 8]);
    let breaks = u64::from_ne_bytes([b'\n'; 8]);
    while let Some(chunk) = lines.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = zero_bytes(word ^ separators);
        let line_break = zero_bytes(word ^ breaks);
        let here = found.count_ones();
        if here < count {
            if line_break != 0 {
                return None;
            }
            count -= here;
            at += 8;
            continue;
        }
        let mut nth = found;
        for _ in 1..count {
            nth &= nth - 1; // drop the lowest separators before the one wanted
        }
        let bit = nth.trailing_zeros();
        if line_break != 0 && line_break.trailing_zeros() < bit {
            return None;
        }
        return Some(at + (bit / 8) as usize + 1);
    }
    while let Some(&byte) = lines.get(at) {
        at += 1;
        if byte == b'\n' {
            return None;
        }
        if byte == separator {
            count -= 1;
            if count == 0 {
                return Some(at);
            }
        }
    }
    None
}

fn parse_field(
    column: &mut ScannedColumn,
    kind: FieldKind,
    field: &[u8],
    row: usize,
    last_date: &mut LastDate,
    null_markers: &NullMarkers,
) -> Option<()> {
    if kind != FieldKind::Utf8 && field.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None; // Polars skips leading whitespace in numbers; rare enough to leave to it
    }
    match column {
        ScannedColumn::Int64 { values, valid } => {
            let parsed = match kind {
                _ if field.is_empty() || null_markers.numeric_marker(field) => None,
                FieldKind::DatetimeMicros => datetime_micros(field, last_date),
                _ => atoi_simd::parse::<i64, true, true>(field).ok(),
            };
            match parsed {
                Some(value) => {
                    values.push(value);
                    push_valid(valid);
                }
                None if field.is_empty() || null_markers.matches(field) => {
                    values.push(0);
                    push_null(valid, row);
                }
                None => return None,
            }
        }
        ScannedColumn::Float64 { values, valid } => {
            // A marker may also parse as a float (`NaN`): Polars checks markers first.
            let parsed = if null_markers.numeric_marker(field) {
                None
            } else {
                fast_float2::parse::<f64, _>(field).ok()
            };
            match parsed {
                Some(value) if !value.is_nan() || !null_markers.matches(field) => {
                    values.push(value);
                    push_valid(valid);
                }
                _ if field.is_empty() || null_markers.matches(field) => {
                    values.push(0.0);
                    push_null(valid, row);
                }
                _ => return None,
            }
        }
        ScannedColumn::Utf8 { text, ends } => {
            // Polars reads an empty field as null (its `missing_is_null` default).
            if field.is_empty() || null_markers.matches(field) {
                ends.push(None);
            } else {
                // Invalid UTF-8 goes to the general reader. (Fields are split at ASCII bytes,
                // which never occur inside a multi-byte character.)
                text.push_str(std::str::from_utf8(field).ok()?);
                ends.push(Some(text.len()));
            }
        }
    }
    Some(())
}

/// A date as text and its day number, remembered between datetimes; all zeros (the initial
/// value) is no valid date, so it never matches.
#[derive(Default)]
struct LastDate {
    text: [u8; 10],
    days: i64,
}

/// `YYYY-MM-DD HH:MM:SS` as microseconds since 1970-01-01 00:00:00; `None` unless every
/// part is in range (the general path then gives Polars' answer or error). The calendar
/// arithmetic is skipped when the date is `last_date`'s.
fn datetime_micros(text: &[u8], last_date: &mut LastDate) -> Option<i64> {
    if text.len() != 19 || text[10] != b' ' || text[13] != b':' || text[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        text[range]
            .iter()
            .try_fold(0_i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    };
    let date = &text[..10];
    let days = if date == last_date.text {
        last_date.days
    } else {
        if date[4] != b'-' || date[7] != b'-' {
            return None;
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let days = days_from_civil(year, month, day);
        *last_date = LastDate { text: date.try_into().expect("ten bytes"), days };
        days
    };
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldKind::*;

    fn ints(column: &Option<ScannedColumn>) -> (Vec<i64>, Option<Vec<bool>>) {
        match column {
            Some(ScannedColumn::Int64 { values, valid }) => (values.clone(), valid.clone()),
            other => panic!("not integers: {other:?}"),
        }
    }

    #[test]
    fn only_wanted_fields_are_parsed_and_nulls_are_tracked() {
        let lines = b"1,x,2.5,,7\n2,yy,,3,8\r\n3,,1e3,4,9";
        let kinds = [Int64, Utf8, Float64, Int64, Skip];
        let scanned = scan(lines, b',', b'"', &kinds, None).expect("plain CSV");
        assert_eq!(scanned.rows, 3);
        assert_eq!(ints(&scanned.columns[0]), (vec![1, 2, 3], None));
        assert_eq!(ints(&scanned.columns[3]), (vec![0, 3, 4], Some(vec![false, true, true])));
        match &scanned.columns[2] {
            Some(ScannedColumn::Float64 { values, valid }) => {
                assert_eq!(values, &[2.5, 0.0, 1000.0]);
                assert_eq!(valid, &Some(vec![true, false, true]));
            }
            other => panic!("{other:?}"),
        }
        let text = scanned.columns[1].as_ref().and_then(ScannedColumn::strings);
        assert_eq!(text, Some(vec![Some("x"), Some("yy"), None]));
        assert!(scanned.columns[4].is_none());
        let first_two = scan(lines, b',', b'"', &kinds, Some(2)).unwrap();
        assert_eq!(first_two.rows, 2);
        // Fed line by line, the same.
        let mut scanner = Scanner::new(&kinds, b',', b'"', None).unwrap();
        for line in lines.split_inclusive(|&b| b == b'\n') {
            scanner.feed(line).unwrap();
        }
        assert_eq!(scanner.finish().columns, scanned.columns);
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_reader() {
        let kinds = [Int64, Skip, Skip];
        for lines in [
            &b"1,\"a,b\",3\n"[..], // a quote anywhere
            b"1,2\n",              // a short line
            b"1,2,3,4\n",          // a long line
            b"1,2,3\n\n4,5,6\n",   // an empty line
            b"x,2,3\n",            // not a number
            b" 1,2,3\n",           // leading whitespace
            b"1.5,2,3\n",          // a float in an integer column
        ] {
            assert!(
                scan(lines, b',', b'"', &kinds, None).is_none(),
                "{:?}",
                String::from_utf8_lossy(lines)
            );
        }
        // The same with the wanted field last, reached by skipping separators.
        for lines in [&b"1,2\n"[..], b"1,2,3,4\n", b"1,2,3\n\n4,5,6\n", b"1\n2,3,4\n", b"1,2,x\n"] {
            let kinds = [Skip, Skip, Int64];
            assert!(
                scan(lines, b',', b'"', &kinds, None).is_none(),
                "{:?}",
                String::from_utf8_lossy(lines)
            );
        }
        assert_eq!(
            scan(b"1,2,3\r\n4,5,6", b',', b'"', &[Skip, Skip, Int64], None).unwrap().rows,
            2
        );
        assert!(scan(b"\xff,1\n", b',', b'"', &[Utf8, Skip], None).is_none(), "invalid UTF-8");
        assert!(scan(b"1,2\n", b',', b'"', &[Skip, Skip], None).is_none(), "nothing wanted");
    }

    #[test]
    fn the_next_delimiter_is_found_at_every_distance() {
        for distance in 0..40 {
            for delimiter in [b',', b'\n'] {
                let mut line = vec![b'x'; distance];
                line.push(delimiter);
                line.extend_from_slice(b"yy,zz\n");
                assert_eq!(next_delimiter(&line, 0, b','), distance);
                assert_eq!(next_delimiter(&line[..distance], 0, b','), distance, "none: the end");
            }
            // Bytes that differ from the separator by one bit are not it.
            let line: Vec<u8> = (0..distance).map(|i| [b'-', b'.', b'l', 0xac][i % 4]).collect();
            assert_eq!(next_delimiter(&line, 0, b','), distance);
        }
    }

    #[test]
    fn separators_are_skipped_at_every_distance_and_a_line_break_stops_them() {
        for prefix in 0..20 {
            let mut line = "x".repeat(prefix);
            line.push_str("a,bb,,ccc,dddd,e\nf,g");
            let bytes = line.as_bytes();
            let after = |count| skip_separators(bytes, 0, count, b',');
            assert_eq!(after(1), Some(prefix + 2), "prefix {prefix}");
            assert_eq!(after(3), Some(prefix + 6));
            assert_eq!(after(5), Some(prefix + 15));
            assert_eq!(after(6), None, "the line ends first");
            assert_eq!(skip_separators(&bytes[..prefix + 3], 0, 2, b','), None, "the data ends");
        }
    }

    #[test]
    fn datetimes_match_the_calendar_and_impossible_ones_are_refused() {
        let last = &mut LastDate::default();
        assert_eq!(datetime_micros(b"1970-01-01 00:00:00", last), Some(0));
        assert_eq!(datetime_micros(b"2015-01-20 18:01:23", last), Some(1_421_776_883_000_000));
        // The same date again (remembered), then another.
        assert_eq!(datetime_micros(b"2015-01-20 00:00:01", last), Some(1_421_712_001_000_000));
        assert_eq!(datetime_micros(b"2000-02-29 23:59:59", last), Some(951_868_799_000_000));
        assert_eq!(datetime_micros(b"1969-12-31 23:59:59", last), Some(-1_000_000));
        for bad in [
            &b"2015-02-29 00:00:00"[..],
            b"1900-02-29 00:00:00",
            b"2015-13-01 00:00:00",
            b"2015-01-01 24:00:00",
            b"2015-01-01 00:00:60",
            b"2015-01-01T00:00:00",
            b"2015-01-01 00:00",
        ] {
            // Refused whether or not the date before was the same.
            let mut last = LastDate::default();
            assert_eq!(datetime_micros(bad, &mut last), None, "{}", String::from_utf8_lossy(bad));
            let _ = datetime_micros(b"2015-01-01 12:00:00", &mut last);
            assert_eq!(datetime_micros(bad, &mut last), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
