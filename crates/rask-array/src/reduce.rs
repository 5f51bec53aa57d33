//! Reductions over any set of axes: `sum`, `prod`, `mean`, `var`/`std`, `min`/`max`,
//! `argmin`/`argmax`, `any`/`all`, and the NaN-skipping variants, with `keepdims` and
//! `split_every`.
//!
//! Each chunk is reduced along the reduced axes to a *partial* (a chunk whose reduced axes have
//! length 1: sums, extremes, or count/mean/M2 moments), one blockwise task per chunk. The
//! partials of each output block — the chunks that differ only along reduced axes — are then
//! merged by rask-core's [`TreeReduction`], `split_every` at a time. Variances merge moments
//! with Chan's formula (`M2 = M2a + M2b + δ² na nb / n`), so a large offset in the data does
//! not cancel the variance away as `E[x²] − E[x]²` would.
//!
//! Inside a chunk the folding kernels of [`crate::fold`] do the work.

use ndarray::{ArrayD, IxDyn, Zip};
use rask_core::{BlockGrid, Graph, Key, Layer, TaskError, TaskResult, TreeReduction, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, chunk_of, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, parts_value, Element};
use crate::error::{Error, Result};
use crate::fold::{fold_axes, kept_shape};
use crate::moments::{merge_moments, moments, sums, Moments, Sums};
use crate::number::{Number, Real};

/// Which axes a reduction removes, and how.
#[derive(Clone, Debug)]
pub struct Axes {
    axes: Option<Vec<isize>>,
    keepdims: bool,
    split_every: usize,
}

impl Axes {
    /// Every axis (the result is a 0-d array unless `keepdims`).
    pub fn all() -> Self {
        Axes { axes: None, keepdims: false, split_every: 8 }
    }

    /// Keep the reduced axes with length 1.
    pub fn keepdims(mut self) -> Self {
        self.keepdims = true;
        self
    }

    /// How many partials one merge task reads (default 8).
    pub fn split_every(mut self, n: usize) -> Self {
        self.split_every = n.max(2);
        self
    }

    pub(crate) fn resolve(&self, ndim: usize) -> Result<Vec<usize>> {
        let mut axes = match &self.axes {
            None => (0..ndim).collect(),
            Some(axes) => axes
                .iter()
                .map(|&a| crate::array::normalize_axis(a, ndim))
                .collect::<Result<Vec<_>>>()?,
        };
        axes.sort_unstable();
        let before = axes.len();
        axes.dedup();
        if axes.len() != before {
            return Err(Error::Invalid(format!("an axis is named twice in {:?}", self.axes)));
        }
        Ok(axes)
    }
}

impl From<usize> for Axes {
    fn from(axis: usize) -> Self {
        Axes { axes: Some(vec![axis as isize]), keepdims: false, split_every: 8 }
    }
}

impl From<isize> for Axes {
    fn from(axis: isize) -> Self {
        Axes { axes: Some(vec![axis]), keepdims: false, split_every: 8 }
    }
}

impl From<i32> for Axes {
    fn from(axis: i32) -> Self {
        Axes { axes: Some(vec![axis as isize]), keepdims: false, split_every: 8 }
    }
}

impl<const N: usize> From<[usize; N]> for Axes {
    fn from(axes: [usize; N]) -> Self {
        Axes {
            axes: Some(axes.iter().map(|&a| a as isize).collect()),
            keepdims: false,
            split_every: 8,
        }
    }
}

impl From<&[usize]> for Axes {
    fn from(axes: &[usize]) -> Self {
        Axes {
            axes: Some(axes.iter().map(|&a| a as isize).collect()),
            keepdims: false,
            split_every: 8,
        }
    }
}

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Kind {
    Sum,
    Prod,
    Min,
    Max,
    Any,
    All,
    /// Count and sum: the mean.
    Mean {
        skipna: bool,
    },
    /// Count, mean and M2: the variance with `ddof`, or its square root.
    Var {
        skipna: bool,
        ddof: u32,
        sqrt: bool,
    },
    NanSum,
    NanMin,
    NanMax,
    ArgMin,
    ArgMax,
}

/// A reduction as its tasks see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Spec {
    kind: Kind,
    /// The reduced axes, sorted.
    axes: Vec<usize>,
    keepdims: bool,
    /// The input's chunks, for argmin/argmax only (they need each chunk's offset and the
    /// shape; the other kinds do not carry the grid in every task's spec).
    chunks: Option<Chunks>,
}
rask_core::register_type!(Spec);

/// The best value so far and its index (flat over the reduced axes of the whole array).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
struct ArgPartial<T: Element> {
    values: ArrayD<T>,
    index: ArrayD<i64>,
}

impl<T: Element> Array<T> {
    /// Builds the partial → tree → finish graph of a reduction whose result has type `U`.
    fn reduction<U: Element>(&self, kind: Kind, axes: &Axes) -> Result<Array<U>> {
        let reduced = axes.resolve(self.ndim())?;
        if matches!(kind, Kind::ArgMin | Kind::ArgMax)
            && reduced.len() != 1
            && reduced.len() != self.ndim()
        {
            return Err(Error::Invalid(format!(
                "argmin/argmax reduce one axis or all of them, not {reduced:?}: reshape first"
            )));
        }
        if self.shape().iter().enumerate().any(|(a, &n)| n == 0 && reduced.contains(&a))
            && matches!(
                kind,
                Kind::Min | Kind::Max | Kind::ArgMin | Kind::ArgMax | Kind::NanMin | Kind::NanMax
            )
        {
            return Err(Error::Invalid(format!(
                "a {kind:?} over an empty axis has no value (shape {:?}): NumPy raises too",
                self.shape()
            )));
        }
        let spec = Spec {
            kind,
            axes: reduced.clone(),
            keepdims: axes.keepdims,
            chunks: matches!(kind, Kind::ArgMin | Kind::ArgMax).then(|| (*self.chunks).clone()),
        };
        let spec_bytes = rask_core::value::encode_serde(&(&spec.kind, &spec.axes, spec.keepdims))
            .unwrap_or_default();
        let spec_value = Value::serde(spec);
        let partial_name = layer_name("reduce-partial", |t| {
            t.str(self.name.as_str()).bytes(&spec_bytes);
        });
        let partial: Array<T> = self.per_chunk(
            partial_name.clone(),
            typed_fn::<T>("rask_array::reduce_partial"),
            spec_value.clone(),
        );
        // The output grid: reduced axes collapse to one block (kept or dropped).
        let in_grid = self.chunks.grid();
        let kept: Vec<usize> = (0..self.ndim()).filter(|a| !reduced.contains(a)).collect();
        let out_chunks: Vec<Vec<usize>> = (0..self.ndim())
            .filter_map(|a| {
                if !reduced.contains(&a) {
                    Some(self.chunks.per_axis()[a].clone())
                } else if axes.keepdims {
                    Some(vec![1])
                } else {
                    None
                }
            })
            .collect();
        let name = layer_name("reduce", |t| {
            t.str(self.name.as_str()).bytes(&spec_bytes).u64(axes.split_every as u64);
        });
        let tree = TreeReduction {
            combine_prefix: "reduce-combine".into(),
            combine: typed_fn::<T>("rask_array::reduce_combine"),
            finish: typed_fn::<T>("rask_array::reduce_finish"),
            args: vec![rask_core::Arg::Value(spec_value)],
            split_every: axes.split_every,
        };
        let kept_grid = BlockGrid::of(&kept.iter().map(|&a| in_grid[a]).collect::<Vec<_>>());
        let reduced_grid = BlockGrid::of(&reduced.iter().map(|&a| in_grid[a]).collect::<Vec<_>>());
        let mut tasks = Vec::new();
        for out in 0..kept_grid.len() as u32 {
            let kept_index = kept_grid.unravel(out);
            let leaves: Vec<Key> = (0..reduced_grid.len() as u32)
                .map(|r| {
                    let reduced_index = reduced_grid.unravel(r);
                    let mut index = vec![0u32; self.ndim()];
                    for (k, &a) in kept.iter().enumerate() {
                        index[a] = kept_index[k];
                    }
                    for (k, &a) in reduced.iter().enumerate() {
                        index[a] = reduced_index[k];
                    }
                    Key::block(partial_name.clone(), &index)
                })
                .collect();
            // The output block's index: the kept axes, and 0 on kept-as-1 reduced axes.
            let out_index: Vec<u32> = (0..self.ndim())
                .filter_map(|a| match kept.iter().position(|&k| k == a) {
                    Some(k) => Some(kept_index[k]),
                    None => axes.keepdims.then_some(0),
                })
                .collect();
            tasks.extend(tree.tasks(leaves, Key::block(name.clone(), &out_index)));
        }
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&partial.graph]));
        Ok(Array::from_graph(graph, name, Chunks(out_chunks)))
    }

    /// Whether any element is true (non-zero).
    pub fn any(&self, axes: impl Into<Axes>) -> Result<Array<bool>> {
        self.reduction(Kind::Any, &axes.into())
    }

    /// Whether every element is true (non-zero).
    pub fn all(&self, axes: impl Into<Axes>) -> Result<Array<bool>> {
        self.reduction(Kind::All, &axes.into())
    }
}

impl<T: Element> Array<T>
where
    T::Acc: Number,
{
    /// The sum, in the accumulator type (`i64`/`u64` for integers and booleans).
    pub fn sum(&self, axes: impl Into<Axes>) -> Result<Array<T::Acc>> {
        self.reduction(Kind::Sum, &axes.into())
    }

    /// The product, in the accumulator type.
    pub fn prod(&self, axes: impl Into<Axes>) -> Result<Array<T::Acc>> {
        self.reduction(Kind::Prod, &axes.into())
    }

    /// The sum with NaNs counted as zero.
    pub fn nansum(&self, axes: impl Into<Axes>) -> Result<Array<T::Acc>> {
        self.reduction(Kind::NanSum, &axes.into())
    }
}

impl<T: Real> Array<T> {
    /// The mean, as `f64`.
    pub fn mean(&self, axes: impl Into<Axes>) -> Result<Array<f64>> {
        self.reduction(Kind::Mean { skipna: false }, &axes.into())
    }
    /// The mean of the values that are not NaN.
    pub fn nanmean(&self, axes: impl Into<Axes>) -> Result<Array<f64>> {
        self.reduction(Kind::Mean { skipna: true }, &axes.into())
    }
    /// The variance with `ddof` delta degrees of freedom (0: population, 1: sample).
    pub fn var(&self, axes: impl Into<Axes>, ddof: u32) -> Result<Array<f64>> {
        self.reduction(Kind::Var { skipna: false, ddof, sqrt: false }, &axes.into())
    }
    /// The standard deviation with `ddof`.
    pub fn std(&self, axes: impl Into<Axes>, ddof: u32) -> Result<Array<f64>> {
        self.reduction(Kind::Var { skipna: false, ddof, sqrt: true }, &axes.into())
    }
    /// The variance of the values that are not NaN.
    pub fn nanvar(&self, axes: impl Into<Axes>, ddof: u32) -> Result<Array<f64>> {
        self.reduction(Kind::Var { skipna: true, ddof, sqrt: false }, &axes.into())
    }
    /// The standard deviation of the values that are not NaN.
    pub fn nanstd(&self, axes: impl Into<Axes>, ddof: u32) -> Result<Array<f64>> {
        self.reduction(Kind::Var { skipna: true, ddof, sqrt: true }, &axes.into())
    }
    /// The smallest value (NaN if there is one).
    pub fn min(&self, axes: impl Into<Axes>) -> Result<Array<T>> {
        self.reduction(Kind::Min, &axes.into())
    }
    /// The largest value (NaN if there is one).
    pub fn max(&self, axes: impl Into<Axes>) -> Result<Array<T>> {
        self.reduction(Kind::Max, &axes.into())
    }
    /// The smallest value that is not NaN.
    pub fn nanmin(&self, axes: impl Into<Axes>) -> Result<Array<T>> {
        self.reduction(Kind::NanMin, &axes.into())
    }
    /// The largest value that is not NaN.
    pub fn nanmax(&self, axes: impl Into<Axes>) -> Result<Array<T>> {
        self.reduction(Kind::NanMax, &axes.into())
    }
    /// Where the smallest value is: along one axis, or the flat index over all of them (the
    /// first one on ties; NaN counts as smallest, as NumPy).
    pub fn argmin(&self, axes: impl Into<Axes>) -> Result<Array<i64>> {
        self.reduction(Kind::ArgMin, &axes.into())
    }
    /// Where the largest value is (the first one on ties; NaN counts as largest).
    pub fn argmax(&self, axes: impl Into<Axes>) -> Result<Array<i64>> {
        self.reduction(Kind::ArgMax, &axes.into())
    }
}

fn spec_of(args: &[Value], i: usize) -> std::result::Result<&Spec, TaskError> {
    Ok(args
        .get(i)
        .ok_or_else(|| TaskError::msg("missing the reduction"))?
        .get::<Spec>(&"the reduction")?)
}

fn list_of(args: &[Value]) -> std::result::Result<&[Value], TaskError> {
    args.first().and_then(Value::as_list).ok_or_else(|| TaskError::msg("missing the partials"))
}

fn arg_partial<T: Real>(
    x: &ArrayD<T>,
    spec: &Spec,
    part: u32,
) -> std::result::Result<ArgPartial<T>, TaskError> {
    let chunks = spec
        .chunks
        .as_ref()
        .ok_or_else(|| TaskError::msg("an argmin/argmax spec without chunks"))?;
    let index = BlockGrid::of(&chunks.grid()).unravel(part);
    let offsets: Vec<usize> = (0..x.ndim()).map(|a| chunks.offsets(a)[index[a] as usize]).collect();
    let shape = chunks.shape();
    let better = better_fn::<T>(spec.kind);
    // The global flat index over the reduced axes of an element at local position `at`.
    let global = |at: &[usize]| -> i64 {
        spec.axes.iter().fold(0i64, |flat, &a| flat * shape[a] as i64 + (offsets[a] + at[a]) as i64)
    };
    let kept = kept_shape(x.shape(), &spec.axes);
    let mut values: ArrayD<T> = ArrayD::from_elem(IxDyn(&kept), T::default());
    let mut best: ArrayD<i64> = ArrayD::from_elem(IxDyn(&kept), -1);
    for (at, &v) in x.indexed_iter() {
        let slot: Vec<usize> =
            (0..x.ndim()).map(|a| if spec.axes.contains(&a) { 0 } else { at[a] }).collect();
        let slot = IxDyn(&slot);
        let g = global(ndarray::Dimension::slice(&at));
        if best[&slot] < 0 || better(v, values[&slot]) {
            values[&slot] = v;
            best[&slot] = g;
        }
    }
    Ok(ArgPartial { values, index: best })
}

/// Whether `a` beats `b` for argmin/argmax (strictly: the first index wins ties; NaN beats
/// everything and the first NaN stays).
fn better_fn<T: Real>(kind: Kind) -> fn(T, T) -> bool {
    match kind {
        Kind::ArgMin => |a: T, b: T| !b.is_nan_value() && (a.is_nan_value() || a < b),
        _ => |a: T, b: T| !b.is_nan_value() && (a.is_nan_value() || a > b),
    }
}

fn merge_args<T: Real>(
    parts: &[&ArgPartial<T>],
    kind: Kind,
) -> std::result::Result<ArgPartial<T>, TaskError> {
    let (first, rest) =
        parts.split_first().ok_or_else(|| TaskError::msg("no partials to merge"))?;
    let better = better_fn::<T>(kind);
    let mut total = (*first).clone();
    for part in rest {
        Zip::from(&mut total.values)
            .and(&mut total.index)
            .and(&part.values)
            .and(&part.index)
            .for_each(|value, index, &v, &i| {
                // Ties go to the smaller global index, whichever partial it came from.
                // An index of -1 is a partial of an empty chunk: it holds no value.
                let take = i >= 0
                    && (*index < 0 || better(v, *value) || (!better(*value, v) && i < *index));
                if take {
                    *value = v;
                    *index = i;
                }
            });
    }
    Ok(total)
}

/// Drops the reduced axes of a finished result unless `keepdims`.
fn finish_shape<A>(x: ArrayD<A>, spec: &Spec) -> ArrayD<A> {
    if spec.keepdims {
        return x;
    }
    let shape: Vec<usize> = x
        .shape()
        .iter()
        .enumerate()
        .filter(|(a, _)| !spec.axes.contains(a))
        .map(|(_, &n)| n)
        .collect();
    x.into_shape_with_order(IxDyn(&shape)).expect("reduced axes have length 1")
}

/// Reduction partials and merges for one element type.
trait Reducible: Element {
    fn partial(x: &ArrayD<Self>, spec: &Spec, part: u32) -> std::result::Result<Value, TaskError>;
    fn combine(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError>;
    fn finish(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError>;
}

fn chunks_of<A: Element>(parts: &[Value]) -> std::result::Result<Vec<&ArrayD<A>>, TaskError> {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(chunk_of::<A>(p, &format_args!("partial {i}"))?))
        .collect()
}

fn fold_chunks<A: Element>(
    parts: &[Value],
    f: impl Fn(A, A) -> A + Copy,
) -> std::result::Result<ArrayD<A>, TaskError> {
    let chunks = chunks_of::<A>(parts)?;
    let (first, rest) =
        chunks.split_first().ok_or_else(|| TaskError::msg("no partials to merge"))?;
    let mut total = (*first).clone();
    for chunk in rest {
        Zip::from(&mut total).and(*chunk).for_each(|t, &v| *t = f(*t, v));
    }
    Ok(total)
}

fn serde_parts<'a, P: 'static>(
    parts: &'a [Value],
    what: &str,
) -> std::result::Result<Vec<&'a P>, TaskError> {
    parts.iter().map(|p| Ok(p.get::<P>(&what)?)).collect()
}

/// The smaller of two values, NaN only if both are NaN.
fn nan_min<A: Number>(a: A, b: A) -> A {
    if a.is_nan_value() {
        b
    } else if b.is_nan_value() {
        a
    } else {
        Number::minimum(a, b)
    }
}

/// The larger of two values, NaN only if both are NaN.
fn nan_max<A: Number>(a: A, b: A) -> A {
    if a.is_nan_value() {
        b
    } else if b.is_nan_value() {
        a
    } else {
        Number::maximum(a, b)
    }
}

/// The extreme of a chunk along `axes` with `merge` (a function item, so the loop inlines it);
/// a slice with no value left (all NaN for the NaN-skipping kinds) keeps the first value.
fn extreme<T: Real>(
    x: &ArrayD<T>,
    axes: &[usize],
    init: T,
    merge: impl Fn(T, T) -> T + Copy,
) -> ArrayD<T> {
    let out = fold_axes(
        x,
        axes,
        (init, false),
        move |(a, seen), v| if seen { (merge(a, v), true) } else { (v, true) },
        move |(a, sa), (b, sb)| match (sa, sb) {
            (true, true) => (merge(a, b), true),
            (true, false) => (a, true),
            (false, _) => (b, sb),
        },
    );
    out.mapv(|(v, _)| v)
}

/// Merges plain-chunk partials of an extreme kind.
fn merge_extremes<T: Real>(
    parts: &[Value],
    kind: Kind,
) -> std::result::Result<ArrayD<T>, TaskError> {
    match kind {
        Kind::Min => fold_chunks::<T>(parts, Number::minimum),
        Kind::Max => fold_chunks::<T>(parts, Number::maximum),
        Kind::NanMin => fold_chunks::<T>(parts, nan_min),
        _ => fold_chunks::<T>(parts, nan_max),
    }
}

/// Merges boolean partials of `any` or `all`.
fn merge_tests(parts: &[Value], kind: Kind) -> std::result::Result<ArrayD<bool>, TaskError> {
    if kind == Kind::Any {
        fold_chunks::<bool>(parts, |a, b| a || b)
    } else {
        fold_chunks::<bool>(parts, |a, b| a && b)
    }
}

fn real_partial<T: Real>(
    x: &ArrayD<T>,
    spec: &Spec,
    part: u32,
) -> std::result::Result<Value, TaskError>
where
    T::Acc: Number,
{
    let axes = &spec.axes;
    Ok(match spec.kind {
        Kind::Sum => chunk_value(T::sum_axes(x, axes)),
        Kind::NanSum => chunk_value(fold_axes(
            x,
            axes,
            <T::Acc as Number>::zero(),
            |a, v: T| if v.is_nan_value() { a } else { Number::add(a, v.accumulate()) },
            Number::add,
        )),
        Kind::Prod => chunk_value(fold_axes(
            x,
            axes,
            <T::Acc as Number>::one(),
            |a, v| Number::mul(a, v.accumulate()),
            Number::mul,
        )),
        Kind::Min => chunk_value(extreme(x, axes, T::highest(), Number::minimum)),
        Kind::Max => chunk_value(extreme(x, axes, T::lowest(), Number::maximum)),
        Kind::NanMin => chunk_value(extreme(x, axes, T::highest(), nan_min)),
        Kind::NanMax => chunk_value(extreme(x, axes, T::lowest(), nan_max)),
        Kind::Any => {
            chunk_value(fold_axes(x, axes, false, |a, v: T| a || v != T::zero(), |a, b| a || b))
        }
        Kind::All => {
            chunk_value(fold_axes(x, axes, true, |a, v: T| a && v != T::zero(), |a, b| a && b))
        }
        Kind::Mean { skipna } => parts_value(sums(x, axes, skipna)),
        Kind::Var { skipna, .. } => parts_value(moments(x, axes, skipna)),
        Kind::ArgMin | Kind::ArgMax => Value::serde(arg_partial(x, spec, part)?),
    })
}

fn real_combine<T: Real>(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError>
where
    T::Acc: Number,
{
    Ok(match spec.kind {
        Kind::Sum | Kind::NanSum => chunk_value(fold_chunks::<T::Acc>(parts, Number::add)?),
        Kind::Prod => chunk_value(fold_chunks::<T::Acc>(parts, Number::mul)?),
        Kind::Min | Kind::Max | Kind::NanMin | Kind::NanMax => {
            chunk_value(merge_extremes::<T>(parts, spec.kind)?)
        }
        Kind::Any | Kind::All => chunk_value(merge_tests(parts, spec.kind)?),
        Kind::Mean { .. } => parts_value(Sums::merge(&serde_parts::<Sums>(parts, "sums")?)?),
        Kind::Var { .. } => parts_value(merge_moments(&serde_parts::<Moments>(parts, "moments")?)?),
        Kind::ArgMin | Kind::ArgMax => Value::serde(merge_args(
            &serde_parts::<ArgPartial<T>>(parts, "arg partial")?,
            spec.kind,
        )?),
    })
}

fn real_finish<T: Real>(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError>
where
    T::Acc: Number,
{
    let merged = real_combine::<T>(parts, spec)?;
    Ok(match spec.kind {
        Kind::Sum | Kind::NanSum | Kind::Prod => {
            chunk_value(finish_shape(chunk_of::<T::Acc>(&merged, &"the sum")?.clone(), spec))
        }
        Kind::Min | Kind::Max | Kind::NanMin | Kind::NanMax => {
            chunk_value(finish_shape(chunk_of::<T>(&merged, &"the extreme")?.clone(), spec))
        }
        Kind::Any | Kind::All => {
            chunk_value(finish_shape(chunk_of::<bool>(&merged, &"the test")?.clone(), spec))
        }
        Kind::Mean { .. } => {
            let sums = merged.get::<Sums>(&"the sums")?;
            chunk_value(finish_shape(sums.means(), spec))
        }
        Kind::Var { ddof, sqrt, .. } => {
            let m = merged.get::<Moments>(&"the moments")?;
            let m2 = m.m2.as_ref().ok_or_else(|| TaskError::msg("variance partials without M2"))?;
            let var = Zip::from(m2).and(&m.count).map_collect(|&m2, &n| {
                let dof = n - f64::from(ddof);
                // NumPy: NaN (with a warning) when there are not more values than ddof.
                let v = if dof > 0.0 { m2 / dof } else { f64::NAN };
                if sqrt {
                    v.sqrt()
                } else {
                    v
                }
            });
            chunk_value(finish_shape(var, spec))
        }
        Kind::ArgMin | Kind::ArgMax => {
            let a = merged.get::<ArgPartial<T>>(&"the arg partial")?;
            chunk_value(finish_shape(a.index.clone(), spec))
        }
    })
}

macro_rules! real_reducible {
    ($($t:ty),*) => {$(
        impl Reducible for $t {
            fn partial(x: &ArrayD<Self>, spec: &Spec, part: u32) -> std::result::Result<Value, TaskError> { real_partial(x, spec, part) }
            fn combine(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> { real_combine::<$t>(parts, spec) }
            fn finish(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> { real_finish::<$t>(parts, spec) }
        }
        rask_core::register_type!(ArgPartial<$t>);
    )*};
}
real_reducible!(f64, f32, i64, i32, i16, i8, u64, u32, u16, u8);

/// Booleans reduce as integers (`sum` counts the trues) and with `any`/`all`.
impl Reducible for bool {
    fn partial(x: &ArrayD<Self>, spec: &Spec, part: u32) -> std::result::Result<Value, TaskError> {
        match spec.kind {
            Kind::Any => {
                Ok(chunk_value(fold_axes(x, &spec.axes, false, |a, b| a || b, |a, b| a || b)))
            }
            Kind::All => {
                Ok(chunk_value(fold_axes(x, &spec.axes, true, |a, b| a && b, |a, b| a && b)))
            }
            _ => real_partial::<u8>(&x.mapv(u8::from), spec, part),
        }
    }
    fn combine(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> {
        match spec.kind {
            Kind::Any | Kind::All => Ok(chunk_value(merge_tests(parts, spec.kind)?)),
            _ => real_combine::<u8>(parts, spec),
        }
    }
    fn finish(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> {
        match spec.kind {
            Kind::Any | Kind::All => {
                let merged = merge_tests(parts, spec.kind)?;
                Ok(chunk_value(finish_shape(merged, spec)))
            }
            // Sums of booleans are u64 partials of the u8 view; the API promises i64.
            Kind::Sum | Kind::NanSum | Kind::Prod => {
                let merged = real_finish::<u8>(parts, spec)?;
                let sum = chunk_of::<u64>(&merged, &"the sum")?;
                Ok(chunk_value(sum.mapv(|v| v as i64)))
            }
            _ => real_finish::<u8>(parts, spec),
        }
    }
}

macro_rules! complex_reducible {
    ($($t:ty),*) => {$(
        impl Reducible for $t {
            fn partial(x: &ArrayD<Self>, spec: &Spec, _part: u32) -> std::result::Result<Value, TaskError> {
                let axes = &spec.axes;
                Ok(match spec.kind {
                    Kind::Sum | Kind::NanSum => chunk_value(<$t>::sum_axes(x, axes)),
                    Kind::Prod => chunk_value(fold_axes(x, axes, <$t as Number>::one(), Number::mul, Number::mul)),
                    Kind::Any => chunk_value(fold_axes(x, axes, false, |a, v: $t| a || v != <$t as Number>::zero(), |a, b| a || b)),
                    Kind::All => chunk_value(fold_axes(x, axes, true, |a, v: $t| a && v != <$t as Number>::zero(), |a, b| a && b)),
                    other => return Err(TaskError::msg(format!("{other:?} is not defined for complex numbers"))),
                })
            }
            fn combine(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> {
                Ok(match spec.kind {
                    Kind::Sum | Kind::NanSum => chunk_value(fold_chunks::<$t>(parts, Number::add)?),
                    Kind::Prod => chunk_value(fold_chunks::<$t>(parts, Number::mul)?),
                    Kind::Any | Kind::All => chunk_value(merge_tests(parts, spec.kind)?),
                    other => return Err(TaskError::msg(format!("{other:?} is not defined for complex numbers"))),
                })
            }
            fn finish(parts: &[Value], spec: &Spec) -> std::result::Result<Value, TaskError> {
                let merged = Self::combine(parts, spec)?;
                Ok(match spec.kind {
                    Kind::Any | Kind::All => chunk_value(finish_shape(chunk_of::<bool>(&merged, &"the test")?.clone(), spec)),
                    _ => chunk_value(finish_shape(chunk_of::<$t>(&merged, &"the sum")?.clone(), spec)),
                })
            }
        }
    )*};
}
complex_reducible!(crate::element::c32, crate::element::c64);

fn reduce_partial<T: Reducible>(args: &[Value]) -> TaskResult {
    let x = chunk_arg::<T>(args, 0)?;
    let spec = spec_of(args, 1)?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    T::partial(x, spec, part)
}

fn reduce_combine<T: Reducible>(args: &[Value]) -> TaskResult {
    T::combine(list_of(args)?, spec_of(args, 1)?)
}

fn reduce_finish<T: Reducible>(args: &[Value]) -> TaskResult {
    T::finish(list_of(args)?, spec_of(args, 1)?)
}

crate::for_each_element!(register_typed, "rask_array::reduce_partial", reduce_partial);
crate::for_each_element!(register_typed, "rask_array::reduce_combine", reduce_combine);
crate::for_each_element!(register_typed, "rask_array::reduce_finish", reduce_finish);
