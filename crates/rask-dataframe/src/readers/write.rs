//! Writing datasets: [`DataFrame::to_parquet`] and [`DataFrame::to_csv`], one file per
//! partition.
//!
//! The files go into a staging directory beside the target and are moved into place only when
//! every partition is written: a failed write leaves the old dataset as it was. On object
//! stores the files are written straight under the prefix. `append` continues the numbering
//! after the files that are there.

use rask_core::{
    Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Token, Tokenizer, Value,
};
use serde::{Deserialize, Serialize};

use super::parquet::ParquetOptions;
use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::io::store::{self, Location, StorageOptions};
use crate::polars_adapter::csv as pl_csv;
use crate::polars_adapter::parquet::{self as pl_parquet, Compression};
use crate::tasks::{self, frame_of};

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

/// Options of [`DataFrame::to_parquet`] and [`DataFrame::to_csv`].
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    compression: Compression,
    mode: WriteMode,
    index: Option<String>,
    storage: StorageOptions,
}

impl WriteOptions {
    /// The compression codec of Parquet files (default Snappy).
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

/// The format of the files a dataset is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum FileFormat {
    Parquet(Compression),
    Csv,
}

impl FileFormat {
    fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet(_) => "parquet",
            FileFormat::Csv => "csv",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WriteSpec {
    directory: Location,
    first_number: u64,
    format: FileFormat,
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
    let number = spec.first_number + u64::from(*part);
    spec.directory.join(&format!("part.{number}.{}", spec.format.extension())).write_with(
        |out| match spec.format {
            FileFormat::Parquet(compression) => pl_parquet::write(frame, compression, out),
            FileFormat::Csv => pl_csv::write(frame, out),
        },
    )?;
    let range = match &spec.index {
        Some(column) => pl_parquet::min_max(frame, column)?,
        None => None,
    };
    Ok(Value::serde(Written { rows: crate::polars_adapter::height(frame) as u64, range }))
}
rask_core::register_function!("rask_dataframe::write_dataset", write_part);

/// The existing files' numbers, to continue after them on append.
fn existing_numbers(
    directory: &Location,
    storage: &StorageOptions,
    format: FileFormat,
) -> Result<Vec<u64>> {
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
            name.strip_prefix("part.")?
                .strip_suffix(&format!(".{}", format.extension()))?
                .parse()
                .ok()
        })
        .collect())
}

impl DataFrame {
    /// Writes one Parquet file per partition (`part.N.parquet`) into the directory `path`
    /// (local or a URL) and returns the number of rows written. Runs now, on the default
    /// scheduler.
    // Options are built inline and taken by value, like the readers'.
    #[allow(clippy::needless_pass_by_value)]
    pub fn to_parquet(&self, path: &str, options: WriteOptions) -> Result<u64> {
        self.write_dataset(path, &options, FileFormat::Parquet(options.compression))
    }

    /// Writes one CSV file per partition (`part.N.csv`, each with a header; datetimes in ISO
    /// 8601) into the directory `path` (local or a URL), as [`to_parquet`](Self::to_parquet)
    /// does, and returns the number of rows written.
    #[allow(clippy::needless_pass_by_value)]
    pub fn to_csv(&self, path: &str, options: WriteOptions) -> Result<u64> {
        if options.index.is_some() {
            return Err(Error::Invalid(
                "to_csv takes no index: the overlap check of an append reads Parquet statistics; write Parquet, or append without .index".into(),
            ));
        }
        self.write_dataset(path, &options, FileFormat::Csv)
    }

    fn write_dataset(&self, path: &str, options: &WriteOptions, format: FileFormat) -> Result<u64> {
        let target = Location::parse(path, &options.storage);
        let exists = target.exists()?;
        if exists && options.mode == WriteMode::ErrorIfExists {
            return Err(Error::AlreadyExists { path: path.to_string() });
        }
        if let Some(index) = &options.index {
            self.check_columns(std::slice::from_ref(index), "to_parquet index")?;
        }
        let appending = exists && options.mode == WriteMode::Append;
        let existing = if appending {
            existing_numbers(&target, &options.storage, format)?
        } else {
            Vec::new()
        };
        let existing_range = match (&options.index, appending) {
            (Some(index), true) => {
                let old = super::parquet::read_parquet(
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
            format,
            index: options.index.clone(),
        };
        let (graph, input) = self.partitions();
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str()).token(token);
        let name = Name::tokenized(&format!("to-{}", format.extension()), tokenizer.finish());
        let func = tasks::function("rask_dataframe::write_dataset");
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
