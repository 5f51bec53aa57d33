//! Rechunking: any chunking to any other.
//!
//! Each output chunk is one task that copies its pieces out of the input chunks it overlaps
//! (per axis, the input chunks whose ranges meet the output chunk's range) — the one-stage
//! plan. Inputs are read in place (in process a chunk is shared, never copied), and an output
//! chunk that is exactly an input chunk is that chunk, with no task of its own. An all-to-all
//! rechunk of `n` chunks into `m` makes `m` tasks with `n` inputs each.
//!
//! A rechunk whose tasks would hold more than a bound of input goes through an intermediate
//! chunking first ([`crate::rechunk_plan`]).

use std::ops::Range;

use ndarray::{ArrayD, IxDyn, Slice};
use rask_core::{Arg, BlockGrid, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};
use serde::{Deserialize, Serialize};

use crate::array::{layer_name, spec_arg, typed_fn, Array};
use crate::chunks::{ChunkSpec, Chunks};
use crate::element::{chunk_value, Element};
use crate::error::Result;
use crate::rechunk_plan::{plan, DEFAULT_TASK_INPUT_BYTES};

/// Above this many chunks an array's graph is slow to build and run: rechunk says so.
pub const MANY_CHUNKS: usize = 1_000_000;

/// Where one input chunk's piece goes in an output chunk: per axis, the range it is read from
/// and where it lands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Piece {
    pub(crate) from: Vec<(usize, usize)>,
    pub(crate) to: Vec<usize>,
}

/// One output chunk: its shape, and one piece per input (in the order of the task's list).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Assembly {
    pub(crate) shape: Vec<usize>,
    pub(crate) pieces: Vec<Piece>,
}
rask_core::register_type!(Assembly);

/// For one axis: per output range, the input chunks it overlaps and the overlap in each
/// (input chunk, range inside it, offset in the output chunk). Ranges may overlap each other
/// (the ghost cells of `map_overlap`) but their starts must not decrease.
fn overlaps(old: &[usize], new: &[Range<usize>]) -> Vec<Vec<(usize, Range<usize>, usize)>> {
    let mut old_starts = Vec::with_capacity(old.len());
    let mut at = 0;
    for &n in old {
        old_starts.push(at);
        at += n;
    }
    let mut result = Vec::with_capacity(new.len());
    let mut first = 0; // the first input chunk that does not end before the range starts
    for range in new {
        while first < old.len() && old_starts[first] + old[first] <= range.start {
            first += 1;
        }
        let mut parts = Vec::new();
        let mut i = first;
        while i < old.len() && old_starts[i] < range.end {
            let (o_start, o_end) = (old_starts[i], old_starts[i] + old[i]);
            let (lo, hi) = (range.start.max(o_start), range.end.min(o_end));
            if lo < hi {
                parts.push((i, lo - o_start..hi - o_start, lo - range.start));
            }
            i += 1;
        }
        result.push(parts);
    }
    result
}

/// Consecutive ranges of the given lengths.
pub(crate) fn contiguous(lengths: &[usize]) -> Vec<Range<usize>> {
    let mut at = 0;
    lengths
        .iter()
        .map(|&n| {
            at += n;
            at - n..at
        })
        .collect()
}

impl<T: Element> Array<T> {
    /// The same values in other chunks: `x.rechunk([20, 1000, 1000])`,
    /// `x.rechunk(vec![AxisChunks::Whole, AxisChunks::Size(10), AxisChunks::Size(10)])`. No
    /// task holds more than 128 MiB of input (see [`Array::rechunk_bounded`]).
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
        self.rechunk_bounded(chunks, DEFAULT_TASK_INPUT_BYTES)
    }

    /// [`Array::rechunk`] to chunks made even first (Dask's `balance=True`): along each axis a
    /// small last chunk is folded into the others, `[30, 30, 30, 10]` → `[34, 34, 32]` (see
    /// [`crate::chunks::balance_lengths`]).
    pub fn rechunk_balanced(&self, chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
        let wanted = chunks.into().resolve(&self.shape(), size_of::<T>())?;
        let balanced: Vec<Vec<usize>> = wanted
            .per_axis()
            .iter()
            .map(|lengths| crate::chunks::balance_lengths(lengths))
            .collect();
        self.rechunk(balanced)
    }

    /// [`Array::rechunk`] with tasks holding at most `task_input_bytes` of input chunks: an
    /// all-to-all rechunk past the bound goes through an intermediate chunking (see
    /// [`crate::rechunk_plan`]); if no plan fits, the one with the smallest tasks, and a
    /// warning.
    pub fn rechunk_bounded(
        &self,
        chunks: impl Into<ChunkSpec>,
        task_input_bytes: usize,
    ) -> Result<Array<T>> {
        let shape = self.shape();
        let new = chunks.into().resolve(&shape, size_of::<T>())?;
        if new == *self.chunks {
            return Ok(self.clone());
        }
        if new.count() > MANY_CHUNKS {
            tracing::warn!(
                chunks = new.count(),
                "rechunking into {} chunks makes a graph of as many tasks or more; larger chunks \
                 (fewer than {MANY_CHUNKS}) schedule faster",
                new.count()
            );
        }
        let plan = plan(self.chunks.per_axis(), new.per_axis(), size_of::<T>(), task_input_bytes);
        if plan.worst_task_bytes > task_input_bytes {
            tracing::warn!(
                bytes = plan.worst_task_bytes,
                "no rechunk plan keeps every task under {task_input_bytes} bytes of input; the \
                 largest task holds {} bytes",
                plan.worst_task_bytes
            );
        }
        let mut x = self.clone();
        for stage in &plan.stages {
            let ranges: Vec<_> = stage.iter().map(|lengths| contiguous(lengths)).collect();
            x = x.gather_ranges("rechunk-stage", &ranges);
        }
        let ranges: Vec<_> = new.per_axis().iter().map(|lengths| contiguous(lengths)).collect();
        Ok(x.gather_ranges("rechunk", &ranges))
    }

    /// An array whose chunk `(i, j, ...)` holds the input's elements in `ranges[0][i] ×
    /// ranges[1][j] × ...`: each output chunk is one task assembling its pieces from the input
    /// chunks it overlaps, and one that is exactly an input chunk is that chunk. Rechunking
    /// gathers consecutive ranges; `map_overlap` gathers overlapping ones.
    pub(crate) fn gather_ranges(&self, prefix: &str, ranges: &[Vec<Range<usize>>]) -> Array<T> {
        let assemble = typed_fn::<T>("rask_array::rechunk_assemble");
        let (graph, name, new) =
            gather_layer(&self.graph, &self.name, &self.chunks, prefix, ranges, &assemble);
        Array::from_graph(graph, name, new)
    }
}

/// The layer of [`Array::gather_ranges`] for any chunk type (dense and sparse chunks share it):
/// over the chunks `chunks` of layer `source` in `graph`, one task per output chunk calling
/// `assemble(input chunks, Assembly)` (or passing an input chunk through whole). Returns the
/// graph, the layer's name and the output chunks.
pub(crate) fn gather_layer(
    graph: &Graph,
    source: &rask_core::Name,
    chunks: &Chunks,
    prefix: &str,
    ranges: &[Vec<Range<usize>>],
    assemble: &rask_core::TaskFn,
) -> (Graph, rask_core::Name, Chunks) {
    let new =
        Chunks(ranges.iter().map(|axis| axis.iter().map(|r| r.end - r.start).collect()).collect());
    let per_axis: Vec<_> = ranges
        .iter()
        .enumerate()
        .map(|(axis, ranges)| overlaps(&chunks.per_axis()[axis], ranges))
        .collect();
    let name = layer_name(prefix, |t| {
        t.str(source.as_str()).str(assemble.name());
        for axis in ranges {
            t.u64(axis.len() as u64);
            axis.iter().for_each(|r| {
                t.u64(r.start as u64).u64(r.end as u64);
            });
        }
    });
    let identity = crate::array::plain_fn("rask::identity");
    let grid = BlockGrid::of(&new.grid());
    let mut tasks = Vec::with_capacity(grid.len());
    for linear in 0..grid.len() as u32 {
        let out = grid.unravel(linear);
        let shape = new.block_shape(&out);
        // Every combination of overlapping input chunks along the axes, row-major.
        let lists: Vec<&Vec<(usize, Range<usize>, usize)>> =
            out.iter().enumerate().map(|(axis, &o)| &per_axis[axis][o as usize]).collect();
        let counts: Vec<u32> = lists.iter().map(|l| l.len() as u32).collect();
        let combos = BlockGrid::of(&counts);
        let mut inputs = Vec::with_capacity(combos.len());
        let mut pieces = Vec::with_capacity(combos.len());
        for c in 0..combos.len() as u32 {
            let pick = combos.unravel(c);
            let mut index = Vec::with_capacity(out.len());
            let mut from = Vec::with_capacity(out.len());
            let mut to = Vec::with_capacity(out.len());
            for (axis, &p) in pick.iter().enumerate() {
                let (i, range, offset) = &lists[axis][p as usize];
                index.push(*i as u32);
                from.push((range.start, range.end));
                to.push(*offset);
            }
            inputs.push(Arg::Key(Key::block(source.clone(), &index)));
            pieces.push((index, Piece { from, to }));
        }
        let key = Key::block(name.clone(), &out);
        // An output chunk that is exactly one input chunk is that chunk.
        let whole = pieces.len() == 1 && {
            let (index, piece) = &pieces[0];
            chunks.block_shape(index) == shape
                && piece.from.iter().zip(&shape).all(|(&(a, b), &n)| a == 0 && b == n)
        };
        let spec = if whole {
            TaskSpec::new(identity.clone(), inputs)
        } else {
            let assembly = Assembly { shape, pieces: pieces.into_iter().map(|(_, p)| p).collect() };
            TaskSpec::new(
                assemble.clone(),
                vec![Arg::List(inputs), Arg::Value(Value::serde(assembly))],
            )
        };
        tasks.push((key, spec));
    }
    (Graph::from_layer(Layer::tasks(name.clone(), tasks, &[graph])), name, new)
}

/// What an assembly task reads: its input chunks (argument 0, as many as pieces) and the
/// assembly (argument 1), each input with the piece of it to take.
pub(crate) fn assembly_inputs<'a, C: 'static>(
    args: &'a [Value],
    what: &str,
) -> std::result::Result<(Vec<&'a C>, &'a Assembly), TaskError> {
    let inputs = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the input chunks"))?;
    let assembly = spec_arg::<Assembly>(args, 1, "the assembly")?;
    if inputs.len() != assembly.pieces.len() {
        return Err(TaskError::msg(format!(
            "{} input chunks for {} pieces",
            inputs.len(),
            assembly.pieces.len()
        )));
    }
    let chunks = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| Ok(input.get::<C>(&format_args!("input chunk {i} of a {what}"))?))
        .collect::<std::result::Result<Vec<_>, TaskError>>()?;
    Ok((chunks, assembly))
}

fn rechunk_assemble<T: Element>(args: &[Value]) -> TaskResult {
    let (inputs, assembly) = assembly_inputs::<ArrayD<T>>(args, "rechunk")?;
    let sources: Vec<_> = inputs
        .iter()
        .zip(&assembly.pieces)
        .map(|(chunk, piece)| {
            chunk.slice_each_axis(|axis| {
                let (a, b) = piece.from[axis.axis.index()];
                Slice::from(a..b)
            })
        })
        .collect();
    if let Some(axis) = stacked_axis(assembly) {
        // Pieces that follow each other along one axis (images into a stack): one copy into
        // memory that is not zero-filled first.
        return Ok(chunk_value(ndarray::concatenate(ndarray::Axis(axis), &sources)?));
    }
    let mut out = ArrayD::from_elem(IxDyn(&assembly.shape), T::default());
    for (source, piece) in sources.iter().zip(&assembly.pieces) {
        let mut target = out.slice_each_axis_mut(|axis| {
            let a = axis.axis.index();
            let start = piece.to[a];
            Slice::from(start..start + (piece.from[a].1 - piece.from[a].0))
        });
        target.assign(source);
    }
    Ok(chunk_value(out))
}

/// The axis along which the pieces of an assembly lie one after the other, in order, each
/// covering the whole output along every other axis — if they do.
fn stacked_axis(assembly: &Assembly) -> Option<usize> {
    let pieces = &assembly.pieces;
    let axis = (0..assembly.shape.len()).find(|&a| pieces.iter().any(|p| p.to[a] != 0))?;
    let mut at = 0;
    for piece in pieces {
        for (a, (&(from, to), &n)) in piece.from.iter().zip(&assembly.shape).enumerate() {
            let covers =
                if a == axis { piece.to[a] == at } else { piece.to[a] == 0 && to - from == n };
            if !covers {
                return None;
            }
        }
        at += piece.from[axis].1 - piece.from[axis].0;
    }
    (at == assembly.shape[axis]).then_some(axis)
}
crate::for_each_element!(register_typed, "rask_array::rechunk_assemble", rechunk_assemble);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_pair_every_output_range_with_the_input_ranges_it_meets() {
        let o = overlaps(&[4, 4, 2], &contiguous(&[3, 3, 3, 1]));
        let simple: Vec<Vec<(usize, usize, usize, usize)>> = o
            .iter()
            .map(|parts| parts.iter().map(|(i, r, at)| (*i, r.start, r.end, *at)).collect())
            .collect();
        assert_eq!(
            simple,
            vec![
                vec![(0, 0, 3, 0)],
                vec![(0, 3, 4, 0), (1, 0, 2, 1)],
                vec![(1, 2, 4, 0), (2, 0, 1, 2)],
                vec![(2, 1, 2, 0)],
            ]
        );
        assert_eq!(overlaps(&[10], &contiguous(&[10])).len(), 1);
        // Overlapping ranges (ghost cells) each see every chunk they meet.
        let o = overlaps(&[4, 4], &[0..5, 3..8]);
        assert_eq!(o[0].iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(
            o[1].iter().map(|p| (p.0, p.1.clone(), p.2)).collect::<Vec<_>>(),
            [(0, 3..4, 0), (1, 0..4, 1)]
        );
    }
}
