//! Products of chunked arrays: `transpose`/`t`, `matmul`/`dot` of 2-d arrays, and
//! `tensordot` over any pairs of axes.
//!
//! In a matrix product every block product `(i, j) · (j, k)` is its own task (a blockwise layer
//! over the `(i, k, j)` grid, in parallel; `ndarray`'s `dot`, `matrixmultiply` kernels for
//! floats), then a tree sums the products over `j` for each output block `(i, k)`. A
//! `tensordot` moves the contracted axes to the inner side, merges the free and the contracted
//! axes into one each (`reshape`), multiplies those matrices, and splits the result's axes
//! again. The decompositions (TSQR, `solve`, ...) are in [`crate::decompose`].

use ndarray::{Ix2, IxDyn};
use rask_core::{
    AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Key, Layer, LayerKind, Name, TaskError, TaskFn,
    TaskResult, TreeReduction, Value,
};

use crate::array::{chunk_arg, chunk_of, layer_name, spec_arg, typed_fn, Array};
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
    Ok(chunk_value::<T>(left.t().dot(&right).into_dyn()))
}

fn matmul_pair<T: MatMul>(args: &[Value]) -> TaskResult {
    let (left, right) = matrix_pair::<T>(args)?;
    Ok(chunk_value::<T>(left.dot(&right).into_dyn()))
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
