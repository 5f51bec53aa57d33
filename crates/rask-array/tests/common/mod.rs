//! Shared by the oracle tests: random shapes with random chunkings, data, and closeness.

#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

/// A shape of 1 to 3 axes, each cut at random points (empty chunks allowed).
pub fn shape_and_chunks() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>)> {
    prop::collection::vec((0usize..9, prop::collection::vec(0usize..9, 0..3)), 1..4).prop_map(
        |axes| {
            let shape: Vec<usize> = axes.iter().map(|(n, _)| *n).collect();
            let chunks = axes
                .iter()
                .map(|(n, cuts)| {
                    let mut points: Vec<usize> = cuts.iter().map(|c| c % (n + 1)).collect();
                    points.push(0);
                    points.push(*n);
                    points.sort_unstable();
                    let sizes: Vec<usize> = points.windows(2).map(|w| w[1] - w[0]).collect();
                    // Keep at most one empty chunk in a row: many are legal but slow to test.
                    let mut out: Vec<usize> = Vec::new();
                    for s in sizes {
                        if s == 0 && out.last() == Some(&0) {
                            continue;
                        }
                        out.push(s);
                    }
                    if out.is_empty() {
                        out.push(0);
                    }
                    out
                })
                .collect();
            (shape, chunks)
        },
    )
}

pub fn data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) % 2001) as f64 / 100.0 - 10.0
    })
}

pub fn close(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * (1.0 + y.abs()))
}
