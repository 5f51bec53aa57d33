//! DataFrames to Arrays and back: row chunks follow the partitions, values and nulls survive,
//! and frames that are not numeric are refused by name.

use polars::prelude::*;
use rask_local::ComputeExt;

#[test]
fn a_numeric_frame_becomes_an_array_of_its_partitions_and_back() {
    let a: Vec<i64> = (0..10).collect();
    let b: Vec<Option<f64>> =
        (0..10).map(|i| if i == 4 { None } else { Some(i as f64 / 2.0) }).collect();
    let flags: Vec<bool> = (0..10).map(|i| i % 3 == 0).collect();
    let frame = df!("a" => a, "b" => b, "flag" => flags).unwrap();
    let df = rask_dataframe::from_polars(frame, 3).unwrap();
    let x = df.to_array().unwrap();
    // from_polars cuts 10 rows into 3, 3, 4.
    assert_eq!(x.chunks().per_axis(), [vec![3, 3, 4], vec![3]]);
    let got = x.compute().unwrap();
    for i in 0..10 {
        assert_eq!(got[[i, 0]], i as f64);
        if i == 4 {
            assert!(got[[i, 1]].is_nan(), "a null is NaN");
        } else {
            assert_eq!(got[[i, 1]], i as f64 / 2.0);
        }
        assert_eq!(got[[i, 2]], if i % 3 == 0 { 1.0 } else { 0.0 });
    }
    // Back to a frame, through an array op.
    let scaled = &x * 2.0;
    let back = rask_dataframe::from_array(&scaled, &["a2", "b2", "flag2"]).unwrap();
    assert_eq!(back.npartitions(), 3);
    let frame = back.compute().unwrap();
    let a2: Vec<f64> = frame.column("a2").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert_eq!(a2, (0..10).map(|i| 2.0 * i as f64).collect::<Vec<_>>());
    // A 1-d array is one column; an array cut along its columns is gathered first.
    let column = rask_array::from_ndarray(
        &ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[5]), |i| i[0] as f64),
        2,
    )
    .unwrap();
    let one = rask_dataframe::from_array(&column, &["v"]).unwrap().compute().unwrap();
    assert_eq!(one.height(), 5);
    let wide = rask_array::ones::<f64>(&[4, 6], [2, 2]).unwrap();
    let frame = rask_dataframe::from_array(&wide, &["a", "b", "c", "d", "e", "f"])
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!((frame.height(), frame.width()), (4, 6));
}

#[test]
fn frames_that_are_not_numeric_and_wrong_names_are_refused() {
    let frame = df!("a" => [1i64, 2], "name" => ["x", "y"]).unwrap();
    let df = rask_dataframe::from_polars(frame, 1).unwrap();
    let err = df.to_array().unwrap_err().to_string();
    assert!(err.contains("\"name\"") && err.contains("select"), "{err}");
    let x = rask_array::ones::<f64>(&[4, 2], 2).unwrap();
    let err = rask_dataframe::from_array(&x, &["only"]).unwrap_err().to_string();
    assert!(err.contains("1 column names") && err.contains("2 columns"), "{err}");
    let cube = rask_array::ones::<f64>(&[2, 2, 2], 2).unwrap();
    assert!(rask_dataframe::from_array(&cube, &["a", "b"])
        .unwrap_err()
        .to_string()
        .contains("2-d"));
}
