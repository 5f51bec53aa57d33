//! `#[rask::delayed]` and `Delayed<T>` from a user's point of view.

use std::sync::atomic::{AtomicUsize, Ordering};

use rask::prelude::*;
use rask::{Error, Graph, Key, LocalScheduler, ProgressMode, Scheduler};
use serde::{Deserialize, Serialize};

/// Calls of `expensive`, per tag: tests run in parallel, so each counts its own tag.
static EXPENSIVE_CALLS: std::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn calls(tag: &str) -> usize {
    EXPENSIVE_CALLS.lock().unwrap().get(tag).copied().unwrap_or(0)
}

#[rask::delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[rask::delayed]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[rask::delayed]
fn total(xs: &[i64]) -> i64 {
    xs.iter().sum()
}

#[rask::delayed]
fn concat(mut parts: Vec<String>) -> String {
    parts.reverse();
    parts.concat()
}

#[rask::delayed]
fn longest(words: &[String]) -> usize {
    words.iter().map(String::len).max().unwrap_or(0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Table {
    rows: Vec<(String, f64)>,
}

#[rask::delayed]
fn load_table(name: String) -> Table {
    Table { rows: vec![(name, 1.5), ("b".into(), 2.5)] }
}

#[rask::delayed]
fn weight(table: &Table, factor: f64) -> f64 {
    table.rows.iter().map(|(_, w)| w * factor).sum()
}

/// A function whose calls are counted, to see what runs how often.
#[rask::delayed]
fn expensive(x: i64, tag: &str) -> i64 {
    *EXPENSIVE_CALLS.lock().unwrap().entry(tag.to_string()).or_insert(0) += 1;
    x * 10
}

#[derive(Debug, thiserror::Error)]
#[error("parsing {input:?} failed")]
struct ParseFailure {
    input: String,
    #[source]
    cause: std::num::ParseIntError,
}

#[rask::delayed]
fn parse(text: &str) -> Result<i64, ParseFailure> {
    text.trim().parse().map_err(|cause| ParseFailure { input: text.to_string(), cause })
}

#[rask::delayed(impure)]
fn now_ish(seed: u64) -> u64 {
    seed
}

fn quiet() -> LocalScheduler {
    LocalScheduler::new().progress(ProgressMode::Never)
}

#[test]
fn plain_loops_build_a_graph_that_computes_the_eager_answer() {
    let mut values = Vec::new();
    for i in 0..20 {
        let x = inc::lazy(i);
        let y = add::lazy(&x, 100);
        values.push(y);
    }
    let sum = total::lazy(&values);
    assert_eq!(sum.graph().num_tasks(), 41, "nothing ran; the graph has 20 + 20 + 1 tasks");
    let eager: i64 = (0..20).map(|i| add(inc(i), 100)).sum();
    assert_eq!(sum.compute_with(&quiet()).unwrap(), eager);
    assert_eq!(sum.compute().unwrap(), eager, "compute() uses the default local scheduler");
    let words = rask::delayed(vec!["a".to_string(), "abcd".to_string()]);
    assert_eq!(longest::lazy(&words).compute().unwrap(), 4);
    let pieces: Vec<Delayed<String>> =
        ["ab", "cd"].iter().map(|s| rask::delayed(s.to_string())).collect();
    assert_eq!(concat::lazy(&pieces).compute().unwrap(), "cdab");
    assert_eq!(longest::lazy(pieces).compute().unwrap(), 2, "a list of delayeds for a slice");
}

#[test]
fn user_types_reference_parameters_and_literals_mix() {
    let table = load_table::lazy("a".to_string());
    let weighted = weight::lazy(&table, 2.0);
    assert_eq!(weighted.compute().unwrap(), 8.0);
    assert_eq!(table.compute().unwrap(), load_table("a".into()));
}

#[test]
fn pure_calls_with_equal_arguments_share_a_key_and_run_once() {
    let a = expensive::lazy(7, "shared".to_string());
    let b = expensive::lazy(7, "shared".to_string());
    let c = expensive::lazy(8, "shared".to_string());
    assert_eq!(a.key(), b.key());
    assert_ne!(a.key(), c.key());
    assert!(a.key().to_string().starts_with("'expensive-"), "{}", a.key());
    let both = add::lazy(&a, &b);
    assert_eq!(both.compute().unwrap(), 140);
    assert_eq!(calls("shared"), 1, "the repeated subexpression ran once");
    // Impure functions get a new key for every call.
    assert_ne!(now_ish::lazy(1).key(), now_ish::lazy(1).key());
}

#[test]
fn computing_several_delayeds_together_shares_their_common_subgraph() {
    let shared = expensive::lazy(1000, "compute-many".to_string());
    let left = inc::lazy(&shared);
    let right = add::lazy(&shared, 5);
    let (l, r) = (&left, &right).compute().unwrap();
    assert_eq!((l, r), (10_001, 10_005));
    assert_eq!(calls("compute-many"), 1);
    let many = vec![inc::lazy(&shared), inc::lazy(&left)].compute().unwrap();
    assert_eq!(many, vec![10_001, 10_002]);
}

#[test]
fn persist_computes_once_and_later_graphs_start_from_the_result() {
    let base = expensive::lazy(3, "persist".to_string());
    let kept = base.persist().unwrap();
    assert_eq!(calls("persist"), 1);
    assert_eq!(kept.key(), base.key());
    assert_eq!(inc::lazy(&kept).compute().unwrap(), 31);
    assert_eq!(add::lazy(&kept, &kept).compute().unwrap(), 60);
    assert_eq!(calls("persist"), 1, "persisted: not run again");
}

#[test]
fn closures_work_in_process() {
    let x = inc::lazy(1);
    let doubled = x.map("double", |x| x * 2);
    let pair = doubled.zip_with(&x, "pair", |a, b| (*a, *b));
    assert_eq!(pair.compute().unwrap(), (4, 2));
    let parts: Vec<_> = (0..5).map(inc::lazy).collect();
    let product = rask::reduce_with(&parts, "product", |xs| xs.iter().copied().product::<i64>());
    assert_eq!(product.compute().unwrap(), 120);
    let local = Delayed::local(std::rc::Rc::new(5).as_ref().to_owned());
    assert_eq!(local.compute().unwrap(), 5);
}

#[test]
fn an_error_returned_by_a_task_keeps_its_chain_and_names_the_task() {
    let parsed = parse::lazy("12x".to_string());
    let err = inc::lazy(&parsed).compute().unwrap_err();
    let failure = err.task_failure().expect("a task failure");
    assert_eq!(&failure.key, parsed.key());
    assert!(failure.function.ends_with("delayed::parse"), "{}", failure.function);
    assert_eq!(failure.error.chain.len(), 2);
    assert!(err.to_string().contains("parsing \"12x\" failed"), "{err}");
    assert!(err.to_string().contains("invalid digit"), "{err}");
    assert_eq!(parse::lazy(" 42 ".to_string()).compute().unwrap(), 42);
}

#[test]
fn retries_on_a_delayed() {
    static FLAKY: AtomicUsize = AtomicUsize::new(0);
    let flaky = rask::delayed(0_i64).map("flaky", |_| {
        assert!(FLAKY.fetch_add(1, Ordering::SeqCst) >= 1, "fails the first time");
        9_i64
    });
    assert!(flaky.clone().compute().is_err());
    FLAKY.store(0, Ordering::SeqCst);
    assert_eq!(flaky.retries(1).compute().unwrap(), 9);
}

#[test]
fn asking_a_delayed_for_the_wrong_type_names_both_types() {
    let x = inc::lazy(1);
    let wrong: Delayed<String> = Delayed::from_graph(x.graph(), x.key().clone());
    let err = wrong.compute().unwrap_err();
    let Error::TypeMismatch { expected, actual, .. } = &err else { panic!("{err}") };
    assert!(expected.contains("String") && *actual == "i64", "{err}");
    assert!(err.to_string().contains("inc-"), "the message names the key: {err}");
    // A wrongly typed input reaching a registered function names the argument.
    let text = rask::delayed("seven".to_string());
    let as_int: Delayed<i64> = Delayed::from_graph(text.graph(), text.key().clone());
    let err = inc::lazy(&as_int).compute().unwrap_err().to_string();
    assert!(
        err.contains("argument 0 (`x`)") && err.contains("i64") && err.contains("String"),
        "{err}"
    );
}

#[test]
fn registered_functions_run_by_name_on_serialized_arguments() {
    assert!(add::NAME.ends_with("delayed::add"), "{}", add::NAME);
    assert!(rask::registry::names().contains(&add::NAME));
    let encode = |v: i64| rask::Value::serde(v).encode().unwrap();
    let (a, b) = (encode(40), encode(2));
    let out = rask::registry::call_encoded(add::NAME, &[&a, &b]).unwrap();
    let back = rask::decode_serde::<i64>(&out).unwrap();
    assert_eq!(back.downcast_ref::<i64>(), Some(&42));
    let err = rask::registry::call_encoded(add::NAME, &[&a]).unwrap_err().to_string();
    assert!(err.contains("takes 2 arguments"), "{err}");
    let err =
        rask::registry::call_encoded("nobody::registered::this", &[]).unwrap_err().to_string();
    assert!(err.contains("nobody::registered::this") && err.contains("register"), "{err}");
}

#[test]
fn an_empty_collection_and_a_single_task() {
    let nothing: Vec<Delayed<i64>> = Vec::new();
    assert_eq!(nothing.compute().unwrap(), Vec::<i64>::new());
    assert_eq!(rask::delayed(5_i64).compute().unwrap(), 5);
    let values = quiet().compute(&Graph::new(), &[], &rask::Optimizations::default()).unwrap();
    assert!(values.is_empty());
    let err = quiet()
        .compute(&Graph::new(), &[Key::new("x")], &rask::Optimizations::default())
        .unwrap_err();
    assert!(matches!(err, Error::MissingOutput { .. }), "{err}");
}
