//! What arithmetic each element type supports, as traits the compiler checks.
//!
//! * [`Number`]: the integers, floats and complex numbers — `+ - * /`, `maximum`/`minimum`
//!   (NaN-propagating for floats, lexicographic for complex numbers, as NumPy does).
//! * [`Real`]: integers and floats — ordered: comparisons, `clip`, `min`/`max` reductions.
//! * [`Float`]: `f32` and `f64` — `sqrt`, `exp`, `log`, trigonometry, rounding, `isnan`.
//! * [`Magnitude`]: what `abs` returns (the same type, or the real type of a complex one).
//!
//! Integer arithmetic wraps on overflow (NumPy's behaviour) and integer division by zero is a
//! task error naming the operation, never a silent value.

use std::ops::{Add, Div, Mul, Sub};

use crate::element::{c32, c64, Element};

/// Types with arithmetic.
pub trait Number:
    Element + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// `a + b`, wrapping for integers.
    fn add(self, other: Self) -> Self;
    /// `a - b`, wrapping for integers.
    fn sub(self, other: Self) -> Self;
    /// `a * b`, wrapping for integers.
    fn mul(self, other: Self) -> Self;
    /// `a / b`; `None` for an integer division by zero.
    fn div(self, other: Self) -> Option<Self>;
    /// The larger (NaN if either is NaN; lexicographic for complex numbers).
    fn maximum(self, other: Self) -> Self;
    /// The smaller (NaN if either is NaN; lexicographic for complex numbers).
    fn minimum(self, other: Self) -> Self;
    /// Zero.
    fn zero() -> Self;
    /// One.
    fn one() -> Self;
    /// Whether the value is NaN (never for integers).
    fn is_nan_value(self) -> bool;
}

/// Ordered numbers: the integers and floats.
pub trait Real: Number + PartialOrd {
    /// The smallest value of the type (`-inf` for floats).
    fn lowest() -> Self;
    /// The largest value of the type (`inf` for floats).
    fn highest() -> Self;
}

/// Floating-point numbers (their sums stay in their type).
pub trait Float: Real + num_traits::Float + Element<Acc = Self> {}

/// What `abs` of a type is.
pub trait Magnitude: Number {
    /// The result type: the type itself for reals, the real type of complex numbers.
    type Out: Element;
    /// The absolute value.
    fn magnitude(self) -> Self::Out;
    /// The squared magnitude (`|x|²`; for complex numbers `re² + im²`).
    fn magnitude_squared(self) -> Self::Out;
    /// The complex conjugate (the value itself for reals).
    fn conjugate(self) -> Self;
    /// The real part (the value itself for reals).
    fn real_part(self) -> Self::Out;
    /// The imaginary part (zero for reals).
    fn imaginary_part(self) -> Self::Out;
}

macro_rules! integer_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn add(self, other: Self) -> Self { self.wrapping_add(other) }
            fn sub(self, other: Self) -> Self { self.wrapping_sub(other) }
            fn mul(self, other: Self) -> Self { self.wrapping_mul(other) }
            fn div(self, other: Self) -> Option<Self> { self.checked_div(other).or((other != 0).then(|| self.wrapping_div(other))) }
            fn maximum(self, other: Self) -> Self { if other > self { other } else { self } }
            fn minimum(self, other: Self) -> Self { if other < self { other } else { self } }
            fn zero() -> Self { 0 }
            fn one() -> Self { 1 }
            fn is_nan_value(self) -> bool { false }
        }
        impl Real for $t {
            fn lowest() -> Self { <$t>::MIN }
            fn highest() -> Self { <$t>::MAX }
        }
    )*};
}
integer_number!(i64, i32, i16, i8, u64, u32, u16, u8);

macro_rules! signed_magnitude {
    ($($t:ty),*) => {$(
        impl Magnitude for $t {
            type Out = $t;
            fn magnitude(self) -> $t { self.wrapping_abs() }
            fn magnitude_squared(self) -> $t { self.wrapping_mul(self) }
            fn conjugate(self) -> $t { self }
            fn real_part(self) -> $t { self }
            fn imaginary_part(self) -> $t { 0 }
        }
    )*};
}
signed_magnitude!(i64, i32, i16, i8);

macro_rules! unsigned_magnitude {
    ($($t:ty),*) => {$(
        impl Magnitude for $t {
            type Out = $t;
            fn magnitude(self) -> $t { self }
            fn magnitude_squared(self) -> $t { self.wrapping_mul(self) }
            fn conjugate(self) -> $t { self }
            fn real_part(self) -> $t { self }
            fn imaginary_part(self) -> $t { 0 }
        }
    )*};
}
unsigned_magnitude!(u64, u32, u16, u8);

macro_rules! float_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn add(self, other: Self) -> Self { self + other }
            fn sub(self, other: Self) -> Self { self - other }
            fn mul(self, other: Self) -> Self { self * other }
            fn div(self, other: Self) -> Option<Self> { Some(self / other) }
            fn maximum(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() { <$t>::NAN } else { self.max(other) }
            }
            fn minimum(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() { <$t>::NAN } else { self.min(other) }
            }
            fn zero() -> Self { 0.0 }
            fn one() -> Self { 1.0 }
            fn is_nan_value(self) -> bool { self.is_nan() }
        }
        impl Real for $t {
            fn lowest() -> Self { <$t>::NEG_INFINITY }
            fn highest() -> Self { <$t>::INFINITY }
        }
        impl Float for $t {}
        impl Magnitude for $t {
            type Out = $t;
            fn magnitude(self) -> $t { self.abs() }
            fn magnitude_squared(self) -> $t { self * self }
            fn conjugate(self) -> $t { self }
            fn real_part(self) -> $t { self }
            fn imaginary_part(self) -> $t { 0.0 }
        }
    )*};
}
float_number!(f64, f32);

macro_rules! complex_number {
    ($($t:ty, $part:ty);*) => {$(
        impl Number for $t {
            fn add(self, other: Self) -> Self { self + other }
            fn sub(self, other: Self) -> Self { self - other }
            fn mul(self, other: Self) -> Self { self * other }
            fn div(self, other: Self) -> Option<Self> { Some(self / other) }
            fn maximum(self, other: Self) -> Self {
                if self.is_nan_value() || other.is_nan_value() { return <$t>::new(<$part>::NAN, <$part>::NAN); }
                if (other.re, other.im) > (self.re, self.im) { other } else { self }
            }
            fn minimum(self, other: Self) -> Self {
                if self.is_nan_value() || other.is_nan_value() { return <$t>::new(<$part>::NAN, <$part>::NAN); }
                if (other.re, other.im) < (self.re, self.im) { other } else { self }
            }
            fn zero() -> Self { <$t>::new(0.0, 0.0) }
            fn one() -> Self { <$t>::new(1.0, 0.0) }
            fn is_nan_value(self) -> bool { self.re.is_nan() || self.im.is_nan() }
        }
        impl Magnitude for $t {
            type Out = $part;
            fn magnitude(self) -> $part { self.norm() }
            fn magnitude_squared(self) -> $part { self.norm_sqr() }
            fn conjugate(self) -> $t { self.conj() }
            fn real_part(self) -> $part { self.re }
            fn imaginary_part(self) -> $part { self.im }
        }
    )*};
}
complex_number!(c64, f64; c32, f32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_arithmetic_wraps_and_division_by_zero_is_refused() {
        assert_eq!(Number::add(250u8, 10), 4);
        assert_eq!(Number::div(7i32, 0), None);
        assert_eq!(Number::div(i64::MIN, -1), Some(i64::MIN));
        assert_eq!(Number::div(-7i64, 2), Some(-3));
        assert!(Number::maximum(1.0f64, f64::NAN).is_nan());
        assert_eq!(Number::maximum(c64::new(1.0, 5.0), c64::new(2.0, 0.0)), c64::new(2.0, 0.0));
        assert_eq!(c32::new(3.0, 4.0).magnitude(), 5.0);
        assert_eq!(c64::new(3.0, 4.0).conjugate(), c64::new(3.0, -4.0));
        assert_eq!(
            (c64::new(3.0, 4.0).real_part(), c64::new(3.0, 4.0).imaginary_part()),
            (3.0, 4.0)
        );
        assert_eq!((7i8.conjugate(), 7i8.imaginary_part(), (-2.5f32).real_part()), (7, 0, -2.5));
    }
}
