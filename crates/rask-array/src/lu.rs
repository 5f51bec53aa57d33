//! `solve` and `inv` of a matrix cut into blocks, by a blocked LU factorization with partial
//! pivoting — the right-looking algorithm of LAPACK's `getrf` and ScaLAPACK, one block column
//! at a time. Nothing larger than one block column is ever in one task, so the matrix may be
//! larger than a worker's memory, and the block columns of a step are updated in parallel.
//!
//! Step `k` factors block column `k` from the diagonal down (the *panel*, rows `k..`) with
//! partial pivoting over all those rows: `P_k S = L_k U_kk`. Every block column `j > k` — the
//! matrix's and the right-hand sides', which go through the elimination beside them — then
//! takes the same row swaps, solves `U_kj = L_kk⁻¹ S_kj` for its block row `k` and updates the
//! rows below, `S'_ij = S_ij − L_ik U_kj`: those rows are the next step's. After the last step
//! the right-hand sides hold `L⁻¹ P b`, and back substitution by block rows,
//! `x_k = U_kk⁻¹ (y_k − Σ_{j>k} U_kj x_j)`, gives `x`. `inv` solves against the identity.
//!
//! The next panel needs only its own column's update, so it starts while the other columns of
//! the step are still being updated: the look-ahead of a parallel LU comes from the scheduler.
//! The blocks of `U` are taken out of the column steps into chunks of their own, so each step's
//! rows are freed as soon as the next step has read them.
//!
//! A pivot below 1e-13 of the largest entry of its column of the matrix makes the matrix
//! singular: an error saying so (and that `lstsq` gives a least-squares answer), never a
//! solution of infinities. The kernels are faer's, for `f64`, `f32`, `c64` and `c32`.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::triangular_solve::{
    solve_unit_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{ArrayD, ArrayView1, ArrayView2, Ix2, IxDyn};
use rask_core::{Arg, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};

use crate::array::{chunk_arg, chunk_of, layer_name, spec_arg, task_arg, typed_fn, Array};
use crate::element::{c32, c64, chunk_value, parts_value, Element, RawParts};
use crate::error::{Error, Result};
use crate::linalg::{faer_view, with_faer, Factor};
use crate::number::Number;

/// Kernels on at least this many elements run on every core.
const PARALLEL_WORK: usize = 256 * 256;

fn parallelism(elements: usize) -> Par {
    if elements >= PARALLEL_WORK {
        faer::get_global_parallelism()
    } else {
        Par::Seq
    }
}

/// A factored panel: `L_k` below the diagonal and `U_kk` on top of one `m × b` matrix, stored
/// column-major (as a `b × m` row-major chunk, the layout faer's LU works in), and the row
/// order: row `r` of the permuted panel is row `rows[r]` of the step's rows.
struct Panel<T: Element> {
    lu: ArrayD<T>,
    rows: Vec<usize>,
}
macro_rules! register_lu_parts {
    ($($t:ty),*) => {$(
        register_parts!(Panel<$t>);
        register_parts!(ColumnStep<$t>);
    )*};
}
register_lu_parts!(f64, f32, c64, c32);

impl<T: Element> RawParts for Panel<T> {
    type Element = T;
    fn to_parts(&self) -> (Vec<&ArrayD<T>>, Vec<f64>) {
        (vec![&self.lu], self.rows.iter().map(|&r| r as f64).collect())
    }
    fn from_parts(chunks: Vec<ArrayD<T>>, numbers: Vec<f64>) -> std::result::Result<Self, String> {
        let [lu] = <[ArrayD<T>; 1]>::try_from(chunks).map_err(|_| "a panel needs its factor")?;
        Ok(Panel { lu, rows: numbers.into_iter().map(|r| r as usize).collect() })
    }
}

impl<T: Factor> Panel<T> {
    /// The `m × b` factor as faer sees it.
    fn factor(&self) -> MatRef<'_, T> {
        let (b, m) = (self.lu.shape()[0], self.lu.shape()[1]);
        let elements = self.lu.as_slice().expect("panels are made contiguous");
        MatRef::from_column_major_slice(elements, m, b)
    }
}

/// What a column step leaves: its block of `U` (block row `k`), the updated rows below it
/// (the next step's), and the largest entry of each of its columns in the original matrix.
struct ColumnStep<T: Element> {
    upper: ArrayD<T>,
    below: ArrayD<T>,
    scales: Vec<f64>,
}

impl<T: Element> RawParts for ColumnStep<T> {
    type Element = T;
    fn to_parts(&self) -> (Vec<&ArrayD<T>>, Vec<f64>) {
        (vec![&self.upper, &self.below], self.scales.clone())
    }
    fn from_parts(chunks: Vec<ArrayD<T>>, numbers: Vec<f64>) -> std::result::Result<Self, String> {
        let [upper, below] =
            <[ArrayD<T>; 2]>::try_from(chunks).map_err(|_| "a column step needs U and its rows")?;
        Ok(ColumnStep { upper, below, scales: numbers })
    }
}

impl<T: Factor> Array<T> {
    /// `x` with `self · x = b` for a square `self` (a blocked LU with partial pivoting; `b` a
    /// vector or a matrix of right-hand sides, its rows rechunked like `self`'s). `x` has
    /// `self`'s row chunks and `b`'s column chunks. A singular matrix is an error.
    pub fn solve(&self, b: &Array<T>) -> Result<Array<T>> {
        let n = self.shape().first().copied().unwrap_or(0);
        if b.shape().first() != Some(&n) || b.ndim() > 2 {
            return Err(Error::Invalid(format!(
                "solve of a matrix of shape {:?} needs b of shape ({n},) or ({n}, k), got {:?}",
                self.shape(),
                b.shape()
            )));
        }
        self.lu_solve(b, "solve")
    }

    /// The inverse of a square matrix, cut like it (the solution against the identity); a
    /// singular matrix is an error.
    pub fn inv(&self) -> Result<Array<T>> {
        let rows = self.square_rows("inv")?;
        let identity =
            crate::creation::eye::<T>(self.shape()[0], None, 0, vec![rows.clone(), rows])?;
        self.lu_solve(&identity, "inv")
    }

    /// The row chunks of a square matrix.
    fn square_rows(&self, operation: &str) -> Result<Vec<usize>> {
        let shape = self.shape();
        if shape.len() != 2 || shape[0] != shape[1] {
            return Err(Error::Invalid(format!(
                "{operation} takes a square 2-d array, got shape {shape:?}"
            )));
        }
        Ok(self.chunks.per_axis()[0].clone())
    }

    fn lu_solve(&self, b: &Array<T>, operation: &str) -> Result<Array<T>> {
        let rows = self.square_rows(operation)?;
        let n = self.shape()[0];
        // Square blocks along the diagonal: the columns cut like the rows.
        let a = if self.chunks.per_axis()[1] == rows {
            self.clone()
        } else {
            self.rechunk(vec![rows.clone(), rows.clone()])?
        };
        let vector = b.ndim() == 1;
        let mut b_chunks = vec![rows.clone()];
        b_chunks.extend(b.chunks.per_axis().get(1).cloned());
        let b = b.rechunk(b_chunks)?;
        let p = rows.len() as u32;
        let q = if vector { 1 } else { b.chunks.per_axis()[1].len() as u32 };
        let name = layer_name(operation, |t| {
            t.str(a.name.as_str()).str(b.name.as_str());
        });
        let part = |what: &str| {
            layer_name(&format!("{operation}-{what}"), |t| {
                t.str(name.as_str());
            })
        };
        let (panels, diagonals, columns, uppers) =
            (part("panel"), part("diagonal"), part("column"), part("upper"));
        let panel = |k: u32| Key::block(panels.clone(), &[k]);
        let column = |k: u32, j: u32| Key::block(columns.clone(), &[k, j]);
        let upper = |k: u32, j: u32| Key::block(uppers.clone(), &[k, j]);
        let b_index = |i: u32, c: u32| if vector { vec![i] } else { vec![i, c] };
        // Block `i` of block column `j`: the matrix's for `j < p`, then the right-hand sides'.
        let original = |j: u32, i: u32| {
            Arg::Key(if j < p { a.block_key(&[i, j]) } else { b.block_key(&b_index(i, j - p)) })
        };
        let source = |k: u32, j: u32| {
            if k == 0 {
                Arg::List((0..p).map(|i| original(j, i)).collect())
            } else {
                Arg::Key(column(k - 1, j))
            }
        };
        let fn_of = |base: &str| typed_fn::<T>(base);
        let mut tasks = Vec::new();
        for k in 0..p {
            let first_column: usize = rows[..k as usize].iter().sum();
            let spec = Arg::Value(Value::serde((first_column as u64, n as u64)));
            tasks.push((
                panel(k),
                TaskSpec::new(fn_of("rask_array::lu_panel"), vec![source(k, k), spec]),
            ));
            tasks.push((
                Key::block(diagonals.clone(), &[k]),
                TaskSpec::new(fn_of("rask_array::lu_diagonal"), vec![Arg::Key(panel(k))]),
            ));
            for j in k + 1..p + q {
                tasks.push((
                    column(k, j),
                    TaskSpec::new(
                        fn_of("rask_array::lu_column"),
                        vec![source(k, j), Arg::Key(panel(k))],
                    ),
                ));
                tasks.push((
                    upper(k, j),
                    TaskSpec::new(fn_of("rask_array::lu_upper"), vec![Arg::Key(column(k, j))]),
                ));
            }
        }
        for c in 0..q {
            for k in (0..p).rev() {
                let solved = |j: u32| Arg::Key(Key::block(name.clone(), &b_index(j, c)));
                tasks.push((
                    Key::block(name.clone(), &b_index(k, c)),
                    TaskSpec::new(
                        fn_of("rask_array::lu_back"),
                        vec![
                            Arg::Key(upper(k, p + c)),
                            Arg::List((k + 1..p).map(|j| Arg::Key(upper(k, j))).collect()),
                            Arg::List((k + 1..p).map(solved).collect()),
                            Arg::Key(Key::block(diagonals.clone(), &[k])),
                            Arg::Value(Value::serde(vector)),
                        ],
                    ),
                ));
            }
        }
        let inputs = Graph::merge(&[&a.graph, &b.graph]);
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&inputs]));
        Ok(Array::from_graph(graph, name, b.chunks.as_ref().clone()))
    }
}

/// A block as a matrix: a vector is one column.
fn matrix_view<T: Element>(block: &ArrayD<T>) -> std::result::Result<ArrayView2<'_, T>, TaskError> {
    Ok(match block.ndim() {
        1 => block.view().into_shape_with_order((block.len(), 1))?,
        _ => block.view().into_dimensionality::<Ix2>()?,
    })
}

/// A block as a faer matrix of its own.
fn faer_block<T: Factor>(block: &ArrayD<T>) -> std::result::Result<faer::Mat<T>, TaskError> {
    Ok(with_faer(&matrix_view(block)?, |m| m.to_owned()))
}

/// The rows a step starts from, stacked: the matrix's own blocks of one block column at step
/// 0, the rows the previous step left after that.
struct Source<'a, T: Element> {
    pieces: Vec<ArrayView2<'a, T>>,
    /// The largest entry of each column in the original matrix, when a previous step has
    /// measured it.
    scales: Option<&'a [f64]>,
}

impl<'a, T: Factor> Source<'a, T> {
    fn read(value: &'a Value) -> std::result::Result<Self, TaskError> {
        if let Some(blocks) = value.as_list() {
            let pieces = blocks
                .iter()
                .enumerate()
                .map(|(i, v)| matrix_view(chunk_of::<T>(v, &format_args!("block {i}"))?))
                .collect::<std::result::Result<_, _>>()?;
            return Ok(Source { pieces, scales: None });
        }
        let step = value.get::<ColumnStep<T>>(&"the rows of the previous step")?;
        Ok(Source { pieces: vec![matrix_view(&step.below)?], scales: Some(&step.scales) })
    }

    fn width(&self) -> usize {
        self.pieces.first().map_or(0, ArrayView2::ncols)
    }

    fn rows(&self) -> Vec<ArrayView1<'_, T>> {
        self.pieces.iter().flat_map(|p| p.rows()).collect()
    }

    /// The largest entry of each column (measured here at step 0, carried after).
    fn scales(&self) -> Vec<f64> {
        if let Some(scales) = self.scales {
            return scales.to_vec();
        }
        let mut scales = vec![0.0f64; self.width()];
        for piece in &self.pieces {
            for row in piece.rows() {
                for (s, &v) in scales.iter_mut().zip(row) {
                    *s = s.max(v.modulus());
                }
            }
        }
        scales
    }
}

/// Appends a row's elements.
fn push_row<T: Element>(out: &mut Vec<T>, row: &ArrayView1<'_, T>) {
    match row.as_slice() {
        Some(elements) => out.extend_from_slice(elements),
        None => out.extend(row.iter().copied()),
    }
}

/// Factors step `k`'s panel with partial pivoting over all its rows.
fn lu_panel<T: Factor>(args: &[Value]) -> TaskResult {
    let source = Source::<T>::read(task_arg(args, 0, "the panel's rows")?)?;
    let &(first_column, n) = spec_arg::<(u64, u64)>(args, 1, "the step")?;
    let m: usize = source.pieces.iter().map(ArrayView2::nrows).sum();
    let b = source.width();
    let scales = source.scales();
    let mut lu = vec![<T as Number>::zero(); m * b];
    let mut at = 0;
    {
        let mut dst = MatMut::from_column_major_slice_mut(&mut lu, m, b);
        for piece in &source.pieces {
            let rows = piece.nrows();
            let mut part = dst.rb_mut().subrows_mut(at, rows);
            match faer_view(piece) {
                Some(view) => part.copy_from(view),
                None => (0..rows).for_each(|i| (0..b).for_each(|j| part[(i, j)] = piece[[i, j]])),
            }
            at += rows;
        }
    }
    let mut perm = vec![0usize; m];
    let mut perm_inv = vec![0usize; m];
    if b > 0 {
        let par = parallelism(m * b);
        let params = Default::default();
        let mut scratch = MemBuffer::new(lu_in_place_scratch::<usize, T>(m, b, par, params));
        let matrix = MatMut::from_column_major_slice_mut(&mut lu, m, b);
        lu_in_place(matrix, &mut perm, &mut perm_inv, par, MemStack::new(&mut scratch), params);
    } else {
        perm.iter_mut().enumerate().for_each(|(i, p)| *p = i);
    }
    let factor = MatRef::from_column_major_slice(&lu, m, b);
    for (i, &scale) in scales.iter().enumerate().take(m.min(b)) {
        let pivot = Factor::modulus(factor[(i, i)]);
        if !crate::decompose::pivots_hold(pivot, scale) {
            let column = first_column + i as u64;
            return Err(TaskError::msg(if !pivot.is_finite() || !scale.is_finite() {
                format!(
                    "the {n}×{n} matrix holds NaN or infinite entries (column {column}'s pivot is {pivot}): it has no solution to compute; find them with isfinite() and replace or drop them"
                )
            } else {
                format!(
                    "the {n}×{n} matrix is singular (the pivot of column {column} is {pivot:e}, against entries up to {scale:e} in that column): it has no inverse and the system no unique solution; use lstsq for a least-squares answer"
                )
            }));
        }
    }
    let lu = ArrayD::from_shape_vec(IxDyn(&[b, m]), lu)?;
    Ok(parts_value(Panel { lu, rows: perm }))
}

/// The diagonal block `U_kk` of a panel (its lower triangle holds `L_kk`, which back
/// substitution does not read), column-major as the panel is — a `b × b` chunk holding
/// `U_kkᵀ` row-major — so it is a copy of `b` runs, and back substitution reads it in place.
fn lu_diagonal<T: Factor>(args: &[Value]) -> TaskResult {
    let panel = spec_arg::<Panel<T>>(args, 0, "the factored panel")?;
    let (b, m) = (panel.lu.shape()[0], panel.lu.shape()[1]);
    let elements = panel.lu.as_slice().expect("panels are made contiguous");
    let mut diagonal = Vec::with_capacity(b * b);
    for column in elements.chunks(m.max(1)).take(b) {
        diagonal.extend_from_slice(&column[..b]);
    }
    Ok(chunk_value(ArrayD::from_shape_vec(IxDyn(&[b, b]), diagonal)?))
}

/// Block column `j` at step `k`: the panel's row swaps, `U_kj = L_kk⁻¹ S_kj`, and the update
/// of the rows below.
fn lu_column<T: Factor>(args: &[Value]) -> TaskResult {
    let source = Source::<T>::read(task_arg(args, 0, "the column's rows")?)?;
    let panel = spec_arg::<Panel<T>>(args, 1, "the factored panel")?;
    let factor = panel.factor();
    let (m, b) = (factor.nrows(), factor.ncols());
    let rows = source.rows();
    if rows.len() != m {
        return Err(TaskError::msg(format!(
            "a block column of {} rows against a panel of {m}",
            rows.len()
        )));
    }
    let w = source.width();
    let (mut upper, mut below) = (Vec::with_capacity(b * w), Vec::with_capacity((m - b) * w));
    for (r, &from) in panel.rows.iter().enumerate() {
        push_row(if r < b { &mut upper } else { &mut below }, &rows[from]);
    }
    if b > 0 && w > 0 {
        let mut top = MatMut::from_row_major_slice_mut(&mut upper, b, w);
        solve_unit_lower_triangular_in_place(
            factor.subrows(0, b),
            top.rb_mut(),
            parallelism(b * w),
        );
        if m > b {
            let rest = MatMut::from_row_major_slice_mut(&mut below, m - b, w);
            let minus_one = <T as Number>::zero() - <T as Number>::one();
            faer::linalg::matmul::matmul(
                rest,
                Accum::Add,
                factor.subrows(b, m - b),
                top.rb(),
                minus_one,
                parallelism((m - b) * w),
            );
        }
    }
    Ok(parts_value(ColumnStep {
        upper: ArrayD::from_shape_vec(IxDyn(&[b, w]), upper)?,
        below: ArrayD::from_shape_vec(IxDyn(&[m - b, w]), below)?,
        scales: source.scales(),
    }))
}

/// The block of `U` out of a column step, as a chunk of its own.
fn lu_upper<T: Factor>(args: &[Value]) -> TaskResult {
    let step = spec_arg::<ColumnStep<T>>(args, 0, "the column step")?;
    Ok(chunk_value(step.upper.clone()))
}

/// `x_k = U_kk⁻¹ (y_k − Σ_{j>k} U_kj x_j)`; `x_k` shaped like `b`'s block.
fn lu_back<T: Factor>(args: &[Value]) -> TaskResult {
    let mut y = faer_block(chunk_arg::<T>(args, 0)?)?;
    let vector = *spec_arg::<bool>(args, 4, "whether b is a vector")?;
    let list = |i: usize, what: &str| {
        task_arg(args, i, what)?.as_list().ok_or_else(|| TaskError::msg(format!("{what}: a list")))
    };
    let minus_one = <T as Number>::zero() - <T as Number>::one();
    for (u, x) in list(1, "the blocks of U")?.iter().zip(list(2, "the solved blocks")?) {
        let u = matrix_view(chunk_of::<T>(u, &"a block of U")?)?;
        let x = matrix_view(chunk_of::<T>(x, &"a solved block")?)?;
        let par = parallelism(y.nrows() * y.ncols());
        with_faer(&u, |u| {
            with_faer(&x, |x| {
                faer::linalg::matmul::matmul(y.as_mut(), Accum::Add, u, x, minus_one, par)
            })
        });
    }
    let diagonal = chunk_arg::<T>(args, 3)?;
    let b = diagonal.shape().first().copied().unwrap_or(0);
    let elements = diagonal.as_slice().ok_or_else(|| TaskError::msg("a non-contiguous U_kk"))?;
    if y.nrows() > 0 && y.ncols() > 0 {
        let par = parallelism(y.nrows() * y.ncols());
        let upper = MatRef::from_column_major_slice(elements, b, b);
        solve_upper_triangular_in_place(upper, y.as_mut(), par);
    }
    let x = crate::decompose::from_faer(y.as_ref());
    let len = x.len();
    Ok(chunk_value(if vector { x.into_shape_with_order(IxDyn(&[len]))? } else { x }))
}

// A panel's spec: its first column and the matrix's order.
rask_core::register_type!((u64, u64));

macro_rules! register_lu {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::lu_panel", lu_panel);
        register_typed!($t, $d, "rask_array::lu_diagonal", lu_diagonal);
        register_typed!($t, $d, "rask_array::lu_column", lu_column);
        register_typed!($t, $d, "rask_array::lu_upper", lu_upper);
        register_typed!($t, $d, "rask_array::lu_back", lu_back);
    )*};
}
register_lu!(f64, "float64"; f32, "float32"; c64, "complex128"; c32, "complex64");
