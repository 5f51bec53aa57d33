//! The partials of means and variances: per-element sums and counts (a mean merges them by
//! adding) and count/mean/M2 moments (a variance merges them with Chan's formula, so a large
//! offset does not cancel the variance away). Both travel as raw chunk bytes.

use ndarray::{ArrayD, Zip};
use rask_core::TaskError;
use serde::{Deserialize, Serialize};

use crate::element::{Element, RawParts};
use crate::fold::{centred_squares, fold_axes};

/// Count, mean and sum of squared deviations, per element of a partial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Moments {
    pub(crate) count: ArrayD<f64>,
    pub(crate) mean: ArrayD<f64>,
    pub(crate) m2: Option<ArrayD<f64>>,
}
register_parts!(Moments);

impl RawParts for Moments {
    type Element = f64;
    fn to_parts(&self) -> (Vec<&ArrayD<f64>>, Vec<f64>) {
        let mut chunks = vec![&self.count, &self.mean];
        chunks.extend(self.m2.as_ref());
        (chunks, Vec::new())
    }
    fn from_parts(chunks: Vec<ArrayD<f64>>, _: Vec<f64>) -> std::result::Result<Self, String> {
        let mut chunks = chunks.into_iter();
        let (count, mean) = match (chunks.next(), chunks.next()) {
            (Some(c), Some(m)) => (c, m),
            _ => return Err("moments without their count and mean".into()),
        };
        Ok(Moments { count, mean, m2: chunks.next() })
    }
}

/// Sums and counts per element of a partial: what a mean merges (by adding, in place).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Sums {
    pub(crate) sum: ArrayD<f64>,
    pub(crate) count: Count,
}
register_parts!(Sums);

impl RawParts for Sums {
    type Element = f64;
    fn to_parts(&self) -> (Vec<&ArrayD<f64>>, Vec<f64>) {
        match &self.count {
            Count::Uniform(n) => (vec![&self.sum], vec![*n]),
            Count::PerElement(counts) => (vec![&self.sum, counts], Vec::new()),
        }
    }
    fn from_parts(
        chunks: Vec<ArrayD<f64>>,
        numbers: Vec<f64>,
    ) -> std::result::Result<Self, String> {
        let mut chunks = chunks.into_iter();
        let sum = chunks.next().ok_or("sums without their sum")?;
        let count = match (numbers.first(), chunks.next()) {
            (Some(n), None) => Count::Uniform(*n),
            (None, Some(counts)) => Count::PerElement(counts),
            _ => return Err("sums with both or neither kind of count".into()),
        };
        Ok(Sums { sum, count })
    }
}

/// How many values a partial's sums hold: the same for every element unless NaNs were skipped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Count {
    Uniform(f64),
    PerElement(ArrayD<f64>),
}

/// Per-element sums of a chunk along `axes` and how many values each holds.
pub(crate) fn sums<T: Element>(x: &ArrayD<T>, axes: &[usize], skipna: bool) -> Sums {
    if skipna {
        let sum = fold_axes(
            x,
            axes,
            0.0f64,
            |s, v| {
                let v = v.to_f64();
                if v.is_nan() {
                    s
                } else {
                    s + v
                }
            },
            |a, b| a + b,
        );
        let count = fold_axes(
            x,
            axes,
            0.0f64,
            |n, v| if v.to_f64().is_nan() { n } else { n + 1.0 },
            |a, b| a + b,
        );
        return Sums { sum, count: Count::PerElement(count) };
    }
    let sum = T::mean_sums(x, axes);
    let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
    Sums { sum, count: Count::Uniform(n as f64) }
}

impl Sums {
    pub(crate) fn counts(&self) -> ArrayD<f64> {
        match &self.count {
            Count::Uniform(n) => ArrayD::from_elem(self.sum.raw_dim(), *n),
            Count::PerElement(counts) => counts.clone(),
        }
    }

    pub(crate) fn means(&self) -> ArrayD<f64> {
        let mean = |s: f64, n: f64| if n > 0.0 { s / n } else { f64::NAN };
        match &self.count {
            Count::Uniform(n) => self.sum.mapv(|s| mean(s, *n)),
            Count::PerElement(counts) => {
                Zip::from(&self.sum).and(counts).map_collect(|&s, &n| mean(s, n))
            }
        }
    }

    pub(crate) fn merge(parts: &[&Sums]) -> std::result::Result<Sums, TaskError> {
        let (first, rest) =
            parts.split_first().ok_or_else(|| TaskError::msg("no partials to merge"))?;
        let mut total = (*first).clone();
        for part in rest {
            Zip::from(&mut total.sum).and(&part.sum).for_each(|t, &v| *t += v);
            total.count = match (&total.count, &part.count) {
                (Count::Uniform(a), Count::Uniform(b)) => Count::Uniform(a + b),
                _ => Count::PerElement(&total.counts() + &part.counts()),
            };
        }
        Ok(total)
    }
}

/// Per-element moments of a chunk along `axes`: the count, the mean, and the sum of squared
/// deviations from that mean (a second pass: stable for any offset).
pub(crate) fn moments<T: Element>(x: &ArrayD<T>, axes: &[usize], skipna: bool) -> Moments {
    let sums = sums(x, axes, skipna);
    let mean = sums.means();
    let m2 = if skipna {
        centred_squares(x, axes, &mean, |v| v.is_nan())
    } else {
        centred_squares(x, axes, &mean, |_| false)
    };
    Moments { count: sums.counts(), mean, m2: Some(m2) }
}

pub(crate) fn merge_moments(parts: &[&Moments]) -> std::result::Result<Moments, TaskError> {
    let (first, rest) =
        parts.split_first().ok_or_else(|| TaskError::msg("no partials to merge"))?;
    let mut total = (*first).clone();
    for part in rest {
        let n = &total.count + &part.count;
        // Chan et al.; a side with no values keeps the other's mean and M2 (its own mean is
        // NaN, which must not leak into the sum).
        let mean =
            Zip::from(&total.mean).and(&part.mean).and(&total.count).and(&part.count).map_collect(
                |&ma, &mb, &na, &nb| {
                    if nb == 0.0 {
                        ma
                    } else if na == 0.0 {
                        mb
                    } else {
                        ma + (mb - ma) * (nb / (na + nb))
                    }
                },
            );
        let m2 = match (&total.m2, &part.m2) {
            (Some(a), Some(b)) => {
                let mut m2 = a.clone();
                Zip::from(&mut m2)
                    .and(b)
                    .and(&total.mean)
                    .and(&part.mean)
                    .and(&total.count)
                    .and(&part.count)
                    .for_each(|m2, &b, &ma, &mb, &na, &nb| {
                        *m2 = if nb == 0.0 {
                            *m2
                        } else if na == 0.0 {
                            b
                        } else {
                            let d = mb - ma;
                            *m2 + b + d * d * na * nb / (na + nb)
                        };
                    });
                Some(m2)
            }
            _ => None,
        };
        total = Moments { count: n, mean, m2 };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::{decode_parts, parts_value};
    use ndarray::IxDyn;

    #[test]
    fn partials_travel_as_raw_chunks_and_come_back_equal() {
        let x = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |at| (at[0] * 3 + at[1]) as f64);
        for skipna in [false, true] {
            let value = parts_value(sums(&x, &[0], skipna));
            let wire = rask_core::WireValue::encode(&value).unwrap();
            // Raw: about 8 bytes per element, not a serde sequence.
            assert!(wire.bytes.len() < 3 * 8 * 2 + 200, "{} bytes", wire.bytes.len());
            let back = wire.decode().unwrap();
            let (a, b) = (value.get::<Sums>(&"sums").unwrap(), back.get::<Sums>(&"sums").unwrap());
            assert_eq!(a.sum, b.sum);
            assert_eq!(a.counts(), b.counts());
        }
        let value = parts_value(moments(&x, &[1], false));
        let back = rask_core::WireValue::encode(&value).unwrap().decode().unwrap();
        let (a, b) = (value.get::<Moments>(&"m").unwrap(), back.get::<Moments>(&"m").unwrap());
        assert_eq!((&a.count, &a.mean, &a.m2), (&b.count, &b.mean, &b.m2));
        let err = decode_parts::<Sums>(&[1, 0, 0]).unwrap_err();
        assert!(err.contains("cut short"), "{err}");
    }
}
