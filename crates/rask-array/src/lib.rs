//! # rask-array: lazy chunked N-d arrays on `ndarray`
//!
//! An [`Array<T>`] is a grid of `ndarray::ArrayD<T>` chunks, built lazily like a Dask array:
//! creation ([`from_ndarray`], [`zeros`], [`arange`], [`random`] ...), elementwise arithmetic
//! with NumPy broadcasting (fused into one task per chunk), reductions over any axes with
//! `split_every` trees, rechunking, slicing, `map_blocks`, FFTs along whole axes and matrix
//! products. Everything is a rask-core graph: the same arrays compute on the local scheduler
//! and on a cluster, where chunks travel as raw bytes with a small header.
//!
//! ```
//! use rask_array::prelude::*;
//! use rask_local::ComputeExt;
//!
//! let x = rask_array::random::random(&[1000, 1000], [250, 250], 42)?;
//! let y = (&x + 1.0).sqrt();
//! let mean = y.mean(0)?.compute()?;
//! assert_eq!(mean.shape(), &[1000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The element type is checked at compile time: `Array<u8>` has no `sqrt` (use
//! `astype::<f64>()`), `Array<c64>` no `min`. Bad input — shapes that cannot broadcast, chunks
//! that do not add up, an axis or index out of range, an FFT along a chunked axis — is an error
//! that names the problem and the fix.

// First: its macros (`for_each_element!`, `register_typed!`) are used by the modules below.
#[macro_use]
pub mod element;
pub mod array;
pub mod blockwise;
mod cholesky;
pub mod chunk_ops;
pub mod chunks;
pub mod creation;
pub mod cumulative;
pub mod decompose;
pub mod delayed;
pub mod diagonal;
mod draws;
pub mod elementwise;
pub mod error;
pub mod fft;
mod fold;
pub mod histogram;
pub mod hooks;
pub mod linalg;
pub mod lu;
mod map_blocks;
mod moments;
pub mod number;
pub mod overlap;
pub mod pad;
mod pushdown;
pub mod rechunk;
pub mod rechunk_plan;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod slicing;
pub mod sparse;
pub mod storage;
pub mod topk;

pub use array::Array;
pub use blockwise::{blockwise, blockwise_registered};
pub use chunks::{AxisChunks, ChunkSpec, Chunks};
pub use creation::{arange, empty, eye, from_ndarray, full, linspace, ones, random, zeros};
pub use delayed::from_delayed;
pub use diagonal::diag;
pub use element::{c32, c64, Element};
pub use elementwise::{where_, BinaryOp, CompareOp, FloatOp};
pub use error::{Error, Result};
pub use histogram::Bins;
pub use hooks::{add_hook, ArrayInfo, HookAction};
pub use number::{Float, Magnitude, Number, Real};
pub use pad::PadMode;
pub use reduce::Axes;
pub use select::Selected;
pub use shape::{block, concatenate, stack};
pub use slicing::Index;
pub use sparse::{SparseArray, SparseOp};
/// The sparse matrix crate of [`SparseArray`]'s chunks (`sprs::CsMat`), at the version rask-array uses.
pub use sprs;
pub use storage::npy::{from_npy, from_npy_url};
pub use storage::zarr::{from_zarr, from_zarr_url, ZarrCompression};

/// What array programs need: `use rask_array::prelude::*;`.
pub mod prelude {
    pub use crate::{
        arange, from_ndarray, linspace, ones, random, where_, zeros, Array, Axes, AxisChunks,
        ChunkSpec, CompareOp, Index,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use ndarray::ArrayD;
    pub use rask_core::{register_function, TaskError, TaskResult, Value};
    pub use sprs::CsMat;
}
