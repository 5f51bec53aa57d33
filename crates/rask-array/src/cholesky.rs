//! The Cholesky factorization of a matrix cut into square blocks, block by block: nothing
//! is gathered, so the matrix may be larger than one worker's memory. For complex matrices
//! (Hermitian positive-definite) every transpose below is the conjugate transpose.
//!
//! The right-looking tile algorithm (as LAPACK's `potrf` and Dask's `cholesky`): for every
//! block column `k`, the diagonal block is `L_kk = chol(A_kk − Σ_{j<k} L_kj L_kjᵀ)` and each
//! block below it `L_ik = (A_ik − Σ_{j<k} L_ij L_kjᵀ) L_kk⁻ᵀ` (a triangular solve); the blocks
//! above the diagonal are zero. One task per block of `L`, each reading the blocks of `L` to
//! its left, so the tasks of one block column run in parallel. Only the lower triangle of the
//! matrix is read, as LAPACK does. A matrix that is not positive definite fails at the first
//! diagonal block where that shows, naming the block.
//!
//! `solve_positive` solves `A x = b` with that factor, by blocks as well: forward substitution
//! `y_k = L_kk⁻¹ (b_k − Σ_{j<k} L_kj y_j)`, then back substitution
//! `x_k = L_kk⁻ᵀ (y_k − Σ_{j>k} L_jkᵀ x_j)`, one task per row block of each.

use faer::{Accum, MatMut, Side};
use ndarray::{ArrayD, Ix2, IxDyn};
use rask_core::{Arg, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};

use crate::array::{chunk_arg, chunk_of, layer_name, spec_arg, task_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::decompose::{from_faer, to_faer};
use crate::element::{c32, c64, chunk_value};
use crate::error::Result;
use crate::linalg::{with_faer, Factor};
use crate::number::Number;

impl<T: Factor> Array<T> {
    /// `L` of `self = L Lᵀ`, in `self`'s blocks (the columns cut like the rows first).
    pub(crate) fn blocked_cholesky(&self) -> Result<Array<T>> {
        let rows = self.chunks.per_axis()[0].clone();
        let a = if self.chunks.per_axis()[1] == rows {
            self.clone()
        } else {
            self.rechunk(vec![rows.clone(), rows.clone()])?
        };
        let blocks = rows.len() as u32;
        let name = layer_name("cholesky", |t| {
            t.str(a.name.as_str());
        });
        let l = |i: u32, j: u32| Arg::Key(Key::block(name.clone(), &[i, j]));
        let mut tasks = Vec::with_capacity((blocks * blocks) as usize);
        for i in 0..blocks {
            for k in 0..blocks {
                let key = Key::block(name.clone(), &[i, k]);
                let task = if k > i {
                    let shape = vec![rows[i as usize], rows[k as usize]];
                    TaskSpec::new(
                        typed_fn::<T>("rask_array::cholesky_zero"),
                        vec![Arg::Value(Value::serde(shape))],
                    )
                } else if k == i {
                    TaskSpec::new(
                        typed_fn::<T>("rask_array::cholesky_diagonal"),
                        vec![
                            Arg::Key(a.block_key(&[k, k])),
                            Arg::List((0..k).map(|j| l(k, j)).collect()),
                            Arg::Value(Value::serde(k)),
                        ],
                    )
                } else {
                    TaskSpec::new(
                        typed_fn::<T>("rask_array::cholesky_panel"),
                        vec![
                            Arg::Key(a.block_key(&[i, k])),
                            Arg::List((0..k).map(|j| l(i, j)).collect()),
                            Arg::List((0..k).map(|j| l(k, j)).collect()),
                            l(k, k),
                        ],
                    )
                };
                tasks.push((key, task));
            }
        }
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&a.graph]));
        Ok(Array::from_graph(graph, name, Chunks(vec![rows.clone(), rows])))
    }
}

impl<T: Factor> Array<T> {
    /// `x` with `self · x = b` for a symmetric (Hermitian) positive-definite `self` (Cholesky, by blocks:
    /// nothing is gathered; `b` a vector or a matrix of right-hand sides, its rows cut like
    /// `self`'s). Half the work of [`Array::solve`]'s LU, and any other matrix is an error.
    pub fn solve_positive(&self, b: &Array<T>) -> Result<Array<T>> {
        let n = self.shape().first().copied().unwrap_or(0);
        if b.shape().first() != Some(&n) || b.ndim() > 2 {
            return Err(crate::error::Error::Invalid(format!(
                "solve_positive of a matrix of shape {:?} needs b of shape ({n},) or ({n}, k), got {:?}",
                self.shape(),
                b.shape()
            )));
        }
        let l = self.cholesky()?;
        let rows = l.chunks.per_axis()[0].clone();
        let mut b_chunks = vec![rows.clone()];
        b_chunks.extend(b.shape().get(1).map(|&k| vec![k]));
        let b = b.rechunk(b_chunks)?;
        let blocks = rows.len() as u32;
        let name = layer_name("solve-positive", |t| {
            t.str(l.name.as_str()).str(b.name.as_str());
        });
        // The forward substitution's blocks are intermediate; the back substitution's are the
        // answer's, keyed like `b`'s blocks.
        let forward_name = layer_name("solve-positive-forward", |t| {
            t.str(name.as_str());
        });
        let forward = |k: u32| Key::block(forward_name.clone(), &[k]);
        let index = |k: u32| if b.ndim() == 1 { vec![k] } else { vec![k, 0] };
        let back = |k: u32| Key::block(name.clone(), &index(k));
        let block_of_b = |k: u32| b.block_key(&index(k));
        let mut tasks = Vec::with_capacity(2 * blocks as usize);
        for k in 0..blocks {
            tasks.push((
                forward(k),
                TaskSpec::new(
                    typed_fn::<T>("rask_array::substitute"),
                    vec![
                        Arg::Key(block_of_b(k)),
                        Arg::List((0..k).map(|j| Arg::Key(l.block_key(&[k, j]))).collect()),
                        Arg::List((0..k).map(|j| Arg::Key(forward(j))).collect()),
                        Arg::Key(l.block_key(&[k, k])),
                        Arg::Value(Value::serde(false)),
                    ],
                ),
            ));
        }
        for k in (0..blocks).rev() {
            tasks.push((
                back(k),
                TaskSpec::new(
                    typed_fn::<T>("rask_array::substitute"),
                    vec![
                        Arg::Key(forward(k)),
                        Arg::List(
                            (k + 1..blocks).map(|j| Arg::Key(l.block_key(&[j, k]))).collect(),
                        ),
                        Arg::List((k + 1..blocks).map(|j| Arg::Key(back(j))).collect()),
                        Arg::Key(l.block_key(&[k, k])),
                        Arg::Value(Value::serde(true)),
                    ],
                ),
            ));
        }
        let inputs = Graph::merge(&[&l.graph, &b.graph]);
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&inputs]));
        Ok(Array::from_graph(graph, name, b.chunks.as_ref().clone()))
    }
}

/// Which factor of the products of [`subtract_products`] is read conjugate-transposed.
#[derive(Clone, Copy)]
enum Adjoint {
    Neither,
    Left,
    Right,
}

/// `out − Σ x_j · y_j` over the pairs of blocks of two lists (one side conjugate-transposed as
/// `adjoint` says), by faer's kernels, in place.
fn subtract_products<'a, T: Factor>(
    out: &mut ndarray::Array2<T>,
    left: &'a Value,
    right: &'a Value,
    adjoint: Adjoint,
    what: (&str, &str),
) -> std::result::Result<(), TaskError> {
    let list = |v: &'a Value, name: &str| -> std::result::Result<&'a [Value], TaskError> {
        v.as_list().ok_or_else(|| TaskError::msg(format!("{name}: a list")))
    };
    let (rows, cols) = out.dim();
    let elements = out.as_slice_mut().ok_or_else(|| TaskError::msg("a non-contiguous block"))?;
    let mut dst = MatMut::from_row_major_slice_mut(elements, rows, cols);
    let minus_one = <T as Number>::zero() - <T as Number>::one();
    for (x, y) in list(left, what.0)?.iter().zip(list(right, what.1)?) {
        let x = as_columns(chunk_of::<T>(x, &what.0)?)?;
        let y = as_columns(chunk_of::<T>(y, &what.1)?)?;
        // faer reads a conjugate transpose as a transposed view and a flag (no copies).
        let (left_adjoint, right_adjoint) = match adjoint {
            Adjoint::Neither => (false, false),
            Adjoint::Left => (true, false),
            Adjoint::Right => (false, true),
        };
        with_faer(&x, |x| {
            with_faer(&y, |y| {
                let ((x, conj_x), (y, conj_y)) =
                    (operand(x, left_adjoint), operand(y, right_adjoint));
                faer::linalg::matmul::matmul_with_conj(
                    dst.as_mut(),
                    Accum::Add,
                    x,
                    conj_x,
                    y,
                    conj_y,
                    minus_one,
                    faer::Par::Seq,
                );
            })
        });
    }
    Ok(())
}

/// A factor of a product as faer reads it: a conjugate transpose is a transposed view and the
/// conjugation flag.
fn operand<T: Factor>(m: faer::MatRef<'_, T>, adjoint: bool) -> (faer::MatRef<'_, T>, faer::Conj) {
    if adjoint {
        (m.transpose(), faer::Conj::Yes)
    } else {
        (m, faer::Conj::No)
    }
}

/// One block of a substitution: `L_kk⁻¹ (r − Σ M_j z_j)` forward, `L_kk⁻ᴴ (r − Σ M_jᴴ z_j)`
/// back (`transposed`); `r` and the result keep `b`'s shape (a vector or a matrix).
fn substitute<T: Factor>(args: &[Value]) -> TaskResult {
    let r = chunk_arg::<T>(args, 0)?;
    let transposed = *spec_arg::<bool>(args, 4, "the direction")?;
    let vector = r.ndim() == 1;
    let mut rest = as_columns(r)?.as_standard_layout().into_owned();
    subtract_products(
        &mut rest,
        task_arg(args, 1, "the blocks of L")?,
        task_arg(args, 2, "the solved blocks")?,
        if transposed { Adjoint::Left } else { Adjoint::Neither },
        ("a block of L", "a solved block"),
    )?;
    let diagonal = to_faer(chunk_arg::<T>(args, 3)?)?;
    let mut x = to_faer(&rest.into_dyn())?;
    if transposed {
        diagonal.adjoint().solve_upper_triangular_in_place(x.as_mut());
    } else {
        diagonal.solve_lower_triangular_in_place(x.as_mut());
    }
    let x = from_faer(x.as_ref());
    let len = x.len();
    Ok(chunk_value(if vector { x.into_shape_with_order(IxDyn(&[len]))? } else { x }))
}

/// A vector as one column, a matrix as it is.
fn as_columns<T: Factor>(
    r: &ArrayD<T>,
) -> std::result::Result<ndarray::ArrayView2<'_, T>, TaskError> {
    Ok(match r.ndim() {
        1 => r.view().into_shape_with_order((r.len(), 1))?,
        _ => r.view().into_dimensionality::<Ix2>()?,
    })
}

fn cholesky_diagonal<T: Factor>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let k = *spec_arg::<u32>(args, 2, "the block column")?;
    let left = task_arg(args, 1, "the blocks to the left")?;
    let mut s = a.view().into_dimensionality::<Ix2>()?.as_standard_layout().into_owned();
    subtract_products(&mut s, left, left, Adjoint::Right, ("a block of L", "a block of L"))?;
    let n = s.nrows();
    let llt = to_faer(&s.into_dyn())?.llt(Side::Lower).map_err(|e| {
        TaskError::msg(format!(
            "cholesky needs a symmetric positive-definite matrix; this one is not (diagonal block {k}, {n}×{n}, after the updates from the blocks before it: {e:?})"
        ))
    })?;
    Ok(chunk_value(from_faer(llt.L())))
}

fn cholesky_panel<T: Factor>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let mut s = a.view().into_dimensionality::<Ix2>()?.as_standard_layout().into_owned();
    subtract_products(
        &mut s,
        task_arg(args, 1, "the blocks of row i")?,
        task_arg(args, 2, "the blocks of row k")?,
        Adjoint::Right,
        ("a block of row i", "a block of row k"),
    )?;
    let diagonal = to_faer(chunk_arg::<T>(args, 3)?)?;
    // X L_kkᴴ = S  ⇔  L_kk Xᴴ = Sᴴ: a lower-triangular solve of Sᴴ.
    let mut x = to_faer(&s.into_dyn())?.adjoint().to_owned();
    diagonal.solve_lower_triangular_in_place(x.as_mut());
    Ok(chunk_value(from_faer(x.adjoint().to_owned().as_ref())))
}

fn cholesky_zero<T: Factor>(args: &[Value]) -> TaskResult {
    let shape = spec_arg::<Vec<usize>>(args, 0, "the block's shape")?;
    Ok(chunk_value(ArrayD::<T>::from_elem(IxDyn(shape), <T as Number>::zero())))
}

macro_rules! register_cholesky {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::cholesky_diagonal", cholesky_diagonal);
        register_typed!($t, $d, "rask_array::cholesky_panel", cholesky_panel);
        register_typed!($t, $d, "rask_array::cholesky_zero", cholesky_zero);
        register_typed!($t, $d, "rask_array::substitute", substitute);
    )*};
}
register_cholesky!(f64, "float64"; f32, "float32"; c64, "complex128"; c32, "complex64");
