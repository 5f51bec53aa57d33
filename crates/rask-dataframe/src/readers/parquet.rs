//! `read_parquet` and `to_parquet`.
//!
//! Reading plans from the files' footers only: the schema, and the rows of every row group,
//! so `len()` of an unfiltered Parquet frame reads no data at all. A partition is a file, or
//! (with `split_row_groups`) one row group. The tasks scan their piece through Polars with the
//! query on top: only the projected columns are read, and row groups whose statistics exclude
//! a filter are skipped.
//!
//! Writing puts one file per partition into a staging directory beside the target and moves
//! it into place only when every partition is written: a failed write leaves the old dataset
//! as it was. On object stores the files are written straight under the prefix.

use rask_core::{
    Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Token, Tokenizer, Value,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::frame::{DataFrame, Divisions};
use crate::io::store::{self, Location, StorageOptions};
use crate::plan::{ParquetPiece, Source};
use crate::polars_adapter::parquet::{self as pl_parquet, Compression};
use crate::tasks::{self, frame_of};

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

/// How `to_parquet` treats a target that exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteMode {
    /// Refuse (the default).
    #[default]
    ErrorIfExists,
    /// Replace the dataset.
    Overwrite,
    /// Add files to it; with an index column, refuse data that overlaps what is there.
    Append,
}

/// Options of [`DataFrame::to_parquet`].
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    compression: Compression,
    mode: WriteMode,
    index: Option<String>,
    storage: StorageOptions,
}

impl WriteOptions {
    /// The compression codec (default Snappy).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    /// Replace an existing dataset.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.mode = if overwrite { WriteMode::Overwrite } else { WriteMode::ErrorIfExists };
        self
    }
    /// Add to an existing dataset.
    pub fn append(mut self, append: bool) -> Self {
        self.mode = if append { WriteMode::Append } else { WriteMode::ErrorIfExists };
        self
    }
    /// The column that orders the dataset: `append` refuses new data whose range of this
    /// column overlaps the existing data's.
    pub fn index(mut self, column: &str) -> Self {
        self.index = Some(column.to_string());
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

/// What one write task reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Written {
    /// Rows written.
    pub rows: u64,
    /// The index column's range in this partition.
    pub range: Option<(f64, f64)>,
}
rask_core::register_type!(Written);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WriteSpec {
    directory: Location,
    first_number: u64,
    compression: Compression,
    index: Option<String>,
}
rask_core::register_type!(WriteSpec);

fn write_part(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let part: &u32 = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing the partition index"))?
        .get(&"partition index")?;
    let spec: &WriteSpec =
        args.get(2).ok_or_else(|| TaskError::msg("missing the write spec"))?.get(&"write spec")?;
    spec.directory
        .join(&format!("part.{}.parquet", spec.first_number + u64::from(*part)))
        .write_with(|out| pl_parquet::write(frame, spec.compression, out))?;
    let range = match &spec.index {
        Some(column) => pl_parquet::min_max(frame, column)?,
        None => None,
    };
    Ok(Value::serde(Written { rows: crate::polars_adapter::height(frame) as u64, range }))
}
rask_core::register_function!("rask_dataframe::write_parquet", write_part);

/// The existing files' numbers, to continue after them on append.
fn existing_numbers(directory: &Location, storage: &StorageOptions) -> Result<Vec<u64>> {
    let pattern = match directory {
        Location::Local(path) => path.display().to_string(),
        Location::Remote { url, .. } => url.clone(),
    };
    let files = match store::expand(&pattern, storage) {
        Ok(files) => files,
        Err(rask_storage::Error::NoFiles { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(files
        .iter()
        .filter_map(|(location, _)| {
            let name = location.to_string();
            let name = name.rsplit('/').next()?.to_string();
            name.strip_prefix("part.")?.strip_suffix(".parquet")?.parse().ok()
        })
        .collect())
}

impl DataFrame {
    /// Writes one Parquet file per partition into the directory `path` (local or a URL) and
    /// returns the number of rows written. Runs now, on the default scheduler.
    // Options are built inline and taken by value, like the readers'.
    #[allow(clippy::needless_pass_by_value)]
    pub fn to_parquet(&self, path: &str, options: WriteOptions) -> Result<u64> {
        let target = Location::parse(path, &options.storage);
        let exists = target.exists()?;
        if exists && options.mode == WriteMode::ErrorIfExists {
            return Err(Error::AlreadyExists { path: path.to_string() });
        }
        if let Some(index) = &options.index {
            self.check_columns(std::slice::from_ref(index), "to_parquet index")?;
        }
        let appending = exists && options.mode == WriteMode::Append;
        let existing =
            if appending { existing_numbers(&target, &options.storage)? } else { Vec::new() };
        let existing_range = match (&options.index, appending) {
            (Some(index), true) => {
                let old = crate::readers::parquet::read_parquet(
                    path,
                    ParquetOptions::default().storage_options(options.storage.clone()),
                )?;
                old.select([crate::polars_adapter::column(index)])?.index_range(index)?
            }
            _ => None,
        };
        let first_number = existing.iter().max().map_or(0, |n| n + 1);
        let token = Token::unique();
        // Local targets are written into a staging directory beside them and renamed into
        // place at the end; object stores have no rename, so files go straight to the prefix.
        let staging = match &target {
            Location::Local(dir) => {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "dataset".into());
                Location::Local(dir.with_file_name(format!(".{name}.rask-staging-{:x}", token.0)))
            }
            remote => {
                if exists && options.mode == WriteMode::Overwrite {
                    remote.delete_prefix()?;
                }
                remote.clone()
            }
        };
        let spec = WriteSpec {
            directory: staging.clone(),
            first_number,
            compression: options.compression,
            index: options.index.clone(),
        };
        let (graph, input) = self.partitions();
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str()).token(token);
        let name = Name::tokenized("to-parquet", tokenizer.finish());
        let func = tasks::function("rask_dataframe::write_parquet");
        let spec_value = Value::serde(spec);
        let write_tasks: Vec<(Key, TaskSpec)> = (0..self.npartitions())
            .map(|i| {
                let args = vec![
                    Arg::Key(Key::part(input.clone(), i)),
                    Arg::Value(Value::serde(i)),
                    Arg::Value(spec_value.clone()),
                ];
                (Key::part(name.clone(), i), TaskSpec::new(func.clone(), args))
            })
            .collect();
        let keys: Vec<Key> = write_tasks.iter().map(|(k, _)| k.clone()).collect();
        let graph = Graph::from_layer(Layer::tasks(name, write_tasks, &[&graph]));
        let result = crate::ops::compute_keys(&graph, &keys);
        let written = match result {
            Ok(values) => values,
            Err(error) => {
                if matches!(staging, Location::Local(_)) {
                    let _ = staging.delete_prefix();
                }
                return Err(error);
            }
        };
        let written: Vec<Written> = written
            .iter()
            .map(|v| v.get::<Written>(&"a write result").cloned().map_err(Error::Engine))
            .collect::<Result<_>>()?;
        if let (Some(index), Some((old_min, old_max))) = (&options.index, existing_range) {
            let new = written.iter().filter_map(|w| w.range).fold(
                None,
                |acc: Option<(f64, f64)>, (lo, hi)| {
                    Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
                },
            );
            if let Some((new_min, new_max)) = new {
                if new_min <= old_max && new_max >= old_min {
                    let _ = staging.delete_prefix();
                    return Err(Error::OverlappingAppend {
                        path: path.to_string(),
                        column: index.clone(),
                        new: format!("{new_min} to {new_max}"),
                        existing: format!("{old_min} to {old_max}"),
                    });
                }
            }
        }
        if let (Location::Local(staging_dir), Location::Local(target_dir)) = (&staging, &target) {
            commit_local(staging_dir, target_dir, appending, token)?;
        }
        Ok(written.iter().map(|w| w.rows).sum())
    }

    /// The min and max of a one-column frame's column (by physical value).
    fn index_range(&self, column: &str) -> Result<Option<(f64, f64)>> {
        let frame = crate::ops::compute_frame(self)?;
        pl_parquet::min_max(&frame, column)
    }
}

/// Moves the staged files into place: renames for a new or overwritten dataset (the old one
/// is moved aside first and deleted last), file by file for an append.
fn commit_local(
    staging: &std::path::Path,
    target: &std::path::Path,
    appending: bool,
    token: Token,
) -> Result<()> {
    fn io<'a>(what: &'static str, p: &'a std::path::Path) -> impl Fn(std::io::Error) -> Error + 'a {
        move |e| Error::io(what, p.display(), e)
    }
    if !staging.exists() {
        std::fs::create_dir_all(staging).map_err(io("cannot write", staging))?;
    }
    if appending {
        for entry in std::fs::read_dir(staging).map_err(io("cannot list", staging))? {
            let entry = entry.map_err(io("cannot list", staging))?;
            let to = target.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(io("cannot move into", target))?;
        }
        std::fs::remove_dir(staging).map_err(io("cannot delete", staging))?;
        return Ok(());
    }
    let old = target.with_file_name(format!(
        ".{}.rask-old-{:x}",
        target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        token.0
    ));
    let had_old = target.exists();
    if had_old {
        std::fs::rename(target, &old).map_err(io("cannot move aside", target))?;
    }
    if let Err(e) = std::fs::rename(staging, target) {
        if had_old {
            let _ = std::fs::rename(&old, target);
        }
        return Err(Error::io("cannot move into place", target.display(), e));
    }
    if had_old {
        if old.is_dir() {
            std::fs::remove_dir_all(&old).map_err(io("cannot delete", &old))?;
        } else {
            std::fs::remove_file(&old).map_err(io("cannot delete", &old))?;
        }
    }
    Ok(())
}
