//! Linear algebra against what defines it: `Q R = A` with orthonormal `Q`, `U S Vᵀ = A`,
//! residuals of `solve` and `lstsq`, `A · inv(A) = I`, `L Lᵀ = A` — over random chunkings,
//! uneven and with empty chunks — for `f64`, `f32` and complex matrices, and the errors of a
//! singular or non-positive-definite matrix.

use ndarray::{Array2, ArrayD, Ix2};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_local::ComputeExt;

fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    Array2::from_shape_fn((rows, cols), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 2000) as f64 / 1000.0 - 1.0
    })
}

fn two(x: ArrayD<f64>) -> Array2<f64> {
    x.into_dimensionality::<Ix2>().unwrap()
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// `n` cut at random points (empty chunks allowed).
fn cuts(n: usize, points: &[usize]) -> Vec<usize> {
    let mut at: Vec<usize> = points.iter().map(|p| p % (n + 1)).collect();
    at.extend([0, n]);
    at.sort_unstable();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn blocked_lu_solves_and_inverts_over_any_chunking(
        n in 1usize..40, row_cuts in prop::collection::vec(0usize..40, 0..5),
        col_cuts in prop::collection::vec(0usize..40, 0..4),
        rhs_cuts in prop::collection::vec(0usize..40, 0..4), k in 1usize..5, seed in 0u64..1000,
    ) {
        // A general matrix (no diagonal dominance): the pivots come from any row, across blocks.
        let m = matrix(n, n, seed);
        let rows = cuts(n, &row_cuts);
        let a = from_ndarray(&m, vec![rows.clone(), cuts(n, &col_cuts)]).unwrap();
        let rhs = matrix(n, k, seed + 1);
        let b = from_ndarray(&rhs, vec![cuts(n, &rhs_cuts), cuts(k, &[k / 2])]).unwrap();
        let x = a.solve(&b).unwrap();
        // Cut like `b`, its rows like the matrix's.
        prop_assert_eq!(&x.chunks().per_axis()[0], &rows);
        let x = two(x.compute().unwrap());
        let scale = 1.0 + x.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        prop_assert!(max_diff(&m.dot(&x), &rhs) < 1e-10 * n as f64 * scale);

        let column: Vec<f64> = rhs.column(0).to_vec();
        let vector = from_ndarray(&ndarray::Array1::from(column.clone()), [3]).unwrap();
        let got = a.solve(&vector).unwrap().compute().unwrap();
        prop_assert_eq!(got.shape(), &[n]);
        let got = got.into_dimensionality::<ndarray::Ix1>().unwrap();
        prop_assert!((0..n).all(|i| (got[i] - x[[i, 0]]).abs() < 1e-12 * scale));

        let inverse = a.inv().unwrap();
        prop_assert_eq!(&inverse.chunks().per_axis()[1], &rows);
        let inverse = two(inverse.compute().unwrap());
        let scale = 1.0 + inverse.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        prop_assert!(max_diff(&m.dot(&inverse), &Array2::eye(n)) < 1e-10 * n as f64 * scale);
    }

    #[test]
    fn tsqr_and_svd_reconstruct_the_matrix_with_orthonormal_factors(
        rows in 1usize..60, cols in 1usize..6, chunk in 1usize..20, seed in 0u64..1000,
    ) {
        let a = matrix(rows, cols, seed);
        let x = from_ndarray(&a, [chunk, cols]).unwrap();
        let (q, r) = x.qr().unwrap();
        let (q, r) = (two(q.compute().unwrap()), two(r.compute().unwrap()));
        let k = rows.min(cols);
        prop_assert_eq!(q.shape(), &[rows, k]);
        prop_assert!(max_diff(&q.dot(&r), &a) < 1e-9);
        prop_assert!(max_diff(&q.t().dot(&q), &Array2::eye(k)) < 1e-9);
        for i in 0..k {
            for j in 0..i.min(cols) {
                prop_assert!(r[[i, j]].abs() < 1e-12, "R is upper triangular");
            }
        }
        let (u, s, vt) = x.svd().unwrap();
        let (u, s, vt) = (two(u.compute().unwrap()), s.compute().unwrap(), two(vt.compute().unwrap()));
        let us = Array2::from_shape_fn((rows, k), |(i, j)| u[[i, j]] * s[[j]]);
        prop_assert!(max_diff(&us.dot(&vt), &a) < 1e-9);
        prop_assert!(s.iter().zip(s.iter().skip(1)).all(|(a, b)| a >= b), "descending singular values");
    }

    #[test]
    fn lstsq_recovers_an_exact_solution_and_solve_leaves_no_residual(
        rows in 6usize..50, chunk in 2usize..15, seed in 0u64..1000,
    ) {
        let a = matrix(rows, 3, seed);
        let truth = Array2::from_shape_vec((3, 1), vec![1.5, -2.0, 0.25]).unwrap();
        let b = a.dot(&truth);
        let x = from_ndarray(&a, [chunk, 3]).unwrap();
        let got = two(x.lstsq(&from_ndarray(&b, [chunk, 1]).unwrap()).unwrap().compute().unwrap());
        prop_assert!(max_diff(&got, &truth) < 1e-8);

        // A well-conditioned square system, in other chunks.
        let n = 12;
        let m = matrix(n, n, seed) + Array2::<f64>::eye(n) * n as f64;
        let rhs = matrix(n, 2, seed + 1);
        let sq = from_ndarray(&m, [5, 7]).unwrap();
        let sol = two(sq.solve(&from_ndarray(&rhs, [4, 2]).unwrap()).unwrap().compute().unwrap());
        prop_assert!(max_diff(&m.dot(&sol), &rhs) < 1e-9);
        let inverse = two(sq.inv().unwrap().compute().unwrap());
        prop_assert!(max_diff(&m.dot(&inverse), &Array2::eye(n)) < 1e-9);
        let spd = m.t().dot(&m);
        let l = two(from_ndarray(&spd, [5, 5]).unwrap().cholesky().unwrap().compute().unwrap());
        prop_assert!(max_diff(&l.dot(&l.t()), &spd) < 1e-7);
    }

    #[test]
    fn blocked_cholesky_is_the_one_chunk_factor_in_blocks(
        n in 1usize..40, row_chunk in 1usize..13, col_chunk in 1usize..13, seed in 0u64..1000,
    ) {
        let m = matrix(n, n, seed);
        let spd = m.t().dot(&m) + Array2::<f64>::eye(n) * n as f64;
        let x = from_ndarray(&spd, [row_chunk, col_chunk]).unwrap();
        let factor = x.cholesky().unwrap();
        // The columns are cut like the rows: square blocks along the diagonal.
        prop_assert_eq!(&factor.chunks().per_axis()[1], &factor.chunks().per_axis()[0]);
        prop_assert_eq!(&factor.chunks().per_axis()[0], &x.chunks().per_axis()[0]);
        let l = two(factor.compute().unwrap());
        for i in 0..n {
            for j in i + 1..n {
                prop_assert!(l[[i, j]] == 0.0, "L is lower triangular");
            }
        }
        prop_assert!(max_diff(&l.dot(&l.t()), &spd) < 1e-8 * n as f64);
        let whole = two(from_ndarray(&spd, [n, n]).unwrap().cholesky().unwrap().compute().unwrap());
        prop_assert!(max_diff(&l, &whole) < 1e-9 * n as f64);

        // Solving with it, by blocks: a matrix of right-hand sides and a vector, their rows
        // cut otherwise than the matrix's.
        let rhs = matrix(n, 3, seed + 7);
        let b = from_ndarray(&rhs, [col_chunk, 2]).unwrap();
        let solved = x.solve_positive(&b).unwrap();
        prop_assert_eq!(solved.shape(), vec![n, 3]);
        let solved = two(solved.compute().unwrap());
        prop_assert!(max_diff(&spd.dot(&solved), &rhs) < 1e-9 * n as f64);
        let column: Vec<f64> = rhs.column(0).to_vec();
        let vector = from_ndarray(&ndarray::Array1::from(column.clone()), [row_chunk]).unwrap();
        let got = x.solve_positive(&vector).unwrap().compute().unwrap();
        prop_assert_eq!(got.shape(), &[n]);
        let residual = spd.dot(&got.into_dimensionality::<ndarray::Ix1>().unwrap());
        prop_assert!(residual.iter().zip(&column).all(|(a, b)| (a - b).abs() < 1e-9 * n as f64));
    }
}

#[test]
fn a_blocked_cholesky_names_the_block_that_is_not_positive_definite() {
    // Positive definite in its first 3×3 block, not as a whole.
    let mut a = Array2::<f64>::eye(6);
    a[[4, 1]] = 3.0;
    a[[1, 4]] = 3.0;
    let err = from_ndarray(&a, [3, 3]).unwrap().cholesky().unwrap().compute().unwrap_err();
    let err = err.to_string();
    assert!(err.contains("positive-definite") && err.contains("diagonal block 1"), "{err}");
    let wide = zeros::<f64>(&[3, 4], [2, 2]).unwrap();
    let err = wide.cholesky().unwrap_err().to_string();
    assert!(err.contains("square") && err.contains("[3, 4]"), "{err}");
    let square = from_ndarray(&Array2::<f64>::eye(4), [2, 2]).unwrap();
    let err = square.solve_positive(&zeros::<f64>(&[3], [3]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("(4,)") && err.contains("[3]"), "{err}");
    let err = from_ndarray(&a, [3, 3])
        .unwrap()
        .solve_positive(&zeros::<f64>(&[6], [2]).unwrap())
        .unwrap()
        .compute()
        .unwrap_err()
        .to_string();
    assert!(err.contains("positive-definite") && err.contains("diagonal block 1"), "{err}");
}

#[test]
fn pivots_come_from_below_the_diagonal_block() {
    // Every diagonal block is zero: a solver that pivots within the diagonal blocks only (as
    // Dask's blocked LU does) divides by zero here.
    let n = 6;
    let swap = Array2::from_shape_fn((n, n), |(i, j)| if (i + n / 2) % n == j { 2.0 } else { 0.0 });
    let a = from_ndarray(&swap, [3, 3]).unwrap();
    let rhs = matrix(n, 2, 5);
    let x = two(a.solve(&from_ndarray(&rhs, [2, 2]).unwrap()).unwrap().compute().unwrap());
    assert!(max_diff(&swap.dot(&x), &rhs) < 1e-12);
}

#[test]
fn single_precision_and_complex_systems_solve() {
    let n = 20;
    let m = matrix(n, n, 3);
    let single = m.mapv(|v| v as f32);
    let rhs = matrix(n, 2, 4).mapv(|v| v as f32);
    let a = from_ndarray(&single, [7, 7]).unwrap();
    let x = a.solve(&from_ndarray(&rhs, [7, 2]).unwrap()).unwrap().compute().unwrap();
    let x = x.into_dimensionality::<Ix2>().unwrap();
    let residual = single.dot(&x) - &rhs;
    assert!(residual.iter().all(|r| r.abs() < 1e-3), "{residual}");
    let inverse = a.inv().unwrap().compute().unwrap().into_dimensionality::<Ix2>().unwrap();
    let off = single.dot(&inverse) - Array2::<f32>::eye(n);
    assert!(off.iter().all(|r| r.abs() < 1e-3), "{off}");

    let complex = Array2::from_shape_fn((n, n), |(i, j)| {
        rask_array::c64::new(m[[i, j]], m[[(i + 1) % n, (j + 3) % n]])
    });
    let rhs = Array2::from_shape_fn((n, 1), |(i, _)| rask_array::c64::new(i as f64, 1.0));
    let a = from_ndarray(&complex, [6, 6]).unwrap();
    let x = a.solve(&from_ndarray(&rhs, [5, 1]).unwrap()).unwrap().compute().unwrap();
    let residual = complex.dot(&x.into_dimensionality::<Ix2>().unwrap()) - &rhs;
    assert!(residual.iter().all(|r| r.norm() < 1e-10), "{residual}");
    let singular =
        Array2::from_shape_fn((4, 4), |(i, j)| rask_array::c32::new((i + j) as f32, 0.0));
    let err = from_ndarray(&singular, [2, 2]).unwrap().inv().unwrap().compute().unwrap_err();
    assert!(err.to_string().contains("singular"), "{err}");
}

/// A complex matrix with every entry's both parts in use.
fn complex_matrix(rows: usize, cols: usize, seed: u64) -> Array2<rask_array::c64> {
    let (re, im) = (matrix(rows, cols, seed), matrix(rows, cols, seed + 100));
    Array2::from_shape_fn((rows, cols), |(i, j)| rask_array::c64::new(re[[i, j]], im[[i, j]]))
}

fn complex_diff(a: &Array2<rask_array::c64>, b: &Array2<rask_array::c64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).norm()).fold(0.0, f64::max)
}

fn adjoint(a: &Array2<rask_array::c64>) -> Array2<rask_array::c64> {
    a.t().mapv(|v| v.conj())
}

#[test]
fn complex_decompositions_use_conjugate_transposes() {
    let a = complex_matrix(30, 4, 1);
    let x = from_ndarray(&a, [7, 4]).unwrap();
    let (q, r) = x.qr().unwrap();
    let (q, r) = (two_c(q.compute().unwrap()), two_c(r.compute().unwrap()));
    assert!(complex_diff(&q.dot(&r), &a) < 1e-12);
    let identity =
        Array2::from_shape_fn((4, 4), |(i, j)| rask_array::c64::new((i == j) as u8 as f64, 0.0));
    assert!(complex_diff(&adjoint(&q).dot(&q), &identity) < 1e-12, "Qᴴ Q = I");

    let (u, s, vh) = x.svd().unwrap();
    // Singular values are real: an `f64` array.
    let s: ArrayD<f64> = s.compute().unwrap();
    let (u, vh) = (two_c(u.compute().unwrap()), two_c(vh.compute().unwrap()));
    let us = Array2::from_shape_fn((30, 4), |(i, j)| u[[i, j]] * s[[j]]);
    assert!(complex_diff(&us.dot(&vh), &a) < 1e-12);

    let truth = complex_matrix(4, 1, 9);
    let b = a.dot(&truth);
    let got = x.lstsq(&from_ndarray(&b, [7, 1]).unwrap()).unwrap().compute().unwrap();
    assert!(complex_diff(&two_c(got), &truth) < 1e-10);

    // Hermitian positive definite, factored in blocks and in one chunk.
    let m = complex_matrix(9, 9, 4);
    let hpd = adjoint(&m).dot(&m)
        + Array2::from_shape_fn((9, 9), |(i, j)| {
            rask_array::c64::new(if i == j { 9.0 } else { 0.0 }, 0.0)
        });
    for chunk in [4, 9] {
        let h = from_ndarray(&hpd, [chunk, chunk]).unwrap();
        let l = two_c(h.cholesky().unwrap().compute().unwrap());
        assert!(complex_diff(&l.dot(&adjoint(&l)), &hpd) < 1e-10, "L Lᴴ = A in blocks of {chunk}");
        let rhs = complex_matrix(9, 2, 5);
        let solved = h.solve_positive(&from_ndarray(&rhs, [3, 2]).unwrap()).unwrap();
        let solved = two_c(solved.compute().unwrap());
        assert!(complex_diff(&hpd.dot(&solved), &rhs) < 1e-10);
    }

    // A complex matrix of rank 2, from its randomized SVD (Aᴴ products inside).
    let low = complex_matrix(20, 2, 6).dot(&complex_matrix(2, 12, 7));
    let (u, s, vh) = from_ndarray(&low, [5, 4]).unwrap().svd_compressed(2, 1, 3).unwrap();
    let (u, s, vh) =
        (two_c(u.compute().unwrap()), s.compute().unwrap(), two_c(vh.compute().unwrap()));
    let us = Array2::from_shape_fn((20, 2), |(i, j)| u[[i, j]] * s[[j]]);
    assert!(complex_diff(&us.dot(&vh), &low) < 1e-9);

    let norm: ArrayD<f64> = x.norm().unwrap().compute().unwrap();
    let expected = a.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
    assert!((norm[[]] - expected).abs() < 1e-12 * expected);
    let (re, im) = (x.real().compute().unwrap(), x.imag().compute().unwrap());
    let conj = two_c(x.conj().compute().unwrap());
    assert!(a
        .indexed_iter()
        .all(|((i, j), v)| re[[i, j]] == v.re && im[[i, j]] == v.im && conj[[i, j]] == v.conj()));
}

#[test]
fn single_precision_decompositions() {
    let a = matrix(40, 5, 2).mapv(|v| v as f32);
    let x = from_ndarray(&a, [9, 5]).unwrap();
    let (u, s, vt) = x.svd().unwrap();
    let (u, s, vt) = (u.compute().unwrap(), s.compute().unwrap(), vt.compute().unwrap());
    let (u, vt) =
        (u.into_dimensionality::<Ix2>().unwrap(), vt.into_dimensionality::<Ix2>().unwrap());
    let us = Array2::from_shape_fn((40, 5), |(i, j)| u[[i, j]] * s[[j]]);
    let off = us.dot(&vt) - &a;
    assert!(off.iter().all(|v| v.abs() < 1e-4), "{off}");
    let spd = a.t().dot(&a) + Array2::<f32>::eye(5);
    let l = from_ndarray(&spd, [2, 2]).unwrap().cholesky().unwrap().compute().unwrap();
    let l = l.into_dimensionality::<Ix2>().unwrap();
    let off = l.dot(&l.t()) - &spd;
    assert!(off.iter().all(|v| v.abs() < 1e-3), "{off}");
}

fn two_c(x: ArrayD<rask_array::c64>) -> Array2<rask_array::c64> {
    x.into_dimensionality::<Ix2>().unwrap()
}

#[test]
fn a_singular_matrix_is_an_error_not_infinities() {
    let singular =
        Array2::from_shape_vec((3, 3), vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0]).unwrap();
    let a = from_ndarray(&singular, [2, 2]).unwrap();
    let b = from_ndarray(&Array2::<f64>::ones((3, 1)), [3, 1]).unwrap();
    let err = a.solve(&b).unwrap().compute().unwrap_err().to_string();
    assert!(err.contains("singular") && err.contains("lstsq"), "{err}");
    let err = a.inv().unwrap().compute().unwrap_err().to_string();
    assert!(err.contains("singular"), "{err}");
    // NaN entries are named as such, not called singular.
    let mut holed = Array2::<f64>::eye(4);
    holed[[2, 1]] = f64::NAN;
    let err = from_ndarray(&holed, [2, 2]).unwrap().inv().unwrap().compute().unwrap_err();
    let err = err.to_string();
    assert!(err.contains("NaN or infinite") && err.contains("isfinite"), "{err}");
    let not_pd =
        from_ndarray(&Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 1.0]).unwrap(), [2, 2])
            .unwrap();
    let err = not_pd.cholesky().unwrap().compute().unwrap_err().to_string();
    assert!(err.contains("positive-definite"), "{err}");
    let wide = zeros::<f64>(&[10, 4], [5, 2]).unwrap();
    let err = wide.qr().unwrap_err().to_string();
    assert!(err.contains("rechunk([5, 4])"), "{err}");
}

#[test]
fn norm_is_the_square_root_of_the_sum_of_squares() {
    let a = matrix(7, 5, 3);
    let got = from_ndarray(&a, [3, 2]).unwrap().norm().unwrap().compute().unwrap();
    let expected = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((got.iter().next().unwrap() - expected).abs() < 1e-12);
}

#[test]
fn svd_compressed_recovers_a_low_rank_matrix() {
    // Rank 4: A = L · R, cut into 30×10 blocks (neither tall-and-skinny nor one column chunk).
    let a = matrix(120, 4, 1).dot(&matrix(4, 40, 2));
    let x = from_ndarray(&a, [30, 10]).unwrap();
    let (u, s, vt) = x.svd_compressed(4, 1, 7).unwrap();
    assert_eq!((u.shape(), s.shape(), vt.shape()), (vec![120, 4], vec![4], vec![4, 40]));
    let (u, s, vt) = (two(u.compute().unwrap()), s.compute().unwrap(), two(vt.compute().unwrap()));
    let s_row = s
        .view()
        .into_dimensionality::<ndarray::Ix1>()
        .unwrap()
        .insert_axis(ndarray::Axis(0))
        .to_owned();
    let scaled: Array2<f64> = &u * &s_row;
    assert!(max_diff(&scaled.dot(&vt), &a) < 1e-9, "U S Vᵀ = A for a rank-4 matrix");
    assert!(max_diff(&u.t().dot(&u), &Array2::eye(4)) < 1e-9, "orthonormal U");
    // The singular values are the exact ones (TSQR's SVD of the whole, tall matrix).
    let exact = x.rechunk([30, 40]).unwrap().svd().unwrap().1.compute().unwrap();
    for i in 0..4 {
        assert!((s[i] - exact[i]).abs() < 1e-9 * exact[0], "{s} vs {exact}");
    }
    let err = x.svd_compressed(0, 0, 1).unwrap_err().to_string();
    assert!(err.contains("k = 0") && err.contains("between 1 and 40"), "{err}");
}
