//! `topk` and `argtopk`: the `k` largest (or smallest) elements along an axis.
//!
//! As Dask's: every chunk keeps its own `k` best along the axis (with their positions in the
//! whole axis), and a `split_every` tree of the shared [`TreeReduction`] merges those partials
//! until one is left, so no task ever holds more than `split_every × k` elements per lane.
//!
//! The order is total and documented, so results never depend on the chunking: `k > 0` gives
//! the largest first, `k < 0` the smallest first; NaN counts as larger than every number (it
//! sorts last, as in NumPy's `sort`); equal values keep their order along the axis.

use std::cmp::Ordering;

use ndarray::{ArrayD, Axis, IxDyn};
use rask_core::partitioned::TreeReduction;
use rask_core::{BlockGrid, Graph, Key, Layer, TaskError, TaskResult, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};
use crate::number::Real;

/// What a top-k tree computes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TopSpec {
    /// Positive: the largest; negative: the smallest.
    k: i64,
    axis: usize,
    /// Where each chunk starts along the axis (for the positions of `argtopk`).
    offsets: Vec<usize>,
    /// The grid of the input (a partial task finds its block from its number).
    grid: Vec<u32>,
    /// Whether the result is the positions instead of the values.
    positions: bool,
}
rask_core::register_type!(TopSpec);

/// The best elements of every lane so far, and their positions along the axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
struct TopPartial<T: Element> {
    values: ArrayD<T>,
    positions: ArrayD<i64>,
}

impl<T: Real> Array<T> {
    /// The `k` largest elements along `axis`, largest first (`k < 0`: the `|k|` smallest,
    /// smallest first).
    pub fn topk(&self, k: i64, axis: isize) -> Result<Array<T>> {
        self.top(k, axis, false)
    }

    /// The positions along `axis` of the elements `topk` returns, in the same order.
    pub fn argtopk(&self, k: i64, axis: isize) -> Result<Array<i64>> {
        self.top(k, axis, true)
    }

    fn top<U: Element>(&self, k: i64, axis: isize, positions: bool) -> Result<Array<U>> {
        let axis = self.axis(axis)?;
        let length = self.shape()[axis];
        let count = k.unsigned_abs() as usize;
        if k == 0 || count > length {
            return Err(Error::Invalid(format!(
                "topk with k = {k} along axis {axis} of length {length}: |k| must be between 1 \
                 and {length}"
            )));
        }
        let spec = TopSpec {
            k,
            axis,
            offsets: self.chunks.offsets(axis),
            grid: self.chunks.grid(),
            positions,
        };
        let spec_value = Value::serde(spec);
        let partial_name = layer_name("topk-partial", |t| {
            t.str(self.name.as_str()).u64(k as u64).u64(axis as u64);
        });
        let partial: Array<T> = self.per_chunk(
            partial_name.clone(),
            typed_fn::<T>("rask_array::topk_partial"),
            spec_value.clone(),
        );
        let name = layer_name(if positions { "argtopk" } else { "topk" }, |t| {
            t.str(partial_name.as_str()).u64(u64::from(positions));
        });
        let tree = TreeReduction {
            combine_prefix: "topk-combine".into(),
            combine: typed_fn::<T>("rask_array::topk_combine"),
            finish: typed_fn::<T>("rask_array::topk_finish"),
            args: vec![rask_core::Arg::Value(spec_value)],
            split_every: 8,
        };
        // One tree per block of the other axes, over the blocks along the axis.
        let mut out_grid = self.chunks.grid();
        let along = out_grid[axis];
        out_grid[axis] = 1;
        let outer = BlockGrid::of(&out_grid);
        let mut tasks = Vec::new();
        for linear in 0..outer.len() as u32 {
            let out = outer.unravel(linear);
            let leaves = (0..along)
                .map(|j| {
                    let mut index = out.to_vec();
                    index[axis] = j;
                    Key::block(partial_name.clone(), &index)
                })
                .collect();
            tasks.extend(tree.tasks(leaves, Key::block(name.clone(), &out)));
        }
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&partial.graph]));
        let mut chunks = self.chunks.per_axis().to_vec();
        chunks[axis] = vec![count];
        Ok(Array::from_graph(graph, name, Chunks(chunks)))
    }
}

/// The order of (value, position) pairs: the best first.
fn better<T: Real>(largest: bool) -> impl Fn(&(T, i64), &(T, i64)) -> Ordering {
    move |a, b| {
        // NaN is larger than every number; two NaNs are equal.
        let by_value = match (a.0.is_nan_value(), b.0.is_nan_value()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal),
        };
        let by_value = if largest { by_value.reverse() } else { by_value };
        by_value.then(a.1.cmp(&b.1))
    }
}

/// Per lane along `axis`, the best `count` of the pairs of `values` and `positions`.
fn select_best<T: Real>(
    values: &ArrayD<T>,
    positions: &ArrayD<i64>,
    axis: usize,
    k: i64,
) -> TopPartial<T> {
    let count = (k.unsigned_abs() as usize).min(values.len_of(Axis(axis)));
    let mut shape = values.shape().to_vec();
    shape[axis] = count;
    let mut out_values = ArrayD::from_elem(IxDyn(&shape), T::default());
    let mut out_positions = ArrayD::from_elem(IxDyn(&shape), 0i64);
    let order = better::<T>(k > 0);
    let mut pairs: Vec<(T, i64)> = Vec::new();
    for (((lane, lane_positions), mut out_lane), mut out_lane_positions) in values
        .lanes(Axis(axis))
        .into_iter()
        .zip(positions.lanes(Axis(axis)))
        .zip(out_values.lanes_mut(Axis(axis)))
        .zip(out_positions.lanes_mut(Axis(axis)))
    {
        pairs.clear();
        pairs.extend(lane.iter().copied().zip(lane_positions.iter().copied()));
        if count < pairs.len() && count > 0 {
            pairs.select_nth_unstable_by(count - 1, &order);
            pairs.truncate(count);
        }
        pairs.sort_unstable_by(&order);
        for (i, &(value, position)) in pairs.iter().take(count).enumerate() {
            out_lane[i] = value;
            out_lane_positions[i] = position;
        }
    }
    TopPartial { values: out_values, positions: out_positions }
}

fn topk_partial<T: Real>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let spec = spec_arg::<TopSpec>(args, 1, "the topk")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let block = BlockGrid::of(&spec.grid).unravel(part)[spec.axis] as usize;
    let offset = spec.offsets[block] as i64;
    let positions = ArrayD::from_shape_fn(chunk.raw_dim(), |at| offset + at[spec.axis] as i64);
    Ok(Value::serde(select_best(chunk, &positions, spec.axis, spec.k)))
}

/// The partials of a list, joined along the axis and cut to the best `k` again.
fn merge<T: Real>(args: &[Value]) -> std::result::Result<(TopPartial<T>, &TopSpec), TaskError> {
    let spec = spec_arg::<TopSpec>(args, 1, "the topk")?;
    let list = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the topk partials"))?;
    let parts = list
        .iter()
        .map(|v| v.get::<TopPartial<T>>(&"a topk partial"))
        .collect::<rask_core::Result<Vec<_>>>()?;
    let values: Vec<_> = parts.iter().map(|p| p.values.view()).collect();
    let positions: Vec<_> = parts.iter().map(|p| p.positions.view()).collect();
    let values = ndarray::concatenate(Axis(spec.axis), &values)?;
    let positions = ndarray::concatenate(Axis(spec.axis), &positions)?;
    Ok((select_best(&values, &positions, spec.axis, spec.k), spec))
}

fn topk_combine<T: Real>(args: &[Value]) -> TaskResult {
    Ok(Value::serde(merge::<T>(args)?.0))
}

fn topk_finish<T: Real>(args: &[Value]) -> TaskResult {
    let (best, spec) = merge::<T>(args)?;
    Ok(if spec.positions { chunk_value(best.positions) } else { chunk_value(best.values) })
}

macro_rules! register_topk {
    ($t:ty, $dtype:literal) => {
        rask_core::register_type!(TopPartial<$t>);
        $crate::register_typed!($t, $dtype, "rask_array::topk_partial", topk_partial);
        $crate::register_typed!($t, $dtype, "rask_array::topk_combine", topk_combine);
        $crate::register_typed!($t, $dtype, "rask_array::topk_finish", topk_finish);
    };
}
crate::for_each_real!(register_topk);
