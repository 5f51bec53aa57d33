//! Indexing: integers, slices with any step (negative too), new axes, and integer lists along
//! an axis (`take`).
//!
//! Every axis is resolved against its chunks first: the selected positions are grouped by the
//! input chunk that holds them, in selection order, and each group becomes one output chunk
//! along that axis. Each output chunk is one task that slices one input chunk, so a slice
//! reads only the chunks it needs (the others are culled with the rest of the graph). An index
//! outside an axis is an error naming the axis, the index and the length.

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use rask_core::{Arg, BlockGrid, Graph, Key, Layer, Name, TaskFn, TaskResult, TaskSpec, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

/// One entry of an index: what to take along one axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Index {
    /// One position (negative counts from the end); the axis goes away.
    At(i64),
    /// NumPy's `start:stop:step` (bounds optional, negative ones from the end, step not 0).
    Slice {
        /// First position (default: the start, or the end for negative steps).
        start: Option<i64>,
        /// Where to stop, excluded.
        stop: Option<i64>,
        /// The step.
        step: i64,
    },
    /// The whole axis (`:`).
    Full,
    /// A new axis of length 1 (`None`/`np.newaxis`); takes no input axis.
    NewAxis,
}

impl Index {
    /// `start..stop` with step 1.
    pub fn range(range: std::ops::Range<i64>) -> Self {
        Index::Slice { start: Some(range.start), stop: Some(range.end), step: 1 }
    }

    /// `start:stop:step`.
    pub fn slice(start: Option<i64>, stop: Option<i64>, step: i64) -> Self {
        Index::Slice { start, stop, step }
    }
}

impl From<i64> for Index {
    fn from(i: i64) -> Self {
        Index::At(i)
    }
}

impl From<std::ops::Range<i64>> for Index {
    fn from(range: std::ops::Range<i64>) -> Self {
        Index::range(range)
    }
}

impl From<std::ops::RangeFull> for Index {
    fn from(_: std::ops::RangeFull) -> Self {
        Index::Full
    }
}

/// What one task takes from its input chunk along one axis.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) enum Local {
    /// `start..end` by `step` (ndarray's slice: a negative step walks the range backwards).
    Range { start: usize, end: usize, step: isize },
    /// One position; the axis goes away.
    At(usize),
    /// These positions, in order.
    List(Vec<usize>),
}

impl Local {
    /// The positions taken, in order.
    pub(crate) fn positions(&self) -> Vec<usize> {
        match self {
            Local::Range { start, end, step } if *step > 0 => {
                (*start..*end).step_by(*step as usize).collect()
            }
            // ndarray's negative step: from the range's end backwards.
            Local::Range { start, end, step } => {
                (*start..*end).rev().step_by(step.unsigned_abs()).collect()
            }
            Local::At(i) => vec![*i],
            Local::List(positions) => positions.clone(),
        }
    }
}

/// One output chunk's task along every input axis, and where the new axes go.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Take {
    pub(crate) locals: Vec<Local>,
    pub(crate) shape: Vec<usize>,
}
rask_core::register_type!(Take);

/// Along one input axis: per output chunk, the input chunk and what to take from it. `None`
/// output chunks mean the axis is dropped (an integer index).
pub(crate) struct AxisPlan {
    pieces: Vec<(u32, Local, usize)>,
    dropped: bool,
}

/// How an index selects from an array of `chunks`: one plan per input axis, and the output
/// axes in order (`Some(input axis)`, or `None` for a new axis).
pub(crate) struct IndexPlan {
    pub(crate) axes: Vec<AxisPlan>,
    pub(crate) out_axes: Vec<Option<usize>>,
}

impl IndexPlan {
    /// The plan of `x[index]` over chunks `chunks`: one [`Index`] per axis from the first
    /// (missing trailing axes are whole).
    pub(crate) fn of(chunks: &Chunks, index: &[Index]) -> Result<IndexPlan> {
        let shape = chunks.shape();
        let consumed = index.iter().filter(|i| **i != Index::NewAxis).count();
        if consumed > shape.len() {
            return Err(Error::Invalid(format!(
                "{consumed} indices for an array of {} axes (shape {shape:?})",
                shape.len()
            )));
        }
        let mut entries: Vec<Index> = index.to_vec();
        entries.extend(std::iter::repeat_n(Index::Full, shape.len() - consumed));
        let mut axes: Vec<AxisPlan> = Vec::with_capacity(shape.len());
        let mut out_axes: Vec<Option<usize>> = Vec::new();
        let mut axis = 0;
        for entry in &entries {
            if *entry == Index::NewAxis {
                out_axes.push(None);
                continue;
            }
            let length = shape[axis];
            let offsets = chunks.offsets(axis);
            let plan = match entry {
                Index::At(i) => {
                    let p = if *i < 0 { *i + length as i64 } else { *i };
                    if p < 0 || p >= length as i64 {
                        return Err(Error::IndexOutOfBounds { axis, index: *i, length });
                    }
                    let c = offsets.partition_point(|&o| o <= p as usize) - 1;
                    AxisPlan {
                        pieces: vec![(c as u32, Local::At(p as usize - offsets[c]), 1)],
                        dropped: true,
                    }
                }
                Index::Full => AxisPlan {
                    pieces: chunks.per_axis()[axis]
                        .iter()
                        .enumerate()
                        .map(|(c, &n)| (c as u32, Local::Range { start: 0, end: n, step: 1 }, n))
                        .collect(),
                    dropped: false,
                },
                Index::Slice { start, stop, step } => {
                    let positions = slice_positions(axis, length, *start, *stop, *step)?;
                    let mut pieces = group_by_chunk(&offsets, &positions, *step);
                    if pieces.is_empty() {
                        // An empty selection: one empty chunk read from chunk 0.
                        pieces.push((0, Local::Range { start: 0, end: 0, step: 1 }, 0));
                    }
                    AxisPlan { pieces, dropped: false }
                }
                Index::NewAxis => unreachable!("handled above"),
            };
            if !plan.dropped {
                out_axes.push(Some(axis));
            }
            axes.push(plan);
            axis += 1;
        }
        Ok(IndexPlan { axes, out_axes })
    }
}

/// The positions a NumPy slice selects from an axis of `length`.
pub(crate) fn slice_positions(
    axis: usize,
    length: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: i64,
) -> Result<Vec<usize>> {
    if step == 0 {
        return Err(Error::Invalid(format!("slice step 0 on axis {axis}: the step must not be 0")));
    }
    let n = length as i64;
    // NumPy's PySlice_AdjustIndices.
    let clamp = |v: i64, low: i64, high: i64| v.clamp(low, high);
    let resolve = |v: i64| if v < 0 { v + n } else { v };
    let (start, stop) = if step > 0 {
        (start.map_or(0, |s| clamp(resolve(s), 0, n)), stop.map_or(n, |s| clamp(resolve(s), 0, n)))
    } else {
        (
            start.map_or(n - 1, |s| clamp(resolve(s), -1, n - 1)),
            stop.map_or(-1, |s| clamp(resolve(s), -1, n - 1)),
        )
    };
    let mut positions = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        positions.push(i as usize);
        i += step;
    }
    Ok(positions)
}

/// Groups positions of an axis by the chunk that holds them, in order.
fn group_by_chunk(offsets: &[usize], positions: &[usize], step: i64) -> Vec<(u32, Local, usize)> {
    let chunk_of = |p: usize| offsets.partition_point(|&o| o <= p) - 1;
    let mut pieces: Vec<(u32, Local, usize)> = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let mut current = usize::MAX;
    let flush = |chunk: usize, run: &mut Vec<usize>, pieces: &mut Vec<(u32, Local, usize)>| {
        if run.is_empty() {
            return;
        }
        let local: Vec<usize> = run.iter().map(|&p| p - offsets[chunk]).collect();
        let count = local.len();
        let piece = if step > 0 {
            Local::Range { start: local[0], end: local[count - 1] + 1, step: step as isize }
        } else if step < 0 {
            Local::Range { start: local[count - 1], end: local[0] + 1, step: step as isize }
        } else {
            Local::List(local)
        };
        pieces.push((chunk as u32, piece, count));
        run.clear();
    };
    for &p in positions {
        let c = chunk_of(p);
        if c != current {
            flush(current, &mut run, &mut pieces);
            current = c;
        }
        run.push(p);
    }
    flush(current, &mut run, &mut pieces);
    pieces
}

impl<T: Element> Array<T> {
    /// `x[index]`: one [`Index`] per axis from the first (missing trailing axes are whole).
    pub fn slice(&self, index: &[Index]) -> Result<Array<T>> {
        // `(x + 1).slice(s)` is `x.slice(s) + 1`: the arithmetic runs on the kept elements only.
        if let Some(moved) = crate::pushdown::moved_slice(self, index) {
            return moved;
        }
        let plan = IndexPlan::of(&self.chunks, index)?;
        Ok(self.gather(&plan, "getitem"))
    }

    /// The elements at `positions` along `axis`, in that order (NumPy's `take`; repeats
    /// allowed, negative positions from the end).
    pub fn take(&self, positions: &[i64], axis: isize) -> Result<Array<T>> {
        let axis = self.axis(axis)?;
        let length = self.shape()[axis];
        let resolved = positions
            .iter()
            .map(|&i| {
                let p = if i < 0 { i + length as i64 } else { i };
                if p < 0 || p >= length as i64 {
                    Err(Error::IndexOutOfBounds { axis, index: i, length })
                } else {
                    Ok(p as usize)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut plans = Vec::with_capacity(self.ndim());
        for a in 0..self.ndim() {
            let pieces = if a == axis {
                let mut pieces = group_by_chunk(&self.chunks.offsets(a), &resolved, 0);
                if pieces.is_empty() {
                    pieces.push((0, Local::List(Vec::new()), 0));
                }
                pieces
            } else {
                self.chunks.per_axis()[a]
                    .iter()
                    .enumerate()
                    .map(|(c, &n)| (c as u32, Local::Range { start: 0, end: n, step: 1 }, n))
                    .collect()
            };
            plans.push(AxisPlan { pieces, dropped: false });
        }
        let out_axes: Vec<Option<usize>> = (0..self.ndim()).map(Some).collect();
        Ok(self.gather(&IndexPlan { axes: plans, out_axes }, "take"))
    }

    /// One task per output chunk, each slicing one input chunk.
    fn gather(&self, plan: &IndexPlan, prefix: &str) -> Array<T> {
        let func = typed_fn::<T>("rask_array::take_chunk");
        let (graph, name, chunks) = take_layer(&self.graph, &self.name, plan, prefix, &func);
        Array::from_graph(graph, name, chunks)
    }
}

/// The layer of an [`IndexPlan`] for any chunk type (dense and sparse chunks share it): over
/// the chunks of layer `source` in `graph`, one task per output chunk calling `func(input
/// chunk, Take)`. Returns the graph, the layer's name and the output chunks.
pub(crate) fn take_layer(
    graph: &Graph,
    source: &Name,
    plan: &IndexPlan,
    prefix: &str,
    func: &TaskFn,
) -> (Graph, Name, Chunks) {
    let IndexPlan { axes: plans, out_axes } = plan;
    let out_chunks: Vec<Vec<usize>> = out_axes
        .iter()
        .map(|a| match a {
            Some(a) => plans[*a].pieces.iter().map(|(_, _, n)| *n).collect(),
            None => vec![1],
        })
        .collect();
    let chunks = Chunks(out_chunks);
    let name = layer_name(prefix, |t| {
        t.str(source.as_str()).str(func.name());
        for plan in plans {
            t.u64(plan.pieces.len() as u64).u64(u64::from(plan.dropped));
            for (c, local, n) in &plan.pieces {
                t.u64(u64::from(*c)).u64(*n as u64).bytes(format!("{local:?}").as_bytes());
            }
        }
        for a in out_axes {
            t.u64(a.map_or(u64::MAX, |a| a as u64));
        }
    });
    let grid = BlockGrid::of(&chunks.grid());
    let mut tasks = Vec::with_capacity(grid.len());
    for linear in 0..grid.len() as u32 {
        let out = grid.unravel(linear);
        // The piece of every input axis this output chunk takes.
        let mut choice = vec![0usize; plans.len()];
        for (o, a) in out_axes.iter().enumerate() {
            if let Some(a) = a {
                choice[*a] = out[o] as usize;
            }
        }
        let input: Vec<u32> = plans.iter().zip(&choice).map(|(p, &c)| p.pieces[c].0).collect();
        let locals: Vec<Local> =
            plans.iter().zip(&choice).map(|(p, &c)| p.pieces[c].1.clone()).collect();
        let take = Take { locals, shape: chunks.block_shape(&out) };
        let args =
            vec![Arg::Key(Key::block(source.clone(), &input)), Arg::Value(Value::serde(take))];
        tasks.push((Key::block(name.clone(), &out), TaskSpec::new(func.clone(), args)));
    }
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[graph]));
    (graph, name, chunks)
}

fn take_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let take = spec_arg::<Take>(args, 1, "the selection")?;
    // Lists first (they copy), then ranges and positions as views.
    let mut owned: Option<ArrayD<T>> = None;
    for (axis, local) in take.locals.iter().enumerate() {
        if let Local::List(positions) = local {
            let selected = match &owned {
                Some(o) => o.select(Axis(axis), positions),
                None => chunk.select(Axis(axis), positions),
            };
            owned = Some(selected);
        }
    }
    let view = owned.as_ref().map_or_else(|| chunk.view(), |o| o.view());
    let sliced = view.slice_each_axis(|axis| match &take.locals[axis.axis.index()] {
        Local::Range { start, end, step } => {
            Slice::new(*start as isize, Some(*end as isize), *step)
        }
        Local::At(i) => Slice::from(*i..*i + 1),
        Local::List(_) => Slice::from(..),
    });
    let out = sliced.as_standard_layout().into_owned().into_shape_with_order(IxDyn(&take.shape))?;
    Ok(chunk_value(out))
}
crate::for_each_element!(register_typed, "rask_array::take_chunk", take_chunk);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_select_what_numpy_selects() {
        assert_eq!(slice_positions(0, 10, None, None, 3).unwrap(), [0, 3, 6, 9]);
        assert_eq!(slice_positions(0, 10, None, None, -3).unwrap(), [9, 6, 3, 0]);
        assert_eq!(slice_positions(0, 10, Some(-2), None, 1).unwrap(), [8, 9]);
        assert_eq!(slice_positions(0, 10, Some(8), Some(2), -2).unwrap(), [8, 6, 4]);
        assert_eq!(slice_positions(0, 10, Some(20), Some(30), 1).unwrap(), Vec::<usize>::new());
        assert_eq!(slice_positions(0, 5, Some(-100), Some(100), 2).unwrap(), [0, 2, 4]);
        assert!(slice_positions(3, 5, None, None, 0).unwrap_err().to_string().contains("axis 3"));
    }
}
