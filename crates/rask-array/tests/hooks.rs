//! Constructor hooks see every array an operation returns, and can make computing eager. (In
//! a test binary of their own: hooks are process-wide.)

use std::sync::{Arc, Mutex};

use ndarray::{ArrayD, IxDyn};
use rask_array::prelude::*;
use rask_array::{add_hook, HookAction};
use rask_local::ComputeExt;

#[test]
fn hooks_see_new_arrays_and_can_compute_them_eagerly() {
    let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let record = seen.clone();
    let guard = add_hook(move |info| {
        record.lock().unwrap().push((info.operation.to_string(), info.max_chunk_bytes));
        HookAction::Keep
    });
    let x = zeros::<f64>(&[100, 10], [50, 10]).unwrap();
    let y = (&x + 1.0).sum(0).unwrap();
    let operations: Vec<String> = seen.lock().unwrap().iter().map(|(op, _)| op.clone()).collect();
    assert_eq!(operations.first().map(String::as_str), Some("zeros"));
    assert!(operations.iter().any(|op| op == "reduce"), "{operations:?}");
    // The reduction's per-chunk partials are a step inside it, not an array of the user's.
    assert!(!operations.iter().any(|op| op == "reduce-partial"), "{operations:?}");
    assert_eq!(seen.lock().unwrap()[0].1, 50 * 10 * 8);
    drop(guard);
    let before = seen.lock().unwrap().len();
    let _ = &y + 1.0;
    assert_eq!(seen.lock().unwrap().len(), before, "a dropped hook is not called");

    // Eager mode: every array is computed as it is made.
    let _eager = add_hook(|_| HookAction::Compute);
    let a = from_ndarray(&ArrayD::from_elem(IxDyn(&[6]), 4i64), 2).unwrap();
    let doubled = &a * 2;
    // Persisted: its graph holds the three chunks' values, not the multiplication.
    assert_eq!(doubled.graph_ref().num_tasks(), 3);
    assert_eq!(doubled.compute().unwrap(), ArrayD::from_elem(IxDyn(&[6]), 8));
    // A failing operation stays lazy and reports its error at compute().
    let zeros = from_ndarray(&ArrayD::from_elem(IxDyn(&[6]), 0i64), 2).unwrap();
    let err = a.try_div(&zeros).unwrap().compute().unwrap_err().to_string();
    assert!(err.contains("division by zero"), "{err}");
}
