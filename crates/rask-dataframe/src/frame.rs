//! [`DataFrame`]: a lazy collection of Polars frames.
//!
//! A DataFrame is its input (a [`Source`] such as CSV blocks, or the partitions of a graph),
//! the per-partition [`Step`]s recorded since, and the schema those steps produce (computed
//! when each step is added, so a wrong column name fails at once, naming the column). Nothing
//! is read until `compute`/`persist` (or an operation that needs data, like `head`). Then the
//! steps are emitted as one task per partition ([`DataFrame::partitions`]) and the operations
//! that combine partitions (reductions, group-bys, concatenation) add tasks over those.

use std::fmt;
use std::sync::Arc;

use rask_core::{
    Arg, Collection, Delayed, Graph, Key, Layer, Name, TaskSpec, Token, Tokenizer, Value,
};

use crate::error::{Error, Result};
use crate::plan::{Source, Step, Steps, TextSample};
use crate::polars_adapter::{self as pl, DataType, Expr, PlFrame, Schema};
use crate::tasks;

/// Where the partitions of a frame come from.
#[derive(Clone)]
pub(crate) enum Input {
    /// Read from a source by the first task of each partition. The source is kept as one
    /// shared serde value (a `Source`): every task and every graph of the frame refers to the
    /// same value, which is never copied.
    Source(Value, Token),
    /// Partition `i` is the key `(name, i)` of the graph.
    Partitions(Graph, Name),
}

/// A broadcast input of the steps (the right side of a join).
#[derive(Clone)]
pub(crate) enum Extra {
    /// An in-memory Polars frame, sent with the tasks.
    Frame(Value, Token),
    /// The result of one task of a graph, with its schema.
    Key(Graph, Key, Arc<Schema>),
}

/// Where each partition lies along the column that orders the data (Dask's *divisions*):
/// partition `i` holds values of `column` within `bounds[i]` (inclusive; numbers, and dates
/// and times by their physical value).
#[derive(Clone, Debug, PartialEq)]
pub struct Divisions {
    /// The index column.
    pub column: String,
    /// `(min, max)` per partition.
    pub bounds: Vec<(f64, f64)>,
}

impl Divisions {
    /// Whether the partitions are in order: each one's values come after the previous one's.
    pub fn sorted(&self) -> bool {
        self.bounds.windows(2).all(|w| w[0].1 <= w[1].0)
    }
}

/// A lazy, partitioned DataFrame whose partitions are Polars frames.
#[derive(Clone)]
pub struct DataFrame {
    pub(crate) input: Input,
    pub(crate) steps: Vec<Step>,
    pub(crate) extras: Vec<Extra>,
    pub(crate) schema: Arc<Schema>,
    /// The schema of the input, before the steps.
    pub(crate) base_schema: Arc<Schema>,
    pub(crate) npartitions: u32,
    /// Rows per partition, when known without reading data (Parquet metadata).
    pub(crate) known_rows: Option<Arc<Vec<u64>>>,
    /// Index bounds per partition, when known (Parquet statistics).
    pub(crate) divisions: Option<Arc<Divisions>>,
    /// What the CSV sample showed of the text columns, for errors that suggest a fix.
    pub(crate) text_samples: Option<Arc<Vec<TextSample>>>,
}

impl DataFrame {
    pub(crate) fn from_source(source: Source, known_rows: Option<Vec<u64>>) -> Result<Self> {
        let schema = Arc::new(pl::source_schema(&source));
        let mut tokenizer = Tokenizer::new();
        let bytes = rmp_serde::to_vec(&source).map_err(|e| {
            Error::Invalid(format!(
                "the plan of a {} source cannot be serialized: {e}",
                source.prefix()
            ))
        })?;
        tokenizer.bytes(&bytes);
        Ok(DataFrame {
            npartitions: source.npartitions(),
            input: Input::Source(Value::serde(source), tokenizer.finish()),
            steps: Vec::new(),
            extras: Vec::new(),
            base_schema: schema.clone(),
            schema,
            known_rows: known_rows.map(Arc::new),
            divisions: None,
            text_samples: None,
        })
    }

    /// A frame whose partition `i` is `(name, i)` in `graph`.
    pub(crate) fn from_partitions(
        graph: Graph,
        name: Name,
        npartitions: u32,
        schema: Arc<Schema>,
    ) -> Self {
        DataFrame {
            input: Input::Partitions(graph, name),
            steps: Vec::new(),
            extras: Vec::new(),
            base_schema: schema.clone(),
            schema,
            npartitions,
            known_rows: None,
            divisions: None,
            text_samples: None,
        }
    }

    /// The column names.
    pub fn columns(&self) -> Vec<String> {
        pl::column_names(&self.schema)
    }

    /// The columns with their types.
    pub fn dtypes(&self) -> Vec<(String, DataType)> {
        pl::schema_fields(&self.schema)
    }

    /// The schema (column names and types) of the result.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The index bounds of every partition, when known (see [`Divisions`]).
    pub fn divisions(&self) -> Option<&Divisions> {
        self.divisions.as_deref()
    }

    /// How many partitions (tasks per step) the frame has.
    pub fn npartitions(&self) -> u32 {
        self.npartitions
    }

    /// A new frame with one more step; checks the step against the schema now.
    pub(crate) fn with_step(&self, step: Step, context: &str) -> Result<Self> {
        let mut steps = self.steps.clone();
        steps.push(step);
        let extra_schemas: Vec<Schema> =
            self.extras.iter().map(extra_schema).collect::<Result<_>>()?;
        let schema = pl::steps_schema(&self.base_schema, &steps, &extra_schemas, context)?;
        let changes_rows = Steps(steps.clone()).changes_row_count();
        let divisions = self.divisions.as_ref().and_then(|d| divisions_after(d, steps.last()?));
        Ok(DataFrame {
            steps,
            schema: Arc::new(schema),
            known_rows: if changes_rows { None } else { self.known_rows.clone() },
            divisions,
            ..self.clone()
        })
    }

    /// Keep or compute columns: `df.select([col("a"), (col("b") * lit(2)).alias("b2")])`.
    pub fn select(&self, exprs: impl IntoIterator<Item = Expr>) -> Result<Self> {
        self.with_step(Step::Select(exprs.into_iter().collect()), "select")
    }

    /// Keep the rows where `predicate` is true.
    pub fn filter(&self, predicate: Expr) -> Result<Self> {
        self.with_step(Step::Filter(predicate), "filter")
    }

    /// Add or replace columns.
    pub fn with_columns(&self, exprs: impl IntoIterator<Item = Expr>) -> Result<Self> {
        self.with_step(Step::WithColumns(exprs.into_iter().collect()), "with_columns")
    }

    /// Add or replace one column.
    pub fn with_column(&self, expr: Expr) -> Result<Self> {
        self.with_columns([expr])
    }

    /// Remove columns.
    pub fn drop<S: AsRef<str>>(&self, columns: impl IntoIterator<Item = S>) -> Result<Self> {
        let columns: Vec<String> = columns.into_iter().map(|c| c.as_ref().to_string()).collect();
        self.check_columns(&columns, "drop")?;
        self.with_step(Step::Drop(columns), "drop")
    }

    /// Rename columns: `df.rename([("old", "new")])`.
    pub fn rename<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Self> {
        let (existing, new): (Vec<String>, Vec<String>) = pairs
            .into_iter()
            .map(|(a, b)| (a.as_ref().to_string(), b.as_ref().to_string()))
            .unzip();
        self.check_columns(&existing, "rename")?;
        self.with_step(Step::Rename { existing, new }, "rename")
    }

    /// Change column types: `df.cast([("passenger_count", DataType::Int32)])`.
    pub fn cast<S: AsRef<str>>(
        &self,
        types: impl IntoIterator<Item = (S, DataType)>,
    ) -> Result<Self> {
        let types: Vec<(String, DataType)> =
            types.into_iter().map(|(c, t)| (c.as_ref().to_string(), t)).collect();
        let names: Vec<String> = types.iter().map(|(c, _)| c.clone()).collect();
        self.check_columns(&names, "cast")?;
        self.with_step(Step::Cast(types), "cast")
    }

    /// Replace nulls in every column with `value` (columns of other types are left alone).
    // Expressions are taken by value everywhere, as in Polars.
    #[allow(clippy::needless_pass_by_value)]
    pub fn fill_null(&self, value: Expr) -> Result<Self> {
        self.with_columns(pl::fill_null_all(&self.schema, &value))
    }

    /// Limit `column` to `min..=max`.
    pub fn clip(&self, column: &str, min: f64, max: f64) -> Result<Self> {
        self.check_columns(&[column.to_string()], "clip")?;
        self.with_column(pl::clip(column, min, max))
    }

    /// Turns string columns into categoricals. Their categories are not known up front:
    /// each partition finds its own, and results that combine partitions unify them.
    pub fn categorize<S: AsRef<str>>(&self, columns: impl IntoIterator<Item = S>) -> Result<Self> {
        let columns: Vec<(String, DataType)> =
            columns.into_iter().map(|c| (c.as_ref().to_string(), pl::categorical())).collect();
        self.cast(columns)
    }

    /// Only `columns`, when given (the readers' `usecols`/`columns`; the projection reaches the
    /// reader through the fused query).
    pub(crate) fn project(&self, columns: Option<&[String]>, context: &str) -> Result<Self> {
        match columns {
            Some(columns) => {
                self.check_columns(columns, context)?;
                self.select(columns.iter().map(|c| pl::column(c)))
            }
            None => Ok(self.clone()),
        }
    }

    pub(crate) fn check_columns(&self, columns: &[String], context: &str) -> Result<()> {
        let available = self.columns();
        match columns.iter().find(|c| !available.contains(c)) {
            Some(missing) => Err(Error::UnknownColumn {
                column: missing.clone(),
                context: context.to_string(),
                available,
            }),
            None => Ok(()),
        }
    }

    /// A random sample of about `fraction` of the rows of every partition. The same seed
    /// gives the same sample.
    pub fn sample(&self, fraction: f64, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::Invalid(format!(
                "sample fraction must be in 0..=1, got {fraction}"
            )));
        }
        self.with_step(Step::Sample { fraction, seed }, "sample")
    }

    /// Splits the rows at random into frames with about the given fractions of them (which
    /// are normalized to sum to one). The pieces are disjoint and together hold every row.
    pub fn random_split(&self, fractions: &[f64], seed: u64) -> Result<Vec<Self>> {
        let total: f64 = fractions.iter().sum();
        if fractions.is_empty() || fractions.iter().any(|f| *f < 0.0) || total <= 0.0 {
            return Err(Error::Invalid(format!(
                "random_split needs non-negative fractions with a positive sum, got {fractions:?}"
            )));
        }
        let mut low = 0.0;
        fractions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let high = if i + 1 == fractions.len() { 1.0 } else { low + f / total };
                let piece = self.with_step(Step::RandomSlice { low, high, seed }, "random_split");
                low = high;
                piece
            })
            .collect()
    }

    /// The graph and the layer name whose keys `(name, i)` are this frame's partitions: the
    /// steps are emitted here, one task per partition.
    pub fn partitions(&self) -> (Graph, Name) {
        if self.steps.is_empty() {
            if let Input::Partitions(graph, name) = &self.input {
                return (graph.clone(), name.clone());
            }
        }
        let steps = Steps(self.steps.clone());
        let mut tokenizer = Tokenizer::new();
        match rmp_serde::to_vec(&steps) {
            Ok(bytes) => tokenizer.bytes(&bytes),
            // Steps that cannot be serialized (an expression with a closure) cannot be named by
            // their content: a unique name keeps two such frames from sharing results.
            Err(_) => tokenizer.token(Token::unique()),
        };
        let mut inputs: Vec<&Graph> = Vec::new();
        type PartitionArgs = Box<dyn Fn(u32) -> Vec<Arg>>;
        let (prefix, head): (&str, PartitionArgs) = match &self.input {
            Input::Source(source_value, token) => {
                tokenizer.token(*token);
                let source_value = source_value.clone();
                (
                    source_of(&source_value).prefix(),
                    Box::new(move |i| {
                        vec![Arg::Value(source_value.clone()), Arg::Value(Value::serde(i))]
                    }),
                )
            }
            Input::Partitions(graph, name) => {
                tokenizer.str(name.as_str());
                inputs.push(graph);
                let name = name.clone();
                (
                    "apply",
                    Box::new(move |i| {
                        vec![Arg::Key(Key::part(name.clone(), i)), Arg::Value(Value::serde(i))]
                    }),
                )
            }
        };
        let mut extra_args = Vec::new();
        for extra in &self.extras {
            match extra {
                Extra::Frame(value, token) => {
                    tokenizer.token(*token);
                    extra_args.push(Arg::Value(value.clone()));
                }
                Extra::Key(graph, key, _) => {
                    tokenizer.key(key);
                    inputs.push(graph);
                    extra_args.push(Arg::Key(key.clone()));
                }
            }
        }
        let name = Name::tokenized(prefix, tokenizer.finish());
        let func = match &self.input {
            Input::Source(..) => tasks::read_function(),
            Input::Partitions(..) => tasks::apply_function(),
        };
        let steps_value = Value::serde(steps);
        let task_list = (0..self.npartitions)
            .map(|i| {
                let mut args = head(i);
                args.push(Arg::Value(steps_value.clone()));
                args.push(Arg::List(extra_args.clone()));
                (Key::part(name.clone(), i), TaskSpec::new(func.clone(), args))
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(name.clone(), task_list, &inputs));
        (graph, name)
    }

    /// The keys of the partitions.
    pub fn partition_keys(&self) -> Vec<Key> {
        let (_, name) = self.partitions();
        (0..self.npartitions).map(|i| Key::part(name.clone(), i)).collect()
    }

    /// One `Delayed` per partition, like Dask's `to_delayed`.
    pub fn to_delayed(&self) -> Vec<Delayed<PlFrame>> {
        let (graph, name) = self.partitions();
        (0..self.npartitions)
            .map(|i| Delayed::from_graph(graph.clone(), Key::part(name.clone(), i)))
            .collect()
    }

    /// A frame whose partitions are the given delayed Polars frames; `schema` is the schema
    /// they all have.
    pub fn from_delayed(parts: &[Delayed<PlFrame>], schema: Schema) -> Result<Self> {
        if parts.is_empty() {
            return Err(Error::Invalid("from_delayed needs at least one partition".into()));
        }
        let mut tokenizer = Tokenizer::new();
        parts.iter().for_each(|d| {
            tokenizer.key(d.key());
        });
        let name = Name::tokenized("from-delayed", tokenizer.finish());
        let graphs: Vec<Graph> = parts.iter().map(Delayed::graph).collect();
        let identity = rask_core::registry::lookup("rask::identity")?;
        let tasks = parts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    Key::part(name.clone(), i as u32),
                    TaskSpec::new(identity.clone(), vec![Arg::Key(d.key().clone())]),
                )
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(
            name.clone(),
            tasks,
            &graphs.iter().collect::<Vec<_>>(),
        ));
        Ok(DataFrame::from_partitions(graph, name, parts.len() as u32, Arc::new(schema)))
    }
}

/// The divisions after one more step: they stay true for steps that keep a subset of the rows
/// and leave the index column as it is, follow a rename, and are dropped for any step that may
/// replace the column (with_columns, a cast of it, a select without it as a plain column).
fn divisions_after(divisions: &Arc<Divisions>, step: &Step) -> Option<Arc<Divisions>> {
    let index = divisions.column.as_str();
    match step {
        Step::Filter(_)
        | Step::Limit(_)
        | Step::Tail(_)
        | Step::Sample { .. }
        | Step::Sort { .. }
        | Step::Unique { .. }
        | Step::RandomSlice { .. } => Some(divisions.clone()),
        Step::Drop(columns) => (!columns.iter().any(|c| c == index)).then(|| divisions.clone()),
        Step::Cast(types) => (!types.iter().any(|(c, _)| c == index)).then(|| divisions.clone()),
        Step::Select(exprs) => {
            exprs.iter().any(|e| pl::is_column(e, index)).then(|| divisions.clone())
        }
        Step::Rename { existing, new } => match existing.iter().position(|c| c == index) {
            Some(i) => Some(Arc::new(Divisions {
                column: new[i].clone(),
                bounds: divisions.bounds.clone(),
            })),
            None => Some(divisions.clone()),
        },
        Step::WithColumns(_) | Step::Join { .. } | Step::PartialAgg(_) => None,
    }
}

/// The `Source` inside an input's source value.
pub(crate) fn source_of(value: &Value) -> &Source {
    value.downcast_ref::<Source>().expect("Input::Source holds a Source value")
}

fn extra_schema(extra: &Extra) -> Result<Schema> {
    match extra {
        Extra::Frame(value, _) => Ok(pl::frame_schema(tasks::frame_of(value)?)),
        Extra::Key(_, _, schema) => Ok(Schema::clone(schema)),
    }
}

impl Collection for DataFrame {
    type Output = PlFrame;

    fn graph(&self) -> Graph {
        self.partitions().0
    }

    fn output_keys(&self) -> Vec<Key> {
        self.partition_keys()
    }

    fn optimizations(&self) -> rask_core::Optimizations {
        rask_core::Optimizations::default().with_custom(crate::optimize::share_reads)
    }

    fn finalize(&self, values: Vec<Value>) -> rask_core::Result<PlFrame> {
        let frames =
            values.iter().map(tasks::frame_of).collect::<Result<Vec<_>>>().map_err(to_core)?;
        pl::concat(frames.into_iter().cloned().collect(), &self.schema).map_err(to_core)
    }
}

/// Our errors as the engine's, for the `Collection` trait (which speaks `rask_core::Error`).
pub(crate) fn to_core(error: Error) -> rask_core::Error {
    match error {
        Error::Engine(e) => e,
        other => rask_core::Error::Finalize { collection: "DataFrame", reason: other.to_string() },
    }
}

impl fmt::Display for DataFrame {
    /// Like Dask's lazy repr: the structure, no data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rask DataFrame: npartitions={}", self.npartitions)?;
        let fields = self.dtypes();
        let width = fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(6);
        writeln!(f, "{:width$}  dtype", "column")?;
        for (name, dtype) in &fields {
            writeln!(f, "{name:width$}  {dtype}")?;
        }
        match &self.divisions {
            Some(d) => writeln!(
                f,
                "divisions on `{}`: {} ({})",
                d.column,
                d.bounds
                    .iter()
                    .map(|(lo, hi)| format!("{lo}..={hi}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if d.sorted() { "sorted" } else { "overlapping" }
            )?,
            None => writeln!(f, "divisions unknown")?,
        }
        let pending = self.steps.len();
        write!(f, "{} pending per-partition step{}", pending, if pending == 1 { "" } else { "s" })
    }
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
