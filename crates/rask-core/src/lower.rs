//! Lowering: from a layered [`Graph`] to the concrete [`TaskGraph`] a scheduler runs.
//!
//! Lowering works on demand from the requested outputs, so tasks nobody needs are never made
//! (this *is* culling; with culling off, every task of every layer is made). Before expanding,
//! chains of blockwise layers are fused symbolically: a blockwise layer read by exactly one
//! other blockwise layer with the same partitioning, and not requested itself, is spliced into
//! that layer's [`Program`]. Expansion then makes one task per partition, all sharing one
//! program.
//!
//! The result is in discovery order, not yet validated for cycles nor ordered; see
//! [`crate::optimize`] for the whole pipeline.

use std::sync::Arc;

use smallvec::SmallVec;

use rustc_hash::FxHashMap as HashMap;

use crate::error::{Error, Result};
use crate::graph::{AxisMap, BlockArg, BlockGrid, Graph, Layer, LayerKind};
use crate::key::{Key, Name};
use crate::task::{Arg, TaskSpec};
use crate::task_graph::{Body, Op, OpArg, Origin, OriginKey, Program, Task, TaskGraph, TaskIndex};

const UNASSIGNED: TaskIndex = TaskIndex::MAX;

/// Expands `graph` into the tasks needed for `outputs`.
pub fn lower(
    graph: &Graph,
    outputs: &[Key],
    cull: bool,
    fuse_blockwise: bool,
) -> Result<TaskGraph> {
    let layers = graph.layers();
    let index = LayerIndex::new(&layers)?;
    let absorbed = if fuse_blockwise && !index.blockwise.is_empty() {
        absorbable(&layers, &index, outputs)
    } else {
        vec![false; layers.len()]
    };
    let plans = blockwise_plans(&layers, &index, &absorbed);
    let mut expander = Expander::new(&layers, &index, plans)?;

    let mut output_indices = Vec::with_capacity(outputs.len());
    for key in outputs {
        let node = index
            .resolve(key)
            .ok_or_else(|| Error::MissingOutput { key: key.clone(), tasks: graph.num_tasks() })?;
        output_indices.push(expander.assign(node));
    }
    if !cull {
        for (layer_id, layer) in layers.iter().enumerate() {
            if !absorbed[layer_id] {
                for local in 0..layer.num_tasks() as u32 {
                    expander.assign(Node { layer: layer_id as u32, local });
                }
            }
        }
    }
    let mut task_graph = expander.expand_all()?;
    task_graph.set_outputs(output_indices);
    Ok(task_graph)
}

/// A task before expansion: a layer and a task within it (a partition, for blockwise layers).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Node {
    layer: u32,
    local: u32,
}

/// Finds the layer and task of a key.
struct LayerIndex {
    /// Blockwise layers by name: their layer number and grid.
    blockwise: HashMap<Name, (u32, BlockGrid)>,
    tasks: HashMap<Key, Node>,
}

impl LayerIndex {
    fn new(layers: &[Arc<Layer>]) -> Result<Self> {
        let mut blockwise = HashMap::default();
        let explicit: usize = layers
            .iter()
            .map(|layer| match layer.kind() {
                LayerKind::Tasks(tasks) => tasks.len(),
                LayerKind::External(keys) => keys.len(),
                LayerKind::Blockwise(_) => 0,
            })
            .sum();
        let mut tasks = HashMap::with_capacity_and_hasher(explicit, Default::default());
        for (layer_id, layer) in layers.iter().enumerate() {
            match layer.kind() {
                LayerKind::Blockwise(op) => {
                    blockwise.insert(layer.name().clone(), (layer_id as u32, op.grid.clone()));
                }
                LayerKind::Tasks(list) => {
                    for (local, (key, _)) in list.iter().enumerate() {
                        let node = Node { layer: layer_id as u32, local: local as u32 };
                        if tasks.insert(key.clone(), node).is_some() {
                            return Err(Error::DuplicateKey { key: key.clone() });
                        }
                    }
                }
                LayerKind::External(keys) => {
                    for (local, key) in keys.iter().enumerate() {
                        // An external key also computed by a task is the task's: keep the task.
                        tasks
                            .entry(key.clone())
                            .or_insert(Node { layer: layer_id as u32, local: local as u32 });
                    }
                }
            }
        }
        Ok(LayerIndex { blockwise, tasks })
    }

    fn resolve(&self, key: &Key) -> Option<Node> {
        if let Some((layer, grid)) = self.blockwise.get(key.name()) {
            if let Some(local) = grid.ravel(key.block_index()) {
                return Some(Node { layer: *layer, local });
            }
        }
        self.tasks.get(key).copied()
    }
}

/// Which blockwise layers can be spliced into their only reader.
fn absorbable(layers: &[Arc<Layer>], index: &LayerIndex, outputs: &[Key]) -> Vec<bool> {
    // For each layer: how many times it is read, and by which blockwise layer through Input.
    let mut reads = vec![0u32; layers.len()];
    let mut reader: Vec<Option<u32>> = vec![None; layers.len()];
    let count_key = |key: &Key, reads: &mut Vec<u32>| {
        if let Some(node) = index.resolve(key) {
            reads[node.layer as usize] += 2; // a key read can never be spliced: count it twice
        }
    };
    for key in outputs {
        count_key(key, &mut reads);
    }
    for (layer_id, layer) in layers.iter().enumerate() {
        match layer.kind() {
            LayerKind::Tasks(tasks) => {
                for (_, task) in tasks {
                    task.for_each_dependency(|key| count_key(key, &mut reads));
                }
            }
            LayerKind::Blockwise(op) => {
                for arg in &op.args {
                    match arg {
                        BlockArg::Input(name) => {
                            if let Some((input, grid)) = index.blockwise.get(name) {
                                reads[*input as usize] += 1;
                                reader[*input as usize] =
                                    (*grid == op.grid).then_some(layer_id as u32);
                            }
                        }
                        BlockArg::Aligned(name, axes) => {
                            if let Some((input, grid)) = index.blockwise.get(name) {
                                let same = *grid == op.grid
                                    && is_identity(axes)
                                    && axes.len() == grid.dims().len();
                                reads[*input as usize] += if same { 1 } else { 2 };
                                reader[*input as usize] = same.then_some(layer_id as u32);
                            }
                        }
                        BlockArg::Key(key) => count_key(key, &mut reads),
                        BlockArg::Value(_) | BlockArg::PartIndex => {}
                    }
                }
            }
            LayerKind::External(_) => {}
        }
    }
    (0..layers.len())
        .map(|id| {
            matches!(layers[id].kind(), LayerKind::Blockwise(_))
                && reads[id] == 1
                && reader[id].is_some()
        })
        .collect()
}

/// A blockwise layer's program and the inputs its `Dep` arguments number.
struct BlockPlan {
    program: Program,
    inputs: Vec<PlanInput>,
    retries: u32,
}

#[derive(Clone, PartialEq, Eq)]
enum PlanInput {
    /// The block at the task's own index.
    Partition(Name),
    /// The block at an index mapped from the task's (`Out` and `Block` axes only).
    Mapped(Name, Vec<AxisMap>),
    /// One fixed key.
    Key(Key),
}

/// Whether an axis mapping reads every input axis at the same output axis.
fn is_identity(axes: &[AxisMap]) -> bool {
    axes.iter().enumerate().all(|(i, axis)| *axis == AxisMap::Out(i as u8))
}

/// The argument of an [`BlockArg::Aligned`] input that is not read at the task's own block:
/// one mapped input, or a list of them along the contracted indices it uses.
fn aligned_arg(plan: &mut BlockPlan, name: &Name, axes: &[AxisMap], contracted: &[u32]) -> OpArg {
    let mut used: Vec<u8> = axes
        .iter()
        .filter_map(|axis| match axis {
            AxisMap::Contracted(c) => Some(*c),
            _ => None,
        })
        .collect();
    used.sort_unstable();
    used.dedup();
    if used.is_empty() {
        return OpArg::Dep(plan.input(PlanInput::Mapped(name.clone(), axes.to_vec())));
    }
    let sizes: Vec<u32> =
        used.iter().map(|&c| contracted.get(c as usize).copied().unwrap_or(0)).collect();
    let combos = BlockGrid::of(&sizes);
    let items = (0..combos.len() as u32)
        .map(|combo| {
            let at = combos.unravel(combo);
            let fixed = axes
                .iter()
                .map(|axis| match axis {
                    AxisMap::Contracted(c) => {
                        let position = used.iter().position(|u| u == c).expect("collected above");
                        AxisMap::Block(at[position])
                    }
                    other => *other,
                })
                .collect();
            OpArg::Dep(plan.input(PlanInput::Mapped(name.clone(), fixed)))
        })
        .collect();
    OpArg::List(items)
}

/// Builds the (possibly fused) program of every blockwise layer, in dependency order, moving
/// each absorbed layer's program into its reader.
fn blockwise_plans(
    layers: &[Arc<Layer>],
    index: &LayerIndex,
    absorbed: &[bool],
) -> Vec<Option<BlockPlan>> {
    let mut plans: Vec<Option<BlockPlan>> = (0..layers.len()).map(|_| None).collect();
    for (layer_id, layer) in layers.iter().enumerate() {
        let LayerKind::Blockwise(op) = layer.kind() else { continue };
        let mut plan = BlockPlan {
            program: Program { ops: SmallVec::new(), label: None, origins: Vec::new() },
            inputs: Vec::new(),
            retries: op.retries,
        };
        let mut args = Vec::with_capacity(op.args.len());
        // (A layer that is not fused keeps one op; its origins are dropped below.)
        for arg in &op.args {
            args.push(match arg {
                BlockArg::Value(value) => OpArg::Value(value.clone()),
                BlockArg::PartIndex => OpArg::Part,
                BlockArg::Key(key) => OpArg::Dep(plan.input(PlanInput::Key(key.clone()))),
                // An input of fewer axes than the grid is never read "at the same block".
                BlockArg::Aligned(name, axes)
                    if !is_identity(axes) || axes.len() != op.grid.dims().len() =>
                {
                    aligned_arg(&mut plan, name, axes, &op.contracted)
                }
                BlockArg::Input(name) | BlockArg::Aligned(name, _) => {
                    let input = index.blockwise.get(name).map(|(id, _)| *id as usize);
                    match input.filter(|&id| absorbed[id]).and_then(|id| plans[id].take()) {
                        Some(inner) => plan.splice(inner),
                        None => OpArg::Dep(plan.input(PlanInput::Partition(name.clone()))),
                    }
                }
            });
        }
        plan.program.ops.push(Op { func: op.func.clone(), args: args.into_boxed_slice() });
        plan.program.origins.push(Origin {
            last_op: plan.program.ops.len() as u32 - 1,
            source: OriginKey::Layer(layer.name().clone()),
        });
        if plan.program.ops.len() == 1 {
            plan.program.origins.clear();
        } else {
            plan.program.label =
                Some(fused_label(plan.program.ops.iter().map(|op| op.func.name())));
            plan.program.mark_last_uses();
        }
        plans[layer_id] = Some(plan);
    }
    plans
}

impl BlockPlan {
    fn input(&mut self, input: PlanInput) -> u32 {
        match self.inputs.iter().position(|known| *known == input) {
            Some(position) => position as u32,
            None => {
                self.inputs.push(input);
                self.inputs.len() as u32 - 1
            }
        }
    }

    /// Appends `inner`'s ops; returns the argument that reads their result.
    fn splice(&mut self, inner: BlockPlan) -> OpArg {
        let offset = self.program.ops.len() as u32;
        let remap: Vec<u32> = inner.inputs.into_iter().map(|input| self.input(input)).collect();
        self.retries = self.retries.max(inner.retries);
        for mut op in inner.program.ops {
            op.args.iter_mut().for_each(|arg| shift(arg, offset, &remap));
            self.program.ops.push(op);
        }
        self.program.origins.extend(
            inner.program.origins.into_iter().map(|o| Origin { last_op: o.last_op + offset, ..o }),
        );
        OpArg::Prev(self.program.ops.len() as u32 - 1)
    }
}

/// Renumbers an argument of an op moved into another program.
pub(crate) fn shift(arg: &mut OpArg, offset: u32, dep_map: &[u32]) {
    match arg {
        OpArg::Dep(i) => *i = dep_map[*i as usize],
        OpArg::Prev(i) | OpArg::TakePrev(i) => *i += offset,
        OpArg::List(items) => items.iter_mut().for_each(|item| shift(item, offset, dep_map)),
        OpArg::Value(_) | OpArg::Part => {}
    }
}

/// `"load-process"` from the function names of a fused program, without repeats in a row.
pub(crate) fn fused_label<'a>(names: impl Iterator<Item = &'a str>) -> Name {
    let mut label = String::new();
    let mut last = "";
    for name in names {
        let short = name.rsplit("::").next().unwrap_or(name);
        if short != last {
            if !label.is_empty() {
                label.push('-');
            }
            label.push_str(short);
            last = short;
        }
    }
    Name::from(label)
}

/// Where a blockwise plan's input comes from, resolved once per layer.
enum ResolvedInput {
    /// Block `i` of this blockwise layer (of the same grid), for the task of block `i`.
    SamePartition(u32),
    /// A block of this blockwise layer at an index mapped from the task's (`None`: the same).
    MappedBlock { layer: u32, grid: BlockGrid, axes: Option<Vec<AxisMap>> },
    /// The key `(name, index)` of any other layer, the index mapped from the task's.
    ByKey { name: Name, axes: Option<Vec<AxisMap>> },
    /// One fixed task.
    Fixed(Node),
}

/// The block index an input is read at, from the reading task's block index.
fn mapped_index(out: &[u32], axes: Option<&[AxisMap]>) -> SmallVec<[u32; 4]> {
    match axes {
        None => SmallVec::from_slice(out),
        Some(axes) => axes
            .iter()
            .map(|axis| match *axis {
                AxisMap::Out(a) => out.get(a as usize).copied().unwrap_or(u32::MAX),
                AxisMap::Block(b) => b,
                AxisMap::Contracted(_) => unreachable!("contracted axes are fixed per list item"),
            })
            .collect(),
    }
}

/// A blockwise layer's program with its inputs resolved: what every partition's task shares.
struct ExpandPlan {
    program: Arc<Program>,
    inputs: Vec<ResolvedInput>,
    grid: BlockGrid,
    retries: u32,
}

struct Expander<'a> {
    layers: &'a [Arc<Layer>],
    index: &'a LayerIndex,
    plans: Vec<Option<ExpandPlan>>,
    /// Per layer, the task index given to each of its tasks (allocated on first use).
    assigned: Vec<Vec<TaskIndex>>,
    /// Discovered tasks, in index order.
    nodes: Vec<Node>,
}

impl<'a> Expander<'a> {
    fn new(
        layers: &'a [Arc<Layer>],
        index: &'a LayerIndex,
        plans: Vec<Option<BlockPlan>>,
    ) -> Result<Self> {
        let mut resolved = Vec::with_capacity(plans.len());
        for (layer_id, plan) in plans.into_iter().enumerate() {
            let Some(plan) = plan else {
                resolved.push(None);
                continue;
            };
            let name = layers[layer_id].name();
            let LayerKind::Blockwise(op) = layers[layer_id].kind() else {
                unreachable!("plans are made for blockwise layers")
            };
            let inputs = plan
                .inputs
                .iter()
                .map(|input| {
                    let missing = |missing: Key| Error::MissingDependency {
                        task: Key::part(name.clone(), 0),
                        missing,
                    };
                    let mapped =
                        |input: &Name, axes: Option<Vec<AxisMap>>| match index.blockwise.get(input)
                        {
                            Some((id, grid)) if *grid == op.grid && axes.is_none() => {
                                ResolvedInput::SamePartition(*id)
                            }
                            Some((id, grid)) => {
                                ResolvedInput::MappedBlock { layer: *id, grid: grid.clone(), axes }
                            }
                            None => ResolvedInput::ByKey { name: input.clone(), axes },
                        };
                    match input {
                        PlanInput::Partition(input) => Ok(mapped(input, None)),
                        PlanInput::Mapped(input, axes) => Ok(mapped(input, Some(axes.clone()))),
                        PlanInput::Key(key) => index
                            .resolve(key)
                            .map(ResolvedInput::Fixed)
                            .ok_or_else(|| missing(key.clone())),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            resolved.push(Some(ExpandPlan {
                program: Arc::new(plan.program),
                inputs,
                grid: op.grid.clone(),
                retries: plan.retries,
            }));
        }
        Ok(Expander {
            layers,
            index,
            plans: resolved,
            assigned: vec![Vec::new(); layers.len()],
            nodes: Vec::new(),
        })
    }

    fn assign(&mut self, node: Node) -> TaskIndex {
        let slots = &mut self.assigned[node.layer as usize];
        if slots.is_empty() {
            slots.resize(self.layers[node.layer as usize].num_tasks(), UNASSIGNED);
        }
        let slot = &mut slots[node.local as usize];
        if *slot == UNASSIGNED {
            *slot = self.nodes.len() as TaskIndex;
            self.nodes.push(node);
        }
        *slot
    }

    /// Expands discovered tasks in index order; expanding one discovers its dependencies.
    fn expand_all(mut self) -> Result<TaskGraph> {
        let mut graph = TaskGraph::with_capacity(self.nodes.len());
        let mut deps: Vec<TaskIndex> = Vec::new();
        let mut next = 0;
        while next < self.nodes.len() {
            let node = self.nodes[next];
            next += 1;
            deps.clear();
            let layer = &self.layers[node.layer as usize];
            let task = match layer.kind() {
                LayerKind::Blockwise(_) => {
                    let plan = self.plans[node.layer as usize]
                        .as_ref()
                        .expect("every blockwise layer has a plan");
                    let (program, retries) = (plan.program.clone(), plan.retries);
                    let block = plan.grid.unravel(node.local);
                    let key = Key::block(layer.name().clone(), &block);
                    let mut input_nodes: SmallVec<[Node; 4]> = SmallVec::new();
                    for input in &plan.inputs {
                        let missing =
                            |missing: Key| Error::MissingDependency { task: key.clone(), missing };
                        input_nodes.push(match input {
                            ResolvedInput::SamePartition(layer) => {
                                Node { layer: *layer, local: node.local }
                            }
                            ResolvedInput::MappedBlock { layer, grid, axes } => {
                                let at = mapped_index(&block, axes.as_deref());
                                let local = grid.ravel(&at).ok_or_else(|| {
                                    missing(Key::block(
                                        self.layers[*layer as usize].name().clone(),
                                        &at,
                                    ))
                                })?;
                                Node { layer: *layer, local }
                            }
                            ResolvedInput::ByKey { name, axes } => {
                                let wanted = Key::block(
                                    name.clone(),
                                    &mapped_index(&block, axes.as_deref()),
                                );
                                self.index.resolve(&wanted).ok_or_else(|| missing(wanted))?
                            }
                            ResolvedInput::Fixed(fixed) => *fixed,
                        });
                    }
                    for input in input_nodes {
                        deps.push(self.assign(input));
                    }
                    Task { key, body: Body::Program(program), part: node.local, retries }
                }
                LayerKind::External(keys) => Task {
                    key: keys[node.local as usize].clone(),
                    body: Body::External,
                    part: 0,
                    retries: 0,
                },
                LayerKind::Tasks(tasks) => {
                    let (key, spec) = &tasks[node.local as usize];
                    let args = self.task_args(key, spec, &mut deps)?;
                    Task {
                        key: key.clone(),
                        body: Body::Call(Op { func: spec.func.clone(), args }),
                        part: key.partition().unwrap_or(0),
                        retries: spec.retries,
                    }
                }
            };
            graph.push(task, deps.iter().copied());
        }
        Ok(graph)
    }

    fn task_args(
        &mut self,
        key: &Key,
        spec: &TaskSpec,
        deps: &mut Vec<TaskIndex>,
    ) -> Result<Box<[OpArg]>> {
        spec.args.iter().map(|arg| self.task_arg(key, arg, deps)).collect()
    }

    fn task_arg(&mut self, key: &Key, arg: &Arg, deps: &mut Vec<TaskIndex>) -> Result<OpArg> {
        Ok(match arg {
            Arg::Value(value) => OpArg::Value(value.clone()),
            Arg::Key(dep) => {
                let node = self.index.resolve(dep).ok_or_else(|| Error::MissingDependency {
                    task: key.clone(),
                    missing: dep.clone(),
                })?;
                let index = self.assign(node);
                // Small tasks name few dependencies: a linear scan beats a map here.
                // Small tasks name few dependencies: a linear scan beats a map there. Large
                // fan-ins may then list a dependency twice, which every scheduler tolerates.
                let known =
                    if deps.len() < 64 { deps.iter().position(|&d| d == index) } else { None };
                let position = known.unwrap_or_else(|| {
                    deps.push(index);
                    deps.len() - 1
                });
                OpArg::Dep(position as u32)
            }
            Arg::List(items) => OpArg::List(
                items.iter().map(|item| self.task_arg(key, item, deps)).collect::<Result<_>>()?,
            ),
        })
    }
}
