//! [`SparseArray<T>`]: a lazy 2-d array of sparse chunks (CSR matrices of `sprs`).
//!
//! Dask arrays hold any chunk type that behaves like NumPy, `sparse.COO` among them. rask's
//! chunk types are checked at compile time, so sparse chunks make their own collection on the
//! same base as [`Array`]: the same [`Chunks`] grid, block keys, blockwise layers and trees,
//! with chunks that are `sprs::CsMat<T>` in CSR form. Make one from a dense array
//! ([`Array::to_sparse`], or [`Array::map_blocks_sparse`] with a function that builds CSR
//! chunks); then
//! * elementwise ([`ops`]): sparse `+ - *` sparse (sparse), `* /` a scalar, `mul_dense` (sparse),
//!   `add_dense` (dense), `map_values` with a function that keeps zero at zero;
//! * reductions: `sum`, `mean`, `count_nonzero` over any axes — per-chunk sums of the stored
//!   values, then the dense reduction tree;
//! * products: sparse @ dense and dense @ sparse (dense), sparse @ sparse (sparse), `t()`;
//! * `rechunk` and `slice` (ranges of step 1), on the dense arrays' gather layer;
//! * `to_dense()`, and `compute()` to one `CsMat<T>`.
//!
//! An operation whose result would not be sparse (a function with `f(0) != 0`, division by
//! zero, `0 × NaN`) is refused with an error that says to go dense first, never computed with
//! the zeros silently left out. On a cluster sparse chunks travel as raw bytes ([`codec`]).

pub mod codec;
pub mod kernels;
pub mod ops;
mod rechunk;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use rask_core::{registry, Collection, Graph, Key, Name, Optimizations, TaskFn, Value};
use sprs::{CsMat, CsMatView};

use crate::array::Array;
use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::number::Number;

pub use kernels::SparseOp;

/// A lazy, chunked 2-d array of `T` whose chunks are CSR sparse matrices.
pub struct SparseArray<T: Number> {
    pub(crate) graph: Graph,
    pub(crate) name: Name,
    pub(crate) chunks: Arc<Chunks>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Number> Clone for SparseArray<T> {
    fn clone(&self) -> Self {
        SparseArray {
            graph: self.graph.clone(),
            name: self.name.clone(),
            chunks: self.chunks.clone(),
            _type: PhantomData,
        }
    }
}

/// The registered task function `base::<dtype>` of the sparse kernels.
pub(crate) fn sparse_fn<T: Element>(base: &str) -> TaskFn {
    registry::lookup(&format!("rask_array::sparse::{base}::<{}>", T::DTYPE)).unwrap_or_else(|e| {
        panic!("rask-array registers the sparse {base} for every type it offers it for: {e}")
    })
}

impl<T: Number> SparseArray<T> {
    /// A sparse array whose chunk `(i, j)` is the key `(name, i, j)` of `graph`, each a
    /// `CsMat<T>` of that block's shape.
    pub fn from_graph(graph: Graph, name: Name, chunks: Chunks) -> Result<Self> {
        if chunks.ndim() != 2 {
            return Err(Error::Invalid(format!(
                "sparse arrays are 2-d (CSR chunks), got {} axes (reshape to 2-d first)",
                chunks.ndim()
            )));
        }
        Ok(SparseArray::new(graph, name, Arc::new(chunks)))
    }

    pub(crate) fn new(graph: Graph, name: Name, chunks: Arc<Chunks>) -> Self {
        SparseArray { graph, name, chunks, _type: PhantomData }
    }

    /// The array's shape (two axes).
    pub fn shape(&self) -> Vec<usize> {
        self.chunks.shape()
    }

    /// The chunk grid.
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// NumPy's name of the element type.
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// The name of the layer that holds the chunks.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The graph.
    pub fn graph_ref(&self) -> &Graph {
        &self.graph
    }

    /// The key of chunk `(i, j)`.
    pub fn block_key(&self, index: &[u32]) -> Key {
        Key::block(self.name.clone(), index)
    }

    /// A dense array with the same chunks whose chunk `(i, j)` is `func(sparse chunk, spec)`:
    /// the per-chunk step of conversions and reductions.
    pub(crate) fn to_dense_layer<U: Element>(
        &self,
        prefix: &str,
        func: TaskFn,
        spec: Value,
        chunks: Chunks,
    ) -> Array<U> {
        let name = crate::array::layer_name(prefix, |t| {
            t.str(self.name.as_str()).str(func.name());
        });
        let identity = vec![rask_core::AxisMap::Out(0), rask_core::AxisMap::Out(1)];
        Array::partial_layer(
            name,
            func,
            vec![
                rask_core::BlockArg::Aligned(self.name.clone(), identity),
                rask_core::BlockArg::Value(spec),
            ],
            &[&self.graph],
            chunks,
        )
    }

    /// Computes the chunks now and returns a sparse array that reads them (on a cluster the
    /// chunks stay on the workers).
    pub fn persist(&self) -> Result<SparseArray<T>> {
        let keys = self.output_keys();
        let graph = rask_local::current_scheduler().persist(
            &self.graph,
            &keys,
            &Optimizations::default(),
        )?;
        Ok(SparseArray::new(graph, self.name.clone(), self.chunks.clone()))
    }
}

impl<T: Number> Collection for SparseArray<T> {
    type Output = CsMat<T>;

    fn graph(&self) -> Graph {
        self.graph.clone()
    }

    fn output_keys(&self) -> Vec<Key> {
        let grid = self.chunks.grid();
        (0..grid[0])
            .flat_map(|i| (0..grid[1]).map(move |j| (i, j)))
            .map(|(i, j)| self.block_key(&[i, j]))
            .collect()
    }

    /// The chunks stacked into one CSR matrix.
    fn finalize(&self, values: Vec<Value>) -> rask_core::Result<CsMat<T>> {
        let grid = self.chunks.grid();
        let shape = self.shape();
        if grid.contains(&0) {
            return Ok(CsMat::zero((shape[0], shape[1])));
        }
        let mut blocks: Vec<&CsMat<T>> = Vec::with_capacity(values.len());
        for (linear, value) in values.iter().enumerate() {
            let index = [linear as u32 / grid[1], linear as u32 % grid[1]];
            let block = value.get::<CsMat<T>>(&format_args!("sparse chunk {index:?}"))?;
            let expected = self.chunks.block_shape(&index);
            if [block.rows(), block.cols()] != expected[..] {
                return Err(Error::Chunks(format!(
                    "sparse chunk {index:?} has shape {:?} where {expected:?} was expected (a \
                     map_blocks_sparse must keep each chunk's shape)",
                    block.shape()
                ))
                .into());
            }
            blocks.push(block);
        }
        let rows: Vec<Vec<Option<CsMatView<'_, T>>>> = blocks
            .chunks(grid[1] as usize)
            .map(|row| row.iter().map(|b| Some(b.view())).collect())
            .collect();
        Ok(sprs::bmat(&rows).to_csr())
    }
}

impl<T: Number> fmt::Display for SparseArray<T> {
    /// `rask.sparse<to-sparse, shape=(1000, 1000), dtype=float64, chunksize=(250, 250),
    /// chunks=16, format=csr, tasks=32>` — without computing anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (block, shape) = (self.chunks.max_block_shape(), self.shape());
        write!(
            f,
            "rask.sparse<{}, shape=({}, {}), dtype={}, chunksize=({}, {}), chunks={}, format=csr, tasks={}>",
            self.name.prefix(),
            shape[0],
            shape[1],
            T::DTYPE,
            block[0],
            block[1],
            self.chunks.count(),
            self.graph.num_tasks()
        )
    }
}

impl<T: Number> fmt::Debug for SparseArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
