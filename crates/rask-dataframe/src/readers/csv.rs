//! `read_csv`: many CSV files as one DataFrame, one partition per block of about
//! `blocksize` bytes.
//!
//! Planning reads only the first bytes of the first file (the schema comes from that sample)
//! and the sizes of the files; the blocks are cut by the tasks themselves (see
//! [`blocks`](super::blocks)). A column that turns out to hold other values than the sample
//! showed fails the task that meets them with an error listing every such column and the
//! `dtypes` override that fixes it.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::io::blocks;
use crate::io::store::{self, Location, StorageOptions};
use crate::plan::{CsvBlock, CsvParse, Source, DEFAULT_NULL_VALUES};
use crate::polars_adapter::{csv as pl_csv, DataType};

/// Options of [`read_csv`]; `CsvOptions::default()` reads comma-separated files with a header.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    blocksize: Option<u64>,
    dtypes: Vec<(String, DataType)>,
    usecols: Option<Vec<String>>,
    parse: CsvParse,
    /// Markers read as null besides the defaults (`null_values`).
    null_values: Vec<String>,
    keep_default_na: bool,
    sample_bytes: usize,
    storage: StorageOptions,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            blocksize: Some(64 * 1024 * 1024),
            dtypes: Vec::new(),
            usecols: None,
            parse: CsvParse::default(),
            null_values: Vec::new(),
            keep_default_na: true,
            sample_bytes: 256 * 1024,
            storage: Vec::new(),
        }
    }
}

impl CsvOptions {
    /// Bytes per partition (default 64 MiB); `None` reads each file as one partition (needed
    /// when quoted fields hold line breaks).
    pub fn blocksize(mut self, bytes: Option<u64>) -> Self {
        self.blocksize = bytes;
        self
    }

    /// Column types that override the inferred ones.
    pub fn dtypes<S: AsRef<str>>(
        mut self,
        dtypes: impl IntoIterator<Item = (S, DataType)>,
    ) -> Self {
        self.dtypes = dtypes.into_iter().map(|(c, t)| (c.as_ref().to_string(), t)).collect();
        self
    }

    /// Read only these columns.
    pub fn usecols<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.usecols = Some(columns.into_iter().map(|c| c.as_ref().to_string()).collect());
        self
    }

    /// Columns to parse as datetimes.
    pub fn parse_dates<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.parse.parse_dates = columns.into_iter().map(|c| c.as_ref().to_string()).collect();
        self
    }

    /// The field separator (default `,`).
    pub fn separator(mut self, separator: u8) -> Self {
        self.parse.separator = separator;
        self
    }

    /// More strings read as null (for example `-` or `?`), besides the empty field and
    /// pandas' default markers (`NA`, `N/A`, `NaN`, `null`, `None`, ... — see
    /// [`DEFAULT_NULL_VALUES`](crate::plan::DEFAULT_NULL_VALUES)), as `pd.read_csv`'s
    /// `na_values` does.
    pub fn null_values<S: AsRef<str>>(mut self, values: impl IntoIterator<Item = S>) -> Self {
        self.null_values = values.into_iter().map(|v| v.as_ref().to_string()).collect();
        self
    }

    /// Whether pandas' default null markers are read as null (default `true`); with `false`
    /// only the empty field and the `null_values` given are (pandas' `keep_default_na`).
    pub fn keep_default_na(mut self, keep: bool) -> Self {
        self.keep_default_na = keep;
        self
    }

    /// Reads lines with more fields than the header by dropping the extra fields (default:
    /// such a line is an error naming it). Missing fields at the end of a line are null.
    pub fn truncate_ragged_lines(mut self, truncate: bool) -> Self {
        self.parse.truncate_ragged_lines = truncate;
        self
    }

    /// Reads values that do not parse as their column's type as null (default: the read fails
    /// naming the column and an example value). Use it when a few bad values may be lost;
    /// `dtypes` or `null_values` are the exact fixes.
    pub fn ignore_errors(mut self, ignore: bool) -> Self {
        self.parse.ignore_errors = ignore;
        self
    }

    /// How many bytes of the first file the schema is inferred from (default 256 KiB).
    pub fn sample_bytes(mut self, bytes: usize) -> Self {
        self.sample_bytes = bytes.max(1);
        self
    }

    /// Options for object stores (`aws_endpoint`, `aws_access_key_id`, ...).
    pub fn storage_options<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.storage = store::storage_options(options);
        self
    }
}

/// Reads CSV files (a path, a directory, a glob such as `data/*.csv`, or a URL such as
/// `s3://bucket/trips/*.csv`) lazily, one partition per block.
pub fn read_csv(pattern: &str, options: CsvOptions) -> Result<DataFrame> {
    let CsvOptions {
        blocksize,
        dtypes,
        usecols,
        mut parse,
        null_values,
        keep_default_na,
        sample_bytes,
        storage,
    } = options;
    parse.null_values = if keep_default_na {
        DEFAULT_NULL_VALUES.iter().map(|m| m.to_string()).collect()
    } else {
        Vec::new()
    };
    for marker in null_values {
        if !parse.null_values.contains(&marker) {
            parse.null_values.push(marker);
        }
    }
    let files = store::expand(pattern, &storage)?;
    let (first, first_size) = &files[0];
    let sample = first.read_range(0, (sample_bytes as u64).min(*first_size))?;
    let (schema, text_samples) =
        pl_csv::infer_schema(&sample, &mut parse, &dtypes, &first.to_string())?;
    let mut blocks = Vec::new();
    for (location, size) in &files {
        let header_end = if location == first {
            blocks::header_end(&sample)
        } else {
            let head = location.read_range(0, (64 * 1024u64).min(*size))?;
            check_header(location, &head, &sample, parse.separator)?;
            blocks::header_end(&head)
        };
        let ranges = blocks::split(*size, blocksize);
        if ranges.len() > 1 {
            refuse_quoted_newlines(location, &parse, sample_bytes, *size)?;
        }
        blocks.extend(ranges.into_iter().map(|range| CsvBlock {
            location: location.clone(),
            range,
            header_end,
            file_size: *size,
        }));
    }
    let mut frame = DataFrame::from_source(Source::Csv { blocks, schema, parse }, None)?;
    frame.text_samples = Some(Arc::new(text_samples));
    frame.project(usecols.as_deref(), "usecols")
}

/// Every file must have the first file's header: a different one means different columns.
fn check_header(
    location: &Location,
    head: &[u8],
    first_sample: &[u8],
    separator: u8,
) -> Result<()> {
    let line = |bytes: &[u8]| {
        let end = blocks::header_end(bytes) as usize;
        String::from_utf8_lossy(&bytes[..end]).trim_end().to_string()
    };
    let (this, first) = (line(head), line(first_sample));
    if this != first {
        return Err(Error::Invalid(format!(
            "`{location}` has the header {:?} but the first file has {:?}: read files with different columns separately and concat them",
            this.split(separator as char).collect::<Vec<_>>(),
            first.split(separator as char).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// A file with line breaks inside quoted fields cannot be cut at arbitrary line breaks.
fn refuse_quoted_newlines(
    location: &Location,
    parse: &CsvParse,
    sample_bytes: usize,
    size: u64,
) -> Result<()> {
    let sample = location.read_range(0, (sample_bytes as u64).min(size))?;
    if let Some(offset) = blocks::quoted_newline(&sample, parse.quote) {
        return Err(Error::Invalid(format!(
            "`{location}` has a line break inside a quoted field (at byte {offset}), so it cannot be split into blocks at line breaks: read each file whole with CsvOptions::default().blocksize(None)"
        )));
    }
    Ok(())
}
