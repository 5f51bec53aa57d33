//! CSV through Polars: parsing one block with the query on top, inferring a schema from a
//! sample, and explaining what went wrong when a block does not parse.

use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::{
    CsvReadOptions, DataType, IntoLazy, LazyCsvReader, LazyFileListReader, LazyFrame, NullValues,
    PolarsError, ScanSource, Schema, SerReader, StrptimeOptions, TimeUnit,
};

use super::{column_names, polars_error, PlFrame};
use crate::error::{ColumnMismatch, Error, Result};
use crate::io::blocks;
use crate::plan::{CsvBlock, CsvParse};

fn null_values(parse: &CsvParse) -> Option<NullValues> {
    (!parse.null_values.is_empty()).then(|| {
        NullValues::AllColumns(parse.null_values.iter().map(|s| s.as_str().into()).collect())
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
/// applies `parse_dates` (finding each column's format) and the `dtypes` overrides.
pub fn infer_schema(
    sample: &[u8],
    parse: &mut CsvParse,
    dtypes: &[(String, DataType)],
    path: &str,
) -> Result<Schema> {
    let cut = sample.iter().rposition(|&b| b == b'\n').map_or(sample.len(), |p| p + 1);
    let frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .map_parse_options(|p| {
            p.with_separator(parse.separator)
                .with_quote_char(Some(parse.quote))
                .with_null_values(null_values(parse))
        })
        .into_reader_with_file_handle(Cursor::new(&sample[..cut]))
        .finish()
        .map_err(|e| Error::io("cannot infer the columns of", path, e))?;
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
    Ok(schema)
}

/// Reads the lines a block owns (see [`blocks`]): its range, the byte before it, and the rest
/// of the line that crosses its end. Returns the file offset of the first line and the lines.
pub fn block_lines(block: &CsvBlock) -> Result<(u64, Vec<u8>)> {
    let range = &block.range;
    let begin = first_line_start(block, range.start.max(block.header_end))?;
    if begin >= range.end.max(block.header_end) && range.end < block.file_size {
        // No line starts in this range (a line longer than the block, or the header).
        return Ok((begin, Vec::new()));
    }
    // Read from the block's first line, so the bytes go to the parser without a shift, to the
    // end of the line that crosses the block's end.
    let mut read_to = (range.end + blocks::LINE_OVERREAD).min(block.file_size).max(begin);
    let mut window = block.location.read_range(begin, read_to)?;
    if range.end >= block.file_size {
        return Ok((begin, window)); // the last block: everything from its first line on
    }
    // The next block's first line starts after the first line break at or after end - 1;
    // here `begin < range.end`, so that byte is inside the window.
    let from = (range.end - 1 - begin) as usize;
    loop {
        if let Some(offset) = window[from.min(window.len())..].iter().position(|&b| b == b'\n') {
            window.truncate(from + offset + 1);
            return Ok((begin, window));
        }
        if read_to >= block.file_size {
            return Ok((begin, window));
        }
        let more_to = (read_to + blocks::LINE_OVERREAD * 16).min(block.file_size);
        window.extend(block.location.read_range(read_to, more_to)?);
        read_to = more_to;
    }
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
    let (lines_start, lines) = block_lines(block)?;
    if lines.is_empty() {
        let empty = super::empty(schema).lazy();
        return steps(empty)
            .and_then(LazyFrame::collect)
            .map_err(|e| polars_error(e, schema, "reading CSV"));
    }
    // Date columns with a known format are read as text and parsed with that format.
    let mut scan_schema = schema.clone();
    for (name, _) in &parse.date_formats {
        if let Some(dtype) = scan_schema.get_mut(name.as_str()) {
            *dtype = DataType::String;
        }
    }
    let conversions: Vec<polars::prelude::Expr> =
        parse.date_formats.iter().map(|(name, format)| to_datetime(name, format)).collect();
    // The bytes move into the scan (no copy); a failing block is read again to diagnose it.
    let source = ScanSource::Buffer(lines.into()).into_sources();
    let lazy = LazyCsvReader::new_with_sources(source)
        .with_has_header(false)
        .with_schema(Some(Arc::new(scan_schema)))
        .with_separator(parse.separator)
        .with_quote_char(Some(parse.quote))
        .with_null_values(null_values(parse))
        .with_raise_if_empty(false)
        .finish();
    let lazy =
        lazy.map(|lazy| if conversions.is_empty() { lazy } else { lazy.with_columns(conversions) });
    let result = lazy.and_then(steps).and_then(LazyFrame::collect);
    match result {
        Ok(frame) => Ok(frame),
        Err(PolarsError::ColumnNotFound(message)) => {
            Err(polars_error(PolarsError::ColumnNotFound(message), schema, "reading CSV"))
        }
        Err(error) => match block_lines(block) {
            Ok((_, lines)) => Err(diagnose(block, lines_start, &lines, schema, parse, &error)),
            Err(read_again) => Err(read_again),
        },
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
        if !text.is_empty() && count_fields(text, parse) != expected {
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
    let text = CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(Arc::new(text_schema)))
        .map_parse_options(|p| {
            p.with_separator(parse.separator)
                .with_quote_char(Some(parse.quote))
                .with_null_values(null_values(parse))
        })
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
        Error::MalformedCsv {
            path,
            offset: block_start,
            line: 0,
            block_start,
            reason: error.to_string(),
        }
    } else {
        Error::ColumnTypes { path, columns }
    }
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
    let (_, lines) = block_lines(block)?;
    if lines.contains(&parse.quote) {
        let counted =
            read_block(block, schema, parse, |lazy| Ok(lazy.select([super::len_expr()])))?;
        return Ok(super::scalar_f64(&counted, "len")? as u64);
    }
    let mut rows = 0u64;
    let mut start = 0usize;
    for (index, &byte) in lines.iter().enumerate() {
        if byte == b'\n' {
            let line = &lines[start..index];
            // Polars skips empty lines; so does the count.
            if !(line.is_empty() || line == b"\r") {
                rows += 1;
            }
            start = index + 1;
        }
    }
    if start < lines.len() && &lines[start..] != b"\r" {
        rows += 1;
    }
    Ok(rows)
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
}
