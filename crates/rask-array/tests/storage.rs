//! `.npy` files and Zarr stores: round trips over random chunkings, files made by others (by
//! `ndarray-npy` as NumPy would write them, a Zarr v2 array written by hand from the spec),
//! and the errors for missing paths, other element types and layouts that cannot be read.

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use proptest::prelude::*;
use rask_array::prelude::*;
use rask_array::{c64, from_npy, from_zarr, ZarrCompression};
use rask_local::ComputeExt;

mod common;
use common::{data, shape_and_chunks};

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn npy_round_trips_and_matches_the_reference_writer(
        (shape, chunks) in shape_and_chunks(),
        (_, other) in shape_and_chunks(),
        seed in 0u64..1000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let x = data(&shape, seed);
        let a = from_ndarray(&x, chunks).unwrap();
        let path = dir.path().join("x.npy");
        let written = a.to_npy(&path).unwrap();
        prop_assert_eq!(written as usize, x.len() * 8);
        // Byte for byte what ndarray-npy (NumPy's format) writes for the whole array.
        let reference = dir.path().join("reference.npy");
        ndarray_npy::write_npy(&reference, &x).unwrap();
        prop_assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&reference).unwrap());
        // Read back in other chunks (refitted to the shape).
        let refit: Vec<usize> = shape.iter().zip(other.iter().cycle()).map(|(&n, c)| c.iter().copied().max().unwrap_or(1).clamp(1, n.max(1))).collect();
        let back = from_npy::<f64>(&reference, refit.as_slice()).unwrap();
        prop_assert_eq!(back.compute().unwrap(), x);
    }

    #[test]
    fn zarr_round_trips_in_any_regular_chunks(
        (shape, _) in shape_and_chunks(),
        seed in 0u64..1000,
        size in 1usize..5,
        codec in 0u8..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let x = data(&shape, seed).mapv(|v| v as i32);
        let a = from_ndarray(&x, size).unwrap();
        let compression = [ZarrCompression::None, ZarrCompression::Zstd, ZarrCompression::Gzip][codec as usize];
        let path = dir.path().join("x.zarr");
        a.to_zarr(&path, compression).unwrap();
        prop_assert!(path.join("zarr.json").exists());
        let back = from_zarr::<i32>(&path, None).unwrap();
        prop_assert_eq!(back.chunks(), a.chunks());
        prop_assert_eq!(back.compute().unwrap(), x.clone());
        // Other chunks read the subsets they cover.
        let other = from_zarr::<i32>(&path, Some((size + 1).into())).unwrap();
        prop_assert_eq!(other.compute().unwrap(), x);
    }
}

#[test]
fn npy_files_of_every_kind_of_element_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| (i[0] * 3 + i[1]) as u8);
    ndarray_npy::write_npy(dir.path().join("u8.npy"), &bytes).unwrap();
    assert_eq!(from_npy::<u8>(dir.path().join("u8.npy"), 2).unwrap().compute().unwrap(), bytes);
    let flags = bytes.mapv(|v| v % 3 == 0);
    ndarray_npy::write_npy(dir.path().join("bool.npy"), &flags).unwrap();
    assert_eq!(
        from_npy::<bool>(dir.path().join("bool.npy"), [4, 2]).unwrap().compute().unwrap(),
        flags
    );
    let complex = bytes.mapv(|v| c64::new(f64::from(v), -1.0));
    from_ndarray(&complex, [2, 2]).unwrap().to_npy(dir.path().join("c.npy")).unwrap();
    let read: ArrayD<c64> = ndarray_npy::read_npy(dir.path().join("c.npy")).unwrap();
    assert_eq!(read, complex);
    // A 0-d array.
    let scalar = ArrayD::from_elem(IxDyn(&[]), 2.5f32);
    from_ndarray(&scalar, 1).unwrap().to_npy(dir.path().join("s.npy")).unwrap();
    assert_eq!(from_npy::<f32>(dir.path().join("s.npy"), 1).unwrap().compute().unwrap(), scalar);
}

#[test]
fn bad_npy_paths_types_and_layouts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    let err = from_npy::<f64>(&missing, 2).unwrap_err().to_string();
    assert!(err.contains("missing.npy") && err.contains("cannot open"), "{err}");
    let floats = ArrayD::from_elem(IxDyn(&[4]), 1.0f64);
    ndarray_npy::write_npy(dir.path().join("f.npy"), &floats).unwrap();
    let err = from_npy::<u8>(dir.path().join("f.npy"), 2).unwrap_err().to_string();
    assert!(err.contains("<f8") && err.contains("uint8"), "{err}");
    let fortran = ndarray::Array2::<f64>::zeros((3, 4).f());
    ndarray_npy::write_npy(dir.path().join("fortran.npy"), &fortran).unwrap();
    let err = from_npy::<f64>(dir.path().join("fortran.npy"), 2).unwrap_err().to_string();
    assert!(err.contains("Fortran") && err.contains("ascontiguousarray"), "{err}");
    std::fs::write(dir.path().join("text.npy"), "not numpy").unwrap();
    let err = from_npy::<f64>(dir.path().join("text.npy"), 2).unwrap_err().to_string();
    assert!(err.contains("not a .npy file"), "{err}");
}

#[test]
fn a_zarr_v2_array_written_from_the_spec_reads() {
    // Zarr v2: `.zarray` metadata and one raw (uncompressed) file per chunk, edge chunks full.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.zarr");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(
        path.join(".zarray"),
        r#"{"zarr_format": 2, "shape": [3, 4], "chunks": [2, 3], "dtype": "<i4",
            "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#,
    )
    .unwrap();
    let whole = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 10 + i[1]) as i32);
    for (ci, cj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let mut bytes = Vec::new();
        for r in 0..2 {
            for c in 0..3 {
                let (i, j) = (ci * 2 + r, cj * 3 + c);
                let v = if i < 3 && j < 4 { whole[[i, j]] } else { 0 };
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        std::fs::write(path.join(format!("{ci}.{cj}")), bytes).unwrap();
    }
    let a = from_zarr::<i32>(&path, None).unwrap();
    assert_eq!(a.chunks().per_axis(), [vec![2, 1], vec![3, 1]]);
    assert_eq!(a.compute().unwrap(), whole);
}

#[test]
fn bad_zarr_paths_types_and_chunks_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = from_zarr::<f64>(dir.path().join("nowhere.zarr"), None).unwrap_err().to_string();
    assert!(err.contains("nowhere.zarr") && err.contains("no such directory"), "{err}");
    let err = from_zarr::<f64>(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("not a Zarr array"), "{err}");
    let x = from_ndarray(&ArrayD::from_elem(IxDyn(&[6]), 3u16), 4).unwrap();
    x.to_zarr(dir.path().join("u16.zarr"), ZarrCompression::default()).unwrap();
    let err = from_zarr::<f32>(dir.path().join("u16.zarr"), None).unwrap_err().to_string();
    assert!(err.contains("uint16") && err.contains("float32"), "{err}");
    let irregular = from_ndarray(&ArrayD::from_elem(IxDyn(&[6]), 1.0), vec![vec![2, 4]]).unwrap();
    let err = irregular
        .to_zarr(dir.path().join("bad.zarr"), ZarrCompression::None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("regular chunks") && err.contains("rechunk"), "{err}");
}
