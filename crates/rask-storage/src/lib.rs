//! # rask-storage: where rask's collections read and write
//!
//! Local files and object stores (S3 and S3-compatible servers, HTTP) behind one serializable
//! address, [`Location`], so that a task on any process of a cluster can read the same bytes:
//! listing and globbing ([`expand`]), ranged reads, whole writes, prefixes. Object-store calls
//! are async (`object_store`); they run on one small tokio runtime shared by the process
//! ([`block_on`]), so the collections' synchronous task code can call them anywhere, also on a
//! thread inside another runtime. DataFrames (CSV, Parquet) and Arrays (Zarr) both use it; it
//! has no Polars and no ndarray.
//!
//! [`s3_test_server`] starts an S3-compatible server (moto) on a loopback port for tests.

mod location;
pub mod s3_test_server;

pub use location::{
    block_on, block_on_here, expand, is_url, storage_options, store_for, Location, StorageOptions,
};
pub use object_store;

/// The result type of `rask-storage`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path or glob matched no file.
    #[error("no files match `{pattern}`: check the path (globs like `data/*.csv` are expanded; a directory reads every file in it)")]
    NoFiles {
        /// The path, glob or URL as given.
        pattern: String,
    },
    /// A file or object could not be opened, listed, read or written.
    #[error("{action} `{path}`: {reason}")]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The file or URL.
        path: String,
        /// The cause.
        reason: String,
    },
    /// A pattern that is not a valid glob, or another bad argument.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl std::fmt::Display,
        error: impl std::fmt::Display,
    ) -> Self {
        Error::Io { action, path: path.to_string(), reason: error.to_string() }
    }
}
