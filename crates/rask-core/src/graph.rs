//! The layered graph that collections build.
//!
//! A [`Graph`] is a set of *head* [`Layer`]s; every layer holds `Arc`s of the layers it reads
//! from, so a graph is a DAG of shared layers. Adding an operation to a collection makes one new
//! layer that points at the old ones: it costs the new layer only, never a copy of the graph,
//! and two collections built from a common input share that input's layers.
//!
//! A layer is either a list of explicit tasks ([`LayerKind::Tasks`], what `Delayed` values and
//! hand-written graphs use) or a symbolic [`Blockwise`] operation: "apply this function to
//! block *b* of these inputs, for every *b* of a grid of blocks" — partitions `0..n` of a
//! DataFrame, or the N-d block indices of an Array. Inputs are read at the same block or, in
//! the `ij,jk->ik` sense of Dask's `blockwise`, at a block whose index is mapped from the
//! output's ([`AxisMap`]): transposed, broadcast along an axis, or listed along a contracted
//! index (the blocks of a row times a column in a matrix product). Blockwise layers are expanded
//! into tasks only when the graph is lowered ([`crate::lower`]), and chains of them are fused
//! before that, so a 1,000-partition collection with 100 elementwise steps lowers to 1,000
//! tasks without ever materializing 100,000.
//!
//! Layers are identified by name: two layers with the same name are taken to be the same
//! operation (names are tokenized from the operation and its inputs).

use std::collections::HashSet;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::key::{Key, Name, Token};
use crate::task::{TaskFn, TaskSpec};
use crate::value::Value;

/// One operation over many partitions, or a list of explicit tasks.
pub struct Layer {
    name: Name,
    kind: LayerKind,
    dependencies: Vec<Arc<Layer>>,
    /// What must live as long as the layer: a client's holds on the results an `External` layer
    /// names (dropping the last copy of the layer releases them on the cluster).
    _keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// What a layer contains.
pub enum LayerKind {
    /// Explicit tasks, each with its own key.
    Tasks(Vec<(Key, TaskSpec)>),
    /// A function applied to every partition of its inputs.
    Blockwise(Blockwise),
    /// Results that already exist on a cluster (a client's futures): graphs can read them, only
    /// the distributed scheduler that holds them can provide them.
    External(Vec<Key>),
}

/// A function applied to every block of a grid; the task of block `(i, j, ...)` has the key
/// `(layer name, i, j, ...)` (a 1-d grid of `n` partitions: `(layer name, i)`).
#[derive(Clone)]
pub struct Blockwise {
    /// The grid of output blocks.
    pub grid: BlockGrid,
    /// Blocks per contracted index: the `j` of `ij,jk->ik`, read by [`AxisMap::Contracted`].
    pub contracted: Vec<u32>,
    /// The function each task calls.
    pub func: TaskFn,
    /// The arguments of the task of one block.
    pub args: Vec<BlockArg>,
    /// Retries of each task.
    pub retries: u32,
}

impl Blockwise {
    /// `func` over a grid, with no contracted index and no retries.
    pub fn new(grid: impl Into<BlockGrid>, func: TaskFn, args: Vec<BlockArg>) -> Self {
        Blockwise { grid: grid.into(), contracted: Vec::new(), func, args, retries: 0 }
    }
}

/// The number of blocks along each axis of a blockwise layer; tasks are numbered row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockGrid(SmallVec<[u32; 4]>);

impl BlockGrid {
    /// A 1-d grid of `n` partitions.
    pub fn partitions(n: u32) -> Self {
        BlockGrid(SmallVec::from_slice(&[n]))
    }

    /// A grid with these block counts per axis (an empty slice: one block of a 0-d array).
    pub fn of(blocks_per_axis: &[u32]) -> Self {
        BlockGrid(SmallVec::from_slice(blocks_per_axis))
    }

    /// Blocks per axis.
    pub fn dims(&self) -> &[u32] {
        &self.0
    }

    /// How many blocks in all.
    pub fn len(&self) -> usize {
        self.0.iter().map(|&n| n as usize).product()
    }

    /// Whether the grid has no block (an axis of zero blocks).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row-major number of a block, or `None` if the index does not lie in the grid.
    pub fn ravel(&self, index: &[u32]) -> Option<u32> {
        if index.len() != self.0.len() {
            return None;
        }
        let mut linear = 0u64;
        for (&i, &n) in index.iter().zip(&self.0) {
            if i >= n {
                return None;
            }
            linear = linear * u64::from(n) + u64::from(i);
        }
        u32::try_from(linear).ok()
    }

    /// The block index of row-major block number `linear`.
    pub fn unravel(&self, mut linear: u32) -> SmallVec<[u32; 4]> {
        let mut index: SmallVec<[u32; 4]> = SmallVec::from_elem(0, self.0.len());
        for (slot, &n) in index.iter_mut().zip(&self.0).rev() {
            *slot = linear % n.max(1);
            linear /= n.max(1);
        }
        index
    }
}

impl From<u32> for BlockGrid {
    fn from(n: u32) -> Self {
        BlockGrid::partitions(n)
    }
}

impl From<&[u32]> for BlockGrid {
    fn from(dims: &[u32]) -> Self {
        BlockGrid::of(dims)
    }
}

/// An argument of a blockwise task for one block.
#[derive(Clone, Debug)]
pub enum BlockArg {
    /// The same literal for every block.
    Value(Value),
    /// The row-major number of the block itself, as a `u32` value (the partition index `i` of a
    /// 1-d grid).
    PartIndex,
    /// The block at the same index of the named layer (a blockwise layer, or any layer whose
    /// keys carry block indices).
    Input(Name),
    /// A block of the named layer whose index is mapped from this task's, one [`AxisMap`] per
    /// axis of the input. With [`AxisMap::Contracted`] axes the argument is a list: the blocks
    /// for every value of the contracted indices it uses, row-major.
    Aligned(Name, Vec<AxisMap>),
    /// One fixed key for every block (a broadcast input such as a lookup table).
    Key(Key),
}

/// Where one axis of an [`BlockArg::Aligned`] input takes its block number from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AxisMap {
    /// The block number of this output axis (a transpose maps input axis 0 to output axis 1).
    Out(u8),
    /// Always this block (0 broadcasts a single block along the axis).
    Block(u32),
    /// Every block along contracted index `c` (see [`Blockwise::contracted`]).
    Contracted(u8),
}

impl Layer {
    /// A layer that reads from the given layers.
    pub fn new(name: impl Into<Name>, kind: LayerKind, dependencies: Vec<Arc<Layer>>) -> Self {
        let mut seen = HashSet::new();
        let dependencies =
            dependencies.into_iter().filter(|layer| seen.insert(Arc::as_ptr(layer))).collect();
        Layer { name: name.into(), kind, dependencies, _keep_alive: None }
    }

    /// Results held on a cluster under `keys`, kept there while this layer lives: `holds` is
    /// dropped with the layer's last copy (a persisted collection's partitions).
    pub fn external_held(
        name: impl Into<Name>,
        keys: Vec<Key>,
        holds: Arc<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        Layer {
            name: name.into(),
            kind: LayerKind::External(keys),
            dependencies: Vec::new(),
            _keep_alive: Some(holds),
        }
    }

    /// A layer of explicit tasks that depends on the layers of `inputs`.
    pub fn tasks(name: impl Into<Name>, tasks: Vec<(Key, TaskSpec)>, inputs: &[&Graph]) -> Self {
        Layer {
            name: name.into(),
            kind: LayerKind::Tasks(tasks),
            dependencies: heads_of(inputs),
            _keep_alive: None,
        }
    }

    /// A blockwise layer that depends on the layers of `inputs`.
    pub fn blockwise(name: impl Into<Name>, op: Blockwise, inputs: &[&Graph]) -> Self {
        Layer {
            name: name.into(),
            kind: LayerKind::Blockwise(op),
            dependencies: heads_of(inputs),
            _keep_alive: None,
        }
    }

    /// The layer's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// What the layer contains.
    pub fn kind(&self) -> &LayerKind {
        &self.kind
    }

    /// The layers this one reads from.
    pub fn dependencies(&self) -> &[Arc<Layer>] {
        &self.dependencies
    }

    /// How many tasks the layer stands for.
    pub fn num_tasks(&self) -> usize {
        match &self.kind {
            LayerKind::Tasks(tasks) => tasks.len(),
            LayerKind::Blockwise(op) => op.grid.len(),
            LayerKind::External(keys) => keys.len(),
        }
    }

    /// The keys of the layer's tasks.
    pub fn keys(&self) -> Vec<Key> {
        match &self.kind {
            LayerKind::Tasks(tasks) => tasks.iter().map(|(key, _)| key.clone()).collect(),
            LayerKind::Blockwise(op) => (0..op.grid.len() as u32)
                .map(|i| Key::block(self.name.clone(), &op.grid.unravel(i)))
                .collect(),
            LayerKind::External(keys) => keys.clone(),
        }
    }
}

fn heads_of(inputs: &[&Graph]) -> Vec<Arc<Layer>> {
    let mut seen = HashSet::new();
    inputs
        .iter()
        .flat_map(|graph| graph.heads.iter())
        .filter(|layer| seen.insert(Arc::as_ptr(layer)))
        .cloned()
        .collect()
}

impl Drop for Layer {
    /// Drops long chains of layers iteratively: the default recursive drop of a 100,000-layer
    /// chain would overflow the stack.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.dependencies);
        while let Some(layer) = stack.pop() {
            if let Ok(mut layer) = Arc::try_unwrap(layer) {
                stack.append(&mut layer.dependencies);
            }
        }
    }
}

/// A DAG of shared layers, named by its head layers.
#[derive(Clone, Default)]
pub struct Graph {
    heads: Vec<Arc<Layer>>,
}

impl Graph {
    /// The empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// A graph of explicit tasks, like a Dask graph dictionary. Its keys may refer to each
    /// other in any order; the graph is validated when it is lowered.
    pub fn from_tasks(tasks: impl IntoIterator<Item = (Key, TaskSpec)>) -> Self {
        let name = Name::tokenized("tasks", Token::unique());
        Graph::from_layer(Layer::tasks(name, tasks.into_iter().collect(), &[]))
    }

    /// A graph whose head is `layer`.
    pub fn from_layer(layer: Layer) -> Self {
        Graph { heads: vec![Arc::new(layer)] }
    }

    /// A graph whose head is a shared layer.
    pub fn from_shared_layer(layer: Arc<Layer>) -> Self {
        Graph { heads: vec![layer] }
    }

    /// A new graph: this one plus a blockwise layer over it.
    pub fn blockwise(&self, name: impl Into<Name>, op: Blockwise) -> Self {
        Graph::from_layer(Layer::blockwise(name, op, &[self]))
    }

    /// The union of several graphs (shared layers are kept once).
    pub fn merge(graphs: &[&Graph]) -> Self {
        Graph { heads: heads_of(graphs) }
    }

    /// The head layers.
    pub fn heads(&self) -> &[Arc<Layer>] {
        &self.heads
    }

    /// Every layer of the graph once, each after the layers it depends on.
    pub fn layers(&self) -> Vec<Arc<Layer>> {
        // Iterative post-order DFS: chains of layers can be far deeper than the stack.
        let mut seen: HashSet<Name> = HashSet::new();
        let mut order = Vec::new();
        let mut stack: Vec<(&Arc<Layer>, usize)> = Vec::new();
        for head in &self.heads {
            if !seen.insert(head.name.clone()) {
                continue;
            }
            stack.push((head, 0));
            while let Some((layer, next)) = stack.last_mut() {
                let layer: &Arc<Layer> = layer;
                if let Some(dep) = layer.dependencies.get(*next) {
                    *next += 1;
                    if seen.insert(dep.name.clone()) {
                        stack.push((dep, 0));
                    }
                } else {
                    order.push(layer.clone());
                    stack.pop();
                }
            }
        }
        order
    }

    /// How many tasks the graph stands for before culling and fusion.
    pub fn num_tasks(&self) -> usize {
        self.layers().iter().map(|layer| layer.num_tasks()).sum()
    }

    /// Whether the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.num_tasks() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    fn add_layer(graph: &Graph, prev: &Name, i: usize) -> (Graph, Name) {
        let name = Name::from(format!("add-{i}"));
        let op = Blockwise::new(
            10,
            registry::lookup("rask::identity").unwrap(),
            vec![BlockArg::Input(prev.clone()), BlockArg::Value(Value::new(1_i64))],
        );
        (graph.blockwise(name.clone(), op), name)
    }

    #[test]
    fn adding_a_layer_shares_the_old_ones_and_layers_come_in_dependency_order() {
        let ones = Name::from("ones");
        let op = Blockwise::new(
            10,
            registry::lookup("rask::identity").unwrap(),
            vec![BlockArg::PartIndex],
        );
        let base = Graph::from_layer(Layer::blockwise(ones.clone(), op, &[]));
        let (one, name1) = add_layer(&base, &ones, 1);
        let (two, _) = add_layer(&one, &name1, 2);
        assert!(Arc::ptr_eq(&two.heads()[0].dependencies()[0], &one.heads()[0]));
        let names: Vec<String> = two.layers().iter().map(|l| l.name().to_string()).collect();
        assert_eq!(names, ["ones", "add-1", "add-2"]);
        assert_eq!(two.num_tasks(), 30);
        // Merging a graph with its own ancestor keeps each layer once.
        assert_eq!(Graph::merge(&[&two, &one]).layers().len(), 3);
    }

    #[test]
    fn grids_number_blocks_row_major() {
        let grid = BlockGrid::of(&[2, 3, 4]);
        assert_eq!(grid.len(), 24);
        for linear in 0..24 {
            assert_eq!(grid.ravel(&grid.unravel(linear)), Some(linear));
        }
        assert_eq!(grid.ravel(&[1, 2, 3]), Some(23));
        assert_eq!(grid.ravel(&[0, 3, 0]), None);
        assert_eq!(grid.ravel(&[0, 0]), None);
        assert_eq!(BlockGrid::of(&[]).len(), 1);
        assert_eq!(BlockGrid::of(&[]).ravel(&[]), Some(0));
    }

    #[test]
    fn a_chain_of_100_000_layers_drops_without_overflowing_the_stack() {
        let identity = registry::lookup("rask::identity").unwrap();
        let mut graph = Graph::new();
        for i in 0..100_000 {
            let key = Key::new(format!("x-{i}").as_str());
            let task = TaskSpec::new(identity.clone(), vec![]);
            graph =
                Graph::from_layer(Layer::tasks(key.name().clone(), vec![(key, task)], &[&graph]));
        }
        assert_eq!(graph.layers().len(), 100_000);
        drop(graph);
    }
}
