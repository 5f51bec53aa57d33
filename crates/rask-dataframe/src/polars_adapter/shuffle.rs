//! The Polars side of shuffles and sorting: which output each row goes to (by a hash of its
//! keys, or by where its index value falls among boundaries), the rows of each output gathered
//! together, the checksums that verify a shuffle, sorting a partition, and the index values
//! that set_index and `loc` plan with.

use polars::prelude::{
    ChunkedArray, DataType, IdxCa, IdxSize, IntoLazy, PlSeedableRandomStateQuality,
    SeedableFromU64SeedExt, SortMultipleOptions,
};
use rask_core::partitioned::Tally;

use super::PlFrame;
use crate::error::{Error, Result};

/// The seed of the hashes that pick a row's output: fixed, so every process (and both sides
/// of a join) sends equal keys to the same output.
const BUCKET_SEED: u64 = 0x7261_736b_5f73_6866;
/// The seed of the row checksums.
const CHECKSUM_SEED: u64 = 0x7261_736b_5f63_6b73;

fn hashes(frame: &PlFrame, seed: u64, context: &str) -> Result<Vec<u64>> {
    if frame.height() == 0 {
        return Ok(Vec::new());
    }
    let mut frame = frame.clone();
    // Categories are numbered per frame: hash their text, which is what the rows hold.
    let categorical: Vec<String> = frame
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Categorical(..) | DataType::Enum(..)))
        .map(|c| c.name().to_string())
        .collect();
    for name in categorical {
        let text = frame
            .column(&name)
            .and_then(|c| c.cast(&DataType::String))
            .map_err(|e| Error::polars(context, e))?;
        frame.with_column(text).map_err(|e| Error::polars(context, e))?;
    }
    let hashed = frame
        .hash_rows(Some(PlSeedableRandomStateQuality::seed_from_u64(seed)))
        .map_err(|e| Error::polars(context, e))?;
    Ok(hashed.into_no_null_iter().collect())
}

/// Each row's checksum hash (every column).
pub fn row_checksums(frame: &PlFrame) -> Result<Vec<u64>> {
    hashes(frame, CHECKSUM_SEED, "checksumming a shuffled partition")
}

/// The row count and checksum of a frame (every column of every row).
pub fn tally(frame: &PlFrame) -> Result<Tally> {
    let checksum = row_checksums(frame)?.into_iter().fold(0u64, u64::wrapping_add);
    Ok(Tally { rows: frame.height() as u64, checksum })
}

/// Each row's output by a hash of `keys`: equal keys (nulls included) go to the same output.
pub fn hash_buckets(frame: &PlFrame, keys: &[String], outputs: u32) -> Result<Vec<u32>> {
    let keys = frame
        .select(keys.iter().map(String::as_str))
        .map_err(|e| Error::polars("selecting the shuffle keys", e))?;
    Ok(hashes(&keys, BUCKET_SEED, "hashing the shuffle keys")?
        .into_iter()
        .map(|h| (h % u64::from(outputs.max(1))) as u32)
        .collect())
}

/// The values of an index column as `f64` (dates and times by their physical value, text by
/// its first eight bytes; nulls as `None`). The order of the values is kept — `a < b` gives
/// `f64(a) <= f64(b)` — so rows split by these values split in sort order.
pub fn index_values(frame: &PlFrame, column: &str) -> Result<Vec<Option<f64>>> {
    let context = || format!("reading the index column `{column}`");
    let column = frame.column(column).map_err(|e| Error::polars(context(), e))?;
    if let DataType::String = column.dtype() {
        let text = column.str().map_err(|e| Error::polars(context(), e))?;
        return Ok(text.iter().map(|v| v.map(text_key)).collect());
    }
    let values = column
        .as_materialized_series()
        .to_physical_repr()
        .cast(&DataType::Float64)
        .map_err(|e| Error::polars(context(), e))?;
    let values = values.f64().map_err(|e| Error::polars(context(), e))?;
    Ok(values.iter().collect())
}

/// A text's place in byte order as a number: its first eight bytes, big-endian (Polars sorts
/// text by its bytes).
pub fn text_key(text: &str) -> f64 {
    let mut prefix = [0u8; 8];
    let bytes = text.as_bytes();
    let n = bytes.len().min(8);
    prefix[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(prefix) as f64
}

/// Where rows go in a range shuffle, in sort order: output `j` of `boundaries.len() + 1` holds
/// the values in `boundaries[j-1]..boundaries[j]` (ascending; descending reverses the outputs).
/// Equal values always go to the same output. NaN sorts after every number (as in Polars);
/// nulls go to the first output, or the last with `nulls_last`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RangeSplit {
    /// The sort column.
    pub column: String,
    /// Strictly increasing values (as `f64`, see [`index_values`]).
    pub boundaries: Vec<f64>,
    /// Largest first.
    pub descending: bool,
    /// Nulls after the values.
    pub nulls_last: bool,
}

impl RangeSplit {
    /// How many outputs.
    pub fn outputs(&self) -> u32 {
        self.boundaries.len() as u32 + 1
    }

    /// The output of one value.
    pub fn bucket(&self, value: Option<f64>) -> u32 {
        let last = self.boundaries.len() as u32;
        match value {
            None => {
                if self.nulls_last {
                    last
                } else {
                    0
                }
            }
            Some(v) => {
                let ascending = if v.is_nan() {
                    last
                } else {
                    self.boundaries.partition_point(|b| *b <= v) as u32
                };
                if self.descending {
                    last - ascending
                } else {
                    ascending
                }
            }
        }
    }

    /// Each row's output.
    pub fn buckets(&self, frame: &PlFrame) -> Result<Vec<u32>> {
        Ok(index_values(frame, &self.column)?.into_iter().map(|v| self.bucket(v)).collect())
    }
}

/// The rows of a frame reordered by output (stable within an output), and where each output's
/// rows start: output `j` is rows `offsets[j]..offsets[j + 1]`.
pub fn gather(frame: &PlFrame, buckets: &[u32], outputs: u32) -> Result<(PlFrame, Vec<usize>)> {
    let outputs = outputs.max(1) as usize;
    let mut offsets = vec![0usize; outputs + 1];
    for &b in buckets {
        offsets[b as usize + 1] += 1;
    }
    for j in 0..outputs {
        offsets[j + 1] += offsets[j];
    }
    let mut next = offsets.clone();
    let mut order = vec![0 as IdxSize; buckets.len()];
    for (row, &b) in buckets.iter().enumerate() {
        order[next[b as usize]] = row as IdxSize;
        next[b as usize] += 1;
    }
    let order: IdxCa = ChunkedArray::from_vec("".into(), order);
    let gathered = frame.take(&order).map_err(|e| Error::polars("gathering shuffled rows", e))?;
    Ok((gathered, offsets))
}

/// Sorts a partition by `by` (a direction per column), stably, nulls first unless
/// `nulls_last`.
pub fn sort(
    frame: &PlFrame,
    by: &[String],
    descending: &[bool],
    nulls_last: bool,
) -> Result<PlFrame> {
    if by.is_empty() || frame.height() < 2 {
        return Ok(frame.clone());
    }
    frame
        .clone()
        .lazy()
        .sort(
            by.iter().map(String::as_str).collect::<Vec<_>>(),
            SortMultipleOptions::new()
                .with_order_descending_multi(descending.to_vec())
                .with_nulls_last(nulls_last)
                .with_maintain_order(true),
        )
        .collect()
        .map_err(|e| Error::polars("sorting a partition", e))
}

/// What set_index learns of one partition in one pass over its index column.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexStats {
    /// Rows.
    pub rows: u64,
    /// Nulls in the index.
    pub nulls: u64,
    /// The smallest and largest index value (NaN aside), if any.
    pub bounds: Option<(f64, f64)>,
    /// Whether the index is sorted ascending within the partition, with no null or NaN.
    pub sorted: bool,
    /// Index values that are numbers (neither null nor NaN).
    pub numbers: u64,
    /// The partition's size in memory.
    pub bytes: u64,
}

/// The [`IndexStats`] of a partition, and its index values (NaN and nulls left out), which
/// the caller sketches for quantiles.
pub fn index_stats(frame: &PlFrame, column: &str) -> Result<(IndexStats, Vec<f64>)> {
    let values = index_values(frame, column)?;
    let nulls = values.iter().filter(|v| v.is_none()).count() as u64;
    let numbers: Vec<f64> = values.iter().flatten().copied().filter(|v| !v.is_nan()).collect();
    let sorted = numbers.len() == values.len() && numbers.windows(2).all(|w| w[0] <= w[1]);
    let bounds = numbers.iter().fold(None, |acc: Option<(f64, f64)>, &v| {
        Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    });
    let stats = IndexStats {
        rows: frame.height() as u64,
        nulls,
        bounds,
        sorted,
        numbers: numbers.len() as u64,
        bytes: frame.estimated_size() as u64,
    };
    Ok((stats, numbers))
}

/// Whether a column's type can be a sort key or a sorted index (compared through [`index_values`]).
pub fn sortable(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
        || dtype.is_bool()
        || matches!(dtype, DataType::String)
        || matches!(
            dtype,
            DataType::Date | DataType::Datetime(..) | DataType::Duration(..) | DataType::Time
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, DataFrame};

    fn frame(values: &[Option<f64>]) -> PlFrame {
        let tag: Vec<i64> = (0..values.len() as i64).collect();
        DataFrame::new_infer_height(vec![
            Column::new("x".into(), values.to_vec()),
            Column::new("tag".into(), tag),
        ])
        .unwrap()
    }

    #[test]
    fn range_buckets_keep_equal_values_together_and_follow_the_sort_order() {
        let split = RangeSplit {
            column: "x".into(),
            boundaries: vec![1.0, 5.0],
            descending: false,
            nulls_last: false,
        };
        let values = [Some(0.5), Some(1.0), Some(4.9), Some(5.0), Some(f64::NAN), None, Some(1.0)];
        let buckets = split.buckets(&frame(&values)).unwrap();
        assert_eq!(buckets, vec![0, 1, 1, 2, 2, 0, 1]);
        let down = RangeSplit { descending: true, nulls_last: true, ..split };
        assert_eq!(down.buckets(&frame(&values)).unwrap(), vec![2, 1, 1, 0, 0, 2, 1]);
    }

    #[test]
    fn gather_puts_each_outputs_rows_together_in_their_order() {
        let f = frame(&[Some(3.0), Some(1.0), Some(2.0), Some(1.5)]);
        let (gathered, offsets) = gather(&f, &[1, 0, 1, 0], 3).unwrap();
        assert_eq!(offsets, vec![0, 2, 4, 4]);
        let tags: Vec<i64> =
            gathered.column("tag").unwrap().i64().unwrap().into_no_null_iter().collect();
        assert_eq!(tags, vec![1, 3, 0, 2]);
    }

    #[test]
    fn tallies_do_not_depend_on_row_order_or_chunks() {
        let f = frame(&[Some(3.0), None, Some(2.0), Some(1.5)]);
        let (gathered, offsets) = gather(&f, &[1, 0, 1, 0], 2).unwrap();
        assert_eq!(tally(&f).unwrap(), tally(&gathered).unwrap());
        let first = gathered.slice(0, offsets[1]);
        let second = gathered.slice(offsets[1] as i64, offsets[2] - offsets[1]);
        assert_eq!(tally(&first).unwrap().plus(tally(&second).unwrap()), tally(&f).unwrap());
        let changed = frame(&[Some(3.0), None, Some(2.0), Some(1.25)]);
        assert_ne!(tally(&changed).unwrap(), tally(&f).unwrap());
    }

    #[test]
    fn equal_keys_hash_to_the_same_output() {
        let f = frame(&[Some(1.0), Some(2.0), Some(1.0), None, None]);
        let buckets = hash_buckets(&f, &["x".to_string()], 7).unwrap();
        assert_eq!(buckets[0], buckets[2]);
        assert_eq!(buckets[3], buckets[4]);
        assert!(buckets.iter().all(|b| *b < 7));
    }
}
