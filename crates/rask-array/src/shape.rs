//! Shape operations: `reshape`/`ravel`, `squeeze`/`expand_dims`, `swapaxes`/`moveaxis`,
//! `broadcast_to`, and joining arrays with `concatenate`, `stack` and `block`.
//!
//! Adding or removing axes of length 1 and broadcasting are blockwise (each chunk reshaped or
//! stretched in its task). A general `reshape` rechunks only what it must: the trailing axes
//! become one chunk each, and the first axis is cut where both the old and the new row lengths
//! divide the element count, so that each input chunk is exactly one output chunk in row-major
//! order (Dask 0.14.1 rechunks less in some merge/split cases; the result is the same).
//! Joins relabel chunk keys (rask-core's `alias_layer`): no data moves.

use ndarray::{ArrayD, IxDyn};
use rask_core::{
    partitioned::alias_layer, AxisMap, BlockArg, BlockGrid, Graph, Key, TaskError, TaskResult,
    Value,
};

use crate::array::{chunk_arg, layer_name, normalize_axis, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

impl<T: Element> Array<T> {
    /// A blockwise layer whose task reshapes (or broadcasts) each input chunk to its output
    /// chunk; `map` says where each input axis reads its block from.
    fn rechunked_view(
        &self,
        prefix: &str,
        map: Vec<AxisMap>,
        chunks: Chunks,
        broadcast: bool,
    ) -> Array<T> {
        let name = layer_name(prefix, |t| {
            t.str(self.name.as_str()).bytes(format!("{:?}{:?}", chunks.per_axis(), map).as_bytes());
        });
        let func =
            if broadcast { "rask_array::broadcast_chunk" } else { "rask_array::reshape_chunk" };
        Array::blockwise_layer(
            name,
            typed_fn::<T>(func),
            vec![
                BlockArg::Aligned(self.name.clone(), map),
                BlockArg::Value(Value::serde(chunks.clone())),
                BlockArg::PartIndex,
            ],
            &[&self.graph],
            chunks,
        )
    }

    /// The same values in another shape (one entry may be `-1`: inferred), in row-major order.
    pub fn reshape(&self, shape: &[isize]) -> Result<Array<T>> {
        let from = self.shape();
        let total: usize = from.iter().product();
        let known: usize = shape.iter().filter(|&&n| n >= 0).map(|&n| n as usize).product();
        let inferred = shape.iter().filter(|&&n| n < 0).count();
        let to: Vec<usize> = match inferred {
            0 => shape.iter().map(|&n| n as usize).collect(),
            1 if known > 0 && total % known == 0 => {
                shape.iter().map(|&n| if n < 0 { total / known } else { n as usize }).collect()
            }
            _ => {
                return Err(Error::Reshape {
                    from,
                    to: shape.iter().map(|&n| n.max(0) as usize).collect(),
                })
            }
        };
        if to.iter().product::<usize>() != total {
            return Err(Error::Reshape { from, to });
        }
        if to == from {
            return Ok(self.clone());
        }
        if to.is_empty() || from.is_empty() || total == 0 {
            // 0-d arrays and empty arrays: one chunk.
            let whole = self.rechunk(from.iter().map(|&n| vec![n]).collect::<Vec<_>>())?;
            let chunks = Chunks(to.iter().map(|&n| vec![n]).collect());
            let map = vec![AxisMap::Block(0); from.len()];
            return Ok(whole.rechunked_view("reshape", map, chunks, false));
        }
        // Rows of the first axis: `in_row` elements before, `out_row` after. Cut where both
        // row lengths divide the offset: every `step` elements.
        let in_row: usize = from[1..].iter().product();
        let out_row: usize = to[1..].iter().product();
        let step = lcm(in_row.max(1), out_row.max(1));
        // Keep chunks near the first axis's current chunk length (in elements).
        let typical = self.chunks.max_block_shape().first().copied().unwrap_or(1).max(1) * in_row;
        let per_chunk = (typical / step).max(1) * step;
        let mut boundaries = Vec::new();
        let mut at = 0;
        while at < total {
            let end = (at + per_chunk).min(total);
            boundaries.push((at, end));
            at = end;
        }
        let mut input_chunks =
            vec![boundaries.iter().map(|(a, b)| (b - a) / in_row).collect::<Vec<_>>()];
        input_chunks.extend(from[1..].iter().map(|&n| vec![n]));
        let aligned = self.rechunk(input_chunks)?;
        let mut output_chunks =
            vec![boundaries.iter().map(|(a, b)| (b - a) / out_row).collect::<Vec<_>>()];
        output_chunks.extend(to[1..].iter().map(|&n| vec![n]));
        let map: Vec<AxisMap> = (0..from.len())
            .map(|a| if a == 0 { AxisMap::Out(0) } else { AxisMap::Block(0) })
            .collect();
        Ok(aligned.rechunked_view("reshape", map, Chunks(output_chunks), false))
    }

    /// A 1-d array of the values in row-major order.
    pub fn ravel(&self) -> Result<Array<T>> {
        self.reshape(&[-1])
    }

    /// Without the given axes of length 1 (all of them when `axes` is empty).
    pub fn squeeze(&self, axes: &[isize]) -> Result<Array<T>> {
        let shape = self.shape();
        let drop: Vec<usize> = if axes.is_empty() {
            (0..shape.len()).filter(|&a| shape[a] == 1).collect()
        } else {
            axes.iter().map(|&a| normalize_axis(a, shape.len())).collect::<Result<_>>()?
        };
        if let Some(&a) = drop.iter().find(|&&a| shape[a] != 1) {
            return Err(Error::Invalid(format!(
                "cannot squeeze axis {a} of length {} (shape {shape:?}): only axes of length 1 go",
                shape[a]
            )));
        }
        let mut out = 0u8;
        let map: Vec<AxisMap> = (0..shape.len())
            .map(|a| {
                if drop.contains(&a) {
                    AxisMap::Block(0)
                } else {
                    out += 1;
                    AxisMap::Out(out - 1)
                }
            })
            .collect();
        let chunks = Chunks(
            (0..shape.len())
                .filter(|a| !drop.contains(a))
                .map(|a| self.chunks.per_axis()[a].clone())
                .collect(),
        );
        Ok(self.rechunked_view("squeeze", map, chunks, false))
    }

    /// With a new axis of length 1 at `axis` (of the result).
    pub fn expand_dims(&self, axis: isize) -> Result<Array<T>> {
        let axis = normalize_axis(axis, self.ndim() + 1)?;
        let mut per_axis = self.chunks.per_axis().to_vec();
        per_axis.insert(axis, vec![1]);
        let map: Vec<AxisMap> = (0..self.ndim())
            .map(|a| AxisMap::Out(if a < axis { a } else { a + 1 } as u8))
            .collect();
        Ok(self.rechunked_view("expand-dims", map, Chunks(per_axis), false))
    }

    /// Axes `a` and `b` exchanged.
    pub fn swapaxes(&self, a: isize, b: isize) -> Result<Array<T>> {
        let (a, b) = (self.axis(a)?, self.axis(b)?);
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(a, b);
        self.transpose(&axes)
    }

    /// Axis `source` moved to position `destination`, the others in order.
    pub fn moveaxis(&self, source: isize, destination: isize) -> Result<Array<T>> {
        let (s, d) = (self.axis(source)?, self.axis(destination)?);
        let mut axes: Vec<usize> = (0..self.ndim()).filter(|&a| a != s).collect();
        axes.insert(d, s);
        self.transpose(&axes)
    }

    /// The array stretched to `shape` by NumPy's rules (new leading axes, length-1 axes
    /// repeated); new and stretched axes are one chunk each.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Array<T>> {
        let from = self.shape();
        let lead = shape.len().checked_sub(from.len()).ok_or_else(|| {
            Error::Invalid(format!("cannot broadcast shape {from:?} to fewer axes: {shape:?}"))
        })?;
        let mut per_axis: Vec<Vec<usize>> = shape[..lead].iter().map(|&n| vec![n]).collect();
        let mut map = Vec::with_capacity(from.len());
        for (a, &n) in from.iter().enumerate() {
            let target = shape[lead + a];
            if n == target {
                per_axis.push(self.chunks.per_axis()[a].clone());
                map.push(AxisMap::Out((lead + a) as u8));
            } else if n == 1 {
                per_axis.push(vec![target]);
                map.push(AxisMap::Block(0));
            } else {
                return Err(Error::Broadcast {
                    left: from.clone(),
                    right: shape.to_vec(),
                    axis: from.len() - 1 - a,
                    a: n,
                    b: target,
                });
            }
        }
        Ok(self.rechunked_view("broadcast-to", map, Chunks(per_axis), true))
    }
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    a / gcd(a, b) * b
}

/// Arrays joined along an existing axis; the other axes must have equal lengths (their chunks
/// are made the first array's).
pub fn concatenate<T: Element>(arrays: &[Array<T>], axis: isize) -> Result<Array<T>> {
    let first = arrays
        .first()
        .ok_or_else(|| Error::Invalid("concatenate needs at least one array".into()))?;
    let axis = normalize_axis(axis, first.ndim())?;
    let mut parts = Vec::with_capacity(arrays.len());
    for (i, array) in arrays.iter().enumerate() {
        let (a, b) = (first.shape(), array.shape());
        let fits = a.len() == b.len()
            && a.iter().zip(&b).enumerate().all(|(k, (x, y))| k == axis || x == y);
        if !fits {
            return Err(Error::Invalid(format!(
                "concatenate along axis {axis}: array {i} has shape {b:?}, which differs from {a:?} on another axis"
            )));
        }
        let mut wanted = first.chunks.per_axis().to_vec();
        wanted[axis] = array.chunks.per_axis()[axis].clone();
        parts.push(if array.chunks.per_axis() == wanted.as_slice() {
            array.clone()
        } else {
            array.rechunk(wanted)?
        });
    }
    let mut per_axis = first.chunks.per_axis().to_vec();
    per_axis[axis] = parts.iter().flat_map(|p| p.chunks.per_axis()[axis].clone()).collect();
    let chunks = Chunks(per_axis);
    let name = layer_name("concatenate", |t| {
        parts.iter().for_each(|p| {
            t.str(p.name.as_str());
        });
        t.u64(axis as u64);
    });
    let mut aliases = Vec::with_capacity(chunks.count());
    let mut offset = 0u32;
    for part in &parts {
        let grid = BlockGrid::of(&part.chunks.grid());
        for linear in 0..grid.len() as u32 {
            let index = grid.unravel(linear);
            let mut out = index.clone();
            out[axis] += offset;
            aliases.push((Key::block(name.clone(), &out), part.block_key(&index)));
        }
        offset += part.chunks.grid()[axis];
    }
    let graphs: Vec<&Graph> = parts.iter().map(|p| &p.graph).collect();
    Ok(Array::from_graph(alias_layer(name.clone(), aliases, &graphs), name, chunks))
}

/// Arrays of one shape stacked along a new axis.
pub fn stack<T: Element>(arrays: &[Array<T>], axis: isize) -> Result<Array<T>> {
    let first =
        arrays.first().ok_or_else(|| Error::Invalid("stack needs at least one array".into()))?;
    if let Some((i, a)) = arrays.iter().enumerate().find(|(_, a)| a.shape() != first.shape()) {
        return Err(Error::Invalid(format!(
            "stack needs arrays of one shape: array {i} has {:?}, array 0 {:?}",
            a.shape(),
            first.shape()
        )));
    }
    let expanded = arrays.iter().map(|a| a.expand_dims(axis)).collect::<Result<Vec<_>>>()?;
    concatenate(&expanded, axis)
}

/// A 2-level nesting of arrays joined as NumPy's `block`: each row joined along the last axis,
/// then the rows along the one before it.
pub fn block<T: Element>(rows: &[Vec<Array<T>>]) -> Result<Array<T>> {
    let joined = rows.iter().map(|row| concatenate(row, -1)).collect::<Result<Vec<_>>>()?;
    concatenate(&joined, -2)
}

fn reshape_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let chunks = spec_arg::<Chunks>(args, 1, "the chunks")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let shape = chunks.block_shape(&BlockGrid::of(&chunks.grid()).unravel(part));
    let values = chunk.as_standard_layout().into_owned();
    Ok(chunk_value(values.into_shape_with_order(IxDyn(&shape))?))
}

fn broadcast_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let chunks = spec_arg::<Chunks>(args, 1, "the chunks")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let shape = chunks.block_shape(&BlockGrid::of(&chunks.grid()).unravel(part));
    let view = chunk.broadcast(IxDyn(&shape)).ok_or_else(|| {
        TaskError::msg(format!(
            "a chunk of shape {:?} does not broadcast to {shape:?}",
            chunk.shape()
        ))
    })?;
    Ok(chunk_value(ArrayD::from(view.to_owned())))
}

crate::for_each_element!(register_typed, "rask_array::reshape_chunk", reshape_chunk);
crate::for_each_element!(register_typed, "rask_array::broadcast_chunk", broadcast_chunk);
