//! `read_parquet` and `to_parquet`.
//!
//! Reading plans from the files' footers only: the schema, and the rows of every row group,
//! so `len()` of an unfiltered Parquet frame reads no data at all. A partition is a file, or
//! (with `split_row_groups`) one row group. The tasks scan their piece through Polars with the
//! query on top: only the projected columns are read, and row groups whose statistics exclude
//! a filter are skipped.
//!
//! `to_parquet` is [`super::write`]'s, with `to_csv`.

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::frame::{DataFrame, Divisions};
use crate::io::store::{self, Location, StorageOptions};
use crate::plan::{ParquetPiece, Source};
use crate::polars_adapter::parquet as pl_parquet;

/// Options of [`read_parquet`].
#[derive(Clone, Debug, Default)]
pub struct ParquetOptions {
    split_row_groups: bool,
    columns: Option<Vec<String>>,
    index: Option<String>,
    index_range: Option<(f64, f64)>,
    storage: StorageOptions,
}

impl ParquetOptions {
    /// One partition per row group instead of per file.
    pub fn split_row_groups(mut self, split: bool) -> Self {
        self.split_row_groups = split;
        self
    }

    /// Read only these columns.
    pub fn columns<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(|c| c.as_ref().to_string()).collect());
        self
    }

    /// The column that orders the data: each partition's bounds of it (its *divisions*) come
    /// from the row-group statistics, without reading data.
    pub fn index(mut self, column: &str) -> Self {
        self.index = Some(column.to_string());
        self
    }

    /// Keep only the partitions whose index statistics overlap `low..=high` (numbers; dates
    /// and times by their physical value). Rows are not filtered: add a `filter` for that.
    pub fn index_range(mut self, low: f64, high: f64) -> Self {
        self.index_range = Some((low, high));
        self
    }

    /// Options for object stores.
    pub fn storage_options<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.storage = store::storage_options(options);
        self
    }
}

/// Reads Parquet files (a file, a directory of them, a glob, or a URL) lazily.
pub fn read_parquet(pattern: &str, options: ParquetOptions) -> Result<DataFrame> {
    let ParquetOptions { split_row_groups, columns, index, index_range, storage } = options;
    if index_range.is_some() && index.is_none() {
        return Err(Error::Invalid(
            "index_range needs the index column: ParquetOptions::default().index(\"column\").index_range(low, high)".into(),
        ));
    }
    let files = store::expand(pattern, &storage)?;
    let metas = read_footers(
        &files.into_iter().map(|(location, _)| location).collect::<Vec<_>>(),
        index.as_deref(),
    )?;
    let mut pieces = Vec::new();
    // Each piece's index bounds (None: no statistics for it).
    let mut bounds: Vec<Option<(f64, f64)>> = Vec::new();
    let mut schema = None;
    for (location, meta) in metas {
        match &schema {
            None => schema = Some(meta.schema.clone()),
            Some(first) if *first != meta.schema => {
                return Err(Error::Invalid(format!(
                    "`{location}` has other columns than the first file of `{pattern}`: read them separately and concat them"
                )))
            }
            Some(_) => {}
        }
        if split_row_groups && meta.row_groups.len() > 1 {
            let mut offset = 0;
            for (rows, range) in meta.row_groups.iter().zip(&meta.index_ranges) {
                pieces.push(ParquetPiece {
                    location: location.clone(),
                    row_offset: offset,
                    rows: *rows,
                    whole_file: false,
                });
                bounds.push(*range);
                offset += rows;
            }
        } else {
            let rows = meta.row_groups.iter().sum();
            // A file's bounds: the union of its row groups' (unknown if any is unknown).
            let range = meta.index_ranges.iter().try_fold(None, |acc: Option<(f64, f64)>, r| {
                let (lo, hi) = (*r)?;
                Some(Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi)))))
            });
            pieces.push(ParquetPiece { location, row_offset: 0, rows, whole_file: true });
            bounds.push(range.flatten());
        }
    }
    let schema = schema.expect("expand returns at least one file");
    if let Some(index) = &index {
        if schema.get(index.as_str()).is_none() {
            return Err(Error::UnknownColumn {
                column: index.clone(),
                context: "read_parquet index".into(),
                available: crate::polars_adapter::column_names(&schema),
            });
        }
    }
    // Partitions whose statistics rule the range out are not read at all.
    if let Some((low, high)) = index_range {
        let keep: Vec<bool> =
            bounds.iter().map(|b| b.is_none_or(|(lo, hi)| hi >= low && lo <= high)).collect();
        let mut keep_iter = keep.iter();
        pieces.retain(|_| *keep_iter.next().expect("one flag per piece"));
        let mut keep_iter = keep.iter();
        bounds.retain(|_| *keep_iter.next().expect("one flag per piece"));
        if pieces.is_empty() {
            return Err(Error::Invalid(format!(
                "no partition of `{pattern}` has `{}` values in {low}..={high}",
                index.as_deref().unwrap_or_default()
            )));
        }
    }
    let rows = pieces.iter().map(|p| p.rows).collect();
    let mut frame = DataFrame::from_source(Source::Parquet { pieces, schema }, Some(rows))?;
    if let (Some(column), Some(bounds)) = (index, bounds.into_iter().collect::<Option<Vec<_>>>()) {
        frame.divisions = Some(Arc::new(Divisions { column, bounds }));
    }
    frame.project(columns.as_deref(), "read_parquet columns")
}

/// Reads the footers of many files on all cores (on object stores each is a round trip).
fn read_footers(
    locations: &[Location],
    index: Option<&str>,
) -> Result<Vec<(Location, pl_parquet::ParquetMeta)>> {
    let threads =
        std::thread::available_parallelism().map_or(2, |n| n.get()).min(locations.len().max(1));
    let chunk = locations.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let readers: Vec<_> = locations
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|location| {
                            Ok((location.clone(), pl_parquet::metadata(location, index)?))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(locations.len());
        for reader in readers {
            all.extend(reader.join().expect("reading a Parquet footer panicked")?);
        }
        Ok(all)
    })
}
