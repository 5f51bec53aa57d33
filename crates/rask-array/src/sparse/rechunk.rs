//! Rechunking and slicing sparse arrays, on the dense arrays' layer: every output chunk is one
//! task that gathers its pieces from the input chunks it overlaps
//! ([`crate::rechunk::gather_layer`]), here with a kernel that copies the stored values of each
//! piece into a CSR chunk (an output chunk that is exactly an input chunk is that chunk).
//! Slices (any step, negative too) go through the dense arrays' index plan and layer
//! ([`crate::slicing::take_layer`]) with a kernel that picks rows and columns from one CSR
//! chunk, so a slice reads only the chunks it covers.

use std::ops::Range;

use rask_core::{TaskError, TaskResult, Value};
use sprs::CsMat;

use crate::array::spec_arg;
use crate::chunks::ChunkSpec;
use crate::error::{Error, Result};
use crate::number::Number;
use crate::rechunk::{assembly_inputs, contiguous, gather_layer};
use crate::slicing::{take_layer, Index, IndexPlan, Take};
use crate::sparse::codec::sparse_value;
use crate::sparse::kernels::{as_csr, sparse_arg};
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

    /// `x[index]` with slices of any step (negative too, NumPy's rules) and `Index::Full`
    /// along the two axes (a missing index is the whole axis), on the dense arrays' plan: each
    /// output chunk slices one input chunk, so a slice reads only the chunks it covers. An
    /// integer or a new axis would change the number of axes, which a 2-d sparse array
    /// cannot: they are refused with the fix (a range of one, or `to_dense()` first).
    pub fn slice(&self, index: &[Index]) -> Result<SparseArray<T>> {
        if let Some((axis, entry)) = index
            .iter()
            .enumerate()
            .find(|(_, entry)| matches!(entry, Index::At(_) | Index::NewAxis))
        {
            let fix = match entry {
                Index::At(i) => {
                    let length = self.shape().get(axis).copied().unwrap_or(0) as i64;
                    let at = if *i < 0 { i + length } else { *i };
                    format!("Index::range({at}..{}) keeps the axis", at + 1)
                }
                _ => "reshape a dense array".to_string(),
            };
            return Err(Error::Invalid(format!(
                "a 2-d sparse array keeps both axes: {entry:?} at index position {axis} would \
                 change that ({fix}; or index to_dense())"
            )));
        }
        if index.len() > 2 {
            return Err(Error::Invalid(format!(
                "{} indices for a 2-d sparse array of shape {:?}",
                index.len(),
                self.shape()
            )));
        }
        let plan = IndexPlan::of(&self.chunks, index)?;
        let take = sparse_fn::<T>("take");
        let (graph, name, chunks) =
            take_layer(&self.graph, &self.name, &plan, "sparse-getitem", &take);
        Ok(SparseArray::new(graph, name, std::sync::Arc::new(chunks)))
    }

    fn gather(&self, prefix: &str, ranges: &[Vec<Range<usize>>]) -> SparseArray<T> {
        let assemble = sparse_fn::<T>("assemble");
        let (graph, name, chunks) =
            gather_layer(&self.graph, &self.name, &self.chunks, prefix, ranges, &assemble);
        SparseArray::new(graph, name, std::sync::Arc::new(chunks))
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
        let chunk = &*as_csr(chunk);
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

/// One output chunk of a slice: the rows and columns its [`Take`] selects from one input chunk,
/// in that order.
fn sparse_take<T: Number>(args: &[Value]) -> TaskResult {
    let chunk = sparse_arg::<T>(args, 0)?;
    let take = spec_arg::<Take>(args, 1, "the selection")?;
    let [rows, cols] = take.locals.as_slice() else {
        return Err(TaskError::msg(format!("a 2-d selection, not {:?}", take.locals)));
    };
    let chunk = &*as_csr(chunk);
    let (rows, cols) = (rows.positions(), cols.positions());
    // Where every input column goes (a slice takes a column at most once).
    let mut column_to = vec![usize::MAX; chunk.cols()];
    for (to, &from) in cols.iter().enumerate() {
        column_to[from] = to;
    }
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    let mut row_entries: Vec<(usize, T)> = Vec::new();
    for &r in &rows {
        let row = chunk.outer_view(r).ok_or_else(|| {
            TaskError::msg(format!("row {r} of a sparse chunk of {} rows", chunk.rows()))
        })?;
        row_entries.clear();
        row_entries.extend(
            row.iter()
                .filter(|&(c, _)| column_to[c] != usize::MAX)
                .map(|(c, &v)| (column_to[c], v)),
        );
        // A negative column step reverses the order; CSR rows hold sorted columns.
        row_entries.sort_unstable_by_key(|&(c, _)| c);
        for &(c, v) in &row_entries {
            indices.push(c);
            data.push(v);
        }
        indptr.push(indices.len());
    }
    let shape = (rows.len(), cols.len());
    if take.shape != [shape.0, shape.1] {
        return Err(TaskError::msg(format!(
            "a slice of shape {shape:?} where {:?} was planned",
            take.shape
        )));
    }
    Ok(sparse_value(CsMat::new(shape, indptr, indices, data)))
}

crate::for_each_number!(register_typed, "rask_array::sparse::take", sparse_take);
