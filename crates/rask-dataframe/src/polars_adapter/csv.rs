//! CSV through Polars: one block as a Polars scan with the query on top (rask's scanner reads
//! the projected columns when the block is plain, Polars' reader otherwise), inferring a schema
//! from a sample, counting rows, and explaining what went wrong when a block does not parse.

use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::{
    AnonymousScan, AnonymousScanArgs, Column, CsvReadOptions, DataFrame, DataType, IntoLazy,
    LazyFrame, NullValues, PlSmallStr, PolarsError, ScanArgsAnonymous, Schema, SchemaRef,
    SerReader, StrptimeOptions, TimeUnit,
};

use super::{column_names, polars_error, PlFrame};
use crate::error::{rask_advice, ColumnMismatch, Error, Result};
use crate::io::blocks;
use crate::io::csv_scan::{FieldKind, ScannedColumn, Scanner};
use crate::io::store::Location;
use crate::plan::{CsvBlock, CsvParse, TextSample};

fn null_values(parse: &CsvParse) -> Option<NullValues> {
    (!parse.null_values.is_empty()).then(|| {
        NullValues::AllColumns(parse.null_values.iter().map(|s| s.as_str().into()).collect())
    })
}

/// Polars' reader options for rask's parsing options: every read of CSV text (sample, block,
/// diagnosis) goes through here, so they all read the same values.
fn read_options(parse: &CsvParse) -> CsvReadOptions {
    CsvReadOptions::default().with_ignore_errors(parse.ignore_errors).map_parse_options(|p| {
        p.with_separator(parse.separator)
            .with_quote_char(Some(parse.quote))
            .with_null_values(null_values(parse))
            .with_truncate_ragged_lines(parse.truncate_ragged_lines)
    })
}

/// The type `parse_dates` columns get.
pub fn datetime_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, None)
}

/// Formats tried for `parse_dates` columns, most common first.
const DATE_FORMATS: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
];

fn to_datetime(column: &str, format: &str) -> polars::prelude::Expr {
    let options =
        StrptimeOptions { format: Some(format.into()), strict: true, exact: true, cache: false };
    polars::prelude::col(column)
        .str()
        .to_datetime(Some(TimeUnit::Microseconds), None, options, polars::prelude::lit("raise"))
        .alias(column)
}

/// The first format that parses every sampled value of a text column.
fn detect_date_format(sample: &PlFrame, column: &str) -> Option<String> {
    let values = sample.column(column).ok()?;
    if values.dtype() != &DataType::String {
        return None;
    }
    let frame = values.clone().into_frame();
    DATE_FORMATS
        .iter()
        .find(|format| frame.clone().lazy().select([to_datetime(column, format)]).collect().is_ok())
        .map(|format| format.to_string())
}

/// Infers the schema from the first bytes of a file (cut at the last complete line), then
/// applies `parse_dates` (finding each column's format) and the `dtypes` overrides. Also
/// returns what the sample holds of each column left as text.
pub fn infer_schema(
    sample: &[u8],
    parse: &mut CsvParse,
    dtypes: &[(String, DataType)],
    path: &str,
) -> Result<(Schema, Vec<TextSample>)> {
    let cut = sample.iter().rposition(|&b| b == b'\n').map_or(sample.len(), |p| p + 1);
    let frame = read_options(parse)
        .with_has_header(true)
        .with_infer_schema_length(None)
        .into_reader_with_file_handle(Cursor::new(&sample[..cut]))
        .finish()
        .map_err(|e| sample_error(&sample[..cut], parse, path, &e))?;
    let mut schema = frame.schema().as_ref().clone();
    parse.date_formats.clear();
    for name in &parse.parse_dates {
        match schema.get_mut(name.as_str()) {
            Some(dtype) => {
                *dtype = datetime_type();
                if let Some(format) = detect_date_format(&frame, name) {
                    parse.date_formats.push((name.clone(), format));
                }
            }
            None => {
                return Err(Error::UnknownColumn {
                    column: name.clone(),
                    context: "parse_dates".into(),
                    available: column_names(&schema),
                })
            }
        }
    }
    for (name, dtype) in dtypes {
        match schema.get_mut(name.as_str()) {
            Some(slot) => *slot = dtype.clone(),
            None => {
                return Err(Error::UnknownColumn {
                    column: name.clone(),
                    context: "dtypes".into(),
                    available: column_names(&schema),
                })
            }
        }
    }
    let samples = schema
        .iter()
        .filter(|(_, dtype)| **dtype == DataType::String)
        .filter_map(|(name, _)| text_sample(&frame, name))
        .collect();
    Ok((schema, samples))
}

/// Why the sample did not parse: a line with too many fields (named), or Polars' reason.
fn sample_error(sample: &[u8], parse: &CsvParse, path: &str, error: &PolarsError) -> Error {
    let header = &sample[..blocks::header_end(sample) as usize];
    let fields = count_fields(header.strip_suffix(b"\n").unwrap_or(header), parse);
    if let Some(offset) = overlong_record(sample, parse, fields) {
        let line = sample[offset..].split(|&b| b == b'\n').next().unwrap_or_default();
        return Error::MalformedCsv {
            path: path.to_string(),
            offset: offset as u64,
            line: sample[..offset].iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            block_start: 0,
            reason: format!(
                "expected {fields} fields, found {}: {:?}; to read such lines without their extra fields, use CsvOptions::default().truncate_ragged_lines(true)",
                count_fields(line, parse),
                String::from_utf8_lossy(&line[..line.len().min(200)])
            ),
        };
    }
    Error::io("cannot infer the columns of", path, rask_advice(&error.to_string()))
}

/// Sampled values of a text column: how many are numbers, and a few that are not.
fn text_sample(frame: &PlFrame, column: &str) -> Option<TextSample> {
    let values = frame.column(column).ok()?.str().ok()?.clone();
    let mut sample = TextSample { column: column.to_string(), ..TextSample::default() };
    for value in values.iter().flatten() {
        if value.trim().parse::<f64>().is_ok() {
            sample.numbers += 1;
        } else if sample.others.len() < 5 && !sample.others.iter().any(|o| o == value) {
            sample.others.push(value.to_string());
        }
    }
    Some(sample)
}

/// The byte range of the lines a block owns (see [`blocks`]): from its first line start at or
/// after its range's start, to the end of the line that crosses its range's end. Two small
/// reads find them; the lines themselves are not read.
pub fn block_line_range(block: &CsvBlock) -> Result<(u64, u64)> {
    let range = &block.range;
    let begin = first_line_start(block, range.start.max(block.header_end))?;
    if begin >= range.end.max(block.header_end) && range.end < block.file_size {
        // No line starts in this range (a line longer than the block, or the header).
        return Ok((begin, begin));
    }
    if range.end >= block.file_size {
        return Ok((begin, block.file_size)); // the last block: everything from its first line
    }
    // The next block's first line starts after the first line break at or after end - 1.
    Ok((begin, first_line_start(block, range.end)?.max(begin)))
}

/// Reads the lines a block owns: the file offset of the first line, and the lines.
pub fn block_lines(block: &CsvBlock) -> Result<(u64, Vec<u8>)> {
    let (begin, end) = block_line_range(block)?;
    let lines = if end > begin { block.location.read_range(begin, end)? } else { Vec::new() };
    Ok((begin, lines))
}

/// The first position at or after `from` where a line starts (0, or just after a line
/// break), reading as little as it needs.
fn first_line_start(block: &CsvBlock, from: u64) -> Result<u64> {
    if from == 0 {
        return Ok(0);
    }
    let mut at = from - 1;
    while at < block.file_size {
        let to = (at + blocks::LINE_OVERREAD).min(block.file_size);
        let probe = block.location.read_range(at, to)?;
        if let Some(offset) = probe.iter().position(|&b| b == b'\n') {
            return Ok(at + offset as u64 + 1);
        }
        at = to;
    }
    Ok(block.file_size)
}

/// Parses a block with the query `steps` on top (Polars pushes the query's projection and
/// filters into the parse). A block that fails is diagnosed: a malformed line (file, byte
/// offset, line), or columns whose values do not fit their type (every one of them).
pub fn read_block(
    block: &CsvBlock,
    schema: &Schema,
    parse: &CsvParse,
    steps: impl FnOnce(LazyFrame) -> Result<LazyFrame, PolarsError>,
) -> Result<PlFrame> {
    let (begin, end) = block_line_range(block)?;
    if begin >= end {
        let empty = super::empty(schema).lazy();
        return steps(empty)
            .and_then(LazyFrame::collect)
            .map_err(|e| polars_error(e, schema, "reading CSV"));
    }
    // A failing block is read again to diagnose it.
    let scan = BlockScan {
        block: block.clone(),
        begin,
        end,
        schema: Arc::new(schema.clone()),
        parse: parse.clone(),
    };
    let args = ScanArgsAnonymous {
        schema: Some(scan.schema.clone()),
        name: "rask csv block",
        ..Default::default()
    };
    let lazy = LazyFrame::anonymous_scan(Arc::new(scan), args);
    let result = lazy.and_then(steps).and_then(LazyFrame::collect);
    match result {
        Ok(frame) => Ok(frame),
        Err(PolarsError::ColumnNotFound(message)) => {
            Err(polars_error(PolarsError::ColumnNotFound(message), schema, "reading CSV"))
        }
        Err(error) => match block_lines(block) {
            Ok((begin, lines)) => Err(diagnose(block, begin, &lines, schema, parse, &error)),
            Err(read_again) => Err(read_again),
        },
    }
}

/// One CSV block as a Polars scan, so Polars pushes the query's projection and row limit into
/// it: [`csv_scan`] parses just the projected columns when the block is plain, and Polars' own
/// CSV reader reads the block otherwise (giving Polars' answer or error).
struct BlockScan {
    block: CsvBlock,
    /// The lines the block owns: `begin..end` of its file.
    begin: u64,
    end: u64,
    /// The block's columns as the query sees them (`parse_dates` columns as datetimes).
    schema: SchemaRef,
    parse: CsvParse,
}

/// The date format the fast scanner parses itself; other formats are read as text and parsed
/// by Polars with the format found in the sample.
const NATIVE_DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

impl BlockScan {
    fn date_format(&self, column: &str) -> Option<&str> {
        self.parse.date_formats.iter().find(|(name, _)| name == column).map(|(_, f)| f.as_str())
    }

    /// The projected columns, in the order the scan returns them.
    fn projection(&self, args: &AnonymousScanArgs) -> Vec<PlSmallStr> {
        match (&args.output_schema, &args.with_columns) {
            (Some(output), _) => output.iter_names().cloned().collect(),
            (None, Some(columns)) => columns.to_vec(),
            (None, None) => self.schema.iter_names().cloned().collect(),
        }
    }

    /// The fast path: `None` when the block or a column needs the general reader.
    fn scan_fast(&self, wanted: &[PlSmallStr], n_rows: Option<usize>) -> Option<PlFrame> {
        if wanted.is_empty() {
            return None;
        }
        let mut kinds = vec![FieldKind::Skip; self.schema.len()];
        for name in wanted {
            let index = self.schema.index_of(name)?;
            kinds[index] = match self.schema.get_at_index(index)?.1 {
                DataType::Int64 => FieldKind::Int64,
                DataType::Float64 => FieldKind::Float64,
                DataType::String => FieldKind::Utf8,
                DataType::Datetime(TimeUnit::Microseconds, None) => match self.date_format(name)? {
                    NATIVE_DATE_FORMAT => FieldKind::DatetimeMicros,
                    _ => FieldKind::Utf8, // parsed by Polars below
                },
                _ => return None,
            };
        }
        let mut scanner = Scanner::new(&kinds, self.parse.separator, self.parse.quote, n_rows)?
            .with_null_markers(&self.parse.null_values);
        scanner.expect_bytes((self.end - self.begin) as usize);
        let mut plain = true;
        match &self.block.location {
            // Local files through a small reused window; objects in one request.
            Location::Local(path) => {
                blocks::visit_lines(path, self.begin, self.end, blocks::WINDOW_BYTES, |lines| {
                    plain = scanner.feed(lines).is_some();
                    plain && !scanner.is_full()
                })
                .ok()?;
            }
            Location::Remote { .. } => {
                let lines = self.block.location.read_range(self.begin, self.end).ok()?;
                plain = scanner.feed(&lines).is_some();
            }
        }
        if !plain {
            return None;
        }
        let scanned = scanner.finish();
        let mut columns = Vec::with_capacity(wanted.len());
        let mut scanned_columns = scanned.columns;
        for name in wanted {
            let index = self.schema.index_of(name)?;
            let column = scanned_columns[index].take()?;
            columns.push(self.to_column(name, column)?);
        }
        DataFrame::new(scanned.rows, columns).ok()
    }

    fn to_column(&self, name: &PlSmallStr, scanned: ScannedColumn) -> Option<Column> {
        let dtype = self.schema.get(name)?;
        let column = match scanned {
            ScannedColumn::Int64 { values, valid: None } => Column::new(name.clone(), values),
            ScannedColumn::Int64 { values, valid: Some(valid) } => {
                let values: Vec<Option<i64>> =
                    values.into_iter().zip(valid).map(|(v, ok)| ok.then_some(v)).collect();
                Column::new(name.clone(), values)
            }
            ScannedColumn::Float64 { values, valid: None } => Column::new(name.clone(), values),
            ScannedColumn::Float64 { values, valid: Some(valid) } => {
                let values: Vec<Option<f64>> =
                    values.into_iter().zip(valid).map(|(v, ok)| ok.then_some(v)).collect();
                Column::new(name.clone(), values)
            }
            utf8 @ ScannedColumn::Utf8 { .. } => {
                let column = Column::new(name.clone(), utf8.strings()?);
                if *dtype == DataType::String {
                    column
                } else {
                    // A date column in another format than the scanner's own.
                    return self.parse_dates(column.into_frame()).ok()?.drop_in_place(name).ok();
                }
            }
        };
        if column.dtype() == dtype {
            Some(column)
        } else {
            column.cast(dtype).ok() // microseconds to datetimes
        }
    }

    /// Parses the date columns of `frame` read as text, with the formats found in the sample.
    fn parse_dates(&self, frame: PlFrame) -> Result<PlFrame, PolarsError> {
        let conversions: Vec<polars::prelude::Expr> = self
            .parse
            .date_formats
            .iter()
            .filter(|(name, _)| frame.schema().contains(name))
            .map(|(name, format)| to_datetime(name, format))
            .collect();
        if conversions.is_empty() {
            return Ok(frame);
        }
        frame.lazy().with_columns(conversions).collect()
    }

    /// The `wanted` columns of the block: by the fast path when it can, else by Polars.
    fn read(&self, wanted: &[PlSmallStr], n_rows: Option<usize>) -> Result<PlFrame, PolarsError> {
        match self.scan_fast(wanted, n_rows) {
            Some(frame) => Ok(frame),
            None => self.scan_with_polars(wanted, n_rows),
        }
    }

    /// The general path: Polars' CSV reader on the block, date columns with a known format
    /// read as text and parsed with that format.
    fn scan_with_polars(
        &self,
        wanted: &[PlSmallStr],
        n_rows: Option<usize>,
    ) -> Result<PlFrame, PolarsError> {
        // A read error here is reported again, as rask's error, when the block is diagnosed.
        let lines = self
            .block
            .location
            .read_range(self.begin, self.end)
            .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
        // Polars drops the extra fields of a long line without a word when it reads a
        // projection: refuse such lines unless the user asked for them to be cut.
        if !self.parse.truncate_ragged_lines {
            if let Some(offset) = overlong_record(&lines, &self.parse, self.schema.len()) {
                return Err(PolarsError::ComputeError(
                    format!(
                        "a line at byte {} has more fields than the header",
                        self.begin + offset as u64
                    )
                    .into(),
                ));
            }
        }
        let mut read_schema = self.schema.as_ref().clone();
        for (name, _) in &self.parse.date_formats {
            if let Some(dtype) = read_schema.get_mut(name.as_str()) {
                *dtype = DataType::String;
            }
        }
        let frame = read_options(&self.parse)
            .with_has_header(false)
            .with_schema(Some(Arc::new(read_schema)))
            .with_columns(Some(wanted.iter().cloned().collect()))
            .with_n_rows(n_rows)
            .with_raise_if_empty(false)
            .into_reader_with_file_handle(Cursor::new(lines))
            .finish()?;
        self.parse_dates(frame)
    }
}

impl AnonymousScan for BlockScan {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn scan(&self, args: AnonymousScanArgs) -> Result<PlFrame, PolarsError> {
        let wanted = self.projection(&args);
        if wanted.is_empty() {
            // Only the row count matters (`len()`): read the first column for it.
            let Some(first) = self.schema.iter_names().next() else {
                return Ok(DataFrame::empty());
            };
            let rows = self.read(std::slice::from_ref(first), args.n_rows)?.height();
            return DataFrame::new(rows, Vec::new());
        }
        self.read(&wanted, args.n_rows)
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> Result<SchemaRef, PolarsError> {
        Ok(self.schema.clone())
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }
}

/// Explains why a block did not parse.
fn diagnose(
    block: &CsvBlock,
    lines_start: u64,
    lines: &[u8],
    schema: &Schema,
    parse: &CsvParse,
    error: &PolarsError,
) -> Error {
    let path = block.location.to_string();
    let block_start = lines_start;
    // A line with the wrong number of fields?
    let expected = schema.len();
    let mut offset = 0usize;
    for (index, line) in lines.split(|&b| b == b'\n').enumerate() {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        // Fewer fields are read as null (as Polars and pandas do); more are an error unless
        // the user asked for them to be cut.
        if !text.is_empty() && count_fields(text, parse) > expected && !parse.truncate_ragged_lines
        {
            let line_in_file = block
                .location
                .read_range(0, block_start)
                .map(|prefix| {
                    prefix.iter().filter(|&&b| b == b'\n').count() as u64 + index as u64 + 1
                })
                .unwrap_or(0);
            let mut reason = format!(
                "expected {expected} fields, found {}: {:?}",
                count_fields(text, parse),
                String::from_utf8_lossy(&text[..text.len().min(200)])
            );
            reason.push_str("; to read such lines without their extra fields, use CsvOptions::default().truncate_ragged_lines(true)");
            if text.contains(&parse.quote) {
                reason.push_str(" (if a quoted field holds a line break, read each file whole: CsvOptions::default().blocksize(None))");
            }
            return Error::MalformedCsv {
                path,
                offset: block_start + offset as u64,
                line: line_in_file,
                block_start,
                reason,
            };
        }
        offset += line.len() + 1;
    }
    // Values of other types than the schema says? Parse everything as text and try each column.
    let text_schema: Schema = schema.iter().map(|(n, _)| (n.clone(), DataType::String)).collect();
    let text = read_options(parse)
        .with_has_header(false)
        .with_schema(Some(Arc::new(text_schema)))
        .into_reader_with_file_handle(Cursor::new(lines))
        .finish();
    let Ok(text) = text else {
        return Error::MalformedCsv {
            path,
            offset: block_start,
            line: 0,
            block_start,
            reason: error.to_string(),
        };
    };
    let mut columns = Vec::new();
    for (name, dtype) in schema.iter() {
        if *dtype == DataType::String {
            continue;
        }
        let Ok(values) = text.column(name.as_str()).and_then(|c| c.str().cloned()) else {
            continue;
        };
        let first_bad = values.iter().flatten().find(|value| !parses_as(value, dtype));
        if let Some(example) = first_bad {
            columns.push(ColumnMismatch {
                column: name.to_string(),
                expected: dtype.to_string(),
                found: type_of_text(example),
                example: example.to_string(),
            });
        }
    }
    if columns.is_empty() {
        // The text is fine: the query on top of it failed.
        Error::polars(format!("the query on the block of `{path}` at byte {block_start}"), error)
    } else {
        Error::ColumnTypes { path, columns }
    }
}

/// The offset of the first record with more than `fields` fields, if any. Quotes are
/// followed across line breaks, so a quoted line break does not end a record.
fn overlong_record(bytes: &[u8], parse: &CsvParse, fields: usize) -> Option<usize> {
    let (mut quoted, mut count, mut start) = (false, 1usize, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if b == parse.quote {
            quoted = !quoted;
        } else if !quoted && b == parse.separator {
            count += 1;
            if count > fields {
                return Some(start);
            }
        } else if !quoted && b == b'\n' {
            count = 1;
            start = i + 1;
        }
    }
    None
}

fn count_fields(line: &[u8], parse: &CsvParse) -> usize {
    let mut quoted = false;
    let mut fields = 1;
    for &b in line {
        if b == parse.quote {
            quoted = !quoted;
        } else if b == parse.separator && !quoted {
            fields += 1;
        }
    }
    fields
}

/// Whether a text value parses as `dtype`.
fn parses_as(value: &str, dtype: &DataType) -> bool {
    let v = value.trim();
    match dtype {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            v.parse::<i64>().is_ok()
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            v.parse::<u64>().is_ok()
        }
        DataType::Float32 | DataType::Float64 => v.parse::<f64>().is_ok(),
        DataType::Boolean => matches!(v.to_ascii_lowercase().as_str(), "true" | "false"),
        DataType::Datetime(..) | DataType::Date => {
            let probe = polars::prelude::Column::new("v".into(), [v]);
            let options = StrptimeOptions { strict: true, ..Default::default() };
            probe.as_materialized_series().str().is_ok_and(|s| {
                s.clone()
                    .into_series()
                    .into_frame()
                    .lazy()
                    .select([polars::prelude::col("v").str().to_datetime(
                        None,
                        None,
                        options,
                        polars::prelude::lit("raise"),
                    )])
                    .collect()
                    .is_ok_and(|f| f.column("v").is_ok_and(|c| c.null_count() == 0))
            })
        }
        _ => true,
    }
}

/// The type a text value looks like, as a `DataType` variant name for the suggested override.
fn type_of_text(value: &str) -> String {
    let v = value.trim();
    if v.parse::<i64>().is_ok() {
        "Int64".into()
    } else if v.parse::<f64>().is_ok() {
        "Float64".into()
    } else {
        "String".into()
    }
}

use polars::prelude::IntoSeries as _;

/// The rows of a block: its line breaks counted directly (no parsing) unless the block holds
/// a quote character, when a quoted field might hold a line break and Polars counts instead.
pub fn count_rows(block: &CsvBlock, schema: &Schema, parse: &CsvParse) -> Result<u64> {
    let (begin, end) = block_line_range(block)?;
    let mut rows = 0u64;
    let mut plain = true;
    let mut count = |lines: &[u8]| {
        match plain_lines(lines, parse.quote) {
            Some(n) => rows += n,
            None => plain = false,
        }
        plain
    };
    match &block.location {
        Location::Local(path) => {
            blocks::visit_lines(path, begin, end, blocks::WINDOW_BYTES, &mut count)
                .map_err(|e| Error::io("cannot read", &block.location, e))?;
        }
        Location::Remote { .. } if end > begin => {
            count(&block.location.read_range(begin, end)?);
        }
        Location::Remote { .. } => {}
    }
    if !plain {
        // Quoted fields may hold line breaks, and Polars decides what empty lines are: let
        // it count the rows.
        let counted =
            read_block(block, schema, parse, |lazy| Ok(lazy.select([super::len_expr()])))?;
        return Ok(super::scalar_f64(&counted, "len")? as u64);
    }
    Ok(rows)
}

/// The number of lines in a run of whole lines, or `None` if a quote or an empty line makes
/// counting line breaks unreliable.
fn plain_lines(lines: &[u8], quote: u8) -> Option<u64> {
    if memchr::memchr(quote, lines).is_some() {
        return None;
    }
    let mut rows = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lines) {
        let line = &lines[start..end];
        if line.is_empty() || line == b"\r" {
            return None;
        }
        rows += 1;
        start = end + 1;
    }
    let last = &lines[start..];
    if last == b"\r" {
        return None;
    }
    Some(rows + u64::from(!last.is_empty()))
}

/// Writes a frame as CSV with a header (datetimes in ISO 8601).
pub fn write(frame: &PlFrame, out: &mut dyn std::io::Write) -> Result<()> {
    use polars::prelude::SerWriter as _;
    let mut frame = frame.clone();
    polars::prelude::CsvWriter::new(out)
        .include_header(true)
        .finish(&mut frame)
        .map_err(|e| Error::polars("writing CSV", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::Location;

    /// Cuts the file `text` into blocks of `blocksize` and returns each block's lines as the
    /// tasks read them.
    fn blocks(text: &str, blocksize: u64) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let header_end = blocks::header_end(text.as_bytes());
        blocks::split(text.len() as u64, Some(blocksize))
            .into_iter()
            .map(|range| {
                let block = CsvBlock {
                    location: Location::Local(path.clone()),
                    range,
                    header_end,
                    file_size: text.len() as u64,
                };
                let (start, lines) = block_lines(&block).unwrap();
                let lines = String::from_utf8(lines).unwrap();
                if !lines.is_empty() {
                    assert!(
                        text[start as usize..].starts_with(&lines),
                        "offset {start} of {text:?}"
                    );
                }
                lines
            })
            .collect()
    }

    #[test]
    fn every_line_is_read_once_for_every_block_size() {
        let long_line = format!("a,b\n1,{}\n2,3\n", "x".repeat(3 * blocks::LINE_OVERREAD as usize));
        for text in [
            "a,b\n1,2\n33,44\n555,666\n7,8\n",
            "a,b\r\n1,2\r\n33,44\r\n555,666\r\n",
            "a,b\n1,2\n33,44\n555,666",
            "a,b\n",
            "a,b",
            "h\n\n\nx\n",
            "é,ü\n1,ß\n€,2\n",
        ] {
            let body = &text[blocks::header_end(text.as_bytes()) as usize..];
            for blocksize in 1..=text.len() as u64 + 1 {
                assert_eq!(
                    blocks(text, blocksize).concat(),
                    body,
                    "blocksize {blocksize} of {text:?}"
                );
            }
        }
        // Lines longer than the first read, on both sides of a block boundary.
        let body = &long_line[4..];
        for blocksize in [997, blocks::LINE_OVERREAD + 7, 2 * blocks::LINE_OVERREAD] {
            assert_eq!(blocks(&long_line, blocksize).concat(), body, "blocksize {blocksize}");
        }
    }

    use proptest::prelude::*;

    /// A field of a generated CSV line: (text, whether the fast scanner handles it).
    fn int_field() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => any::<i64>().prop_map(|v| v.to_string()),
            3 => (-1000_i64..1000).prop_map(|v| v.to_string()),
            1 => Just(String::new()),
            1 => (0_i64..100).prop_map(|v| format!("+{v}")),
            1 => null_marker(),
        ]
    }

    /// A default null marker.
    fn null_marker() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "NA", "NaN", "nan", "-nan", "null", "N/A", "#N/A", "None", "-1.#IND",
        ])
        .prop_map(String::from)
    }

    fn float_field() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (-1e6_f64..1e6).prop_map(|v| format!("{v}")),
            2 => (-100.0_f64..100.0).prop_map(|v| format!("{v:.2}")),
            2 => any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:e}")),
            1 => (-50_i64..50).prop_map(|v| v.to_string()),
            1 => Just(String::new()),
            1 => prop::sample::select(vec!["inf", "-inf", ".5", "5.", "1E3", "-0.0"]).prop_map(String::from),
            1 => null_marker(),
        ]
    }

    fn text_field() -> impl Strategy<Value = String> {
        let text = proptest::collection::vec(
            prop::sample::select(vec!['a', 'Z', '7', ' ', 'é', '√', '-', '.', 'N', 'A']),
            0..6,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("no leading whitespace", |t| !t.starts_with(' '));
        let almost =
            prop::sample::select(vec!["Na", "NULLS", "nul", "N/A "]).prop_map(String::from);
        prop_oneof![6 => text, 1 => null_marker(), 1 => almost]
    }

    fn date_field() -> impl Strategy<Value = String> {
        // Any date, or one of a few, so that lines share dates (the scanner remembers the last).
        let date = prop_oneof![
            (1900_i64..2100, 1_i64..13, 1_i64..29),
            (2015_i64..2016, 1_i64..3, 1_i64..3),
        ];
        let datetime =
            (date, 0_i64..24, 0_i64..60, 0_i64..60).prop_map(|((y, mo, d), h, mi, s)| {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            });
        prop_oneof![8 => datetime, 1 => null_marker(), 1 => Just(String::new())]
    }

    fn block() -> impl Strategy<Value = (String, Vec<bool>, Option<usize>)> {
        let line = (int_field(), float_field(), text_field(), date_field(), int_field())
            .prop_map(|(a, b, c, d, e)| format!("{a},{b},{c},{d},{e}"));
        (
            proptest::collection::vec(line, 1..40),
            any::<bool>(),
            proptest::collection::vec(any::<bool>(), 5),
            proptest::option::of(0_usize..50),
        )
            .prop_map(|(lines, crlf, wanted, n_rows)| {
                let end = if crlf { "\r\n" } else { "\n" };
                (lines.join(end) + end, wanted, n_rows)
            })
    }

    /// A scan of `lines` as a whole file (the directory holding it goes with the first value).
    fn block_scan(lines: &str) -> (tempfile::TempDir, BlockScan) {
        let schema: Schema = [
            ("i", DataType::Int64),
            ("f", DataType::Float64),
            ("s", DataType::String),
            ("d", datetime_type()),
            ("j", DataType::Int64),
        ]
        .into_iter()
        .map(|(name, dtype)| (PlSmallStr::from(name), dtype))
        .collect();
        let parse = CsvParse {
            null_values: crate::plan::DEFAULT_NULL_VALUES.iter().map(|m| m.to_string()).collect(),
            parse_dates: vec!["d".into()],
            date_formats: vec![("d".into(), NATIVE_DATE_FORMAT.into())],
            ..CsvParse::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("block.csv");
        std::fs::write(&path, lines).unwrap();
        let size = lines.len() as u64;
        let block = CsvBlock {
            location: Location::Local(path),
            range: blocks::ByteRange { start: 0, end: size },
            header_end: 0,
            file_size: size,
        };
        (dir, BlockScan { block, begin: 0, end: size, schema: Arc::new(schema), parse })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// The fast path reads exactly what Polars' reader reads, for every projection and row
        /// limit, and takes every plain block.
        #[test]
        fn the_fast_path_reads_what_polars_reads((lines, wanted, n_rows) in block()) {
            let (_dir, scan) = block_scan(&lines);
            let names = ["i", "f", "s", "d", "j"];
            let wanted: Vec<PlSmallStr> =
                names.iter().zip(&wanted).filter(|(_, w)| **w).map(|(n, _)| PlSmallStr::from(*n)).collect();
            if wanted.is_empty() {
                let args = AnonymousScanArgs {
                    n_rows,
                    with_columns: Some(Vec::new().into()),
                    schema: scan.schema.clone(),
                    output_schema: None,
                    predicate: None,
                };
                let rows = lines.lines().count().min(n_rows.unwrap_or(usize::MAX));
                prop_assert_eq!(scan.scan(args).expect("a row count").height(), rows);
                return Ok(());
            }
            let polars = scan.scan_with_polars(&wanted, n_rows).expect("Polars reads it");
            match scan.scan_fast(&wanted, n_rows) {
                Some(fast) => prop_assert!(
                    fast.equals_missing(&polars),
                    "fast:\n{fast}\npolars:\n{polars}\nlines:\n{lines}"
                ),
                None => prop_assert!(false, "a plain block left to Polars:\n{lines}"),
            }
        }
    }

    #[test]
    fn blocks_the_fast_path_cannot_read_exactly_go_to_polars_and_read_the_same() {
        for lines in [
            "1,2.5,\"quoted, text\",2015-01-01 00:00:00,3\n", // quotes
            "1,2.5,x,2015-01-01T00:00:00,3\n",                // another date format
            "1,2.5,x,2015-01-01 00:00:00,3\n\n2,3.5,y,2015-01-02 00:00:00,4\n", // an empty line
            "1, 2.5,x,2015-01-01 00:00:00,3\n",               // leading whitespace
        ] {
            let (_dir, scan) = block_scan(lines);
            let all: Vec<PlSmallStr> = scan.schema.iter_names().cloned().collect();
            assert!(scan.scan_fast(&all, None).is_none(), "{lines:?}");
            let args = AnonymousScanArgs {
                n_rows: None,
                with_columns: None,
                schema: scan.schema.clone(),
                output_schema: None,
                predicate: None,
            };
            let via_scan = scan.scan(args);
            let via_polars = scan.scan_with_polars(&all, None);
            match (via_scan, via_polars) {
                (Ok(a), Ok(b)) => assert!(a.equals_missing(&b), "{lines:?}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{lines:?}: {a:?} vs {b:?}"),
            }
        }
    }
}
