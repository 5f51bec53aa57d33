//! Products of chunked arrays: `transpose`/`t`, `matmul`/`dot` of 2-d arrays, and
//! `tensordot` over any pairs of axes.
//!
//! In a matrix product every block product `(i, j) · (j, k)` is its own task (a blockwise layer
//! over the `(i, k, j)` grid, in parallel; faer's kernels for the floats and complex numbers,
//! `ndarray`'s `dot` for the integers), then a tree sums the products over `j` for each output block `(i, k)`. A
//! `tensordot` moves the contracted axes to the inner side, merges the free and the contracted
//! axes into one each (`reshape`), multiplies those matrices, and splits the result's axes
//! again. The decompositions (TSQR, `solve`, ...) are in [`crate::decompose`].

use ndarray::{Array2, ArrayView2, Ix2, IxDyn};
use rask_core::{
    AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Key, Layer, LayerKind, Name, TaskError, TaskFn,
    TaskResult, TreeReduction, Value,
};

use crate::array::{chunk_arg, chunk_of, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{c32, c64};
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};
use crate::number::{Float, Magnitude, Number};

/// Element types with matrix products.
pub trait MatMul: Number + ndarray::LinalgScalar {
    /// `a · b` of two matrix views: `ndarray`'s `dot` unless the type has a faster kernel.
    #[doc(hidden)]
    fn product(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Array2<Self> {
        a.dot(&b)
    }
}
// The floats and complex numbers multiply by faer's kernels; the integers by `dot`.
macro_rules! faer_matmul {
    ($($t:ty),*) => {$(
        impl MatMul for $t {
            fn product(a: ArrayView2<'_, $t>, b: ArrayView2<'_, $t>) -> Array2<$t> {
                faer_product(&a, &b).unwrap_or_else(|| a.dot(&b))
            }
        }
    )*};
}
faer_matmul!(f64, f32, c64, c32);
impl MatMul for i64 {}
impl MatMul for i32 {}

/// Element types with decompositions (LU, QR, SVD, Cholesky): the floats and complex
/// numbers, faer's fields. Their magnitudes (singular values, norms) are of the real type.
pub trait Factor: MatMul + Magnitude<Out: Float> + faer::traits::ComplexField {
    /// Whether transposes in the decompositions are conjugated.
    #[doc(hidden)]
    const COMPLEX: bool;
    /// `|x|` as an `f64`, for the checks of pivots.
    #[doc(hidden)]
    fn modulus(self) -> f64;
}
impl Factor for f64 {
    const COMPLEX: bool = false;
    fn modulus(self) -> f64 {
        self.abs()
    }
}
impl Factor for f32 {
    const COMPLEX: bool = false;
    fn modulus(self) -> f64 {
        f64::from(self.abs())
    }
}
impl Factor for c64 {
    const COMPLEX: bool = true;
    fn modulus(self) -> f64 {
        self.norm()
    }
}
impl Factor for c32 {
    const COMPLEX: bool = true;
    fn modulus(self) -> f64 {
        f64::from(self.norm())
    }
}

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
        // `y.t() @ x` reads `y`'s blocks and multiplies their transposed views: no copies.
        let (left, pair) = match transposed_source(self) {
            Some(source) => (
                BlockArg::Aligned(source, vec![AxisMap::Out(2), AxisMap::Out(0)]),
                "rask_array::matmul_pair_tn",
            ),
            None => (
                BlockArg::Aligned(self.name.clone(), vec![AxisMap::Out(0), AxisMap::Out(2)]),
                "rask_array::matmul_pair",
            ),
        };
        let product = BlockProduct {
            left,
            left_graph: &self.graph,
            rows: &self.chunks.per_axis()[0],
            inner: self.chunks.per_axis()[1].len() as u32,
            right: &other.name,
            right_graph: &other.graph,
            cols: &other.chunks.per_axis()[1],
        };
        let (graph, name, chunks) =
            product.build(typed_fn::<T>(pair), typed_fn::<T>("rask_array::sum_blocks"));
        Ok(Array::from_graph(graph, name, chunks))
    }

    /// The sum of products over the axes `axes.0` of this array and `axes.1` of `other`
    /// (NumPy's `tensordot`): the result has this array's other axes, then `other`'s.
    pub fn tensordot(&self, other: &Array<T>, axes: (&[isize], &[isize])) -> Result<Array<T>> {
        let (a_shape, b_shape) = (self.shape(), other.shape());
        if axes.0.len() != axes.1.len() {
            return Err(Error::Invalid(format!(
                "tensordot pairs axes: {} axes of the left and {} of the right",
                axes.0.len(),
                axes.1.len()
            )));
        }
        let left = axes.0.iter().map(|&a| self.axis(a)).collect::<Result<Vec<_>>>()?;
        let right = axes.1.iter().map(|&a| other.axis(a)).collect::<Result<Vec<_>>>()?;
        for (&a, &b) in left.iter().zip(&right) {
            if a_shape[a] != b_shape[b] {
                return Err(Error::Invalid(format!(
                    "tensordot of shapes {a_shape:?} and {b_shape:?}: axis {a} of the left has {} \
                     elements, axis {b} of the right {}",
                    a_shape[a], b_shape[b]
                )));
            }
        }
        let free_a: Vec<usize> = (0..self.ndim()).filter(|a| !left.contains(a)).collect();
        let free_b: Vec<usize> = (0..other.ndim()).filter(|b| !right.contains(b)).collect();
        let inner: usize = left.iter().map(|&a| a_shape[a]).product();
        let rows: usize = free_a.iter().map(|&a| a_shape[a]).product();
        let cols: usize = free_b.iter().map(|&b| b_shape[b]).product();
        let order_a: Vec<usize> = free_a.iter().chain(&left).copied().collect();
        let order_b: Vec<usize> = right.iter().chain(&free_b).copied().collect();
        let a2 = self.transpose(&order_a)?.reshape(&[rows as isize, inner as isize])?;
        let b2 = other.transpose(&order_b)?.reshape(&[inner as isize, cols as isize])?;
        let shape: Vec<isize> = free_a
            .iter()
            .map(|&a| a_shape[a] as isize)
            .chain(free_b.iter().map(|&b| b_shape[b] as isize))
            .collect();
        a2.matmul(&b2)?.reshape(&shape)
    }

    /// The same as [`Array::matmul`] for 2-d arrays.
    pub fn dot(&self, other: &Array<T>) -> Result<Array<T>> {
        self.matmul(other)
    }
}

/// The plan of every matrix product, dense and sparse: one task per block product
/// `left(i, j) · right(j, k)` over the `(i, k, j)` grid (in parallel), then a tree summing
/// the products over `j` for each output block `(i, k)`.
pub(crate) struct BlockProduct<'a> {
    /// The left operand, aligned so its block `(i, j)` is read at grid index `(i, _, j)`.
    pub left: BlockArg,
    pub left_graph: &'a Graph,
    /// The left operand's row chunks (the result's).
    pub rows: &'a [usize],
    /// The number of blocks along the contracted axis.
    pub inner: u32,
    /// The right operand, whose row chunks are the left's column chunks.
    pub right: &'a Name,
    pub right_graph: &'a Graph,
    /// The right operand's column chunks (the result's).
    pub cols: &'a [usize],
}

impl BlockProduct<'_> {
    /// The product's graph, layer name and chunks: `pair` multiplies two blocks, `sum` adds a
    /// list of block products.
    pub(crate) fn build(self, pair: TaskFn, sum: TaskFn) -> (Graph, Name, Chunks) {
        let chunks = Chunks(vec![self.rows.to_vec(), self.cols.to_vec()]);
        let grid = chunks.grid();
        let products = layer_name("matmul-block", |t| {
            t.str(pair.name()).str(&format!("{:?}", self.left)).str(self.right.as_str());
        });
        let op = Blockwise::new(
            BlockGrid::of(&[grid[0], grid[1], self.inner]),
            pair,
            vec![
                self.left,
                BlockArg::Aligned(self.right.clone(), vec![AxisMap::Out(2), AxisMap::Out(1)]),
            ],
        );
        let products_graph = Graph::from_layer(Layer::blockwise(
            products.clone(),
            op,
            &[self.left_graph, self.right_graph],
        ));
        let name = layer_name("matmul", |t| {
            t.str(products.as_str());
        });
        let tree = TreeReduction {
            combine_prefix: "matmul-sum".into(),
            combine: sum.clone(),
            finish: sum,
            args: Vec::new(),
            split_every: 8,
        };
        let mut tasks = Vec::new();
        for i in 0..grid[0] {
            for k in 0..grid[1] {
                let leaves =
                    (0..self.inner).map(|j| Key::block(products.clone(), &[i, k, j])).collect();
                tasks.extend(tree.tasks(leaves, Key::block(name.clone(), &[i, k])));
            }
        }
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&products_graph]));
        (graph, name, chunks)
    }
}

fn transpose_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let axes = spec_arg::<Vec<usize>>(args, 1, "the axes")?;
    Ok(chunk_value(chunk.view().permuted_axes(IxDyn(axes)).as_standard_layout().into_owned()))
}
crate::for_each_element!(register_typed, "rask_array::transpose_chunk", transpose_chunk);
rask_core::register_type!(Vec<usize>);

/// The source of `x` when `x` is the transpose of a matrix (`y.t()`), whose blocks a product
/// can read as transposed views instead of the transpose layer's copies.
fn transposed_source<T: Element>(x: &Array<T>) -> Option<rask_core::Name> {
    let [layer] = x.graph.heads() else { return None };
    let LayerKind::Blockwise(op) = layer.kind() else { return None };
    if !op.func.name().starts_with("rask_array::transpose_chunk::") {
        return None;
    }
    match op.args.first() {
        Some(BlockArg::Aligned(source, map)) if map[..] == [AxisMap::Out(1), AxisMap::Out(0)] => {
            Some(source.clone())
        }
        _ => None,
    }
}

/// The left and right matrix blocks of a block-product task.
fn matrix_pair<T: MatMul>(
    args: &[Value],
) -> std::result::Result<(ndarray::ArrayView2<'_, T>, ndarray::ArrayView2<'_, T>), TaskError> {
    let block =
        |i: usize, side: &str| -> std::result::Result<ndarray::ArrayView2<'_, T>, TaskError> {
            let value =
                args.get(i).ok_or_else(|| TaskError::msg(format!("missing the {side} block")))?;
            Ok(chunk_of::<T>(value, &format_args!("the {side} block"))?
                .view()
                .into_dimensionality::<Ix2>()?)
        };
    Ok((block(0, "left")?, block(1, "right")?))
}

/// A block product whose left block is read transposed (`aᵀ · b`).
fn matmul_pair_tn<T: MatMul>(args: &[Value]) -> TaskResult {
    let (left, right) = matrix_pair::<T>(args)?;
    Ok(chunk_value::<T>(T::product(left.reversed_axes(), right).into_dyn()))
}

fn matmul_pair<T: MatMul>(args: &[Value]) -> TaskResult {
    let (left, right) = matrix_pair::<T>(args)?;
    Ok(chunk_value::<T>(T::product(left, right).into_dyn()))
}

/// A view as a faer matrix, without a copy, when its elements are contiguous in either order.
pub(crate) fn faer_view<'a, T>(v: &ArrayView2<'a, T>) -> Option<faer::MatRef<'a, T>> {
    let (rows, cols) = v.dim();
    if let Some(elements) = v.to_slice() {
        return Some(faer::MatRef::from_row_major_slice(elements, rows, cols));
    }
    let elements = (*v).reversed_axes().to_slice()?;
    Some(faer::MatRef::from_column_major_slice(elements, rows, cols))
}

/// Runs `f` on a faer view of `view`: its own elements when contiguous in either order, a
/// copy otherwise.
pub(crate) fn with_faer<T: Factor, R>(
    view: &ArrayView2<'_, T>,
    f: impl FnOnce(faer::MatRef<'_, T>) -> R,
) -> R {
    match faer_view(view) {
        Some(matrix) => f(matrix),
        None => f(faer::Mat::from_fn(view.nrows(), view.ncols(), |i, j| view[[i, j]]).as_ref()),
    }
}

/// Outputs of at least this many elements are multiplied on every core.
const PARALLEL_OUTPUT: usize = 256 * 256;

/// `a · b` by faer's kernels (AVX-512 or AVX2, chosen at run time; several times
/// `matrixmultiply`'s speed on wide vectors) into a row-major result. `None` for layouts
/// faer cannot view, or empty shapes.
fn faer_product<T>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Option<Array2<T>>
where
    T: faer::traits::ComplexField + Copy + num_traits::Zero + num_traits::One,
{
    let ((m, k), n) = (a.dim(), b.ncols());
    if m == 0 || n == 0 || k == 0 {
        return None;
    }
    let (a, b) = (faer_view(a)?, faer_view(b)?);
    let mut out = vec![T::zero(); m * n];
    // Column-major `(a · b)ᵀ = bᵀ · aᵀ` is the row-major product.
    let dst = faer::MatMut::from_column_major_slice_mut(&mut out, n, m);
    faer::linalg::matmul::matmul(
        dst,
        faer::Accum::Replace,
        b.transpose(),
        a.transpose(),
        T::one(),
        // Every core on a large output (one big product has no other task beside it, and
        // rayon's one pool keeps concurrent tasks from oversubscribing the cores); one thread
        // on a small one, where splitting costs more than it gains (`Xᵀ X` of 20 columns).
        if m * n >= PARALLEL_OUTPUT { faer::get_global_parallelism() } else { faer::Par::Seq },
    );
    Array2::from_shape_vec((m, n), out).ok()
}

fn sum_blocks<T: MatMul>(args: &[Value]) -> TaskResult {
    let blocks = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the blocks"))?;
    let (first, rest) = blocks.split_first().ok_or_else(|| TaskError::msg("a sum of no blocks"))?;
    let mut total = chunk_of::<T>(first, &"block 0")?.clone();
    for (i, block) in rest.iter().enumerate() {
        let block = chunk_of::<T>(block, &format_args!("block {}", i + 1))?;
        ndarray::Zip::from(&mut total).and(block).for_each(|t, &b| *t = Number::add(*t, b));
    }
    Ok(chunk_value(total))
}

macro_rules! register_matmul {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::matmul_pair", matmul_pair);
        register_typed!($t, $d, "rask_array::matmul_pair_tn", matmul_pair_tn);
        register_typed!($t, $d, "rask_array::sum_blocks", sum_blocks);
    )*};
}
register_matmul!(f64, "float64"; f32, "float32"; i64, "int64"; i32, "int32";
    crate::element::c64, "complex128"; crate::element::c32, "complex64");

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Slice};

    use super::*;

    fn matrix(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 31 + j * 17) as f64 * seed).sin())
    }

    fn close(a: &Array2<f64>, b: &Array2<f64>) -> bool {
        a.shape() == b.shape()
            && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9 * (1.0 + y.abs()))
    }

    /// faer's product equals `ndarray`'s in every layout a block product hands it: row-major,
    /// transposed (column-major), strided (the `dot` fallback), and an output large enough to
    /// run on every core.
    #[test]
    fn faer_products_equal_ndarray_dot() {
        let a = matrix(37, 23, 0.3);
        let b = matrix(23, 11, 0.7);
        assert!(close(&f64::product(a.view(), b.view()), &a.dot(&b)));
        let at = matrix(23, 37, 0.3);
        assert!(close(&f64::product(at.view().reversed_axes(), b.view()), &at.t().dot(&b)));
        let strided = a.slice_axis(ndarray::Axis(0), Slice::new(0, None, 2));
        assert!(faer_view(&strided).is_none());
        assert!(close(&f64::product(strided, b.view()), &strided.dot(&b)));
        let big = matrix(300, 40, 0.1);
        let wide = matrix(40, 260, 0.2);
        assert!(close(&f64::product(big.view(), wide.view()), &big.dot(&wide)));
        let a32 = a.mapv(|v| v as f32);
        let b32 = b.mapv(|v| v as f32);
        let got = f32::product(a32.view(), b32.view());
        let want = a32.dot(&b32);
        assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs())));
        let empty = Array2::<f64>::zeros((0, 23));
        assert_eq!(f64::product(empty.view(), b.view()).shape(), &[0, 11]);
    }
}
