//! `map_overlap`: a function of each chunk with ghost cells from its neighbours.
//!
//! Three steps, each an ordinary layer: the array is padded at its ends as the boundary mode
//! says (no pad for `None`); every chunk is *gathered* with `depth` extra elements on each side
//! from the neighbouring chunks (the rechunk machinery with overlapping ranges: one task per
//! chunk, reading only the chunks it overlaps); the function runs on each extended chunk; and
//! the ghost cells are trimmed off again, so the output has the input's chunks. The function
//! and the trim are blockwise over the same grid and fuse into one task per chunk.
//!
//! Boundary modes are [`PadMode`]s — Dask's `periodic` is `Wrap`, `reflect` is `Symmetric`,
//! `nearest` is `Edge` — and `None` leaves the outer chunks without ghost cells there.

use std::ops::Range;

use ndarray::{ArrayD, Slice};
use rask_core::{AxisMap, BlockArg, BlockGrid, TaskError, TaskResult, Value};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};
use crate::pad::PadMode;

/// Per axis and block, the ghost cells to trim: `(before, after)`, and the grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Trim {
    per_axis: Vec<Vec<(usize, usize)>>,
    grid: Vec<u32>,
}
rask_core::register_type!(Trim);

/// How each chunk is extended: the gathered array and what to trim afterwards.
struct Extended<T: Element> {
    gathered: Array<T>,
    trim: Trim,
}

impl<T: Element> Array<T> {
    /// `f` of every chunk extended by `depth` elements per axis (one for all axes, or one per
    /// axis) from its neighbours, trimmed back to the chunk afterwards. `boundary`: how the
    /// array's own ends are extended (`None`: not at all). `f` must keep the shape it is given.
    pub fn map_overlap<U: Element>(
        &self,
        depth: &[usize],
        boundary: Option<PadMode<T>>,
        f: impl Fn(&ArrayD<T>) -> ArrayD<U> + Send + Sync + 'static,
    ) -> Result<Array<U>> {
        let extended = self.extend(depth, boundary)?;
        let chunks = (*extended.gathered.chunks).clone();
        let mapped = extended.gathered.map_blocks_with_chunks(chunks, f);
        mapped.trim(extended.trim, self.chunks.as_ref().clone())
    }

    /// [`Array::map_overlap`] with a registered function (see
    /// [`register_block_fn!`](crate::register_block_fn)): runs on a cluster as locally.
    pub fn map_overlap_registered<U: Element>(
        &self,
        function: &str,
        depth: &[usize],
        boundary: Option<PadMode<T>>,
    ) -> Result<Array<U>> {
        let extended = self.extend(depth, boundary)?;
        let mapped = extended.gathered.map_blocks_registered::<U>(function, None)?;
        mapped.trim(extended.trim, self.chunks.as_ref().clone())
    }

    fn extend(&self, depth: &[usize], boundary: Option<PadMode<T>>) -> Result<Extended<T>> {
        let ndim = self.ndim();
        let depth: Vec<usize> = match depth.len() {
            1 => vec![depth[0]; ndim],
            n if n == ndim => depth.to_vec(),
            n => {
                return Err(Error::Invalid(format!(
                    "{n} overlap depths for an array of {ndim} axes: give one per axis, or one \
                     for all"
                )))
            }
        };
        let padded = match boundary {
            Some(mode) => {
                let widths: Vec<(usize, usize)> = depth.iter().map(|&d| (d, d)).collect();
                self.pad(&widths, mode)?
            }
            None => self.clone(),
        };
        let shape = self.shape();
        let mut ranges: Vec<Vec<Range<usize>>> = Vec::with_capacity(ndim);
        let mut trims = Vec::with_capacity(ndim);
        for (axis, &d) in depth.iter().enumerate() {
            let offsets = self.chunks.offsets(axis);
            let mut axis_ranges = Vec::with_capacity(offsets.len() - 1);
            let mut axis_trims = Vec::with_capacity(offsets.len() - 1);
            for w in offsets.windows(2) {
                let (start, end) = (w[0], w[1]);
                if boundary.is_some() {
                    // In the padded array the chunk starts `d` later.
                    axis_ranges.push(start..end + 2 * d);
                    axis_trims.push((d, d));
                } else {
                    let (lo, hi) = (start.saturating_sub(d), (end + d).min(shape[axis]));
                    axis_ranges.push(lo..hi);
                    axis_trims.push((start - lo, hi - end));
                }
            }
            ranges.push(axis_ranges);
            trims.push(axis_trims);
        }
        Ok(Extended {
            gathered: padded.gather_ranges("overlap", &ranges),
            trim: Trim { per_axis: trims, grid: self.chunks.grid() },
        })
    }

    /// Each chunk without its ghost cells: the result has `chunks`.
    fn trim(&self, trim: Trim, chunks: Chunks) -> Result<Array<T>> {
        let name = layer_name("trim", |t| {
            t.str(self.name.as_str());
        });
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        Ok(Array::blockwise_layer(
            name,
            typed_fn::<T>("rask_array::trim_chunk"),
            vec![
                BlockArg::Aligned(self.name.clone(), identity),
                BlockArg::Value(Value::serde(trim)),
                BlockArg::PartIndex,
            ],
            &[&self.graph],
            chunks,
        ))
    }
}

fn trim_chunk<T: Element>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let trim = spec_arg::<Trim>(args, 1, "the trim")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let index = BlockGrid::of(&trim.grid).unravel(part);
    let cut: Vec<(usize, usize)> =
        index.iter().enumerate().map(|(a, &i)| trim.per_axis[a][i as usize]).collect();
    if let Some(axis) = (0..chunk.ndim()).find(|&a| chunk.shape()[a] < cut[a].0 + cut[a].1) {
        return Err(TaskError::msg(format!(
            "a map_overlap function returned a chunk of shape {:?}, too short along axis {axis} \
             for its {} ghost cells: the function must keep the shape it is given",
            chunk.shape(),
            cut[axis].0 + cut[axis].1
        )));
    }
    let view = chunk.slice_each_axis(|axis| {
        let a = axis.axis.index();
        Slice::from(cut[a].0..chunk.shape()[a] - cut[a].1)
    });
    Ok(chunk_value(view.to_owned()))
}
crate::for_each_element!(register_typed, "rask_array::trim_chunk", trim_chunk);
