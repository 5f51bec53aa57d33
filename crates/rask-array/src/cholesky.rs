//! The Cholesky factorization of a matrix cut into square blocks, block by block: nothing
//! is gathered, so the matrix may be larger than one worker's memory.
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

use faer::Side;
use ndarray::{ArrayD, Ix2, IxDyn};
use rask_core::{Arg, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};

use crate::array::{chunk_arg, chunk_of, layer_name, plain_fn, spec_arg, task_arg, Array};
use crate::chunks::Chunks;
use crate::decompose::{from_faer, to_faer};
use crate::element::chunk_value;
use crate::error::Result;

impl Array<f64> {
    /// `L` of `self = L Lᵀ`, in `self`'s blocks (the columns cut like the rows first).
    pub(crate) fn blocked_cholesky(&self) -> Result<Array<f64>> {
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
                        plain_fn("rask_array::cholesky_zero"),
                        vec![Arg::Value(Value::serde(shape))],
                    )
                } else if k == i {
                    TaskSpec::new(
                        plain_fn("rask_array::cholesky_diagonal"),
                        vec![
                            Arg::Key(a.block_key(&[k, k])),
                            Arg::List((0..k).map(|j| l(k, j)).collect()),
                            Arg::Value(Value::serde(k)),
                        ],
                    )
                } else {
                    TaskSpec::new(
                        plain_fn("rask_array::cholesky_panel"),
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

impl Array<f64> {
    /// `x` with `self · x = b` for a symmetric positive-definite `self` (Cholesky, by blocks:
    /// nothing is gathered; `b` a vector or a matrix of right-hand sides, its rows cut like
    /// `self`'s). Half the work of [`Array::solve`]'s LU, and any other matrix is an error.
    pub fn solve_positive(&self, b: &Array<f64>) -> Result<Array<f64>> {
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
                    plain_fn("rask_array::substitute"),
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
                    plain_fn("rask_array::substitute"),
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

/// One block of a substitution: `L_kk⁻¹ (r − Σ M_j z_j)` forward, `L_kk⁻ᵀ (r − Σ M_jᵀ z_j)`
/// back (`transposed`); `r` and the result keep `b`'s shape (a vector or a matrix).
fn substitute(args: &[Value]) -> TaskResult {
    let r = chunk_arg::<f64>(args, 0)?;
    let transposed = *spec_arg::<bool>(args, 4, "the direction")?;
    let vector = r.ndim() == 1;
    let mut rest = as_columns(r)?;
    let factors = task_arg(args, 1, "the blocks of L")?
        .as_list()
        .ok_or_else(|| TaskError::msg("the blocks of L"))?;
    let solved = task_arg(args, 2, "the solved blocks")?
        .as_list()
        .ok_or_else(|| TaskError::msg("the solved blocks"))?;
    for (m, z) in factors.iter().zip(solved) {
        let m = chunk_of::<f64>(m, &"a block of L")?.view().into_dimensionality::<Ix2>()?;
        let z = as_columns(chunk_of::<f64>(z, &"a solved block")?)?;
        let m = if transposed { m.reversed_axes() } else { m };
        ndarray::linalg::general_mat_mul(-1.0, &m, &z, 1.0, &mut rest);
    }
    let diagonal = to_faer(chunk_arg::<f64>(args, 3)?)?;
    let mut x = to_faer(&rest.into_dyn())?;
    if transposed {
        diagonal.transpose().solve_upper_triangular_in_place(x.as_mut());
    } else {
        diagonal.solve_lower_triangular_in_place(x.as_mut());
    }
    let x = from_faer(x.as_ref());
    let len = x.len();
    Ok(chunk_value(if vector { x.into_shape_with_order(IxDyn(&[len]))? } else { x }))
}

/// A vector as one column, a matrix as it is.
fn as_columns(r: &ArrayD<f64>) -> std::result::Result<ndarray::Array2<f64>, TaskError> {
    Ok(match r.ndim() {
        1 => r.view().into_shape_with_order((r.len(), 1))?.to_owned(),
        _ => r.view().into_dimensionality::<Ix2>()?.to_owned(),
    })
}

/// `a − Σ x_j y_jᵀ` over the pairs of blocks of two lists.
fn updated(
    a: &ArrayD<f64>,
    left: &Value,
    right: Option<&Value>,
) -> std::result::Result<ndarray::Array2<f64>, TaskError> {
    let mut out = a.view().into_dimensionality::<Ix2>()?.to_owned();
    let left = left.as_list().ok_or_else(|| TaskError::msg("the blocks to the left"))?;
    let right = match right {
        Some(r) => r.as_list().ok_or_else(|| TaskError::msg("the blocks of row k"))?,
        None => left,
    };
    for (x, y) in left.iter().zip(right) {
        let x = chunk_of::<f64>(x, &"a block of L")?.view().into_dimensionality::<Ix2>()?;
        let y = chunk_of::<f64>(y, &"a block of L")?.view().into_dimensionality::<Ix2>()?;
        ndarray::linalg::general_mat_mul(-1.0, &x, &y.t(), 1.0, &mut out);
    }
    Ok(out)
}

fn cholesky_diagonal(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<f64>(args, 0)?;
    let k = *spec_arg::<u32>(args, 2, "the block column")?;
    let s = updated(a, task_arg(args, 1, "the blocks to the left")?, None)?;
    let n = s.nrows();
    let llt = to_faer(&s.into_dyn())?.llt(Side::Lower).map_err(|e| {
        TaskError::msg(format!(
            "cholesky needs a symmetric positive-definite matrix; this one is not (diagonal block {k}, {n}×{n}, after the updates from the blocks before it: {e:?})"
        ))
    })?;
    Ok(chunk_value(from_faer(llt.L())))
}

fn cholesky_panel(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<f64>(args, 0)?;
    let s = updated(
        a,
        task_arg(args, 1, "the blocks of row i")?,
        Some(task_arg(args, 2, "the blocks of row k")?),
    )?;
    let diagonal = to_faer(chunk_arg::<f64>(args, 3)?)?;
    // X L_kkᵀ = S  ⇔  L_kk Xᵀ = Sᵀ: a lower-triangular solve of Sᵀ.
    let mut x = to_faer(&s.into_dyn())?.transpose().to_owned();
    diagonal.solve_lower_triangular_in_place(x.as_mut());
    Ok(chunk_value(from_faer(x.transpose())))
}

fn cholesky_zero(args: &[Value]) -> TaskResult {
    let shape = spec_arg::<Vec<usize>>(args, 0, "the block's shape")?;
    Ok(chunk_value(ArrayD::<f64>::zeros(IxDyn(shape))))
}

rask_core::register_function!("rask_array::cholesky_diagonal", cholesky_diagonal);
rask_core::register_function!("rask_array::cholesky_panel", cholesky_panel);
rask_core::register_function!("rask_array::cholesky_zero", cholesky_zero);
rask_core::register_function!("rask_array::substitute", substitute);
