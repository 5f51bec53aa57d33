//! Sparse arrays against dense `ndarray` oracles over random chunkings: conversions,
//! elementwise steps, reductions and products give the dense answers whatever the chunks;
//! results store no zeros; steps fuse; and what would not be sparse is refused.

use ndarray::{Array2, ArrayD, Axis, Ix2, IxDyn};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_array::sprs::CsMat;
use rask_array::SparseArray;
use rask_core::optimize::prepare;
use rask_core::{Collection, Optimizations};
use rask_local::ComputeExt;

mod common;
use common::{close, data, shape_and_chunks};

/// A 2-d shape with random chunks (empty ones too).
fn matrix_and_chunks() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>)> {
    shape_and_chunks().prop_filter("two axes", |(shape, _)| shape.len() == 2)
}

/// Data where most values are zero.
fn sparse_data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    data(shape, seed).mapv(|v| if v.abs() < 7.0 { 0.0 } else { v })
}

fn dense_of(m: &CsMat<f64>) -> ArrayD<f64> {
    m.to_dense().into_dyn()
}

fn no_stored_zeros(m: &CsMat<f64>) -> bool {
    m.data().iter().all(|&v| v != 0.0)
}

fn sparse(x: &ArrayD<f64>, chunks: &[Vec<usize>]) -> SparseArray<f64> {
    from_ndarray(x, chunks.to_vec()).unwrap().to_sparse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conversions_and_elementwise_steps_match_dense(
        (shape, chunks) in matrix_and_chunks(), seed in 0u64..1000,
    ) {
        let (x, y) = (sparse_data(&shape, seed), sparse_data(&shape, seed + 1));
        let (a, b) = (sparse(&x, &chunks), sparse(&y, &chunks));
        let back = a.compute().unwrap();
        prop_assert_eq!(back.nnz(), x.iter().filter(|&&v| v != 0.0).count());
        prop_assert_eq!(dense_of(&back), x.clone());
        prop_assert_eq!(a.to_dense().compute().unwrap(), x.clone());

        for (got, want) in [
            ((&a + &b).compute().unwrap(), &x + &y),
            ((&a - &b).compute().unwrap(), &x - &y),
            ((&a * &b).compute().unwrap(), &x * &y),
            ((&a - &a).compute().unwrap(), &x * 0.0),
            ((&a * 2.5).compute().unwrap(), &x * 2.5),
            (a.div_scalar(-4.0).unwrap().compute().unwrap(), &x / -4.0),
            (a.mul_dense(&from_ndarray(&y, [3, 2]).unwrap()).unwrap().compute().unwrap(), &x * &y),
            (a.map_values(|v: f64| v * v).unwrap().compute().unwrap(), x.mapv(|v| v * v)),
        ] {
            prop_assert!(close(&dense_of(&got), &want));
            prop_assert!(no_stored_zeros(&got), "a result stores zeros");
        }
        let sum = a.add_dense(&from_ndarray(&y, [2, 3]).unwrap()).unwrap().compute().unwrap();
        prop_assert!(close(&sum, &(&x + &y)));
        let t = a.t().compute().unwrap();
        prop_assert_eq!(dense_of(&t), x.t().to_owned());
    }

    #[test]
    fn rechunks_and_slices_match_dense(
        (shape, chunks) in matrix_and_chunks(),
        cuts in prop::collection::vec(prop::collection::vec(0usize..9, 0..3), 2),
        bounds in prop::collection::vec(-10i64..10, 4), seed in 0u64..1000,
        steps in prop::collection::vec(prop::sample::select(vec![-3i64, -2, -1, 1, 2, 3]), 2),
    ) {
        let x = sparse_data(&shape, seed);
        let a = sparse(&x, &chunks);
        // Another random chunking of the same shape.
        let wanted: Vec<Vec<usize>> = shape.iter().zip(&cuts).map(|(&n, cuts)| {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (n + 1)).collect();
            at.extend([0, n]);
            at.sort_unstable();
            at.windows(2).map(|w| w[1] - w[0]).collect()
        }).collect();
        let moved = a.rechunk(wanted.clone()).unwrap();
        prop_assert_eq!(moved.chunks().per_axis(), &wanted);
        let got = moved.compute().unwrap();
        prop_assert_eq!(dense_of(&got), x.clone());
        prop_assert!(no_stored_zeros(&got));
        prop_assert_eq!(moved.to_dense().compute().unwrap(), x.clone());

        let index = [Index::range(bounds[0]..bounds[1]), Index::slice(Some(bounds[2]), None, 1)];
        let stepped = [
            Index::slice(Some(bounds[0]), Some(bounds[1]), steps[0]),
            Index::slice(None, Some(bounds[3]), steps[1]),
        ];
        for index in [&index[..], &stepped[..]] {
            let dense_slice = from_ndarray(&x, chunks.clone()).unwrap().slice(index).unwrap();
            let sliced = a.slice(index).unwrap();
            prop_assert_eq!(sliced.shape(), dense_slice.shape());
            let got = sliced.compute().unwrap();
            prop_assert!(no_stored_zeros(&got));
            prop_assert!(got.is_csr() && got.check_compressed_structure().is_ok());
            prop_assert_eq!(dense_of(&got), dense_slice.compute().unwrap());
        }
    }

    #[test]
    fn reductions_match_dense((shape, chunks) in matrix_and_chunks(), seed in 0u64..1000) {
        let x = sparse_data(&shape, seed);
        let a = sparse(&x, &chunks);
        for axis in [0usize, 1] {
            prop_assert!(close(&a.sum(axis).unwrap().compute().unwrap(), &x.sum_axis(Axis(axis))));
            let counts = a.count_nonzero(axis).unwrap().compute().unwrap();
            let want = x.map_axis(Axis(axis), |lane| lane.iter().filter(|&&v| v != 0.0).count() as i64);
            prop_assert_eq!(counts, want);
            if shape[axis] > 0 {
                let mean = a.mean(axis).unwrap().compute().unwrap();
                prop_assert!(close(&mean, &x.mean_axis(Axis(axis)).unwrap()));
            }
        }
        let total = a.sum([0, 1]).unwrap().compute().unwrap();
        prop_assert!(close(&total, &ArrayD::from_elem(IxDyn(&[]), x.sum())));
        let kept = a.sum(Axes::from(1).keepdims()).unwrap().compute().unwrap();
        prop_assert_eq!(kept.shape(), &[shape[0], 1]);
    }

    #[test]
    fn products_match_dense(
        (shape, chunks) in matrix_and_chunks(), k in 1usize..6, seed in 0u64..1000,
    ) {
        let x = sparse_data(&shape, seed);
        let a = sparse(&x, &chunks);
        let x2 = x.view().into_dimensionality::<Ix2>().unwrap();
        // sparse @ dense, with a right operand chunked unlike the left's columns.
        let d = data(&[shape[1], k], seed + 2);
        let d2 = d.view().into_dimensionality::<Ix2>().unwrap();
        let got = a.matmul(&from_ndarray(&d, [4, 2]).unwrap()).unwrap().compute().unwrap();
        prop_assert!(close(&got, &x2.dot(&d2).into_dyn()));
        // dense @ sparse.
        let e = data(&[k, shape[0]], seed + 3);
        let e2 = e.view().into_dimensionality::<Ix2>().unwrap();
        let got = from_ndarray(&e, [2, 5]).unwrap().matmul_sparse(&a).unwrap().compute().unwrap();
        prop_assert!(close(&got, &e2.dot(&x2).into_dyn()));
        // sparse @ sparse: aᵀ's row chunks are a's column chunks... of the other side.
        let gram = a.t().matmul_sparse(&a).unwrap().compute().unwrap();
        prop_assert!(close(&dense_of(&gram), &x2.t().dot(&x2).into_dyn()));
    }
}

fn lowered_tasks(graph: &rask_core::Graph, keys: &[rask_core::Key]) -> usize {
    prepare(graph, keys, &Optimizations::default()).unwrap().len()
}

#[test]
fn sparse_elementwise_steps_fuse_into_one_task_per_chunk() {
    let x = rask_array::random::random(&[100, 100], [25, 50], 7).unwrap();
    let s = x.mask_assign(&x.compare_scalar(CompareOp::Lt, 0.9), 0.0).unwrap().to_sparse().unwrap();
    let y = (&(&s * 2.0) + &s).map_values(|v: f64| v.sqrt()).unwrap().to_dense();
    assert_eq!(lowered_tasks(&y.graph(), &y.output_keys()), 8, "one task per chunk");
    let shown = s.to_string();
    assert!(shown.starts_with("rask.sparse<to-sparse, shape=(100, 100), dtype=float64"), "{shown}");
    assert!(shown.contains("chunksize=(25, 50), chunks=8, format=csr"), "{shown}");
    // About a tenth of the values survive the mask.
    let stored = s.count_nonzero([0, 1]).unwrap().compute().unwrap().first().copied().unwrap();
    assert!((600..1400).contains(&stored), "{stored} values stored");
}

#[test]
fn a_closure_builds_sparse_chunks_and_integers_work() {
    let x: Array<i64> =
        arange(0, 24, 1, [24]).unwrap().reshape(&[4, 6]).unwrap().rechunk([2, 3]).unwrap();
    let s = x
        .map_blocks_sparse(|chunk: &ArrayD<i64>| {
            let m = chunk
                .view()
                .into_dimensionality::<Ix2>()
                .unwrap()
                .mapv(|v| v * (v % 5 == 0) as i64);
            CsMat::csr_from_dense(m.view(), 0)
        })
        .unwrap();
    let want = Array2::from_shape_fn((4, 6), |(r, c)| {
        let v = (r * 6 + c) as i64;
        if v % 5 == 0 {
            v
        } else {
            0
        }
    });
    assert_eq!(s.compute().unwrap().to_dense(), want);
    assert_eq!(s.sum([0, 1]).unwrap().compute().unwrap().first().copied().unwrap(), want.sum());
    let gram = s.matmul(&x.t()).unwrap().compute().unwrap();
    let dense = x.compute().unwrap().into_dimensionality::<Ix2>().unwrap();
    assert_eq!(gram.into_dimensionality::<Ix2>().unwrap(), want.dot(&dense.t()));
    // The same chunks built in COO form (triplets, in any order), returned as CSR.
    let from_triplets = x
        .map_blocks_sparse(|chunk: &ArrayD<i64>| {
            let m = chunk.view().into_dimensionality::<Ix2>().unwrap();
            let mut coo = rask_array::sprs::TriMat::new(m.dim());
            for ((r, c), &v) in m.indexed_iter().collect::<Vec<_>>().into_iter().rev() {
                if v % 5 == 0 && v != 0 {
                    coo.add_triplet(r, c, v);
                }
            }
            coo.to_csr()
        })
        .unwrap();
    assert_eq!(from_triplets.compute().unwrap().to_dense(), want);
}

#[test]
fn what_would_not_be_sparse_is_refused_with_the_fix() {
    let x = from_ndarray(&ndarray::arr2(&[[0.0, 1.0], [2.0, 0.0]]), [1, 2]).unwrap();
    let s = x.to_sparse().unwrap();
    let err = s.map_values(|v: f64| v + 1.0).unwrap_err().to_string();
    assert!(err.contains("f(0) = 1") && err.contains("to_dense()"), "{err}");
    let err = s.div_scalar(0.0).unwrap_err().to_string();
    assert!(err.contains("divided by zero") && err.contains("to_dense()"), "{err}");
    // 0 × NaN is NaN: the product with a dense NaN where the sparse array is zero fails.
    let nan = from_ndarray(&ndarray::arr2(&[[f64::NAN, 1.0], [1.0, 1.0]]), [2, 2]).unwrap();
    let err = s.mul_dense(&nan).unwrap().compute().unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("to_dense()"), "{err}");
    // ... but a NaN where a value is stored is an ordinary product.
    let nan_at_stored =
        from_ndarray(&ndarray::arr2(&[[1.0, f64::NAN], [1.0, 1.0]]), [2, 2]).unwrap();
    let got = s.mul_dense(&nan_at_stored).unwrap().compute().unwrap();
    assert!(got.get(0, 1).unwrap().is_nan());

    let other = x.rechunk([2, 1]).unwrap().to_sparse().unwrap();
    let err = s.zip_with(&other, rask_array::SparseOp::Add).unwrap_err().to_string();
    assert!(err.contains("same chunks") && err.contains("before to_sparse"), "{err}");
    let cube = rask_array::zeros::<f64>(&[2, 2, 2], [1, 1, 1]).unwrap();
    let err = cube.to_sparse().unwrap_err().to_string();
    assert!(err.contains("2-d") && err.contains("[2, 2, 2]"), "{err}");
    let wide = rask_array::zeros::<f64>(&[3, 3], [3, 3]).unwrap();
    let err = s.matmul(&wide).unwrap_err().to_string();
    assert!(err.contains("[2, 2]") && err.contains("[3, 3]"), "{err}");
    let err = s.mul_dense(&wide).unwrap_err().to_string();
    assert!(err.contains("do not broadcast"), "{err}");
}

#[test]
fn a_sparse_slice_reads_only_its_chunks_and_refuses_to_drop_an_axis() {
    let x = sparse_data(&[40, 30], 3);
    let a = sparse(&x, &[vec![10; 4], vec![10; 3]]);
    let sliced = a.slice(&[Index::range(12..18)]).unwrap();
    // Rows 12..18 lie in chunk row 1: the slice's graph holds no other input chunk.
    assert_eq!(sliced.chunks().per_axis(), &[vec![6], vec![10, 10, 10]]);
    let tasks = lowered_tasks(&sliced.graph(), &sliced.output_keys());
    assert!(tasks <= 3 + 3, "{tasks} tasks for 3 output chunks of 3 input chunks");
    assert_eq!(
        dense_of(&sliced.compute().unwrap()),
        x.slice_axis(Axis(0), ndarray::Slice::from(12..18)).to_owned()
    );
    // Every other row backwards, from the second chunk row: still only that chunk row.
    let stepped = a.slice(&[Index::slice(Some(18), Some(11), -2)]).unwrap();
    assert_eq!(stepped.chunks().per_axis(), &[vec![4], vec![10, 10, 10]]);
    let tasks = lowered_tasks(&stepped.graph(), &stepped.output_keys());
    assert!(tasks <= 3 + 3, "{tasks} tasks for 3 output chunks of 3 input chunks");
    assert_eq!(
        dense_of(&stepped.compute().unwrap()),
        x.slice_axis(Axis(0), ndarray::Slice::new(12, Some(19), -2)).to_owned()
    );
    let err = a.slice(&[Index::Full, Index::At(3)]).err().unwrap().to_string();
    assert!(err.contains("Index::range(3..4)") && err.contains("to_dense"), "{err}");
    let err = a.slice(&[Index::NewAxis]).err().unwrap().to_string();
    assert!(err.contains("keeps both axes"), "{err}");
    let err = a.slice(&[Index::range(0..2), Index::Full, Index::Full]).err().unwrap().to_string();
    assert!(err.contains("3 indices"), "{err}");
}
