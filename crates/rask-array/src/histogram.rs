//! `histogram`: counts of values in bins, as NumPy's.
//!
//! Every chunk counts its own values (one task each), and a `split_every` tree of the shared
//! [`TreeReduction`] adds the counts. The bins are known before computing — `n` equal bins
//! over a given range, or explicit edges — as in `dask.array.histogram`, which needs the range
//! too: finding it would be a pass over the data of its own.
//!
//! NumPy's rules: a value `v` is in bin `i` when `edges[i] <= v < edges[i + 1]`, the last bin
//! includes its right edge, values outside the edges (and NaN) are not counted, and a range
//! with equal ends is widened by 0.5 on each side.

use ndarray::{ArrayD, IxDyn};
use rask_core::partitioned::TreeReduction;
use rask_core::{Graph, Key, Layer, TaskError, TaskResult, Value};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::chunk_value;
use crate::error::{Error, Result};
use crate::number::Real;

/// The bins of a histogram.
#[derive(Clone, Debug, PartialEq)]
pub enum Bins {
    /// `n` equal bins over `[min, max]`.
    Equal {
        /// How many bins.
        n: usize,
        /// The left edge of the first bin.
        min: f64,
        /// The right edge of the last bin.
        max: f64,
    },
    /// These edges (increasing; `n + 1` edges make `n` bins).
    Edges(Vec<f64>),
}

impl Bins {
    /// `n` equal bins over `[min, max]`.
    pub fn equal(n: usize, range: (f64, f64)) -> Self {
        Bins::Equal { n, min: range.0, max: range.1 }
    }

    /// The edges, checked.
    fn edges(&self) -> Result<Vec<f64>> {
        match *self {
            Bins::Equal { n, min, max } => {
                if n == 0 || !min.is_finite() || !max.is_finite() || min > max {
                    return Err(Error::Invalid(format!(
                        "histogram bins: {n} bins over ({min}, {max}): give at least one bin and \
                         a finite range with min <= max"
                    )));
                }
                let (min, max) = if min == max { (min - 0.5, max + 0.5) } else { (min, max) };
                // NumPy's linspace: start + i * step, and the last edge exactly max.
                let step = (max - min) / n as f64;
                let mut edges: Vec<f64> = (0..=n).map(|i| min + i as f64 * step).collect();
                edges[n] = max;
                Ok(edges)
            }
            Bins::Edges(ref edges) => {
                if edges.len() < 2
                    || edges.iter().any(|e| !e.is_finite())
                    || edges.windows(2).any(|w| w[0] > w[1])
                {
                    return Err(Error::Invalid(format!(
                        "histogram edges {edges:?}: give at least two finite, non-decreasing edges"
                    )));
                }
                Ok(edges.clone())
            }
        }
    }
}

impl<T: Real> Array<T> {
    /// The counts of the values in each bin (a 1-d `i64` array of one chunk) and the bin edges.
    pub fn histogram(&self, bins: &Bins) -> Result<(Array<i64>, Vec<f64>)> {
        let edges = bins.edges()?;
        let partial_name = layer_name("histogram-partial", |t| {
            t.str(self.name.as_str());
            edges.iter().for_each(|e| {
                t.u64(e.to_bits());
            });
        });
        let partial: Array<i64> = self.per_chunk(
            partial_name.clone(),
            typed_fn::<T>("rask_array::histogram_chunk"),
            Value::serde(edges.clone()),
        );
        let name = layer_name("histogram", |t| {
            t.str(partial_name.as_str());
        });
        let add = crate::array::plain_fn("rask_array::add_counts");
        let tree = TreeReduction {
            combine_prefix: "histogram-combine".into(),
            combine: add.clone(),
            finish: add,
            args: Vec::new(),
            split_every: 8,
        };
        let tasks = tree.tasks(partial.block_keys(), Key::block(name.clone(), &[0]));
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&partial.graph]));
        let counts = Array::from_graph(graph, name, Chunks(vec![vec![edges.len() - 1]]));
        Ok((counts, edges))
    }
}

/// The bin of `v`, as NumPy decides it.
fn bin_of(edges: &[f64], v: f64) -> Option<usize> {
    let last = *edges.last()?;
    if v.is_nan() || v < edges[0] || v > last {
        return None;
    }
    if v == last {
        return Some(edges.len() - 2);
    }
    // The last edge <= v.
    Some(edges.partition_point(|&e| e <= v) - 1)
}

fn histogram_chunk<T: Real>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let edges = spec_arg::<Vec<f64>>(args, 1, "the bin edges")?;
    let mut counts = vec![0i64; edges.len() - 1];
    for &v in chunk {
        if let Some(bin) = bin_of(edges, v.to_f64()) {
            counts[bin] += 1;
        }
    }
    Ok(chunk_value(ArrayD::from_shape_vec(IxDyn(&[counts.len()]), counts)?))
}
crate::for_each_real!(register_typed, "rask_array::histogram_chunk", histogram_chunk);

/// The sum of a list of count chunks.
fn add_counts(args: &[Value]) -> TaskResult {
    let list = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the counts"))?;
    let mut total: Option<ArrayD<i64>> = None;
    for (i, value) in list.iter().enumerate() {
        let counts = value.get::<ArrayD<i64>>(&format_args!("counts {i}"))?;
        match total.as_mut() {
            None => total = Some(counts.clone()),
            Some(sum) => *sum += counts,
        }
    }
    Ok(chunk_value(total.ok_or_else(|| TaskError::msg("no counts to add"))?))
}
rask_core::register_function!("rask_array::add_counts", add_counts);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_numpy() {
        // np.histogram([1, 2, 3, 4, 10, nan, -1], bins=3, range=(1, 4)) → [1, 1, 2].
        let edges = Bins::equal(3, (1.0, 4.0)).edges().unwrap();
        assert_eq!(edges, [1.0, 2.0, 3.0, 4.0]);
        let mut counts = [0; 3];
        for v in [1.0, 2.0, 3.0, 4.0, 10.0, f64::NAN, -1.0] {
            if let Some(b) = bin_of(&edges, v) {
                counts[b] += 1;
            }
        }
        assert_eq!(counts, [1, 1, 2]);
        // A range with equal ends is widened: np.histogram([0.5, 0.5], 2, (0.5, 0.5)).
        assert_eq!(Bins::equal(2, (0.5, 0.5)).edges().unwrap(), [0.0, 0.5, 1.0]);
        assert_eq!(bin_of(&[0.0, 0.5, 1.0], 0.5), Some(1));
        assert!(Bins::equal(0, (0.0, 1.0)).edges().is_err());
        assert!(Bins::Edges(vec![1.0, 0.0]).edges().is_err());
    }
}
