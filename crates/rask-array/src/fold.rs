//! Folding one in-memory chunk along a set of axes: the kernels under every reduction.
//!
//! A chunk whose reduced axes are its last ones (row-major) folds each contiguous run with
//! eight accumulators (they vectorize); one whose reduced axes are its first ones folds its rows
//! into one, a cache-sized tile of columns at a time; other layouts fold the last axis lane by
//! lane and the rest by whole sub-views. `fold` adds one element to a partial value, `merge`
//! joins two partial values, so the same kernel serves sums, extremes, counts and tests.

use ndarray::{ArrayD, Axis, IxDyn, Slice, Zip};
use rask_core::BlockGrid;

use crate::element::Element;

/// The shape of `shape` with the reduced axes at length 1.
pub(crate) fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(a, &n)| if axes.contains(&a) { 1 } else { n }).collect()
}

/// Folds a chunk along `axes` into a partial with those axes at length 1: `fold` adds one
/// element, `merge` joins two partial values.
pub(crate) fn fold_axes<T: Copy, A: Copy>(
    x: &ArrayD<T>,
    axes: &[usize],
    init: A,
    fold: impl Fn(A, T) -> A + Copy,
    merge: impl Fn(A, A) -> A + Copy,
) -> ArrayD<A> {
    let shape = kept_shape(x.shape(), axes);
    if let Some(elements) = x.as_slice() {
        match layout_of(x.shape(), axes) {
            // Each output value is one contiguous run of elements.
            Layout::Suffix { run } => {
                let values: Vec<A> = if run == 0 {
                    vec![init; shape.iter().product()]
                } else {
                    // One dispatch per run: the closure is small enough to inline whole into
                    // the AVX2 copy (a `collect` around it would not be).
                    elements
                        .chunks(run)
                        .map(|r| vectorized(|| fold_slice(r, init, fold, merge)))
                        .collect()
                };
                return ArrayD::from_shape_vec(IxDyn(&shape), values).expect("one value per run");
            }
            // Rows of `columns` elements, all folded into one row.
            Layout::Prefix { rows, columns } => {
                let mut acc = vec![init; columns];
                vectorized(|| fold_rows(elements, rows, columns, &mut acc, fold));
                return ArrayD::from_shape_vec(IxDyn(&shape), acc).expect("one value per column");
            }
            Layout::Other => {}
        }
    }
    if axes.len() == x.ndim() {
        let value = x.iter().fold(init, |a, &v| fold(a, v));
        return ArrayD::from_elem(IxDyn(&shape), value);
    }
    let last = x.ndim() - 1;
    if axes.contains(&last) {
        // Contiguous lanes along the last axis first, then the other axes on the small result.
        let mut lanes = ArrayD::from_elem(IxDyn(&kept_shape(x.shape(), &[last])), init);
        Zip::from(lanes.lanes_mut(Axis(last))).and(x.lanes(Axis(last))).for_each(
            |mut out, lane| {
                out[0] = match lane.as_slice() {
                    Some(elements) => fold_slice(elements, init, fold, merge),
                    None => lane.iter().fold(init, |a, &v| fold(a, v)),
                };
            },
        );
        let rest: Vec<usize> = axes.iter().copied().filter(|&a| a != last).collect();
        if rest.is_empty() {
            return lanes;
        }
        return fold_outer(&lanes, &rest, init, merge);
    }
    fold_outer(x, axes, init, fold)
}

/// Sums along `axes`, exactly and fast for narrow types: `lane` converts an element into a
/// lane type in which up to `block` elements add without overflow (`add`), and `widen` adds a
/// lane's total into the accumulator (`merge` joins two accumulators). With a lane type as
/// wide as the accumulator, `block` is unbounded and this is [`fold_axes`] with lanes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn lane_sums<T: Copy, L: Copy + Default, A: Copy + Default>(
    x: &ArrayD<T>,
    axes: &[usize],
    block: usize,
    lane: impl Fn(T) -> L + Copy,
    add: impl Fn(L, L) -> L + Copy,
    widen: impl Fn(A, L) -> A + Copy,
    merge: impl Fn(A, A) -> A + Copy,
) -> ArrayD<A> {
    let shape = kept_shape(x.shape(), axes);
    if let Some(elements) = x.as_slice() {
        match layout_of(x.shape(), axes) {
            Layout::Suffix { run } => {
                let values: Vec<A> = if run == 0 {
                    vec![A::default(); shape.iter().product()]
                } else {
                    // One dispatch for all runs: with narrow lanes a run is thousands of
                    // blocks.
                    vectorized(|| {
                        elements
                            .chunks(run)
                            .map(|r| {
                                r.chunks(block).fold(A::default(), |total, part| {
                                    let lanes =
                                        fold_slice(part, L::default(), |l, v| add(l, lane(v)), add);
                                    widen(total, lanes)
                                })
                            })
                            .collect()
                    })
                };
                return ArrayD::from_shape_vec(IxDyn(&shape), values).expect("one value per run");
            }
            Layout::Prefix { rows, columns } => {
                let mut totals = vec![A::default(); columns];
                vectorized(|| {
                    // A tile of columns at a time, its lanes in the first-level cache: each
                    // block of rows adds into the lanes, which then widen into the totals.
                    let mut lanes = [L::default(); TILE];
                    for (tile, totals) in totals.chunks_mut(TILE).enumerate() {
                        let first = tile * TILE;
                        let lanes = &mut lanes[..totals.len()];
                        let mut start = 0;
                        while start < rows {
                            let end = start.saturating_add(block).min(rows);
                            lanes.fill(L::default());
                            for row in start..end {
                                let at = row * columns + first;
                                for (l, &v) in
                                    lanes.iter_mut().zip(&elements[at..at + totals.len()])
                                {
                                    *l = add(*l, lane(v));
                                }
                            }
                            for (t, &l) in totals.iter_mut().zip(lanes.iter()) {
                                *t = widen(*t, l);
                            }
                            start = end;
                        }
                    }
                });
                return ArrayD::from_shape_vec(IxDyn(&shape), totals)
                    .expect("one value per column");
            }
            Layout::Other => {}
        }
    }
    fold_axes(x, axes, A::default(), move |a, v| widen(a, lane(v)), merge)
}

/// Sums along `axes` in `f64` (each element converted first), the sums of a mean of anything
/// but the small integers.
pub(crate) fn f64_sums<T: Element>(x: &ArrayD<T>, axes: &[usize]) -> ArrayD<f64> {
    fold_axes(x, axes, 0.0f64, |s, v| s + v.to_f64(), |a, b| a + b)
}

/// Runs `kernel` compiled for the widest vector instructions this CPU has (AVX2 and FMA where
/// present, SSE2 otherwise), so the loops inlined into it vectorize at that width.
#[inline(always)]
pub(crate) fn vectorized<R>(kernel: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(kernel)
}

/// Columns folded together: a tile of accumulators that stays in the first-level cache.
const TILE: usize = 2048;

/// Folds the `rows` rows of a row-major block of `columns` elements into `acc` (one value per
/// column), a tile of columns at a time so the accumulators stay in the first-level cache.
#[inline(always)]
fn fold_rows<T: Copy, A: Copy>(
    elements: &[T],
    rows: usize,
    columns: usize,
    acc: &mut [A],
    fold: impl Fn(A, T) -> A,
) {
    let mut start = 0;
    while start < columns {
        let end = (start + TILE).min(columns);
        let tile = &mut acc[start..end];
        for row in 0..rows {
            let source = &elements[row * columns + start..row * columns + end];
            for (a, &v) in tile.iter_mut().zip(source) {
                *a = fold(*a, v);
            }
        }
        start = end;
    }
}

/// How the reduced axes of a contiguous (row-major) chunk lie in memory.
enum Layout {
    /// The reduced axes are the last ones: each output value folds `run` consecutive elements.
    Suffix { run: usize },
    /// The reduced axes are the first ones: `rows` rows of `columns` elements fold into one.
    Prefix { rows: usize, columns: usize },
    /// Anything else.
    Other,
}

fn layout_of(shape: &[usize], axes: &[usize]) -> Layout {
    let (ndim, r) = (shape.len(), axes.len());
    if axes.iter().enumerate().all(|(i, &a)| a == ndim - r + i) {
        return Layout::Suffix { run: shape[ndim - r..].iter().product() };
    }
    if axes.iter().enumerate().all(|(i, &a)| a == i) {
        return Layout::Prefix {
            rows: shape[..r].iter().product(),
            columns: shape[r..].iter().product(),
        };
    }
    Layout::Other
}

/// `Σ (x − mean)²` along `axes`, `mean` having the reduced axes at length 1; values `skip`
/// says to leave out add nothing. Contiguous layouts are folded in place, others through a
/// temporary of the deviations.
pub(crate) fn centred_squares<T: Element>(
    x: &ArrayD<T>,
    axes: &[usize],
    mean: &ArrayD<f64>,
    skip: impl Fn(f64) -> bool + Copy,
) -> ArrayD<f64> {
    let square = move |v: T, m: f64| {
        let v = v.to_f64();
        if skip(v) {
            0.0
        } else {
            (v - m) * (v - m)
        }
    };
    if let (Some(elements), Some(means)) = (x.as_slice(), mean.as_slice()) {
        match layout_of(x.shape(), axes) {
            Layout::Suffix { run } if run > 0 => {
                let values: Vec<f64> = elements
                    .chunks(run)
                    .zip(means)
                    .map(|(r, &m)| {
                        vectorized(|| fold_slice(r, 0.0, |a, v| a + square(v, m), |a, b| a + b))
                    })
                    .collect();
                return ArrayD::from_shape_vec(mean.raw_dim(), values).expect("one value per run");
            }
            Layout::Prefix { rows, columns } => {
                let mut acc = vec![0.0; columns];
                vectorized(|| {
                    for row in 0..rows {
                        let source = &elements[row * columns..(row + 1) * columns];
                        for ((a, &v), &m) in acc.iter_mut().zip(source).zip(means) {
                            *a += square(v, m);
                        }
                    }
                });
                return ArrayD::from_shape_vec(mean.raw_dim(), acc).expect("one value per column");
            }
            _ => {}
        }
    }
    let centred = zip_broadcast(x, mean, square);
    fold_axes(&centred, axes, 0.0, |a, v| a + v, |a, b| a + b)
}

/// Folds outer axes by adding whole sub-views: one pass per position along the reduced axes.
fn fold_outer<T: Copy, A: Copy>(
    x: &ArrayD<T>,
    axes: &[usize],
    init: A,
    fold: impl Fn(A, T) -> A,
) -> ArrayD<A> {
    let mut out = ArrayD::from_elem(IxDyn(&kept_shape(x.shape(), axes)), init);
    let lengths: Vec<u32> = axes.iter().map(|&a| x.shape()[a] as u32).collect();
    let positions = BlockGrid::of(&lengths);
    for p in 0..positions.len() as u32 {
        let at = positions.unravel(p);
        let view =
            x.slice_each_axis(|axis| match axes.iter().position(|&a| a == axis.axis.index()) {
                Some(k) => Slice::from(at[k] as usize..at[k] as usize + 1),
                None => Slice::from(..),
            });
        Zip::from(&mut out).and(&view).for_each(|o, &v| *o = fold(*o, v));
    }
    out
}

/// Folds a slice with eight independent accumulators (they vectorize), then merges them.
#[inline(always)]
fn fold_slice<T: Copy, A: Copy>(
    elements: &[T],
    init: A,
    fold: impl Fn(A, T) -> A,
    merge: impl Fn(A, A) -> A,
) -> A {
    let mut lanes = [init; 8];
    let mut blocks = elements.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane = fold(*lane, v);
        }
    }
    let mut total = blocks.remainder().iter().fold(init, |a, &v| fold(a, v));
    for lane in lanes {
        total = merge(total, lane);
    }
    total
}

fn zip_broadcast<A: Copy, B: Copy, C>(
    x: &ArrayD<A>,
    small: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
) -> ArrayD<C> {
    let small = small.broadcast(x.raw_dim()).expect("a partial broadcasts over its chunk");
    Zip::from(x).and(&small).map_collect(|&a, &b| f(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Element;

    fn plain_sums(x: &ArrayD<i64>, axes: &[usize]) -> ArrayD<i64> {
        fold_outer(x, axes, 0, |a, v| a + v)
    }

    #[test]
    fn lane_sums_cut_runs_and_rows_into_blocks_exactly() {
        let x = ArrayD::from_shape_vec(IxDyn(&[7, 5, 11]), (0..385).map(|v| v % 13 - 6).collect())
            .unwrap();
        // A block of three elements: every run and every column crosses block boundaries.
        for axes in [vec![2], vec![1, 2], vec![0], vec![0, 1], vec![1], vec![0, 2]] {
            let sums = lane_sums(
                &x,
                &axes,
                3,
                |v: i64| v as i32,
                i32::wrapping_add,
                |t: i64, l: i32| t + i64::from(l),
                |a, b| a + b,
            );
            assert_eq!(sums, plain_sums(&x, &axes), "axes {axes:?}");
        }
    }

    #[test]
    fn narrow_integer_sums_do_not_overflow_their_lanes() {
        // Columns of more rows than a 32-bit lane could hold of the most extreme value: a column
        // adds into one lane, so only the block bound keeps these exact.
        let n = (1 << 24) + (1 << 18);
        let bytes = ArrayD::from_elem(IxDyn(&[n, 1]), u8::MAX);
        assert_eq!(u8::sum_axes(&bytes, &[0])[[0, 0]], n as u64 * 255);
        assert_eq!(u8::mean_sums(&bytes, &[0])[[0, 0]], n as f64 * 255.0);
        let n = (1 << 16) + 3;
        let rows = ArrayD::from_elem(IxDyn(&[n, 2]), u16::MAX);
        assert_eq!(u16::sum_axes(&rows, &[0]).into_raw_vec_and_offset().0, [n as u64 * 65535; 2]);
        let high = ArrayD::from_elem(IxDyn(&[n, 1]), i16::MAX);
        assert_eq!(i16::sum_axes(&high, &[0])[[0, 0]], 32767 * n as i64);
        let n = (1 << 24) + 1;
        let low = ArrayD::from_elem(IxDyn(&[n, 1]), i8::MIN);
        assert_eq!(i8::sum_axes(&low, &[0])[[0, 0]], -128 * n as i64);
        assert_eq!(i8::mean_sums(&low, &[0])[[0, 0]], -128.0 * n as f64);
        // Runs (the reduced axes last) too.
        let n = (1 << 15) + 7;
        let low = ArrayD::from_elem(IxDyn(&[2, n]), i16::MIN);
        assert_eq!(i16::sum_axes(&low, &[1]).into_raw_vec_and_offset().0, [-32768 * n as i64; 2]);
        let flags = ArrayD::from_shape_fn(IxDyn(&[9, 4]), |at| at[0] % 2 == 0);
        assert_eq!(bool::sum_axes(&flags, &[0]).into_raw_vec_and_offset().0, [5; 4]);
    }
}
