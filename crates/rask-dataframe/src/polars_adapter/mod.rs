//! Every call into Polars, in one place.
//!
//! Polars' Rust API changes between minor releases without deprecation, so rask pins one exact
//! version (see the workspace `Cargo.toml`) and keeps all code that calls it in this module
//! tree: the rest of the crate plans graphs and handles files, and speaks to Polars only
//! through these functions and the re-exported types. Moving to a new Polars release means
//! changing this module and nothing else.
//!
//! * [`steps`](self) — the per-partition query: a lazy frame over the partition's source with
//!   the recorded steps on top, so that Polars pushes projections and filters into the reader;
//! * [`csv`] — parsing blocks, inferring schemas, and explaining type mismatches;
//! * [`parquet`] — metadata, reading pieces, writing files;
//! * [`aggregate`] — the partial, combine and final stages of reductions and group-bys;
//! * [`shuffle`] — rows to outputs (hash or range), checksums, sorting, index values;
//! * [`index`] — `loc` labels as conditions and index keys.

pub mod aggregate;
pub mod asof;
pub mod csv;
pub mod index;
pub mod json;
pub mod parquet;
pub mod resample;
pub mod shuffle;
pub mod window;

use std::io::Cursor;

use polars::prelude::{
    by_name, DataFrame, IntoLazy, IpcReader, IpcWriter, JoinArgs, JoinType, LazyFrame, SerReader,
    SerWriter,
};

use crate::error::{Error, Result};
use crate::plan::{JoinHow, Source, Step};

pub use polars::prelude::{
    col, lit, when, AnyValue, DataType, Expr, PolarsError, Schema, TimeUnit,
};
/// A Polars data frame: what a partition is, and what `compute` returns.
pub type PlFrame = DataFrame;

/// Polars' own setting for the size of its thread pool.
const POLARS_MAX_THREADS: &str = "POLARS_MAX_THREADS";

/// Sizes Polars' thread pool for a process whose parallelism comes from elsewhere — a worker
/// running `threads` tasks at once — unless the user has set `POLARS_MAX_THREADS`. (Dask's
/// nanny sets `OMP_NUM_THREADS=1` in its workers for the same reason.) Two workers on two
/// cores with a pool of two each kept four busy threads on two cores, and rayon's threads spin
/// before they sleep: every step of the taxi benchmark's process cluster that reads data got
/// faster with the pool sized to the worker (`len`, which only counts lines, stayed the same),
/// up to 1.5× on a short step.
///
/// Polars reads the setting once, when its pool starts: call this at process start, before
/// Polars runs and before the process starts threads of its own (it sets an environment
/// variable). Returns the size in effect.
pub fn size_thread_pool_for_worker(threads: usize) -> String {
    match std::env::var(POLARS_MAX_THREADS) {
        Ok(set) => set,
        Err(_) => {
            let threads = threads.max(1).to_string();
            std::env::set_var(POLARS_MAX_THREADS, &threads);
            threads
        }
    }
}

/// A column reference.
pub fn column(name: &str) -> Expr {
    col(name)
}

/// Whether an expression is the plain column `name` (no computation, no alias).
pub fn is_column(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Column(column) if column.as_str() == name)
}

/// The column names of a schema.
pub fn column_names(schema: &Schema) -> Vec<String> {
    schema.iter_names().map(|n| n.to_string()).collect()
}

/// The columns of a schema with their types.
pub fn schema_fields(schema: &Schema) -> Vec<(String, DataType)> {
    schema.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
}

/// A schema from names and types.
pub fn schema_from(fields: &[(String, DataType)]) -> Schema {
    fields.iter().map(|(n, t)| (n.as_str().into(), t.clone())).collect()
}

/// The schema of a frame.
pub fn frame_schema(frame: &PlFrame) -> Schema {
    frame.schema().as_ref().clone()
}

/// How many rows.
pub fn height(frame: &PlFrame) -> usize {
    frame.height()
}

/// A frame with no rows.
pub fn empty(schema: &Schema) -> PlFrame {
    DataFrame::empty_with_schema(schema)
}

/// The schema of a source before any step.
pub fn source_schema(source: &Source) -> Schema {
    match source {
        Source::Csv { schema, .. }
        | Source::Parquet { schema, .. }
        | Source::Json { schema, .. } => schema.clone(),
        Source::Timeseries(spec) => crate::datasets::timeseries_schema(spec),
    }
}

/// The in-memory size of a frame in bytes.
pub fn estimated_size(frame: &PlFrame) -> usize {
    frame.estimated_size()
}

/// A frame as Arrow IPC bytes (how partitions cross processes).
pub fn to_ipc(frame: &PlFrame) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(frame.estimated_size() + 1024);
    let mut frame = frame.clone();
    IpcWriter::new(&mut bytes)
        .finish(&mut frame)
        .map_err(|e| Error::polars("encoding a partition as Arrow IPC", e))?;
    Ok(bytes)
}

/// A frame from Arrow IPC bytes.
pub fn from_ipc(bytes: &[u8]) -> Result<PlFrame> {
    IpcReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| Error::polars("decoding an Arrow IPC partition", e))
}

/// Concatenates frames vertically (an empty list gives an empty frame of `schema`).
pub fn concat(frames: Vec<PlFrame>, schema: &Schema) -> Result<PlFrame> {
    let frames: Vec<PlFrame> =
        frames.into_iter().filter(|f| f.height() > 0 || f.width() > 0).collect();
    if frames.is_empty() {
        return Ok(empty(schema));
    }
    let mut frames = frames.into_iter();
    let mut out = frames.next().expect("not empty");
    for frame in frames {
        out.vstack_mut_owned(frame).map_err(|e| Error::polars("concatenating partitions", e))?;
    }
    Ok(out)
}

/// The groups of a frame by `keys` (nulls a group), in order of first appearance, each with
/// its rows in frame order.
pub fn split_groups(frame: &PlFrame, keys: &[String]) -> Result<Vec<PlFrame>> {
    let fail = |e| Error::polars("splitting a partition into its groups", e);
    if frame.height() == 0 {
        return Ok(Vec::new());
    }
    let grouped = frame.group_by_stable(keys.iter().map(String::as_str)).map_err(fail)?;
    let groups = grouped.get_groups();
    let mut out = Vec::with_capacity(groups.len());
    for group in groups.iter() {
        out.push(match group {
            polars::prelude::GroupsIndicator::Idx((_, rows)) => {
                let rows = polars::prelude::IdxCa::from_vec("rows".into(), rows.to_vec());
                frame.take(&rows).map_err(fail)?
            }
            polars::prelude::GroupsIndicator::Slice([first, len]) => {
                frame.slice(i64::from(first), len as usize)
            }
        });
    }
    Ok(out)
}

/// `frame` with the columns of `other` (of its height) added or replacing its own.
pub fn with_columns_of(frame: &PlFrame, other: &PlFrame) -> Result<PlFrame> {
    let mut out = frame.clone();
    for column in other.columns() {
        out.with_column(column.clone())
            .map_err(|e| Error::polars("adding a transform's columns", e))?;
    }
    Ok(out)
}

/// Rows `offset..offset+len` of a frame.
pub fn slice(frame: &PlFrame, offset: i64, len: usize) -> PlFrame {
    frame.slice(offset, len)
}

/// Expressions that replace nulls with `value` in the columns whose type `value` fits.
pub fn fill_null_all(schema: &Schema, value: &Expr) -> Vec<Expr> {
    schema
        .iter()
        .map(|(name, dtype)| {
            col(name.clone()).fill_null(value.clone().cast(dtype.clone())).alias(name.clone())
        })
        .collect()
}

/// `column` limited to `min..=max`.
pub fn clip(column: &str, min: f64, max: f64) -> Expr {
    col(column).clip(lit(min), lit(max)).alias(column)
}

/// The categorical type whose categories are shared by every frame of the process (and are
/// unified when partitions from other processes arrive).
pub fn categorical() -> DataType {
    DataType::from_categories(polars::prelude::Categories::global())
}

/// The schema after applying `steps` to a frame of `schema`; checks every column reference.
pub fn steps_schema(
    schema: &Schema,
    steps: &[Step],
    extras: &[Schema],
    context: &str,
) -> Result<Schema> {
    let extras: Vec<LazyFrame> = extras.iter().map(|s| empty(s).lazy()).collect();
    let mut lazy = lazy_steps(empty(schema).lazy(), 0, steps, &extras, true)
        .map_err(|e| polars_error(e, schema, context))?;
    let out = lazy.collect_schema().map_err(|e| polars_error(e, schema, context))?;
    Ok(out.as_ref().clone())
}

/// Polars' error as ours: unknown columns become [`Error::UnknownColumn`].
pub fn polars_error(error: PolarsError, schema: &Schema, context: &str) -> Error {
    if let PolarsError::ColumnNotFound(message) = &error {
        let column = message.split('"').nth(1).unwrap_or(message.as_ref()).to_string();
        return Error::UnknownColumn {
            column,
            context: context.to_string(),
            available: column_names(schema),
        };
    }
    Error::polars(context, error)
}

/// Applies steps to an in-memory partition.
pub fn apply_steps(
    frame: PlFrame,
    part: u32,
    steps: &[Step],
    extras: &[&PlFrame],
) -> Result<PlFrame> {
    let schema = frame_schema(&frame);
    let extras: Vec<LazyFrame> = extras.iter().map(|f| (*f).clone().lazy()).collect();
    lazy_steps(frame.lazy(), part, steps, &extras, false)
        .and_then(LazyFrame::collect)
        .map_err(|e| polars_error(e, &schema, "applying per-partition steps"))
}

/// Reads partition `part` of a source with the steps applied in the same query.
pub fn read_source(
    source: &Source,
    part: u32,
    steps: &[Step],
    extras: &[&PlFrame],
) -> Result<PlFrame> {
    let extras: Vec<LazyFrame> = extras.iter().map(|f| (*f).clone().lazy()).collect();
    match source {
        Source::Csv { blocks, schema, parse } => {
            let block = &blocks[part as usize];
            csv::read_block(block, schema, parse, |lazy| {
                lazy_steps(lazy, part, steps, &extras, false)
            })
        }
        Source::Json { blocks, schema } => {
            json::read_block(&blocks[part as usize], schema, |lazy| {
                lazy_steps(lazy, part, steps, &extras, false)
            })
        }
        Source::Parquet { pieces, schema } => {
            let piece = &pieces[part as usize];
            parquet::read_piece(piece, schema, |lazy| lazy_steps(lazy, part, steps, &extras, false))
        }
        Source::Timeseries(spec) => {
            let frame = crate::datasets::timeseries_partition(spec, part)?;
            let schema = frame_schema(&frame);
            lazy_steps(frame.lazy(), part, steps, &extras, false)
                .and_then(LazyFrame::collect)
                .map_err(|e| polars_error(e, &schema, "applying per-partition steps"))
        }
    }
}

/// Builds the lazy query of the steps over `lazy`. With `schema_only`, steps that need data
/// (random sampling) are skipped: they do not change the schema.
fn lazy_steps(
    mut lazy: LazyFrame,
    part: u32,
    steps: &[Step],
    extras: &[LazyFrame],
    schema_only: bool,
) -> Result<LazyFrame, PolarsError> {
    for step in steps {
        lazy = match step {
            Step::Select(exprs) => lazy.select(exprs),
            Step::Filter(predicate) => lazy.filter(predicate.clone()),
            Step::WithColumns(exprs) => lazy.with_columns(exprs),
            Step::Drop(columns) => {
                lazy.drop(by_name(columns.iter().map(String::as_str), true, false))
            }
            Step::Rename { existing, new } => lazy.rename(existing, new, true),
            Step::Cast(types) => lazy.with_columns(
                types
                    .iter()
                    .map(|(c, t)| col(c.as_str()).strict_cast(t.clone()))
                    .collect::<Vec<_>>(),
            ),
            Step::Limit(n) => lazy.limit(*n as _),
            Step::Sort { by, nulls_last } => lazy.sort(
                by.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
                polars::prelude::SortMultipleOptions::new()
                    .with_order_descending_multi(by.iter().map(|(_, d)| *d).collect::<Vec<_>>())
                    .with_nulls_last(*nulls_last)
                    .with_maintain_order(true),
            ),
            Step::PartialAgg(spec) => aggregate::partial_lazy(lazy, spec),
            Step::Unique { subset, keep } => lazy.unique_stable_generic(
                subset.as_ref().map(|s| s.iter().map(|c| col(c.as_str())).collect()),
                match keep {
                    crate::plan::Keep::First => polars::prelude::UniqueKeepStrategy::First,
                    crate::plan::Keep::Last => polars::prelude::UniqueKeepStrategy::Last,
                    crate::plan::Keep::None => polars::prelude::UniqueKeepStrategy::None,
                },
            ),
            Step::Tail(n) => lazy.tail(*n as _),
            Step::Join { right, left_on, right_on, how, suffix } => {
                join_matched(lazy, extras[*right].clone(), left_on, right_on, *how, suffix)
            }
            Step::Sample { fraction, seed } => {
                if schema_only {
                    lazy
                } else {
                    random_rows(&lazy.collect()?, part, *seed, 0.0, *fraction)?.lazy()
                }
            }
            Step::RandomSlice { low, high, seed } => {
                if schema_only {
                    lazy
                } else {
                    random_rows(&lazy.collect()?, part, *seed, *low, *high)?.lazy()
                }
            }
        };
    }
    Ok(lazy)
}

/// Polars' join arguments for a rask join.
fn join_args(how: JoinHow, suffix: &str) -> JoinArgs {
    let join_type = match how {
        JoinHow::Inner => JoinType::Inner,
        JoinHow::Left => JoinType::Left,
        JoinHow::Right => JoinType::Right,
        JoinHow::Outer => JoinType::Full,
        JoinHow::Semi => JoinType::Semi,
        JoinHow::Anti => JoinType::Anti,
    };
    let mut args = JoinArgs::new(join_type).with_suffix(Some(suffix.into()));
    // Rows keep their order, as in a pandas or Dask merge.
    args.maintain_order = polars::prelude::MaintainOrderJoin::Left;
    if how == JoinHow::Outer {
        args.coalesce = polars::prelude::JoinCoalesce::CoalesceColumns;
    }
    args
}

/// Marks the rows of the left side in right and outer joins, so that right rows without a
/// match (null marker) can be told apart from left rows whose columns are null.
const LEFT_ROW: &str = "__rask_left_row";

/// One left partition joined with the whole right side. Right and outer joins keep only the
/// rows that involve this partition: right rows without a match in *any* partition are added
/// once, by [`join_unmatched_right`].
fn join_matched(
    lazy: LazyFrame,
    right: LazyFrame,
    left_on: &[Expr],
    right_on: &[Expr],
    how: JoinHow,
    suffix: &str,
) -> LazyFrame {
    let args = join_args(how, suffix);
    if !how.keeps_unmatched_right() {
        return lazy.join(right, left_on, right_on, args);
    }
    lazy.with_column(lit(true).alias(LEFT_ROW))
        .join(right, left_on, right_on, args)
        .filter(col(LEFT_ROW).is_not_null())
        .drop(by_name([LEFT_ROW], true, false))
}

/// Column references for names.
fn columns(names: &[String]) -> Vec<Expr> {
    names.iter().map(|c| col(c.as_str())).collect()
}

/// Two frames joined whole (each holds every row of its keys: partitions of a shuffle).
pub fn join_frames(
    left: &PlFrame,
    right: &PlFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinHow,
    suffix: &str,
) -> Result<PlFrame> {
    let (left_on, right_on) = (columns(left_on), columns(right_on));
    left.clone()
        .lazy()
        .join(right.clone().lazy(), left_on, right_on, join_args(how, suffix))
        .collect()
        .map(without_sorted_flags)
        .map_err(|e| Error::polars("joining a pair of partitions", e))
}

/// The frame with no column marked sorted. Polars 0.55.2's full join can mark a key column
/// of its result sorted when it is not (found by the join property test: a debug assertion
/// fires when such partitions are concatenated); a wrong flag would let a later `min`, `max`
/// or sort trust an order that is not there, so join results carry none.
fn without_sorted_flags(frame: PlFrame) -> PlFrame {
    let columns: Vec<polars::prelude::Column> = frame
        .into_columns()
        .into_iter()
        .map(|mut column| {
            column.set_sorted_flag(polars::series::IsSorted::Not);
            column
        })
        .collect();
    DataFrame::new_infer_height(columns).expect("the columns of one frame have one height")
}

/// The right rows whose keys match no left row (`left_keys`: every distinct left key), as rows
/// of the join's result: left columns null (for an outer join, the keys in the left key
/// columns).
pub fn join_unmatched_right(
    left_schema: &Schema,
    left_keys: &PlFrame,
    right: &PlFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinHow,
    suffix: &str,
) -> Result<PlFrame> {
    let (left_on, right_on) = (columns(left_on), columns(right_on));
    let unmatched = right.clone().lazy().join(
        left_keys.clone().lazy(),
        &right_on,
        &left_on,
        JoinArgs::new(JoinType::Anti),
    );
    empty(left_schema)
        .lazy()
        .join(unmatched, left_on, right_on, join_args(how, suffix))
        .collect()
        .map(without_sorted_flags)
        .map_err(|e| Error::polars("finding the right rows without a match", e))
}

/// The rows whose seeded uniform draw falls in `low..high`. The draws depend only on the seed,
/// the partition and the row's position, so the pieces of a split are disjoint.
fn random_rows(
    frame: &PlFrame,
    part: u32,
    seed: u64,
    low: f64,
    high: f64,
) -> Result<PlFrame, PolarsError> {
    let mut state = seed ^ (u64::from(part).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mask: polars::prelude::BooleanChunked = (0..frame.height())
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let draw = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
            Some(draw >= low && draw < high)
        })
        .collect();
    frame.filter(&mask)
}

/// A scalar of a one-row frame as `f64` (null as NaN).
pub fn scalar_f64(frame: &PlFrame, column: &str) -> Result<f64> {
    let value = frame
        .column(column)
        .and_then(|c| c.get(0))
        .map_err(|e| Error::polars(format!("reading `{column}`"), e))?;
    Ok(value.extract::<f64>().unwrap_or(f64::NAN))
}

/// A frame's column as `f64` values (nulls as NaN). The cast is strict: values that are not
/// numbers fail naming the column and the values, never become NaN.
pub fn column_f64(frame: &PlFrame, column: &str) -> Result<Vec<f64>> {
    let series = frame
        .column(column)
        .and_then(|c| c.strict_cast(&DataType::Float64))
        .map_err(|e| Error::polars(format!("reading `{column}`"), e))?;
    let values = series.f64().map_err(|e| Error::polars(format!("reading `{column}`"), e))?;
    Ok(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The columns of a frame as one row-major `f64` matrix (rows × columns; nulls as NaN, as in
/// a float column of pandas).
pub fn numeric_matrix(frame: &PlFrame, columns: &[String]) -> Result<Vec<f64>> {
    let values = columns.iter().map(|c| column_f64(frame, c)).collect::<Result<Vec<Vec<f64>>>>()?;
    let rows = height(frame);
    let mut out = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        out.extend(values.iter().map(|column| column[r]));
    }
    Ok(out)
}

/// A frame from `f64` columns.
pub fn frame_f64(columns: Vec<(String, Vec<f64>)>) -> Result<PlFrame> {
    let columns = columns
        .into_iter()
        .map(|(name, values)| polars::prelude::Column::new(name.into(), values))
        .collect();
    DataFrame::new_infer_height(columns).map_err(|e| Error::polars("building a frame", e))
}

/// A frame with one string column and `f64` columns.
pub fn frame_labelled(
    label: &str,
    labels: Vec<String>,
    columns: Vec<(String, Vec<f64>)>,
) -> Result<PlFrame> {
    let mut all = vec![polars::prelude::Column::new(label.into(), labels)];
    all.extend(
        columns.into_iter().map(|(name, values)| polars::prelude::Column::new(name.into(), values)),
    );
    DataFrame::new_infer_height(all).map_err(|e| Error::polars("building a frame", e))
}

/// Whether two frames hold the same values (nulls equal), for tests.
pub fn frames_equal(a: &PlFrame, b: &PlFrame) -> bool {
    a.equals_missing(b)
}

/// Sorts by the given columns (ascending), for deterministic comparisons and outputs.
pub fn sort_by(frame: &PlFrame, columns: &[String]) -> Result<PlFrame> {
    if columns.is_empty() {
        return Ok(frame.clone());
    }
    frame
        .clone()
        .lazy()
        .sort(columns.iter().map(String::as_str).collect::<Vec<_>>(), Default::default())
        .collect()
        .map_err(|e| Error::polars("sorting", e))
}

/// `len()` (rows) as an expression; a count that Polars answers without parsing columns.
pub fn len_expr() -> Expr {
    polars::prelude::len().alias("len")
}

/// Whether a type is numeric.
pub fn is_numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
}

/// What kind of values a column of this type holds, as far as aggregations care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Integers, floats and decimals.
    Number,
    /// `true`/`false` (counted as 1/0 by sums and means, as in Polars and pandas).
    Boolean,
    /// Strings.
    Text,
    /// Dates, datetimes and times of day.
    Temporal,
    /// Durations.
    Duration,
    /// Categoricals and enums.
    Categorical,
    /// Anything else: binary, lists, structs, all-null columns.
    Other,
}

/// The kind of values of a type.
pub fn value_kind(dtype: &DataType) -> ValueKind {
    match dtype {
        DataType::Boolean => ValueKind::Boolean,
        DataType::String => ValueKind::Text,
        DataType::Duration(_) => ValueKind::Duration,
        DataType::Date | DataType::Datetime(..) | DataType::Time => ValueKind::Temporal,
        DataType::Categorical(..) | DataType::Enum(..) => ValueKind::Categorical,
        t if t.is_primitive_numeric() || t.is_decimal() => ValueKind::Number,
        _ => ValueKind::Other,
    }
}

/// A column's values as text (nulls as `null`).
pub fn column_strings(frame: &PlFrame, column: &str) -> Result<Vec<String>> {
    let values = frame
        .column(column)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(|e| Error::polars(format!("reading `{column}`"), e))?;
    let values = values.str().map_err(|e| Error::polars(format!("reading `{column}`"), e))?;
    Ok(values.iter().map(|v| v.unwrap_or("null").to_string()).collect())
}

/// The one-hot column of `column == category` (as text), named `column_category`.
pub fn dummy(column: &str, category: &str) -> Expr {
    col(column)
        .cast(DataType::String)
        .eq(lit(category))
        .fill_null(lit(false))
        .cast(DataType::UInt8)
        .alias(format!("{column}_{category}"))
}

/// The schema of `datasets::timeseries`.
pub fn timeseries_schema() -> Schema {
    schema_from(&[
        ("timestamp".into(), DataType::Datetime(TimeUnit::Microseconds, None)),
        ("id".into(), DataType::Int64),
        ("name".into(), DataType::String),
        ("x".into(), DataType::Float64),
        ("y".into(), DataType::Float64),
    ])
}

/// A `timeseries` partition from its columns (timestamps in microseconds).
pub fn timeseries_frame(
    timestamps: Vec<i64>,
    ids: Vec<i64>,
    names: Vec<&str>,
    xs: Vec<f64>,
    ys: Vec<f64>,
) -> Result<PlFrame> {
    use polars::prelude::Column;
    let timestamp = Column::new("timestamp".into(), timestamps)
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .map_err(|e| Error::polars("building timestamps", e))?;
    DataFrame::new_infer_height(vec![
        timestamp,
        Column::new("id".into(), ids),
        Column::new("name".into(), names),
        Column::new("x".into(), xs),
        Column::new("y".into(), ys),
    ])
    .map_err(|e| Error::polars("building a timeseries partition", e))
}

/// The payment-type lookup table of the taxi data: `payment_type` (Int64), `payment_name`.
pub fn payment_names_frame(names: &[(i64, &str)]) -> Result<PlFrame> {
    use polars::prelude::Column;
    DataFrame::new_infer_height(vec![
        Column::new("payment_type".into(), names.iter().map(|(code, _)| *code).collect::<Vec<_>>()),
        Column::new("payment_name".into(), names.iter().map(|(_, name)| *name).collect::<Vec<_>>()),
    ])
    .map_err(|e| Error::polars("building the payment names", e))
}

/// Whether two frames have the same columns and values, floats within a relative `tolerance`
/// (for comparing results summed in different orders).
pub fn frames_close(a: &PlFrame, b: &PlFrame, tolerance: f64) -> bool {
    if a.get_column_names() != b.get_column_names() || a.height() != b.height() {
        return false;
    }
    a.columns().iter().zip(b.columns()).all(|(ca, cb)| {
        if !(ca.dtype().is_float() || cb.dtype().is_float()) {
            return ca.as_materialized_series().equals_missing(cb.as_materialized_series());
        }
        let (Ok(fa), Ok(fb)) = (ca.cast(&DataType::Float64), cb.cast(&DataType::Float64)) else {
            return false;
        };
        let (Ok(fa), Ok(fb)) = (fa.f64().cloned(), fb.f64().cloned()) else { return false };
        let same = fa.iter().zip(fb.iter()).all(|pair| match pair {
            (Some(x), Some(y)) => {
                (x - y).abs() <= tolerance * (1.0 + x.abs().max(y.abs()))
                    || (x.is_nan() && y.is_nan())
            }
            (None, None) => true,
            _ => false,
        });
        same
    })
}
