//! [`Array<T>`]: a lazy N-d array of `ndarray` chunks.
//!
//! An array is a graph, the name of the layer that holds its chunks, and its [`Chunks`]: chunk
//! `(i, j, ...)` is the key `(name, i, j, ...)`. Operations add layers — elementwise ones as
//! rask-core `Blockwise` layers, which fuse into one task per chunk when lowered — and nothing
//! runs until `compute()` (an `ndarray::ArrayD<T>`) or `persist()`. The element type is a type
//! parameter: an operation a type does not support does not compile.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, Slice};
use rask_core::{
    registry, AxisMap, BlockArg, BlockGrid, Blockwise, Collection, Graph, Key, Layer, Name,
    Optimizations, TaskFn, Tokenizer, Value,
};

use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{Error, Result};

/// A lazy, chunked N-d array of `T`.
pub struct Array<T: Element> {
    pub(crate) graph: Graph,
    pub(crate) name: Name,
    pub(crate) chunks: Arc<Chunks>,
    /// The elementwise step that made the array, when a slice can move in front of it.
    pub(crate) step: Option<Arc<crate::pushdown::Step>>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Element> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            graph: self.graph.clone(),
            name: self.name.clone(),
            chunks: self.chunks.clone(),
            step: self.step.clone(),
            _type: PhantomData,
        }
    }
}

/// The registered task function `base::<dtype>` of one element type.
pub(crate) fn typed_fn<T: Element>(base: &str) -> TaskFn {
    registry::lookup(&format!("{base}::<{}>", T::DTYPE))
        .unwrap_or_else(|e| panic!("rask-array registers {base} for every element type: {e}"))
}

/// The registered task function `name`.
pub(crate) fn plain_fn(name: &str) -> TaskFn {
    registry::lookup(name).unwrap_or_else(|e| panic!("rask-array registers {name}: {e}"))
}

/// A layer name: `prefix-<token of the parts>`.
pub(crate) fn layer_name(prefix: &str, parts: impl FnOnce(&mut Tokenizer)) -> Name {
    let mut tokenizer = Tokenizer::new();
    tokenizer.str(prefix);
    parts(&mut tokenizer);
    Name::tokenized(prefix, tokenizer.finish())
}

impl<T: Element> Array<T> {
    /// An array whose chunk `(i, j, ...)` is the key `(name, i, j, ...)` of `graph`. The
    /// constructor hooks ([`crate::hooks`]) see it.
    pub fn from_graph(graph: Graph, name: Name, chunks: Chunks) -> Self {
        crate::hooks::apply(Array::unhooked(graph, name, Arc::new(chunks)))
    }

    pub(crate) fn with_shared_chunks(graph: Graph, name: Name, chunks: Arc<Chunks>) -> Self {
        crate::hooks::apply(Array::unhooked(graph, name, chunks))
    }

    /// An array the hooks do not see: a persisted one, or an operation's internal layer.
    pub(crate) fn unhooked(graph: Graph, name: Name, chunks: Arc<Chunks>) -> Self {
        Array { graph, name, chunks, step: None, _type: PhantomData }
    }

    /// A blockwise layer over `inputs` with `chunks` as its output's chunks.
    pub(crate) fn blockwise_layer(
        name: Name,
        func: TaskFn,
        args: Vec<BlockArg>,
        inputs: &[&Graph],
        chunks: Chunks,
    ) -> Self {
        crate::hooks::apply(Array::partial_layer(name, func, args, inputs, chunks))
    }

    /// A step inside an operation run on every chunk: `func(chunk, spec, block number)` over
    /// this array's grid (reduction partials, per-chunk top-k, writes). The hooks do not see
    /// it, and its chunks describe its grid only.
    pub(crate) fn per_chunk<U: Element>(&self, name: Name, func: TaskFn, spec: Value) -> Array<U> {
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        Array::partial_layer(
            name,
            func,
            vec![
                BlockArg::Aligned(self.name.clone(), identity),
                BlockArg::Value(spec),
                BlockArg::PartIndex,
            ],
            &[&self.graph],
            (*self.chunks).clone(),
        )
    }

    /// A blockwise layer that is a step inside an operation (per-chunk partials, writes), not
    /// an array of the user's: the hooks do not see it, and its chunks describe its grid only.
    pub(crate) fn partial_layer(
        name: Name,
        func: TaskFn,
        args: Vec<BlockArg>,
        inputs: &[&Graph],
        chunks: Chunks,
    ) -> Self {
        let op = Blockwise::new(BlockGrid::of(&chunks.grid()), func, args);
        let graph = Graph::from_layer(Layer::blockwise(name.clone(), op, inputs));
        Array::unhooked(graph, name, Arc::new(chunks))
    }

    /// The array's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.chunks.shape()
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.chunks.ndim()
    }

    /// The number of elements.
    pub fn size(&self) -> usize {
        self.shape().iter().product()
    }

    /// The bytes the elements take.
    pub fn nbytes(&self) -> usize {
        self.size() * size_of::<T>()
    }

    /// NumPy's name of the element type.
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// The chunks.
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// Blocks per axis.
    pub fn numblocks(&self) -> Vec<u32> {
        self.chunks.grid()
    }

    /// The name of the layer holding the chunks.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The graph.
    pub fn graph_ref(&self) -> &Graph {
        &self.graph
    }

    /// The key of the chunk at `index`.
    pub fn block_key(&self, index: &[u32]) -> Key {
        Key::block(self.name.clone(), index)
    }

    /// The keys of every chunk, row-major.
    pub fn block_keys(&self) -> Vec<Key> {
        let grid = BlockGrid::of(&self.chunks.grid());
        (0..grid.len() as u32).map(|i| Key::block(self.name.clone(), &grid.unravel(i))).collect()
    }

    /// Checks an axis number (negative counts from the end) and returns it as an index.
    pub(crate) fn axis(&self, axis: isize) -> Result<usize> {
        normalize_axis(axis, self.ndim())
    }

    /// Computes the chunks now and returns an array that reads them, on the default scheduler
    /// (on a cluster the chunks stay on the workers).
    pub fn persist(&self) -> Result<Array<T>> {
        let keys = self.block_keys();
        let graph = rask_local::current_scheduler().persist(
            &self.graph,
            &keys,
            &Optimizations::default(),
        )?;
        Ok(Array::unhooked(graph, self.name.clone(), self.chunks.clone()))
    }

    /// Waits until the chunks of a persisted array exist: on a cluster `persist` returns at
    /// once, as Dask's does, and the chunks are computed in the background.
    pub fn wait(&self) -> Result<()> {
        Ok(rask_local::current_scheduler().wait_persisted(&self.graph)?)
    }
}

/// An axis number from `-ndim..ndim` as an index.
pub(crate) fn normalize_axis(axis: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    if axis < -n || axis >= n {
        return Err(Error::Axis { axis, ndim });
    }
    Ok(if axis < 0 { (axis + n) as usize } else { axis as usize })
}

/// The chunk of a value, or an error naming what it holds instead.
pub(crate) fn chunk_of<'a, T: Element>(
    value: &'a Value,
    what: &dyn fmt::Display,
) -> rask_core::Result<&'a ArrayD<T>> {
    value.get::<ArrayD<T>>(what)
}

/// Argument `i` of a task function, or an error naming what is missing.
pub(crate) fn task_arg<'a>(
    args: &'a [Value],
    i: usize,
    what: &str,
) -> std::result::Result<&'a Value, rask_core::TaskError> {
    args.get(i).ok_or_else(|| rask_core::TaskError::msg(format!("missing {what}")))
}

/// Argument `i` of a task function as a chunk of `T`.
pub(crate) fn chunk_arg<T: Element>(
    args: &[Value],
    i: usize,
) -> std::result::Result<&ArrayD<T>, rask_core::TaskError> {
    Ok(chunk_of::<T>(task_arg(args, i, "a chunk")?, &format_args!("chunk argument {i}"))?)
}

/// Argument `i` of a task function as a spec of type `S` (a literal the graph carries).
pub(crate) fn spec_arg<'a, S: 'static>(
    args: &'a [Value],
    i: usize,
    what: &str,
) -> std::result::Result<&'a S, rask_core::TaskError> {
    Ok(task_arg(args, i, what)?.get::<S>(&what)?)
}

/// The whole array from its chunks, row-major.
pub(crate) fn assemble<T: Element>(chunks: &Chunks, blocks: &[&ArrayD<T>]) -> Result<ArrayD<T>> {
    let shape = chunks.shape();
    let mut out = ArrayD::from_elem(IxDyn(&shape), T::default());
    let grid = BlockGrid::of(&chunks.grid());
    let offsets: Vec<Vec<usize>> = (0..chunks.ndim()).map(|a| chunks.offsets(a)).collect();
    for (linear, block) in blocks.iter().enumerate() {
        let index = grid.unravel(linear as u32);
        let expected = chunks.block_shape(&index);
        if block.shape() != expected.as_slice() {
            return Err(Error::Chunks(format!(
                "chunk {index:?} has shape {:?} where {expected:?} was expected (a map_blocks that \
                 changes the chunk shape must declare its output chunks)",
                block.shape()
            )));
        }
        let mut view = out.slice_each_axis_mut(|axis| {
            let a = axis.axis.index();
            let start = offsets[a][index[a] as usize];
            Slice::from(start..start + expected[a])
        });
        view.assign(block);
    }
    Ok(out)
}

impl<T: Element> Collection for Array<T> {
    type Output = ArrayD<T>;

    fn graph(&self) -> Graph {
        self.graph.clone()
    }

    fn output_keys(&self) -> Vec<Key> {
        self.block_keys()
    }

    fn finalize(&self, values: Vec<Value>) -> rask_core::Result<ArrayD<T>> {
        if values.len() == 1 && self.chunks.count() == 1 {
            // One chunk is the result: moved out when nothing else holds it, not copied.
            let chunk = values.into_iter().next().expect("one value");
            let chunk = chunk.into_inner::<ArrayD<T>>(&"the array's only chunk")?;
            if chunk.shape() != self.chunks.shape().as_slice() {
                return Err(Error::Chunks(format!(
                    "a chunk of shape {:?} where {:?} was expected (a map_blocks that changes the \
                     chunk shape must declare its output chunks)",
                    chunk.shape(),
                    self.chunks.shape()
                ))
                .into());
            }
            return Ok(chunk);
        }
        let blocks = values
            .iter()
            .enumerate()
            .map(|(i, value)| chunk_of::<T>(value, &format_args!("chunk {i} of the array")))
            .collect::<rask_core::Result<Vec<_>>>()?;
        Ok(assemble(&self.chunks, &blocks)?)
    }
}

/// Bytes as Dask shows them: `400.00 MB`, decimal units.
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

fn tuple(values: &[usize]) -> String {
    match values {
        [one] => format!("({one},)"),
        _ => format!("({})", values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

impl<T: Element> fmt::Display for Array<T> {
    /// `rask.array<shape=(400, 1000, 1000), dtype=uint8, chunksize=(20, 1000, 1000),
    /// chunks=20, bytes=400.00 MB, tasks=40>` — without computing anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rask.array<{}, shape={}, dtype={}, chunksize={}, chunks={}, bytes={}, tasks={}>",
            self.name.prefix(),
            tuple(&self.shape()),
            T::DTYPE,
            tuple(&self.chunks.max_block_shape()),
            self.chunks.count(),
            human_bytes(self.nbytes()),
            self.graph.num_tasks()
        )
    }
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
