//! What the property tests share: computing a frame, cutting a Polars frame into uneven
//! partitions, and comparing results up to float rounding.

#![allow(dead_code)] // each test crate uses some of these

use polars::prelude::*;
use rask_dataframe::{concat, from_polars, DataFrame as RaskFrame};
use rask_local::{ComputeExt, LocalScheduler};

pub fn compute(frame: &RaskFrame) -> DataFrame {
    frame.compute_with(&LocalScheduler::new().threads(2)).unwrap()
}

/// `df` cut at `cuts` (positions, any order; repeats make empty partitions).
pub fn uneven(df: &DataFrame, cuts: &[usize]) -> RaskFrame {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (df.height() + 1)).collect();
    cuts.sort_unstable();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(df.height());
    let parts: Vec<RaskFrame> = bounds
        .windows(2)
        .map(|w| from_polars(df.slice(w[0] as i64, w[1] - w[0]), 1).unwrap())
        .collect();
    concat(&parts).unwrap()
}

/// Equal up to float rounding (tree reductions and windows add in another order than Polars);
/// infinities and NaNs equal themselves.
pub fn assert_close(a: &DataFrame, b: &DataFrame) {
    assert_eq!(a.get_column_names(), b.get_column_names(), "columns differ:\n{a}\n{b}");
    assert_eq!(a.height(), b.height(), "heights differ:\n{a}\n{b}");
    for (ca, cb) in a.columns().iter().zip(b.columns()) {
        if ca.dtype().is_float() || cb.dtype().is_float() {
            let fa = ca.cast(&DataType::Float64).unwrap();
            let fb = cb.cast(&DataType::Float64).unwrap();
            for (i, (va, vb)) in fa.f64().unwrap().iter().zip(fb.f64().unwrap().iter()).enumerate()
            {
                match (va, vb) {
                    (Some(x), Some(y)) => assert!(
                        x == y
                            || (x - y).abs() <= 1e-6 * (1.0 + x.abs().max(y.abs()))
                            || (x.is_nan() && y.is_nan()),
                        "row {i} of `{}`: {x} != {y}:\n{a}\n{b}",
                        ca.name()
                    ),
                    (x, y) => assert_eq!(
                        x.is_none(),
                        y.is_none(),
                        "null mismatch in row {i} of `{}`:\n{a}\n{b}",
                        ca.name()
                    ),
                }
            }
        } else {
            assert!(
                ca.as_materialized_series().equals_missing(cb.as_materialized_series()),
                "column `{}` differs:\n{a}\n{b}",
                ca.name()
            );
        }
    }
}
