//! Functions of one in-memory chunk, for `map_blocks` bodies: what NumPy users call on a
//! block inside `map_blocks` (`np.roll`, ...), written once here.

use ndarray::{ArrayD, Slice};

use crate::element::Element;

/// `np.roll(chunk, shifts, axes)`: each axis shifted by its amount (negative: towards the
/// start), values that fall off one end coming back at the other. One copy: every combination
/// of an axis's two pieces is moved once.
pub fn roll<T: Element>(chunk: &ArrayD<T>, shifts: &[isize], axes: &[usize]) -> ArrayD<T> {
    // Per axis: the (source, destination) ranges of its pieces.
    let pieces: Vec<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> = (0..chunk.ndim())
        .map(|axis| {
            let n = chunk.shape()[axis];
            let shift: isize =
                axes.iter().zip(shifts).filter(|(&a, _)| a == axis).map(|(_, &s)| s).sum();
            let k = if n == 0 { 0 } else { shift.rem_euclid(n as isize) as usize };
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
}
