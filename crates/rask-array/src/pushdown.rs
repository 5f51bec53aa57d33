//! Slices moved in front of elementwise work: `(x + 1).slice(s)` is built as `x.slice(s) + 1`,
//! so the arithmetic runs on the elements the slice keeps, not on every chunk it reads from.
//!
//! An elementwise layer whose operands all have its chunks (nothing broadcast, nothing
//! rechunked) keeps a note of its [`Step`]: the function, its literal arguments and each
//! operand — type-erased, with a function pointer that slices it as the array type it is.
//! [`Array::slice`] on such an array slices the operands (recursively: a chain of steps is
//! rebuilt over the sliced base) and builds the step again over them. A function of a whole
//! chunk (a scan, `map_blocks`) never leaves a note, and neither does a persisted array: its
//! chunks exist, and slicing them is the cheap way.

use std::sync::Arc;

use rask_core::{Graph, Name, TaskFn, Value};

use crate::array::Array;
use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::Result;
use crate::slicing::Index;

/// An elementwise step, kept so a later slice can be moved in front of it.
pub(crate) struct Step {
    pub prefix: String,
    pub func: TaskFn,
    pub operands: Vec<ErasedArray>,
    pub literals: Vec<Value>,
    pub literal_bytes: Vec<u8>,
}

/// An array of any element type: what a step knows of its operands.
#[derive(Clone)]
pub(crate) struct ErasedArray {
    pub graph: Graph,
    pub name: Name,
    pub chunks: Arc<Chunks>,
    step: Option<Arc<Step>>,
    /// `Array::<T>::slice` of the operand, for its own `T`.
    slice: fn(&ErasedArray, &[Index]) -> Result<ErasedArray>,
}

impl<T: Element> Array<T> {
    /// The array with its element type erased (an operand of an elementwise step).
    pub(crate) fn erased(&self) -> ErasedArray {
        ErasedArray {
            graph: self.graph.clone(),
            name: self.name.clone(),
            chunks: self.chunks.clone(),
            step: self.step.clone(),
            slice: slice_erased::<T>,
        }
    }

    fn from_erased(erased: &ErasedArray) -> Array<T> {
        let mut array =
            Array::unhooked(erased.graph.clone(), erased.name.clone(), erased.chunks.clone());
        array.step = erased.step.clone();
        array
    }
}

fn slice_erased<T: Element>(erased: &ErasedArray, index: &[Index]) -> Result<ErasedArray> {
    Ok(Array::<T>::from_erased(erased).slice(index)?.erased())
}

/// The note an elementwise layer over `operands` keeps, if a slice can move in front of it:
/// every operand has the output's chunks and reads block `(i, j, ...)` for output block
/// `(i, j, ...)`.
pub(crate) fn step_if_movable(
    prefix: &str,
    func: &TaskFn,
    operands: &[ErasedArray],
    identity_maps: bool,
    chunks: &Chunks,
    literals: &[Value],
    literal_bytes: &[u8],
) -> Option<Arc<Step>> {
    if !identity_maps || operands.iter().any(|o| *o.chunks != *chunks) {
        return None;
    }
    Some(Arc::new(Step {
        prefix: prefix.to_string(),
        func: func.clone(),
        operands: operands.to_vec(),
        literals: literals.to_vec(),
        literal_bytes: literal_bytes.to_vec(),
    }))
}

/// `x.slice(index)` with the slice moved in front of `x`'s elementwise step, if it has one.
pub(crate) fn moved_slice<T: Element>(x: &Array<T>, index: &[Index]) -> Option<Result<Array<T>>> {
    let step = x.step.as_ref()?;
    let moved = || -> Result<Array<T>> {
        let operands = step
            .operands
            .iter()
            .map(|o| (o.slice)(o, index))
            .collect::<Result<Vec<ErasedArray>>>()?;
        // Operands with equal chunks sliced alike have equal chunks again.
        let chunks = (*operands[0].chunks).clone();
        Ok(crate::elementwise::elementwise_layer(
            &step.prefix,
            step.func.clone(),
            &operands,
            None,
            chunks,
            step.literals.clone(),
            &step.literal_bytes,
        ))
    };
    Some(moved())
}
