//! `diag`: a 1-d array as the diagonal of a matrix, or a matrix's diagonal as a 1-d array.
//!
//! Building a matrix is one blockwise layer over the square grid of the vector's chunks (the
//! diagonal blocks hold the vector's chunk, the others zeros), padded for an offset diagonal.
//! Reading a diagonal cuts it where the row or column chunks change: each piece lies in one
//! block and is one task reading that block only.

use ndarray::{ArrayD, IxDyn};
use rask_core::{AxisMap, BlockArg, BlockGrid, Graph, Key, Layer, TaskResult, TaskSpec, Value};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::creation::from_ndarray;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};
use crate::pad::PadMode;

/// The matrix with `v` on diagonal `k` (a 1-d `v`), or diagonal `k` of `v` (a 2-d `v`), as
/// NumPy's `diag`: `k > 0` above the main diagonal, `k < 0` below it.
pub fn diag<T: Element>(v: &Array<T>, k: i64) -> Result<Array<T>> {
    match v.ndim() {
        1 => {
            let matrix = diagonal_matrix(v);
            let k_abs = k.unsigned_abs() as usize;
            if k == 0 {
                Ok(matrix)
            } else if k > 0 {
                matrix.pad(&[(0, k_abs), (k_abs, 0)], PadMode::Constant(T::default()))
            } else {
                matrix.pad(&[(k_abs, 0), (0, k_abs)], PadMode::Constant(T::default()))
            }
        }
        2 => Ok(read_diagonal(v, k)),
        n => Err(Error::Invalid(format!(
            "diag takes a 1-d array (to make a matrix) or a 2-d one (to read its diagonal), not \
             an array of {n} axes"
        ))),
    }
}

fn diagonal_matrix<T: Element>(v: &Array<T>) -> Array<T> {
    let lengths = v.chunks.per_axis()[0].clone();
    let chunks = Chunks(vec![lengths.clone(), lengths]);
    let name = layer_name("diag", |t| {
        t.str(v.name.as_str());
    });
    Array::blockwise_layer(
        name,
        typed_fn::<T>("rask_array::diag_block"),
        vec![
            BlockArg::Aligned(v.name.clone(), vec![AxisMap::Out(0)]),
            BlockArg::Value(Value::serde(chunks.clone())),
            BlockArg::PartIndex,
        ],
        &[&v.graph],
        chunks,
    )
}

fn read_diagonal<T: Element>(m: &Array<T>, k: i64) -> Array<T> {
    let shape = m.shape();
    let (row0, col0) = if k >= 0 { (0, k as usize) } else { (k.unsigned_abs() as usize, 0) };
    let length = shape[0].saturating_sub(row0).min(shape[1].saturating_sub(col0));
    if length == 0 {
        return from_ndarray(&ArrayD::<T>::from_elem(IxDyn(&[0]), T::default()), 1)
            .expect("one empty chunk");
    }
    // Cut the diagonal wherever the row or the column chunk changes.
    let (rows, cols) = (m.chunks.offsets(0), m.chunks.offsets(1));
    let mut cuts: Vec<usize> = vec![0, length];
    cuts.extend(rows.iter().filter_map(|&r| r.checked_sub(row0)).filter(|&i| i < length));
    cuts.extend(cols.iter().filter_map(|&c| c.checked_sub(col0)).filter(|&i| i < length));
    cuts.sort_unstable();
    cuts.dedup();
    let name = layer_name("diagonal", |t| {
        t.str(m.name.as_str()).u64(k as u64);
    });
    let func = typed_fn::<T>("rask_array::diag_read");
    let block_of = |offsets: &[usize], at: usize| offsets.partition_point(|&o| o <= at) - 1;
    let mut tasks = Vec::with_capacity(cuts.len() - 1);
    let mut lengths = Vec::with_capacity(cuts.len() - 1);
    for (piece, w) in cuts.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        let (r, c) = (start + row0, start + col0);
        let (bi, bj) = (block_of(&rows, r), block_of(&cols, c));
        let local = (r - rows[bi], c - cols[bj], end - start);
        let spec = TaskSpec::new(
            func.clone(),
            vec![
                rask_core::Arg::Key(m.block_key(&[bi as u32, bj as u32])),
                rask_core::Arg::Value(Value::serde((
                    local.0 as u64,
                    local.1 as u64,
                    local.2 as u64,
                ))),
            ],
        );
        tasks.push((Key::block(name.clone(), &[piece as u32]), spec));
        lengths.push(end - start);
    }
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&m.graph]));
    Array::from_graph(graph, name, Chunks(vec![lengths]))
}

/// A block of the diagonal matrix: the vector's chunk on the diagonal, zeros elsewhere.
fn diag_block<T: Element>(args: &[Value]) -> TaskResult {
    let v = chunk_arg::<T>(args, 0)?;
    let chunks = spec_arg::<Chunks>(args, 1, "the chunks")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let index = BlockGrid::of(&chunks.grid()).unravel(part);
    let mut out = ArrayD::from_elem(IxDyn(&chunks.block_shape(&index)), T::default());
    if index[0] == index[1] {
        for (k, &value) in v.iter().enumerate() {
            out[[k, k]] = value;
        }
    }
    Ok(chunk_value(out))
}
crate::for_each_element!(register_typed, "rask_array::diag_block", diag_block);

rask_core::register_type!((u64, u64, u64));

/// A piece of a diagonal inside one block: `(row, column, length)` in the block.
fn diag_read<T: Element>(args: &[Value]) -> TaskResult {
    let block = chunk_arg::<T>(args, 0)?;
    let &(r, c, n) = spec_arg::<(u64, u64, u64)>(args, 1, "the piece")?;
    let values: Vec<T> = (0..n as usize).map(|i| block[[r as usize + i, c as usize + i]]).collect();
    Ok(chunk_value(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values)?))
}
crate::for_each_element!(register_typed, "rask_array::diag_read", diag_read);
