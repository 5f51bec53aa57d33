//! User functions over blocks (`blockwise` in index notation), the bridge to `Delayed`, and
//! `tensordot`, against `ndarray` oracles over random chunkings.

use ndarray::{ArrayD, Ix2, IxDyn};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_array::{blockwise, from_delayed};
use rask_core::Delayed;
use rask_local::ComputeExt;

mod common;
use common::{close, data, shape_and_chunks};

fn cuts(n: usize, size: usize) -> Vec<usize> {
    let size = size.max(1);
    let mut v = vec![size; n / size];
    if n % size != 0 || n == 0 {
        v.push(n % size);
    }
    v
}

fn matrix_product(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let a = a.view().into_dimensionality::<Ix2>().unwrap();
    let b = b.view().into_dimensionality::<Ix2>().unwrap();
    a.dot(&b).into_dyn()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn blockwise_contracts_transposes_and_aligns(
        n in 0usize..7, m in 1usize..7, p in 0usize..7,
        (ca, cb, cc) in (1usize..4, 1usize..4, 1usize..4),
        seed in 0u64..1000,
    ) {
        let x = data(&[n, m], seed);
        let y = data(&[m, p], seed + 1);
        let a = from_ndarray(&x, vec![cuts(n, ca), cuts(m, cb)]).unwrap();
        // The right side in other chunks along j: rechunked to the left's.
        let b = from_ndarray(&y, vec![cuts(m, cc), cuts(p, ca)]).unwrap();
        let product = blockwise("ik", &[(&a, "ij"), (&b, "jk")], |blocks| matrix_product(blocks[0], blocks[1])).unwrap();
        prop_assert_eq!(product.chunks().per_axis()[0].clone(), cuts(n, ca));
        prop_assert!(close(&product.compute().unwrap(), &matrix_product(&x, &y)));
        // A transpose and an aligned sum: "ji" of a, plus "ji" of a again.
        let twice = blockwise("ji", &[(&a, "ij"), (&a, "ij")], |blocks| (blocks[0] + blocks[1]).reversed_axes()).unwrap();
        prop_assert_eq!(twice.compute().unwrap(), (&x + &x).reversed_axes());
    }

    /// Two contracted indices in one input (`"ijk", "jk" -> "i"`): each task sees the whole
    /// `(j, k)` grid of both inputs joined, in any chunking, with the inputs' chunks along
    /// `j` and `k` differing (the second is rechunked to the first's).
    #[test]
    fn blockwise_joins_several_contracted_indices(
        (n, m, p) in (0usize..6, 1usize..6, 1usize..6),
        (ci, cj, ck, cw) in (1usize..4, 1usize..4, 1usize..4, 1usize..4),
        seed in 0u64..1000,
    ) {
        let x = data(&[n, m, p], seed);
        let w = data(&[m, p], seed + 1);
        let a = from_ndarray(&x, vec![cuts(n, ci), cuts(m, cj), cuts(p, ck)]).unwrap();
        let b = from_ndarray(&w, vec![cuts(m, cw), cuts(p, cw)]).unwrap();
        let weighted = blockwise("i", &[(&a, "ijk"), (&b, "jk")], |blocks| {
            let (x, w) = (blocks[0], blocks[1]);
            assert_eq!(&x.shape()[1..], w.shape(), "whole (j, k) grids joined");
            ArrayD::from_shape_fn(IxDyn(&[x.shape()[0]]), |i| {
                (&x.index_axis(ndarray::Axis(0), i[0]) * w).sum()
            })
        })
        .unwrap();
        let want = ArrayD::from_shape_fn(IxDyn(&[n]), |i| {
            (&x.index_axis(ndarray::Axis(0), i[0]) * &w).sum()
        });
        prop_assert!(close(&weighted.compute().unwrap(), &want));
    }

    #[test]
    fn tensordot_equals_the_sum_of_products(
        (shape, chunks) in shape_and_chunks(),
        seed in 0u64..1000,
        pairs in 1usize..3,
    ) {
        prop_assume!(shape.len() >= pairs);
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        // Contract the last `pairs` axes of x with the first ones of y (y: those axes, then 2).
        let contracted: Vec<usize> = shape[shape.len() - pairs..].to_vec();
        let mut y_shape = contracted.clone();
        y_shape.push(2);
        let y = data(&y_shape, seed + 7);
        let b = from_ndarray(&y, 2).unwrap();
        let left: Vec<isize> = (shape.len() - pairs..shape.len()).map(|a| a as isize).collect();
        let right: Vec<isize> = (0..pairs).map(|a| a as isize).collect();
        let got = a.tensordot(&b, (&left, &right)).unwrap().compute().unwrap();
        let free: Vec<usize> = shape[..shape.len() - pairs].to_vec();
        let inner: usize = contracted.iter().product();
        let rows: usize = free.iter().product();
        let x2 = x.to_shape((rows, inner)).unwrap().to_owned().into_dyn();
        let y2 = y.to_shape((inner, 2)).unwrap().to_owned().into_dyn();
        let mut out_shape = free.clone();
        out_shape.push(2);
        let expected = matrix_product(&x2, &y2).to_shape(IxDyn(&out_shape)).unwrap().to_owned();
        prop_assert!(close(&got, &expected));
    }
}

#[test]
fn chunks_go_out_as_delayed_values_and_come_back() {
    let x = data(&[6, 4], 3);
    let a = from_ndarray(&x, [4, 3]).unwrap();
    let blocks = a.to_delayed();
    assert_eq!(blocks.shape(), &[2, 2]);
    // Anything on a delayed chunk, then back as an array.
    let doubled: Delayed<ArrayD<f64>> =
        blocks[[1, 0]].map("double", |chunk: &ArrayD<f64>| chunk * 2.0);
    let back = from_delayed(&doubled, &[2, 3]);
    let expected = x
        .slice_each_axis(|ax| {
            if ax.axis.index() == 0 {
                ndarray::Slice::from(4..6)
            } else {
                ndarray::Slice::from(0..3)
            }
        })
        .mapv(|v| v * 2.0);
    assert_eq!(back.compute().unwrap(), expected);
    assert_eq!(
        (&back + 1.0).sum(Axes::all()).unwrap().compute().unwrap()[[]],
        expected.sum() + 6.0
    );
    // A wrong shape claim is an error naming both shapes.
    let wrong = from_delayed(&doubled, &[3, 2]);
    let err = wrong.compute().unwrap_err().to_string();
    assert!(err.contains("[3, 2]") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn bad_blockwise_indices_and_tensordot_axes_are_named() {
    let a = from_ndarray(&data(&[4, 3], 1), 2).unwrap();
    let b = from_ndarray(&data(&[5, 2], 2), 2).unwrap();
    let err = blockwise("ik", &[(&a, "ij"), (&b, "jk")], |blocks| blocks[0].clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'j'") && err.contains('3') && err.contains('5'), "{err}");
    let err = blockwise("ij", &[(&a, "i")], |blocks| blocks[0].clone()).unwrap_err().to_string();
    assert!(err.contains("2 axes") && err.contains("\"i\""), "{err}");
    let err = blockwise("iz", &[(&a, "ij")], |blocks| blocks[0].clone()).unwrap_err().to_string();
    assert!(err.contains("'z'"), "{err}");
    let err = a.tensordot(&b, (&[1], &[0])).unwrap_err().to_string();
    assert!(err.contains("[4, 3]") && err.contains("[5, 2]"), "{err}");
}
