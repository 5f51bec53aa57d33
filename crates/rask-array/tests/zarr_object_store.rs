//! Zarr arrays and `.npy` files in an object store: written to and read from a real S3-compatible server
//! (moto's server mode, started on a loopback port by `rask_storage::s3_test_server`), with
//! the store's chunks and with others, and errors that name the URL.

use ndarray::{ArrayD, IxDyn};
use rask_array::prelude::*;
use rask_array::{from_npy_url, from_zarr_url, ZarrCompression};
use rask_local::ComputeExt;
use rask_storage::s3_test_server::S3Server;

#[test]
fn a_zarr_array_round_trips_through_s3_and_reads_any_chunks() {
    let server = S3Server::start();
    server.create_bucket("zarr-test");
    let options = server.options();
    let data = ArrayD::from_shape_fn(IxDyn(&[30, 17]), |i| (i[0] * 100 + i[1]) as f64 - 7.5);
    let x = from_ndarray(&data, [8, 5]).unwrap();
    let url = "s3://zarr-test/arrays/x.zarr";
    let written = x.to_zarr_url(url, options.clone(), ZarrCompression::Zstd).unwrap();
    assert_eq!(written, 30 * 17 * 8);
    // The store's chunks by default; other chunks read the subsets they cover.
    let back = from_zarr_url::<f64, _, _>(url, options.clone(), None).unwrap();
    assert_eq!(back.chunks().per_axis(), x.chunks().per_axis());
    assert_eq!(back.compute().unwrap(), data);
    let other = from_zarr_url::<f64, _, _>(url, options.clone(), Some([7, 17].into())).unwrap();
    assert_eq!(other.numblocks(), [5, 1]);
    assert_eq!(other.sum(0).unwrap().compute().unwrap(), data.sum_axis(ndarray::Axis(0)));

    // Another element type, and a prefix that holds no array: errors naming the URL.
    let err = from_zarr_url::<i32, _, _>(url, options.clone(), None).unwrap_err().to_string();
    assert!(err.contains(url) && err.contains("float64") && err.contains("int32"), "{err}");
    let missing = "s3://zarr-test/arrays/none.zarr";
    let err = from_zarr_url::<f64, _, _>(missing, options, None).unwrap_err().to_string();
    assert!(err.contains(missing) && err.contains("not a Zarr array"), "{err}");
}

#[test]
fn a_npy_file_in_s3_is_read_by_byte_ranges_in_any_chunks() {
    let server = S3Server::start();
    server.create_bucket("npy-test");
    let options = server.options();
    let data =
        ArrayD::from_shape_fn(IxDyn(&[23, 6, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as i32 - 50);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("x.npy");
    from_ndarray(&data, [5, 6, 4]).unwrap().to_npy(&local).unwrap();
    let url = "s3://npy-test/arrays/x.npy";
    rask_storage::Location::parse(url, &options).write_all(std::fs::read(&local).unwrap()).unwrap();
    // Chunks that cut every axis: each task reads its rows' range and cuts its columns.
    let x = from_npy_url::<i32, _, _>(url, options.clone(), [4, 4, 3]).unwrap();
    assert_eq!(x.numblocks(), [6, 2, 2]);
    assert_eq!(x.compute().unwrap(), data);
    assert_eq!(
        x.sum(0).unwrap().compute().unwrap(),
        data.mapv(i64::from).sum_axis(ndarray::Axis(0))
    );

    // Another element type, and an object that does not exist: errors naming the URL.
    let err = from_npy_url::<f64, _, _>(url, options.clone(), 4).unwrap_err().to_string();
    assert!(err.contains(url) && err.contains("float64"), "{err}");
    let missing = "s3://npy-test/arrays/none.npy";
    let err = from_npy_url::<i32, _, _>(missing, options, 4).unwrap_err().to_string();
    assert!(err.contains(missing) && err.contains("cannot open"), "{err}");
}

#[test]
fn a_npy_file_is_written_to_s3_from_any_chunks_and_numpy_can_read_it() {
    let server = S3Server::start();
    server.create_bucket("npy-out");
    let options = server.options();
    // 7 MiB of data: the multipart upload has more than one 5 MiB part.
    let data = ArrayD::from_shape_fn(IxDyn(&[917, 1000]), |i| (i[0] * 1000 + i[1]) as f64 * 0.5);
    // Chunks across both axes: written as row blocks.
    let x = from_ndarray(&data, [100, 300]).unwrap();
    let url = "s3://npy-out/arrays/x.npy";
    let written = x.to_npy_url(url, options.clone()).unwrap();
    assert_eq!(written, 917 * 1000 * 8);
    let bytes = rask_storage::Location::parse(url, &options).read_all().unwrap();
    let decoded: ArrayD<f64> =
        ndarray_npy::ReadNpyExt::read_npy(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(decoded, data, "a standard .npy file, as NumPy reads it");
    assert_eq!(
        from_npy_url::<f64, _, _>(url, options.clone(), 250).unwrap().compute().unwrap(),
        data
    );
    // The row blocks are gone.
    let block = rask_storage::Location::parse(&format!("{url}.parts/00000000"), &options);
    assert!(!block.exists().unwrap());

    // Small arrays, a 0-d one, and a local path through the same call.
    let small =
        from_ndarray(&ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| (i[0] + 10 * i[1]) as i16), [2, 2])
            .unwrap();
    small.to_npy_url("s3://npy-out/small.npy", options.clone()).unwrap();
    let back = from_npy_url::<i16, _, _>("s3://npy-out/small.npy", options.clone(), 5).unwrap();
    assert_eq!(back.compute().unwrap(), small.compute().unwrap());
    let scalar =
        from_ndarray(&ArrayD::from_elem(IxDyn(&[]), 2.5f32), Vec::<Vec<usize>>::new()).unwrap();
    scalar.to_npy_url("s3://npy-out/scalar.npy", options.clone()).unwrap();
    let back = from_npy_url::<f32, _, _>(
        "s3://npy-out/scalar.npy",
        options.clone(),
        Vec::<Vec<usize>>::new(),
    );
    assert_eq!(back.unwrap().compute().unwrap()[[]], 2.5);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("small.npy");
    small.to_npy_url(local.to_str().unwrap(), options.clone()).unwrap();
    assert_eq!(
        rask_array::from_npy::<i16>(&local, 5).unwrap().compute().unwrap(),
        small.compute().unwrap()
    );

    // A bucket that does not exist: an error naming the URL.
    let err = small.to_npy_url("s3://no-such-bucket/x.npy", options).unwrap_err().to_string();
    assert!(err.contains("no-such-bucket"), "{err}");
}
