//! Rechunking and slicing sparse arrays, on the dense arrays' layer: every output chunk is one
//! task that gathers its pieces from the input chunks it overlaps
//! ([`crate::rechunk::gather_layer`]), here with a kernel that copies the stored values of each
//! piece into a CSR chunk (an output chunk that is exactly an input chunk is that chunk).
//! Slices are ranges of step 1 along either axis; the output keeps the input's chunk
//! boundaries inside the range, so a slice reads only the chunks it covers.

use std::ops::Range;

use rask_core::{TaskError, TaskResult, Value};
use sprs::CsMat;

use crate::chunks::ChunkSpec;
use crate::error::{Error, Result};
use crate::number::Number;
use crate::rechunk::{assembly_inputs, contiguous, gather_layer};
use crate::slicing::{slice_positions, Index};
use crate::sparse::codec::sparse_value;
use crate::sparse::{sparse_fn, SparseArray};

impl<T: Number> SparseArray<T> {
    /// The same values in other chunks (as [`crate::Array::rechunk`]; one stage: sparse
    /// chunks have no size known before they are made, so there is no bound to plan for).
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<SparseArray<T>> {
        let new = chunks.into().resolve(&self.shape(), size_of::<T>())?;
        if new == *self.chunks {
            return Ok(self.clone());
        }
        let ranges: Vec<_> = new.per_axis().iter().map(|lengths| contiguous(lengths)).collect();
        Ok(self.gather("sparse-rechunk", &ranges))
    }

    /// A slice of ranges (`Index::range`, `Index::slice` with step 1, or `Index::Full`; a
    /// missing index is the whole axis); reads only the chunks it covers. Steps, integers and
    /// new axes are refused with an error saying to go dense first.
    pub fn slice(&self, index: &[Index]) -> Result<SparseArray<T>> {
        if index.len() > 2 {
            return Err(Error::Invalid(format!(
                "{} indices for a 2-d sparse array of shape {:?}",
                index.len(),
                self.shape()
            )));
        }
        let shape = self.shape();
        let mut ranges = Vec::with_capacity(2);
        for (axis, &length) in shape.iter().enumerate() {
            let (start, stop) = match index.get(axis).unwrap_or(&Index::Full) {
                Index::Full => (0, length),
                Index::Slice { start, stop, step: 1 } => {
                    let positions = slice_positions(axis, length, *start, *stop, 1)?;
                    match (positions.first(), positions.last()) {
                        (Some(&a), Some(&b)) => (a, b + 1),
                        _ => (0, 0),
                    }
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "a sparse array slices with ranges of step 1; {other:?} on axis {axis} \
                         is not one (use to_dense() first, or a range)"
                    )))
                }
            };
            ranges.push(within(&self.chunks.per_axis()[axis], start..stop));
        }
        Ok(self.gather("sparse-slice", &ranges))
    }

    fn gather(&self, prefix: &str, ranges: &[Vec<Range<usize>>]) -> SparseArray<T> {
        let assemble = sparse_fn::<T>("assemble");
        let (graph, name, chunks) =
            gather_layer(&self.graph, &self.name, &self.chunks, prefix, ranges, &assemble);
        SparseArray::new(graph, name, std::sync::Arc::new(chunks))
    }
}

/// The input chunks' ranges cut to `range`: the chunk boundaries inside it stay (one empty
/// range for an empty slice).
fn within(lengths: &[usize], range: Range<usize>) -> Vec<Range<usize>> {
    let pieces: Vec<Range<usize>> = contiguous(lengths)
        .into_iter()
        .map(|r| r.start.max(range.start)..r.end.min(range.end))
        .filter(|r| r.start < r.end)
        .collect();
    if pieces.is_empty() {
        // An empty slice: one chunk of length zero.
        std::iter::once(range.start..range.start).collect()
    } else {
        pieces
    }
}

/// One output chunk from the stored values of its pieces, row by row.
fn sparse_assemble<T: Number>(args: &[Value]) -> TaskResult {
    let (inputs, assembly) = assembly_inputs::<CsMat<T>>(args, "sparse rechunk")?;
    let &[rows, cols] = assembly.shape.as_slice() else {
        return Err(TaskError::msg(format!("a sparse chunk of shape {:?}", assembly.shape)));
    };
    let mut out_rows: Vec<Vec<(usize, T)>> = vec![Vec::new(); rows];
    for (chunk, piece) in inputs.iter().zip(&assembly.pieces) {
        let csr;
        let chunk = if chunk.is_csr() {
            *chunk
        } else {
            csr = chunk.to_csr();
            &csr
        };
        let ((r0, r1), (c0, c1)) = (piece.from[0], piece.from[1]);
        for (r, row) in chunk.outer_iterator().enumerate().take(r1).skip(r0) {
            let target = &mut out_rows[r - r0 + piece.to[0]];
            target.extend(
                row.iter()
                    .filter(|&(c, _)| c >= c0 && c < c1)
                    .map(|(c, &v)| (c - c0 + piece.to[1], v)),
            );
        }
    }
    let mut indptr = Vec::with_capacity(rows + 1);
    indptr.push(0);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for mut row in out_rows {
        // Pieces side by side along the columns arrive in order of their pieces, not columns.
        row.sort_unstable_by_key(|&(c, _)| c);
        for (c, v) in row {
            indices.push(c);
            data.push(v);
        }
        indptr.push(indices.len());
    }
    Ok(sparse_value(CsMat::new((rows, cols), indptr, indices, data)))
}

crate::for_each_number!(register_typed, "rask_array::sparse::assemble", sparse_assemble);
