//! The one error type of rask-array: every message names what was wrong and how to fix it.

use thiserror::Error;

/// What can go wrong building or computing an array.
#[derive(Debug, Error)]
pub enum Error {
    /// Chunks that do not fit the shape, or a chunk request that cannot be met.
    #[error("chunks: {0}")]
    Chunks(String),
    /// Two shapes that NumPy's broadcasting rules cannot combine.
    #[error(
        "shapes {left:?} and {right:?} cannot broadcast: axis {axis} from the right has {a} and {b} elements (they must be equal, or one of them 1)"
    )]
    Broadcast {
        /// The left operand's shape.
        left: Vec<usize>,
        /// The right operand's shape.
        right: Vec<usize>,
        /// The axis, counted from the right (0 is the last axis).
        axis: usize,
        /// The left length there.
        a: usize,
        /// The right length there.
        b: usize,
    },
    /// An axis number the array does not have.
    #[error("axis {axis} is out of bounds for an array of {ndim} axes (valid: {} to {})", -(*ndim as isize), *ndim as isize - 1)]
    Axis {
        /// The axis asked for.
        axis: isize,
        /// How many axes the array has.
        ndim: usize,
    },
    /// An index outside an axis.
    #[error("index {index} is out of bounds for axis {axis} with {length} elements")]
    IndexOutOfBounds {
        /// The axis.
        axis: usize,
        /// The index asked for.
        index: i64,
        /// The axis length.
        length: usize,
    },
    /// A reshape to a shape with another number of elements.
    #[error("cannot reshape an array of shape {from:?} ({} elements) into shape {to:?} ({} elements)", from.iter().product::<usize>(), to.iter().product::<usize>())]
    Reshape {
        /// The array's shape.
        from: Vec<usize>,
        /// The shape asked for.
        to: Vec<usize>,
    },
    /// An operation that needs an axis in one chunk, on an axis cut into several.
    #[error(
        "{operation} along axis {axis} needs that axis in one chunk, but it is cut into {chunks} chunks: rechunk first, e.g. `x.rechunk({fix})`"
    )]
    ChunkedAxis {
        /// The operation.
        operation: &'static str,
        /// The axis.
        axis: usize,
        /// How many chunks the axis has.
        chunks: usize,
        /// A rechunk call that fixes it.
        fix: String,
    },
    /// A matrix that has no inverse where one is needed.
    #[error("{0}")]
    Singular(String),
    /// A file or store that cannot be read or written as an array.
    #[error("{path}: {reason}")]
    Storage {
        /// The path or URL.
        path: String,
        /// What went wrong, and the fix where there is one.
        reason: String,
    },
    /// Any other invalid argument.
    #[error("{0}")]
    Invalid(String),
    /// An error of the graph engine or of a task.
    #[error(transparent)]
    Core(#[from] rask_core::Error),
}

/// Results of rask-array.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for rask_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Core(core) => core,
            other => rask_core::Error::Finalize { collection: "array", reason: other.to_string() },
        }
    }
}
