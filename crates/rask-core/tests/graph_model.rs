//! The graph model end to end without a scheduler: validation, culling, fusion and ordering,
//! checked on the lowered `TaskGraph`.

use rask_core::optimize::prepare;
use rask_core::order::{order, peak_results_held};
use rask_core::{
    Arg, BlockArg, Blockwise, Error, FanInFusion, Graph, Key, Layer, Name, Optimizations,
    TaskGraph, TaskResult, TaskSpec, Value,
};

fn add(args: &[Value]) -> TaskResult {
    let mut total = 0_i64;
    for arg in args {
        total += arg.get::<i64>(&"add")?;
    }
    Ok(Value::new(total))
}
rask_core::register_function!("graph_model::add", add);

fn task(deps: &[&str]) -> TaskSpec {
    let add = rask_core::registry::lookup("graph_model::add").unwrap();
    let args = if deps.is_empty() {
        vec![Arg::value(1_i64)]
    } else {
        deps.iter().map(|d| Arg::Key(Key::new(*d))).collect()
    };
    TaskSpec::new(add, args)
}

fn graph(tasks: &[(&str, &[&str])]) -> Graph {
    Graph::from_tasks(tasks.iter().map(|(key, deps)| (Key::new(*key), task(deps))))
}

fn keys(names: &[&str]) -> Vec<Key> {
    names.iter().map(|n| Key::new(*n)).collect()
}

/// Runs a prepared graph sequentially in index (priority) order: a tiny oracle executor.
fn run_in_order(tasks: &TaskGraph) -> Vec<Value> {
    let mut results: Vec<Option<Value>> = vec![None; tasks.len()];
    for index in 0..tasks.len() as u32 {
        for &dep in tasks.deps(index) {
            assert!(dep < index, "a task comes after its dependencies");
        }
        let inputs: Vec<Value> =
            tasks.deps(index).iter().map(|&d| results[d as usize].clone().unwrap()).collect();
        let task = tasks.task(index);
        results[index as usize] = Some(task.run(&inputs).unwrap());
    }
    tasks.outputs().iter().map(|&o| results[o as usize].clone().unwrap()).collect()
}

#[test]
fn a_cycle_is_an_error_that_names_the_keys_on_it() {
    let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]);
    let err = prepare(&g, &keys(&["d"]), &Optimizations::default()).unwrap_err();
    let Error::Cycle { keys: on_cycle } = &err else { panic!("expected a cycle, got {err}") };
    let mut names: Vec<String> = on_cycle.iter().map(|k| k.name().to_string()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(err.to_string().contains("cycle"), "{err}");
    // A task depending on itself.
    let err = prepare(&graph(&[("x", &["x"])]), &keys(&["x"]), &Optimizations::none()).unwrap_err();
    assert!(matches!(err, Error::Cycle { .. }), "{err}");
}

#[test]
fn a_reference_to_a_missing_key_names_the_task_and_the_key() {
    let g = graph(&[("a", &[]), ("b", &["a", "nowhere"])]);
    let err = prepare(&g, &keys(&["b"]), &Optimizations::default()).unwrap_err().to_string();
    assert!(err.contains("'b'") && err.contains("'nowhere'"), "{err}");
    let err = prepare(&g, &keys(&["zzz"]), &Optimizations::default()).unwrap_err().to_string();
    assert!(err.contains("'zzz'") && err.contains("2 tasks"), "{err}");
}

#[test]
fn duplicate_keys_are_refused() {
    let add = rask_core::registry::lookup("graph_model::add").unwrap();
    let g = Graph::from_tasks([
        (Key::new("a"), TaskSpec::new(add.clone(), vec![])),
        (Key::new("a"), TaskSpec::new(add, vec![Arg::value(2_i64)])),
    ]);
    let err = prepare(&g, &keys(&["a"]), &Optimizations::default()).unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err}");
}

#[test]
fn the_empty_graph_and_a_one_task_graph() {
    let empty = prepare(&Graph::new(), &[], &Optimizations::default()).unwrap();
    assert!(empty.is_empty() && empty.outputs().is_empty());
    let err =
        prepare(&Graph::new(), &keys(&["a"]), &Optimizations::default()).unwrap_err().to_string();
    assert!(err.contains("0 tasks"), "{err}");
    let one = prepare(&graph(&[("a", &[])]), &keys(&["a"]), &Optimizations::default()).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(run_in_order(&one)[0].downcast_ref::<i64>(), Some(&1));
}

#[test]
fn culling_keeps_only_what_the_outputs_need() {
    let g = graph(&[("a", &[]), ("b", &["a"]), ("unused", &["a"]), ("c", &["b", "a"])]);
    let no_fusion = Optimizations { fuse_linear: false, ..Optimizations::default() };
    assert_eq!(prepare(&g, &keys(&["c"]), &no_fusion).unwrap().len(), 3);
    assert_eq!(prepare(&g, &keys(&["b"]), &no_fusion).unwrap().len(), 2);
    assert_eq!(prepare(&g, &keys(&["c"]), &Optimizations::none()).unwrap().len(), 4);
}

#[test]
fn linear_chains_fuse_into_one_task_with_a_readable_label_and_the_same_result() {
    let g = graph(&[
        ("a", &[]),
        ("b", &["a"]),
        ("c", &["b"]),
        ("d", &["c"]),
        ("e", &["d", "c2"]),
        ("c2", &[]),
    ]);
    let fused = prepare(&g, &keys(&["e"]), &Optimizations::default()).unwrap();
    let plain = prepare(&g, &keys(&["e"]), &Optimizations::none()).unwrap();
    assert_eq!(plain.len(), 6);
    assert_eq!(fused.len(), 3, "a->b->c->d fuse; e reads two inputs and stays");
    let chain = fused
        .tasks()
        .iter()
        .find(|t| t.key == Key::new("d"))
        .expect("the chain keeps its last key");
    assert_eq!(chain.ops().len(), 4);
    assert_eq!(chain.label(), "add");
    assert_eq!(
        run_in_order(&fused)[0].downcast_ref::<i64>(),
        run_in_order(&plain)[0].downcast_ref::<i64>()
    );
    // An output in the middle of a chain is never fused away.
    let both = prepare(&g, &keys(&["e", "b"]), &Optimizations::default()).unwrap();
    assert!(both.tasks().iter().any(|t| t.key == Key::new("b")));
}

#[test]
fn a_10k_and_a_100k_chain_lower_order_and_fuse_without_stack_overflow() {
    for n in [10_000_u32, 100_000] {
        let add = rask_core::registry::lookup("graph_model::add").unwrap();
        let tasks = (0..n).map(|i| {
            let args = if i == 0 {
                vec![Arg::value(0_i64)]
            } else {
                vec![Arg::Key(Key::part("x", i - 1)), Arg::value(1_i64)]
            };
            (Key::part("x", i), TaskSpec::new(add.clone(), args))
        });
        let g = Graph::from_tasks(tasks);
        let unfused = prepare(&g, &[Key::part("x", n - 1)], &Optimizations::none()).unwrap();
        assert_eq!(unfused.len(), n as usize);
        assert_eq!(peak_results_held(&unfused, &(0..n).collect::<Vec<_>>()), 2);
        let fused = prepare(&g, &[Key::part("x", n - 1)], &Optimizations::default()).unwrap();
        assert_eq!(fused.len(), 1);
        assert_eq!(run_in_order(&fused)[0].downcast_ref::<i64>(), Some(&i64::from(n - 1)));
    }
}

/// A binary reduction tree over `leaves` leaves; returns the graph and the root key.
fn tree(leaves: u32) -> (Graph, Key) {
    let add = rask_core::registry::lookup("graph_model::add").unwrap();
    let mut tasks = Vec::new();
    let mut level: Vec<Key> = (0..leaves).map(|i| Key::part("leaf", i)).collect();
    for key in &level {
        tasks.push((key.clone(), TaskSpec::new(add.clone(), vec![Arg::value(1_i64)])));
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let name = Name::from(format!("level-{depth}"));
        level = level
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| {
                if pair.len() == 1 {
                    return pair[0].clone();
                }
                let key = Key::part(name.clone(), i as u32);
                tasks.push((
                    key.clone(),
                    TaskSpec::new(add.clone(), pair.iter().map(Arg::from).collect()),
                ));
                key
            })
            .collect();
    }
    (Graph::from_tasks(tasks), level.remove(0))
}

#[test]
fn ordering_a_reduction_tree_holds_about_log2_results() {
    let (g, root) = tree(1024);
    let tasks = prepare(&g, &[root], &Optimizations::default()).unwrap();
    let in_priority_order: Vec<u32> = (0..tasks.len() as u32).collect();
    let peak = peak_results_held(&tasks, &in_priority_order);
    // Depth-first evaluation of a tree of depth 10 holds at most depth + 1 results (plus the
    // one being made); breadth-first would hold 512.
    assert!(peak <= 12, "peak {peak}");
    assert_eq!(run_in_order(&tasks)[0].downcast_ref::<i64>(), Some(&1024));
    // Leaves in index order (breadth first) would be far worse: the ordering matters.
    let raw = rask_core::lower::lower(&g, &[Key::part("level-10", 0)], true, true).unwrap();
    let mut breadth_first: Vec<u32> = (0..raw.len() as u32).collect();
    breadth_first.reverse();
    assert!(peak_results_held(&raw, &breadth_first) >= 512);
    assert!(peak_results_held(&raw, &order(&raw).unwrap()) <= 12);
}

#[test]
fn ordering_fan_out_then_fan_in_frees_each_branch_before_the_next() {
    // root -> 100 branches of a 3-step chain each -> one sum of all branch ends.
    let mut spec: Vec<(String, Vec<String>)> = vec![("root".into(), vec![])];
    for b in 0..100 {
        spec.push((format!("b{b}-0"), vec!["root".into()]));
        spec.push((format!("b{b}-1"), vec![format!("b{b}-0")]));
        spec.push((format!("b{b}-2"), vec![format!("b{b}-1")]));
    }
    spec.push(("sum".into(), (0..100).map(|b| format!("b{b}-2")).collect()));
    let g = Graph::from_tasks(spec.iter().map(|(k, deps)| {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        (Key::new(k.as_str()), task(&deps))
    }));
    let tasks = prepare(&g, &keys(&["sum"]), &Optimizations::none()).unwrap();
    let peak = peak_results_held(&tasks, &(0..tasks.len() as u32).collect::<Vec<_>>());
    // Each branch end must wait for the sum (100), plus the root and one chain in flight.
    assert!(peak <= 103, "peak {peak}");
    assert_eq!(run_in_order(&tasks)[0].downcast_ref::<i64>(), Some(&100));
}

#[test]
fn fan_in_fusion_absorbs_small_dependencies_and_keeps_results() {
    let (g, root) = tree(64);
    let plain = prepare(&g, std::slice::from_ref(&root), &Optimizations::default()).unwrap();
    let aggressive = Optimizations {
        fuse_fan_in: Some(FanInFusion { max_width: 2, max_height: 2 }),
        ..Optimizations::default()
    };
    let fused = prepare(&g, std::slice::from_ref(&root), &aggressive).unwrap();
    assert_eq!(plain.len(), 127);
    assert!(fused.len() < plain.len() / 2, "{} tasks after fan-in fusion", fused.len());
    assert_eq!(run_in_order(&fused)[0].downcast_ref::<i64>(), Some(&64));
    assert!(fused.tasks().iter().all(|t| t.ops().len() <= 7), "two levels of width two at most");
}

fn identity() -> rask_core::TaskFn {
    rask_core::registry::lookup("rask::identity").unwrap()
}

fn plus_one(args: &[Value]) -> TaskResult {
    Ok(Value::new(args[0].get::<i64>(&"x")? + 1))
}
rask_core::register_function!("graph_model::plus_one", plus_one);

fn part_value(args: &[Value]) -> TaskResult {
    Ok(Value::new(i64::from(*args[0].get::<u32>(&"part")?)))
}
rask_core::register_function!("graph_model::part_value", part_value);

fn blockwise_chain(partitions: u32, steps: usize) -> (Graph, Name) {
    let mut name = Name::from("parts");
    let op = Blockwise::new(
        partitions,
        rask_core::registry::lookup("graph_model::part_value").unwrap(),
        vec![BlockArg::PartIndex],
    );
    let mut g = Graph::from_layer(Layer::blockwise(name.clone(), op, &[]));
    for step in 0..steps {
        let next = Name::from(format!("inc-{step}"));
        let op = Blockwise::new(
            partitions,
            rask_core::registry::lookup("graph_model::plus_one").unwrap(),
            vec![BlockArg::Input(name)],
        );
        g = g.blockwise(next.clone(), op);
        name = next;
    }
    (g, name)
}

#[test]
fn blockwise_layers_fuse_before_expansion_and_expand_per_partition() {
    let (g, last) = blockwise_chain(50, 20);
    assert_eq!(g.num_tasks(), 50 * 21);
    let outputs: Vec<Key> = (0..50).map(|i| Key::part(last.clone(), i)).collect();
    let tasks = prepare(&g, &outputs, &Optimizations::default()).unwrap();
    assert_eq!(tasks.len(), 50);
    assert!(tasks.tasks().iter().all(|t| t.ops().len() == 21));
    assert_eq!(tasks.task(0).label(), "part_value-plus_one");
    let values = run_in_order(&tasks);
    for (i, value) in values.iter().enumerate() {
        assert_eq!(value.downcast_ref::<i64>(), Some(&(i as i64 + 20)));
    }
    // Unfused, the same graph is 1,050 tasks with the same results.
    let plain = prepare(&g, &outputs, &Optimizations::none()).unwrap();
    assert_eq!(plain.len(), 50 * 21);
    let plain_values = run_in_order(&plain);
    assert!(values
        .iter()
        .zip(&plain_values)
        .all(|(a, b)| a.downcast_ref::<i64>() == b.downcast_ref::<i64>()));
    // Asking for one partition of an intermediate layer keeps that layer unfused.
    let mid = prepare(
        &g,
        &[Key::part("inc-9", 3), Key::part(last.clone(), 3)],
        &Optimizations::default(),
    )
    .unwrap();
    assert_eq!(mid.len(), 2);
    assert_eq!(
        run_in_order(&mid).iter().map(|v| *v.downcast_ref::<i64>().unwrap()).collect::<Vec<_>>(),
        [13, 23]
    );
}

#[test]
fn a_blockwise_input_that_does_not_exist_is_named() {
    let op = Blockwise::new(3, identity(), vec![BlockArg::Input(Name::from("ghost"))]);
    let g = Graph::from_layer(Layer::blockwise("reader", op, &[]));
    let err =
        prepare(&g, &[Key::part("reader", 0)], &Optimizations::default()).unwrap_err().to_string();
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn a_collection_can_replace_the_optimizations() {
    let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]);
    let counting = Optimizations::none().with_custom(|tasks| {
        assert_eq!(tasks.len(), 3, "the custom pass sees the unfused graph");
        Ok(rask_core::fuse::fuse_linear(tasks).0)
    });
    assert_eq!(prepare(&g, &keys(&["c"]), &counting).unwrap().len(), 1);
}
