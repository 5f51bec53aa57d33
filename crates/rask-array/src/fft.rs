//! FFTs with `rustfft`: `fft`/`ifft`, `rfft`/`irfft`, `fft2`/`fftn` and `fftfreq`, along axes
//! held in one chunk (each chunk is transformed on its own, lane by lane).
//!
//! Along an axis cut into several chunks the transform would need every chunk of a lane at
//! once: that is an error saying to rechunk, with the call that does it. `f32` and `c32` input
//! gives `c32`, every other type `c64` (NumPy 2 keeps single precision the same way). Scaling
//! is NumPy's default (`norm="backward"`): the inverse transforms divide by `n`.

use std::sync::Arc;

use ndarray::{ArrayD, Axis};
use num_complex::Complex;
use rustfft::{FftNum, FftPlanner};
use serde::{Deserialize, Serialize};

use rask_core::{AxisMap, BlockArg, TaskResult, Value};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{c32, c64, chunk_value, Element};
use crate::error::{Error, Result};

/// Element types an FFT can take, and the complex type it gives.
pub trait FftInput: Element {
    /// The float precision of the transform.
    type Float: FftNum + Element;
    /// The complex result type.
    type Complex: Element;
    /// The value as a complex number of the transform's precision.
    fn to_complex(self) -> Complex<Self::Float>;
}

macro_rules! fft_input {
    ($float:ty, $complex:ty; $($t:ty),*) => {$(
        impl FftInput for $t {
            type Float = $float;
            type Complex = $complex;
            fn to_complex(self) -> Complex<$float> {
                Complex::new(self.to_f64() as $float, 0.0)
            }
        }
    )*};
}
fft_input!(f64, c64; f64, i64, i32, i16, i8, u64, u32, u16, u8);
fft_input!(f32, c32; f32);

impl FftInput for c64 {
    type Float = f64;
    type Complex = c64;
    fn to_complex(self) -> c64 {
        self
    }
}

impl FftInput for c32 {
    type Float = f32;
    type Complex = c32;
    fn to_complex(self) -> c32 {
        self
    }
}

/// Which transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Transform {
    Forward,
    Inverse,
    /// Real input, the `n / 2 + 1` non-negative frequencies out.
    RealForward,
    /// The inverse of `RealForward`, to `n` real values.
    RealInverse {
        n: usize,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FftSpec {
    transform: Transform,
    axis: usize,
}
rask_core::register_type!(FftSpec);

impl<T: FftInput> Array<T> {
    fn whole_axis(&self, operation: &'static str, axis: usize) -> Result<()> {
        let chunks = self.chunks.per_axis()[axis].len();
        if chunks > 1 {
            let mut fix: Vec<String> =
                self.chunks.max_block_shape().iter().map(|n| n.to_string()).collect();
            fix[axis] = self.shape()[axis].to_string();
            return Err(Error::ChunkedAxis {
                operation,
                axis,
                chunks,
                fix: format!("[{}]", fix.join(", ")),
            });
        }
        Ok(())
    }

    fn transform<U: Element>(
        &self,
        transform: Transform,
        axis: isize,
        operation: &'static str,
    ) -> Result<Array<U>> {
        let axis = self.axis(axis)?;
        self.whole_axis(operation, axis)?;
        let mut per_axis = self.chunks.per_axis().to_vec();
        match transform {
            Transform::RealForward => per_axis[axis] = vec![self.shape()[axis] / 2 + 1],
            Transform::RealInverse { n } => per_axis[axis] = vec![n],
            Transform::Forward | Transform::Inverse => {}
        }
        let spec = FftSpec { transform, axis };
        let name = layer_name("fft", |t| {
            t.str(self.name.as_str()).bytes(format!("{spec:?}").as_bytes());
        });
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        Ok(Array::blockwise_layer(
            name,
            typed_fn::<T>("rask_array::fft_chunk"),
            vec![
                BlockArg::Aligned(self.name.clone(), identity),
                BlockArg::Value(Value::serde(spec)),
            ],
            &[&self.graph],
            Chunks(per_axis),
        ))
    }

    /// The discrete Fourier transform along `axis` (which must be one chunk).
    pub fn fft(&self, axis: isize) -> Result<Array<T::Complex>> {
        self.transform(Transform::Forward, axis, "fft")
    }

    /// The inverse transform along `axis`, divided by `n`.
    pub fn ifft(&self, axis: isize) -> Result<Array<T::Complex>> {
        self.transform(Transform::Inverse, axis, "ifft")
    }

    /// The transform of real input: the `n / 2 + 1` non-negative frequencies.
    pub fn rfft(&self, axis: isize) -> Result<Array<T::Complex>> {
        self.transform(Transform::RealForward, axis, "rfft")
    }

    /// The transform along several axes in turn (each must be one chunk): `fftn(&[0, 1])` is
    /// `fft2`.
    pub fn fftn(&self, axes: &[isize]) -> Result<Array<T::Complex>>
    where
        T::Complex: FftInput<Complex = T::Complex>,
    {
        let (first, rest) = axes
            .split_first()
            .ok_or_else(|| Error::Invalid("fftn needs at least one axis".into()))?;
        let mut out = self.fft(*first)?;
        for &axis in rest {
            out = out.fft(axis)?;
        }
        Ok(out)
    }

    /// The 2-d transform over the last two axes.
    pub fn fft2(&self) -> Result<Array<T::Complex>>
    where
        T::Complex: FftInput<Complex = T::Complex>,
    {
        self.fftn(&[-2, -1])
    }
}

impl<F: FftNum + Element> Array<Complex<F>>
where
    Complex<F>: FftInput<Float = F>,
{
    /// The inverse of [`Array::rfft`]: `n` real values along `axis` (`n` defaults to
    /// `2 * (m - 1)` for `m` input frequencies).
    pub fn irfft(&self, axis: isize, n: Option<usize>) -> Result<Array<F>> {
        let a = self.axis(axis)?;
        let m = self.shape()[a];
        let n = n.unwrap_or(2 * m.saturating_sub(1));
        if n == 0 {
            return Err(Error::Invalid(format!("irfft to 0 values along axis {a}: give n >= 1")));
        }
        self.transform(Transform::RealInverse { n }, axis, "irfft")
    }
}

/// The sample frequencies of an `n`-point transform with spacing `d` (NumPy's `fftfreq`).
pub fn fftfreq(n: usize, d: f64) -> Result<Array<f64>> {
    if n == 0 || d == 0.0 || !d.is_finite() {
        return Err(Error::Invalid(format!(
            "fftfreq({n}, {d}): n must be at least 1 and d finite and not 0"
        )));
    }
    let scale = 1.0 / (n as f64 * d);
    let values: Vec<f64> = (0..n)
        .map(|i| if i < n.div_ceil(2) { i as f64 } else { i as f64 - n as f64 } * scale)
        .collect();
    crate::creation::from_ndarray(&ndarray::Array1::from(values), [n])
}

fn transform_lanes<F: FftNum>(data: &mut ArrayD<Complex<F>>, axis: usize, inverse: bool) {
    let n = data.shape()[axis];
    if n == 0 {
        return;
    }
    let mut planner = FftPlanner::<F>::new();
    let fft: Arc<dyn rustfft::Fft<F>> =
        if inverse { planner.plan_fft_inverse(n) } else { planner.plan_fft_forward(n) };
    let mut buffer = vec![Complex::new(F::zero(), F::zero()); n];
    let mut scratch = vec![Complex::new(F::zero(), F::zero()); fft.get_inplace_scratch_len()];
    let scale = F::from_f64(1.0 / n as f64).expect("a float");
    for mut lane in data.lanes_mut(Axis(axis)) {
        for (b, v) in buffer.iter_mut().zip(lane.iter()) {
            *b = *v;
        }
        fft.process_with_scratch(&mut buffer, &mut scratch);
        for (v, b) in lane.iter_mut().zip(&buffer) {
            *v = if inverse { *b * scale } else { *b };
        }
    }
}

fn fft_chunk<T: FftInput>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let spec = spec_arg::<FftSpec>(args, 1, "the transform")?;
    let mut data: ArrayD<Complex<T::Float>> = chunk.mapv(FftInput::to_complex);
    let axis = spec.axis;
    let as_out = |data: ArrayD<Complex<T::Float>>| -> TaskResult {
        // `T::Complex` is `Complex<T::Float>` for every input type: the value is moved as is.
        let value = Value::new(data);
        let typed = value.into_inner::<ArrayD<T::Complex>>(&"the transform")?;
        Ok(chunk_value(typed))
    };
    match spec.transform {
        Transform::Forward => {
            transform_lanes(&mut data, axis, false);
            as_out(data)
        }
        Transform::Inverse => {
            transform_lanes(&mut data, axis, true);
            as_out(data)
        }
        Transform::RealForward => {
            transform_lanes(&mut data, axis, false);
            let keep = data.shape()[axis] / 2 + 1;
            as_out(data.slice_axis(Axis(axis), ndarray::Slice::from(0..keep)).to_owned())
        }
        Transform::RealInverse { n } => {
            // Rebuild the full Hermitian spectrum of length n, transform back, keep real parts.
            let m = data.shape()[axis];
            let mut shape = data.shape().to_vec();
            shape[axis] = n;
            let mut full = ArrayD::from_elem(
                ndarray::IxDyn(&shape),
                Complex::new(T::Float::zero(), T::Float::zero()),
            );
            for (mut out, lane) in
                full.lanes_mut(Axis(axis)).into_iter().zip(data.lanes(Axis(axis)))
            {
                for k in 0..n {
                    let value = if k < m && k <= n / 2 {
                        lane[k]
                    } else {
                        let mirror = n - k;
                        if mirror < m {
                            lane[mirror].conj()
                        } else {
                            Complex::new(T::Float::zero(), T::Float::zero())
                        }
                    };
                    out[k] = value;
                }
                // The zero (and, for even n, the Nyquist) frequency of a real signal is real.
                out[0].im = T::Float::zero();
                if n % 2 == 0 && n / 2 < m {
                    out[n / 2].im = T::Float::zero();
                }
            }
            transform_lanes(&mut full, axis, true);
            let real = full.mapv(|c| c.re);
            let value = Value::new(real);
            Ok(chunk_value(value.into_inner::<ArrayD<T::Float>>(&"the inverse transform")?))
        }
    }
}

use num_traits::Zero;

macro_rules! register_fft {
    ($($t:ty, $d:literal);*) => {$(
        register_typed!($t, $d, "rask_array::fft_chunk", fft_chunk);
    )*};
}
register_fft!(f64, "float64"; f32, "float32"; i64, "int64"; i32, "int32"; i16, "int16"; i8, "int8";
    u64, "uint64"; u32, "uint32"; u16, "uint16"; u8, "uint8"; c64, "complex128"; c32, "complex64");
