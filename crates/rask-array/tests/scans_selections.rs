//! Scans, selections, top-k, histograms, diagonals, padding and overlaps against `ndarray`
//! oracles on the whole data, over random chunkings (empty chunks included).

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_array::{diag, Bins, PadMode};
use rask_local::ComputeExt;

mod common;
use common::{close, data, shape_and_chunks};

/// The cumulative fold of `x` along `axis`, element by element.
fn oracle_scan(x: &ArrayD<f64>, axis: usize, f: impl Fn(f64, f64) -> f64) -> ArrayD<f64> {
    let mut out = x.clone();
    out.accumulate_axis_inplace(Axis(axis), |&a, b| *b = f(a, *b));
    out
}

/// `x` padded along every axis by `w` as NumPy does for widths below the axis length, built
/// from slices of the whole array (independent of rask's position arithmetic).
fn oracle_pad(x: &ArrayD<f64>, w: usize, mode: &str) -> ArrayD<f64> {
    let mut out = x.clone();
    for axis in 0..x.ndim() {
        let n = out.len_of(Axis(axis)) as isize;
        let w = w as isize;
        let (before, after) = match mode {
            "edge" => (
                ndarray::concatenate(
                    Axis(axis),
                    &vec![out.slice_axis(Axis(axis), Slice::from(0..1)); w as usize],
                )
                .unwrap(),
                ndarray::concatenate(
                    Axis(axis),
                    &vec![out.slice_axis(Axis(axis), Slice::from(n - 1..n)); w as usize],
                )
                .unwrap(),
            ),
            "reflect" => (
                out.slice_axis(Axis(axis), Slice::new(1, Some(w + 1), -1)).to_owned(),
                out.slice_axis(Axis(axis), Slice::new(n - w - 1, Some(n - 1), -1)).to_owned(),
            ),
            "symmetric" => (
                out.slice_axis(Axis(axis), Slice::new(0, Some(w), -1)).to_owned(),
                out.slice_axis(Axis(axis), Slice::new(n - w, Some(n), -1)).to_owned(),
            ),
            "wrap" => (
                out.slice_axis(Axis(axis), Slice::from(n - w..n)).to_owned(),
                out.slice_axis(Axis(axis), Slice::from(0..w)).to_owned(),
            ),
            _ => unreachable!(),
        };
        out = ndarray::concatenate(Axis(axis), &[before.view(), out.view(), after.view()]).unwrap();
    }
    out
}

/// The 3×3 neighbourhood sum of a 2-d array, neighbours outside it left out.
fn neighbourhood_sum(x: &ArrayD<f64>) -> ArrayD<f64> {
    let (n, m) = (x.shape()[0] as isize, x.shape()[1] as isize);
    ArrayD::from_shape_fn(x.raw_dim(), |at| {
        let (i, j) = (at[0] as isize, at[1] as isize);
        let mut sum = 0.0;
        for a in i - 1..=i + 1 {
            for b in j - 1..=j + 1 {
                if a >= 0 && a < n && b >= 0 && b < m {
                    sum += x[[a as usize, b as usize]];
                }
            }
        }
        sum
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn cumsum_and_cumprod_equal_a_running_fold(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        axis_pick in 0usize..3,
    ) {
        // Small values keep the products exact enough to compare.
        let x = data(&shape, seed).mapv(|v| (v / 5.0).round());
        let a = from_ndarray(&x, chunks).unwrap();
        let axis = axis_pick % shape.len();
        let sum = a.cumsum(axis as isize).unwrap();
        prop_assert_eq!(sum.chunks(), a.chunks());
        prop_assert!(close(&sum.compute().unwrap(), &oracle_scan(&x, axis, |p, v| p + v)));
        let prod = a.cumprod(axis as isize).unwrap().compute().unwrap();
        prop_assert!(close(&prod, &oracle_scan(&x, axis, |p, v| p * v)));
        // Integers accumulate in i64.
        let ints = a.astype::<i16>().cumsum(axis as isize).unwrap().compute().unwrap();
        prop_assert_eq!(ints, oracle_scan(&x, axis, |p, v| p + v).mapv(|v| v as i64));
    }

    #[test]
    fn boolean_selections_equal_numpy_order(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        axis_pick in 0usize..3,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks.clone()).unwrap();
        let mask = a.compare_scalar(CompareOp::Gt, 1.5);
        // x[x > 1.5]: row-major order, whatever the chunks.
        let selected = a.select(&mask).unwrap();
        prop_assert!(selected.to_string().contains("shape=(nan,)"), "{}", selected);
        let expected: Vec<f64> = x.iter().copied().filter(|&v| v > 1.5).collect();
        prop_assert_eq!(selected.compute().unwrap().into_raw_vec_and_offset().0, expected.clone());
        let sized = selected.compute_chunk_sizes().unwrap();
        prop_assert_eq!(sized.shape(), vec![expected.len()]);
        prop_assert_eq!(sized.compute().unwrap().into_raw_vec_and_offset().0, expected.clone());
        prop_assert!((sized.sum(0).unwrap().compute().unwrap()[[]] - expected.iter().sum::<f64>()).abs() < 1e-9);
        // compress along one axis with a lazy mask, and with an in-memory one.
        let axis = axis_pick % shape.len();
        let n = shape[axis];
        let keep: Vec<bool> = (0..n).map(|i| (i as u64 + seed) % 3 != 0).collect();
        let positions: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        let lazy_mask = from_ndarray(&ArrayD::from_shape_vec(IxDyn(&[n]), keep.clone()).unwrap(), 3).unwrap();
        let oracle = x.select(Axis(axis), &positions);
        prop_assert_eq!(a.compress(&lazy_mask, axis as isize).unwrap().compute().unwrap(), oracle.clone());
        let known = a.compress_with(&keep, axis as isize).unwrap();
        prop_assert_eq!(known.shape()[axis], positions.len());
        prop_assert_eq!(known.compute().unwrap(), oracle);
    }

    #[test]
    fn topk_and_argtopk_equal_a_sort(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        k_pick in 1i64..5,
        largest in any::<bool>(),
    ) {
        let x = data(&shape, seed).mapv(|v| v.round()); // ties on purpose
        let a = from_ndarray(&x, chunks).unwrap();
        let axis = shape.len() - 1;
        let n = shape[axis] as i64;
        prop_assume!(n >= 1);
        let k = k_pick.min(n) * if largest { 1 } else { -1 };
        let values = a.topk(k, -1).unwrap().compute().unwrap();
        let positions = a.argtopk(k, -1).unwrap().compute().unwrap();
        for ((lane, got), got_positions) in x.lanes(Axis(axis)).into_iter()
            .zip(values.lanes(Axis(axis)))
            .zip(positions.lanes(Axis(axis)))
        {
            let mut order: Vec<usize> = (0..lane.len()).collect();
            // A stable sort by value: equal values keep their order along the axis.
            if largest {
                order.sort_by(|&i, &j| lane[j].partial_cmp(&lane[i]).unwrap());
            } else {
                order.sort_by(|&i, &j| lane[i].partial_cmp(&lane[j]).unwrap());
            }
            let best = &order[..k.unsigned_abs() as usize];
            prop_assert_eq!(got_positions.to_vec(), best.iter().map(|&i| i as i64).collect::<Vec<_>>());
            prop_assert_eq!(got.to_vec(), best.iter().map(|&i| lane[i]).collect::<Vec<_>>());
        }
    }

    #[test]
    fn histograms_count_like_numpy(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        bins in 1usize..7,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let (counts, edges) = a.histogram(&Bins::equal(bins, (-5.0, 5.0))).unwrap();
        let counts = counts.compute().unwrap();
        // The oracle: NumPy's edge rules, one value at a time.
        let mut expected = vec![0i64; bins];
        for &v in x.iter() {
            if (-5.0..=5.0).contains(&v) {
                let bin = if v == 5.0 { bins - 1 } else { edges.iter().rposition(|&e| e <= v).unwrap() };
                expected[bin] += 1;
            }
        }
        prop_assert_eq!(counts.into_raw_vec_and_offset().0, expected);
    }

    #[test]
    fn diag_builds_and_reads_diagonals(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        k in -3i64..4,
    ) {
        // A matrix of the first two axes' chunks, a vector of the first's.
        if shape.len() >= 2 {
            let m = data(&shape[..2], seed);
            let a = from_ndarray(&m, vec![chunks[0].clone(), chunks[1].clone()]).unwrap();
            let got = diag(&a, k).unwrap().compute().unwrap();
            let (r0, c0) = if k >= 0 { (0, k as usize) } else { ((-k) as usize, 0) };
            let expected: Vec<f64> = (0..).map(|i| (i + r0, i + c0))
                .take_while(|&(r, c)| r < shape[0] && c < shape[1]).map(|(r, c)| m[[r, c]]).collect();
            prop_assert_eq!(got.into_raw_vec_and_offset().0, expected);
        }
        let v = data(&shape[..1], seed + 1);
        let a = from_ndarray(&v, vec![chunks[0].clone()]).unwrap();
        let n = shape[0] + k.unsigned_abs() as usize;
        let got = diag(&a, k).unwrap().compute().unwrap();
        let expected = ArrayD::from_shape_fn(IxDyn(&[n, n]), |at| {
            let (r, c) = (at[0] as i64, at[1] as i64);
            if c - r == k { v[[(r.min(c)) as usize]] } else { 0.0 }
        });
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn pad_equals_numpy_modes(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        width in 1usize..4,
    ) {
        prop_assume!(shape.iter().all(|&n| n > width));
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let w = [(width, width)];
        for (mode, name) in [(PadMode::Edge, "edge"), (PadMode::Reflect, "reflect"), (PadMode::Symmetric, "symmetric"), (PadMode::Wrap, "wrap")] {
            prop_assert_eq!(a.pad(&w, mode).unwrap().compute().unwrap(), oracle_pad(&x, width, name), "{}", name);
        }
        let constant = a.pad(&w, PadMode::Constant(7.0)).unwrap().compute().unwrap();
        let inner = constant.slice_each_axis(|ax| Slice::from(width..width + shape[ax.axis.index()]));
        prop_assert_eq!(inner.to_owned(), x.clone());
        // Everything outside the original is the constant.
        let mut rest = constant.clone();
        rest.slice_each_axis_mut(|ax| Slice::from(width..width + shape[ax.axis.index()])).fill(7.0);
        prop_assert!(rest.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn map_overlap_equals_the_stencil_on_the_whole_array(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
    ) {
        prop_assume!(shape.len() >= 2);
        let x = data(&shape[..2], seed);
        let a = from_ndarray(&x, vec![chunks[0].clone(), chunks[1].clone()]).unwrap();
        // No boundary, and zeros at the boundary: both give the clamped sum.
        for boundary in [None, Some(PadMode::Constant(0.0))] {
            let got = a.map_overlap(&[1], boundary, neighbourhood_sum).unwrap();
            prop_assert_eq!(got.chunks(), a.chunks());
            prop_assert!(close(&got.compute().unwrap(), &neighbourhood_sum(&x)));
        }
        // Wrap: the stencil of the periodic extension, cut back.
        if shape[0] > 1 && shape[1] > 1 {
            let got = a.map_overlap(&[1], Some(PadMode::Wrap), neighbourhood_sum).unwrap().compute().unwrap();
            let extended = oracle_pad(&x, 1, "wrap");
            let expected = neighbourhood_sum(&extended)
                .slice_each_axis(|ax| Slice::from(1..1 + shape[ax.axis.index()])).to_owned();
            prop_assert!(close(&got, &expected));
        }
    }
}
