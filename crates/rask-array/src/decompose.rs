//! Decompositions and solvers of `f64`, `f32`, `c64` and `c32` matrices (the [`Factor`]
//! types): tall-and-skinny QR and SVD (TSQR), the randomized `svd_compressed` of any matrix,
//! `lstsq`, `cholesky`, and `norm`, with `faer` kernels per block. For complex matrices the
//! transposes are conjugate transposes (`Qᴴ`, `Vᴴ`, `L Lᴴ`), as in NumPy; singular values and
//! norms are of the real type.
//!
//! **TSQR** (Benson, Gleich and Demmel; Dask's `tsqr`) takes a matrix cut into row chunks with
//! its columns in one chunk: each row block is factored on its own (`A_i = Q1_i R1_i`), the
//! stacked `R1_i` are factored once more (`= Q2 R`), and block `i` of `Q` is `Q1_i` times the
//! rows of `Q2` that belong to it. The SVD factors the small `R` (`R = U_r S Vᵀ`) and gives
//! `U = Q U_r`. `Q1_i` is kept as faer's Householder reflectors and applied to the small
//! matrix it multiplies (`Q2_i`, or `Q2_i U_r`), never formed. `lstsq` solves `R x = Qᴴ b`,
//! summing `Q_iᴴ b_i` over the row blocks with a tree.
//!
//! `solve` and `inv` work by a blocked LU across the chunks (`lu.rs`), `cholesky` of a chunked
//! matrix block by block (`cholesky.rs`); neither gathers the matrix.
//! A singular matrix is an error that says so, never a matrix of infinities.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj,
};
use faer::linalg::qr::no_pivoting::factor::{
    qr_in_place, qr_in_place_scratch, recommended_block_size,
};
use faer::reborrow::ReborrowMut;
use faer::{Conj, Mat, MatMut, MatRef, Par, Side};
use ndarray::{ArrayD, ArrayView2, IxDyn};
use rask_core::{
    Arg, BlockArg, BlockGrid, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value,
};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, spec_arg, task_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{c32, c64, chunk_value, parts_value, Element, RawParts};
use crate::error::{Error, Result};
use crate::linalg::{with_faer, Factor};
use crate::number::{Magnitude, Number};

pub(crate) fn to_faer<T: Factor>(a: &ArrayD<T>) -> std::result::Result<Mat<T>, TaskError> {
    let &[rows, cols] = a.shape() else {
        return Err(TaskError::msg(format!(
            "a matrix block of shape {:?}: 2 axes expected",
            a.shape()
        )));
    };
    Ok(match a.as_slice() {
        // Row-major chunks (all of them, as tasks make them): one copy by faer, column by column.
        Some(slice) => faer::MatRef::from_row_major_slice(slice, rows, cols).to_owned(),
        None => Mat::from_fn(rows, cols, |i, j| a[[i, j]]),
    })
}

pub(crate) fn from_faer<T: Factor>(m: faer::MatRef<'_, T>) -> ArrayD<T> {
    let (rows, cols) = (m.nrows(), m.ncols());
    let mut out = vec![<T as Number>::zero(); rows * cols];
    // faer's matrices are column-major: its own copy transposes them into row-major storage
    // (a tile at a time; an element loop here wrote a cache line per element).
    faer::MatMut::from_row_major_slice_mut(&mut out, rows, cols).copy_from(m);
    ArrayD::from_shape_vec(IxDyn(&[rows, cols]), out).expect("rows × cols elements")
}

/// A row block's own factors: `Q1_i` in faer's block Householder form, never formed as a
/// matrix (the `Q` and `U` blocks apply it to the small matrices that multiply it: a quarter
/// fewer flops than forming it and multiplying, and no block-sized copy), and `R1_i`.
struct LocalQr<T: Element> {
    /// The Householder vectors (`m × k`, unit lower trapezoidal), column-major: a `k × m`
    /// row-major chunk.
    basis: ArrayD<T>,
    /// faer's triangular block factors (`b × k`), column-major: a `k × b` row-major chunk.
    coeff: ArrayD<T>,
    r: ArrayD<T>,
}

impl<T: Element> RawParts for LocalQr<T> {
    type Element = T;
    fn to_parts(&self) -> (Vec<&ArrayD<T>>, Vec<f64>) {
        (vec![&self.basis, &self.coeff, &self.r], Vec::new())
    }
    fn from_parts(chunks: Vec<ArrayD<T>>, _: Vec<f64>) -> std::result::Result<Self, String> {
        match <[ArrayD<T>; 3]>::try_from(chunks) {
            Ok([basis, coeff, r]) => Ok(LocalQr { basis, coeff, r }),
            Err(_) => Err("a local QR factor needs its Householder vectors, factors and R".into()),
        }
    }
}

impl<T: Factor> LocalQr<T> {
    /// The QR factorization of a row block, in place on one column-major copy of it.
    fn of(block: &ArrayView2<'_, T>) -> Self {
        let (m, n) = block.dim();
        let k = m.min(n);
        let mut factored = vec![<T as Number>::zero(); m * n];
        with_faer(block, |a| MatMut::from_column_major_slice_mut(&mut factored, m, n).copy_from(a));
        let b = recommended_block_size::<T>(m, n).max(1);
        let mut coeff = vec![<T as Number>::zero(); b * k];
        if k > 0 {
            let params = Default::default();
            let mut scratch = MemBuffer::new(qr_in_place_scratch::<T>(m, n, b, BLOCK_PAR, params));
            qr_in_place(
                MatMut::from_column_major_slice_mut(&mut factored, m, n),
                MatMut::from_column_major_slice_mut(&mut coeff, b, k),
                BLOCK_PAR,
                MemStack::new(&mut scratch),
                params,
            );
        }
        let r = {
            let f = MatRef::from_column_major_slice(&factored, m, n);
            ArrayD::from_shape_fn(IxDyn(&[k, n]), |at| {
                if at[1] >= at[0] {
                    f[(at[0], at[1])]
                } else {
                    <T as Number>::zero()
                }
            })
        };
        // The first `k` columns hold the vectors below their diagonal: zeros above and ones on
        // it, as faer's own `Qr` keeps its basis.
        factored.truncate(m * k);
        for j in 0..k {
            factored[j * m..j * m + j].fill(<T as Number>::zero());
            factored[j * m + j] = <T as Number>::one();
        }
        LocalQr {
            basis: ArrayD::from_shape_vec(IxDyn(&[k, m]), factored).expect("k × m elements"),
            coeff: ArrayD::from_shape_vec(IxDyn(&[k, b]), coeff).expect("k × b elements"),
            r,
        }
    }

    /// `Q1_i · x` for a matrix `x` of `k` rows: `x` padded with zeros to the block's height,
    /// the reflectors applied to it in place.
    fn q_times(&self, x: &ArrayD<T>) -> std::result::Result<ArrayD<T>, TaskError> {
        let (&[k, m], &[_, b]) = (self.basis.shape(), self.coeff.shape()) else {
            return Err(TaskError::msg("a local QR factor of the wrong shape"));
        };
        let x = x.view().into_dimensionality::<ndarray::Ix2>()?;
        let cols = x.ncols();
        if x.nrows() != k {
            return Err(TaskError::msg(format!(
                "Q1 of {k} columns times a matrix of {} rows",
                x.nrows()
            )));
        }
        let mut out = vec![<T as Number>::zero(); m * cols];
        let mut product = MatMut::from_column_major_slice_mut(&mut out, m, cols);
        with_faer(&x, |x| product.rb_mut().subrows_mut(0, k).copy_from(x));
        let (Some(basis), Some(coeff)) = (self.basis.as_slice(), self.coeff.as_slice()) else {
            return Err(TaskError::msg("a local QR factor not in standard layout"));
        };
        if k > 0 && cols > 0 {
            let mut scratch = MemBuffer::new(
                apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(m, b, cols),
            );
            apply_block_householder_sequence_on_the_left_in_place_with_conj(
                MatRef::from_column_major_slice(basis, m, k),
                MatRef::from_column_major_slice(coeff, b, k),
                Conj::No,
                product,
                BLOCK_PAR,
                MemStack::new(&mut scratch),
            );
        }
        Ok(from_faer(MatRef::from_column_major_slice(&out, m, cols)))
    }
}

/// The row blocks' kernels run on one thread each: the blocks are factored in parallel.
const BLOCK_PAR: Par = Par::Seq;

/// The factorization of the stacked `R1_i`: `Q2`, cut back into the blocks' rows, and `R`.
struct MergedQr<T: Element> {
    q2_blocks: Vec<ArrayD<T>>,
    r: ArrayD<T>,
}

impl<T: Element> RawParts for MergedQr<T> {
    type Element = T;
    fn to_parts(&self) -> (Vec<&ArrayD<T>>, Vec<f64>) {
        (self.q2_blocks.iter().chain([&self.r]).collect(), Vec::new())
    }
    fn from_parts(mut chunks: Vec<ArrayD<T>>, _: Vec<f64>) -> std::result::Result<Self, String> {
        let r = chunks.pop().ok_or("a merged QR factor needs R")?;
        Ok(MergedQr { q2_blocks: chunks, r })
    }
}

/// What a task of the decompositions does with its inputs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Step {
    /// `Q_i = Q1_i · Q2_i`.
    BlockQ,
    /// `R` of the merge.
    R,
    /// `U_i = Q1_i · (Q2_i · U_r)`: the SVD's `U` straight from the local and merged factors
    /// (one product of the block's height, not two through `Q_i`).
    BlockU,
    /// The singular values.
    S,
    /// `Vᵀ`.
    Vt,
}
rask_core::register_type!(Step);
rask_core::register_type!((Step, u32));

/// The thin SVD of `R`, computed once and read by the `U`, `S` and `Vᴴ` tasks (the singular
/// values held in `T`, real-valued).
struct SmallSvd<T: Element> {
    u: ArrayD<T>,
    s: ArrayD<T>,
    vt: ArrayD<T>,
}

impl<T: Element> RawParts for SmallSvd<T> {
    type Element = T;
    fn to_parts(&self) -> (Vec<&ArrayD<T>>, Vec<f64>) {
        (vec![&self.u, &self.s, &self.vt], Vec::new())
    }
    fn from_parts(chunks: Vec<ArrayD<T>>, _: Vec<f64>) -> std::result::Result<Self, String> {
        match <[ArrayD<T>; 3]>::try_from(chunks) {
            Ok([u, s, vt]) => Ok(SmallSvd { u, s, vt }),
            Err(_) => Err("a small SVD needs U, S and Vᴴ".into()),
        }
    }
}

macro_rules! register_decomposition_parts {
    ($($t:ty),*) => {$(
        register_parts!(LocalQr<$t>);
        register_parts!(MergedQr<$t>);
        register_parts!(SmallSvd<$t>);
    )*};
}
register_decomposition_parts!(f64, f32, c64, c32);

/// The pieces of a TSQR graph: the graph, the key of the merge, and the local factors' keys.
struct Tsqr {
    graph: Graph,
    merge: Key,
    locals: Vec<Key>,
    /// Columns of `Q` (and rows of `R`): `min(rows, cols)` of the stacked factors.
    k: usize,
}

/// `U`, the singular values (of the real type) and `Vᴴ`.
pub type Svd<T> = (Array<T>, Array<<T as crate::number::Magnitude>::Out>, Array<T>);

impl<T: Factor> Array<T> {
    /// `selfᴴ`: the transpose, conjugated for complex types.
    pub(crate) fn adjoint(&self) -> Array<T> {
        if T::COMPLEX {
            self.t().conj()
        } else {
            self.t()
        }
    }

    fn tall_skinny(&self, operation: &str) -> Result<()> {
        let shape = self.shape();
        if shape.len() != 2 {
            return Err(Error::Invalid(format!(
                "{operation} takes a 2-d array, got shape {shape:?}"
            )));
        }
        if self.chunks.per_axis()[1].len() != 1 {
            return Err(Error::ChunkedAxis {
                operation: "tsqr",
                axis: 1,
                chunks: self.chunks.per_axis()[1].len(),
                fix: format!("[{}, {}]", self.chunks.max_block_shape()[0], shape[1]),
            });
        }
        Ok(())
    }

    fn tsqr_graph(&self) -> Tsqr {
        let rows = self.chunks.per_axis()[0].clone();
        let cols = self.shape()[1];
        let local = layer_name("tsqr-local", |t| {
            t.str(self.name.as_str());
        });
        let local_op = rask_core::Blockwise::new(
            BlockGrid::of(&[rows.len() as u32, 1]),
            typed_fn::<T>("rask_array::tsqr_local"),
            vec![BlockArg::Input(self.name.clone())],
        );
        let local_graph =
            Graph::from_layer(Layer::blockwise(local.clone(), local_op, &[&self.graph]));
        let locals: Vec<Key> =
            (0..rows.len() as u32).map(|i| Key::block(local.clone(), &[i, 0])).collect();
        let merge = Key::new(layer_name("tsqr-merge", |t| {
            t.str(local.as_str());
        }));
        let merge_task = TaskSpec::new(
            typed_fn::<T>("rask_array::tsqr_merge"),
            vec![Arg::List(locals.iter().cloned().map(Arg::Key).collect())],
        );
        let graph = Graph::from_layer(Layer::tasks(
            merge.name().clone(),
            vec![(merge.clone(), merge_task)],
            &[&local_graph],
        ));
        let stacked: usize = rows.iter().map(|&m| m.min(cols)).sum();
        Tsqr { graph, merge, locals, k: stacked.min(cols) }
    }

    /// The thin QR factorization of a tall-and-skinny matrix (columns in one chunk): `Q` with
    /// the row chunks of `self` and `k = min(rows, columns)` columns, and `R` (`k × columns`).
    pub fn qr(&self) -> Result<(Array<T>, Array<T>)> {
        let (_, q, r) = self.qr_parts()?;
        Ok((q, r))
    }

    /// [`qr`](Self::qr) with the TSQR graph its factors come from.
    fn qr_parts(&self) -> Result<(Tsqr, Array<T>, Array<T>)> {
        self.tall_skinny("qr")?;
        let tsqr = self.tsqr_graph();
        let cols = self.shape()[1];
        let q_name = layer_name("tsqr-q", |t| {
            t.str(tsqr.merge.name().as_str());
        });
        let step = typed_fn::<T>("rask_array::tsqr_step");
        let q_tasks: Vec<(Key, TaskSpec)> = tsqr
            .locals
            .iter()
            .enumerate()
            .map(|(i, local)| {
                let args = vec![
                    Arg::Key(local.clone()),
                    Arg::Key(tsqr.merge.clone()),
                    Arg::Value(Value::serde((Step::BlockQ, i as u32))),
                ];
                (Key::block(q_name.clone(), &[i as u32, 0]), TaskSpec::new(step.clone(), args))
            })
            .collect();
        let q_graph = Graph::from_layer(Layer::tasks(q_name.clone(), q_tasks, &[&tsqr.graph]));
        let q = Array::from_graph(
            q_graph,
            q_name,
            Chunks(vec![self.chunks.per_axis()[0].clone(), vec![tsqr.k]]),
        );
        let r_key = Key::block(
            layer_name("tsqr-r", |t| {
                t.str(tsqr.merge.name().as_str());
            }),
            &[0, 0],
        );
        let r_task = TaskSpec::new(
            step,
            vec![
                Arg::Key(tsqr.merge.clone()),
                Arg::Key(tsqr.merge.clone()),
                Arg::Value(Value::serde((Step::R, 0u32))),
            ],
        );
        let r_graph = Graph::from_layer(Layer::tasks(
            r_key.name().clone(),
            vec![(r_key.clone(), r_task)],
            &[&tsqr.graph],
        ));
        let r = Array::from_graph(
            r_graph,
            r_key.name().clone(),
            Chunks(vec![vec![tsqr.k], vec![cols]]),
        );
        Ok((tsqr, q, r))
    }

    /// The thin SVD of a tall-and-skinny matrix: `U` (row chunks of `self`, `k` columns), the
    /// singular values `S` (descending, of the real type) and `Vᴴ` (`k × columns`).
    pub fn svd(&self) -> Result<Svd<T>> {
        // `Q` itself is never computed: its blocks' chunks describe `U`'s.
        let (tsqr, q, r) = self.qr_parts()?;
        let cols = self.shape()[1];
        let k = r.shape()[0];
        let svd_key = Key::new(layer_name("tsqr-svd", |t| {
            t.str(r.name.as_str());
        }));
        let svd_task = TaskSpec::new(
            typed_fn::<T>("rask_array::small_svd"),
            vec![Arg::Key(r.block_key(&[0, 0]))],
        );
        let svd_graph = Graph::from_layer(Layer::tasks(
            svd_key.name().clone(),
            vec![(svd_key.clone(), svd_task)],
            &[&r.graph],
        ));
        let step = typed_fn::<T>("rask_array::tsqr_step");
        let u_name = layer_name("svd-u", |t| {
            t.str(svd_key.name().as_str()).str(q.name.as_str());
        });
        let u_tasks: Vec<(Key, TaskSpec)> = (0..q.numblocks()[0])
            .map(|i| {
                let args = vec![
                    Arg::Key(tsqr.locals[i as usize].clone()),
                    Arg::Key(tsqr.merge.clone()),
                    Arg::Value(Value::serde((Step::BlockU, i))),
                    Arg::Key(svd_key.clone()),
                ];
                (Key::block(u_name.clone(), &[i, 0]), TaskSpec::new(step.clone(), args))
            })
            .collect();
        let both = Graph::merge(&[&tsqr.graph, &svd_graph]);
        let u = Array::from_graph(
            Graph::from_layer(Layer::tasks(u_name.clone(), u_tasks, &[&both])),
            u_name,
            (*q.chunks).clone(),
        );
        let single = |which: Step, prefix: &str| {
            let ndim = if which == Step::S { 1 } else { 2 };
            let key = Key::block(
                layer_name(prefix, |t| {
                    t.str(svd_key.name().as_str());
                }),
                &vec![0; ndim],
            );
            let task = TaskSpec::new(
                step.clone(),
                vec![
                    Arg::Key(svd_key.clone()),
                    Arg::Key(svd_key.clone()),
                    Arg::Value(Value::serde((which, 0u32))),
                ],
            );
            let graph = Graph::from_layer(Layer::tasks(
                key.name().clone(),
                vec![(key.clone(), task)],
                &[&svd_graph],
            ));
            (graph, key.name().clone())
        };
        let (s_graph, s_name) = single(Step::S, "svd-s");
        let s = Array::from_graph(s_graph, s_name, Chunks(vec![vec![k]]));
        let (vt_graph, vt_name) = single(Step::Vt, "svd-vt");
        let vt = Array::from_graph(vt_graph, vt_name, Chunks(vec![vec![k], vec![cols]]));
        Ok((u, s, vt))
    }

    /// The first `k` singular triplets of any matrix, randomized (Halko, Martinsson and Tropp;
    /// Dask's `svd_compressed`): the range of `self` is sampled with a seeded Gaussian matrix
    /// of `k` columns, sharpened by `power_iterations` rounds of `Aᵀ`/`A` products (each
    /// re-orthonormalized by TSQR), and the SVD of the small projection `Qᵀ A` gives
    /// `U = Q·U_b`, `S`, `Vᵀ`. Exact for matrices of rank at most `k`; otherwise an
    /// approximation whose error falls with the power iterations. Every step is a chunked
    /// product or a TSQR: the matrix is never gathered.
    pub fn svd_compressed(&self, k: usize, power_iterations: usize, seed: u64) -> Result<Svd<T>> {
        let shape = self.shape();
        let [m, n] = shape[..] else {
            return Err(Error::Invalid(format!(
                "svd_compressed takes a matrix, not an array of shape {shape:?}"
            )));
        };
        if k == 0 || k > m.min(n) {
            return Err(Error::Invalid(format!(
                "svd_compressed with k = {k} of a {m}×{n} matrix: k must be between 1 and {}",
                m.min(n)
            )));
        }
        let columns = self.chunks.per_axis()[1].clone();
        let omega =
            crate::creation::random::normal(0.0, 1.0, &[n, k], vec![columns, vec![k]], seed)?
                .astype::<T>();
        let mut sample = self.matmul(&omega)?; // (m, k), row chunks of self
        for _ in 0..power_iterations {
            let (q, _) = sample.qr()?;
            let (z, _) = self.adjoint().matmul(&q)?.qr()?; // (n, k)
            sample = self.matmul(&z)?;
        }
        let (q, _) = sample.qr()?; // (m, k)

        // projected (k, n) = Qᴴ self; projectedᴴ = V S U_bᴴ, so self ≈ Q · projected = (Q U_b) S Vᴴ.
        let projected = q.adjoint().matmul(self)?;
        let (v, singular, u_bh) = projected.adjoint().svd()?;
        let u = q.matmul(&u_bh.adjoint())?;
        Ok((u, singular, v.adjoint()))
    }

    /// The least-squares solution of `self · x ≈ b` for a tall-and-skinny `self` of full
    /// column rank (`b`: one column per right-hand side, rows chunked like `self`).
    pub fn lstsq(&self, b: &Array<T>) -> Result<Array<T>> {
        self.tall_skinny("lstsq")?;
        let (rows, cols) = (self.shape()[0], self.shape()[1]);
        if b.ndim() != 2 || b.shape()[0] != rows {
            return Err(Error::Invalid(format!(
                "lstsq of a {rows}×{cols} matrix needs b of shape ({rows}, k), got {:?}",
                b.shape()
            )));
        }
        let b = b.rechunk(vec![self.chunks.per_axis()[0].clone(), vec![b.shape()[1]]])?;
        let (q, r) = self.qr()?;
        // Qᴴ b = Σ_i Q_iᴴ b_i.
        let qtb = q.adjoint().matmul(&b)?;
        let key = Key::block(
            layer_name("lstsq", |t| {
                t.str(r.name.as_str()).str(qtb.name.as_str());
            }),
            &[0, 0],
        );
        let qtb_whole = qtb.rechunk(vec![vec![qtb.shape()[0]], vec![qtb.shape()[1]]])?;
        let task = TaskSpec::new(
            typed_fn::<T>("rask_array::dense_solve"),
            vec![
                Arg::Key(r.block_key(&[0, 0])),
                Arg::Key(qtb_whole.block_key(&[0, 0])),
                Arg::Value(Value::serde(Dense::UpperTriangular)),
            ],
        );
        let inputs = Graph::merge(&[&r.graph, &qtb_whole.graph]);
        let graph = Graph::from_layer(Layer::tasks(
            key.name().clone(),
            vec![(key.clone(), task)],
            &[&inputs],
        ));
        Ok(Array::from_graph(
            graph,
            key.name().clone(),
            Chunks(vec![vec![cols], vec![b.shape()[1]]]),
        ))
    }

    fn whole_square(&self, operation: &str) -> Result<Array<T>> {
        let shape = self.shape();
        if shape.len() != 2 || shape[0] != shape[1] {
            return Err(Error::Invalid(format!(
                "{operation} takes a square 2-d array, got shape {shape:?}"
            )));
        }
        self.rechunk(vec![vec![shape[0]], vec![shape[1]]])
    }

    fn dense(
        &self,
        kind: Dense,
        rhs: Option<&Array<T>>,
        out: Chunks,
        prefix: &str,
    ) -> Result<Array<T>> {
        let a = self.whole_square(prefix)?;
        let mut args = vec![Arg::Key(a.block_key(&[0, 0]))];
        let mut graphs = vec![a.graph.clone()];
        if let Some(b) = rhs {
            let whole = b.rechunk(b.shape().iter().map(|&n| vec![n]).collect::<Vec<_>>())?;
            args.push(Arg::Key(whole.block_key(&vec![0; whole.ndim()])));
            graphs.push(whole.graph.clone());
        } else {
            // Kernels without a right-hand side ignore argument 1; it keeps the positions fixed.
            args.push(Arg::Key(a.block_key(&[0, 0])));
        }
        args.push(Arg::Value(Value::serde(kind)));
        let key = Key::block(
            layer_name(prefix, |t| {
                t.str(a.name.as_str())
                    .bytes(format!("{kind:?}{:?}", rhs.map(|b| b.name.clone())).as_bytes());
            }),
            &vec![0; out.ndim()],
        );
        let inputs = Graph::merge(&graphs.iter().collect::<Vec<_>>());
        let graph = Graph::from_layer(Layer::tasks(
            key.name().clone(),
            vec![(key.clone(), TaskSpec::new(typed_fn::<T>("rask_array::dense_solve"), args))],
            &[&inputs],
        ));
        Ok(Array::from_graph(graph, key.name().clone(), out))
    }

    /// The lower-triangular `L` with `L Lᴴ = self` for a symmetric (Hermitian) positive-definite
    /// matrix (only its lower triangle is read); any other matrix is an error. A matrix in one chunk
    /// is factored in one task on every core; a chunked one block by block
    /// (the tile algorithm), `L` in its blocks, never gathered.
    pub fn cholesky(&self) -> Result<Array<T>> {
        let shape = self.shape();
        if shape.len() != 2 || shape[0] != shape[1] {
            return Err(Error::Invalid(format!(
                "cholesky takes a square 2-d array, got shape {shape:?}"
            )));
        }
        if self.chunks.per_axis()[0].len() > 1 || self.chunks.per_axis()[1].len() > 1 {
            return self.blocked_cholesky();
        }
        let n = shape[0];
        self.dense(Dense::Cholesky, None, Chunks(vec![vec![n], vec![n]]), "cholesky")
    }

    /// The Frobenius norm (the 2-norm of a vector): `sqrt(sum(|x|²))`, as a 0-d array of the
    /// real type.
    pub fn norm(&self) -> Result<Array<T::Out>> {
        Ok(self.abs_squared().sum(crate::Axes::all())?.sqrt())
    }
}

/// Which dense kernel a gathered task runs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Dense {
    Cholesky,
    UpperTriangular,
}
rask_core::register_type!(Dense);

/// The smallest pivot (of an LU factor, or diagonal entry of a triangular one) relative to the
/// entries it is measured against below which the matrix counts as singular (a solve would
/// give infinities or noise).
const SINGULAR: f64 = 1e-13;

/// Whether a pivot is large enough against the entries it is measured against (a NaN pivot is
/// not).
pub(crate) fn pivots_hold(smallest: f64, scale: f64) -> bool {
    smallest > SINGULAR * scale.max(f64::MIN_POSITIVE)
}

fn tsqr_local<T: Factor>(args: &[Value]) -> TaskResult {
    let block = chunk_arg::<T>(args, 0)?;
    Ok(parts_value(LocalQr::of(&block.view().into_dimensionality::<ndarray::Ix2>()?)))
}

fn tsqr_merge<T: Factor>(args: &[Value]) -> TaskResult {
    let locals = task_arg(args, 0, "the local factors")?
        .as_list()
        .ok_or_else(|| TaskError::msg("the local factors are not a list"))?;
    let rs: Vec<&LocalQr<T>> = locals
        .iter()
        .map(|v| v.get::<LocalQr<T>>(&"a local factor"))
        .collect::<rask_core::Result<_>>()?;
    let cols = rs.first().map_or(0, |l| l.r.shape()[1]);
    let heights: Vec<usize> = rs.iter().map(|l| l.r.shape()[0]).collect();
    let total: usize = heights.iter().sum();
    let mut stacked = Mat::<T>::zeros(total, cols);
    let mut at = 0;
    for local in &rs {
        for i in 0..local.r.shape()[0] {
            for j in 0..cols {
                stacked[(at + i, j)] = local.r[[i, j]];
            }
        }
        at += local.r.shape()[0];
    }
    let qr = stacked.qr();
    let q2 = qr.compute_thin_Q();
    let mut q2_blocks = Vec::with_capacity(rs.len());
    let mut at = 0;
    for &h in &heights {
        q2_blocks.push(from_faer(q2.as_ref().subrows(at, h)));
        at += h;
    }
    Ok(parts_value(MergedQr { q2_blocks, r: from_faer(qr.thin_R()) }))
}

fn matmul2<T: Factor>(a: &ArrayD<T>, b: &ArrayD<T>) -> std::result::Result<ArrayD<T>, TaskError> {
    let a = a.view().into_dimensionality::<ndarray::Ix2>()?;
    let b = b.view().into_dimensionality::<ndarray::Ix2>()?;
    Ok(T::product(a, b).into_dyn())
}

fn tsqr_step<T: Factor>(args: &[Value]) -> TaskResult {
    let (step, i) = *spec_arg::<(Step, u32)>(args, 2, "the step")?;
    let i = i as usize;
    Ok(match step {
        Step::BlockQ => {
            let local = spec_arg::<LocalQr<T>>(args, 0, "the local factor")?;
            let merged = spec_arg::<MergedQr<T>>(args, 1, "the merged factor")?;
            chunk_value(local.q_times(&merged.q2_blocks[i])?)
        }
        Step::R => chunk_value(spec_arg::<MergedQr<T>>(args, 0, "the merged factor")?.r.clone()),
        Step::BlockU => {
            let local = spec_arg::<LocalQr<T>>(args, 0, "the local factor")?;
            let merged = spec_arg::<MergedQr<T>>(args, 1, "the merged factor")?;
            let svd = spec_arg::<SmallSvd<T>>(args, 3, "the SVD of R")?;
            chunk_value(local.q_times(&matmul2(&merged.q2_blocks[i], &svd.u)?)?)
        }
        // Real-valued in `T`: the real type's chunk.
        Step::S => chunk_value(
            spec_arg::<SmallSvd<T>>(args, 0, "the SVD of R")?.s.mapv(Magnitude::real_part),
        ),
        Step::Vt => chunk_value(spec_arg::<SmallSvd<T>>(args, 0, "the SVD of R")?.vt.clone()),
    })
}

fn small_svd<T: Factor>(args: &[Value]) -> TaskResult {
    let r = to_faer(chunk_arg::<T>(args, 0)?)?;
    let svd = r
        .thin_svd()
        .map_err(|e| TaskError::msg(format!("the SVD of R did not converge: {e:?}")))?;
    let s = svd.S().column_vector();
    let k = s.nrows();
    Ok(parts_value(SmallSvd {
        u: from_faer(svd.U()),
        s: ArrayD::from_shape_fn(IxDyn(&[k]), |at| s[at[0]]),
        vt: from_faer(svd.V().adjoint().to_owned().as_ref()),
    }))
}

fn as_matrix<T: Factor>(b: &ArrayD<T>) -> std::result::Result<(Mat<T>, bool), TaskError> {
    match b.shape() {
        [n] => Ok((Mat::from_fn(*n, 1, |i, _| b[[i]]), true)),
        [_, _] => Ok((to_faer(b)?, false)),
        other => Err(TaskError::msg(format!("a right-hand side of shape {other:?}"))),
    }
}

fn dense_solve<T: Factor>(args: &[Value]) -> TaskResult {
    let a_block = chunk_arg::<T>(args, 0)?;
    let kind = *spec_arg::<Dense>(args, 2, "the kernel")?;
    let a = to_faer(a_block)?;
    let n = a.nrows();
    let scale = a_block.iter().fold(0.0f64, |m, &v| m.max(Factor::modulus(v)));
    Ok(chunk_value(match kind {
        Dense::Cholesky => {
            let llt = a.llt(Side::Lower).map_err(|e| {
                TaskError::msg(format!("cholesky needs a symmetric positive-definite matrix; this {n}×{n} one is not ({e:?})"))
            })?;
            from_faer(llt.L())
        }
        Dense::UpperTriangular => {
            let (mut b, _) = as_matrix(chunk_arg::<T>(args, 1)?)?;
            let smallest = (0..n).map(|i| Factor::modulus(a[(i, i)])).fold(f64::INFINITY, f64::min);
            if n > 0 && !pivots_hold(smallest, scale) {
                return Err(TaskError::msg(format!(
                    "lstsq: the matrix does not have full column rank (R's smallest diagonal entry is {smallest:e})"
                )));
            }
            a.solve_upper_triangular_in_place(b.as_mut());
            from_faer(b.as_ref())
        }
    }))
}

macro_rules! register_decompositions {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::tsqr_local", tsqr_local);
        register_typed!($t, $d, "rask_array::tsqr_merge", tsqr_merge);
        register_typed!($t, $d, "rask_array::tsqr_step", tsqr_step);
        register_typed!($t, $d, "rask_array::small_svd", small_svd);
        register_typed!($t, $d, "rask_array::dense_solve", dense_solve);
    )*};
}
register_decompositions!(f64, "float64"; f32, "float32"; c64, "complex128"; c32, "complex64");
