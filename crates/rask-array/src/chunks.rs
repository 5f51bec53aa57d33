//! How an array is cut into chunks: per axis, the length of every chunk (Dask's `chunks`
//! tuple of tuples), and how a user's request becomes that.
//!
//! A request ([`ChunkSpec`]) names per axis a chunk length, the whole axis, explicit lengths,
//! or `auto`; `auto` axes share what is left of a byte target (128 MiB unless given) equally,
//! like Dask's `auto_chunks`. [`Chunks`] is the normalized result, checked against the shape:
//! lengths that do not add up to an axis are an error naming the axis, both numbers and a fix.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The default byte target of `auto` chunks.
pub const DEFAULT_CHUNK_BYTES: usize = 128 << 20;

/// How to chunk one axis.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisChunks {
    /// Chunks of this length (the last one shorter).
    Size(usize),
    /// One chunk along the whole axis (Dask's `-1`).
    Whole,
    /// A length chosen from the byte target.
    Auto,
    /// These lengths, which must add up to the axis length.
    Sizes(Vec<usize>),
}

/// How to chunk an array: one [`AxisChunks`] per axis, and the byte target of `Auto` axes.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkSpec {
    rules: Rules,
    target_bytes: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Rules {
    /// Every axis `Auto`.
    Auto,
    /// The same length on every axis.
    Uniform(usize),
    /// One rule per axis.
    PerAxis(Vec<AxisChunks>),
}

impl ChunkSpec {
    /// Every axis `auto`, at 128 MiB per chunk.
    pub fn auto() -> Self {
        ChunkSpec { rules: Rules::Auto, target_bytes: DEFAULT_CHUNK_BYTES }
    }

    /// Every axis `auto`, at about `bytes` per chunk.
    pub fn auto_bytes(bytes: usize) -> Self {
        ChunkSpec { rules: Rules::Auto, target_bytes: bytes.max(1) }
    }

    /// One rule per axis.
    pub fn axes(axes: Vec<AxisChunks>) -> Self {
        ChunkSpec { rules: Rules::PerAxis(axes), target_bytes: DEFAULT_CHUNK_BYTES }
    }

    /// The byte target of the `Auto` axes.
    pub fn with_target_bytes(mut self, bytes: usize) -> Self {
        self.target_bytes = bytes.max(1);
        self
    }

    /// The chunks of an array of `shape` with elements of `itemsize` bytes.
    pub fn resolve(&self, shape: &[usize], itemsize: usize) -> Result<Chunks> {
        let rules: Vec<AxisChunks> = match &self.rules {
            Rules::Auto => vec![AxisChunks::Auto; shape.len()],
            Rules::Uniform(n) => vec![AxisChunks::Size(*n); shape.len()],
            Rules::PerAxis(rules) if rules.len() == shape.len() => rules.clone(),
            Rules::PerAxis(rules) => {
                return Err(Error::Chunks(format!(
                    "{} chunk rules for an array of {} axes (shape {shape:?}): give one per axis",
                    rules.len(),
                    shape.len()
                )))
            }
        };
        // The elements a chunk may have, shared by the auto axes after the fixed ones.
        let mut fixed = 1f64;
        let mut auto_axes = Vec::new();
        for (axis, rule) in rules.iter().enumerate() {
            match rule {
                AxisChunks::Size(n) => fixed *= (*n).min(shape[axis]).max(1) as f64,
                AxisChunks::Whole => fixed *= shape[axis].max(1) as f64,
                AxisChunks::Sizes(sizes) => {
                    fixed *= sizes.iter().copied().max().unwrap_or(1).max(1) as f64
                }
                AxisChunks::Auto => auto_axes.push(axis),
            }
        }
        let mut auto_sizes = vec![0usize; shape.len()];
        let mut budget = (self.target_bytes as f64 / itemsize.max(1) as f64 / fixed).max(1.0);
        // Axes shorter than their share take their whole length; the rest share what is left.
        let mut open = auto_axes.clone();
        loop {
            let share = budget.powf(1.0 / open.len().max(1) as f64);
            let short: Vec<usize> =
                open.iter().copied().filter(|&a| (shape[a] as f64) <= share).collect();
            if short.is_empty() {
                for &axis in &open {
                    auto_sizes[axis] = (share.floor() as usize).clamp(1, shape[axis].max(1));
                }
                break;
            }
            for axis in short {
                auto_sizes[axis] = shape[axis].max(1);
                budget = (budget / shape[axis].max(1) as f64).max(1.0);
                open.retain(|&a| a != axis);
            }
            if open.is_empty() {
                break;
            }
        }
        let per_axis = rules
            .iter()
            .enumerate()
            .map(|(axis, rule)| {
                let length = shape[axis];
                match rule {
                    AxisChunks::Size(0) => Err(Error::Chunks(format!(
                        "a chunk length of 0 on axis {axis}: give a length of at least 1"
                    ))),
                    AxisChunks::Size(n) => Ok(regular(length, *n)),
                    AxisChunks::Whole => Ok(vec![length]),
                    AxisChunks::Auto => Ok(regular(length, auto_sizes[axis])),
                    AxisChunks::Sizes(sizes) => {
                        let total: usize = sizes.iter().sum();
                        if total != length {
                            return Err(Error::Chunks(format!(
                                "the chunks of axis {axis} add up to {total}, but the axis has \
                                 {length} elements: give lengths that add up to {length}"
                            )));
                        }
                        Ok(sizes.clone())
                    }
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Chunks(per_axis))
    }
}

/// `length` in chunks of `size`, the last one shorter; a zero-length axis is one empty chunk.
fn regular(length: usize, size: usize) -> Vec<usize> {
    if length == 0 {
        return vec![0];
    }
    let size = size.max(1);
    let mut chunks = vec![size; length / size];
    if length % size != 0 {
        chunks.push(length % size);
    }
    chunks
}

impl From<usize> for ChunkSpec {
    /// The same chunk length on every axis.
    fn from(size: usize) -> Self {
        ChunkSpec { rules: Rules::Uniform(size), target_bytes: DEFAULT_CHUNK_BYTES }
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(sizes: [usize; N]) -> Self {
        ChunkSpec::axes(sizes.iter().map(|&n| AxisChunks::Size(n)).collect())
    }
}

impl From<&[usize]> for ChunkSpec {
    fn from(sizes: &[usize]) -> Self {
        ChunkSpec::axes(sizes.iter().map(|&n| AxisChunks::Size(n)).collect())
    }
}

impl From<Vec<Vec<usize>>> for ChunkSpec {
    fn from(sizes: Vec<Vec<usize>>) -> Self {
        ChunkSpec::axes(sizes.into_iter().map(AxisChunks::Sizes).collect())
    }
}

impl From<Vec<AxisChunks>> for ChunkSpec {
    fn from(axes: Vec<AxisChunks>) -> Self {
        ChunkSpec::axes(axes)
    }
}

/// The normalized chunks of an array: per axis, the length of every chunk.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chunks(pub(crate) Vec<Vec<usize>>);
rask_core::register_type!(Chunks);

impl Chunks {
    /// Chunks given per axis, checked against `shape`.
    pub fn new(shape: &[usize], per_axis: Vec<Vec<usize>>) -> Result<Self> {
        ChunkSpec::from(per_axis).resolve(shape, 1)
    }

    /// Per axis, the chunk lengths.
    pub fn per_axis(&self) -> &[Vec<usize>] {
        &self.0
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.0.len()
    }

    /// The shape these chunks make up.
    pub fn shape(&self) -> Vec<usize> {
        self.0.iter().map(|axis| axis.iter().sum()).collect()
    }

    /// Blocks per axis.
    pub fn grid(&self) -> Vec<u32> {
        self.0.iter().map(|axis| axis.len() as u32).collect()
    }

    /// How many chunks.
    pub fn count(&self) -> usize {
        self.0.iter().map(Vec::len).product()
    }

    /// The shape of the block at `index`.
    pub fn block_shape(&self, index: &[u32]) -> Vec<usize> {
        index.iter().zip(&self.0).map(|(&i, axis)| axis[i as usize]).collect()
    }

    /// Where each chunk of `axis` starts, and the axis length last.
    pub fn offsets(&self, axis: usize) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(self.0[axis].len() + 1);
        let mut at = 0;
        offsets.push(0);
        for &n in &self.0[axis] {
            at += n;
            offsets.push(at);
        }
        offsets
    }

    /// The largest chunk's shape (what `Display` shows as the chunk size).
    pub fn max_block_shape(&self) -> Vec<usize> {
        self.0.iter().map(|axis| axis.iter().copied().max().unwrap_or(0)).collect()
    }
}

/// The lengths of one axis made even, as Dask's `rechunk(..., balance=True)` does: a last
/// chunk of at most half the largest is folded into the others (one chunk fewer), and of the
/// regular chunkings with that many chunks (one length, then the remainder) the one whose
/// largest and smallest chunks differ least is taken — or, where no regular chunking has
/// exactly that many, the one with the fewest chunks fewer. `[30, 30, 30, 10]` becomes
/// `[34, 34, 32]`.
pub fn balance_lengths(lengths: &[usize]) -> Vec<usize> {
    let total: usize = lengths.iter().sum();
    let (Some(&smallest), Some(&largest)) = (lengths.iter().min(), lengths.iter().max()) else {
        return lengths.to_vec();
    };
    if total == 0 || lengths.len() < 2 {
        return lengths.to_vec();
    }
    let mut count = lengths.len();
    if smallest * 2 <= largest {
        count -= 1;
    }
    let regular = |length: usize| -> Vec<usize> {
        let mut out = vec![length; total / length];
        if total % length != 0 {
            out.push(total % length);
        }
        out
    };
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2].max(1);
    let spread = median / 2;
    ((median - spread).max(1)..=median + spread)
        .map(regular)
        .filter(|c| c.len() <= count)
        .min_by_key(|c| {
            (count - c.len(), c.iter().max().unwrap_or(&0) - c.iter().min().unwrap_or(&0))
        })
        .unwrap_or_else(|| lengths.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancing_folds_a_small_last_chunk_into_even_ones() {
        assert_eq!(balance_lengths(&[30, 30, 30, 10]), [34, 34, 32]);
        assert_eq!(balance_lengths(&[4, 4, 4, 4, 4, 4, 4, 1]), [5, 5, 5, 5, 5, 4]);
        assert_eq!(balance_lengths(&[5, 5, 5]), [5, 5, 5]);
        assert_eq!(balance_lengths(&[7]), [7]);
        assert_eq!(balance_lengths(&[0]), [0]);
        let balanced = balance_lengths(&[100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 3]);
        assert_eq!((balanced.len(), balanced.iter().sum::<usize>()), (10, 1003));
        assert!(balanced.iter().max().unwrap() - balanced.iter().min().unwrap() <= 10);
    }

    #[test]
    fn regular_chunks_end_with_the_remainder() {
        let chunks = ChunkSpec::from([4, 3]).resolve(&[10, 3], 8).unwrap();
        assert_eq!(chunks.per_axis(), [vec![4, 4, 2], vec![3]]);
        assert_eq!(chunks.grid(), [3, 1]);
        assert_eq!(chunks.offsets(0), [0, 4, 8, 10]);
        assert_eq!(
            ChunkSpec::from(5).resolve(&[7, 0], 1).unwrap().per_axis(),
            [vec![5, 2], vec![0]]
        );
    }

    #[test]
    fn explicit_chunks_must_add_up_to_the_shape() {
        let err = Chunks::new(&[10, 4], vec![vec![5, 4], vec![4]]).unwrap_err().to_string();
        assert!(err.contains("axis 0") && err.contains("9") && err.contains("10"), "{err}");
        let err = ChunkSpec::from([2]).resolve(&[4, 4], 1).unwrap_err().to_string();
        assert!(err.contains("1 chunk rules") && err.contains("2 axes"), "{err}");
        assert!(ChunkSpec::from([0, 1]).resolve(&[4, 4], 1).is_err());
    }

    #[test]
    fn auto_chunks_stay_under_the_byte_target_and_fill_it() {
        // 10000×2000×2000 uint8 at 128 MiB: every chunk at most 128 MiB, and not tiny.
        let chunks = ChunkSpec::auto().resolve(&[10_000, 2000, 2000], 1).unwrap();
        let elements: usize = chunks.max_block_shape().iter().product();
        assert!(
            elements <= DEFAULT_CHUNK_BYTES && elements > DEFAULT_CHUNK_BYTES / 4,
            "{chunks:?}"
        );
        // A short axis is taken whole, the others share the rest.
        let chunks = ChunkSpec::auto_bytes(8 * 1_000_000).resolve(&[10, 1_000_000], 8).unwrap();
        assert_eq!(chunks.per_axis()[0], vec![10]);
        assert_eq!(chunks.per_axis()[1][0], 100_000);
        // Mixed: axis 0 fixed, axis 1 auto.
        let spec =
            ChunkSpec::axes(vec![AxisChunks::Size(100), AxisChunks::Auto]).with_target_bytes(8000);
        assert_eq!(spec.resolve(&[1000, 1000], 8).unwrap().per_axis()[1][0], 10);
    }
}
