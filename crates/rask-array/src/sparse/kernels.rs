//! The task functions of sparse arrays: conversions, elementwise steps, per-chunk sums and
//! block products. Each is registered for every element type it supports, so sparse arrays
//! compute on a cluster as locally. `sprs` does the matrix work (unions of patterns, sparse
//! products, products with dense blocks); what is here checks the inputs and keeps explicit
//! zeros out of the results.

use ndarray::{Array2, ArrayD, Ix2, IxDyn};
use rask_core::{TaskError, TaskResult, Value};
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use crate::array::{chunk_arg, spec_arg, task_arg};
use crate::element::{chunk_value, Element, Scalar};
use crate::linalg::MatMul;
use crate::number::Number;
use crate::sparse::codec::sparse_value;

/// An elementwise operation of two sparse arrays (those that keep zeros zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SparseOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`, elementwise.
    Mul,
}

/// Argument `i` as a sparse chunk of `T`.
pub(crate) fn sparse_arg<T: Element>(args: &[Value], i: usize) -> Result<&CsMat<T>, TaskError> {
    Ok(task_arg(args, i, "a sparse chunk")?
        .get::<CsMat<T>>(&format_args!("sparse chunk argument {i}"))?)
}

/// `m` in CSR form: itself, or a converted copy of a CSC matrix.
pub(crate) fn as_csr<T: Clone + Default>(m: &CsMat<T>) -> std::borrow::Cow<'_, CsMat<T>> {
    if m.is_csr() {
        std::borrow::Cow::Borrowed(m)
    } else {
        std::borrow::Cow::Owned(m.to_csr())
    }
}

/// A CSR matrix of the values `keep` accepts, row by row: how every result drops the zeros
/// an operation made (`x * 0`, `a - a`).
fn csr_from_rows<T: Number>(
    shape: (usize, usize),
    rows: impl Iterator<Item = Vec<(usize, T)>>,
) -> CsMat<T> {
    let mut indptr = vec![0];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for row in rows {
        for (c, v) in row {
            if v != T::zero() {
                indices.push(c);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    CsMat::new(shape, indptr, indices, data)
}

/// The stored values of `m` through `f`, zeros dropped.
pub(crate) fn map_stored<T: Number, U: Number>(m: &CsMat<T>, f: impl Fn(T) -> U) -> CsMat<U> {
    csr_from_rows(
        m.shape(),
        m.outer_iterator().map(|row| row.iter().map(|(c, &v)| (c, f(v))).collect()),
    )
}

fn to_sparse<T: Number>(args: &[Value]) -> TaskResult {
    let dense = chunk_arg::<T>(args, 0)?.view().into_dimensionality::<Ix2>()?;
    let shape = (dense.nrows(), dense.ncols());
    let rows = dense.outer_iter().map(|row| row.iter().copied().enumerate().collect());
    Ok(sparse_value(csr_from_rows(shape, rows)))
}

fn to_dense<T: Number>(args: &[Value]) -> TaskResult {
    let sparse = sparse_arg::<T>(args, 0)?;
    let mut dense = Array2::from_elem(sparse.shape(), T::zero());
    for (&v, (r, c)) in sparse.iter() {
        dense[[r, c]] = v;
    }
    Ok(chunk_value(dense.into_dyn()))
}

fn sparse_binary<T: Number + num_traits::Zero>(args: &[Value]) -> TaskResult {
    let (a, b) = (sparse_arg::<T>(args, 0)?, sparse_arg::<T>(args, 1)?);
    let op = *spec_arg::<SparseOp>(args, 2, "the operation")?;
    if a.shape() != b.shape() {
        return Err(TaskError::msg(format!(
            "sparse chunks of shapes {:?} and {:?} in one elementwise step",
            a.shape(),
            b.shape()
        )));
    }
    let out = sprs::binop::csmat_binop(a.view(), b.view(), |&x: &T, &y: &T| match op {
        SparseOp::Add => Number::add(x, y),
        SparseOp::Sub => Number::sub(x, y),
        SparseOp::Mul => Number::mul(x, y),
    });
    Ok(sparse_value(out))
}

/// `x * s` or `x / s` of every stored value (the zeros stay zero: `s` is never 0 for `/`).
fn sparse_scalar<T: Number>(args: &[Value]) -> TaskResult {
    let chunk = sparse_arg::<T>(args, 0)?;
    let (divide, scalar) = *spec_arg::<(bool, Scalar)>(args, 1, "the scalar")?;
    let s = T::from_scalar(scalar);
    if divide {
        if s == T::zero() {
            // Refused when the graph is built too; a hand-made graph gets the same answer.
            return Err(TaskError::msg("a sparse array divided by zero (its zeros would be NaN)"));
        }
        // `div` fails only for an integer zero divisor, excluded above (the fallback is unused).
        return Ok(sparse_value(map_stored(chunk, |v| Number::div(v, s).unwrap_or(s))));
    }
    Ok(sparse_value(map_stored(chunk, |v| Number::mul(v, s))))
}

/// The sparse chunk times a dense chunk, elementwise: sparse. Where the sparse chunk holds no
/// value the product is `0 · x`, zero unless `x` is NaN or infinite — then the product is not
/// sparse, and the task says so instead of dropping a NaN.
fn sparse_mul_dense<T: Number>(args: &[Value]) -> TaskResult {
    let sparse = sparse_arg::<T>(args, 0)?;
    let dense = chunk_arg::<T>(args, 1)?.view().into_dimensionality::<Ix2>()?;
    check_same_shape(sparse, dense.dim())?;
    for (r, row) in dense.outer_iter().enumerate() {
        let stored = sparse.outer_view(r).expect("a row of the chunk");
        let mut stored = stored.indices().iter().peekable();
        for (c, &x) in row.iter().enumerate() {
            if stored.peek() == Some(&&c) {
                stored.next();
            } else if Number::mul(T::zero(), x).is_nan_value() {
                return Err(TaskError::msg(format!(
                    "a sparse array times a dense one whose value at ({r}, {c}) of a chunk is \
                     {x}: 0 × {x} is NaN, so the product is not sparse (use to_dense() first)"
                )));
            }
        }
    }
    let rows = sparse
        .outer_iterator()
        .enumerate()
        .map(|(r, row)| row.iter().map(|(c, &v)| (c, Number::mul(v, dense[[r, c]]))).collect());
    Ok(sparse_value(csr_from_rows(sparse.shape(), rows)))
}

/// The sparse chunk plus a dense chunk: dense.
fn sparse_add_dense<T: Number>(args: &[Value]) -> TaskResult {
    let sparse = sparse_arg::<T>(args, 0)?;
    let dense = chunk_arg::<T>(args, 1)?;
    let mut out = dense.view().into_dimensionality::<Ix2>()?.to_owned();
    check_same_shape(sparse, out.dim())?;
    for (&v, (r, c)) in sparse.iter() {
        out[[r, c]] = Number::add(out[[r, c]], v);
    }
    Ok(chunk_value(out.into_dyn()))
}

fn check_same_shape<T>(sparse: &CsMat<T>, dense: (usize, usize)) -> Result<(), TaskError> {
    if sparse.shape() != dense {
        return Err(TaskError::msg(format!(
            "a sparse chunk of shape {:?} beside a dense chunk of shape {dense:?}",
            sparse.shape()
        )));
    }
    Ok(())
}

fn sparse_transpose<T: Number>(args: &[Value]) -> TaskResult {
    Ok(sparse_value(sparse_arg::<T>(args, 0)?.transpose_view().to_csr()))
}

/// Folds the stored values of a chunk over `axes` (keeping them as length 1): the partials a
/// dense reduction tree then combines.
fn fold_chunk<T: Number, A: Number>(
    chunk: &CsMat<T>,
    axes: &[usize],
    value: impl Fn(T) -> A,
) -> ArrayD<A> {
    let (reduce_rows, reduce_cols) = (axes.contains(&0), axes.contains(&1));
    let shape =
        [if reduce_rows { 1 } else { chunk.rows() }, if reduce_cols { 1 } else { chunk.cols() }];
    let mut out = ArrayD::from_elem(IxDyn(&shape), A::zero());
    for (&v, (r, c)) in chunk.iter() {
        let at = [if reduce_rows { 0 } else { r }, if reduce_cols { 0 } else { c }];
        out[&at[..]] = Number::add(out[&at[..]], value(v));
    }
    out
}

fn sparse_sum_chunk<T: Number>(args: &[Value]) -> TaskResult
where
    T::Acc: Number,
{
    let chunk = sparse_arg::<T>(args, 0)?;
    let axes = spec_arg::<Vec<usize>>(args, 1, "the axes")?;
    Ok(chunk_value(fold_chunk(chunk, axes, T::accumulate)))
}

fn sparse_count_chunk<T: Number>(args: &[Value]) -> TaskResult {
    let chunk = sparse_arg::<T>(args, 0)?;
    let axes = spec_arg::<Vec<usize>>(args, 1, "the axes")?;
    Ok(chunk_value(fold_chunk(chunk, axes, |v| i64::from(v != T::zero()))))
}

/// A block product sparse · dense: dense.
fn sparse_dense_pair<T: MatMul + sprs::MulAcc>(args: &[Value]) -> TaskResult {
    let sparse = sparse_arg::<T>(args, 0)?;
    let dense = chunk_arg::<T>(args, 1)?.view().into_dimensionality::<Ix2>()?;
    if sparse.cols() != dense.nrows() {
        return Err(TaskError::msg(format!(
            "a block product of shapes {:?} and {:?}",
            sparse.shape(),
            dense.dim()
        )));
    }
    let mut out = Array2::from_elem((sparse.rows(), dense.ncols()), <T as Number>::zero());
    sprs::prod::csr_mulacc_dense_rowmaj(sparse.view(), dense, out.view_mut());
    Ok(chunk_value(out.into_dyn()))
}

/// A block product dense · sparse: dense, as `(sparseᵀ · denseᵀ)ᵀ` (a CSR block read
/// transposed is CSC, which `sprs` multiplies with a dense block directly).
fn dense_sparse_pair<T: MatMul + sprs::MulAcc>(args: &[Value]) -> TaskResult {
    let dense = chunk_arg::<T>(args, 0)?.view().into_dimensionality::<Ix2>()?;
    let sparse = sparse_arg::<T>(args, 1)?;
    if dense.ncols() != sparse.rows() {
        return Err(TaskError::msg(format!(
            "a block product of shapes {:?} and {:?}",
            dense.dim(),
            sparse.shape()
        )));
    }
    let mut out_t = Array2::from_elem((sparse.cols(), dense.nrows()), <T as Number>::zero());
    sprs::prod::csc_mulacc_dense_rowmaj(sparse.transpose_view(), dense.t(), out_t.view_mut());
    Ok(chunk_value(out_t.t().as_standard_layout().into_owned().into_dyn()))
}

/// A block product sparse · sparse: sparse.
fn sparse_pair<T: MatMul + sprs::MulAcc + num_traits::Zero>(args: &[Value]) -> TaskResult {
    let (a, b) = (sparse_arg::<T>(args, 0)?, sparse_arg::<T>(args, 1)?);
    if a.cols() != b.rows() {
        return Err(TaskError::msg(format!(
            "a block product of shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(sparse_value(a * b))
}

/// The sum of a list of sparse blocks (the products along the contracted axis).
fn sparse_sum_blocks<T: Number + num_traits::Zero>(args: &[Value]) -> TaskResult {
    let blocks = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the blocks"))?;
    let (first, rest) = blocks.split_first().ok_or_else(|| TaskError::msg("a sum of no blocks"))?;
    let mut total = first.get::<CsMat<T>>(&"block 0")?.clone();
    for (i, block) in rest.iter().enumerate() {
        let block = block.get::<CsMat<T>>(&format_args!("block {}", i + 1))?;
        total = sprs::binop::csmat_binop(total.view(), block.view(), |&x: &T, &y: &T| {
            Number::add(x, y)
        });
    }
    Ok(sparse_value(total))
}

macro_rules! register_sparse_numbers {
    ($t:ty, $d:literal) => {
        register_typed!($t, $d, "rask_array::sparse::to_sparse", to_sparse);
        register_typed!($t, $d, "rask_array::sparse::to_dense", to_dense);
        register_typed!($t, $d, "rask_array::sparse::binary", sparse_binary);
        register_typed!($t, $d, "rask_array::sparse::scalar", sparse_scalar);
        register_typed!($t, $d, "rask_array::sparse::mul_dense", sparse_mul_dense);
        register_typed!($t, $d, "rask_array::sparse::add_dense", sparse_add_dense);
        register_typed!($t, $d, "rask_array::sparse::transpose", sparse_transpose);
        register_typed!($t, $d, "rask_array::sparse::sum_chunk", sparse_sum_chunk);
        register_typed!($t, $d, "rask_array::sparse::count_chunk", sparse_count_chunk);
    };
}
crate::for_each_number!(register_sparse_numbers);

macro_rules! register_sparse_products {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::sparse::sparse_dense_pair", sparse_dense_pair);
        register_typed!($t, $d, "rask_array::sparse::dense_sparse_pair", dense_sparse_pair);
        register_typed!($t, $d, "rask_array::sparse::sparse_pair", sparse_pair);
        register_typed!($t, $d, "rask_array::sparse::sum_blocks", sparse_sum_blocks);
    )*};
}
register_sparse_products!(f64, "float64"; f32, "float32"; i64, "int64"; i32, "int32";
    crate::element::c64, "complex128"; crate::element::c32, "complex64");
rask_core::register_type!(SparseOp);
rask_core::register_type!((bool, Scalar));
