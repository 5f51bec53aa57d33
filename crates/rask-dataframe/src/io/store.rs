//! Where data lives: local files, or object stores (S3, HTTP) — `rask-storage`, shared with
//! the other collections (Arrays read and write Zarr stores through it).

pub use rask_storage::{expand, storage_options, Location, StorageOptions};
