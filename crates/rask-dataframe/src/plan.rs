//! The per-partition steps a DataFrame records, and the sources it reads from.
//!
//! Consecutive per-partition operations (select, filter, with_columns, rename, cast, a join
//! with a broadcast frame, ...) are not turned into tasks one by one: a [`DataFrame`] keeps
//! them as a list of [`Step`]s and emits **one task per partition** for the whole list when it
//! is needed. That task hands the list to Polars as one lazy query over the partition's
//! source, so Polars' own optimizer pushes the column projection and the filters into the CSV
//! or Parquet reader: a CSV block is parsed only for the columns the query uses, and Parquet
//! row groups whose statistics exclude the filter are skipped.
//!
//! Steps and sources are plain serializable data (expressions are Polars `Expr`s), so the same
//! task runs on a cluster worker of the stock `rask` binary.
//!
//! [`DataFrame`]: crate::DataFrame

use serde::{Deserialize, Serialize};

use crate::io::blocks::ByteRange;
use crate::io::store::Location;
use crate::polars_adapter::{DataType, Expr};

/// One per-partition operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Step {
    /// Keep (or compute) these columns.
    Select(Vec<Expr>),
    /// Keep the rows where the predicate holds.
    Filter(Expr),
    /// Add or replace columns.
    WithColumns(Vec<Expr>),
    /// Remove columns.
    Drop(Vec<String>),
    /// Rename columns.
    Rename {
        /// Old names.
        existing: Vec<String>,
        /// New names, in the same order.
        new: Vec<String>,
    },
    /// Change column types.
    Cast(Vec<(String, DataType)>),
    /// The first `len` rows (head).
    Limit(u32),
    /// The last `len` rows (tail).
    Tail(u32),
    /// Join with broadcast input number `right` (see `DataFrame::join_frame`).
    Join {
        /// Which extra input of the task is the right side.
        right: usize,
        /// Key expressions on this side.
        left_on: Vec<Expr>,
        /// Key expressions on the right side.
        right_on: Vec<Expr>,
        /// Inner or left.
        how: JoinHow,
        /// Suffix for right-side columns whose names clash.
        suffix: String,
    },
    /// A random sample of a fraction of the rows, seeded per partition.
    Sample {
        /// Fraction of rows to keep.
        fraction: f64,
        /// Base seed (the partition index is mixed in).
        seed: u64,
    },
    /// The partial aggregates of a group-by or reduction (the first stage of its tree), so that
    /// reading and aggregating a partition is one query and the reader parses only the
    /// columns the aggregation uses.
    PartialAgg(crate::reduction::GroupSpec),
    /// Sort the partition's rows (stably) by these columns, each `true` for descending.
    Sort {
        /// Columns with their direction.
        by: Vec<(String, bool)>,
        /// Nulls after the values.
        nulls_last: bool,
    },
    /// The rows with duplicates removed (equal in `subset`, or in every column), in order.
    Unique {
        /// The columns that make rows equal (`None`: all).
        subset: Option<Vec<String>>,
        /// Which of the equal rows stays.
        keep: Keep,
    },
    /// The rows whose seeded uniform draw falls in `low..high`: the pieces of a random split
    /// with the same seed are disjoint and cover every row.
    RandomSlice {
        /// Lower bound of the draw (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
        /// Base seed (the partition index is mixed in).
        seed: u64,
    },
}

/// Which of a set of duplicate rows `drop_duplicates` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keep {
    /// The first in frame order.
    First,
    /// The last in frame order.
    Last,
    /// None of them: only rows that have no duplicate stay.
    None,
}

/// How a join keeps rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinHow {
    /// Rows with a match on both sides.
    Inner,
    /// Every row of the left side, with nulls where the right side has no match.
    Left,
    /// Every row of the right side, with nulls where the left side has no match (the right
    /// side's key columns are kept, as in Polars).
    Right,
    /// Every row of both sides (a full outer join), keys coalesced into the left side's key
    /// columns as pandas' and Dask's `merge(how="outer")` do.
    Outer,
    /// The left rows that have a match, with the left columns only.
    Semi,
    /// The left rows that have no match, with the left columns only.
    Anti,
}

impl JoinHow {
    /// Whether right rows without a match are part of the result: then they are found once,
    /// against the keys of every left partition, not in each partition.
    pub fn keeps_unmatched_right(self) -> bool {
        matches!(self, JoinHow::Right | JoinHow::Outer)
    }
}

/// The steps of one fused task, as it travels.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Steps(pub Vec<Step>);
rask_core::register_type!(Steps);

impl Steps {
    /// Whether the steps can change how many rows a partition has.
    pub fn changes_row_count(&self) -> bool {
        self.0.iter().any(|step| {
            matches!(
                step,
                Step::Filter(_)
                    | Step::Limit(_)
                    | Step::Tail(_)
                    | Step::Join { .. }
                    | Step::Sample { .. }
                    | Step::RandomSlice { .. }
                    | Step::Unique { .. }
                    | Step::PartialAgg(_)
            )
        })
    }
}

/// How to parse CSV text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvParse {
    /// Field separator.
    pub separator: u8,
    /// Quote character.
    pub quote: u8,
    /// Strings read as null (besides the empty field, which is always null). `read_csv`
    /// puts pandas' default markers here unless `keep_default_na(false)`.
    pub null_values: Vec<String>,
    /// Lines with more fields than the header are cut to the header's fields (Polars'
    /// `truncate_ragged_lines`); missing fields at the end of a line are read as null.
    pub truncate_ragged_lines: bool,
    /// Values that do not parse as their column's type are read as null instead of failing
    /// the read.
    pub ignore_errors: bool,
    /// Columns parsed as datetimes.
    pub parse_dates: Vec<String>,
    /// The format of each `parse_dates` column found in the sample (`%Y-%m-%d %H:%M:%S`):
    /// parsing with a known format is several times faster than guessing per value.
    pub date_formats: Vec<(String, String)>,
}

impl Default for CsvParse {
    fn default() -> Self {
        CsvParse {
            separator: b',',
            quote: b'"',
            null_values: Vec::new(),
            truncate_ragged_lines: false,
            ignore_errors: false,
            parse_dates: Vec::new(),
            date_formats: Vec::new(),
        }
    }
}

/// The text `pd.read_csv` reads as a missing value by default (pandas' `STR_NA_VALUES`, less
/// the empty field, which is null anyway): rask reads them as null too unless
/// `CsvOptions::keep_default_na(false)`.
pub const DEFAULT_NULL_VALUES: [&str; 18] = [
    "NA", "N/A", "n/a", "NaN", "-NaN", "nan", "-nan", "null", "NULL", "None", "<NA>", "#N/A",
    "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN",
];

/// Whether a text value looks like a marker for a missing value (one of pandas' markers in
/// any case, or a placeholder people write by hand: `-`, `?`, `missing`, ...), so that an
/// error can suggest `null_values` instead of a type.
pub fn looks_like_null_marker(value: &str) -> bool {
    let value = value.trim();
    const HAND_WRITTEN: [&str; 12] =
        ["-", "--", "---", "?", "??", ".", "missing", "unknown", "none", "nil", "n.a.", "na"];
    DEFAULT_NULL_VALUES.iter().any(|m| m.eq_ignore_ascii_case(value))
        || HAND_WRITTEN.iter().any(|m| m.eq_ignore_ascii_case(value))
}

/// What the CSV sample showed of a column read as text, to suggest the right fix when an
/// operation needs numbers: a marker for missing values (`null_values`), or a type (`dtypes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextSample {
    /// The column.
    pub column: String,
    /// How many of its sampled values parse as numbers.
    pub numbers: usize,
    /// A few distinct sampled values that do not, in the order met.
    pub others: Vec<String>,
}

/// One partition of a text format (CSV, JSON lines): a block of a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CsvBlock {
    /// The file.
    pub location: Location,
    /// Its bytes.
    pub range: ByteRange,
    /// Where the header line ends (no block returns it).
    pub header_end: u64,
    /// The file's size.
    pub file_size: u64,
}

/// One Parquet partition: a file, or some of its row groups.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParquetPiece {
    /// The file.
    pub location: Location,
    /// The first row of the piece within the file.
    pub row_offset: u64,
    /// How many rows.
    pub rows: u64,
    /// Whether the piece is the whole file.
    pub whole_file: bool,
}

/// Where the partitions of a DataFrame come from before any step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Source {
    /// Blocks of CSV files.
    Csv {
        /// One block per partition.
        blocks: Vec<CsvBlock>,
        /// The column names and types (from the sample, with overrides).
        schema: crate::polars_adapter::Schema,
        /// Parsing options.
        parse: CsvParse,
    },
    /// Parquet files or row groups.
    Parquet {
        /// One piece per partition.
        pieces: Vec<ParquetPiece>,
        /// The schema of the files.
        schema: crate::polars_adapter::Schema,
    },
    /// Blocks of line-delimited JSON files.
    Json {
        /// One block per partition (no header).
        blocks: Vec<CsvBlock>,
        /// The fields and their types (from the sample, with overrides).
        schema: crate::polars_adapter::Schema,
    },
    /// `datasets::timeseries`: generated partitions.
    Timeseries(crate::datasets::TimeseriesSpec),
}
rask_core::register_type!(Source);

impl Source {
    /// How many partitions the source has.
    pub fn npartitions(&self) -> u32 {
        match self {
            Source::Csv { blocks, .. } | Source::Json { blocks, .. } => blocks.len() as u32,
            Source::Parquet { pieces, .. } => pieces.len() as u32,
            Source::Timeseries(spec) => spec.npartitions(),
        }
    }

    /// The name of the tasks that read it.
    pub fn prefix(&self) -> &'static str {
        match self {
            Source::Csv { .. } => "read-csv",
            Source::Json { .. } => "read-json",
            Source::Parquet { .. } => "read-parquet",
            Source::Timeseries(_) => "timeseries",
        }
    }
}
