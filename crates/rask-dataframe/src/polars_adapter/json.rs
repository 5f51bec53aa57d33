//! Line-delimited JSON through Polars' NDJSON parser: the schema of a sample, and the lines of
//! one block parsed with the query on top.

use std::num::NonZeroUsize;

use polars::prelude::{IntoLazy, LazyFrame, PolarsResult};

use super::{csv::block_lines, PlFrame, Schema};
use crate::error::{Error, Result};
use crate::plan::CsvBlock;

/// The fields of the JSON objects in `sample` (whole lines), with their types.
pub fn infer_schema(sample: &[u8], path: &str) -> Result<Schema> {
    let mut reader = std::io::Cursor::new(sample);
    polars_io::ndjson::infer_schema(&mut reader, NonZeroUsize::new(10_000)).map_err(|e| {
        Error::Polars {
            context: format!("inferring the fields of the JSON lines in `{path}`"),
            reason: e.to_string(),
        }
    })
}

/// Parses the lines a block owns as `schema` and runs `query` over them.
pub fn read_block(
    block: &CsvBlock,
    schema: &Schema,
    query: impl FnOnce(LazyFrame) -> PolarsResult<LazyFrame>,
) -> Result<PlFrame> {
    let (begin, lines) = block_lines(block)?;
    let where_ = || format!("reading the JSON lines of `{}` from byte {begin}", block.location);
    let frame = polars_io::ndjson::core::parse_ndjson(&lines, None, schema, false)
        .map_err(|e| Error::Polars { context: where_(), reason: e.to_string() })?;
    query(frame.lazy())
        .and_then(LazyFrame::collect)
        .map_err(|e| Error::Polars { context: where_(), reason: e.to_string() })
}
