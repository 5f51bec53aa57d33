//! The one error type of `rask-dataframe`.
//!
//! Every message names the thing that is wrong (the file, the column, the byte offset) and says
//! how to fix it, because a data engineer reading it is usually in the middle of a long job.

use std::fmt;

/// The result type of `rask-dataframe`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or running a DataFrame computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Finding, reading or writing files and objects (`rask-storage`): a path or glob that
    /// matches nothing, a store that cannot be reached.
    #[error(transparent)]
    Storage(rask_storage::Error),
    /// A file could not be opened, read or written.
    #[error("{action} `{path}`: {reason}")]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The file or URL.
        path: String,
        /// The cause.
        reason: String,
    },
    /// A CSV line could not be parsed.
    #[error("malformed CSV in `{path}` at byte {offset} (line {line}; the block starts at byte {block_start}): {reason}")]
    MalformedCsv {
        /// The file.
        path: String,
        /// The byte offset of the first line of the failing block.
        offset: u64,
        /// The line within that block (1-based), where the parser knows it.
        line: u64,
        /// Where the block starts.
        block_start: u64,
        /// What the parser said.
        reason: String,
    },
    /// Columns hold values of another type than the sample suggested.
    #[error("{}", TypeMismatches(.path, .columns))]
    ColumnTypes {
        /// The file.
        path: String,
        /// Every offending column.
        columns: Vec<ColumnMismatch>,
    },
    /// A column named in an expression does not exist.
    #[error("unknown column `{column}` in {context}; the columns are: {}", .available.join(", "))]
    UnknownColumn {
        /// The missing name.
        column: String,
        /// The operation that named it.
        context: String,
        /// The columns that do exist.
        available: Vec<String>,
    },
    /// A Parquet file is not valid Parquet.
    #[error("`{path}` is not a valid Parquet file: {reason}")]
    CorruptParquet {
        /// The file.
        path: String,
        /// What the reader said.
        reason: String,
    },
    /// The target of a write exists and neither `overwrite` nor `append` was asked for.
    #[error("`{path}` already exists: pass `.overwrite(true)` to replace it or `.append(true)` to add partitions to it")]
    AlreadyExists {
        /// The target.
        path: String,
    },
    /// Appended data overlaps what the dataset holds.
    #[error("cannot append to `{path}`: the new data's `{column}` values ({new}) overlap the existing ones ({existing}); append only data that sorts after it, or overwrite")]
    OverlappingAppend {
        /// The dataset.
        path: String,
        /// The index column.
        column: String,
        /// The new range.
        new: String,
        /// The existing range.
        existing: String,
    },
    /// An aggregation was given a column whose type it cannot take (a text column to `mean`).
    #[error("cannot take `{operation}` of `{column}`: it is a {dtype} column, and {operation} needs {needs}; {fix}")]
    AggregationType {
        /// The aggregation (`mean`, `corr`, ...).
        operation: String,
        /// The column.
        column: String,
        /// Its type.
        dtype: String,
        /// What the aggregation takes.
        needs: &'static str,
        /// How to fix it, from what the data showed.
        fix: String,
    },
    /// The arguments of an operation do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// Polars reported an error.
    #[error("{context}: {reason}")]
    Polars {
        /// The operation.
        context: String,
        /// What Polars said.
        reason: String,
    },
    /// The engine failed (a task error, a cancelled computation, a cluster error).
    #[error(transparent)]
    Engine(#[from] rask_core::Error),
}

/// One column whose values do not fit the type inferred from the sample.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnMismatch {
    /// The column.
    pub column: String,
    /// The type from the sample (or from `dtypes`).
    pub expected: String,
    /// The type its values really have.
    pub found: String,
    /// A value that does not parse.
    pub example: String,
}

struct TypeMismatches<'a>(&'a String, &'a Vec<ColumnMismatch>);

impl fmt::Display for TypeMismatches<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TypeMismatches(path, columns) = self;
        write!(f, "columns of `{path}` hold values of another type than the sample at the start of the data showed:")?;
        for c in columns.iter() {
            write!(
                f,
                "\n  - `{}`: expected {}, found {} (for example {:?})",
                c.column, c.expected, c.found, c.example
            )?;
        }
        // A placeholder for a missing value (`-`, `?`, `NA` with the defaults off) is fixed by
        // reading it as null, not by reading the column as text.
        let (markers, typed): (Vec<&ColumnMismatch>, Vec<&ColumnMismatch>) =
            columns.iter().partition(|c| crate::plan::looks_like_null_marker(&c.example));
        if !markers.is_empty() {
            let mut values: Vec<String> =
                markers.iter().map(|c| format!("{:?}", c.example.trim())).collect();
            values.dedup();
            write!(
                f,
                "\n{} look{} like a marker for a missing value: read it as null with CsvOptions::default().null_values([{}])",
                values.join(", "),
                if values.len() == 1 { "s" } else { "" },
                values.join(", ")
            )?;
        }
        if !typed.is_empty() {
            let overrides: Vec<String> = typed
                .iter()
                .map(|c| format!("(\"{}\", DataType::{})", c.column, c.found))
                .collect();
            write!(
                f,
                "\nset the types explicitly: CsvOptions::default().dtypes([{}])",
                overrides.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Polars' error messages give the advice of its Python API (`truncate_ragged_lines=True`,
/// `schema_overrides`, ...), which a rask user cannot follow: this puts rask's own options in
/// their place.
pub(crate) fn rask_advice(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut lines = message.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.starts_with("Consider setting 'truncate_ragged_lines") {
            out.push_str("Read such lines with CsvOptions::default().truncate_ragged_lines(true) (extra fields are dropped).\n");
        } else if trimmed.contains("infer_schema_length") {
            out.push_str("- reading more of the file for the schema: CsvOptions::default().sample_bytes(...) (default 256 KiB),\n");
        } else if trimmed.contains("schema_overrides") {
            out.push_str("- setting the column's type: CsvOptions::default().dtypes([(\"column\", DataType::...)]),\n");
        } else if trimmed.contains("`ignore_errors`") {
            out.push_str("- reading values that do not parse as null: CsvOptions::default().ignore_errors(true),\n");
        } else if let Some(rest) = trimmed.strip_prefix("- adding `") {
            let value = rest.split('`').next().unwrap_or_default();
            out.push_str(&format!(
                "- reading {value:?} as null: CsvOptions::default().null_values([{value:?}]).\n"
            ));
        } else if trimmed.contains("`strict=False`") {
            out.push_str("- a non-strict cast, which turns values that do not convert into null: with_columns([col(\"column\").cast(DataType::...)])\n");
        } else {
            out.push_str(line);
            if lines.peek().is_some() {
                out.push('\n');
            }
        }
    }
    out
}

impl Error {
    pub(crate) fn polars(context: impl Into<String>, error: impl fmt::Display) -> Self {
        Error::Polars { context: context.into(), reason: rask_advice(&error.to_string()) }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl fmt::Display,
        error: impl fmt::Display,
    ) -> Self {
        Error::Io { action, path: path.to_string(), reason: error.to_string() }
    }
}

impl From<rask_storage::Error> for Error {
    /// I/O failures keep this crate's `Io` variant (its own reads and writes report the same).
    fn from(error: rask_storage::Error) -> Self {
        match error {
            rask_storage::Error::Io { action, path, reason } => Error::Io { action, path, reason },
            other => Error::Storage(other),
        }
    }
}
