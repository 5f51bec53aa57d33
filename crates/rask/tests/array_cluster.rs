//! Arrays on a cluster: the stock `rask worker` binary runs array tasks, chunks cross processes
//! as raw buffers, and results are identical to the local scheduler's.

mod common;

use common::within;
use rask::array::prelude::*;
use rask::array::PadMode;
use rask::{ComputeExt, LocalCluster, LocalScheduler};

#[test]
fn an_array_workflow_gives_identical_results_on_worker_processes() {
    within(240, || {
        // A small image stack: random u8 images, one chunk per image, rechunked all-to-all.
        let stack =
            rask::array::random::integers::<u8>(0, 256, &[24, 30, 20], [1, 30, 20], 5).unwrap();
        let by_time = stack.rechunk([6, 30, 20]).unwrap();
        let mean_image = by_time.mean(0).unwrap();
        let brightness = by_time.mean([1, 2]).unwrap();
        let spectrum =
            by_time.rechunk([24, 10, 10]).unwrap().fft(0).unwrap().abs_squared().astype::<f32>();
        let x = rask::array::random::normal(0.0, 1.0, &[300, 8], [70, 8], 9).unwrap();
        let gram = x.t().matmul(&x).unwrap();
        let sliced = x.slice(&[Index::slice(Some(-1), None, -7), Index::At(3)]).unwrap();
        let var = (&x * 1e6 + 1e9).var(0, 1).unwrap();
        let (_, singular_values, _) = x.svd().unwrap();
        // A blocked LU: panels and column updates on either worker, in real and complex.
        let square = (x.slice(&[Index::range(0..8)]).unwrap() + 10.0).rechunk([3, 3]).unwrap();
        let solved = square.solve(&x.slice(&[Index::range(8..16)]).unwrap()).unwrap();
        let complex_inverse =
            (square.astype::<rask::array::c64>() * rask::array::c64::new(0.5, 0.5)).inv().unwrap();
        // Blocked: a task per block of L, reading the blocks to its left from either worker.
        let factor = gram.rechunk([3, 3]).unwrap().cholesky().unwrap();
        let positive_solved =
            gram.rechunk([3, 3]).unwrap().solve_positive(&x.slice(&[Index::range(0..8)]).unwrap());
        let positive_solved = positive_solved.unwrap();

        let local = LocalScheduler::new();
        let expected = (
            mean_image.compute_with(&local).unwrap(),
            brightness.compute_with(&local).unwrap(),
            spectrum.compute_with(&local).unwrap(),
            gram.compute_with(&local).unwrap(),
            sliced.compute_with(&local).unwrap(),
            var.compute_with(&local).unwrap(),
            (&singular_values, &solved).compute_with(&local).unwrap(),
            factor.compute_with(&local).unwrap(),
            positive_solved.compute_with(&local).unwrap(),
            complex_inverse.compute_with(&local).unwrap(),
        );
        let cluster = LocalCluster::processes(env!("CARGO_BIN_EXE_rask"), 2, 1).unwrap();
        let client = cluster.client().unwrap();
        let on_cluster = (
            mean_image.compute_with(&client).unwrap(),
            brightness.compute_with(&client).unwrap(),
            spectrum.compute_with(&client).unwrap(),
            gram.compute_with(&client).unwrap(),
            sliced.compute_with(&client).unwrap(),
            var.compute_with(&client).unwrap(),
            (&singular_values, &solved).compute_with(&client).unwrap(),
            factor.compute_with(&client).unwrap(),
            positive_solved.compute_with(&client).unwrap(),
            complex_inverse.compute_with(&client).unwrap(),
        );
        // The same tasks on the same chunks: bit for bit the same.
        assert_eq!(expected.0, on_cluster.0);
        assert_eq!(expected.1, on_cluster.1);
        assert_eq!(expected.2, on_cluster.2);
        assert_eq!(expected.3, on_cluster.3);
        assert_eq!(expected.4, on_cluster.4);
        assert_eq!(expected.5, on_cluster.5);
        assert_eq!(expected.6, on_cluster.6);
        assert_eq!(expected.7, on_cluster.7);
        assert_eq!(expected.8, on_cluster.8);
        assert_eq!(expected.9, on_cluster.9);

        // A closure cannot travel: the error says how to register a function instead.
        let doubled = x.map_blocks(|chunk| chunk.mapv(|v| v * 2.0));
        let err = doubled.compute_with(&client).unwrap_err().to_string();
        assert!(err.contains("register"), "{err}");
    });
}

#[test]
fn scans_selections_overlaps_and_files_run_on_worker_processes() {
    within(240, || {
        let x = rask::array::random::normal(0.0, 1.0, &[60, 12], [13, 5], 3).unwrap();
        let cumsum = x.cumsum(0).unwrap();
        let top = x.topk(3, 0).unwrap();
        let arg_top = x.argtopk(-2, 1).unwrap();
        let (counts, _) = x.histogram(&rask::array::Bins::equal(7, (-2.0, 2.0))).unwrap();
        let padded = x.pad(&[(2, 1)], PadMode::Symmetric).unwrap();
        // Functions of the stock worker binary (a test binary cannot be a worker): ghost cells
        // gathered from neighbours and trimmed again give the array back; blockwise aligns.
        let overlap = x
            .map_overlap_registered::<f64>("rask::identity", &[2, 1], Some(PadMode::Wrap))
            .unwrap();
        let aligned =
            rask::array::blockwise_registered::<f64, f64>("ij", &[(&x, "ij")], "rask::identity")
                .unwrap();
        let diagonal = rask::array::diag(&x, 2).unwrap();
        let selected = x.select(&x.compare_scalar(CompareOp::Gt, 1.0)).unwrap();
        // Sparse chunks travel as raw CSR bytes: elementwise steps, sums and products.
        let small = x.abs().compare_scalar(CompareOp::Lt, 1.0);
        let sparse = x.mask_assign(&small, 0.0).unwrap().to_sparse().unwrap();
        let sparse_gram = sparse.t().matmul_sparse(&(&(&sparse * 2.0) + &sparse)).unwrap();
        let sparse_dense = sparse.matmul(&x.t()).unwrap();
        let sparse_sums = sparse.sum(0).unwrap();
        // Rechunked and sliced on the workers: CSR pieces gathered across processes.
        let sparse_moved = sparse
            .rechunk([7, 3])
            .unwrap()
            .slice(&[Index::range(2..19), Index::slice(None, None, -2)])
            .unwrap();

        let local = LocalScheduler::new();
        let expected = (
            (&cumsum, &top, &padded, &overlap).compute_with(&local).unwrap(),
            (&arg_top, &counts, &diagonal).compute_with(&local).unwrap(),
            aligned.compute_with(&local).unwrap(),
            selected.compute_with(&local).unwrap(),
            (&sparse_gram, &sparse_dense, &sparse_sums).compute_with(&local).unwrap(),
            sparse_moved.compute_with(&local).unwrap(),
        );
        let cluster = LocalCluster::processes(env!("CARGO_BIN_EXE_rask"), 2, 1).unwrap();
        let client = cluster.client().unwrap();
        let on_cluster = (
            (&cumsum, &top, &padded, &overlap).compute_with(&client).unwrap(),
            (&arg_top, &counts, &diagonal).compute_with(&client).unwrap(),
            aligned.compute_with(&client).unwrap(),
            selected.compute_with(&client).unwrap(),
            (&sparse_gram, &sparse_dense, &sparse_sums).compute_with(&client).unwrap(),
            sparse_moved.compute_with(&client).unwrap(),
        );
        assert_eq!(expected.0, on_cluster.0);
        assert_eq!(expected.1, on_cluster.1);
        assert_eq!(expected.2, on_cluster.2);
        assert_eq!(expected.3, on_cluster.3);
        assert_eq!(expected.4, on_cluster.4);
        assert_eq!(expected.5, on_cluster.5);
        let masked = x.mask_assign(&small, 0.0).unwrap().compute_with(&local).unwrap();
        let masked = masked.into_dimensionality::<ndarray::Ix2>().unwrap();
        let gram = masked.t().dot(&(&masked * 3.0));
        let rows = masked.slice_axis(ndarray::Axis(0), ndarray::Slice::from(2..19));
        let rows = rows.slice_axis(ndarray::Axis(1), ndarray::Slice::new(0, None, -2));
        assert_eq!(expected.5.to_dense(), rows);
        let got = expected.4 .0.to_dense();
        assert!(got.iter().zip(gram.iter()).all(|(a, b)| (a - b).abs() < 1e-9), "{got} vs {gram}");
        let whole = x.compute_with(&local).unwrap();
        assert_eq!(expected.0 .3, whole);
        assert_eq!(expected.2, whole);

        // Chunk sizes found on the cluster; files written and read by the workers.
        client.set_as_default();
        let sized = selected.compute_chunk_sizes().unwrap();
        assert_eq!(sized.shape(), vec![expected.3.len()]);
        assert_eq!(sized.compute().unwrap(), expected.3);
        let dir = tempfile::tempdir().unwrap();
        x.to_npy(dir.path().join("x.npy")).unwrap();
        x.to_zarr(dir.path().join("x.zarr"), rask::array::ZarrCompression::Zstd).unwrap();
        let from_npy = rask::array::from_npy::<f64>(dir.path().join("x.npy"), [20, 12]).unwrap();
        let from_zarr = rask::array::from_zarr::<f64>(dir.path().join("x.zarr"), None).unwrap();
        assert_eq!(from_npy.compute().unwrap(), whole);
        assert_eq!(from_zarr.compute().unwrap(), whole);
        // Zarr in an object store: every worker opens the store itself.
        let server = rask_storage::s3_test_server::S3Server::start();
        server.create_bucket("cluster");
        let url = "s3://cluster/x.zarr";
        let zstd = rask::array::ZarrCompression::Zstd;
        x.to_zarr_url(url, server.options(), zstd).unwrap();
        let from_s3 = rask::array::from_zarr_url::<f64, _, _>(url, server.options(), None).unwrap();
        assert_eq!(from_s3.compute().unwrap(), whole);
        rask::set_default_scheduler(None);
    });
}
