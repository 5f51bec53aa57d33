//! Cumulative sums and products along an axis: `cumsum`, `cumprod`.
//!
//! Dask's `cumreduction`: every chunk is scanned on its own (one blockwise task per chunk),
//! then a chain of *carry* tasks (rask-core's [`CarryChain`]) runs along the axis — the carry into block `j` is the carry
//! into block `j − 1` combined with the last slice of that block's scan — and each block
//! after the first adds (or multiplies) its carry, broadcast along the axis. Blocks of
//! different rows of the grid have chains of their own, so the work stays parallel across the
//! other axes; along the scanned axis only the small carry slices are sequential.
//!
//! Results are in the accumulator type (`i64`/`u64` for integers and booleans), as NumPy's.

use ndarray::{ArrayD, Axis, IxDyn};
use rask_core::partitioned::CarryChain;
use rask_core::{Arg, BlockGrid, Graph, Key, Layer, TaskError, TaskResult, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::element::{chunk_value, Element};
use crate::elementwise::chunkwise;
use crate::error::Result;
use crate::number::Number;

/// Which scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Scan {
    Sum,
    Prod,
}

/// A scan as its tasks see it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ScanSpec {
    scan: Scan,
    axis: usize,
}
rask_core::register_type!(ScanSpec);

impl Scan {
    fn identity<A: Number>(self) -> A {
        match self {
            Scan::Sum => A::zero(),
            Scan::Prod => A::one(),
        }
    }

    fn apply<A: Number>(self, a: A, b: A) -> A {
        match self {
            Scan::Sum => Number::add(a, b),
            Scan::Prod => Number::mul(a, b),
        }
    }
}

impl<T: Element> Array<T>
where
    T::Acc: Number,
{
    /// The cumulative sum along `axis`, in the accumulator type.
    pub fn cumsum(&self, axis: isize) -> Result<Array<T::Acc>> {
        self.scan(Scan::Sum, axis)
    }

    /// The cumulative product along `axis`, in the accumulator type.
    pub fn cumprod(&self, axis: isize) -> Result<Array<T::Acc>> {
        self.scan(Scan::Prod, axis)
    }

    fn scan(&self, scan: Scan, axis: isize) -> Result<Array<T::Acc>> {
        let axis = self.axis(axis)?;
        let spec = ScanSpec { scan, axis };
        let local: Array<T::Acc> =
            chunkwise(self, "scan-chunk", typed_fn::<T>("rask_array::scan_chunk"), spec);
        let grid = self.chunks.grid();
        if grid[axis] <= 1 {
            return Ok(local);
        }
        let name = layer_name(if scan == Scan::Sum { "cumsum" } else { "cumprod" }, |t| {
            t.str(local.name.as_str());
        });
        let chain = CarryChain {
            prefix: "scan-carry".into(),
            carry: typed_fn::<T::Acc>("rask_array::scan_carry"),
            apply: typed_fn::<T::Acc>("rask_array::scan_offset"),
            args: vec![Arg::Value(Value::serde(spec))],
        };
        // One chain along the axis for every position of the other axes.
        let blocks = BlockGrid::of(&grid);
        let mut tasks = Vec::with_capacity(blocks.len() * 2);
        for linear in 0..blocks.len() as u32 {
            let index = blocks.unravel(linear);
            if index[axis] != 0 {
                continue;
            }
            let along = |j: u32| {
                let mut at = index.to_vec();
                at[axis] = j;
                at
            };
            let inputs: Vec<Key> = (0..grid[axis]).map(|j| local.block_key(&along(j))).collect();
            let outputs: Vec<Key> =
                (0..grid[axis]).map(|j| Key::block(name.clone(), &along(j))).collect();
            tasks.extend(chain.tasks(&inputs, &outputs));
        }
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&local.graph]));
        Ok(Array::with_shared_chunks(graph, name, self.chunks.clone()))
    }
}

/// The scan of one chunk on its own, in the accumulator type.
fn scan_chunk<T: Element>(args: &[Value]) -> TaskResult
where
    T::Acc: Number,
{
    let chunk = chunk_arg::<T>(args, 0)?;
    let spec = spec_arg::<ScanSpec>(args, 1, "the scan")?;
    let mut out: ArrayD<T::Acc> = chunk.mapv(Element::accumulate);
    out.accumulate_axis_inplace(Axis(spec.axis), |&previous, current| {
        *current = spec.scan.apply(previous, *current)
    });
    Ok(chunk_value(out))
}
crate::for_each_element!(register_typed, "rask_array::scan_chunk", scan_chunk);

/// The carry into the next block: the last slice of a scanned block, combined with the carry
/// into that block when there is one (the third argument).
fn scan_carry<A: Number>(args: &[Value]) -> TaskResult {
    let block = chunk_arg::<A>(args, 0)?;
    let spec = spec_arg::<ScanSpec>(args, 1, "the scan")?;
    let mut slice_shape = block.shape().to_vec();
    slice_shape[spec.axis] = 1;
    let last = match block.len_of(Axis(spec.axis)) {
        0 => ArrayD::from_elem(IxDyn(&slice_shape), spec.scan.identity::<A>()),
        n => block.slice_axis(Axis(spec.axis), ndarray::Slice::from(n - 1..n)).to_owned(),
    };
    if args.len() < 3 {
        return Ok(chunk_value(last));
    }
    let previous = chunk_arg::<A>(args, 2)?;
    let combined =
        ndarray::Zip::from(previous).and(&last).map_collect(|&a, &b| spec.scan.apply(a, b));
    Ok(chunk_value(combined))
}
crate::for_each_number!(register_typed, "rask_array::scan_carry", scan_carry);

/// A scanned block with its carry applied, broadcast along the axis (the first block of the
/// axis has none: its scan is already the result).
fn scan_offset<A: Number>(args: &[Value]) -> TaskResult {
    let block = chunk_arg::<A>(args, 0)?;
    let spec = spec_arg::<ScanSpec>(args, 2, "the scan")?;
    if args.len() < 4 {
        return Ok(args[0].clone());
    }
    let carry = chunk_arg::<A>(args, 3)?;
    let carry = carry.broadcast(block.raw_dim()).ok_or_else(|| {
        TaskError::msg(format!(
            "a carry of shape {:?} for a block of shape {:?}",
            carry.shape(),
            block.shape()
        ))
    })?;
    let out = ndarray::Zip::from(block).and(&carry).map_collect(|&a, &c| spec.scan.apply(c, a));
    Ok(chunk_value(out))
}
crate::for_each_number!(register_typed, "rask_array::scan_offset", scan_offset);
