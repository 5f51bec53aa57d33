//! Padding: `pad` with NumPy's modes.
//!
//! A padded axis is the concatenation of three arrays: what goes before, the array, and what
//! goes after. A constant pad is a `full` array; the other modes are a `take` of positions of
//! the array itself (the first or last one for `Edge`, mirrored ones for `Reflect` and
//! `Symmetric`, the other end for `Wrap`), so the pad's chunks are read from the chunks
//! nearest each end and nothing is copied that is not needed. Widths larger than the axis
//! repeat the pattern, as NumPy does.

use crate::array::Array;
use crate::chunks::ChunkSpec;
use crate::creation::full;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::shape::concatenate;

/// How `pad` fills the new elements (NumPy's `mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode<T> {
    /// This value.
    Constant(T),
    /// The edge value repeated.
    Edge,
    /// Mirrored without the edge: `[1, 2, 3]` padded by 2 is `[3, 2, 1, 2, 3, 2, 1]`.
    Reflect,
    /// Mirrored with the edge: `[1, 2, 3]` padded by 2 is `[2, 1, 1, 2, 3, 3, 2]`.
    Symmetric,
    /// The other end: `[1, 2, 3]` padded by 2 is `[2, 3, 1, 2, 3, 1, 2]`.
    Wrap,
}

/// The position of the axis that padded position `i` (from `-before`) copies.
fn source(mode: PadMode<()>, i: i64, n: i64) -> i64 {
    match mode {
        PadMode::Edge => i.clamp(0, n - 1),
        PadMode::Wrap => i.rem_euclid(n),
        PadMode::Symmetric => {
            let m = i.rem_euclid(2 * n);
            if m < n {
                m
            } else {
                2 * n - 1 - m
            }
        }
        PadMode::Reflect if n == 1 => 0,
        PadMode::Reflect => {
            let period = 2 * (n - 1);
            let m = i.rem_euclid(period);
            if m < n {
                m
            } else {
                period - m
            }
        }
        PadMode::Constant(()) => unreachable!("a constant pad copies nothing"),
    }
}

impl<T: Element> Array<T> {
    /// The array padded by `(before, after)` elements per axis (one pair for every axis, or
    /// one pair for all of them), filled as `mode` says.
    pub fn pad(&self, widths: &[(usize, usize)], mode: PadMode<T>) -> Result<Array<T>> {
        let ndim = self.ndim();
        let widths: Vec<(usize, usize)> = match widths.len() {
            1 => vec![widths[0]; ndim],
            n if n == ndim => widths.to_vec(),
            n => {
                return Err(Error::Invalid(format!(
                    "{n} pad widths for an array of {ndim} axes: give one (before, after) pair \
                     per axis, or one for all"
                )))
            }
        };
        let mut x = self.clone();
        for (axis, &(before, after)) in widths.iter().enumerate() {
            if before == 0 && after == 0 {
                continue;
            }
            let n = x.shape()[axis];
            let mut parts = Vec::with_capacity(3);
            for (width, at_start) in [(before, true), (after, false)] {
                if width == 0 {
                    continue;
                }
                let piece = match mode {
                    PadMode::Constant(value) => {
                        let mut shape = x.shape();
                        shape[axis] = width;
                        let mut chunks = x.chunks.per_axis().to_vec();
                        chunks[axis] = vec![width];
                        full(&shape, value, ChunkSpec::from(chunks))?
                    }
                    _ if n == 0 => {
                        return Err(Error::Invalid(format!(
                            "cannot pad axis {axis} of length 0 with {mode:?}: there is nothing \
                             to copy (use PadMode::Constant)"
                        )))
                    }
                    _ => {
                        let copy = match mode {
                            PadMode::Edge => PadMode::Edge,
                            PadMode::Reflect => PadMode::Reflect,
                            PadMode::Symmetric => PadMode::Symmetric,
                            _ => PadMode::Wrap,
                        };
                        let (n, w) = (n as i64, width as i64);
                        let positions: Vec<i64> = if at_start {
                            (-w..0).map(|i| source(copy, i, n)).collect()
                        } else {
                            (n..n + w).map(|i| source(copy, i, n)).collect()
                        };
                        x.take(&positions, axis as isize)?
                    }
                };
                parts.push((at_start, piece));
            }
            let mut joined: Vec<Array<T>> = Vec::with_capacity(3);
            joined.extend(parts.iter().filter(|(s, _)| *s).map(|(_, p)| p.clone()));
            joined.push(x.clone());
            joined.extend(parts.iter().filter(|(s, _)| !*s).map(|(_, p)| p.clone()));
            x = concatenate(&joined, axis as isize)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(mode: PadMode<()>, n: i64, before: i64, after: i64) -> Vec<i64> {
        (-before..n + after).map(|i| source(mode, i, n)).collect()
    }

    #[test]
    fn sources_follow_numpy_pad() {
        // np.pad(np.arange(3), (5, 5), mode) for each mode, positions of the original.
        assert_eq!(padded(PadMode::Reflect, 3, 5, 5), [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
        assert_eq!(padded(PadMode::Symmetric, 3, 5, 5), [1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
        assert_eq!(padded(PadMode::Wrap, 3, 5, 5), [1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(padded(PadMode::Edge, 3, 2, 1), [0, 0, 0, 1, 2, 2]);
        assert_eq!(padded(PadMode::Reflect, 1, 2, 2), [0, 0, 0, 0, 0]);
    }
}
