//! Mergeable sketches of a distribution, for approximate quantiles (`quantiles`) and the
//! divisions of a range shuffle (`set_index`, `sort_values`): each partition keeps 1,000
//! weighted points of its values, and merging sketches keeps 1,000 of their union.

use serde::{Deserialize, Serialize};

/// Weighted points of a distribution.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Sketch {
    /// (value, weight), sorted by value.
    points: Vec<(f64, f64)>,
}
rask_core::register_type!(Sketch);

/// Points kept per sketch: the error of a quantile is about 1/SKETCH_POINTS of the rank.
const SKETCH_POINTS: usize = 1000;

impl Sketch {
    /// The sketch of some values (no NaN).
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Sketch {
        compress(values.into_iter().map(|v| (v, 1.0)).collect())
    }

    /// One sketch of the union of several.
    pub(crate) fn merge<'a>(sketches: impl IntoIterator<Item = &'a Sketch>) -> Sketch {
        compress(sketches.into_iter().flat_map(|s| s.points.iter().copied()).collect())
    }

    /// The value at quantile `q` (NaN for an empty sketch).
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        let total: f64 = self.points.iter().map(|p| p.1).sum();
        if self.points.is_empty() {
            return f64::NAN;
        }
        let target = q.clamp(0.0, 1.0) * total;
        let mut seen = 0.0;
        for (value, weight) in &self.points {
            seen += weight;
            if seen >= target {
                return *value;
            }
        }
        self.points.last().map_or(f64::NAN, |p| p.0)
    }
}

fn compress(mut points: Vec<(f64, f64)>) -> Sketch {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = points.iter().map(|p| p.1).sum();
    if points.len() <= SKETCH_POINTS || total == 0.0 {
        return Sketch { points };
    }
    // Keep one point per 1/SKETCH_POINTS of the weight, carrying that weight.
    let step = total / SKETCH_POINTS as f64;
    let mut out = Vec::with_capacity(SKETCH_POINTS + 1);
    let mut carried = 0.0;
    for (value, weight) in points {
        carried += weight;
        if carried >= step {
            out.push((value, carried));
            carried = 0.0;
        }
    }
    if carried > 0.0 {
        if let Some(last) = out.last_mut() {
            last.1 += carried;
        }
    }
    Sketch { points: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_quantiles_are_within_a_thousandth_of_the_rank() {
        let parts: Vec<Sketch> =
            (0..10).map(|p| Sketch::of((0..10_000).map(|i| f64::from(i * 10 + p)))).collect();
        let merged = Sketch::merge(&parts);
        for q in [0.1, 0.5, 0.9] {
            let rank = merged.quantile(q) / 100_000.0;
            assert!((rank - q).abs() < 0.002, "quantile {q} at rank {rank}");
        }
        assert!(Sketch::default().quantile(0.5).is_nan());
    }
}
