//! Boolean selection: `x[mask]` and `x.compress(mask, axis)`, whose results have chunk
//! lengths no one knows before computing.
//!
//! Dask marks such chunks `nan` and lets every later operation that needs a length fail at
//! run time. rask makes the difference a type: a selection is a [`Selected<T>`], which can be
//! computed, persisted and shown, and which becomes an ordinary [`Array<T>`] through
//! [`Selected::compute_chunk_sizes`] (that computes and keeps the chunks, then reads their
//! lengths). An operation that needs lengths does not compile on a `Selected`, instead of
//! failing later.
//!
//! `x.select(&mask)` with a mask of `x`'s shape gives the selected values in row-major order,
//! as NumPy's `x[mask]` does: both are raveled first, so the order never depends on the chunks.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};
use rask_core::{
    AxisMap, BlockArg, BlockGrid, Collection, Graph, Key, Layer, Name, Optimizations, TaskError,
    TaskResult, TaskSpec, Value,
};

use crate::array::{assemble, chunk_arg, chunk_of, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

/// An array whose chunk lengths along one axis are known only once computed: the result of a
/// boolean selection.
pub struct Selected<T: Element> {
    graph: Graph,
    name: Name,
    /// The chunks, with the lengths along `axis` at their upper bounds (the input's).
    bounds: Arc<Chunks>,
    axis: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T: Element> Clone for Selected<T> {
    fn clone(&self) -> Self {
        Selected {
            graph: self.graph.clone(),
            name: self.name.clone(),
            bounds: self.bounds.clone(),
            axis: self.axis,
            _type: PhantomData,
        }
    }
}

impl<T: Element> Array<T> {
    /// The elements where `mask` is true, in row-major order: NumPy's `x[mask]`, a 1-d
    /// selection of unknown length. The mask must have this array's shape.
    pub fn select(&self, mask: &Array<bool>) -> Result<Selected<T>> {
        if mask.shape() != self.shape() {
            return Err(Error::Invalid(format!(
                "a mask of shape {:?} for an array of shape {:?}: `select` needs a mask of the \
                 array's shape (for a mask along one axis use `compress(mask, axis)`)",
                mask.shape(),
                self.shape()
            )));
        }
        let x = if self.ndim() == 1 { self.clone() } else { self.ravel()? };
        let mask = if mask.ndim() == 1 { mask.clone() } else { mask.ravel()? };
        x.compress(&mask, 0)
    }

    /// The slices along `axis` where the 1-d `mask` is true: NumPy's `compress`, with the
    /// length along `axis` unknown until computed.
    pub fn compress(&self, mask: &Array<bool>, axis: isize) -> Result<Selected<T>> {
        let axis = self.axis(axis)?;
        let length = self.shape()[axis];
        if mask.shape() != [length] {
            return Err(Error::Invalid(format!(
                "a mask of shape {:?} along axis {axis} of length {length}: give a 1-d mask of \
                 {length} booleans",
                mask.shape()
            )));
        }
        let mask = mask.rechunk(vec![self.chunks.per_axis()[axis].clone()])?;
        let name = layer_name("compress", |t| {
            t.str(self.name.as_str()).str(mask.name.as_str()).u64(axis as u64);
        });
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        let selected = Array::<T>::partial_layer(
            name.clone(),
            typed_fn::<T>("rask_array::compress_chunk"),
            vec![
                BlockArg::Aligned(self.name.clone(), identity),
                BlockArg::Aligned(mask.name.clone(), vec![AxisMap::Out(axis as u8)]),
                BlockArg::Value(Value::serde(axis as u64)),
            ],
            &[&self.graph, &mask.graph],
            (*self.chunks).clone(),
        );
        Ok(Selected {
            graph: selected.graph,
            name,
            bounds: self.chunks.clone(),
            axis,
            _type: PhantomData,
        })
    }

    /// The slices along `axis` where an in-memory mask is true; the lengths are known, so
    /// the result is an ordinary array (a `take` of the true positions).
    pub fn compress_with(&self, mask: &[bool], axis: isize) -> Result<Array<T>> {
        let a = self.axis(axis)?;
        if mask.len() != self.shape()[a] {
            return Err(Error::Invalid(format!(
                "a mask of {} booleans along axis {a} of length {}: give one per position",
                mask.len(),
                self.shape()[a]
            )));
        }
        let positions: Vec<i64> =
            mask.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i as i64).collect();
        self.take(&positions, axis)
    }
}

impl<T: Element> Selected<T> {
    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.bounds.ndim()
    }

    /// The axis whose lengths are unknown.
    pub fn unknown_axis(&self) -> usize {
        self.axis
    }

    /// The shape, `None` on the unknown axis.
    pub fn shape(&self) -> Vec<Option<usize>> {
        let shape = self.bounds.shape();
        (0..self.ndim()).map(|a| (a != self.axis).then_some(shape[a])).collect()
    }

    /// Per axis the chunk lengths, `None` along the unknown axis.
    pub fn chunks(&self) -> Vec<Vec<Option<usize>>> {
        self.bounds
            .per_axis()
            .iter()
            .enumerate()
            .map(|(a, lengths)| lengths.iter().map(|&n| (a != self.axis).then_some(n)).collect())
            .collect()
    }

    /// Blocks per axis (known: one block per input block).
    pub fn numblocks(&self) -> Vec<u32> {
        self.bounds.grid()
    }

    /// The name of the layer holding the chunks.
    pub fn name(&self) -> &Name {
        &self.name
    }

    fn block_keys(&self) -> Vec<Key> {
        let grid = BlockGrid::of(&self.bounds.grid());
        (0..grid.len() as u32).map(|i| Key::block(self.name.clone(), &grid.unravel(i))).collect()
    }

    /// Computes and keeps the chunks (on a cluster they stay on the workers), reads their
    /// lengths, and returns the ordinary array they make — Dask's `compute_chunk_sizes()`.
    pub fn compute_chunk_sizes(&self) -> Result<Array<T>> {
        let scheduler = rask_local::current_scheduler();
        let optimizations = Optimizations::default();
        let persisted = scheduler.persist(&self.graph, &self.block_keys(), &optimizations)?;
        // One length task per block along the unknown axis (block 0 of the other axes).
        let lengths_name = layer_name("chunk-lengths", |t| {
            t.str(self.name.as_str());
        });
        let length_fn = typed_fn::<T>("rask_array::chunk_length");
        let blocks = self.bounds.grid()[self.axis];
        let mut tasks = Vec::with_capacity(blocks as usize);
        for j in 0..blocks {
            let mut index = vec![0u32; self.ndim()];
            index[self.axis] = j;
            let spec = TaskSpec::new(
                length_fn.clone(),
                vec![
                    rask_core::Arg::Key(Key::block(self.name.clone(), &index)),
                    rask_core::Arg::Value(Value::serde(self.axis as u64)),
                ],
            );
            tasks.push((Key::block(lengths_name.clone(), &[j]), spec));
        }
        let keys: Vec<Key> = tasks.iter().map(|(key, _)| key.clone()).collect();
        let graph = Graph::from_layer(Layer::tasks(lengths_name, tasks, &[&persisted]));
        let values = scheduler.compute(&graph, &keys, &optimizations)?;
        let lengths = values
            .iter()
            .map(|v| v.get::<u64>(&"a chunk length").map(|&n| n as usize))
            .collect::<rask_core::Result<Vec<usize>>>()?;
        let mut per_axis = self.bounds.per_axis().to_vec();
        per_axis[self.axis] = lengths;
        Ok(Array::from_graph(persisted, self.name.clone(), Chunks(per_axis)))
    }
}

impl<T: Element> Collection for Selected<T> {
    type Output = ArrayD<T>;

    fn graph(&self) -> Graph {
        self.graph.clone()
    }

    fn output_keys(&self) -> Vec<Key> {
        self.block_keys()
    }

    fn finalize(&self, values: Vec<Value>) -> rask_core::Result<ArrayD<T>> {
        let blocks = values
            .iter()
            .enumerate()
            .map(|(i, value)| chunk_of::<T>(value, &format_args!("chunk {i} of a selection")))
            .collect::<rask_core::Result<Vec<_>>>()?;
        // The unknown lengths from the blocks of the first row; `assemble` checks the rest.
        let grid = BlockGrid::of(&self.bounds.grid());
        let mut per_axis = self.bounds.per_axis().to_vec();
        per_axis[self.axis] = (0..self.bounds.grid()[self.axis])
            .map(|j| {
                let mut index = vec![0u32; self.ndim()];
                index[self.axis] = j;
                grid.ravel(&index).map_or(0, |i| blocks[i as usize].len_of(Axis(self.axis)))
            })
            .collect();
        Ok(assemble(&Chunks(per_axis), &blocks)?)
    }
}

impl<T: Element> fmt::Display for Selected<T> {
    /// `rask.array<compress, shape=(nan, 3), dtype=float64, chunks=4, tasks=12>`: the unknown
    /// length shows as `nan`, as Dask's does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape: Vec<String> = self
            .shape()
            .iter()
            .map(|n| n.map_or_else(|| "nan".to_string(), |n| n.to_string()))
            .collect();
        let shape = match shape.as_slice() {
            [one] => format!("({one},)"),
            _ => format!("({})", shape.join(", ")),
        };
        write!(
            f,
            "rask.array<{}, shape={shape}, dtype={}, chunks={}, tasks={}>",
            self.name.prefix(),
            T::DTYPE,
            self.bounds.count(),
            self.graph.num_tasks()
        )
    }
}

impl<T: Element> fmt::Debug for Selected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The slices of a chunk where its part of the mask is true.
fn compress_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let mask = chunk_arg::<bool>(args, 1)?;
    let axis = *spec_arg::<u64>(args, 2, "the axis")? as usize;
    if mask.len() != chunk.len_of(Axis(axis)) {
        return Err(TaskError::msg(format!(
            "a mask chunk of {} booleans for a chunk of {} along axis {axis}",
            mask.len(),
            chunk.len_of(Axis(axis))
        )));
    }
    let positions: Vec<usize> =
        mask.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i).collect();
    let out = if chunk.ndim() == 1 {
        let values: Vec<T> = positions.iter().map(|&i| chunk[[i]]).collect();
        ArrayD::from_shape_vec(IxDyn(&[values.len()]), values)
            .map_err(|e| TaskError::msg(e.to_string()))?
    } else {
        chunk.select(Axis(axis), &positions)
    };
    Ok(chunk_value(out))
}
crate::for_each_element!(register_typed, "rask_array::compress_chunk", compress_chunk);

/// The length of a chunk along an axis.
fn chunk_length<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let axis = *spec_arg::<u64>(args, 1, "the axis")? as usize;
    Ok(Value::serde(chunk.len_of(Axis(axis)) as u64))
}
crate::for_each_element!(register_typed, "rask_array::chunk_length", chunk_length);
