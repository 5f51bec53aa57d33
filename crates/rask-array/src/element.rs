//! The element types an [`Array`](crate::Array) can hold, and how their chunks travel.
//!
//! [`Element`] is implemented for the thirteen types of the list — `f64`, `f32`,
//! `i64`, `i32`, `i16`, `i8`, `u64`, `u32`, `u16`, `u8`, `bool`, [`c32`] and [`c64`] — and
//! for nothing else, so an array of another type is a compile error. Each type knows its NumPy
//! name (`dtype`), how to convert to and from every other one (`astype`, through [`Scalar`]),
//! the type its sums accumulate in ([`Element::Acc`]: 64-bit integers for integers and
//! booleans, as NumPy does), and how a chunk of it becomes raw bytes and back.
//!
//! A chunk is an `ndarray::ArrayD<T>`. When it must leave its process (a cluster, spilling),
//! it is written as a small header — the type tag, the number of axes, the shape — and then its
//! elements' bytes in row-major order: no per-element encoding. [`chunk_value`] wraps a chunk
//! as a [`Value`] with that encoder and its size; the decoders are registered for every type.

use std::fmt;

use ndarray::{ArrayD, IxDyn};
use num_complex::Complex;
use rask_core::Value;

/// A complex number of two `f32`s (NumPy's `complex64`).
#[allow(non_camel_case_types)]
pub type c32 = Complex<f32>;
/// A complex number of two `f64`s (NumPy's `complex128`).
#[allow(non_camel_case_types)]
pub type c64 = Complex<f64>;

/// Any element value, wide enough to convert between every pair of element types exactly
/// where the target can hold the value.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Scalar {
    /// An integer or a boolean.
    Int(i128),
    /// A real floating-point number.
    Float(f64),
    /// A complex number.
    Complex(c64),
}

mod sealed {
    pub trait Sealed {}
}

/// A type an [`Array`](crate::Array) can hold. Sealed: the list is fixed.
pub trait Element:
    sealed::Sealed
    + Copy
    + Default
    + PartialEq
    + fmt::Debug
    + fmt::Display
    + Send
    + Sync
    + serde::Serialize
    + serde::de::DeserializeOwned
    + 'static
{
    /// NumPy's name of the type: `"float64"`, `"uint8"`, `"complex128"`, `"bool"`.
    const DTYPE: &'static str;
    /// The tag in a chunk's header.
    const TAG: u8;
    /// What sums and products of this type accumulate in.
    type Acc: Element;

    /// The value, widened.
    fn to_scalar(self) -> Scalar;
    /// The value converted from any element, as NumPy's `astype` does (C casts: floats to
    /// integers truncate and saturate, complex to real keeps the real part, zero is `false`).
    fn from_scalar(scalar: Scalar) -> Self;
    /// The value as a real number (complex: the real part; `true`: 1).
    fn to_f64(self) -> f64;
    /// The value in the accumulator type.
    fn accumulate(self) -> Self::Acc;
    /// The reductions' kernel: sums of a chunk along `axes` in the accumulator type (wrapping
    /// for integers, as NumPy does), 8- and 16-bit integers and `bool` through 32-bit lanes.
    #[doc(hidden)]
    fn sum_axes(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<Self::Acc>;
    /// The means' kernel: sums along `axes` as `f64`, the 8- and 16-bit integers and `bool`
    /// exactly in 32-bit lanes widened straight into `f64` (their sums cannot overflow), the
    /// other types by `f64` additions.
    #[doc(hidden)]
    fn mean_sums(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<f64>;
    /// Appends the elements' bytes.
    fn write_bytes(elements: &[Self], out: &mut Vec<u8>);
    /// Reads elements written by [`Element::write_bytes`].
    fn read_bytes(bytes: &[u8]) -> Result<Vec<Self>, String>;
}

impl Scalar {
    fn as_f64(self) -> f64 {
        match self {
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
            Scalar::Complex(c) => c.re,
        }
    }
    fn as_c64(self) -> c64 {
        match self {
            Scalar::Complex(c) => c,
            other => c64::new(other.as_f64(), 0.0),
        }
    }
}

macro_rules! pod_bytes {
    ($t:ty) => {
        fn write_bytes(elements: &[Self], out: &mut Vec<u8>) {
            out.extend_from_slice(bytemuck::cast_slice::<$t, u8>(elements));
        }
        fn read_bytes(bytes: &[u8]) -> Result<Vec<Self>, String> {
            let size = std::mem::size_of::<$t>();
            if bytes.len() % size != 0 {
                return Err(format!(
                    "{} bytes are not a whole number of {}-byte elements",
                    bytes.len(),
                    size
                ));
            }
            // The bytes of a message need not be aligned for the type: copy them out.
            Ok(bytemuck::pod_collect_to_vec::<u8, $t>(bytes))
        }
    };
}

macro_rules! integer_element {
    ($($t:ty => $dtype:literal, $tag:literal, $acc:ty, $lane:ty, $block:expr, $small:literal);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: &'static str = $dtype;
            const TAG: u8 = $tag;
            type Acc = $acc;
            fn sum_axes(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<$acc> {
                crate::fold::lane_sums(
                    x,
                    axes,
                    $block,
                    |v: $t| v as $lane,
                    <$lane>::wrapping_add,
                    |total: $acc, lane: $lane| total.wrapping_add(lane as $acc),
                    <$acc>::wrapping_add,
                )
            }
            fn mean_sums(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<f64> {
                if $small {
                    crate::fold::lane_sums(
                        x,
                        axes,
                        $block,
                        |v: $t| v as $lane,
                        <$lane>::wrapping_add,
                        |total: f64, lane: $lane| total + lane as f64,
                        |a, b| a + b,
                    )
                } else {
                    crate::fold::f64_sums(x, axes)
                }
            }
            fn to_scalar(self) -> Scalar {
                Scalar::Int(self as i128)
            }
            fn from_scalar(scalar: Scalar) -> Self {
                match scalar {
                    Scalar::Int(i) => i as $t,
                    Scalar::Float(f) => f as $t,
                    Scalar::Complex(c) => c.re as $t,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn accumulate(self) -> $acc {
                self as $acc
            }
            pod_bytes!($t);
        }
    )*};
}

// Lanes and the most elements a lane adds before it could overflow: 16-bit lanes for `u8`
// (255 times 257 = 65535: twice the elements per vector add of 32-bit lanes, 20% off the
// image stack's mean over time), 32-bit lanes for the other 8- and 16-bit types (|i8| ≤ 128
// times 2²³ < 2³¹; 65535 times 2¹⁶ < 2³²; |i16| ≤ 32768 times 2¹⁵ < 2³¹), the accumulator
// itself for the wider ones.
integer_element! {
    i64 => "int64", 1, i64, i64, usize::MAX, false;
    i32 => "int32", 2, i64, i64, usize::MAX, false;
    i16 => "int16", 3, i64, i32, 1 << 15, true;
    i8 => "int8", 4, i64, i32, 1 << 23, true;
    u64 => "uint64", 5, u64, u64, usize::MAX, false;
    u32 => "uint32", 6, u64, u64, usize::MAX, false;
    u16 => "uint16", 7, u64, u32, 1 << 16, true;
    u8 => "uint8", 8, u64, u16, 257, true;
}

macro_rules! float_element {
    ($($t:ty => $dtype:literal, $tag:literal);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: &'static str = $dtype;
            const TAG: u8 = $tag;
            type Acc = $t;
            fn sum_axes(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<$t> {
                crate::fold::lane_sums(x, axes, usize::MAX, |v| v, |a, b| a + b, |a, b| a + b, |a, b| a + b)
            }
            fn mean_sums(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<f64> {
                crate::fold::f64_sums(x, axes)
            }
            fn to_scalar(self) -> Scalar {
                Scalar::Float(self as f64)
            }
            fn from_scalar(scalar: Scalar) -> Self {
                scalar.as_f64() as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn accumulate(self) -> $t {
                self
            }
            pod_bytes!($t);
        }
    )*};
}

float_element! {
    f64 => "float64", 9;
    f32 => "float32", 10;
}

macro_rules! complex_element {
    ($($t:ty, $part:ty => $dtype:literal, $tag:literal);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: &'static str = $dtype;
            const TAG: u8 = $tag;
            type Acc = $t;
            fn sum_axes(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<$t> {
                crate::fold::lane_sums(x, axes, usize::MAX, |v| v, |a, b| a + b, |a, b| a + b, |a, b| a + b)
            }
            fn mean_sums(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<f64> {
                crate::fold::f64_sums(x, axes)
            }
            fn to_scalar(self) -> Scalar {
                Scalar::Complex(c64::new(self.re as f64, self.im as f64))
            }
            fn from_scalar(scalar: Scalar) -> Self {
                let c = scalar.as_c64();
                Complex::new(c.re as $part, c.im as $part)
            }
            fn to_f64(self) -> f64 {
                self.re as f64
            }
            fn accumulate(self) -> $t {
                self
            }
            pod_bytes!($t);
        }
    )*};
}

complex_element! {
    c64, f64 => "complex128", 11;
    c32, f32 => "complex64", 12;
}

/// The trues along `axes`, counted in 32-bit lanes (2³¹ values a block) and widened by `widen`.
fn true_counts<A: Copy + Default + std::ops::Add<Output = A>>(
    x: &ArrayD<bool>,
    axes: &[usize],
    widen: impl Fn(A, u32) -> A + Copy,
) -> ArrayD<A> {
    crate::fold::lane_sums(x, axes, 1 << 31, u32::from, u32::wrapping_add, widen, |a, b| a + b)
}

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: &'static str = "bool";
    const TAG: u8 = 13;
    type Acc = i64;
    fn sum_axes(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<i64> {
        true_counts(x, axes, |total: i64, lane| total + i64::from(lane))
    }
    fn mean_sums(x: &ArrayD<Self>, axes: &[usize]) -> ArrayD<f64> {
        true_counts(x, axes, |total: f64, lane| total + f64::from(lane))
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Int(i128::from(self))
    }
    fn from_scalar(scalar: Scalar) -> Self {
        match scalar {
            Scalar::Int(i) => i != 0,
            Scalar::Float(f) => f != 0.0,
            Scalar::Complex(c) => c.re != 0.0 || c.im != 0.0,
        }
    }
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn accumulate(self) -> i64 {
        i64::from(self)
    }
    fn write_bytes(elements: &[Self], out: &mut Vec<u8>) {
        out.extend(elements.iter().map(|&b| u8::from(b)));
    }
    fn read_bytes(bytes: &[u8]) -> Result<Vec<Self>, String> {
        bytes
            .iter()
            .map(|&b| match b {
                0 => Ok(false),
                1 => Ok(true),
                other => Err(format!("{other} is not a boolean byte")),
            })
            .collect()
    }
}

/// Converts one element to another type, as `astype` does.
pub fn cast<T: Element, U: Element>(value: T) -> U {
    U::from_scalar(value.to_scalar())
}

/// The bytes of a chunk: tag, number of axes, each axis length (u64, little-endian), elements.
pub fn encode_chunk<T: Element>(chunk: &ArrayD<T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 8 * chunk.ndim() + chunk.len() * size_of::<T>());
    out.push(T::TAG);
    out.push(chunk.ndim() as u8);
    for &n in chunk.shape() {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    match chunk.as_slice() {
        Some(elements) => T::write_bytes(elements, &mut out),
        None => T::write_bytes(&chunk.iter().copied().collect::<Vec<T>>(), &mut out),
    }
    out
}

/// A chunk from the bytes [`encode_chunk`] wrote; errors name what does not fit.
pub fn decode_chunk<T: Element>(bytes: &[u8]) -> Result<ArrayD<T>, String> {
    let (&tag, rest) = bytes.split_first().ok_or("an empty chunk message")?;
    if tag != T::TAG {
        return Err(format!(
            "a chunk of tag {tag} where {} (tag {}) was expected",
            T::DTYPE,
            T::TAG
        ));
    }
    let (&ndim, mut rest) = rest.split_first().ok_or("a chunk without its number of axes")?;
    let mut shape = Vec::with_capacity(ndim as usize);
    for axis in 0..ndim {
        if rest.len() < 8 {
            return Err(format!("a chunk header cut short at axis {axis}"));
        }
        let (length, tail) = rest.split_at(8);
        shape.push(u64::from_le_bytes(length.try_into().expect("8 bytes")) as usize);
        rest = tail;
    }
    let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let elements = T::read_bytes(rest)?;
    if expected != Some(elements.len()) {
        return Err(format!("a chunk of shape {shape:?} with {} elements", elements.len()));
    }
    ArrayD::from_shape_vec(IxDyn(&shape), elements).map_err(|e| e.to_string())
}

/// A chunk as a task result: shared in process, raw bytes when it must travel, sized for the
/// scheduler's placement and the workers' memory accounting.
pub fn chunk_value<T: Element>(chunk: ArrayD<T>) -> Value {
    let size = chunk.len() * size_of::<T>() + 64;
    Value::sized(chunk, |chunk: &ArrayD<T>| Ok(encode_chunk(chunk)), size)
}

/// The decoder registered for chunks of `T`.
pub fn decode_chunk_value<T: Element>(bytes: &[u8]) -> rask_core::Result<Value> {
    decode_chunk::<T>(bytes).map(chunk_value).map_err(|reason| rask_core::Error::Decode {
        type_name: std::any::type_name::<ArrayD<T>>(),
        reason,
    })
}

/// Runs `$m!(type, "dtype" $(, args)*)` once for every element type.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_element {
    ($m:ident $(, $arg:tt)*) => {
        $crate::for_each_real!($m $(, $arg)*);
        $m!(bool, "bool" $(, $arg)*);
        $m!($crate::element::c32, "complex64" $(, $arg)*);
        $m!($crate::element::c64, "complex128" $(, $arg)*);
    };
}

/// Registers `$function::<T>` as `"$base::<dtype>"` for every type `$m` of a list.
#[macro_export]
#[doc(hidden)]
macro_rules! register_typed {
    ($t:ty, $dtype:literal, $base:literal, $function:ident) => {
        rask_core::register_function!(concat!($base, "::<", $dtype, ">"), $function::<$t>);
    };
}

/// Runs `$m!(type, "dtype" $(, args)*)` for the real number types (integers and floats).
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_real {
    ($m:ident $(, $arg:tt)*) => {
        $m!(f64, "float64" $(, $arg)*);
        $m!(f32, "float32" $(, $arg)*);
        $m!(i64, "int64" $(, $arg)*);
        $m!(i32, "int32" $(, $arg)*);
        $m!(i16, "int16" $(, $arg)*);
        $m!(i8, "int8" $(, $arg)*);
        $m!(u64, "uint64" $(, $arg)*);
        $m!(u32, "uint32" $(, $arg)*);
        $m!(u16, "uint16" $(, $arg)*);
        $m!(u8, "uint8" $(, $arg)*);
    };
}

/// Runs `$m!(type, "dtype" $(, args)*)` for the types with arithmetic (reals and complex).
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_number {
    ($m:ident $(, $arg:tt)*) => {
        $crate::for_each_real!($m $(, $arg)*);
        $m!($crate::element::c32, "complex64" $(, $arg)*);
        $m!($crate::element::c64, "complex128" $(, $arg)*);
    };
}

macro_rules! register_chunk_codec {
    ($t:ty, $dtype:literal) => {
        inventory::submit! {
            rask_core::codec::TypeCodec {
                type_name: std::any::type_name::<ArrayD<$t>>,
                decode: decode_chunk_value::<$t>,
            }
        }
    };
}
for_each_element!(register_chunk_codec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_as_raw_bytes_for_every_type() {
        fn round_trip<T: Element>(values: Vec<T>, shape: &[usize]) {
            let chunk = ArrayD::from_shape_vec(IxDyn(shape), values).unwrap();
            let bytes = encode_chunk(&chunk);
            assert_eq!(bytes.len(), 2 + 8 * shape.len() + chunk.len() * size_of::<T>());
            assert_eq!(decode_chunk::<T>(&bytes).unwrap(), chunk);
            // A transposed (non-contiguous) chunk is written in row-major order.
            if chunk.ndim() == 2 {
                let t = chunk.t().to_owned();
                assert_eq!(decode_chunk::<T>(&encode_chunk(&chunk.t().into_owned())).unwrap(), t);
            }
        }
        round_trip::<u8>((0..12).collect(), &[3, 4]);
        round_trip::<f64>((0..12).map(f64::from).collect(), &[2, 3, 2]);
        round_trip::<bool>((0..6).map(|i| i % 2 == 0).collect(), &[6]);
        round_trip::<c32>((0..4).map(|i| c32::new(i as f32, -1.0)).collect(), &[2, 2]);
        round_trip::<i16>(vec![-3], &[]);
        round_trip::<u64>(vec![], &[0, 5]);
    }

    #[test]
    fn a_chunk_of_another_type_or_a_short_message_is_refused() {
        let bytes = encode_chunk(&ArrayD::from_elem(IxDyn(&[2]), 1.5_f64));
        assert!(decode_chunk::<f32>(&bytes).unwrap_err().contains("float32"));
        assert!(decode_chunk::<f64>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_chunk::<f64>(&[]).is_err());
        let mut bad_shape = bytes.clone();
        bad_shape[2] = 3;
        assert!(decode_chunk::<f64>(&bad_shape).unwrap_err().contains("shape"));
    }

    #[test]
    fn astype_follows_c_casts() {
        assert_eq!(cast::<f64, u8>(3.9), 3);
        assert_eq!(cast::<f64, u8>(300.0), 255);
        assert_eq!(cast::<i64, f64>(-2), -2.0);
        assert_eq!(cast::<u64, i64>(u64::MAX), -1);
        assert!(cast::<f32, bool>(0.5));
        assert_eq!(cast::<bool, i32>(true), 1);
        assert_eq!(cast::<c64, f64>(c64::new(2.0, 5.0)), 2.0);
        assert_eq!(cast::<u8, c32>(7), c32::new(7.0, 0.0));
        assert_eq!(cast::<i64, i64>(i64::MIN), i64::MIN);
    }
}

rask_core::register_type!(Scalar);

/// Values made of chunks of one element type (reduction partials, local factors) and a few
/// numbers, that travel as raw chunk bytes like chunks do, instead of element by element
/// through serde.
pub(crate) trait RawParts: Sized + Send + Sync + 'static {
    /// The element type of the chunks.
    type Element: Element;
    /// The chunks and the numbers the value is made of.
    fn to_parts(&self) -> (Vec<&ArrayD<Self::Element>>, Vec<f64>);
    /// The value back from its parts.
    fn from_parts(chunks: Vec<ArrayD<Self::Element>>, numbers: Vec<f64>) -> Result<Self, String>;
}

fn encode_parts<P: RawParts>(value: &P) -> Result<Vec<u8>, String> {
    let (chunks, numbers) = value.to_parts();
    let mut out = Vec::new();
    out.extend_from_slice(&(numbers.len() as u32).to_le_bytes());
    numbers.iter().for_each(|n| out.extend_from_slice(&n.to_le_bytes()));
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for chunk in chunks {
        let bytes = encode_chunk(chunk);
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

pub(crate) fn decode_parts<P: RawParts>(bytes: &[u8]) -> Result<P, String> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("a partial cut short ({} bytes left, {n} needed)", rest.len()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    let numbers = (0..count)
        .map(|_| Ok(f64::from_le_bytes(take(8)?.try_into().expect("8 bytes"))))
        .collect::<Result<Vec<f64>, String>>()?;
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    let mut chunks = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let length = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
        chunks.push(decode_chunk::<P::Element>(take(length)?)?);
    }
    P::from_parts(chunks, numbers)
}

/// A value of chunks as a task result: its size is its chunks', and it travels as raw bytes.
pub(crate) fn parts_value<P: RawParts>(value: P) -> Value {
    let (chunks, numbers) = value.to_parts();
    let size = chunks.iter().map(|c| c.len() * size_of::<P::Element>() + 64).sum::<usize>()
        + numbers.len() * 8;
    Value::sized(value, encode_parts::<P>, size)
}

/// The decoder registered for a value of chunks.
pub(crate) fn decode_parts_value<P: RawParts>(bytes: &[u8]) -> rask_core::Result<Value> {
    decode_parts::<P>(bytes).map(parts_value).map_err(|reason| rask_core::Error::Decode {
        type_name: std::any::type_name::<P>(),
        reason,
    })
}

/// Registers the raw-bytes decoder of a [`RawParts`] type.
macro_rules! register_parts {
    ($t:ty) => {
        inventory::submit! {
            rask_core::codec::TypeCodec {
                type_name: std::any::type_name::<$t>,
                decode: $crate::element::decode_parts_value::<$t>,
            }
        }
    };
}
