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
    let mut x = to_faer(&s.t().to_owned().into_dyn())?;
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
