//! Linear algebra on chunked arrays: `transpose`/`t`, and `matmul`/`dot` of 2-d arrays as an
//! index-aligned blockwise contraction (`ij,jk->ik`): the task of output block `(i, k)` reads
//! row `i` of the left operand's blocks and column `k` of the right one's, and sums their
//! products (`ndarray`'s `dot`, `matrixmultiply` kernels for floats).
//!
//! Not here yet: `tensordot` over more axes, TSQR/SVD, `solve`, `lstsq`, `cholesky`, `inv`,
//! `norm` (faer kernels) — see docs/arrays.md.

use ndarray::{Ix2, IxDyn};
use rask_core::{
    AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Layer, TaskError, TaskResult, Value,
};

use crate::array::{chunk_of, layer_name, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};
use crate::number::Number;

/// Element types with matrix products.
pub trait MatMul: Number + ndarray::LinalgScalar {}
impl MatMul for f64 {}
impl MatMul for f32 {}
impl MatMul for i64 {}
impl MatMul for i32 {}
impl MatMul for crate::element::c64 {}
impl MatMul for crate::element::c32 {}

impl<T: Element> Array<T> {
    /// The axes in another order: `transpose(&[1, 0])` swaps the two axes of a matrix.
    pub fn transpose(&self, axes: &[usize]) -> Result<Array<T>> {
        let ndim = self.ndim();
        let mut seen = vec![false; ndim];
        if axes.len() != ndim
            || axes.iter().any(|&a| a >= ndim || std::mem::replace(&mut seen[a], true))
        {
            return Err(Error::Invalid(format!(
                "transpose needs each of the {ndim} axes once, got {axes:?}"
            )));
        }
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return Ok(self.clone());
        }
        let chunks = Chunks(axes.iter().map(|&a| self.chunks.per_axis()[a].clone()).collect());
        // Input axis `a` is output axis `position of a in axes`.
        let map: Vec<AxisMap> = (0..ndim)
            .map(|a| AxisMap::Out(axes.iter().position(|&x| x == a).expect("checked") as u8))
            .collect();
        let name = layer_name("transpose", |t| {
            t.str(self.name.as_str());
            axes.iter().for_each(|&a| {
                t.u64(a as u64);
            });
        });
        Ok(Array::blockwise_layer(
            name,
            typed_fn::<T>("rask_array::transpose_chunk"),
            vec![
                BlockArg::Aligned(self.name.clone(), map),
                BlockArg::Value(Value::serde(axes.to_vec())),
            ],
            &[&self.graph],
            chunks,
        ))
    }

    /// The axes reversed (a matrix's transpose).
    pub fn t(&self) -> Array<T> {
        let axes: Vec<usize> = (0..self.ndim()).rev().collect();
        self.transpose(&axes).expect("a reversal names every axis once")
    }
}

impl<T: MatMul> Array<T> {
    /// The matrix product of two 2-d arrays (`self @ other`). The right operand is rechunked
    /// along its rows to the left one's column chunks when they differ.
    pub fn matmul(&self, other: &Array<T>) -> Result<Array<T>> {
        let (a, b) = (self.shape(), other.shape());
        if a.len() != 2 || b.len() != 2 {
            return Err(Error::Invalid(format!(
                "matmul takes two 2-d arrays, got shapes {a:?} and {b:?} (reshape 1-d vectors to (n, 1) or (1, n))"
            )));
        }
        if a[1] != b[0] {
            return Err(Error::Invalid(format!(
                "matmul of shapes {a:?} and {b:?}: the left's 2nd axis ({}) must equal the right's 1st ({})",
                a[1], b[0]
            )));
        }
        let other = if other.chunks.per_axis()[0] == self.chunks.per_axis()[1] {
            other.clone()
        } else {
            other.rechunk(vec![
                self.chunks.per_axis()[1].clone(),
                other.chunks.per_axis()[1].clone(),
            ])?
        };
        let chunks =
            Chunks(vec![self.chunks.per_axis()[0].clone(), other.chunks.per_axis()[1].clone()]);
        let inner = self.chunks.per_axis()[1].len() as u32;
        let name = layer_name("matmul", |t| {
            t.str(self.name.as_str()).str(other.name.as_str());
        });
        let mut op = Blockwise::new(
            BlockGrid::of(&chunks.grid()),
            typed_fn::<T>("rask_array::matmul_blocks"),
            vec![
                BlockArg::Aligned(self.name.clone(), vec![AxisMap::Out(0), AxisMap::Contracted(0)]),
                BlockArg::Aligned(
                    other.name.clone(),
                    vec![AxisMap::Contracted(0), AxisMap::Out(1)],
                ),
            ],
        );
        op.contracted = vec![inner];
        let graph =
            Graph::from_layer(Layer::blockwise(name.clone(), op, &[&self.graph, &other.graph]));
        Ok(Array::from_graph(graph, name, chunks))
    }

    /// The same as [`Array::matmul`] for 2-d arrays.
    pub fn dot(&self, other: &Array<T>) -> Result<Array<T>> {
        self.matmul(other)
    }
}

fn transpose_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_of::<T>(
        args.first().ok_or_else(|| TaskError::msg("missing the chunk"))?,
        &"the chunk",
    )?;
    let axes = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing the axes"))?
        .get::<Vec<usize>>(&"the axes")?;
    Ok(chunk_value(chunk.view().permuted_axes(IxDyn(axes)).as_standard_layout().into_owned()))
}
crate::for_each_element!(register_typed, "rask_array::transpose_chunk", transpose_chunk);
rask_core::register_type!(Vec<usize>);

fn matmul_blocks<T: MatMul>(args: &[Value]) -> TaskResult {
    let (left, right) =
        match (args.first().and_then(Value::as_list), args.get(1).and_then(Value::as_list)) {
            (Some(l), Some(r)) if l.len() == r.len() => (l, r),
            _ => return Err(TaskError::msg("matmul needs two lists of blocks of one length")),
        };
    let mut total: Option<ndarray::Array2<T>> = None;
    for (i, (l, r)) in left.iter().zip(right).enumerate() {
        let l = chunk_of::<T>(l, &format_args!("left block {i}"))?
            .view()
            .into_dimensionality::<Ix2>()?;
        let r = chunk_of::<T>(r, &format_args!("right block {i}"))?
            .view()
            .into_dimensionality::<Ix2>()?;
        match &mut total {
            None => total = Some(l.dot(&r)),
            Some(t) => ndarray::linalg::general_mat_mul(
                <T as Number>::one(),
                &l,
                &r,
                <T as Number>::one(),
                t,
            ),
        }
    }
    let total = total.ok_or_else(|| TaskError::msg("matmul over no blocks"))?;
    Ok(chunk_value::<T>(total.into_dyn()))
}

macro_rules! register_matmul {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::matmul_blocks", matmul_blocks);
    )*};
}
register_matmul!(f64, "float64"; f32, "float32"; i64, "int64"; i32, "int32";
    crate::element::c64, "complex128"; crate::element::c32, "complex64");
