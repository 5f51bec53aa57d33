//! The lowered graph: the concrete tasks a scheduler runs.
//!
//! [`crate::lower`] expands a layered [`crate::Graph`] into a [`TaskGraph`]: tasks numbered
//! `0..n`, dependencies as index lists (compressed rows, no per-task allocation), and the
//! indices of the requested outputs. After ordering, a task's index *is* its priority: lower
//! runs first.
//!
//! A task's body is a [`Program`]: a short list of function calls ([`Op`]s) run one after the
//! other, where an argument can be a literal, one of the task's dependencies, the partition
//! index, or the result of an earlier op. An ordinary task is a one-op program; fusion
//! concatenates programs, so a fused task is still one task with one result. All partitions of
//! a blockwise layer share one `Arc<Program>`.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::TaskError;
use crate::key::{Key, Name};
use crate::task::TaskFn;
use crate::value::Value;

/// Index of a task in a [`TaskGraph`].
pub type TaskIndex = u32;

/// One function call of a program.
#[derive(Clone, Debug)]
pub struct Op {
    /// The function.
    pub func: TaskFn,
    /// Its arguments.
    pub args: Box<[OpArg]>,
}

/// An argument of an [`Op`].
#[derive(Clone, Debug)]
pub enum OpArg {
    /// A literal.
    Value(Value),
    /// The result of the task's `n`-th dependency.
    Dep(u32),
    /// The result of op `n` of the same program, still needed later.
    Prev(u32),
    /// The result of op `n` of the same program, used for the last time here.
    TakePrev(u32),
    /// The task's partition index, as a `u32` value.
    Part,
    /// A list, passed as one [`crate::ValueList`] value.
    List(Box<[OpArg]>),
}

/// The body of a task: ops run in order; the last one's result is the task's result.
#[derive(Debug)]
pub struct Program {
    /// The calls, in order (most programs have one: it is stored inline).
    pub ops: SmallVec<[Op; 1]>,
    /// A readable name for a fused program (such as `"load-process"`); `None` for one op.
    pub label: Option<Name>,
    /// For a fused program, which task each run of ops came from, so that an error names the
    /// task the user wrote rather than the fused one. Empty for one op.
    pub origins: Vec<Origin>,
}

/// Where the ops of a fused program up to `last_op` came from.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// The last op (inclusive) of this origin.
    pub last_op: u32,
    /// The task the ops came from.
    pub source: OriginKey,
}

/// The key of an origin: a task's key, or a blockwise layer (whose key is `(layer, part)`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum OriginKey {
    /// An explicit task.
    Task(Key),
    /// A partition of a blockwise layer: the fused task's own partition.
    Layer(Name),
}

impl Program {
    /// Marks the last use of every intermediate result, so that a long fused chain holds only
    /// the results it still needs.
    pub fn mark_last_uses(&mut self) {
        let mut used = vec![false; self.ops.len()];
        for op in self.ops.iter_mut().rev() {
            for arg in op.args.iter_mut().rev() {
                mark(arg, &mut used);
            }
        }
        fn mark(arg: &mut OpArg, used: &mut [bool]) {
            match arg {
                OpArg::Prev(i) | OpArg::TakePrev(i) => {
                    let i = *i;
                    *arg = if used[i as usize] { OpArg::Prev(i) } else { OpArg::TakePrev(i) };
                    used[i as usize] = true;
                }
                OpArg::List(items) => items.iter_mut().rev().for_each(|item| mark(item, used)),
                _ => {}
            }
        }
    }

    /// Runs the program. On failure, returns the index of the op that failed with its error.
    pub fn run(&self, part: u32, deps: &[Value]) -> Result<Value, (usize, TaskError)> {
        run_ops(&self.ops, part, deps)
    }

    /// The key of the task that op `op` came from, for a task with key `key` and partition
    /// `part`.
    pub fn origin_of(&self, op: usize, key: &Key, part: u32) -> Key {
        match self.origins.iter().find(|origin| op as u32 <= origin.last_op) {
            Some(Origin { source: OriginKey::Task(key), .. }) => key.clone(),
            Some(Origin { source: OriginKey::Layer(name), .. }) => Key::part(name.clone(), part),
            None => key.clone(),
        }
    }

    /// The readable name of the program: its label, or the key's prefix.
    pub fn label_or<'a>(&'a self, key: &'a Key) -> &'a str {
        self.label.as_ref().map_or_else(|| key.prefix(), Name::as_str)
    }
}

fn run_ops(ops: &[Op], part: u32, deps: &[Value]) -> Result<Value, (usize, TaskError)> {
    if let [op] = ops {
        let args = collect_args(&op.args, part, deps, &mut []);
        return op.func.call(&args).map_err(|e| (0, e));
    }
    let mut results: SmallVec<[Option<Value>; 8]> = SmallVec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let args = collect_args(&op.args, part, deps, &mut results);
        results.push(Some(op.func.call(&args).map_err(|e| (i, e))?));
    }
    Ok(results.pop().flatten().expect("a program has at least one op"))
}

fn collect_args(
    args: &[OpArg],
    part: u32,
    deps: &[Value],
    results: &mut [Option<Value>],
) -> SmallVec<[Value; 4]> {
    args.iter().map(|arg| arg_value(arg, part, deps, results)).collect()
}

fn arg_value(arg: &OpArg, part: u32, deps: &[Value], results: &mut [Option<Value>]) -> Value {
    match arg {
        OpArg::Value(value) => value.clone(),
        OpArg::Dep(i) => deps[*i as usize].clone(),
        OpArg::Prev(i) => {
            results[*i as usize].clone().expect("an op's result is used after its last use")
        }
        OpArg::TakePrev(i) => {
            results[*i as usize].take().expect("an op's result is used after its last use")
        }
        OpArg::Part => Value::new(part),
        OpArg::List(items) => {
            Value::list(items.iter().map(|item| arg_value(item, part, deps, results)).collect())
        }
    }
}

/// What a task runs: one call, stored inline (an explicit task costs no allocation of its
/// own), or a shared program (all partitions of a blockwise layer; fused tasks).
#[derive(Clone, Debug)]
pub enum Body {
    /// One function call.
    Call(Op),
    /// A shared program.
    Program(Arc<Program>),
    /// A result that exists on a cluster already (see `LayerKind::External`).
    External,
}

/// One task of a [`TaskGraph`].
#[derive(Clone, Debug)]
pub struct Task {
    /// The key of the task's result.
    pub key: Key,
    /// What the task runs.
    pub body: Body,
    /// The partition index passed to [`OpArg::Part`].
    pub part: u32,
    /// How many more times to run the task after a failure.
    pub retries: u32,
}

impl Task {
    /// The calls the task makes, in order.
    pub fn ops(&self) -> &[Op] {
        match &self.body {
            Body::Call(op) => std::slice::from_ref(op),
            Body::Program(program) => &program.ops,
            Body::External => &[],
        }
    }

    /// Runs the task on the values of its dependencies. On failure, returns the index of the
    /// op that failed with its error.
    #[inline]
    pub fn run(&self, deps: &[Value]) -> Result<Value, (usize, TaskError)> {
        if let Body::External = self.body {
            return Err((
                0,
                TaskError::msg(format!(
                    "{} is a result held on a cluster: compute graphs that read it with the client that holds its future",
                    self.key
                )),
            ));
        }
        run_ops(self.ops(), self.part, deps)
    }

    /// Whether this is a result held on a cluster rather than a computation.
    pub fn is_external(&self) -> bool {
        matches!(self.body, Body::External)
    }

    /// Runs the task, catching a panic as an error of op 0 (the panic hook has already printed
    /// where it happened).
    pub fn run_caught(&self, deps: &[Value]) -> Result<Value, (usize, TaskError)> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(deps)))
            .unwrap_or_else(|panic| Err((0, TaskError::from_panic(&*panic))))
    }

    /// Runs the task (catching panics), again up to `retries` times while it fails.
    pub fn run_with_retries(&self, deps: &[Value]) -> Result<Value, crate::TaskFailure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.run_caught(deps) {
                Ok(value) => return Ok(value),
                Err(_) if attempts <= self.retries => continue,
                Err((op, error)) => return Err(self.failure(op, error, attempts)),
            }
        }
    }

    /// The failure report for an error of op `op` after `attempts` runs.
    pub fn failure(&self, op: usize, error: TaskError, attempts: u32) -> crate::TaskFailure {
        crate::TaskFailure {
            key: self.origin_of(op),
            function: self.function_name(op).to_string(),
            attempts,
            error,
        }
    }

    /// The key of the task that op `op` was written in (differs from `key` in fused tasks).
    pub fn origin_of(&self, op: usize) -> Key {
        match &self.body {
            Body::Call(_) | Body::External => self.key.clone(),
            Body::Program(program) => program.origin_of(op, &self.key, self.part),
        }
    }

    /// The name of the function of op `op`.
    pub fn function_name(&self, op: usize) -> &str {
        self.ops().get(op).map_or("?", |op| op.func.name())
    }

    /// A readable name: the fused label, or the key's prefix.
    pub fn label(&self) -> &str {
        match &self.body {
            Body::Call(_) | Body::External => self.key.prefix(),
            Body::Program(program) => program.label_or(&self.key),
        }
    }
}

/// Concrete tasks with dependencies, ready to run.
#[derive(Clone, Debug, Default)]
pub struct TaskGraph {
    tasks: Vec<Task>,
    dep_offsets: Vec<u32>,
    deps: Vec<TaskIndex>,
    outputs: Vec<TaskIndex>,
}

impl TaskGraph {
    /// An empty task graph, to be filled with [`TaskGraph::push`].
    pub fn with_capacity(tasks: usize) -> Self {
        let mut dep_offsets = Vec::with_capacity(tasks + 1);
        dep_offsets.push(0);
        TaskGraph {
            tasks: Vec::with_capacity(tasks),
            dep_offsets,
            deps: Vec::new(),
            outputs: vec![],
        }
    }

    /// Adds a task with its dependencies; returns its index.
    pub fn push(&mut self, task: Task, deps: impl IntoIterator<Item = TaskIndex>) -> TaskIndex {
        let index = self.tasks.len() as TaskIndex;
        self.tasks.push(task);
        self.deps.extend(deps);
        self.dep_offsets.push(self.deps.len() as u32);
        index
    }

    /// Sets the requested outputs, in the order the caller wants their values.
    pub fn set_outputs(&mut self, outputs: Vec<TaskIndex>) {
        self.outputs = outputs;
    }

    /// How many tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// All tasks.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// One task.
    pub fn task(&self, index: TaskIndex) -> &Task {
        &self.tasks[index as usize]
    }

    /// The dependencies of a task, in the order its [`OpArg::Dep`] arguments number them.
    #[inline]
    pub fn deps(&self, index: TaskIndex) -> &[TaskIndex] {
        let i = index as usize;
        &self.deps[self.dep_offsets[i] as usize..self.dep_offsets[i + 1] as usize]
    }

    /// The requested outputs.
    pub fn outputs(&self) -> &[TaskIndex] {
        &self.outputs
    }

    /// The tasks that depend on each task, computed in one pass.
    pub fn dependents(&self) -> Dependents {
        let n = self.tasks.len();
        let mut offsets = vec![0u32; n + 1];
        for &dep in &self.deps {
            offsets[dep as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut dependents = vec![0; self.deps.len()];
        for task in 0..n as TaskIndex {
            for &dep in self.deps(task) {
                dependents[fill[dep as usize] as usize] = task;
                fill[dep as usize] += 1;
            }
        }
        Dependents { offsets, dependents }
    }

    /// The same graph with tasks renumbered: `order[k]` is the old index of new task `k`.
    /// `order` must be a permutation of the task indices.
    pub fn renumber(self, order: &[TaskIndex]) -> TaskGraph {
        debug_assert_eq!(order.len(), self.tasks.len());
        let mut new_index = vec![0 as TaskIndex; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old as usize] = new as TaskIndex;
        }
        let mut graph = TaskGraph::with_capacity(order.len());
        graph.deps.reserve(self.deps.len());
        let mut tasks: Vec<Option<Task>> = self.tasks.into_iter().map(Some).collect();
        for &old in order {
            let range = self.dep_offsets[old as usize] as usize
                ..self.dep_offsets[old as usize + 1] as usize;
            let task = tasks[old as usize].take().expect("order is a permutation");
            graph.push(task, self.deps[range].iter().map(|&d| new_index[d as usize]));
        }
        graph.outputs = self.outputs.iter().map(|&o| new_index[o as usize]).collect();
        graph
    }
}

/// The reverse edges of a [`TaskGraph`].
#[derive(Clone, Debug)]
pub struct Dependents {
    offsets: Vec<u32>,
    dependents: Vec<TaskIndex>,
}

impl Dependents {
    /// The tasks that read the result of `index`.
    #[inline]
    pub fn of(&self, index: TaskIndex) -> &[TaskIndex] {
        let i = index as usize;
        &self.dependents[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}
