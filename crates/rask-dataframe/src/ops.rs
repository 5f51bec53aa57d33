//! Operations that reshape partitions or need data now: `len`, `head`/`tail`, `persist`,
//! `concat`, `repartition`, `from_polars`, `map_partitions`, correlation and covariance,
//! approximate quantiles, `to_dummies`.
//!
//! Eager operations (`head`, `tail`, `persist`, `to_parquet`, finding categories for
//! `to_dummies`) run on the default scheduler: a distributed client if one is installed
//! (`Client::set_as_default`), the local threaded scheduler otherwise.

use std::sync::Arc;

use rask_core::{
    Arg, Delayed, Graph, Key, Layer, Name, Optimizations, Scheduler, TaskError, TaskFn, TaskResult,
    TaskSpec, Token, Tokenizer, Value,
};
use rask_local::current_scheduler as scheduler;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::plan::Step;
use crate::polars_adapter::{self as pl, PlFrame};
use crate::sketch::Sketch;
use crate::tasks::{self, frame_of, frames_of, partition_value};
use crate::typecheck::Needs;

/// Computes some keys of a graph on the default scheduler.
pub(crate) fn compute_keys(graph: &Graph, keys: &[Key]) -> Result<Vec<Value>> {
    Ok(scheduler().compute(graph, keys, &Optimizations::default())?)
}

/// Computes a frame into one Polars frame on the default scheduler.
pub(crate) fn compute_frame(frame: &DataFrame) -> Result<PlFrame> {
    let keys = frame.partition_keys();
    let values = compute_keys(&frame.partitions().0, &keys)?;
    let frames = values.iter().map(|v| frame_of(v).cloned()).collect::<Result<Vec<_>>>()?;
    pl::concat(frames, frame.schema())
}

fn new_name(prefix: &str, parts: &[&str], token: Option<Token>) -> Name {
    let mut tokenizer = Tokenizer::new();
    parts.iter().for_each(|p| {
        tokenizer.str(p);
    });
    if let Some(token) = token {
        tokenizer.token(token);
    }
    Name::tokenized(prefix, tokenizer.finish())
}

/// Correlation or covariance partials: count, sums and cross products of complete rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Moments {
    n: f64,
    sums: Vec<f64>,
    cross: Vec<f64>,
}
rask_core::register_type!(Moments);

fn list_arg<'a>(args: &'a [Value], what: &str) -> std::result::Result<&'a [Value], TaskError> {
    args.first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg(format!("missing the list of {what}")))
}

fn columns_arg(args: &[Value], index: usize) -> std::result::Result<&Vec<String>, TaskError> {
    Ok(args
        .get(index)
        .ok_or_else(|| TaskError::msg("missing the columns"))?
        .get::<Vec<String>>(&"columns")?)
}

fn moments_partial(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let columns = columns_arg(args, 1)?;
    let data: Vec<Vec<f64>> =
        columns.iter().map(|c| pl::column_f64(frame, c)).collect::<Result<_>>()?;
    let k = columns.len();
    let mut m = Moments { n: 0.0, sums: vec![0.0; k], cross: vec![0.0; k * k] };
    for row in 0..pl::height(frame) {
        if data.iter().any(|col| col[row].is_nan()) {
            continue;
        }
        m.n += 1.0;
        for i in 0..k {
            m.sums[i] += data[i][row];
            for j in 0..k {
                m.cross[i * k + j] += data[i][row] * data[j][row];
            }
        }
    }
    Ok(Value::serde(m))
}

fn moments_finish(args: &[Value]) -> TaskResult {
    let parts = list_arg(args, "moments")?;
    let columns = columns_arg(args, 1)?;
    let correlation: &bool =
        args.get(2).ok_or_else(|| TaskError::msg("missing the kind"))?.get(&"kind")?;
    let k = columns.len();
    let mut total = Moments { n: 0.0, sums: vec![0.0; k], cross: vec![0.0; k * k] };
    for part in parts {
        let m: &Moments = part.get(&"moments")?;
        total.n += m.n;
        total.sums.iter_mut().zip(&m.sums).for_each(|(a, b)| *a += b);
        total.cross.iter_mut().zip(&m.cross).for_each(|(a, b)| *a += b);
    }
    let n = total.n;
    let cov = |i: usize, j: usize| {
        (total.cross[i * k + j] - total.sums[i] * total.sums[j] / n) / (n - 1.0)
    };
    let out: Vec<(String, Vec<f64>)> = (0..k)
        .map(|j| {
            let values = (0..k)
                .map(|i| {
                    if *correlation {
                        cov(i, j) / (cov(i, i) * cov(j, j)).sqrt()
                    } else {
                        cov(i, j)
                    }
                })
                .collect();
            (columns[j].clone(), values)
        })
        .collect();
    Ok(partition_value(pl::frame_labelled("column", columns.clone(), out)?))
}

fn sketch_partial(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let columns = columns_arg(args, 1)?;
    let values = pl::column_f64(frame, &columns[0])?;
    Ok(Value::serde(Sketch::of(values.into_iter().filter(|v| !v.is_nan()))))
}

fn sketch_finish(args: &[Value]) -> TaskResult {
    let parts = list_arg(args, "sketches")?;
    let columns = columns_arg(args, 1)?;
    let qs: &Vec<f64> =
        args.get(2).ok_or_else(|| TaskError::msg("missing the quantiles"))?.get(&"quantiles")?;
    let sketches = parts
        .iter()
        .map(|part| part.get::<Sketch>(&"sketch"))
        .collect::<rask_core::Result<Vec<_>>>()?;
    let sketch = Sketch::merge(sketches);
    let values = qs.iter().map(|q| sketch.quantile(*q)).collect();
    Ok(partition_value(pl::frame_f64(vec![
        ("quantile".into(), qs.clone()),
        (columns[0].clone(), values),
    ])?))
}

fn concat_frames(args: &[Value]) -> TaskResult {
    let frames = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the partitions"))?)?;
    let schema =
        pl::frame_schema(frames.first().ok_or_else(|| TaskError::msg("nothing to concatenate"))?);
    Ok(partition_value(pl::concat(frames.into_iter().cloned().collect(), &schema)?))
}

fn split_frame(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let piece: &u32 =
        args.get(1).ok_or_else(|| TaskError::msg("missing the piece"))?.get(&"piece")?;
    let pieces: &u32 =
        args.get(2).ok_or_else(|| TaskError::msg("missing the piece count"))?.get(&"pieces")?;
    let height = pl::height(frame);
    let start = height * *piece as usize / *pieces as usize;
    let end = height * (*piece as usize + 1) / *pieces as usize;
    Ok(partition_value(pl::slice(frame, start as i64, end - start)))
}

fn total_len(args: &[Value]) -> TaskResult {
    let frames = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the counts"))?)?;
    let mut total = 0u64;
    for frame in frames {
        total += pl::scalar_f64(frame, "len")? as u64;
    }
    Ok(Value::serde(total))
}

rask_core::register_function!("rask_dataframe::moments_partial", moments_partial);
rask_core::register_function!("rask_dataframe::moments_finish", moments_finish);
rask_core::register_function!("rask_dataframe::sketch_partial", sketch_partial);
rask_core::register_function!("rask_dataframe::sketch_finish", sketch_finish);
rask_core::register_function!("rask_dataframe::concat", concat_frames);
rask_core::register_function!("rask_dataframe::split", split_frame);
rask_core::register_function!("rask_dataframe::total_len", total_len);
rask_core::register_function!("rask_dataframe::csv_rows", csv_rows);
rask_core::register_function!("rask_dataframe::sum_u64", sum_u64);

fn csv_rows(args: &[Value]) -> TaskResult {
    let source: &crate::plan::Source =
        args.first().ok_or_else(|| TaskError::msg("missing the source"))?.get(&"source")?;
    let part: &u32 = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing the partition index"))?
        .get(&"partition index")?;
    let crate::plan::Source::Csv { blocks, schema, parse } = source else {
        return Err(TaskError::msg("csv_rows needs a CSV source"));
    };
    Ok(Value::serde(pl::csv::count_rows(&blocks[*part as usize], schema, parse)?))
}

fn sum_u64(args: &[Value]) -> TaskResult {
    let total = list_arg(args, "counts")?
        .iter()
        .map(|v| v.get::<u64>(&"a count").copied())
        .sum::<rask_core::Result<u64>>()?;
    Ok(Value::serde(total))
}

/// Stacks frames with the same columns: the partitions of the first, then of the second, ...
pub fn concat(frames: &[DataFrame]) -> Result<DataFrame> {
    let first =
        frames.first().ok_or_else(|| Error::Invalid("concat needs at least one frame".into()))?;
    for frame in &frames[1..] {
        if frame.dtypes() != first.dtypes() {
            return Err(Error::Invalid(format!(
                "concat needs frames with the same columns and types: {:?} and {:?}; select, rename or cast them to match",
                first.dtypes(),
                frame.dtypes()
            )));
        }
    }
    let parts: Vec<(Graph, Name, u32)> = frames
        .iter()
        .map(|f| {
            let (graph, name) = f.partitions();
            (graph, name, f.npartitions())
        })
        .collect();
    let names: Vec<&str> = parts.iter().map(|(_, n, _)| n.as_str()).collect();
    let name = new_name("concat", &names, None);
    let mut aliases = Vec::new();
    for (_, input, n) in &parts {
        for i in 0..*n {
            aliases
                .push((Key::part(name.clone(), aliases.len() as u32), Key::part(input.clone(), i)));
        }
    }
    let graphs: Vec<&Graph> = parts.iter().map(|(g, _, _)| g).collect();
    let count = aliases.len() as u32;
    let graph = rask_core::partitioned::alias_layer(name.clone(), aliases, &graphs);
    Ok(DataFrame::from_partitions(graph, name, count, Arc::new(first.schema().clone())))
}

/// A rask frame of an in-memory Polars frame cut into `npartitions` pieces of equal rows.
// Takes the frame like `DataFrame::new` would: the caller hands its data over.
#[allow(clippy::needless_pass_by_value)]
pub fn from_polars(frame: PlFrame, npartitions: u32) -> Result<DataFrame> {
    let frame = &frame;
    if npartitions == 0 {
        return Err(Error::Invalid(
            "from_polars needs at least one partition, got 0: pass npartitions >= 1".into(),
        ));
    }
    let schema = pl::frame_schema(frame);
    let name = new_name("from-polars", &[], Some(Token::unique()));
    let identity = rask_core::registry::lookup("rask::identity")?;
    let height = pl::height(frame);
    let tasks = (0..npartitions)
        .map(|i| {
            let start = height * i as usize / npartitions as usize;
            let end = height * (i as usize + 1) / npartitions as usize;
            let piece = partition_value(pl::slice(frame, start as i64, end - start));
            (Key::part(name.clone(), i), TaskSpec::new(identity.clone(), vec![Arg::Value(piece)]))
        })
        .collect();
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[]));
    Ok(DataFrame::from_partitions(graph, name, npartitions, Arc::new(schema)))
}

impl DataFrame {
    /// The number of rows, lazily. Parquet frames without filters answer from the files'
    /// metadata, reading no data.
    pub fn len(&self) -> Result<Delayed<u64>> {
        if let Some(rows) = &self.known_rows {
            let total: u64 = rows.iter().sum();
            let key = Key::tokenized("len", Token::unique());
            return Ok(Delayed::literal(key, Value::serde(total)));
        }
        if let Some(delayed) = self.csv_line_count() {
            return Ok(delayed);
        }
        let counted = self.select([pl::len_expr()])?;
        let (graph, name) = counted.partitions();
        let list = Arg::List(
            (0..self.npartitions).map(|i| Arg::Key(Key::part(name.clone(), i))).collect(),
        );
        let key = Key::tokenized("len", {
            let mut t = Tokenizer::new();
            t.str(name.as_str());
            t.finish()
        });
        let spec = TaskSpec::new(tasks::function("rask_dataframe::total_len"), vec![list]);
        Ok(Delayed::from_task(key, spec, graph.heads().to_vec()))
    }

    /// `len` of CSV blocks with no row-changing steps: line breaks counted, nothing parsed.
    fn csv_line_count(&self) -> Option<Delayed<u64>> {
        let crate::frame::Input::Source(source_value, token) = &self.input else { return None };
        if !matches!(crate::frame::source_of(source_value), crate::plan::Source::Csv { .. })
            || crate::plan::Steps(self.steps.clone()).changes_row_count()
        {
            return None;
        }
        let mut t = Tokenizer::new();
        t.token(*token);
        let name = Name::tokenized("csv-rows", t.finish());
        let source_value = source_value.clone();
        let count = tasks::function("rask_dataframe::csv_rows");
        let counts: Vec<(Key, TaskSpec)> = (0..self.npartitions)
            .map(|i| {
                (
                    Key::part(name.clone(), i),
                    TaskSpec::new(
                        count.clone(),
                        vec![Arg::Value(source_value.clone()), Arg::Value(Value::serde(i))],
                    ),
                )
            })
            .collect();
        let list = Arg::List(counts.iter().map(|(k, _)| Arg::Key(k.clone())).collect());
        let graph = Graph::from_layer(Layer::tasks(name.clone(), counts, &[]));
        let key = Key::tokenized("len", t.finish());
        let spec = TaskSpec::new(tasks::function("rask_dataframe::sum_u64"), vec![list]);
        Some(Delayed::from_task(key, spec, graph.heads().to_vec()))
    }

    /// Whether the frame has no rows (computes `len`).
    pub fn is_empty(&self) -> Result<bool> {
        use rask_local::ComputeExt;
        Ok(self.len()?.compute()? == 0)
    }

    /// The first `n` rows, now. Reads only the partitions it needs, from the first, and
    /// within each only up to `n` rows.
    pub fn head(&self, n: usize) -> Result<PlFrame> {
        self.edge_rows(n, false)
    }

    /// The last `n` rows, now.
    pub fn tail(&self, n: usize) -> Result<PlFrame> {
        self.edge_rows(n, true)
    }

    fn edge_rows(&self, n: usize, from_end: bool) -> Result<PlFrame> {
        let step = if from_end { Step::Tail(n as u32) } else { Step::Limit(n as u32) };
        let limited = self.with_step(step, if from_end { "tail" } else { "head" })?;
        let (graph, name) = limited.partitions();
        let mut order: Vec<u32> = (0..self.npartitions).collect();
        if from_end {
            order.reverse();
        }
        let mut frames: Vec<PlFrame> = Vec::new();
        let mut rows = 0;
        let mut next = 0;
        let mut batch = 1;
        while rows < n && next < order.len() {
            let keys: Vec<Key> = order[next..(next + batch).min(order.len())]
                .iter()
                .map(|i| Key::part(name.clone(), *i))
                .collect();
            next += keys.len();
            batch *= 2;
            for value in compute_keys(&graph, &keys)? {
                let frame = frame_of(&value)?.clone();
                rows += pl::height(&frame);
                frames.push(frame);
            }
        }
        if from_end {
            frames.reverse();
        }
        let all = pl::concat(frames, self.schema())?;
        let height = pl::height(&all);
        Ok(if from_end {
            pl::slice(&all, height.saturating_sub(n) as i64, n)
        } else {
            pl::slice(&all, 0, n)
        })
    }

    /// Computes the partitions and returns a frame that starts from them, like Dask's
    /// `persist`: later computations on it do not read or compute them again. Locally the
    /// partitions are computed now and held by the frame; with a `Client` as the default
    /// scheduler they are computed on the cluster and stay on its workers, held there as long
    /// as the returned frame (or a frame made from it) lives.
    pub fn persist(&self) -> Result<DataFrame> {
        self.persist_with(&*scheduler())
    }

    /// [`DataFrame::persist`] on a given scheduler (a `Client`: the partitions stay on its
    /// workers).
    pub fn persist_with(&self, scheduler: &dyn Scheduler) -> Result<DataFrame> {
        let (graph, name) = self.partitions();
        let keys = self.partition_keys();
        let optimizations = rask_core::Collection::optimizations(self);
        let graph = scheduler.persist(&graph, &keys, &optimizations)?;
        let mut persisted = DataFrame::from_partitions(
            graph,
            name,
            self.npartitions,
            Arc::new(self.schema().clone()),
        );
        // The same rows in the same partitions: the index and the row counts still hold.
        persisted.divisions = self.divisions.clone();
        persisted.known_rows = self.known_rows.clone();
        Ok(persisted)
    }

    /// Changes the number of partitions: neighbours are concatenated when there are fewer,
    /// partitions are cut into equal pieces when there are more. Row order is kept.
    pub fn repartition(&self, npartitions: u32) -> Result<DataFrame> {
        let npartitions = npartitions.max(1);
        let old = self.npartitions;
        if npartitions == old {
            return Ok(self.clone());
        }
        let (graph, input) = self.partitions();
        let name = new_name("repartition", &[input.as_str(), &npartitions.to_string()], None);
        let tasks: Vec<(Key, TaskSpec)> = if npartitions < old {
            let concat = tasks::function("rask_dataframe::concat");
            (0..npartitions)
                .map(|j| {
                    let start = old as usize * j as usize / npartitions as usize;
                    let end = old as usize * (j as usize + 1) / npartitions as usize;
                    let list = Arg::List(
                        (start..end)
                            .map(|i| Arg::Key(Key::part(input.clone(), i as u32)))
                            .collect(),
                    );
                    (Key::part(name.clone(), j), TaskSpec::new(concat.clone(), vec![list]))
                })
                .collect()
        } else {
            let split = tasks::function("rask_dataframe::split");
            let mut out = Vec::new();
            for i in 0..old {
                // Old partition i gives the new partitions whose index maps back to it.
                let first = (npartitions as u64 * i as u64).div_ceil(old as u64) as u32;
                let last = (npartitions as u64 * (i as u64 + 1)).div_ceil(old as u64) as u32;
                let pieces = last - first;
                for p in 0..pieces {
                    let args = vec![
                        Arg::Key(Key::part(input.clone(), i)),
                        Arg::Value(Value::serde(p)),
                        Arg::Value(Value::serde(pieces)),
                    ];
                    out.push((
                        Key::part(name.clone(), first + p),
                        TaskSpec::new(split.clone(), args),
                    ));
                }
            }
            out
        };
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&graph]));
        Ok(DataFrame::from_partitions(graph, name, npartitions, Arc::new(self.schema().clone())))
    }

    /// Applies a function to every partition. `output` is the schema the function returns.
    /// Closures run only on the local scheduler; on a cluster use
    /// [`map_partitions_registered`](Self::map_partitions_registered).
    pub fn map_partitions(
        &self,
        name: &str,
        output: pl::Schema,
        f: impl Fn(PlFrame) -> std::result::Result<PlFrame, String> + Send + Sync + 'static,
    ) -> Result<DataFrame> {
        let func = TaskFn::closure(format!("map_partitions:{name}"), move |args: &[Value]| {
            let frame =
                frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?
                    .clone();
            f(frame).map(partition_value).map_err(TaskError::msg)
        });
        self.map_with(&func, name, Token::unique(), output)
    }

    /// Applies a function registered with `rask::register_function!` (taking the partition as
    /// its only argument and returning a partition made with
    /// [`partition_value`](crate::partition_value)): it runs on cluster workers too.
    pub fn map_partitions_registered(
        &self,
        function: &str,
        output: pl::Schema,
    ) -> Result<DataFrame> {
        let func = rask_core::registry::lookup(function)?;
        let mut t = Tokenizer::new();
        t.str(function);
        self.map_with(&func, function, t.finish(), output)
    }

    fn map_with(
        &self,
        func: &TaskFn,
        label: &str,
        token: Token,
        output: pl::Schema,
    ) -> Result<DataFrame> {
        let (graph, input) = self.partitions();
        let prefix: String = label.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
        let name = new_name(
            if prefix.is_empty() { "map-partitions" } else { &prefix },
            &[input.as_str()],
            Some(token),
        );
        let tasks = (0..self.npartitions)
            .map(|i| {
                (
                    Key::part(name.clone(), i),
                    TaskSpec::new(func.clone(), vec![Arg::Key(Key::part(input.clone(), i))]),
                )
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&graph]));
        Ok(DataFrame::from_partitions(graph, name, self.npartitions, Arc::new(output)))
    }

    fn moments(&self, columns: &[&str], correlation: bool) -> Result<DataFrame> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let operation = if correlation { "corr" } else { "cov" };
        self.check_columns(&columns, operation)?;
        for column in &columns {
            self.check_values(operation, column, Needs::Numbers)?;
        }
        self.two_stage(
            columns,
            "moments",
            Value::serde(correlation),
            if correlation { "corr" } else { "cov" },
        )
    }

    fn two_stage(
        &self,
        columns: Vec<String>,
        kind: &str,
        extra: Value,
        prefix: &str,
    ) -> Result<DataFrame> {
        // Select the columns inside the partitions' query, so readers parse only those.
        let selected = self.select(columns.iter().map(|c| pl::column(c)))?;
        let (graph, input) = selected.partitions();
        let token = {
            let mut t = Tokenizer::new();
            t.str(input.as_str())
                .str(prefix)
                .bytes(&rmp_serde::to_vec(&columns).unwrap_or_default());
            if let Some(qs) = extra.downcast_ref::<Vec<f64>>() {
                qs.iter().for_each(|q| {
                    t.u64(q.to_bits());
                });
            }
            t.finish()
        };
        let partial_name = Name::tokenized(&format!("{prefix}-partial"), token);
        let columns_value = Value::serde(columns);
        let partial = tasks::function(&format!("rask_dataframe::{kind}_partial"));
        let partials: Vec<(Key, TaskSpec)> = (0..self.npartitions)
            .map(|i| {
                let args =
                    vec![Arg::Key(Key::part(input.clone(), i)), Arg::Value(columns_value.clone())];
                (Key::part(partial_name.clone(), i), TaskSpec::new(partial.clone(), args))
            })
            .collect();
        let keys: Vec<Arg> = partials.iter().map(|(k, _)| Arg::Key(k.clone())).collect();
        let partial_graph = Graph::from_layer(Layer::tasks(partial_name, partials, &[&graph]));
        let name = Name::tokenized(prefix, token);
        let finish = tasks::function(&format!("rask_dataframe::{kind}_finish"));
        let task = TaskSpec::new(
            finish,
            vec![Arg::List(keys), Arg::Value(columns_value), Arg::Value(extra)],
        );
        let graph = Graph::from_layer(Layer::tasks(
            name.clone(),
            vec![(Key::part(name.clone(), 0), task)],
            &[&partial_graph],
        ));
        // Callers set the schema, which depends only on the columns.
        Ok(DataFrame::from_partitions(graph, name, 1, Arc::new(pl::Schema::default())))
    }

    /// The Pearson correlation matrix of numeric columns (rows with a null in any of them are
    /// left out). One row per column: a `column` label, then one column per input.
    pub fn corr(&self, columns: &[&str]) -> Result<DataFrame> {
        let mut out = self.moments(columns, true)?;
        out.schema = Arc::new(matrix_schema(columns));
        Ok(out)
    }

    /// The sample covariance matrix of numeric columns, shaped like [`corr`](Self::corr).
    pub fn cov(&self, columns: &[&str]) -> Result<DataFrame> {
        let mut out = self.moments(columns, false)?;
        out.schema = Arc::new(matrix_schema(columns));
        Ok(out)
    }

    /// Approximate quantiles of a numeric column (columns `quantile` and the column), from a
    /// mergeable sketch of 1,000 weighted points per partition: ranks are off by at most
    /// about 0.1% of the rows per merge level.
    pub fn quantiles(&self, column: &str, quantiles: &[f64]) -> Result<DataFrame> {
        self.check_columns(&[column.to_string()], "quantiles")?;
        self.check_values("quantiles", column, Needs::NumbersOnly)?;
        let mut out = self.two_stage(
            vec![column.to_string()],
            "sketch",
            Value::serde(quantiles.to_vec()),
            "quantiles",
        )?;
        out.schema = Arc::new(pl::schema_from(&[
            ("quantile".into(), pl::DataType::Float64),
            (column.to_string(), pl::DataType::Float64),
        ]));
        Ok(out)
    }

    /// Refuses a column whose type `operation` cannot take (see [`crate::typecheck`]).
    fn check_values(&self, operation: &str, column: &str, needs: Needs) -> Result<()> {
        let dtype = self.schema().get(column).cloned().unwrap_or(pl::DataType::Null);
        let samples = self.text_samples.as_deref().map(Vec::as_slice);
        crate::typecheck::check_column(operation, column, &dtype, needs, samples)
    }

    /// The distinct values of a column (its categories), computed now, sorted.
    pub fn categories(&self, column: &str) -> Result<Vec<String>> {
        let unique = compute_frame(&self.unique([column])?)?;
        pl::column_strings(&unique, column)
    }

    /// One-hot encodes columns: each becomes one `UInt8` column per category, named
    /// `column_value`. The categories are found first (one pass over the data), so every
    /// partition gets the same columns whatever values it holds.
    pub fn to_dummies<S: AsRef<str>>(
        &self,
        columns: impl IntoIterator<Item = S>,
    ) -> Result<DataFrame> {
        let columns: Vec<String> = columns.into_iter().map(|c| c.as_ref().to_string()).collect();
        self.check_columns(&columns, "to_dummies")?;
        let mut exprs = Vec::new();
        for column in &columns {
            for category in self.categories(column)? {
                exprs.push(pl::dummy(column, &category));
            }
        }
        self.with_columns(exprs)?.drop(&columns)
    }
}

fn matrix_schema(columns: &[&str]) -> pl::Schema {
    let mut fields = vec![("column".to_string(), pl::DataType::String)];
    fields.extend(columns.iter().map(|c| (c.to_string(), pl::DataType::Float64)));
    pl::schema_from(&fields)
}
