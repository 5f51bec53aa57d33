//! Blockwise layers over N-d grids of blocks: transposes, broadcasting and contractions in the
//! `ij,jk->ik` sense, fusion of same-index chains, and inputs from explicit tasks with N-d keys.
//! Every block here is one `i64`, so a grid of blocks is a small matrix to check against.

use rask_core::optimize::prepare;
use rask_core::{
    AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Key, Layer, Name, Optimizations, TaskGraph,
    TaskResult, TaskSpec, Value,
};

/// The block's row-major number times a factor: `A[i][j] = (i * cols + j) * factor`.
fn numbered(args: &[Value]) -> TaskResult {
    let part = *args[0].get::<u32>(&"part")?;
    Ok(Value::new(i64::from(part) * *args[1].get::<i64>(&"factor")?))
}
rask_core::register_function!("blockwise_nd::numbered", numbered);

/// The dot product of two lists of blocks.
fn dot(args: &[Value]) -> TaskResult {
    let (left, right) = (args[0].as_list().unwrap(), args[1].as_list().unwrap());
    assert_eq!(left.len(), right.len());
    let mut total = 0;
    for (a, b) in left.iter().zip(right) {
        total += a.get::<i64>(&"a")? * b.get::<i64>(&"b")?;
    }
    Ok(Value::new(total))
}
rask_core::register_function!("blockwise_nd::dot", dot);

fn add(args: &[Value]) -> TaskResult {
    Ok(Value::new(args[0].get::<i64>(&"a")? + args[1].get::<i64>(&"b")?))
}
rask_core::register_function!("blockwise_nd::add", add);

fn same(args: &[Value]) -> TaskResult {
    Ok(args[0].clone())
}
rask_core::register_function!("blockwise_nd::same", same);

fn func(name: &str) -> rask_core::TaskFn {
    rask_core::registry::lookup(name).unwrap()
}

fn numbered_layer(name: &str, grid: &[u32], factor: i64) -> Graph {
    let op = Blockwise::new(
        BlockGrid::of(grid),
        func("blockwise_nd::numbered"),
        vec![BlockArg::PartIndex, BlockArg::Value(Value::new(factor))],
    );
    Graph::from_layer(Layer::blockwise(name, op, &[]))
}

fn run(tasks: &TaskGraph) -> Vec<i64> {
    let mut results: Vec<Option<Value>> = vec![None; tasks.len()];
    for index in 0..tasks.len() as u32 {
        let inputs: Vec<Value> =
            tasks.deps(index).iter().map(|&d| results[d as usize].clone().unwrap()).collect();
        results[index as usize] = Some(tasks.task(index).run(&inputs).unwrap());
    }
    tasks
        .outputs()
        .iter()
        .map(|&o| *results[o as usize].as_ref().unwrap().get::<i64>(&"out").unwrap())
        .collect()
}

fn all_blocks(name: &str, grid: &[u32]) -> Vec<Key> {
    let grid = BlockGrid::of(grid);
    (0..grid.len() as u32).map(|i| Key::block(name, &grid.unravel(i))).collect()
}

#[test]
fn a_contraction_lists_the_blocks_of_a_row_and_a_column() {
    // A is 2×3, B is 3×4 (blocks numbered row-major); C = A·B is 2×4.
    let a = numbered_layer("a", &[2, 3], 1);
    let b = numbered_layer("b", &[3, 4], 2);
    let mut op = Blockwise::new(
        BlockGrid::of(&[2, 4]),
        func("blockwise_nd::dot"),
        vec![
            BlockArg::Aligned(Name::from("a"), vec![AxisMap::Out(0), AxisMap::Contracted(0)]),
            BlockArg::Aligned(Name::from("b"), vec![AxisMap::Contracted(0), AxisMap::Out(1)]),
        ],
    );
    op.contracted = vec![3];
    let c = Graph::from_layer(Layer::blockwise("c", op, &[&a, &b]));
    let outputs = all_blocks("c", &[2, 4]);
    assert_eq!(outputs[5].to_string(), "('c', 1, 1)");
    let tasks = prepare(&c, &outputs, &Optimizations::default()).unwrap();
    assert_eq!(tasks.len(), 6 + 12 + 8, "A's, B's and C's blocks, none fused into a reader");
    let got = run(&tasks);
    let expected: Vec<i64> = (0..2)
        .flat_map(|i| (0..4).map(move |k| (0..3).map(|j| (i * 3 + j) * ((j * 4 + k) * 2)).sum()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_transpose_and_a_broadcast_row_map_block_indices() {
    let a = numbered_layer("a", &[2, 3], 1);
    let row = numbered_layer("row", &[1, 3], 100);
    // t[i][j] = a[j][i] + row[0][i]: a 3×2 grid.
    let op = Blockwise::new(
        BlockGrid::of(&[3, 2]),
        func("blockwise_nd::add"),
        vec![
            BlockArg::Aligned(Name::from("a"), vec![AxisMap::Out(1), AxisMap::Out(0)]),
            BlockArg::Aligned(Name::from("row"), vec![AxisMap::Block(0), AxisMap::Out(0)]),
        ],
    );
    let t = Graph::from_layer(Layer::blockwise("t", op, &[&a, &row]));
    let got = run(&prepare(&t, &all_blocks("t", &[3, 2]), &Optimizations::default()).unwrap());
    let expected: Vec<i64> =
        (0..3).flat_map(|i| (0..2).map(move |j| (j * 3 + i) + 100 * i)).collect();
    assert_eq!(got, expected);
}

#[test]
fn same_index_chains_over_a_grid_fuse_into_one_task_per_block() {
    let mut graph = numbered_layer("base", &[4, 5, 2], 1);
    let mut name = Name::from("base");
    for step in 0..10 {
        let next = Name::from(format!("step-{step}"));
        let input = if step % 2 == 0 {
            BlockArg::Input(name.clone())
        } else {
            BlockArg::Aligned(name.clone(), vec![AxisMap::Out(0), AxisMap::Out(1), AxisMap::Out(2)])
        };
        let op = Blockwise::new(
            BlockGrid::of(&[4, 5, 2]),
            func("blockwise_nd::add"),
            vec![input, BlockArg::Value(Value::new(1_i64))],
        );
        graph = graph.blockwise(next.clone(), op);
        name = next;
    }
    let outputs = all_blocks(name.as_str(), &[4, 5, 2]);
    let tasks = prepare(&graph, &outputs, &Optimizations::default()).unwrap();
    assert_eq!(tasks.len(), 40, "one task per block");
    assert_eq!(run(&tasks), (0..40).map(|i| i + 10).collect::<Vec<i64>>());
}

#[test]
fn blockwise_reads_explicit_tasks_with_block_keys_and_names_a_missing_block() {
    let same = func("blockwise_nd::same");
    let tasks: Vec<(Key, TaskSpec)> = (0..2)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| {
            let value = rask_core::Arg::value(i64::from(10 * i + j));
            (Key::block("stored", &[i, j]), TaskSpec::new(same.clone(), vec![value]))
        })
        .collect();
    let stored = Graph::from_layer(Layer::tasks("stored", tasks, &[]));
    let op = Blockwise::new(
        BlockGrid::of(&[2, 2]),
        func("blockwise_nd::add"),
        vec![BlockArg::Input(Name::from("stored")), BlockArg::Value(Value::new(1_i64))],
    );
    let plus = Graph::from_layer(Layer::blockwise("plus", op, &[&stored]));
    let got =
        run(&prepare(&plus, &all_blocks("plus", &[2, 2]), &Optimizations::default()).unwrap());
    assert_eq!(got, [1, 2, 11, 12]);

    // A grid larger than the stored blocks: the missing block is named.
    let op = Blockwise::new(
        BlockGrid::of(&[3, 2]),
        func("blockwise_nd::add"),
        vec![BlockArg::Input(Name::from("stored")), BlockArg::Value(Value::new(1_i64))],
    );
    let wide = Graph::from_layer(Layer::blockwise("wide", op, &[&stored]));
    let err = prepare(&wide, &all_blocks("wide", &[3, 2]), &Optimizations::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("('stored', 2, 0)") && err.contains("('wide', 2, 0)"), "{err}");
}

#[test]
fn an_input_of_fewer_axes_is_read_at_its_mapped_block_not_at_the_full_index() {
    // A 1-d layer of 3 blocks read by a (3, 2) grid as a column: input axis 0 is output axis 0.
    let column = numbered_layer("column", &[3], 10);
    let op = Blockwise::new(
        BlockGrid::of(&[3, 2]),
        func("blockwise_nd::same"),
        vec![BlockArg::Aligned(Name::from("column"), vec![AxisMap::Out(0)])],
    );
    let wide = Graph::from_layer(Layer::blockwise("wide", op, &[&column]));
    let got =
        run(&prepare(&wide, &all_blocks("wide", &[3, 2]), &Optimizations::default()).unwrap());
    assert_eq!(got, [0, 0, 10, 10, 20, 20]);
}
