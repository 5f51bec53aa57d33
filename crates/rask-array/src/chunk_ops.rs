//! Functions of one in-memory chunk, for `map_blocks` bodies: what NumPy users call on a
//! block inside `map_blocks` (`np.roll`, ...), written once here.

use ndarray::{ArrayD, Slice};

use crate::element::Element;

/// `np.roll(chunk, shifts, axes)`: each axis shifted by its amount (negative: towards the
/// start), values that fall off one end coming back at the other. One copy: a row-major chunk
/// is written row by row (each row of the last axis two slice copies), any other layout by
/// moving every combination of an axis's two pieces once.
pub fn roll<T: Element>(chunk: &ArrayD<T>, shifts: &[isize], axes: &[usize]) -> ArrayD<T> {
    // Per axis: how far its values move, in 0..n.
    let moves: Vec<usize> = (0..chunk.ndim())
        .map(|axis| {
            let n = chunk.shape()[axis];
            let shift: isize =
                axes.iter().zip(shifts).filter(|(&a, _)| a == axis).map(|(_, &s)| s).sum();
            if n == 0 {
                0
            } else {
                shift.rem_euclid(n as isize) as usize
            }
        })
        .collect();
    if let (Some(elements), Some((&row, outer))) = (chunk.as_slice(), chunk.shape().split_last()) {
        return roll_rows(elements, outer, row, &moves, chunk.raw_dim());
    }
    // Per axis: the (source, destination) ranges of its pieces.
    let pieces: Vec<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> = (0..chunk.ndim())
        .map(|axis| {
            let n = chunk.shape()[axis];
            let k = moves[axis];
            if k == 0 {
                vec![(0..n, 0..n)]
            } else {
                vec![(0..n - k, k..n), (n - k..n, 0..k)]
            }
        })
        .collect();
    let mut out = ArrayD::from_elem(chunk.raw_dim(), T::default());
    let counts: Vec<u32> = pieces.iter().map(|p| p.len() as u32).collect();
    let combos = rask_core::BlockGrid::of(&counts);
    for c in 0..combos.len() as u32 {
        let pick = combos.unravel(c);
        let source = chunk.slice_each_axis(|a| {
            Slice::from(pieces[a.axis.index()][pick[a.axis.index()] as usize].0.clone())
        });
        out.slice_each_axis_mut(|a| {
            Slice::from(pieces[a.axis.index()][pick[a.axis.index()] as usize].1.clone())
        })
        .assign(&source);
    }
    out
}

/// [`roll`] of a row-major chunk: output rows in order, each read from the row its outer
/// index came from and written as the two pieces of its last axis, without a zero fill first.
fn roll_rows<T: Element>(
    elements: &[T],
    outer: &[usize],
    row: usize,
    moves: &[usize],
    shape: ndarray::IxDyn,
) -> ArrayD<T> {
    let mut out = Vec::with_capacity(elements.len());
    let split = row - moves[outer.len()].min(row);
    // No rows to copy when the last axis is empty.
    let rows: usize = if row == 0 { 0 } else { outer.iter().product() };
    // The output row's index along each outer axis, counted like an odometer.
    let mut at = vec![0usize; outer.len()];
    for _ in 0..rows {
        let source = at
            .iter()
            .zip(outer)
            .zip(moves)
            .fold(0, |offset, ((&i, &n), &k)| offset * n + (i + n - k) % n);
        let source = &elements[source * row..(source + 1) * row];
        out.extend_from_slice(&source[split..]);
        out.extend_from_slice(&source[..split]);
        for (i, &n) in at.iter_mut().zip(outer).rev() {
            *i += 1;
            if *i < n {
                break;
            }
            *i = 0;
        }
    }
    ArrayD::from_shape_vec(shape, out).expect("every row rolled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn roll_moves_values_around_each_axis_like_numpy() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(roll(&x, &[1], &[1]).into_raw_vec_and_offset().0, [2, 0, 1, 5, 3, 4]);
        assert_eq!(roll(&x, &[-1, 1], &[1, 0]).into_raw_vec_and_offset().0, [4, 5, 3, 1, 2, 0]);
        assert_eq!(roll(&x, &[3], &[1]), x);
    }

    #[test]
    fn rolls_of_row_major_and_strided_chunks_agree() {
        let x = ArrayD::from_shape_vec(IxDyn(&[3, 4, 5]), (0..60).collect()).unwrap();
        let strided = x.clone().reversed_axes();
        for (shifts, axes) in [(vec![3, -2], vec![1, 2]), (vec![1, 7, -4], vec![0, 1, 2])] {
            let fast = roll(&x, &shifts, &axes);
            // The piecewise path, on a copy that is not row-major.
            let flipped: Vec<usize> = axes.iter().map(|&a| 2 - a).collect();
            let slow = roll(&strided, &shifts, &flipped).reversed_axes();
            assert_eq!(fast, slow);
        }
        let empty = ArrayD::<u8>::zeros(IxDyn(&[2, 0]));
        assert_eq!(roll(&empty, &[1], &[0]).shape(), &[2, 0]);
    }
}
