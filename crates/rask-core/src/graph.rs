//! The layered graph that collections build.
//!
//! A [`Graph`] is a set of *head* [`Layer`]s; every layer holds `Arc`s of the layers it reads
//! from, so a graph is a DAG of shared layers. Adding an operation to a collection makes one new
//! layer that points at the old ones: it costs the new layer only, never a copy of the graph,
//! and two collections built from a common input share that input's layers.
//!
//! A layer is either a list of explicit tasks ([`LayerKind::Tasks`], what `Delayed` values and
//! hand-written graphs use) or a symbolic [`Blockwise`] operation: "apply this function to
//! partition *i* of these inputs, for *i* in `0..npartitions`". Blockwise layers are expanded
//! into tasks only when the graph is lowered ([`crate::lower`]), and chains of them are fused
//! before that, so a 1,000-partition collection with 100 elementwise steps lowers to 1,000
//! tasks without ever materializing 100,000.
//!
//! Layers are identified by name: two layers with the same name are taken to be the same
//! operation (names are tokenized from the operation and its inputs).

use std::collections::HashSet;
use std::sync::Arc;

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

/// A function applied to partitions `0..npartitions`; the task for partition `i` has the key
/// `(layer name, i)`.
#[derive(Clone)]
pub struct Blockwise {
    /// How many partitions (tasks) the layer has.
    pub npartitions: u32,
    /// The function each task calls.
    pub func: TaskFn,
    /// The arguments of the task for partition `i`.
    pub args: Vec<BlockArg>,
    /// Retries of each task.
    pub retries: u32,
}

/// An argument of a blockwise task for partition `i`.
#[derive(Clone, Debug)]
pub enum BlockArg {
    /// The same literal for every partition.
    Value(Value),
    /// The partition index `i` itself, as a `u32` value.
    PartIndex,
    /// Partition `i` of the named blockwise layer.
    Input(Name),
    /// One fixed key for every partition (a broadcast input such as a lookup table).
    Key(Key),
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
            LayerKind::Blockwise(op) => op.npartitions as usize,
            LayerKind::External(keys) => keys.len(),
        }
    }

    /// The keys of the layer's tasks.
    pub fn keys(&self) -> Vec<Key> {
        match &self.kind {
            LayerKind::Tasks(tasks) => tasks.iter().map(|(key, _)| key.clone()).collect(),
            LayerKind::Blockwise(op) => {
                (0..op.npartitions).map(|i| Key::part(self.name.clone(), i)).collect()
            }
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
        let op = Blockwise {
            npartitions: 10,
            func: registry::lookup("rask::identity").unwrap(),
            args: vec![BlockArg::Input(prev.clone()), BlockArg::Value(Value::new(1_i64))],
            retries: 0,
        };
        (graph.blockwise(name.clone(), op), name)
    }

    #[test]
    fn adding_a_layer_shares_the_old_ones_and_layers_come_in_dependency_order() {
        let ones = Name::from("ones");
        let op = Blockwise {
            npartitions: 10,
            func: registry::lookup("rask::identity").unwrap(),
            args: vec![BlockArg::PartIndex],
            retries: 0,
        };
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
