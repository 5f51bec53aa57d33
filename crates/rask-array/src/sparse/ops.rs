//! What sparse arrays do: conversions from and to dense arrays, elementwise steps, reductions
//! and matrix products. Every step is a blockwise layer or a product plan of rask-core, like a
//! dense array's; the kernels are in [`super::kernels`].

use std::sync::Arc;

use ndarray::ArrayD;
use rask_core::{AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Layer, TaskFn, Value};
use sprs::CsMat;

use super::codec::sparse_value;
use super::kernels::{map_stored, sparse_arg, SparseOp};
use super::{sparse_fn, SparseArray};
use crate::array::{chunk_arg, layer_name, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::linalg::{BlockProduct, MatMul};
use crate::number::{Number, Real};
use crate::reduce::Axes;

const IDENTITY: [AxisMap; 2] = [AxisMap::Out(0), AxisMap::Out(1)];

fn aligned(name: &rask_core::Name) -> BlockArg {
    BlockArg::Aligned(name.clone(), IDENTITY.to_vec())
}

/// A sparse array of one blockwise layer over `chunks`' grid.
fn sparse_layer<U: Number>(
    name: rask_core::Name,
    func: TaskFn,
    args: Vec<BlockArg>,
    inputs: &[&Graph],
    chunks: Arc<Chunks>,
) -> SparseArray<U> {
    let op = Blockwise::new(BlockGrid::of(&chunks.grid()), func, args);
    let graph = Graph::from_layer(Layer::blockwise(name.clone(), op, inputs));
    SparseArray::new(graph, name, chunks)
}

fn require_2d(shape: &[usize], what: &str) -> Result<()> {
    if shape.len() != 2 {
        return Err(Error::Invalid(format!(
            "{what} needs a 2-d array (sparse chunks are CSR matrices), got shape {shape:?} \
             (reshape to 2-d first)"
        )));
    }
    Ok(())
}

impl<T: Number> Array<T> {
    /// The array with sparse chunks: each chunk's non-zero values in a CSR matrix (Dask's
    /// `x.map_blocks(sparse.COO)`). 2-d arrays only.
    pub fn to_sparse(&self) -> Result<SparseArray<T>> {
        require_2d(&self.shape(), "to_sparse")?;
        let name = layer_name("to-sparse", |t| {
            t.str(self.name.as_str());
        });
        Ok(sparse_layer(
            name,
            sparse_fn::<T>("to_sparse"),
            vec![aligned(&self.name)],
            &[&self.graph],
            self.chunks.clone(),
        ))
    }

    /// A function from each dense chunk to a sparse one, run in this process (a closure
    /// cannot go to a cluster: use [`Array::map_blocks_sparse_registered`] there). Each
    /// output chunk must keep its input's shape.
    pub fn map_blocks_sparse<U: Number>(
        &self,
        f: impl Fn(&ArrayD<T>) -> CsMat<U> + Send + Sync + 'static,
    ) -> Result<SparseArray<U>> {
        require_2d(&self.shape(), "map_blocks_sparse")?;
        let func = TaskFn::closure("map_blocks_sparse", move |args: &[Value]| {
            Ok(sparse_value(f(chunk_arg::<T>(args, 0)?).to_csr()))
        });
        let name = layer_name("map-blocks-sparse", |t| {
            t.str(self.name.as_str()).token(rask_core::Token::unique());
        });
        Ok(sparse_layer(name, func, vec![aligned(&self.name)], &[&self.graph], self.chunks.clone()))
    }

    /// [`Array::map_blocks_sparse`] with a function registered by
    /// [`register_sparse_block_fn!`](crate::register_sparse_block_fn): runs on a cluster as
    /// locally.
    pub fn map_blocks_sparse_registered<U: Number>(
        &self,
        function: &str,
    ) -> Result<SparseArray<U>> {
        require_2d(&self.shape(), "map_blocks_sparse_registered")?;
        let func = rask_core::registry::lookup(function)?;
        let name = layer_name("map-blocks-sparse", |t| {
            t.str(function).str(self.name.as_str());
        });
        Ok(sparse_layer(name, func, vec![aligned(&self.name)], &[&self.graph], self.chunks.clone()))
    }
}

impl<T: MatMul + sprs::MulAcc> Array<T> {
    /// The matrix product `self @ sparse` (dense). The dense operand is rechunked along its
    /// columns to the sparse one's row chunks when they differ.
    pub fn matmul_sparse(&self, other: &SparseArray<T>) -> Result<Array<T>> {
        check_product(&self.shape(), &other.shape())?;
        let left = self
            .rechunk(vec![self.chunks.per_axis()[0].clone(), other.chunks.per_axis()[0].clone()])?;
        let product = BlockProduct {
            left: BlockArg::Aligned(left.name.clone(), vec![AxisMap::Out(0), AxisMap::Out(2)]),
            left_graph: &left.graph,
            rows: &left.chunks.per_axis()[0],
            inner: other.chunks.per_axis()[0].len() as u32,
            right: &other.name,
            right_graph: &other.graph,
            cols: &other.chunks.per_axis()[1],
        };
        let (graph, name, chunks) = product
            .build(sparse_fn::<T>("dense_sparse_pair"), typed_fn::<T>("rask_array::sum_blocks"));
        Ok(Array::from_graph(graph, name, chunks))
    }
}

fn check_product(a: &[usize], b: &[usize]) -> Result<()> {
    require_2d(a, "a matrix product")?;
    require_2d(b, "a matrix product")?;
    if a[1] != b[0] {
        return Err(Error::Invalid(format!(
            "matmul of shapes {a:?} and {b:?}: the left's 2nd axis ({}) must equal the right's 1st ({})",
            a[1], b[0]
        )));
    }
    Ok(())
}

impl<T: Number> SparseArray<T> {
    /// The array with dense chunks.
    pub fn to_dense(&self) -> Array<T> {
        let name = layer_name("to-dense", |t| {
            t.str(self.name.as_str());
        });
        Array::blockwise_layer(
            name,
            sparse_fn::<T>("to_dense"),
            vec![aligned(&self.name)],
            &[&self.graph],
            (*self.chunks).clone(),
        )
    }

    /// An elementwise step of two sparse arrays of the same shape and chunks.
    pub fn zip_with(&self, other: &SparseArray<T>, op: SparseOp) -> Result<SparseArray<T>> {
        if self.shape() != other.shape() {
            return Err(Error::Invalid(format!(
                "sparse arrays of shapes {:?} and {:?} in one elementwise step (sparse arrays do \
                 not broadcast: give both the same shape)",
                self.shape(),
                other.shape()
            )));
        }
        if self.chunks != other.chunks {
            return Err(Error::Chunks(format!(
                "sparse arrays chunked {:?} and {:?} in one elementwise step: sparse chunks are \
                 not rechunked, so make both with the same chunks (rechunk the dense arrays \
                 before to_sparse)",
                self.chunks.per_axis(),
                other.chunks.per_axis()
            )));
        }
        let name = layer_name("sparse-binary", |t| {
            t.str(self.name.as_str()).str(other.name.as_str()).str(&format!("{op:?}"));
        });
        Ok(sparse_layer(
            name,
            sparse_fn::<T>("binary"),
            vec![aligned(&self.name), aligned(&other.name), BlockArg::Value(Value::serde(op))],
            &[&self.graph, &other.graph],
            self.chunks.clone(),
        ))
    }

    /// Every value times `s`.
    pub fn scale(&self, s: T) -> SparseArray<T> {
        self.with_scalar(false, s)
    }

    /// Every value divided by `s`. Dividing by zero is refused: the zeros would become NaN
    /// (or an integer error), which a sparse array cannot hold — use `to_dense()` first.
    pub fn div_scalar(&self, s: T) -> Result<SparseArray<T>> {
        if s == T::zero() {
            return Err(Error::Invalid(
                "a sparse array divided by zero: its zeros would become NaN, which a sparse \
                 array cannot hold (use to_dense() first)"
                    .into(),
            ));
        }
        Ok(self.with_scalar(true, s))
    }

    fn with_scalar(&self, divide: bool, s: T) -> SparseArray<T> {
        let spec = (divide, s.to_scalar());
        let name = layer_name("sparse-scalar", |t| {
            t.str(self.name.as_str()).str(&format!("{spec:?}"));
        });
        sparse_layer(
            name,
            sparse_fn::<T>("scalar"),
            vec![aligned(&self.name), BlockArg::Value(Value::serde(spec))],
            &[&self.graph],
            self.chunks.clone(),
        )
    }

    /// The elementwise product with a dense array of the same shape: sparse (the dense one is
    /// rechunked to this one's chunks). A NaN or infinity where this array is zero makes the
    /// product not sparse: that chunk's task fails and says so.
    pub fn mul_dense(&self, dense: &Array<T>) -> Result<SparseArray<T>> {
        let dense = self.align_dense(dense)?;
        let name = layer_name("sparse-mul-dense", |t| {
            t.str(self.name.as_str()).str(dense.name.as_str());
        });
        Ok(sparse_layer(
            name,
            sparse_fn::<T>("mul_dense"),
            vec![aligned(&self.name), aligned(&dense.name)],
            &[&self.graph, &dense.graph],
            self.chunks.clone(),
        ))
    }

    /// The sum with a dense array of the same shape: dense.
    pub fn add_dense(&self, dense: &Array<T>) -> Result<Array<T>> {
        let dense = self.align_dense(dense)?;
        let name = layer_name("sparse-add-dense", |t| {
            t.str(self.name.as_str()).str(dense.name.as_str());
        });
        Ok(Array::blockwise_layer(
            name,
            sparse_fn::<T>("add_dense"),
            vec![aligned(&self.name), aligned(&dense.name)],
            &[&self.graph, &dense.graph],
            (*self.chunks).clone(),
        ))
    }

    fn align_dense(&self, dense: &Array<T>) -> Result<Array<T>> {
        if dense.shape() != self.shape() {
            return Err(Error::Invalid(format!(
                "a sparse array of shape {:?} with a dense one of shape {:?}: sparse arrays do \
                 not broadcast (broadcast_to the dense one first)",
                self.shape(),
                dense.shape()
            )));
        }
        dense.rechunk(self.chunks.per_axis().to_vec())
    }

    /// A function of every stored value, run in this process. `f(0)` must be 0 — otherwise
    /// the result is not sparse, and this refuses it (use `to_dense()` and `map_blocks`).
    pub fn map_values<U: Number>(
        &self,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Result<SparseArray<U>> {
        let at_zero = f(T::zero());
        if at_zero != U::zero() {
            return Err(Error::Invalid(format!(
                "map_values needs a function that keeps zero at zero, but f(0) = {at_zero}: the \
                 result would not be sparse (use to_dense().map_blocks(...) instead)"
            )));
        }
        let func = TaskFn::closure("map_values", move |args: &[Value]| {
            Ok(sparse_value(map_stored(sparse_arg::<T>(args, 0)?, &f)))
        });
        let name = layer_name("sparse-map-values", |t| {
            t.str(self.name.as_str()).token(rask_core::Token::unique());
        });
        Ok(sparse_layer(name, func, vec![aligned(&self.name)], &[&self.graph], self.chunks.clone()))
    }

    /// The transpose.
    pub fn t(&self) -> SparseArray<T> {
        let name = layer_name("sparse-transpose", |t| {
            t.str(self.name.as_str());
        });
        let chunks =
            Chunks(vec![self.chunks.per_axis()[1].clone(), self.chunks.per_axis()[0].clone()]);
        sparse_layer(
            name,
            sparse_fn::<T>("transpose"),
            vec![BlockArg::Aligned(self.name.clone(), vec![AxisMap::Out(1), AxisMap::Out(0)])],
            &[&self.graph],
            Arc::new(chunks),
        )
    }

    /// The per-chunk partials of a reduction over `axes`: a dense array with this grid whose
    /// chunks have length 1 along the reduced axes.
    fn partials<A: Element>(&self, kernel: &str, axes: &[usize]) -> Array<A> {
        let chunks = Chunks(
            (0..2)
                .map(|a| {
                    let per_axis = &self.chunks.per_axis()[a];
                    if axes.contains(&a) {
                        vec![1; per_axis.len()]
                    } else {
                        per_axis.clone()
                    }
                })
                .collect(),
        );
        self.to_dense_layer(
            &format!("sparse-{kernel}"),
            sparse_fn::<T>(kernel),
            Value::serde(axes.to_vec()),
            chunks,
        )
    }

    /// How many values are not zero, over `axes`.
    pub fn count_nonzero(&self, axes: impl Into<Axes>) -> Result<Array<i64>> {
        let axes = axes.into();
        self.partials::<i64>("count_chunk", &axes.resolve(2)?).sum(axes)
    }
}

impl<T: Number> SparseArray<T>
where
    T::Acc: Number + Element<Acc = T::Acc>,
{
    /// The sum over `axes`, in the accumulator type like a dense array's: per-chunk sums of
    /// the stored values, then the dense reduction tree.
    pub fn sum(&self, axes: impl Into<Axes>) -> Result<Array<T::Acc>> {
        let axes = axes.into();
        self.partials::<T::Acc>("sum_chunk", &axes.resolve(2)?).sum(axes)
    }
}

impl<T: Real> SparseArray<T>
where
    T::Acc: Number + Element<Acc = T::Acc>,
{
    /// The mean over `axes` (zeros counted), as `f64`.
    pub fn mean(&self, axes: impl Into<Axes>) -> Result<Array<f64>> {
        let axes = axes.into();
        let shape = self.shape();
        let count: usize = axes.resolve(2)?.iter().map(|&a| shape[a]).product();
        Ok(&self.sum(axes)?.astype::<f64>() / count as f64)
    }
}

impl<T: MatMul + sprs::MulAcc> SparseArray<T> {
    /// The matrix product `self @ dense` (dense). The dense operand is rechunked along its
    /// rows to this array's column chunks when they differ.
    pub fn matmul(&self, other: &Array<T>) -> Result<Array<T>> {
        check_product(&self.shape(), &other.shape())?;
        let right = other
            .rechunk(vec![self.chunks.per_axis()[1].clone(), other.chunks.per_axis()[1].clone()])?;
        let product = self.product_plan(&right.name, &right.graph, &right.chunks.per_axis()[1]);
        let (graph, name, chunks) = product
            .build(sparse_fn::<T>("sparse_dense_pair"), typed_fn::<T>("rask_array::sum_blocks"));
        Ok(Array::from_graph(graph, name, chunks))
    }

    /// The matrix product of two sparse arrays (sparse). Their chunks must line up: this
    /// array's column chunks are the other's row chunks.
    pub fn matmul_sparse(&self, other: &SparseArray<T>) -> Result<SparseArray<T>> {
        check_product(&self.shape(), &other.shape())?;
        if self.chunks.per_axis()[1] != other.chunks.per_axis()[0] {
            return Err(Error::Chunks(format!(
                "a product of sparse arrays needs the left's column chunks {:?} to be the right's \
                 row chunks {:?}: sparse chunks are not rechunked, so chunk the dense arrays to \
                 match before to_sparse",
                self.chunks.per_axis()[1],
                other.chunks.per_axis()[0]
            )));
        }
        let product = self.product_plan(&other.name, &other.graph, &other.chunks.per_axis()[1]);
        let (graph, name, chunks) =
            product.build(sparse_fn::<T>("sparse_pair"), sparse_fn::<T>("sum_blocks"));
        Ok(SparseArray::new(graph, name, Arc::new(chunks)))
    }

    fn product_plan<'a>(
        &'a self,
        right: &'a rask_core::Name,
        right_graph: &'a Graph,
        cols: &'a [usize],
    ) -> BlockProduct<'a> {
        BlockProduct {
            left: BlockArg::Aligned(self.name.clone(), vec![AxisMap::Out(0), AxisMap::Out(2)]),
            left_graph: &self.graph,
            rows: &self.chunks.per_axis()[0],
            inner: self.chunks.per_axis()[1].len() as u32,
            right,
            right_graph,
            cols,
        }
    }
}

macro_rules! sparse_operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<T: Number> std::ops::$trait<&SparseArray<T>> for &SparseArray<T> {
            type Output = SparseArray<T>;
            /// Panics if the shapes or chunks differ; `zip_with` returns the error instead.
            fn $method(self, other: &SparseArray<T>) -> SparseArray<T> {
                self.zip_with(other, $op).unwrap_or_else(|e| panic!("{e}"))
            }
        }
    };
}
sparse_operator!(Add, add, SparseOp::Add);
sparse_operator!(Sub, sub, SparseOp::Sub);
sparse_operator!(Mul, mul, SparseOp::Mul);

impl<T: Number> std::ops::Mul<T> for &SparseArray<T> {
    type Output = SparseArray<T>;
    fn mul(self, s: T) -> SparseArray<T> {
        self.scale(s)
    }
}

/// Registers a function from a dense chunk to a sparse one for
/// [`Array::map_blocks_sparse_registered`]:
/// `rask_array::register_sparse_block_fn!("app::threshold", threshold, f64, f64);` for
/// `fn threshold(chunk: &ArrayD<f64>) -> sprs::CsMat<f64>`.
#[macro_export]
macro_rules! register_sparse_block_fn {
    ($name:literal, $function:path, $in:ty, $out:ty) => {
        const _: () = {
            fn call(args: &[$crate::__private::Value]) -> $crate::__private::TaskResult {
                let chunk = args
                    .first()
                    .ok_or_else(|| $crate::__private::TaskError::msg("missing the chunk"))?
                    .get::<$crate::__private::ArrayD<$in>>(&"the chunk")?;
                let out: $crate::__private::CsMat<$out> = $function(chunk);
                Ok($crate::sparse::codec::sparse_value(out.to_csr()))
            }
            $crate::__private::register_function!($name, call);
        };
    };
}
