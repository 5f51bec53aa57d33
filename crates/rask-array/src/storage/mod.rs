//! Arrays in files: `.npy` files and Zarr stores.
//!
//! Both read lazily — one task per chunk that opens the file and reads only its chunk's bytes —
//! and write in parallel: the driver makes the file's header (the `.npy` header and zeroed
//! data, or the Zarr metadata), then one task per chunk writes that chunk in place, and a last
//! task counts what was written. An object store cannot write into the middle of an object:
//! there a `.npy` file's row blocks are written as objects of their own and the last task
//! streams them into the file by a multipart upload. Paths are the workers' paths: on a
//! cluster every worker must see the same filesystem or store (as with Dask).
//!
//! A path that does not exist, a file of another element type, or a layout that cannot be read
//! chunk by chunk is an [`Error::Storage`](crate::Error::Storage) naming the path, what it
//! holds and what to do.

pub mod npy;
pub mod zarr;

use rask_core::{
    Arg, Graph, Key, Layer, Name, Optimizations, TaskError, TaskResult, TaskSpec, Value,
};

use crate::array::{layer_name, plain_fn, Array};
use crate::element::Element;
use crate::error::{Error, Result};

/// A lazy array of a file: one `func(block number, spec)` task per chunk, named after the path,
/// the type and the spec (the same file read the same way is the same layer).
pub(crate) fn read_layer<T: Element, S: serde::Serialize + Send + Sync + 'static>(
    prefix: &str,
    path: &str,
    func: rask_core::TaskFn,
    spec: S,
    chunks: crate::chunks::Chunks,
) -> Array<T> {
    let spec_bytes = rask_core::value::encode_serde(&spec).unwrap_or_default();
    let name = layer_name(prefix, |t| {
        t.str(path).str(T::DTYPE).bytes(&spec_bytes);
    });
    Array::blockwise_layer(
        name,
        func,
        vec![rask_core::BlockArg::PartIndex, rask_core::BlockArg::Value(Value::serde(spec))],
        &[],
        chunks,
    )
}

/// Computes a layer of per-chunk write tasks (each returning the bytes it wrote) and returns
/// the total: one task reads every write's count, so nothing is gathered but numbers.
pub(crate) fn run_writes<T: Element>(writes: &Array<T>, what: &str) -> Result<u64> {
    finish_writes(writes, what, plain_fn("rask_array::total_written"), None)
}

/// [`run_writes`] with another last task: `finish(the writes' counts, spec)`, returning the
/// total (after, say, assembling what the writes left).
pub(crate) fn finish_writes<T: Element>(
    writes: &Array<T>,
    what: &str,
    finish: rask_core::TaskFn,
    spec: Option<Value>,
) -> Result<u64> {
    let name: Name = layer_name("written", |t| {
        t.str(writes.name().as_str()).str(what);
    });
    let key = Key::part(name.clone(), 0);
    let mut args = vec![Arg::List(writes.block_keys().into_iter().map(Arg::Key).collect())];
    args.extend(spec.map(Arg::Value));
    let spec = TaskSpec::new(finish, args);
    let graph = Graph::from_layer(Layer::tasks(name, vec![(key.clone(), spec)], &[&writes.graph]));
    let values =
        rask_local::current_scheduler().compute(&graph, &[key], &Optimizations::default())?;
    let total = values
        .first()
        .ok_or_else(|| Error::Invalid(format!("writing {what} returned nothing")))?
        .get::<u64>(&"the bytes written")?;
    Ok(*total)
}

/// The sum of the byte counts of the writes (argument 0).
pub(crate) fn written_total(args: &[Value]) -> std::result::Result<u64, TaskError> {
    let list = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the writes"))?;
    let mut total = 0u64;
    for (i, value) in list.iter().enumerate() {
        total += value.get::<u64>(&format_args!("the bytes chunk {i} wrote"))?;
    }
    Ok(total)
}

fn total_written(args: &[Value]) -> TaskResult {
    Ok(Value::serde(written_total(args)?))
}
rask_core::register_function!("rask_array::total_written", total_written);

/// A storage error for `path`.
pub(crate) fn storage_error(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::Storage { path: path.to_string(), reason: reason.to_string() }
}
