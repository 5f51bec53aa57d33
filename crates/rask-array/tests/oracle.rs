//! Every operation against `ndarray` on the whole data, over random chunkings: results never
//! depend on how the array is cut (property tests), with empty chunks and 0-d arrays.

use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_array::{c64, Chunks};
use rask_local::ComputeExt;

mod common;
use common::{close, data, shape_and_chunks};

/// The ndarray oracle of a reduction over a set of axes (folded one axis at a time, from the
/// last so the axis numbers stay valid).
fn oracle_reduce(
    x: &ArrayD<f64>,
    axes: &[usize],
    keepdims: bool,
    f: impl Fn(ndarray::ArrayViewD<'_, f64>) -> f64,
) -> ArrayD<f64> {
    let mut shape = x.shape().to_vec();
    for &a in axes {
        shape[a] = 1;
    }
    let out = ArrayD::from_shape_fn(IxDyn(&shape), |at| {
        let view = x.slice_each_axis(|axis| {
            let a = axis.axis.index();
            if axes.contains(&a) {
                ndarray::Slice::from(..)
            } else {
                ndarray::Slice::from(at[a]..at[a] + 1)
            }
        });
        f(view)
    });
    if keepdims {
        out
    } else {
        let kept: Vec<usize> =
            shape.iter().enumerate().filter(|(a, _)| !axes.contains(a)).map(|(_, &n)| n).collect();
        out.into_shape_with_order(IxDyn(&kept)).unwrap()
    }
}

fn axes_subset(ndim: usize, mask: u8) -> Vec<usize> {
    (0..ndim).filter(|a| mask & (1 << a) != 0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn chunks_round_trip_and_rechunk_keeps_every_value(
        (shape, chunks) in shape_and_chunks(),
        (_, other) in shape_and_chunks(),
        seed in 0u64..1000,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks.clone()).unwrap();
        prop_assert_eq!(a.compute().unwrap(), x.clone());
        // Rechunk into chunks made for another shape, refitted to this one.
        let refit: Vec<Vec<usize>> = shape.iter().zip(other.iter().cycle()).map(|(&n, c)| {
            let size = c.iter().copied().max().unwrap_or(1).max(1);
            let mut v = vec![size; n / size];
            if n % size != 0 || n == 0 { v.push(n % size); }
            v
        }).collect();
        let b = a.rechunk(refit.clone()).unwrap();
        prop_assert_eq!(b.chunks().per_axis(), refit.as_slice());
        prop_assert_eq!(b.compute().unwrap(), x.clone());
        // With a tiny bound on what a task holds the planner adds a stage; the values stay.
        let bounded = a.rechunk_bounded(refit.clone(), 64).unwrap();
        prop_assert_eq!(bounded.chunks().per_axis(), refit.as_slice());
        prop_assert_eq!(bounded.compute().unwrap(), x);
        let plan = rask_array::rechunk_plan::plan(a.chunks().per_axis(), &refit, 8, 64);
        let direct = rask_array::rechunk_plan::task_input_bytes(a.chunks().per_axis(), &refit, 8);
        prop_assert!(plan.worst_task_bytes <= direct);
        for stage in &plan.stages {
            prop_assert!(rask_array::rechunk_plan::task_input_bytes(a.chunks().per_axis(), stage, 8) <= plan.worst_task_bytes);
            prop_assert!(rask_array::rechunk_plan::task_input_bytes(stage, &refit, 8) <= plan.worst_task_bytes);
        }
    }

    #[test]
    fn reductions_equal_ndarray_over_any_axes(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        mask in 0u8..8,
        keepdims in any::<bool>(),
        split_every in 2usize..5,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let axes = axes_subset(shape.len(), mask);
        let spec = || {
            let s = Axes::from(axes.as_slice()).split_every(split_every);
            if keepdims { s.keepdims() } else { s }
        };
        let sum = oracle_reduce(&x, &axes, keepdims, |v| v.sum());
        prop_assert!(close(&a.sum(spec()).unwrap().compute().unwrap(), &sum));
        let count = |v: &ndarray::ArrayViewD<'_, f64>| v.len() as f64;
        let mean = oracle_reduce(&x, &axes, keepdims, |v| if v.is_empty() { f64::NAN } else { v.sum() / count(&v) });
        prop_assert!(close(&a.mean(spec()).unwrap().compute().unwrap(), &mean));
        let var = oracle_reduce(&x, &axes, keepdims, |v| {
            let n = count(&v);
            if n <= 1.0 { return f64::NAN; }
            let m = v.sum() / n;
            v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
        });
        prop_assert!(close(&a.var(spec(), 1).unwrap().compute().unwrap(), &var));
        let nonempty = axes.iter().all(|&ax| shape[ax] > 0);
        if nonempty {
            let min = oracle_reduce(&x, &axes, keepdims, |v| v.iter().copied().fold(f64::INFINITY, f64::min));
            prop_assert!(close(&a.min(spec()).unwrap().compute().unwrap(), &min));
            let max = oracle_reduce(&x, &axes, keepdims, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            prop_assert!(close(&a.max(spec()).unwrap().compute().unwrap(), &max));
        } else {
            prop_assert!(a.min(spec()).is_err());
        }
        let any = oracle_reduce(&x, &axes, keepdims, |v| f64::from(u8::from(v.iter().any(|&x| x != 0.0))));
        prop_assert!(close(&a.any(spec()).unwrap().compute().unwrap().mapv(|b| f64::from(u8::from(b))), &any));
    }

    #[test]
    fn argmin_and_argmax_along_an_axis_give_the_first_extreme(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        axis_pick in 0usize..3,
    ) {
        // Few distinct values: ties are common, and the first index must win.
        let x = data(&shape, seed).mapv(|v| (v / 5.0).round());
        let axis = axis_pick % shape.len();
        prop_assume!(shape[axis] > 0);
        let a = from_ndarray(&x, chunks).unwrap();
        let expected_min = x.map_axis(Axis(axis), |lane| {
            let m = lane.iter().copied().fold(f64::INFINITY, f64::min);
            lane.iter().position(|&v| v == m).unwrap() as i64
        });
        prop_assert_eq!(a.argmin(axis).unwrap().compute().unwrap(), expected_min);
        let expected_max = x.map_axis(Axis(axis), |lane| {
            let m = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            lane.iter().position(|&v| v == m).unwrap() as i64
        });
        prop_assert_eq!(a.argmax(axis).unwrap().compute().unwrap(), expected_max);
        if !x.is_empty() {
            let flat: Vec<f64> = x.iter().copied().collect();
            let m = flat.iter().copied().fold(f64::INFINITY, f64::min);
            let expected = flat.iter().position(|&v| v == m).unwrap() as i64;
            let got = a.argmin(Axes::all()).unwrap().compute().unwrap();
            prop_assert_eq!(got.iter().next().copied(), Some(expected));
        }
    }

    #[test]
    fn elementwise_chains_and_broadcasting_equal_ndarray(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
    ) {
        let x = data(&shape, seed);
        let y = data(&shape, seed + 1);
        let a = from_ndarray(&x, chunks.clone()).unwrap();
        // y in other chunks: the second operand is rechunked to the first's.
        let b = from_ndarray(&y, shape.iter().map(|&n| n.max(1)).collect::<Vec<_>>().as_slice()).unwrap();
        let got = ((&(&a + &b) * 2.0) - &a).maximum(&b).unwrap().abs().compute().unwrap();
        let expected = Zip3::apply(&x, &y);
        prop_assert!(close(&got, &expected));
        // A row of the last axis broadcast over the rest.
        let last = *shape.last().unwrap();
        let row = ArrayD::from_shape_fn(IxDyn(&[last]), |i| i[0] as f64);
        let broadcast = a.zip_with_ndarray(&row, rask_array::BinaryOp::Sub).unwrap().compute().unwrap();
        prop_assert!(close(&broadcast, &(&x - &row)));
        // Comparisons and where.
        let mask = a.compare_scalar(CompareOp::Lt, 0.0);
        let zeroed = a.mask_assign(&mask, 0.0).unwrap().compute().unwrap();
        let clipped = x.mapv(|v| if v < 0.0 { 0.0 } else { v });
        prop_assert!(close(&zeroed, &clipped));
        let chosen = where_(&mask, &a, &b).unwrap().compute().unwrap();
        let expected = ndarray::Zip::from(&x).and(&y).map_collect(|&u, &v| if u < 0.0 { u } else { v });
        prop_assert!(close(&chosen, &expected));
        prop_assert_eq!(a.astype::<i32>().compute().unwrap(), x.mapv(|v| v as i32));
    }

    #[test]
    fn slices_with_any_step_equal_python_slicing(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        start in prop::option::of(-10i64..10),
        stop in prop::option::of(-10i64..10),
        step in prop::sample::select(vec![-3i64, -2, -1, 1, 2, 3]),
        at in -9i64..9,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let n = shape[0] as i64;
        // The reference: Python's slice rules, written out.
        let norm = |v: i64| if v < 0 { v + n } else { v };
        let positions: Vec<usize> = if step > 0 {
            let lo = start.map_or(0, |s| norm(s).clamp(0, n));
            let hi = stop.map_or(n, |s| norm(s).clamp(0, n));
            (lo..hi).step_by(step as usize).map(|i| i as usize).collect()
        } else {
            let hi = start.map_or(n - 1, |s| norm(s).clamp(-1, n - 1));
            let lo = stop.map_or(-1, |s| norm(s).clamp(-1, n - 1));
            let mut v = Vec::new();
            let mut i = hi;
            while i > lo { v.push(i as usize); i += step; }
            v
        };
        let got = a.slice(&[Index::slice(start, stop, step)]).unwrap().compute().unwrap();
        prop_assert_eq!(got, x.select(Axis(0), &positions));
        // The same slice moved in front of an elementwise chain (and an integer index after it).
        let chain = &(&(&a * 2.0) + &a).abs() - 1.0;
        let moved = chain.slice(&[Index::slice(start, stop, step)]).unwrap();
        let want = x.select(Axis(0), &positions).mapv(|v| (v * 2.0 + v).abs() - 1.0);
        prop_assert_eq!(moved.compute().unwrap(), want.clone());
        if shape.len() > 1 && shape[1] > 0 {
            let twice = moved.slice(&[Index::Full, Index::At(-1)]).unwrap().compute().unwrap();
            prop_assert_eq!(twice, want.index_axis(Axis(1), shape[1] - 1).to_owned());
        }
        // An integer index drops the axis; out of range is an error naming the axis.
        let p = if at < 0 { at + n } else { at };
        if p >= 0 && p < n {
            prop_assert_eq!(a.slice(&[Index::At(at)]).unwrap().compute().unwrap(), x.index_axis(Axis(0), p as usize).to_owned());
        } else {
            let err = a.slice(&[Index::At(at)]).unwrap_err().to_string();
            prop_assert!(err.contains("axis 0") && err.contains(&format!("{}", shape[0])), "{}", err);
        }
        // take() along the last axis with repeats and negative positions.
        let last = shape.len() - 1;
        if shape[last] > 0 {
            let m = shape[last] as i64;
            let picks = [m - 1, 0, -1, (m / 2)];
            let resolved: Vec<usize> = picks.iter().map(|&i| if i < 0 { (i + m) as usize } else { i as usize }).collect();
            prop_assert_eq!(a.take(&picks, last as isize).unwrap().compute().unwrap(), x.select(Axis(last), &resolved));
        }
        // A new axis in front.
        prop_assert_eq!(a.slice(&[Index::NewAxis]).unwrap().compute().unwrap(), x.clone().insert_axis(Axis(0)));
    }

    #[test]
    fn matmul_and_transpose_equal_ndarray(
        rows in 0usize..7, inner in 1usize..7, cols in 0usize..7,
        r in 1usize..4, i in 1usize..4, c in 1usize..4, j in 1usize..4,
        seed in 0u64..100,
    ) {
        let x = data(&[rows, inner], seed).into_dimensionality::<ndarray::Ix2>().unwrap();
        let y = data(&[inner, cols], seed + 7).into_dimensionality::<ndarray::Ix2>().unwrap();
        let a = from_ndarray(&x, [r, i]).unwrap();
        // Other chunks along the shared axis: matmul rechunks the right side.
        let b = from_ndarray(&y, [j, c]).unwrap();
        let got = a.matmul(&b).unwrap().compute().unwrap();
        prop_assert!(close(&got, &x.dot(&y).into_dyn()));
        prop_assert_eq!(a.t().compute().unwrap(), x.t().to_owned().into_dyn());
    }
}

/// `abs(max((x + y) * 2 - x, y))` elementwise.
struct Zip3;
impl Zip3 {
    fn apply(x: &ArrayD<f64>, y: &ArrayD<f64>) -> ArrayD<f64> {
        ndarray::Zip::from(x).and(y).map_collect(|&u, &v| (((u + v) * 2.0) - u).max(v).abs())
    }
}

#[test]
fn zero_dimensional_arrays_compute_and_reduce() {
    let x = ArrayD::from_elem(IxDyn(&[]), 2.5f64);
    let a = from_ndarray(&x, Vec::<Vec<usize>>::new()).unwrap();
    assert_eq!(a.compute().unwrap(), x);
    assert_eq!((&a * 2.0).compute().unwrap(), ArrayD::from_elem(IxDyn(&[]), 5.0));
    assert_eq!(a.sum(Axes::all()).unwrap().compute().unwrap(), ArrayD::from_elem(IxDyn(&[]), 2.5));
}

#[test]
fn the_variance_of_data_with_a_large_offset_is_exact() {
    // 1e9 + {0, 1, 2, 3} repeated: E[x²] − E[x]² would lose every digit; merged moments keep them.
    let x = ArrayD::from_shape_fn(IxDyn(&[4000]), |i| 1e9 + (i[0] % 4) as f64);
    let a = from_ndarray(&x, [7]).unwrap();
    let var = a.var(Axes::all(), 0).unwrap().compute().unwrap();
    let v = *var.iter().next().unwrap();
    assert!((v - 1.25).abs() < 1e-6, "variance {v}, expected 1.25");
    let std = a.std(0, 1).unwrap().compute().unwrap();
    let expected = (1.25f64 * 4000.0 / 3999.0).sqrt();
    assert!((std.iter().next().unwrap() - expected).abs() < 1e-6);
}

#[test]
fn creation_functions_match_numpy() {
    let r = arange(0i64, 10, 3, 2).unwrap().compute().unwrap();
    assert_eq!(r.as_slice().unwrap(), &[0, 3, 6, 9]);
    let r = arange(10i64, 0, -3, 2).unwrap().compute().unwrap();
    assert_eq!(r.as_slice().unwrap(), &[10, 7, 4, 1]);
    // Float steps: ceil((stop - start) / step) elements, exactly as NumPy counts them — which
    // for arange(1.0, 1.3, 0.1) is 4 (0.3 / 0.1 is 3.0000000000000004), the end included.
    let f = arange(0.0f64, 1.0, 0.1, 3).unwrap();
    assert_eq!(f.shape(), [10]);
    assert_eq!(arange(1.0f64, 1.3, 0.1, 3).unwrap().shape(), [4]);
    let l = linspace(0.0, 1.0, 5, true, 2).unwrap().compute().unwrap();
    assert_eq!(l.as_slice().unwrap(), &[0.0, 0.25, 0.5, 0.75, 1.0]);
    let e = rask_array::eye::<i32>(4, Some(5), 1, 2).unwrap().compute().unwrap();
    let expected = ArrayD::from_shape_fn(IxDyn(&[4, 5]), |i| i32::from(i[1] == i[0] + 1));
    assert_eq!(e, expected);
    assert_eq!(
        ones::<u8>(&[3, 2], 2).unwrap().compute().unwrap(),
        ArrayD::from_elem(IxDyn(&[3, 2]), 1u8)
    );
    assert!(arange(0i64, 10, 0, 2).unwrap_err().to_string().contains("step"));
}

#[test]
fn random_arrays_are_the_same_for_the_same_seed_and_chunks() {
    let a = random::random(&[50, 40], [16, 16], 7).unwrap().compute().unwrap();
    let b = random::random(&[50, 40], [16, 16], 7).unwrap().compute().unwrap();
    let c = random::random(&[50, 40], [16, 16], 8).unwrap().compute().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|&v| (0.0..1.0).contains(&v)));
    let mean = a.mean().unwrap();
    assert!((mean - 0.5).abs() < 0.05, "uniform mean {mean}");
    let n = random::normal(3.0, 2.0, &[20_000], [5000], 1).unwrap().compute().unwrap();
    let m = n.mean().unwrap();
    let s = n.std(0.0);
    assert!((m - 3.0).abs() < 0.05 && (s - 2.0).abs() < 0.05, "normal mean {m} std {s}");
    let k = random::integers::<u8>(0, 256, &[10_000], [999], 3).unwrap().compute().unwrap();
    assert!(k.iter().any(|&v| v == 255) && k.iter().any(|&v| v == 0));
    assert!(random::integers::<u8>(5, 5, &[3], [3], 0).is_err());
}

#[test]
fn fft_equals_a_direct_dft_and_its_inverse_gives_the_input_back() {
    let x = data(&[6, 8], 3);
    let a = from_ndarray(&x, [2, 8]).unwrap();
    let f = a.fft(1).unwrap().compute().unwrap();
    for row in 0..6 {
        for k in 0..8 {
            let mut expected = c64::new(0.0, 0.0);
            for t in 0..8 {
                let angle = -2.0 * std::f64::consts::PI * (k * t) as f64 / 8.0;
                expected += c64::new(angle.cos(), angle.sin()) * x[[row, t]];
            }
            assert!((f[[row, k]] - expected).norm() < 1e-9);
        }
    }
    let back = a.fft(1).unwrap().ifft(1).unwrap().compute().unwrap();
    assert!(back.iter().zip(x.iter()).all(|(c, &v)| (c.re - v).abs() < 1e-9 && c.im.abs() < 1e-9));
    let r = a.rfft(1).unwrap();
    assert_eq!(r.shape(), [6, 5]);
    let round = r.irfft(1, Some(8)).unwrap().compute().unwrap();
    assert!(close(&round, &x));
    let freq = rask_array::fft::fftfreq(5, 0.5).unwrap().compute().unwrap();
    assert_eq!(freq.as_slice().unwrap(), &[0.0, 0.4, 0.8, -0.8, -0.4]);
}

#[test]
fn chunks_state_their_shape_and_count() {
    let chunks = Chunks::new(&[5, 4], vec![vec![2, 3], vec![4]]).unwrap();
    assert_eq!(chunks.count(), 2);
    assert_eq!(chunks.block_shape(&[1, 0]), [3, 4]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reshape_keeps_row_major_order_over_any_chunks(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        split in 1usize..4,
    ) {
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let total = x.len();
        // Flat, then split into (split, -1) when it divides, then back.
        let flat = a.ravel().unwrap();
        prop_assert_eq!(flat.compute().unwrap(), ArrayD::from_shape_vec(IxDyn(&[total]), x.iter().copied().collect()).unwrap());
        if total % split == 0 && total > 0 {
            let two = a.reshape(&[split as isize, -1]).unwrap();
            let expected = x.clone().into_shape_with_order(IxDyn(&[split, total / split])).unwrap();
            prop_assert_eq!(two.compute().unwrap(), expected);
            let back = two.reshape(&shape.iter().map(|&n| n as isize).collect::<Vec<_>>()).unwrap();
            prop_assert_eq!(back.compute().unwrap(), x.clone());
        }
        let wrong = a.reshape(&[total as isize + 1]).unwrap_err().to_string();
        prop_assert!(wrong.contains(&format!("{shape:?}")), "{}", wrong);
    }

    #[test]
    fn joins_and_axis_moves_equal_ndarray(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
    ) {
        let x = data(&shape, seed);
        let y = data(&shape, seed + 3);
        let a = from_ndarray(&x, chunks.clone()).unwrap();
        let b = from_ndarray(&y, shape.iter().map(|&n| n.max(1)).collect::<Vec<_>>().as_slice()).unwrap();
        let joined = rask_array::concatenate(&[a.clone(), b.clone()], 0).unwrap().compute().unwrap();
        prop_assert_eq!(joined, ndarray::concatenate(Axis(0), &[x.view(), y.view()]).unwrap());
        let stacked = rask_array::stack(&[a.clone(), b.clone()], -1).unwrap().compute().unwrap();
        prop_assert_eq!(stacked, ndarray::stack(Axis(shape.len()), &[x.view(), y.view()]).unwrap());
        let moved = a.moveaxis(0, -1).unwrap().compute().unwrap();
        let mut order: Vec<usize> = (1..shape.len()).collect();
        order.push(0);
        prop_assert_eq!(moved, x.clone().permuted_axes(IxDyn(&order)).as_standard_layout().into_owned());
        let expanded = a.expand_dims(1).unwrap();
        prop_assert_eq!(expanded.compute().unwrap(), x.clone().insert_axis(Axis(1)));
        prop_assert_eq!(expanded.squeeze(&[1]).unwrap().compute().unwrap(), x.clone());
        let mut target = vec![2];
        target.extend(shape.iter().copied());
        let broadcast = a.broadcast_to(&target).unwrap().compute().unwrap();
        prop_assert_eq!(broadcast, x.broadcast(IxDyn(&target)).unwrap().to_owned());
    }
}

#[test]
fn block_joins_a_grid_of_arrays() {
    let p = |v: f64, r: usize, c: usize| rask_array::full(&[r, c], v, 2).unwrap();
    let joined =
        rask_array::block(&[vec![p(1.0, 2, 3), p(2.0, 2, 1)], vec![p(3.0, 1, 4)]]).unwrap();
    let got = joined.compute().unwrap();
    assert_eq!(got.shape(), &[3, 4]);
    assert_eq!(got[[0, 3]], 2.0);
    assert_eq!(got[[2, 0]], 3.0);
    let err = rask_array::concatenate(&[p(1.0, 2, 3), p(1.0, 2, 2)], 0).unwrap_err().to_string();
    assert!(err.contains("[2, 2]") && err.contains("[2, 3]"), "{err}");
    let err = p(1.0, 2, 3).squeeze(&[0]).unwrap_err().to_string();
    assert!(err.contains("axis 0") && err.contains("length 2"), "{err}");
}
