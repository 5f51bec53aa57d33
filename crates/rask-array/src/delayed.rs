//! Arrays and `Delayed` values: `to_delayed` (one delayed per chunk) and `from_delayed` (a
//! delayed `ndarray` as a one-chunk array).
//!
//! The bridge to arbitrary code, as in Dask: take the chunks out as delayed values, compute
//! anything with them, and bring results back as arrays. A delayed's shape is the caller's
//! claim; the chunk task checks it, so a wrong claim is an error naming both shapes, never an
//! array whose chunks disagree with its metadata.

use ndarray::{ArrayD, IxDyn};
use rask_core::{Arg, Delayed, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::Element;

impl<T: Element> Array<T> {
    /// One delayed chunk per block, in an array shaped like the block grid.
    pub fn to_delayed(&self) -> ArrayD<Delayed<ArrayD<T>>> {
        let grid: Vec<usize> = self.numblocks().iter().map(|&n| n as usize).collect();
        let delayed = self
            .block_keys()
            .into_iter()
            .map(|key| Delayed::from_graph(self.graph.clone(), key))
            .collect();
        ArrayD::from_shape_vec(IxDyn(&grid), delayed).expect("one key per block")
    }
}

/// A one-chunk array of a delayed `ndarray` of the given shape (checked when it is computed).
pub fn from_delayed<T: Element>(value: &Delayed<ArrayD<T>>, shape: &[usize]) -> Array<T> {
    let name = layer_name("from-delayed", |t| {
        t.key(value.key());
        shape.iter().for_each(|&n| {
            t.u64(n as u64);
        });
    });
    let key = Key::block(name.clone(), &vec![0; shape.len()]);
    let spec = TaskSpec::new(
        typed_fn::<T>("rask_array::check_shape"),
        vec![
            Arg::Key(value.key().clone()),
            Arg::Value(Value::serde(shape.iter().map(|&n| n as u64).collect::<Vec<u64>>())),
        ],
    );
    let graph = Graph::from_layer(Layer::tasks(name.clone(), vec![(key, spec)], &[&value.graph()]));
    let chunks = Chunks(shape.iter().map(|&n| vec![n]).collect());
    Array::from_graph(graph, name, chunks)
}

/// The chunk, if it has the claimed shape.
fn check_shape<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let shape = spec_arg::<Vec<u64>>(args, 1, "the shape")?;
    if chunk.shape().iter().map(|&n| n as u64).ne(shape.iter().copied()) {
        return Err(TaskError::msg(format!(
            "from_delayed was told shape {shape:?}, but the delayed value has shape {:?}",
            chunk.shape()
        )));
    }
    // The value itself goes on (shared in process, not copied).
    Ok(args[0].clone())
}
crate::for_each_element!(register_typed, "rask_array::check_shape", check_shape);
rask_core::register_type!(Vec<u64>);
