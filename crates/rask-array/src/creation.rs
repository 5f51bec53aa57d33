//! Making arrays: from an `ndarray`, filled (`zeros`, `ones`, `full`, `empty`), ranges
//! (`arange`, `linspace`), `eye`, and seeded random arrays.
//!
//! Everything but `from_ndarray` is a blockwise layer whose task makes its chunk from the
//! chunk's index, so nothing is held in the graph but a few numbers, and a chunk nobody reads
//! is never made. Random chunks are seeded from the seed and the chunk's index: the same seed
//! and chunks give the same values, in any order, on any machine.

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, Slice};
use rask_core::{BlockArg, BlockGrid, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};
use serde::{Deserialize, Serialize};

use crate::array::{layer_name, plain_fn, spec_arg, typed_fn, Array};
use crate::chunks::{ChunkSpec, Chunks};
use crate::draws::Draws;
use crate::element::{chunk_value, Element, Scalar};
use crate::error::{Error, Result};

/// An array of an in-memory `ndarray`, cut into `chunks` (each chunk is copied once, into
/// the graph).
pub fn from_ndarray<T: Element, S: Data<Elem = T>, D: Dimension>(
    data: &ArrayBase<S, D>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let data = data.view().into_dyn();
    let chunks = chunks.into().resolve(data.shape(), size_of::<T>())?;
    let name = layer_name("array", |t| {
        t.token(rask_core::Token::unique());
    });
    let identity = plain_fn("rask::identity");
    let grid = BlockGrid::of(&chunks.grid());
    let offsets: Vec<Vec<usize>> = (0..chunks.ndim()).map(|a| chunks.offsets(a)).collect();
    let tasks = (0..grid.len() as u32)
        .map(|linear| {
            let index = grid.unravel(linear);
            let block = data.slice_each_axis(|axis| {
                let a = axis.axis.index();
                let i = index[a] as usize;
                Slice::from(offsets[a][i]..offsets[a][i + 1])
            });
            let value = chunk_value(block.as_standard_layout().into_owned());
            let key = Key::block(name.clone(), &index);
            (key, TaskSpec::new(identity.clone(), vec![rask_core::Arg::Value(value)]))
        })
        .collect();
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[]));
    Ok(Array::from_graph(graph, name, chunks))
}

/// What a filling task makes: its chunk's shape and offset come from `chunks` and the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Fill {
    /// Every element this value.
    Constant(Scalar),
    /// `start + i * step` along the only axis.
    Range { start: Scalar, step: Scalar },
    /// `start + i * step` along the only axis, and exactly `stop` at `last` (linspace's end).
    Linear { start: f64, step: f64, last: Option<(usize, f64)> },
    /// Ones where the column is the row plus `k`.
    Eye { k: i64 },
    /// Uniform in `[0, 1)`.
    Uniform { seed: u64 },
    /// Normal with this mean and standard deviation.
    Normal { seed: u64, mean: f64, std: f64 },
    /// Uniform integers in `[low, high)`.
    Integers { seed: u64, low: i128, high: i128 },
}
rask_core::register_type!(Fill);
rask_core::register_type!((Chunks, Fill));

fn filled<T: Element>(shape: &[usize], chunks: Chunks, fill: Fill, prefix: &str) -> Array<T> {
    let spec_bytes = rask_core::value::encode_serde(&(&chunks, &fill)).unwrap_or_default();
    let name = layer_name(prefix, |t| {
        t.str(T::DTYPE).bytes(&spec_bytes);
    });
    let spec = Value::serde((chunks.clone(), fill));
    debug_assert_eq!(chunks.shape(), shape);
    Array::blockwise_layer(
        name,
        typed_fn::<T>("rask_array::fill"),
        vec![BlockArg::PartIndex, BlockArg::Value(spec)],
        &[],
        chunks,
    )
}

/// An array of `value` everywhere.
pub fn full<T: Element>(
    shape: &[usize],
    value: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let chunks = chunks.into().resolve(shape, size_of::<T>())?;
    Ok(filled(shape, chunks, Fill::Constant(value.to_scalar()), "full"))
}

/// An array of zeros.
pub fn zeros<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    let chunks = chunks.into().resolve(shape, size_of::<T>())?;
    Ok(filled(shape, chunks, Fill::Constant(Scalar::Int(0)), "zeros"))
}

/// An array of ones.
pub fn ones<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    let chunks = chunks.into().resolve(shape, size_of::<T>())?;
    Ok(filled(shape, chunks, Fill::Constant(Scalar::Int(1)), "ones"))
}

/// An array whose values do not matter (they are zeros: safe Rust has no uninitialized
/// memory to hand out).
pub fn empty<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    let chunks = chunks.into().resolve(shape, size_of::<T>())?;
    Ok(filled(shape, chunks, Fill::Constant(Scalar::Int(0)), "empty"))
}

/// `start, start + step, ...` up to but not including `stop`, as NumPy's `arange`: the length
/// is `ceil((stop - start) / step)`, computed exactly for integers.
pub fn arange<T: Element>(
    start: T,
    stop: T,
    step: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let length = match (start.to_scalar(), stop.to_scalar(), step.to_scalar()) {
        (Scalar::Int(_), Scalar::Int(_), Scalar::Int(0)) => None,
        (Scalar::Int(a), Scalar::Int(b), Scalar::Int(s)) => {
            let span = b - a;
            // Ceiling division that is right for either sign.
            let n = if (span > 0) == (s > 0) && span != 0 {
                (span.abs() + s.abs() - 1) / s.abs()
            } else {
                0
            };
            Some(n.max(0) as usize)
        }
        (a, b, s) => {
            let (a, b, s) = (scalar_f64(a), scalar_f64(b), scalar_f64(s));
            if s == 0.0 || !s.is_finite() || !a.is_finite() || !b.is_finite() {
                None
            } else {
                Some(((b - a) / s).ceil().max(0.0) as usize)
            }
        }
    };
    let length = length.ok_or_else(|| {
        Error::Invalid(format!(
            "arange({start}, {stop}, {step}): the step must be finite and not 0"
        ))
    })?;
    let chunks = chunks.into().resolve(&[length], size_of::<T>())?;
    Ok(filled(
        &[length],
        chunks,
        Fill::Range { start: start.to_scalar(), step: step.to_scalar() },
        "arange",
    ))
}

fn scalar_f64(scalar: Scalar) -> f64 {
    f64::from_scalar(scalar)
}

/// `num` evenly spaced numbers from `start` to `stop` (included when `endpoint`), as NumPy's
/// `linspace`: `start + i * step`, and the last exactly `stop`.
pub fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    endpoint: bool,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<f64>> {
    let divisions = if endpoint { num.saturating_sub(1) } else { num };
    let step = if divisions > 0 { (stop - start) / divisions as f64 } else { 0.0 };
    let last = (endpoint && num > 1).then(|| (num - 1, stop));
    let chunks = chunks.into().resolve(&[num], 8)?;
    Ok(filled(&[num], chunks, Fill::Linear { start, step, last }, "linspace"))
}

/// An `n × m` array (`m = n` unless given) with ones on diagonal `k` (0 the main one, positive
/// above it) and zeros elsewhere.
pub fn eye<T: Element>(
    n: usize,
    m: Option<usize>,
    k: i64,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let shape = [n, m.unwrap_or(n)];
    let chunks = chunks.into().resolve(&shape, size_of::<T>())?;
    Ok(filled(&shape, chunks, Fill::Eye { k }, "eye"))
}

/// Seeded random arrays: the same seed and chunks give the same values, locally and on a
/// cluster.
pub mod random {
    use super::*;

    /// Uniform `f64` in `[0, 1)`.
    pub fn random(shape: &[usize], chunks: impl Into<ChunkSpec>, seed: u64) -> Result<Array<f64>> {
        let chunks = chunks.into().resolve(shape, 8)?;
        Ok(filled(shape, chunks, Fill::Uniform { seed }, "random"))
    }

    /// Normal `f64` with mean `mean` and standard deviation `std`.
    pub fn normal(
        mean: f64,
        std: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        seed: u64,
    ) -> Result<Array<f64>> {
        if !(std >= 0.0 && std.is_finite() && mean.is_finite()) {
            return Err(Error::Invalid(format!(
                "normal({mean}, {std}): the mean must be finite and the standard deviation finite and at least 0"
            )));
        }
        let chunks = chunks.into().resolve(shape, 8)?;
        Ok(filled(shape, chunks, Fill::Normal { seed, mean, std }, "normal"))
    }

    /// Uniform integers in `[low, high)`, of any element type (`u8` images, `i64` labels).
    pub fn integers<T: Element>(
        low: i64,
        high: i64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        seed: u64,
    ) -> Result<Array<T>> {
        if low >= high {
            return Err(Error::Invalid(format!(
                "integers({low}, {high}): low must be below high (the range is [low, high))"
            )));
        }
        let chunks = chunks.into().resolve(shape, size_of::<T>())?;
        let fill = Fill::Integers { seed, low: i128::from(low), high: i128::from(high) };
        Ok(filled(shape, chunks, fill, "integers"))
    }
}

/// A uniform integer in `[0, span)` without bias: Lemire's multiply-and-shift, which rejects
/// (rarely, and only after one division) the few products that would favour low values.
fn below(rng: &mut Draws, span: u128) -> u128 {
    if span <= u128::from(u64::MAX) {
        let span = span as u64;
        let mut m = u128::from(rng.next_u64()) * u128::from(span);
        if (m as u64) < span {
            let threshold = span.wrapping_neg() % span;
            while (m as u64) < threshold {
                m = u128::from(rng.next_u64()) * u128::from(span);
            }
        }
        return m >> 64;
    }
    // Spans beyond 64 bits only arise from i64::MIN..i64::MAX: two draws.
    loop {
        let x = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if x < span * (u128::MAX / span) {
            return x % span;
        }
    }
}

/// `values` as a `Vec<T>` when `T` is `U` itself (no copy), else the values back.
fn reuse<U: 'static, T: 'static>(values: Vec<U>) -> std::result::Result<Vec<T>, Vec<U>> {
    let boxed: Box<dyn std::any::Any> = Box::new(values);
    match boxed.downcast::<Vec<T>>() {
        Ok(same) => Ok(*same),
        Err(other) => Err(*other.downcast::<Vec<U>>().expect("the box holds a Vec<U>")),
    }
}

/// Uniform `f64` values as elements of type `T` (no copy for `f64`).
fn elements_of<T: Element>(values: Vec<f64>) -> Vec<T> {
    reuse(values).unwrap_or_else(|values: Vec<f64>| {
        values.into_iter().map(|v| T::from_scalar(Scalar::Float(v))).collect()
    })
}

fn fill<T: Element>(args: &[Value]) -> TaskResult {
    let part = *args
        .first()
        .ok_or_else(|| TaskError::msg("missing the block number"))?
        .get::<u32>(&"the block number")?;
    let (chunks, fill) = spec_arg::<(Chunks, Fill)>(args, 1, "the fill")?;
    let index = BlockGrid::of(&chunks.grid()).unravel(part);
    let shape = chunks.block_shape(&index);
    let offset: Vec<usize> =
        (0..chunks.ndim()).map(|a| chunks.offsets(a)[index[a] as usize]).collect();
    let len: usize = shape.iter().product();
    let chunk: ArrayD<T> = match fill {
        Fill::Constant(value) => ArrayD::from_elem(IxDyn(&shape), T::from_scalar(*value)),
        Fill::Range { start, step } => {
            let values = (offset[0]..offset[0] + len).map(|i| match (start, step) {
                (Scalar::Int(a), Scalar::Int(s)) => T::from_scalar(Scalar::Int(a + s * i as i128)),
                (a, s) => T::from_scalar(Scalar::Float(scalar_f64(*a) + scalar_f64(*s) * i as f64)),
            });
            ArrayD::from_shape_vec(IxDyn(&shape), values.collect())?
        }
        Fill::Linear { start, step, last } => {
            let values = (offset[0]..offset[0] + len).map(|i| match last {
                Some((at, stop)) if *at == i => T::from_scalar(Scalar::Float(*stop)),
                _ => T::from_scalar(Scalar::Float(start + step * i as f64)),
            });
            ArrayD::from_shape_vec(IxDyn(&shape), values.collect())?
        }
        Fill::Eye { k } => {
            // Zeros, then the ones of the diagonal that crosses the block (most blocks: none).
            let mut chunk = ArrayD::from_elem(IxDyn(&shape), T::from_scalar(Scalar::Int(0)));
            let one = T::from_scalar(Scalar::Int(1));
            for row in 0..shape[0] {
                let col = (offset[0] + row) as i64 + k - offset[1] as i64;
                if (0..shape[1] as i64).contains(&col) {
                    chunk[[row, col as usize]] = one;
                }
            }
            chunk
        }
        Fill::Uniform { seed } => {
            let values = Draws::for_chunk(*seed, part).units(len);
            ArrayD::from_shape_vec(IxDyn(&shape), elements_of(values))?
        }
        Fill::Normal { seed, mean, std } => {
            // Box–Muller, both values of each pair used.
            let mut rng = Draws::for_chunk(*seed, part);
            let mut values = Vec::with_capacity(len);
            while values.len() < len {
                let u1 = 1.0 - rng.next_unit(); // (0, 1]: the logarithm is finite
                let u2 = rng.next_unit();
                let radius = (-2.0 * u1.ln()).sqrt();
                let angle = std::f64::consts::TAU * u2;
                values.push(T::from_scalar(Scalar::Float(mean + std * radius * angle.cos())));
                if values.len() < len {
                    values.push(T::from_scalar(Scalar::Float(mean + std * radius * angle.sin())));
                }
            }
            ArrayD::from_shape_vec(IxDyn(&shape), values)?
        }
        Fill::Integers { seed, low, high } => {
            let mut rng = Draws::for_chunk(*seed, part);
            let span = (high - low) as u128;
            let mut values = Vec::with_capacity(len);
            if span == 256 && size_of::<T>() == 1 && T::DTYPE != "bool" {
                // Bytes over their whole range (uint8 images): the draws' little-endian bytes,
                // which are the bit fields below in the same order, shifted by `low`.
                let shift = low.rem_euclid(256) as u8;
                let mut bytes = rng.bytes(len);
                if shift != 0 {
                    bytes.iter_mut().for_each(|b| *b = b.wrapping_add(shift));
                }
                let values = match reuse::<u8, T>(bytes) {
                    Ok(values) => values,
                    Err(bytes) => T::read_bytes(&bytes).map_err(TaskError::msg)?,
                };
                return Ok(chunk_value(ArrayD::from_shape_vec(IxDyn(&shape), values)?));
            }
            if span.is_power_of_two() && span <= 1 << 32 {
                // Every bit of a draw is uniform: a power-of-two span takes its values from
                // consecutive bit fields of one draw (eight bytes per draw for uint8 images).
                let bits = span.trailing_zeros();
                let per_draw = 64u32.checked_div(bits).map_or(usize::MAX, |n| n as usize);
                let mask = (span - 1) as u64;
                while values.len() < len {
                    let mut draw = if bits == 0 { 0 } else { rng.next_u64() };
                    for _ in 0..per_draw.min(len - values.len()) {
                        values.push(T::from_scalar(Scalar::Int(low + i128::from(draw & mask))));
                        draw = draw.checked_shr(bits).unwrap_or(0);
                    }
                }
            } else {
                values.extend(
                    (0..len)
                        .map(|_| T::from_scalar(Scalar::Int(low + below(&mut rng, span) as i128))),
                );
            }
            ArrayD::from_shape_vec(IxDyn(&shape), values)?
        }
    };
    Ok(chunk_value(chunk))
}
crate::for_each_element!(register_typed, "rask_array::fill", fill);

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit-field draws of a power-of-two span, written out: what every byte-wide full-span
    /// fill must equal, so that the fast path changes no value.
    fn bit_fields(seed: u64, block: u32, len: usize, low: i128) -> Vec<i128> {
        let mut rng = Draws::for_chunk(seed, block);
        let mut out = Vec::new();
        while out.len() < len {
            let mut draw = rng.next_u64();
            for _ in 0..8.min(len - out.len()) {
                out.push(low + i128::from(draw & 0xff));
                draw >>= 8;
            }
        }
        out
    }

    #[test]
    fn byte_images_are_the_bit_fields_of_the_draws() {
        let u = random::integers::<u8>(0, 256, &[3, 7, 5], [2, 7, 5], 9).unwrap();
        let values = rask_local::ComputeExt::compute(&u).unwrap();
        // Block 1 holds the last image: 35 values from its own generator.
        let want = bit_fields(9, 1, 35, 0);
        let got: Vec<i128> =
            values.as_slice().unwrap()[70..].iter().map(|&v| i128::from(v)).collect();
        assert_eq!(got, want);
        let i = random::integers::<i8>(-128, 128, &[13], [13], 4).unwrap();
        let got: Vec<i128> =
            rask_local::ComputeExt::compute(&i).unwrap().iter().map(|&v| i128::from(v)).collect();
        assert_eq!(got, bit_fields(4, 0, 13, -128));
    }
}
