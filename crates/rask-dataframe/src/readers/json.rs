//! `read_json`: line-delimited JSON files (one object per line, the format Spark and most
//! log pipelines write) as one DataFrame, one partition per block of about `blocksize` bytes.
//!
//! The blocks are cut at line breaks exactly as CSV blocks are (see [`blocks`]): JSON text
//! holds no raw line break inside a value, so a file can always be split. The schema comes
//! from the first lines of the first file (Polars' inference: the supertype of each field over
//! the sample); `dtypes` overrides it.

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::io::blocks;
use crate::io::store::{self, StorageOptions};
use crate::plan::{CsvBlock, Source};
use crate::polars_adapter::{json as pl_json, DataType};

/// Options of [`read_json`].
#[derive(Clone, Debug)]
pub struct JsonOptions {
    blocksize: Option<u64>,
    dtypes: Vec<(String, DataType)>,
    sample_bytes: u64,
    storage: StorageOptions,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            blocksize: Some(64 * 1024 * 1024),
            dtypes: Vec::new(),
            sample_bytes: 1024 * 1024,
            storage: Vec::new(),
        }
    }
}

impl JsonOptions {
    /// Bytes per partition (default 64 MiB); `None` reads each file as one partition.
    pub fn blocksize(mut self, bytes: Option<u64>) -> Self {
        self.blocksize = bytes;
        self
    }
    /// Types for fields, instead of the inferred ones.
    pub fn dtypes<S: AsRef<str>>(
        mut self,
        dtypes: impl IntoIterator<Item = (S, DataType)>,
    ) -> Self {
        self.dtypes = dtypes.into_iter().map(|(c, t)| (c.as_ref().to_string(), t)).collect();
        self
    }
    /// How many bytes of the first file the schema is inferred from (default 1 MiB).
    pub fn sample_bytes(mut self, bytes: u64) -> Self {
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

/// Reads line-delimited JSON files (a path, a directory, a glob such as `logs/*.json`, or a
/// URL) lazily, one partition per block.
// Options are built inline and taken by value, like the other readers'.
#[allow(clippy::needless_pass_by_value)]
pub fn read_json(pattern: &str, options: JsonOptions) -> Result<DataFrame> {
    let files = store::expand(pattern, &options.storage)?;
    let (first, first_size) = &files[0];
    let sample = first.read_range(0, options.sample_bytes.min(*first_size))?;
    // Whole lines only (the last may be cut by the sample's end).
    let whole = match sample.iter().rposition(|&b| b == b'\n') {
        Some(end) if (sample.len() as u64) < *first_size => &sample[..=end],
        _ => &sample[..],
    };
    let mut schema = pl_json::infer_schema(whole, &first.to_string())?;
    for (column, dtype) in &options.dtypes {
        if !schema.contains(column) {
            return Err(Error::UnknownColumn {
                column: column.clone(),
                context: "JsonOptions::dtypes".into(),
                available: crate::polars_adapter::column_names(&schema),
            });
        }
        schema.with_column(column.as_str().into(), dtype.clone());
    }
    let mut blocks = Vec::new();
    for (location, size) in &files {
        blocks.extend(blocks::split(*size, options.blocksize).into_iter().map(|range| CsvBlock {
            location: location.clone(),
            range,
            header_end: 0,
            file_size: *size,
        }));
    }
    DataFrame::from_source(Source::Json { blocks, schema }, None)
}
