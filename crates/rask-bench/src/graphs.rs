//! The task graphs both benchmarks run, built from explicit tasks like a Dask graph
//! dictionary, over whichever registered functions and literal encoding a benchmark needs.

use rask::{Arg, Graph, Key, Name, TaskFn, TaskSpec, Value};

/// A graph, the keys to compute, and the expected answer.
pub struct Workload {
    /// The graph.
    pub graph: Graph,
    /// The keys to compute.
    pub outputs: Vec<Key>,
    /// How many tasks it has.
    pub tasks: usize,
    /// The answer.
    pub expected: i64,
}

/// The functions a workload calls and how its literals are made.
pub struct Functions {
    /// `x + 1`.
    pub inc: TaskFn,
    /// `a + b`.
    pub add: TaskFn,
    /// The sum of a list.
    pub sum: TaskFn,
    /// A literal argument.
    pub literal: fn(i64) -> Value,
}

/// A binary reduction tree over `leaves` leaves `inc(i)`.
pub fn tree(leaves: u32, f: &Functions) -> Workload {
    let mut tasks = Vec::with_capacity(2 * leaves as usize);
    let mut level: Vec<Key> = (0..leaves).map(|i| Key::part("leaf", i)).collect();
    for (i, key) in level.iter().enumerate() {
        tasks.push((
            key.clone(),
            TaskSpec::new(f.inc.clone(), vec![Arg::Value((f.literal)(i as i64))]),
        ));
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let name = Name::from(format!("add-level-{depth}"));
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for (i, pair) in level.chunks(2).enumerate() {
            match pair {
                [a, b] => {
                    let key = Key::part(name.clone(), i as u32);
                    tasks.push((
                        key.clone(),
                        TaskSpec::new(f.add.clone(), vec![a.into(), b.into()]),
                    ));
                    next.push(key);
                }
                [odd] => next.push(odd.clone()),
                _ => unreachable!("chunks of two"),
            }
        }
        level = next;
    }
    let n = tasks.len();
    Workload {
        graph: Graph::from_tasks(tasks),
        outputs: level,
        tasks: n,
        expected: (1..=i64::from(leaves)).sum(),
    }
}

/// `n` independent `inc(i)` tasks, then one sum over all of them.
pub fn map_sum(n: u32, f: &Functions) -> Workload {
    let mut tasks: Vec<(Key, TaskSpec)> = (0..n)
        .map(|i| {
            (
                Key::part("inc", i),
                TaskSpec::new(f.inc.clone(), vec![Arg::Value((f.literal)(i64::from(i)))]),
            )
        })
        .collect();
    let list = Arg::List((0..n).map(|i| Arg::Key(Key::part("inc", i))).collect());
    tasks.push((Key::new("sum"), TaskSpec::new(f.sum.clone(), vec![list])));
    Workload {
        graph: Graph::from_tasks(tasks),
        outputs: vec![Key::new("sum")],
        tasks: n as usize + 1,
        expected: (1..=i64::from(n)).sum(),
    }
}
