//! Zarr stores (v2 and v3, in a local directory or under a prefix of an object store):
//! `from_zarr`/`from_zarr_url` and `Array::to_zarr`/`to_zarr_url`.
//!
//! Everything Zarr is `zarrs`': metadata, chunk keys, codecs (gzip and zstd compression,
//! sharding, transposes). A lazy array of a store has by default the store's own chunks (one
//! task per stored chunk, reading only it); other chunks are allowed and read the subsets they
//! cover. Writing makes a Zarr v3 array with the array's chunks — which must be regular, as a
//! Zarr chunk grid is — and every chunk task stores its chunk.
//!
//! A store is named by a `rask_storage::Location`: a local directory (`zarrs`' filesystem
//! store) or a URL (`s3://bucket/path.zarr`, with storage options or `AWS_*` variables), whose
//! objects `zarrs_object_store` reads and writes through `object_store` — the same stores and
//! options as DataFrames' CSV and Parquet. Every task opens the store itself, so the workers of
//! a cluster read and write an object store directly.

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayD;
use rask_core::{BlockGrid, TaskError, TaskResult, Value};
use rask_storage::{Location, StorageOptions};
use serde::{Deserialize, Serialize};
use zarrs::array::{data_type, ArrayBuilder, DataType, ElementOwned};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::ReadableWritableListableStorage;

use super::{read_layer, run_writes, storage_error};
use crate::array::{chunk_arg, layer_name, spec_arg, typed_fn, Array};
use crate::chunks::{ChunkSpec, Chunks};
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

/// How `to_zarr` compresses chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZarrCompression {
    /// Raw bytes.
    None,
    /// Zstandard at this level (Zarr-Python's default codec).
    #[default]
    Zstd,
    /// Gzip at level 5.
    Gzip,
}

/// What a chunk task of a Zarr array needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ZarrSpec {
    location: Location,
    /// The array's metadata (JSON), read once when the graph is built: a task opens the array
    /// from it without reading `zarr.json` again (a round trip per chunk on an object store).
    metadata: String,
    chunks: Chunks,
}
rask_core::register_type!(ZarrSpec);

/// The `zarrs` data type of an element type.
fn zarr_type<T: Element>() -> DataType {
    match T::DTYPE {
        "float64" => data_type::float64(),
        "float32" => data_type::float32(),
        "int64" => data_type::int64(),
        "int32" => data_type::int32(),
        "int16" => data_type::int16(),
        "int8" => data_type::int8(),
        "uint64" => data_type::uint64(),
        "uint32" => data_type::uint32(),
        "uint16" => data_type::uint16(),
        "uint8" => data_type::uint8(),
        "bool" => data_type::bool(),
        "complex64" => data_type::complex64(),
        "complex128" => data_type::complex128(),
        other => unreachable!("rask-array has no element type {other}"),
    }
}

type Store = zarrs::array::Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>;

/// Runs the object-store adapter's futures on the shared runtime of `rask-storage`.
struct SharedRuntime;

impl AsyncToSyncBlockOn for SharedRuntime {
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        rask_storage::block_on_here(future)
    }
}

/// The storage at a location: a local directory, or an object-store prefix.
fn storage(location: &Location) -> std::result::Result<ReadableWritableListableStorage, String> {
    match location {
        Location::Local(path) => {
            Ok(Arc::new(FilesystemStore::new(path).map_err(|e| e.to_string())?))
        }
        Location::Remote { url, options } => {
            let (store, prefix) =
                rask_storage::store_for(url, options).map_err(|e| e.to_string())?;
            let prefixed = rask_storage::object_store::prefix::PrefixStore::new(store, prefix);
            let objects = Arc::new(zarrs_object_store::AsyncObjectStore::new(prefixed));
            Ok(Arc::new(AsyncToSyncStorageAdapter::new(objects, SharedRuntime)))
        }
    }
}

fn open(location: &Location) -> std::result::Result<Store, String> {
    if let Location::Local(path) = location {
        if !path.is_dir() {
            return Err("no such directory: give the path of a Zarr array (the directory holding \
                        its zarr.json or .zarray)"
                .into());
        }
    }
    zarrs::array::Array::open(storage(location)?, "/").map_err(|e| match location {
        Location::Remote { .. } => {
            format!("not a Zarr array (no zarr.json or .zarray under this prefix, or the store cannot be read): {e}")
        }
        Location::Local(_) => format!("not a Zarr array: {e}"),
    })
}

/// The array of a chunk task, from the metadata its spec carries.
fn open_in_task(spec: &ZarrSpec) -> std::result::Result<Store, TaskError> {
    let fail = |e: &dyn std::fmt::Display| TaskError::msg(format!("{}: {e}", spec.location));
    let metadata: zarrs::array::ArrayMetadata =
        serde_json::from_str(&spec.metadata).map_err(|e| fail(&e))?;
    let storage = storage(&spec.location).map_err(|e| fail(&e))?;
    zarrs::array::Array::new_with_metadata(storage, "/", metadata).map_err(|e| fail(&e))
}

/// The metadata of an array as its tasks carry it.
fn metadata_json(array: &Store, path: &str) -> Result<String> {
    serde_json::to_string(array.metadata()).map_err(|e| storage_error(path, e))
}

/// Per axis, the lengths of the store's chunks (the last ones cut at the array's end).
fn stored_chunks(array: &Store) -> std::result::Result<Vec<Vec<usize>>, String> {
    let shape = array.shape();
    let grid = array.chunk_grid_shape().to_vec();
    (0..shape.len())
        .map(|axis| {
            let mut lengths = Vec::with_capacity(grid[axis] as usize);
            let mut at = 0u64;
            for i in 0..grid[axis] {
                let mut index = vec![0u64; shape.len()];
                index[axis] = i;
                let n = array.chunk_shape_usize(&index).map_err(|e| e.to_string())?[axis] as u64;
                let n = n.min(shape[axis] - at);
                lengths.push(n as usize);
                at += n;
            }
            if lengths.is_empty() {
                lengths.push(0);
            }
            Ok(lengths)
        })
        .collect()
}

/// A lazy array of the Zarr array at `path` (v2 or v3): a local directory, or a URL
/// (`s3://bucket/x.zarr`, opened with the `AWS_*` variables of the environment; see
/// [`from_zarr_url`] for options). Its element type must be `T`; `chunks`: `None` for the
/// store's own chunks.
pub fn from_zarr<T: Element + ElementOwned>(
    path: impl AsRef<std::path::Path>,
    chunks: Option<ChunkSpec>,
) -> Result<Array<T>> {
    let path = path.as_ref().to_string_lossy().into_owned();
    open_array(Location::parse(&path, &StorageOptions::new()), chunks)
}

/// [`from_zarr`] of a URL with storage options, as `object_store` names them
/// (`aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, ...; like Dask's
/// `storage_options`).
pub fn from_zarr_url<T: Element + ElementOwned, K: AsRef<str>, V: AsRef<str>>(
    url: &str,
    storage_options: impl IntoIterator<Item = (K, V)>,
    chunks: Option<ChunkSpec>,
) -> Result<Array<T>> {
    open_array(Location::parse(url, &rask_storage::storage_options(storage_options)), chunks)
}

fn open_array<T: Element + ElementOwned>(
    location: Location,
    chunks: Option<ChunkSpec>,
) -> Result<Array<T>> {
    let path = location.to_string();
    let array = open(&location).map_err(|reason| storage_error(&path, reason))?;
    if *array.data_type() != zarr_type::<T>() {
        return Err(storage_error(
            &path,
            format!(
                "the array holds {}, not {}: read it as that type (then astype)",
                array.data_type(),
                T::DTYPE
            ),
        ));
    }
    let shape: Vec<usize> = array.shape().iter().map(|&n| n as usize).collect();
    let chunks = match chunks {
        Some(spec) => spec.resolve(&shape, size_of::<T>())?,
        None => Chunks::new(&shape, stored_chunks(&array).map_err(|r| storage_error(&path, r))?)?,
    };
    let spec =
        ZarrSpec { location, metadata: metadata_json(&array, &path)?, chunks: chunks.clone() };
    Ok(read_layer("from-zarr", &path, typed_fn::<T>("rask_array::zarr_read"), spec, chunks))
}

/// The ranges of block `part`.
fn block_ranges(chunks: &Chunks, part: u32) -> Vec<Range<u64>> {
    let index = BlockGrid::of(&chunks.grid()).unravel(part);
    (0..chunks.ndim())
        .map(|a| {
            let start = chunks.offsets(a)[index[a] as usize] as u64;
            start..start + chunks.per_axis()[a][index[a] as usize] as u64
        })
        .collect()
}

fn zarr_read<T: Element + ElementOwned>(args: &[Value]) -> TaskResult {
    let part = *spec_arg::<u32>(args, 0, "the block number")?;
    let spec = spec_arg::<ZarrSpec>(args, 1, "the store")?;
    let array = open_in_task(spec)?;
    let ranges = block_ranges(&spec.chunks, part);
    let chunk: ArrayD<T> = array
        .retrieve_array_subset(&ranges.as_slice())
        .map_err(|e| TaskError::msg(format!("{}: reading {ranges:?}: {e}", spec.location)))?;
    Ok(chunk_value(chunk))
}

impl<T: Element + ElementOwned> Array<T> {
    /// Writes the array as a Zarr v3 array at `path` (a local directory, replaced if it holds
    /// one, or a URL as [`from_zarr`] takes), with its chunks as the store's and
    /// `compression`; every chunk is stored in parallel. Returns the bytes of data written
    /// (before compression).
    pub fn to_zarr(
        &self,
        path: impl AsRef<std::path::Path>,
        compression: ZarrCompression,
    ) -> Result<u64> {
        let path = path.as_ref().to_string_lossy().into_owned();
        self.write_zarr(Location::parse(&path, &StorageOptions::new()), compression)
    }

    /// [`Array::to_zarr`] to a URL with storage options (see [`from_zarr_url`]).
    pub fn to_zarr_url<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        storage_options: impl IntoIterator<Item = (K, V)>,
        compression: ZarrCompression,
    ) -> Result<u64> {
        let options = rask_storage::storage_options(storage_options);
        self.write_zarr(Location::parse(url, &options), compression)
    }

    fn write_zarr(&self, location: Location, compression: ZarrCompression) -> Result<u64> {
        let path = location.to_string();
        // A Zarr grid is regular: every chunk but the last of an axis has one length.
        let mut chunk_shape = Vec::with_capacity(self.ndim());
        for (axis, lengths) in self.chunks.per_axis().iter().enumerate() {
            let first = lengths[0];
            if lengths[..lengths.len() - 1].iter().any(|&n| n != first)
                || lengths[lengths.len() - 1] > first
            {
                return Err(Error::Chunks(format!(
                    "to_zarr needs regular chunks (all of one length but the last, which may be \
                     shorter), but axis {axis} has {lengths:?}: rechunk first, e.g. \
                     `x.rechunk({:?})`",
                    self.chunks.max_block_shape()
                )));
            }
            chunk_shape.push(first.max(1) as u64);
        }
        if let Location::Local(directory) = &location {
            std::fs::create_dir_all(directory)
                .map_err(|e| storage_error(&path, format!("cannot create the directory: {e}")))?;
        }
        let store = storage(&location).map_err(|e| storage_error(&path, e))?;
        let shape: Vec<u64> = self.shape().iter().map(|&n| n as u64).collect();
        let mut fill = Vec::with_capacity(size_of::<T>());
        T::write_bytes(&[T::default()], &mut fill);
        // The fill value as raw element bytes (zarrs writes its metadata for the type).
        let fill = zarrs::array::FillValue::from(fill);
        let mut builder = ArrayBuilder::new(shape, chunk_shape, zarr_type::<T>(), fill);
        match compression {
            ZarrCompression::None => {}
            ZarrCompression::Zstd => {
                builder.bytes_to_bytes_codecs(vec![Arc::new(zarrs::array::codec::ZstdCodec::new(
                    3, false,
                ))]);
            }
            ZarrCompression::Gzip => {
                builder.bytes_to_bytes_codecs(vec![Arc::new(
                    zarrs::array::codec::GzipCodec::new(5).map_err(|e| storage_error(&path, e))?,
                )]);
            }
        }
        let array = builder.build(store, "/").map_err(|e| storage_error(&path, e))?;
        array.store_metadata().map_err(|e| storage_error(&path, e))?;
        let metadata = metadata_json(&array, &path)?;
        let spec = ZarrSpec { location, metadata, chunks: (*self.chunks).clone() };
        let name = layer_name("to-zarr", |t| {
            t.str(self.name.as_str()).str(&path);
        });
        let writes: Array<T> =
            self.per_chunk(name, typed_fn::<T>("rask_array::zarr_write"), Value::serde(spec));
        run_writes(&writes, &path)
    }
}

fn zarr_write<T: Element + ElementOwned>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let spec = spec_arg::<ZarrSpec>(args, 1, "the store")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let array = open_in_task(spec)?;
    let ranges = block_ranges(&spec.chunks, part);
    if chunk.is_empty() {
        return Ok(Value::serde(0u64));
    }
    array
        .store_array_subset(&ranges.as_slice(), chunk)
        .map_err(|e| TaskError::msg(format!("{}: writing {ranges:?}: {e}", spec.location)))?;
    Ok(Value::serde((chunk.len() * size_of::<T>()) as u64))
}

macro_rules! register_zarr {
    ($t:ty, $dtype:literal) => {
        $crate::register_typed!($t, $dtype, "rask_array::zarr_read", zarr_read);
        $crate::register_typed!($t, $dtype, "rask_array::zarr_write", zarr_write);
    };
}
crate::for_each_element!(register_zarr);
