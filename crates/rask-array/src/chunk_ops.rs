//! Functions of one in-memory chunk, for `map_blocks` bodies: what NumPy users call on a
//! block inside `map_blocks` (`np.roll`, ...), written once here.

use ndarray::{ArrayD, Axis, Slice};

use crate::element::Element;

/// `np.roll(chunk, shifts, axes)`: each axis shifted by its amount (negative: towards the
/// start), values that fall off one end coming back at the other.
pub fn roll<T: Element>(chunk: &ArrayD<T>, shifts: &[isize], axes: &[usize]) -> ArrayD<T> {
    let mut current = chunk.clone();
    for (&shift, &axis) in shifts.iter().zip(axes) {
        let n = current.shape()[axis];
        if n == 0 {
            continue;
        }
        let k = shift.rem_euclid(n as isize) as usize;
        if k == 0 {
            continue;
        }
        let mut out = ArrayD::from_elem(current.raw_dim(), T::default());
        out.slice_axis_mut(Axis(axis), Slice::from(k..))
            .assign(&current.slice_axis(Axis(axis), Slice::from(..n - k)));
        out.slice_axis_mut(Axis(axis), Slice::from(..k))
            .assign(&current.slice_axis(Axis(axis), Slice::from(n - k..)));
        current = out;
    }
    current
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
