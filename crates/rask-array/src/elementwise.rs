//! Elementwise operations: arithmetic, comparisons, math functions, `where`, `clip`,
//! `astype` — every one a blockwise layer, so chains of them fuse into one task per chunk.
//!
//! Operands broadcast as in NumPy: shapes align from the last axis, and an axis of length 1
//! stretches to the other's length. In the graph a stretched axis reads block 0 of that
//! operand for every output block (`AxisMap::Block(0)`); an axis of the same length but other
//! chunks is rechunked to the first operand's chunks first. Inside a task the chunks broadcast
//! with `ndarray`. Shapes that cannot broadcast are an error naming both.
//!
//! The operators `+ - * /` between arrays and with scalars panic on shapes that cannot
//! broadcast (as `ndarray`'s operators do); the methods (`x.try_add(&y)?`, `x.zip_with(...)`)
//! return the error instead.

use ndarray::{ArrayD, IxDyn, Zip};
use rask_core::{AxisMap, BlockArg, Graph, TaskError, TaskFn, TaskResult, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, task_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{cast, chunk_value, Element, Scalar};
use crate::error::{Error, Result};
use crate::number::{Float, Magnitude, Number, Real};
use crate::pushdown::{step_if_movable, ErasedArray};

/// Arithmetic between two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// The larger, NaN-propagating.
    Maximum,
    /// The smaller, NaN-propagating.
    Minimum,
}
rask_core::register_type!(BinaryOp);

/// Comparisons, giving booleans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompareOp {
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
}
rask_core::register_type!(CompareOp);

/// Functions of floating-point numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum FloatOp {
    Sqrt,
    Exp,
    Expm1,
    Log,
    Log2,
    Log10,
    Log1p,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Floor,
    Ceil,
    /// Round half to even, as NumPy's `round`.
    Round,
    Trunc,
}
rask_core::register_type!(FloatOp);

/// Tests of floating-point numbers, giving booleans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FloatTest {
    /// Not a number.
    IsNan,
    /// Neither NaN nor infinite.
    IsFinite,
    /// Infinite.
    IsInf,
}
rask_core::register_type!(FloatTest);

/// Functions of any number with the same or the magnitude type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NumberOp {
    /// `-x` (wrapping for unsigned integers, as NumPy).
    Negative,
    /// `|x|` (complex: the modulus).
    Abs,
    /// `x * x` (complex: `|x|²` with [`Array::abs_squared`]).
    Square,
    /// `|x|²`.
    AbsSquared,
    /// The complex conjugate.
    Conjugate,
    /// The real part.
    Real,
    /// The imaginary part.
    Imaginary,
}
rask_core::register_type!(NumberOp);
rask_core::register_type!((Scalar, BinaryOp, bool));
rask_core::register_type!((CompareOp, Scalar));
rask_core::register_type!((Scalar, Scalar));

impl<T: Element> Array<T> {
    /// The array as an operand of a blockwise step (type-erased, for slice pushdown).
    pub(crate) fn operand(&self) -> ErasedArray {
        self.erased()
    }
}

/// How operands broadcast: the output's chunks, per operand its axis map and the chunks it
/// must be rechunked to first (when they differ from the output's along a shared axis).
struct Broadcast {
    chunks: Chunks,
    maps: Vec<Vec<AxisMap>>,
    rechunk: Vec<Option<Vec<Vec<usize>>>>,
}

fn broadcast(operands: &[&Chunks]) -> Result<Broadcast> {
    let shapes: Vec<Vec<usize>> = operands.iter().map(|c| c.shape()).collect();
    let ndim = shapes.iter().map(Vec::len).max().unwrap_or(0);
    let axis_of = |i: usize, o: usize| (o + shapes[i].len()).checked_sub(ndim);
    let mut out_chunks = Vec::with_capacity(ndim);
    for o in 0..ndim {
        // The first operand that has this axis at more than length 1 sets length and chunks.
        let mut chosen: Option<(usize, usize)> = None;
        for i in 0..operands.len() {
            let Some(a) = axis_of(i, o) else { continue };
            let length = shapes[i][a];
            if length == 1 {
                continue;
            }
            match chosen {
                None => chosen = Some((i, a)),
                Some((j, b)) if shapes[j][b] != length => {
                    return Err(Error::Broadcast {
                        left: shapes[j].clone(),
                        right: shapes[i].clone(),
                        axis: ndim - 1 - o,
                        a: shapes[j][b],
                        b: length,
                    })
                }
                Some(_) => {}
            }
        }
        out_chunks.push(match chosen {
            Some((i, a)) => operands[i].per_axis()[a].clone(),
            None => vec![1],
        });
    }
    let mut maps = Vec::with_capacity(operands.len());
    let mut rechunk = Vec::with_capacity(operands.len());
    for (i, operand) in operands.iter().enumerate() {
        let mut map = Vec::with_capacity(shapes[i].len());
        let mut wanted = operand.per_axis().to_vec();
        let mut differs = false;
        for (a, length) in shapes[i].iter().enumerate() {
            let o = a + ndim - shapes[i].len();
            let out_length: usize = out_chunks[o].iter().sum();
            if *length == 1 && out_length != 1 {
                map.push(AxisMap::Block(0));
            } else {
                map.push(AxisMap::Out(o as u8));
                if operand.per_axis()[a] != out_chunks[o] {
                    wanted[a] = out_chunks[o].clone();
                    differs = true;
                }
            }
        }
        maps.push(map);
        rechunk.push(differs.then_some(wanted));
    }
    Ok(Broadcast { chunks: Chunks(out_chunks), maps, rechunk })
}

/// Rechunks an operand as a broadcast plan asks.
fn aligned<T: Element>(x: &Array<T>, wanted: &Option<Vec<Vec<usize>>>) -> Result<Array<T>> {
    match wanted {
        Some(chunks) => x.rechunk(chunks.clone()),
        None => Ok(x.clone()),
    }
}

/// An elementwise layer over aligned operands, with literal arguments after them. `maps`:
/// how each operand's axes map to the output's (`None`: the same axes, as a slice moved in
/// front of a step rebuilds it). A layer without broadcasting keeps its step, so that a later
/// slice can move in front of it ([`crate::pushdown`]).
pub(crate) fn elementwise_layer<U: Element>(
    prefix: &str,
    func: TaskFn,
    operands: &[ErasedArray],
    maps: Option<&[Vec<AxisMap>]>,
    chunks: Chunks,
    literals: Vec<Value>,
    literal_bytes: &[u8],
) -> Array<U> {
    let identity: Vec<AxisMap> = (0..chunks.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
    let step = step_if_movable(
        prefix,
        &func,
        operands,
        maps.is_none_or(|maps| maps.iter().all(|m| *m == identity)),
        &chunks,
        &literals,
        literal_bytes,
    );
    let name = layer_name(prefix, |t| {
        t.str(func.name());
        operands.iter().for_each(|o| {
            t.str(o.name.as_str());
        });
        t.bytes(literal_bytes);
    });
    let mut args: Vec<BlockArg> = operands
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let map = maps.map_or_else(|| identity.clone(), |maps| maps[i].clone());
            BlockArg::Aligned(o.name.clone(), map)
        })
        .collect();
    args.extend(literals.into_iter().map(BlockArg::Value));
    let graphs: Vec<&Graph> = operands.iter().map(|o| &o.graph).collect();
    let mut array = Array::partial_layer(name, func, args, &graphs, chunks);
    array.step = step;
    crate::hooks::apply(array)
}

/// A function of each whole chunk with the same chunks (a per-chunk scan): like [`unary`], but
/// no slice moves in front of it, since its values depend on the rest of the chunk.
pub(crate) fn chunkwise<T: Element, U: Element, L: Serialize + Send + Sync + 'static>(
    x: &Array<T>,
    prefix: &str,
    func: TaskFn,
    literal: L,
) -> Array<U> {
    let mut array = unary(x, prefix, func, literal);
    array.step = None;
    array
}

/// A one-operand layer with the same chunks.
pub(crate) fn unary<T: Element, U: Element, L: Serialize + Send + Sync + 'static>(
    x: &Array<T>,
    prefix: &str,
    func: TaskFn,
    literal: L,
) -> Array<U> {
    let bytes = rask_core::value::encode_serde(&literal).unwrap_or_default();
    elementwise_layer(
        prefix,
        func,
        &[x.operand()],
        None,
        (*x.chunks).clone(),
        vec![Value::serde(literal)],
        &bytes,
    )
}

fn two<A: Element, B: Element, U: Element, L: Serialize + Send + Sync + 'static>(
    a: &Array<A>,
    b: &Array<B>,
    prefix: &str,
    func: TaskFn,
    literal: L,
) -> Result<Array<U>> {
    let plan = broadcast(&[&a.chunks, &b.chunks])?;
    let (a, b) = (aligned(a, &plan.rechunk[0])?, aligned(b, &plan.rechunk[1])?);
    let bytes = rask_core::value::encode_serde(&literal).unwrap_or_default();
    Ok(elementwise_layer(
        prefix,
        func,
        &[a.operand(), b.operand()],
        Some(&plan.maps),
        plan.chunks,
        vec![Value::serde(literal)],
        &bytes,
    ))
}

impl<T: Number> Array<T> {
    /// `op` between this array and another, broadcasting.
    pub fn zip_with(&self, other: &Array<T>, op: BinaryOp) -> Result<Array<T>> {
        two(self, other, "binary", typed_fn::<T>("rask_array::binary"), op)
    }

    /// `op` between this array and a scalar (`scalar_first`: `scalar op x`).
    pub fn with_scalar(&self, value: T, op: BinaryOp, scalar_first: bool) -> Array<T> {
        unary(
            self,
            "scalar",
            typed_fn::<T>("rask_array::binary_scalar"),
            (value.to_scalar(), op, scalar_first),
        )
    }

    /// `self + other`, or the broadcast error.
    pub fn try_add(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Add)
    }
    /// `self - other`, or the broadcast error.
    pub fn try_sub(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Sub)
    }
    /// `self * other`, or the broadcast error.
    pub fn try_mul(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Mul)
    }
    /// `self / other`, or the broadcast error.
    pub fn try_div(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Div)
    }
    /// The elementwise larger of two arrays (NaN if either is).
    pub fn maximum(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Maximum)
    }
    /// The elementwise smaller of two arrays (NaN if either is).
    pub fn minimum(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, BinaryOp::Minimum)
    }
    /// An in-memory array as an operand: chunked like this one where the shapes match, then
    /// `op` with broadcasting.
    pub fn zip_with_ndarray(&self, other: &ArrayD<T>, op: BinaryOp) -> Result<Array<T>> {
        // Chunk the in-memory array like the axes of `self` it lines up with.
        let ndim = self.ndim().max(other.ndim());
        let chunks: Vec<Vec<usize>> = other
            .shape()
            .iter()
            .enumerate()
            .map(|(a, &n)| {
                let mine = (a + self.ndim()).checked_sub(ndim).map(|s| &self.chunks.per_axis()[s]);
                match mine {
                    Some(c) if c.iter().sum::<usize>() == n => c.clone(),
                    _ => vec![n],
                }
            })
            .collect();
        let other = crate::creation::from_ndarray(other, chunks)?;
        self.zip_with(&other, op)
    }
}

impl<T: Magnitude> Array<T> {
    /// `-x`.
    pub fn negative(&self) -> Array<T> {
        unary(self, "negative", typed_fn::<T>("rask_array::number_same"), NumberOp::Negative)
    }
    /// `x * x`.
    pub fn square(&self) -> Array<T> {
        unary(self, "square", typed_fn::<T>("rask_array::number_same"), NumberOp::Square)
    }
    /// `|x|`: the same type for real numbers, the real type of complex ones.
    pub fn abs(&self) -> Array<T::Out> {
        unary(self, "absolute", typed_fn::<T>("rask_array::number_magnitude"), NumberOp::Abs)
    }
    /// `|x|²` (`abs(x**2)` of the image-stack walkthrough, without the square root).
    pub fn abs_squared(&self) -> Array<T::Out> {
        unary(
            self,
            "abs-squared",
            typed_fn::<T>("rask_array::number_magnitude"),
            NumberOp::AbsSquared,
        )
    }
    /// The complex conjugate (NumPy's `conj`; the same values for real types).
    pub fn conj(&self) -> Array<T> {
        unary(self, "conj", typed_fn::<T>("rask_array::number_same"), NumberOp::Conjugate)
    }
    /// The real part, in the real type (NumPy's `.real`).
    pub fn real(&self) -> Array<T::Out> {
        unary(self, "real", typed_fn::<T>("rask_array::number_magnitude"), NumberOp::Real)
    }
    /// The imaginary part, in the real type (NumPy's `.imag`; zeros for real types).
    pub fn imag(&self) -> Array<T::Out> {
        unary(self, "imag", typed_fn::<T>("rask_array::number_magnitude"), NumberOp::Imaginary)
    }
}

impl<T: Element> Array<T> {
    /// Elementwise comparison with another array, broadcasting.
    pub fn compare(&self, other: &Array<T>, op: CompareOp) -> Result<Array<bool>> {
        two(self, other, "compare", typed_fn::<T>("rask_array::compare"), op)
    }

    /// Elementwise comparison with a scalar: `x.compare_scalar(CompareOp::Lt, 0.99)`.
    pub fn compare_scalar(&self, op: CompareOp, value: T) -> Array<bool> {
        unary(self, "compare", typed_fn::<T>("rask_array::compare_scalar"), (op, value.to_scalar()))
    }

    /// `x == y` elementwise.
    pub fn equal(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare(other, CompareOp::Eq)
    }

    /// The values converted to `U`, as NumPy's `astype` (C casts).
    pub fn astype<U: Element>(&self) -> Array<U> {
        if T::DTYPE == U::DTYPE {
            // Same type: the same layers.
            return Array::with_shared_chunks(
                self.graph.clone(),
                self.name.clone(),
                self.chunks.clone(),
            );
        }
        let func =
            crate::array::plain_fn(&format!("rask_array::astype::<{},{}>", T::DTYPE, U::DTYPE));
        unary(self, "astype", func, U::DTYPE.to_string())
    }
}

impl<T: Real> Array<T> {
    /// The values limited to `[min, max]`.
    pub fn clip(&self, min: T, max: T) -> Array<T> {
        unary(self, "clip", typed_fn::<T>("rask_array::clip"), (min.to_scalar(), max.to_scalar()))
    }
}

impl<T: Float> Array<T> {
    /// A function of floating-point numbers, elementwise.
    pub fn float_op(&self, op: FloatOp) -> Array<T> {
        unary(self, "float", typed_fn::<T>("rask_array::float_unary"), op)
    }
    /// Square root.
    pub fn sqrt(&self) -> Array<T> {
        self.float_op(FloatOp::Sqrt)
    }
    /// `e^x`.
    pub fn exp(&self) -> Array<T> {
        self.float_op(FloatOp::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Array<T> {
        self.float_op(FloatOp::Log)
    }
    /// Sine.
    pub fn sin(&self) -> Array<T> {
        self.float_op(FloatOp::Sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Array<T> {
        self.float_op(FloatOp::Cos)
    }
    /// Rounded half to even.
    pub fn round(&self) -> Array<T> {
        self.float_op(FloatOp::Round)
    }
    /// Where the values are NaN.
    pub fn isnan(&self) -> Array<bool> {
        unary(self, "isnan", typed_fn::<T>("rask_array::float_test"), FloatTest::IsNan)
    }
    /// Where the values are neither NaN nor infinite.
    pub fn isfinite(&self) -> Array<bool> {
        unary(self, "isfinite", typed_fn::<T>("rask_array::float_test"), FloatTest::IsFinite)
    }
}

/// `condition ? a : b` elementwise, broadcasting all three (`x[x < 0.99] = 0` is
/// `where_(&x.compare_scalar(Lt, 0.99), &zeros, &x)`).
pub fn where_<T: Element>(condition: &Array<bool>, a: &Array<T>, b: &Array<T>) -> Result<Array<T>> {
    let plan = broadcast(&[&condition.chunks, &a.chunks, &b.chunks])?;
    let condition = aligned(condition, &plan.rechunk[0])?;
    let (a, b) = (aligned(a, &plan.rechunk[1])?, aligned(b, &plan.rechunk[2])?);
    Ok(elementwise_layer(
        "where",
        typed_fn::<T>("rask_array::where"),
        &[condition.operand(), a.operand(), b.operand()],
        Some(&plan.maps),
        plan.chunks,
        Vec::new(),
        &[],
    ))
}

impl<T: Element> Array<T> {
    /// `condition ? value : x` elementwise: masked assignment, `x[mask] = value`.
    pub fn mask_assign(&self, mask: &Array<bool>, value: T) -> Result<Array<T>> {
        let plan = broadcast(&[&mask.chunks, &self.chunks])?;
        let mask = aligned(mask, &plan.rechunk[0])?;
        let x = aligned(self, &plan.rechunk[1])?;
        let bytes = rask_core::value::encode_serde(&value.to_scalar()).unwrap_or_default();
        Ok(elementwise_layer(
            "mask-assign",
            typed_fn::<T>("rask_array::mask_assign"),
            &[mask.operand(), x.operand()],
            Some(&plan.maps),
            plan.chunks,
            vec![Value::serde(value.to_scalar())],
            &bytes,
        ))
    }
}

// ---- Operators ------------------------------------------------------------------------------

macro_rules! operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<T: Number> std::ops::$trait<&Array<T>> for &Array<T> {
            type Output = Array<T>;
            /// Panics if the shapes cannot broadcast; `zip_with` returns the error instead.
            fn $method(self, other: &Array<T>) -> Array<T> {
                self.zip_with(other, $op).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl<T: Number> std::ops::$trait<Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $method(self, other: Array<T>) -> Array<T> {
                (&self).$method(&other)
            }
        }
        impl<T: Number> std::ops::$trait<&Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $method(self, other: &Array<T>) -> Array<T> {
                (&self).$method(other)
            }
        }
        impl<T: Number> std::ops::$trait<Array<T>> for &Array<T> {
            type Output = Array<T>;
            fn $method(self, other: Array<T>) -> Array<T> {
                self.$method(&other)
            }
        }
        impl<T: Number> std::ops::$trait<T> for &Array<T> {
            type Output = Array<T>;
            fn $method(self, value: T) -> Array<T> {
                self.with_scalar(value, $op, false)
            }
        }
        impl<T: Number> std::ops::$trait<T> for Array<T> {
            type Output = Array<T>;
            fn $method(self, value: T) -> Array<T> {
                self.with_scalar(value, $op, false)
            }
        }
    };
}
operator!(Add, add, BinaryOp::Add);
operator!(Sub, sub, BinaryOp::Sub);
operator!(Mul, mul, BinaryOp::Mul);
operator!(Div, div, BinaryOp::Div);

impl<T: Magnitude> std::ops::Neg for &Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        self.negative()
    }
}

// ---- Task functions -------------------------------------------------------------------------

/// The common shape of two chunk shapes, or an error naming both.
fn co_broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, TaskError> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|o| {
            let x = (o + a.len()).checked_sub(n).map_or(1, |i| a[i]);
            let y = (o + b.len()).checked_sub(n).map_or(1, |i| b[i]);
            match (x, y) {
                (x, y) if x == y => Ok(x),
                (1, y) => Ok(y),
                (x, 1) => Ok(x),
                _ => Err(TaskError::msg(format!(
                    "chunks of shapes {a:?} and {b:?} cannot broadcast"
                ))),
            }
        })
        .collect()
}

/// `f` over two chunks, broadcasting.
pub(crate) fn zip2<A: Copy, B: Copy, C>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
) -> Result<ArrayD<C>, TaskError> {
    if a.shape() == b.shape() {
        return Ok(Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)));
    }
    let shape = IxDyn(&co_broadcast(a.shape(), b.shape())?);
    let (a, b) = (a.broadcast(shape.clone()), b.broadcast(shape));
    match (a, b) {
        (Some(a), Some(b)) => Ok(Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y))),
        _ => Err(TaskError::msg("chunks that cannot broadcast")),
    }
}

fn apply_binary<T: Number>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    op: BinaryOp,
) -> Result<ArrayD<T>, TaskError> {
    match op {
        BinaryOp::Add => zip2(a, b, Number::add),
        BinaryOp::Sub => zip2(a, b, Number::sub),
        BinaryOp::Mul => zip2(a, b, Number::mul),
        BinaryOp::Div => {
            // Only integers can fail here (floats give inf or NaN, as NumPy).
            if b.iter().any(|&y| Number::div(T::one(), y).is_none()) {
                return Err(TaskError::msg(format!(
                    "integer division by zero in a {} array: filter the zeros out or divide as floats (astype::<f64>())",
                    T::DTYPE
                )));
            }
            zip2(a, b, |x, y| Number::div(x, y).unwrap_or_else(T::zero))
        }
        BinaryOp::Maximum => zip2(a, b, Number::maximum),
        BinaryOp::Minimum => zip2(a, b, Number::minimum),
    }
}

fn binary<T: Number>(args: &[Value]) -> TaskResult {
    let (a, b) = (chunk_arg::<T>(args, 0)?, chunk_arg::<T>(args, 1)?);
    let op = *task_arg(args, 2, "the operation")?.get::<BinaryOp>(&"the operation")?;
    Ok(chunk_value(apply_binary(a, b, op)?))
}

fn binary_scalar<T: Number>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let (scalar, op, scalar_first) = *task_arg(args, 1, "the scalar")?
        .get::<(Scalar, BinaryOp, bool)>(&"the scalar operation")?;
    let s = ArrayD::from_elem(IxDyn(&[]), T::from_scalar(scalar));
    let out = if scalar_first { apply_binary(&s, a, op)? } else { apply_binary(a, &s, op)? };
    Ok(chunk_value(out))
}

/// Orders two elements for comparisons: numbers by value, complex numbers lexicographically,
/// `false < true`.
fn compare_elements<T: Element>(x: T, y: T, op: CompareOp) -> bool {
    use std::cmp::Ordering;
    let order = match (x.to_scalar(), y.to_scalar()) {
        (crate::element::Scalar::Int(a), crate::element::Scalar::Int(b)) => Some(a.cmp(&b)),
        (crate::element::Scalar::Float(a), crate::element::Scalar::Float(b)) => a.partial_cmp(&b),
        (crate::element::Scalar::Complex(a), crate::element::Scalar::Complex(b)) => {
            (a.re, a.im).partial_cmp(&(b.re, b.im))
        }
        (a, b) => f64::from_scalar(a).partial_cmp(&f64::from_scalar(b)),
    };
    match op {
        CompareOp::Lt => order == Some(Ordering::Less),
        CompareOp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => order == Some(Ordering::Greater),
        CompareOp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Eq => order == Some(Ordering::Equal),
        CompareOp::Ne => order != Some(Ordering::Equal),
    }
}

fn compare<T: Element>(args: &[Value]) -> TaskResult {
    let (a, b) = (chunk_arg::<T>(args, 0)?, chunk_arg::<T>(args, 1)?);
    let op = *task_arg(args, 2, "the comparison")?.get::<CompareOp>(&"the comparison")?;
    Ok(chunk_value(zip2(a, b, |x, y| compare_elements(x, y, op))?))
}

fn compare_scalar<T: Element>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let (op, scalar) =
        *task_arg(args, 1, "the comparison")?.get::<(CompareOp, Scalar)>(&"the comparison")?;
    let value = T::from_scalar(scalar);
    Ok(chunk_value(a.mapv(|x| compare_elements(x, value, op))))
}

fn number_same<T: Magnitude>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let op = *task_arg(args, 1, "the operation")?.get::<NumberOp>(&"the operation")?;
    Ok(chunk_value(match op {
        NumberOp::Negative => a.mapv(|x| Number::sub(T::zero(), x)),
        NumberOp::Square => a.mapv(|x| Number::mul(x, x)),
        NumberOp::Conjugate => a.mapv(Magnitude::conjugate),
        NumberOp::Abs | NumberOp::AbsSquared | NumberOp::Real | NumberOp::Imaginary => {
            return Err(TaskError::msg("abs, real and imag go through number_magnitude"))
        }
    }))
}

fn number_magnitude<T: Magnitude>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let op = *task_arg(args, 1, "the operation")?.get::<NumberOp>(&"the operation")?;
    Ok(chunk_value(match op {
        NumberOp::Abs => a.mapv(Magnitude::magnitude),
        NumberOp::AbsSquared => a.mapv(Magnitude::magnitude_squared),
        NumberOp::Real => a.mapv(Magnitude::real_part),
        NumberOp::Imaginary => a.mapv(Magnitude::imaginary_part),
        NumberOp::Negative | NumberOp::Square | NumberOp::Conjugate => {
            return Err(TaskError::msg("negative, square and conj go through number_same"))
        }
    }))
}

fn clip<T: Real>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let (lo, hi) = *task_arg(args, 1, "the bounds")?.get::<(Scalar, Scalar)>(&"the bounds")?;
    let (lo, hi) = (T::from_scalar(lo), T::from_scalar(hi));
    Ok(chunk_value(a.mapv(|x| Number::minimum(Number::maximum(x, lo), hi))))
}

fn float_unary<T: Float>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let op = *task_arg(args, 1, "the function")?.get::<FloatOp>(&"the function")?;
    let f: fn(T) -> T = match op {
        FloatOp::Sqrt => T::sqrt,
        FloatOp::Exp => T::exp,
        FloatOp::Expm1 => T::exp_m1,
        FloatOp::Log => T::ln,
        FloatOp::Log2 => T::log2,
        FloatOp::Log10 => T::log10,
        FloatOp::Log1p => T::ln_1p,
        FloatOp::Sin => T::sin,
        FloatOp::Cos => T::cos,
        FloatOp::Tan => T::tan,
        FloatOp::Arcsin => T::asin,
        FloatOp::Arccos => T::acos,
        FloatOp::Arctan => T::atan,
        FloatOp::Sinh => T::sinh,
        FloatOp::Cosh => T::cosh,
        FloatOp::Tanh => T::tanh,
        FloatOp::Floor => T::floor,
        FloatOp::Ceil => T::ceil,
        FloatOp::Round => round_half_even,
        FloatOp::Trunc => T::trunc,
    };
    Ok(chunk_value(a.mapv(f)))
}

/// NumPy rounds halves to the even neighbour.
fn round_half_even<T: Float>(x: T) -> T {
    let rounded = x.round();
    let half = T::from(0.5).expect("0.5 fits every float");
    let two = T::from(2.0).expect("2 fits every float");
    if (x - x.trunc()).abs() == half && (rounded % two) != <T as Number>::zero() {
        rounded - x.signum()
    } else {
        rounded
    }
}

fn float_test<T: Float>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    let test = *task_arg(args, 1, "the test")?.get::<FloatTest>(&"the test")?;
    Ok(chunk_value(match test {
        FloatTest::IsNan => a.mapv(|x| x.is_nan()),
        FloatTest::IsFinite => a.mapv(|x| x.is_finite()),
        FloatTest::IsInf => a.mapv(|x| x.is_infinite()),
    }))
}

fn where_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let condition = chunk_arg::<bool>(args, 0)?;
    let (a, b) = (chunk_arg::<T>(args, 1)?, chunk_arg::<T>(args, 2)?);
    let pairs = zip2(a, b, |x, y| (x, y))?;
    Ok(chunk_value(zip2(condition, &pairs, |c, (x, y)| if c { x } else { y })?))
}

fn mask_assign<T: Element>(args: &[Value]) -> TaskResult {
    let mask = chunk_arg::<bool>(args, 0)?;
    let x = chunk_arg::<T>(args, 1)?;
    let value = T::from_scalar(*task_arg(args, 2, "the value")?.get::<Scalar>(&"the value")?);
    Ok(chunk_value(zip2(mask, x, |m, v| if m { value } else { v })?))
}

fn astype<T: Element, U: Element>(args: &[Value]) -> TaskResult {
    let a = chunk_arg::<T>(args, 0)?;
    Ok(chunk_value(a.mapv(cast::<T, U>)))
}

macro_rules! register_numbers {
    ($m:ident $(, $arg:tt)*) => {
        crate::for_each_real!($m $(, $arg)*);
        $m!(crate::element::c32, "complex64" $(, $arg)*);
        $m!(crate::element::c64, "complex128" $(, $arg)*);
    };
}
register_numbers!(register_typed, "rask_array::binary", binary);
register_numbers!(register_typed, "rask_array::binary_scalar", binary_scalar);
register_numbers!(register_typed, "rask_array::number_same", number_same);
register_numbers!(register_typed, "rask_array::number_magnitude", number_magnitude);
crate::for_each_real!(register_typed, "rask_array::clip", clip);
crate::for_each_element!(register_typed, "rask_array::compare", compare);
crate::for_each_element!(register_typed, "rask_array::compare_scalar", compare_scalar);
crate::for_each_element!(register_typed, "rask_array::where", where_chunk);
crate::for_each_element!(register_typed, "rask_array::mask_assign", mask_assign);
register_typed!(f64, "float64", "rask_array::float_unary", float_unary);
register_typed!(f32, "float32", "rask_array::float_unary", float_unary);
register_typed!(f64, "float64", "rask_array::float_test", float_test);
register_typed!(f32, "float32", "rask_array::float_test", float_test);

macro_rules! register_astype_to {
    ($u:ty, $du:literal, $t:ty, $dt:literal) => {
        rask_core::register_function!(
            concat!("rask_array::astype::<", $dt, ",", $du, ">"),
            astype::<$t, $u>
        );
    };
}
macro_rules! register_astype_from {
    ($t:ty, $dt:literal) => {
        crate::for_each_element!(register_astype_to, $t, $dt);
    };
}
crate::for_each_element!(register_astype_from);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_half_to_even_like_numpy() {
        let got: Vec<f64> =
            [0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].iter().map(|&x| round_half_even(x)).collect();
        assert_eq!(got, [0.0, 2.0, 2.0, -0.0, -2.0, 2.0, -3.0]);
    }

    #[test]
    fn broadcast_plans_stretch_length_one_axes_and_name_both_shapes_otherwise() {
        let a = Chunks::new(&[4, 6], vec![vec![2, 2], vec![3, 3]]).unwrap();
        let row = Chunks::new(&[1, 6], vec![vec![1], vec![6]]).unwrap();
        let plan = broadcast(&[&a, &row]).unwrap();
        assert_eq!(plan.chunks, a);
        assert_eq!(plan.maps[1], [AxisMap::Block(0), AxisMap::Out(1)]);
        assert_eq!(plan.rechunk[1], Some(vec![vec![1], vec![3, 3]]));
        let vector = Chunks::new(&[6], vec![vec![3, 3]]).unwrap();
        assert_eq!(broadcast(&[&a, &vector]).unwrap().maps[1], [AxisMap::Out(1)]);
        let wrong = Chunks::new(&[5], vec![vec![5]]).unwrap();
        let err = broadcast(&[&a, &wrong]).err().unwrap().to_string();
        assert!(err.contains("[4, 6]") && err.contains("[5]"), "{err}");
    }
}
