//! `.npy` files (NumPy's format): `from_npy` and `from_npy_url` (a local file or an object
//! in a store: `s3://bucket/x.npy`), `Array::to_npy` (local files) and `Array::to_npy_url`
//! (either).
//!
//! The header and the element encoding are `ndarray-npy`'s; what rask adds is reading and
//! writing by chunk. The elements of a C-order file are one row-major run, so a chunk's rows
//! along the first axis are one byte range: a reading task reads the header and then only the
//! range of its rows (a ranged GET from an object store), decodes them and cuts its columns
//! out. Writing a local file makes the header and zeroed data (sparse where the filesystem
//! allows), then every chunk writes its runs at their offsets. Writing to an object store cuts
//! the array into row blocks (each one contiguous run of the file), which the chunk tasks write
//! as objects `<url>.parts/<block>`; the last task streams the header and the blocks, in
//! order, into the object by a multipart upload — one block in memory at a time — and deletes
//! the blocks. Fortran-order files are refused (NumPy writes them only when asked).

use std::fs::{File, OpenOptions};
use std::io::Cursor;
use std::os::unix::fs::FileExt;

use ndarray::{ArrayD, IxDyn, Slice};
use ndarray_npy::npy::header::{Header, Layout};
use ndarray_npy::{ReadableElement, WritableElement};
use rask_core::{BlockGrid, TaskError, TaskResult, Value};
use rask_storage::{Location, StorageOptions};
use serde::{Deserialize, Serialize};

use super::{finish_writes, read_layer, run_writes, storage_error, written_total};
use crate::array::{chunk_arg, layer_name, plain_fn, spec_arg, typed_fn, Array};
use crate::chunks::{ChunkSpec, Chunks};
use crate::element::{chunk_value, Element};
use crate::error::Result;

/// What a chunk task of a `.npy` file needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NpySpec {
    path: String,
    shape: Vec<usize>,
    chunks: Chunks,
}
rask_core::register_type!(NpySpec);

/// What a reading task needs: the spec, where the file is and where its data starts (so a
/// task reads exactly the header, to check the file has not changed, then its rows).
type NpySource = (NpySpec, Location, u64);
rask_core::register_type!(NpySource);

/// Bytes read for a header: NumPy's version-1 headers are at most 65,535 + 10 bytes.
const HEADER_BYTES: u64 = 65_545 + 16;

/// The header of a `.npy` file within its first `size` bytes, and where its data starts.
fn read_header(location: &Location, size: u64) -> std::result::Result<(Header, u64), String> {
    let bytes = location
        .read_range(0, size.min(HEADER_BYTES))
        .map_err(|e| format!("cannot open the .npy file: {e}"))?;
    let mut cursor = Cursor::new(bytes);
    let header = Header::from_reader(&mut cursor).map_err(|e| format!("not a .npy file: {e}"))?;
    Ok((header, cursor.position()))
}

/// A lazy array of the `.npy` file at `path`, in `chunks`. The file's element type must be
/// `T`; its shape is read from the header.
pub fn from_npy<T: Element + ReadableElement>(
    path: impl AsRef<std::path::Path>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let path = path.as_ref().to_string_lossy().into_owned();
    open_npy(&path, Location::parse(&path, &StorageOptions::new()), &chunks.into())
}

/// [`from_npy`] of a file in an object store (`s3://bucket/x.npy`, with storage options as
/// `object_store` names them, e.g. `aws_endpoint`, or `AWS_*` variables) or a local path:
/// every task reads the header and its own byte range, so a cluster's workers need no shared
/// filesystem.
pub fn from_npy_url<T: Element + ReadableElement, K: AsRef<str>, V: AsRef<str>>(
    url: &str,
    storage_options: impl IntoIterator<Item = (K, V)>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let options = rask_storage::storage_options(storage_options);
    open_npy(url, Location::parse(url, &options), &chunks.into())
}

fn open_npy<T: Element + ReadableElement>(
    path: &str,
    location: Location,
    chunks: &ChunkSpec,
) -> Result<Array<T>> {
    let path = path.to_string();
    let size = location
        .size()
        .map_err(|e| storage_error(&path, format!("cannot open the .npy file: {e}")))?;
    let (header, data_start) =
        read_header(&location, size).map_err(|reason| storage_error(&path, reason))?;
    if header.layout == Layout::Fortran {
        return Err(storage_error(
            &path,
            "a Fortran-order .npy file cannot be read by chunks: save it in C order \
             (np.save(path, np.ascontiguousarray(x)))",
        ));
    }
    // The element type: decoding zero elements checks the descriptor against `T`.
    if T::read_to_end_exact_vec(&[][..], &header.type_descriptor, 0).is_err() {
        return Err(storage_error(
            &path,
            format!(
                "the file holds elements of type {}, not {}: read it as that type (then astype)",
                header.type_descriptor,
                T::DTYPE
            ),
        ));
    }
    let shape = header.shape.clone();
    let chunks = chunks.resolve(&shape, size_of::<T>())?;
    let spec = NpySpec { path: path.clone(), shape, chunks: chunks.clone() };
    let source: NpySource = (spec, location, data_start);
    Ok(read_layer("from-npy", &path, typed_fn::<T>("rask_array::npy_read"), source, chunks))
}

/// Where a chunk lies: per axis its start and length.
fn chunk_region(chunks: &Chunks, part: u32) -> (Vec<usize>, Vec<usize>) {
    let index = BlockGrid::of(&chunks.grid()).unravel(part);
    let starts = (0..chunks.ndim()).map(|a| chunks.offsets(a)[index[a] as usize]).collect();
    (starts, chunks.block_shape(&index))
}

fn npy_read<T: Element + ReadableElement>(args: &[Value]) -> TaskResult {
    let part = *spec_arg::<u32>(args, 0, "the block number")?;
    let (spec, location, data_start) = spec_arg::<NpySource>(args, 1, "the file")?;
    let (header, offset) = read_header(location, *data_start).map_err(|e| {
        TaskError::msg(format!(
            "{}: {e} (was the file replaced since the array was made?)",
            spec.path
        ))
    })?;
    if header.shape != spec.shape {
        return Err(TaskError::msg(format!(
            "{}: the file's shape changed from {:?} to {:?} since the array was made",
            spec.path, spec.shape, header.shape
        )));
    }
    let (starts, lengths) = chunk_region(&spec.chunks, part);
    // The rows of the first axis the chunk spans, whole, then its columns cut out.
    let row: usize = spec.shape.iter().skip(1).product();
    let (first, rows) = match (starts.first(), lengths.first()) {
        (Some(&s), Some(&n)) => (s, n),
        _ => (0, 1), // a 0-d array: its one element
    };
    let item = size_of::<T>() as u64;
    let count = rows * row;
    let start = offset + (first * row) as u64 * item;
    let bytes = location
        .read_range(start, start + count as u64 * item)
        .map_err(|e| TaskError::msg(format!("{}: {e}", spec.path)))?;
    let elements = T::read_to_end_exact_vec(&bytes[..], &header.type_descriptor, count)
        .map_err(|e| TaskError::msg(format!("{}: {e}", spec.path)))?;
    let mut row_shape = spec.shape.clone();
    if let Some(n) = row_shape.first_mut() {
        *n = rows;
    }
    let block = ArrayD::from_shape_vec(IxDyn(&row_shape), elements)?;
    let chunk = if lengths.iter().skip(1).zip(spec.shape.iter().skip(1)).all(|(a, b)| a == b) {
        block
    } else {
        block
            .slice_each_axis(|axis| {
                let a = axis.axis.index();
                if a == 0 {
                    Slice::from(..)
                } else {
                    Slice::from(starts[a]..starts[a] + lengths[a])
                }
            })
            .to_owned()
    };
    Ok(chunk_value(chunk))
}

impl<T: Element + WritableElement> Array<T> {
    /// Writes the array to a `.npy` file at `path` (replacing it), every chunk in parallel;
    /// returns the bytes of data written.
    pub fn to_npy(&self, path: impl AsRef<std::path::Path>) -> Result<u64> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let file = File::create(&path)
            .map_err(|e| storage_error(&path, format!("cannot create the file: {e}")))?;
        ndarray_npy::write_zeroed_npy::<T, _>(&file, IxDyn(&self.shape()))
            .map_err(|e| storage_error(&path, format!("cannot write the header: {e}")))?;
        let size = file.metadata().map_err(|e| storage_error(&path, e))?.len();
        drop(file);
        let location = Location::Local(path.clone().into());
        let (_, offset) =
            read_header(&location, size).map_err(|reason| storage_error(&path, reason))?;
        let spec =
            NpySpec { path: path.clone(), shape: self.shape(), chunks: (*self.chunks).clone() };
        let name = layer_name("to-npy", |t| {
            t.str(self.name.as_str()).str(&path);
        });
        let writes: Array<T> = self.per_chunk(
            name,
            typed_fn::<T>("rask_array::npy_write"),
            Value::serde((spec, offset)),
        );
        run_writes(&writes, &path)
    }
}

impl<T: Element + WritableElement> Array<T> {
    /// Writes the array to a `.npy` file at `url` — a local path or an object in a store
    /// (`s3://bucket/x.npy`, opened with `options` as [`from_npy_url`]) — replacing it;
    /// returns the bytes of data written. In a store, the row blocks are written in parallel
    /// and then streamed into the object in order (see the module's overview).
    pub fn to_npy_url<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64> {
        let options = rask_storage::storage_options(options);
        let target = Location::parse(url, &options);
        if let Location::Local(path) = &target {
            return self.to_npy(path);
        }
        let shape = self.shape();
        // Row blocks: every chunk one run of the file's bytes.
        let rows = match shape.split_first() {
            Some((_, rest)) => {
                let mut chunks = vec![self.chunks.per_axis()[0].clone()];
                chunks.extend(rest.iter().map(|&n| vec![n]));
                self.rechunk(chunks)?
            }
            None => self.clone(),
        };
        let header = Header {
            type_descriptor: T::type_descriptor(),
            layout: Layout::Standard,
            shape: shape.clone(),
        }
        .to_bytes()
        .map_err(|e| storage_error(url, format!("cannot make the header: {e}")))?;
        let parts_dir = Location::parse(&format!("{}.parts", url.trim_end_matches('/')), &options);
        // Blocks left by an earlier write that failed would be read as this one's.
        parts_dir.delete_prefix().map_err(|e| storage_error(url, e))?;
        let blocks = rows.numblocks().iter().product::<u32>().max(1);
        let parts: Vec<Location> =
            (0..blocks).map(|i| parts_dir.join(&format!("{i:08}"))).collect();
        let name = layer_name("to-npy-part", |t| {
            t.str(rows.name.as_str()).str(url);
        });
        let writes: Array<T> = rows.per_chunk(
            name,
            typed_fn::<T>("rask_array::npy_part"),
            Value::serde(parts_dir.clone()),
        );
        let assemble = NpyAssembly { target, header, parts, parts_dir };
        finish_writes(
            &writes,
            url,
            plain_fn("rask_array::npy_assemble"),
            Some(Value::serde(assemble)),
        )
    }
}

/// What the last task of a write to a store needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NpyAssembly {
    target: Location,
    header: Vec<u8>,
    parts: Vec<Location>,
    parts_dir: Location,
}
rask_core::register_type!(NpyAssembly);
rask_core::register_type!(Location);

/// One row block's bytes, as an object of its own.
fn npy_part<T: Element + WritableElement>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let parts_dir = spec_arg::<Location>(args, 1, "where the blocks go")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let standard = chunk.as_standard_layout();
    let elements = standard.as_slice().expect("standard layout is contiguous");
    let mut bytes = Vec::with_capacity(size_of_val(elements));
    T::write_slice(elements, &mut bytes).map_err(|e| TaskError::msg(e.to_string()))?;
    let written = bytes.len() as u64;
    parts_dir
        .join(&format!("{part:08}"))
        .write_all(bytes)
        .map_err(|e| TaskError::msg(e.to_string()))?;
    Ok(Value::serde(written))
}

/// The header and the row blocks, in order, streamed into the file; then the blocks deleted.
fn npy_assemble(args: &[Value]) -> TaskResult {
    let expected = written_total(args)?;
    let assembly = spec_arg::<NpyAssembly>(args, 1, "the file's assembly")?;
    let written = assembly
        .target
        .write_concatenation(&assembly.header, &assembly.parts)
        .map_err(|e| TaskError::msg(e.to_string()))?;
    if written != expected {
        return Err(TaskError::msg(format!(
            "{}: the row blocks held {written} bytes, {expected} were written",
            assembly.target
        )));
    }
    assembly.parts_dir.delete_prefix().map_err(|e| TaskError::msg(e.to_string()))?;
    Ok(Value::serde(written))
}
rask_core::register_function!("rask_array::npy_assemble", npy_assemble);

rask_core::register_type!((NpySpec, u64));

fn npy_write<T: Element + WritableElement>(args: &[Value]) -> TaskResult {
    let chunk = chunk_arg::<T>(args, 0)?;
    let (spec, offset) = spec_arg::<(NpySpec, u64)>(args, 1, "the file")?;
    let part = *spec_arg::<u32>(args, 2, "the block number")?;
    let (starts, lengths) = chunk_region(&spec.chunks, part);
    let shape = &spec.shape;
    let ndim = shape.len();
    // The longest run: the chunk's last axes that span the whole array are one with the axis
    // before them.
    let mut k = ndim.saturating_sub(1);
    while k > 0 && lengths[k] == shape[k] {
        k -= 1;
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&spec.path)
        .map_err(|e| TaskError::msg(format!("{}: {e}", spec.path)))?;
    let strides: Vec<usize> = (0..ndim).map(|a| shape[a + 1..].iter().product()).collect();
    let item = size_of::<T>() as u64;
    let standard = chunk.as_standard_layout();
    let elements = standard.as_slice().expect("standard layout is contiguous");
    let run = if ndim == 0 { 1 } else { lengths[k..].iter().product::<usize>() };
    let outer: Vec<u32> = lengths[..k].iter().map(|&n| n as u32).collect();
    let grid = BlockGrid::of(&outer);
    let mut bytes = Vec::with_capacity(run * size_of::<T>());
    let mut written = 0u64;
    for (r, values) in (0..grid.len() as u32).zip(elements.chunks(run.max(1))) {
        let at = grid.unravel(r);
        let mut flat = 0usize;
        for a in 0..ndim {
            let local = if a < k { at[a] as usize } else { 0 };
            flat += (starts[a] + local) * strides[a];
        }
        bytes.clear();
        T::write_slice(values, &mut bytes).map_err(|e| TaskError::msg(e.to_string()))?;
        file.write_all_at(&bytes, offset + flat as u64 * item)?;
        written += bytes.len() as u64;
    }
    Ok(Value::serde(written))
}

macro_rules! register_npy {
    ($t:ty, $dtype:literal) => {
        $crate::register_typed!($t, $dtype, "rask_array::npy_read", npy_read);
        $crate::register_typed!($t, $dtype, "rask_array::npy_write", npy_write);
        $crate::register_typed!($t, $dtype, "rask_array::npy_part", npy_part);
    };
}
crate::for_each_element!(register_npy);
