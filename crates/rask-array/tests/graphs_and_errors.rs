//! What arrays lower to (fused elementwise chains, culled slices, reduction trees) and the
//! errors bad input gets, each naming the problem and the fix.

use rask_array::prelude::*;
use rask_array::{Chunks, Error};
use rask_core::optimize::prepare;
use rask_core::{Collection, Optimizations};
use rask_local::ComputeExt;

fn lowered_tasks<T: rask_array::Element>(x: &Array<T>) -> usize {
    prepare(&x.graph(), &x.output_keys(), &Optimizations::default()).unwrap().len()
}

#[test]
fn an_elementwise_chain_fuses_into_one_task_per_chunk() {
    let x = zeros::<f64>(&[1000, 1000], [250, 200]).unwrap();
    let mut y = x.clone();
    for i in 0..100 {
        y = if i % 2 == 0 { &y + 1.0 } else { (&y * 1.0).sqrt() };
    }
    assert_eq!(y.numblocks(), [4, 5]);
    assert_eq!(lowered_tasks(&y), 20, "100 steps over 20 chunks lower to 20 tasks");
    // Two arrays of the same chunks: still one task per chunk.
    let z = (&y + &x) * 2.0;
    assert_eq!(lowered_tasks(&z), 20);
    assert_eq!(z.compute().unwrap()[[3, 3]], {
        let mut v = 0.0f64;
        for i in 0..100 {
            v = if i % 2 == 0 { v + 1.0 } else { (v * 1.0).sqrt() };
        }
        (v + 0.0) * 2.0
    });
}

#[test]
fn a_slice_reads_only_the_chunks_it_needs() {
    let x = rask_array::random::random(&[100, 100], [10, 10], 1).unwrap();
    let corner = x.slice(&[Index::range(0..5), Index::range(95..100)]).unwrap();
    // One source chunk and one slicing task (fused into one).
    assert_eq!(lowered_tasks(&corner), 1);
    let row = x.slice(&[Index::At(42)]).unwrap();
    assert_eq!(row.numblocks(), [10]);
    assert_eq!(lowered_tasks(&row), 10);
}

#[test]
fn a_reduction_reads_at_most_split_every_partials_per_task() {
    let x = ones::<u8>(&[64, 10], [1, 10]).unwrap();
    let total = x.sum(Axes::all().split_every(4)).unwrap();
    let tasks = prepare(&total.graph(), &total.output_keys(), &Optimizations::none()).unwrap();
    for i in 0..tasks.len() as u32 {
        assert!(tasks.deps(i).len() <= 4, "task {i} reads {}", tasks.deps(i).len());
    }
    assert_eq!(total.compute().unwrap().iter().next(), Some(&640u64));
}

#[test]
fn the_display_describes_without_computing() {
    let x = rask_array::random::integers::<u8>(0, 256, &[400, 1000, 1000], [20, 1000, 1000], 0)
        .unwrap();
    let text = x.to_string();
    assert!(text.contains("shape=(400, 1000, 1000)"), "{text}");
    assert!(text.contains("dtype=uint8") && text.contains("chunksize=(20, 1000, 1000)"), "{text}");
    assert!(
        text.contains("chunks=20") && text.contains("bytes=400.00 MB") && text.contains("tasks=20"),
        "{text}"
    );
}

#[test]
fn shapes_that_cannot_broadcast_are_named() {
    let a = zeros::<f64>(&[4, 3], 2).unwrap();
    let b = zeros::<f64>(&[4, 2], 2).unwrap();
    let err = a.try_add(&b).unwrap_err().to_string();
    assert!(
        err.contains("[4, 3]") && err.contains("[4, 2]") && err.contains("cannot broadcast"),
        "{err}"
    );
}

#[test]
fn chunks_that_do_not_add_up_are_refused() {
    let err = Chunks::new(&[10], vec![vec![3, 3]]).unwrap_err().to_string();
    assert!(err.contains("add up to 6") && err.contains("10"), "{err}");
    let x = ndarray::Array2::<f64>::zeros((4, 4));
    let err = from_ndarray(&x, vec![vec![2, 2], vec![1, 2]]).unwrap_err();
    assert!(matches!(err, Error::Chunks(_)), "{err}");
}

#[test]
fn an_index_out_of_bounds_names_axis_index_and_length() {
    let x = zeros::<i32>(&[5, 7], 3).unwrap();
    let err = x.slice(&[Index::Full, Index::At(7)]).unwrap_err().to_string();
    assert_eq!(err, "index 7 is out of bounds for axis 1 with 7 elements");
    let err = x.take(&[0, -8], 1).unwrap_err().to_string();
    assert!(err.contains("-8") && err.contains("axis 1"), "{err}");
    let err = x.sum(2).unwrap_err().to_string();
    assert!(err.contains("axis 2") && err.contains("2 axes"), "{err}");
}

#[test]
fn an_fft_along_a_chunked_axis_says_how_to_rechunk() {
    let x = zeros::<f64>(&[400, 100, 100], [20, 100, 100]).unwrap();
    let err = x.fft(0).unwrap_err().to_string();
    assert!(err.contains("20 chunks") && err.contains("rechunk([400, 100, 100])"), "{err}");
    // The fix works.
    assert!(x.rechunk([400, 10, 10]).unwrap().fft(0).is_ok());
}

#[test]
fn integer_division_by_zero_is_an_error_not_a_number() {
    let a = ones::<i64>(&[4], 2).unwrap();
    let b = zeros::<i64>(&[4], 2).unwrap();
    let err = (&a / &b).compute().unwrap_err().to_string();
    assert!(err.contains("division by zero"), "{err}");
    // Floats follow IEEE: inf, as NumPy.
    let f = (&ones::<f64>(&[2], 2).unwrap() / &zeros::<f64>(&[2], 2).unwrap()).compute().unwrap();
    assert!(f.iter().all(|v| v.is_infinite()));
}

#[test]
fn matmul_of_mismatched_shapes_names_both() {
    let a = zeros::<f64>(&[3, 4], 2).unwrap();
    let err = a.matmul(&a).unwrap_err().to_string();
    assert!(err.contains("[3, 4]") && err.contains("(4)") && err.contains("(3)"), "{err}");
}

#[test]
fn a_balanced_rechunk_folds_the_small_last_chunk_and_keeps_the_values() {
    let x = rask_array::random::random(&[100, 7], [10, 7], 5).unwrap();
    let balanced = x.rechunk_balanced([30, 7]).unwrap();
    assert_eq!(balanced.chunks().per_axis(), [vec![34, 34, 32], vec![7]]);
    assert_eq!(balanced.compute().unwrap(), x.compute().unwrap());
}

/// The grids of the layers of `x`'s graph named `prefix-…`.
fn step_grids<T: rask_array::Element>(x: &Array<T>, prefix: &str) -> Vec<Vec<u32>> {
    x.graph_ref()
        .layers()
        .iter()
        .filter(|layer| layer.name().prefix() == prefix)
        .filter_map(|layer| match layer.kind() {
            rask_core::LayerKind::Blockwise(op) => Some(op.grid.dims().to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_slice_moves_in_front_of_elementwise_work_but_not_of_scans() {
    let x = rask_array::random::random(&[200, 300], [50, 100], 4).unwrap();
    let y = &(&x + 1.0).sqrt() * 2.0;
    let index = [Index::slice(Some(190), Some(3), -7), Index::At(-5)];
    let corner = y.slice(&index).unwrap();
    // The result is the last step itself, rebuilt over the sliced input: the arithmetic runs on
    // the 27 kept elements (in 4 pieces), not on the four 50×100 chunks they come from.
    assert_eq!(corner.name().prefix(), "scalar");
    assert_eq!(corner.numblocks(), [4]);
    assert_eq!(step_grids(&corner, "scalar"), [vec![4], vec![4]], "`+ 1` and `* 2` on the slice");
    assert_eq!(step_grids(&corner, "float"), [vec![4]], "sqrt on the slice");
    assert_eq!(step_grids(&y, "float"), [vec![4, 3]]);
    let whole = x.compute().unwrap();
    let whole = whole.into_dimensionality::<ndarray::Ix2>().unwrap();
    // Rows 190, 183, ..., 8 (Python's 190:3:-7) of column 295.
    let rows: Vec<usize> = (0..27).map(|i| 190 - 7 * i).collect();
    let want: ndarray::ArrayD<f64> =
        ndarray::Array1::from_iter(rows.iter().map(|&r| (whole[[r, 295]] + 1.0).sqrt() * 2.0))
            .into_dyn();
    assert_eq!(corner.shape(), [want.len()]);
    assert_eq!(corner.compute().unwrap(), want);
    // A scan depends on the whole chunk: the slice stays after it.
    let scanned = x.cumsum(1).unwrap().slice(&[Index::At(7)]).unwrap();
    assert_ne!(scanned.name().prefix(), "scan-chunk");
    let mut row = whole.row(7).to_owned();
    row.accumulate_axis_inplace(ndarray::Axis(0), |&prev, cur| *cur += prev);
    let got = scanned.compute().unwrap();
    assert!(got.iter().zip(row.iter()).all(|(a, b)| (a - b).abs() < 1e-9));
    // Broadcast operands: correct, and computed before the slice.
    let column =
        rask_array::from_ndarray(&ndarray::Array2::<f64>::ones((200, 1)), [50, 1]).unwrap();
    let shifted = (&x + &column).slice(&[Index::At(3)]).unwrap();
    assert_eq!(shifted.compute().unwrap(), whole.row(3).mapv(|v| v + 1.0).into_dyn());
}
