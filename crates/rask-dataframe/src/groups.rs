//! Operations that need every row of a group in one partition, by a hash shuffle on the keys:
//! [`GroupBy::apply`] and [`GroupBy::transform`] (a function of each group's rows, like
//! pandas' `groupby(k).apply(f)`), and [`DataFrame::drop_duplicates`].
//!
//! After the shuffle, equal keys share a partition, so each partition's groups are whole and a
//! per-partition Polars query (or your function, once per group) gives the whole frame's
//! answer. The shuffle is verified and stable (see [`crate::shuffle`]): the rows of a group
//! reach the function in frame order, and "first" and "last" duplicates are the frame's.
//! Rows come out grouped by partition, not in the input's order — as in Dask.

use std::sync::Arc;

use rask_core::{Arg, Graph, Key, Layer, Name, TaskError, TaskFn, TaskSpec, Tokenizer, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::groupby::GroupBy;
use crate::plan::{Keep, Step};
use crate::polars_adapter::{self as pl, PlFrame, Schema};
use crate::tasks::{arg, frame_of, partition_value};

/// What a group function's result is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Mode {
    /// Any rows (`apply`): the results of the groups are concatenated.
    Apply,
    /// One row per row of the group (`transform`): its columns are added to the group's rows.
    Transform,
}

/// What a group-apply task needs besides the function.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GroupApply {
    keys: Vec<String>,
    mode: Mode,
    /// The schema the function promised.
    returns: Schema,
    /// The function's name, for errors (and the registered function on a cluster).
    function: String,
}
rask_core::register_type!(GroupApply);

impl GroupBy {
    /// `f` of every group's rows (all columns, keys included, in frame order); the results are
    /// concatenated. `returns` is the schema `f` returns (checked for every group). A closure
    /// runs on the local scheduler only; on a cluster use
    /// [`apply_registered`](Self::apply_registered).
    pub fn apply(
        &self,
        name: &str,
        returns: Schema,
        f: impl Fn(PlFrame) -> std::result::Result<PlFrame, String> + Send + Sync + 'static,
    ) -> Result<DataFrame> {
        self.grouped(name, returns, Mode::Apply, Some(Arc::new(f)))
    }

    /// Like [`apply`](Self::apply), with a function registered with
    /// `rask::register_function!` (the group as its only argument, a partition made with
    /// [`partition_value`](crate::partition_value) back): it runs on cluster workers too.
    pub fn apply_registered(&self, function: &str, returns: Schema) -> Result<DataFrame> {
        rask_core::registry::lookup(function)?;
        self.grouped(function, returns, Mode::Apply, None)
    }

    /// `f` of every group's rows returns one row per row (the columns of `returns`): they are
    /// added to the group's rows (replacing columns of the same name), as pandas'
    /// `groupby(k).transform(f)` — a group's rank, its share of the group's total, ...
    pub fn transform(
        &self,
        name: &str,
        returns: Schema,
        f: impl Fn(PlFrame) -> std::result::Result<PlFrame, String> + Send + Sync + 'static,
    ) -> Result<DataFrame> {
        self.grouped(name, returns, Mode::Transform, Some(Arc::new(f)))
    }

    /// [`transform`](Self::transform) with a registered function (runs on a cluster too).
    pub fn transform_registered(&self, function: &str, returns: Schema) -> Result<DataFrame> {
        rask_core::registry::lookup(function)?;
        self.grouped(function, returns, Mode::Transform, None)
    }

    fn grouped(
        &self,
        name: &str,
        returns: Schema,
        mode: Mode,
        closure: Option<Arc<GroupFn>>,
    ) -> Result<DataFrame> {
        let frame = &self.frame;
        if self.keys.is_empty() {
            return Err(Error::Invalid("group_by(...).apply needs at least one key column".into()));
        }
        frame.check_columns(&self.keys, "group_by")?;
        let schema = match mode {
            Mode::Apply => returns.clone(),
            Mode::Transform => {
                let mut schema = frame.schema().clone();
                for (column, dtype) in pl::schema_fields(&returns) {
                    schema.with_column(column.into(), dtype);
                }
                schema
            }
        };
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        let shuffled =
            if frame.npartitions() > 1 { frame.shuffle(&keys, None)? } else { frame.clone() };
        let spec =
            GroupApply { keys: self.keys.clone(), mode, returns, function: name.to_string() };
        let func = match closure {
            Some(f) => TaskFn::closure(format!("group-apply:{name}"), move |args: &[Value]| {
                let part =
                    frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
                let spec: &GroupApply = arg(args, 1, "the group function")?;
                Ok(partition_value(apply_groups(part, spec, &|group| f(group))?))
            }),
            None => crate::tasks::function("rask_dataframe::group_apply"),
        };
        let (graph, input) = shuffled.partitions();
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str()).str(name);
        if func.is_registered() {
            tokenizer.bytes(&rmp_serde::to_vec(&spec).unwrap_or_default());
        } else {
            tokenizer.token(rask_core::Token::unique());
        }
        let label: String = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
        let out = Name::tokenized(&format!("group-apply-{label}"), tokenizer.finish());
        let spec = Value::serde(spec);
        let tasks = (0..shuffled.npartitions())
            .map(|i| {
                let args = vec![Arg::Key(Key::part(input.clone(), i)), Arg::Value(spec.clone())];
                (Key::part(out.clone(), i), TaskSpec::new(func.clone(), args))
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(out.clone(), tasks, &[&graph]));
        Ok(DataFrame::from_partitions(graph, out, shuffled.npartitions(), Arc::new(schema)))
    }
}

type GroupFn = dyn Fn(PlFrame) -> std::result::Result<PlFrame, String> + Send + Sync;

/// The function over each group of a partition, every result checked against the schema it
/// promised.
fn apply_groups(
    part: &PlFrame,
    spec: &GroupApply,
    f: &dyn Fn(PlFrame) -> std::result::Result<PlFrame, String>,
) -> std::result::Result<PlFrame, TaskError> {
    let groups = pl::split_groups(part, &spec.keys)?;
    let mut results = Vec::with_capacity(groups.len());
    for group in groups {
        let rows = group.height();
        let out = f(group.clone()).map_err(|e| {
            TaskError::msg(format!("{} failed on a group of {rows} rows: {e}", spec.function))
        })?;
        let got = pl::frame_schema(&out);
        if got != spec.returns {
            return Err(TaskError::msg(format!(
                "{} returned the columns {:?} for a group, and it promised {:?}: declare what it returns",
                spec.function,
                pl::schema_fields(&got),
                pl::schema_fields(&spec.returns)
            )));
        }
        results.push(match spec.mode {
            Mode::Apply => out,
            Mode::Transform => {
                if out.height() != rows {
                    return Err(TaskError::msg(format!(
                        "{} (a transform) returned {} rows for a group of {rows}: a transform returns one row per row",
                        spec.function,
                        out.height()
                    )));
                }
                pl::with_columns_of(&group, &out)?
            }
        });
    }
    let schema = match spec.mode {
        Mode::Apply => spec.returns.clone(),
        Mode::Transform => pl::frame_schema(&pl::with_columns_of(
            &pl::slice(part, 0, 0),
            &pl::empty(&spec.returns),
        )?),
    };
    Ok(pl::concat(results, &schema)?)
}

/// `group_apply(partition, spec)`: a registered function over each group of a partition.
fn group_apply(args: &[Value]) -> rask_core::TaskResult {
    let part = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let spec: &GroupApply = arg(args, 1, "the group function")?;
    let func = rask_core::registry::lookup(&spec.function)?;
    let call = |group: PlFrame| -> std::result::Result<PlFrame, String> {
        let value = func.call(&[partition_value(group)]).map_err(|e| e.to_string())?;
        frame_of(&value).cloned().map_err(|e| e.to_string())
    };
    Ok(partition_value(apply_groups(part, spec, &call)?))
}
rask_core::register_function!("rask_dataframe::group_apply", group_apply);

impl DataFrame {
    /// The rows with duplicates removed: rows equal in `subset` (`None`: every column) are
    /// one, the first of them in frame order (or the last, or none of them: [`Keep`]). By a
    /// shuffle on `subset`, so it holds for any number of distinct rows; rows come out grouped
    /// by partition. `drop_duplicates(Some(&["k"]), Keep::First)?.len()` counts distinct
    /// values of any cardinality.
    pub fn drop_duplicates(&self, subset: Option<&[&str]>, keep: Keep) -> Result<DataFrame> {
        let subset: Option<Vec<String>> = subset.map(|s| s.iter().map(|c| c.to_string()).collect());
        let on = match &subset {
            Some(columns) if columns.is_empty() => {
                return Err(Error::Invalid(
                    "drop_duplicates with an empty subset: name the columns, or None for all"
                        .into(),
                ))
            }
            Some(columns) => {
                self.check_columns(columns, "drop_duplicates")?;
                columns.clone()
            }
            None => self.columns(),
        };
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let shuffled = if self.npartitions() > 1 { self.shuffle(&on, None)? } else { self.clone() };
        shuffled.with_step(Step::Unique { subset, keep }, "drop_duplicates")
    }
}
