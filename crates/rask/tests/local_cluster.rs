//! The distributed runtime in one process: a scheduler and workers on loopback sockets, driven
//! through the blocking `Client`.

mod common;

use std::time::Duration;

use common::within;
use rask::prelude::*;
use rask::testing::{add, fail, inc, make_data, read_latest, slow_inc, slow_len, total};
use rask::{Client, ClientError, LocalCluster};

fn cluster(workers: usize) -> (LocalCluster, Client) {
    let cluster = LocalCluster::new(workers, 1).unwrap();
    let client = cluster.client().unwrap();
    (cluster, client)
}

#[test]
fn map_gather_and_a_reduction_over_futures() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let futures = client.map(inc::lazy, 0..10).unwrap();
        assert_eq!(client.gather(&futures).unwrap(), (1..=10).collect::<Vec<i64>>());
        let persisted = client.persist(&total::lazy(&futures)).unwrap();
        assert_eq!(client.result(&client.submit(inc::lazy(&persisted)).unwrap()).unwrap(), 56);
        let over_futures = client.submit(total::lazy(&futures)).unwrap();
        assert_eq!(client.result(&over_futures).unwrap(), 55, "a list of futures as an input");
        let lazies: Vec<Delayed<i64>> = (0..10).map(inc::lazy).collect();
        let sum = client.compute(&total::lazy(lazies)).unwrap();
        assert_eq!(client.result(&sum).unwrap(), 55);
        assert_eq!(client.ncores().unwrap().len(), 2);
    });
}

#[test]
fn a_1000_step_chain_and_a_256_leaf_tree() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let mut x = inc::lazy(0);
        for _ in 1..1000 {
            x = inc::lazy(&x);
        }
        assert_eq!(client.result(&client.compute(&x).unwrap()).unwrap(), 1000);
        let mut level: Vec<Delayed<i64>> = (0..256).map(inc::lazy).collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|pair| add::lazy(&pair[0], &pair[1])).collect();
        }
        assert_eq!(
            client.result(&client.compute(&level[0]).unwrap()).unwrap(),
            (1..=256).sum::<i64>()
        );
    });
}

#[test]
fn the_client_is_a_scheduler_for_compute() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let graph = add::lazy(inc::lazy(1), inc::lazy(2));
        assert_eq!(graph.compute_with(&client).unwrap(), 5);
        let pair = (&inc::lazy(10), &add::lazy(1, 1));
        assert_eq!(pair.compute_with(&client).unwrap(), (11, 2));
    });
}

#[test]
fn task_errors_reach_the_client_with_their_chain_and_other_futures_complete() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let bad = client.submit(inc::lazy(fail::lazy(7))).unwrap();
        let good = client.submit(inc::lazy(41)).unwrap();
        let err = client.result(&bad).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("failed on purpose with 7") && message.contains("fail"),
            "{message}"
        );
        assert_eq!(client.result(&good).unwrap(), 42);
    });
}

#[test]
fn a_closure_cannot_go_to_a_cluster_and_the_error_says_what_to_do() {
    within(60, || {
        let (_cluster, client) = cluster(1);
        let local = inc::lazy(1).map("double", |x| x * 2);
        let err = client.compute(&local).unwrap_err().to_string();
        assert!(err.contains("closure `double`") && err.contains("#[rask::delayed]"), "{err}");
    });
}

#[test]
fn scatter_then_compute_on_the_scattered_futures() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let data = client.scatter(vec![10_i64, 20, 30], false).unwrap();
        let incremented: Vec<_> =
            data.iter().map(|f| client.submit(inc::lazy(f)).unwrap()).collect();
        assert_eq!(client.gather(&incremented).unwrap(), vec![11, 21, 31]);
        let everywhere = client.scatter(vec![5_i64], true).unwrap();
        assert_eq!(client.result(&everywhere[0]).unwrap(), 5);
    });
}

#[test]
fn losing_a_worker_recomputes_its_results_and_reruns_its_tasks() {
    within(90, || {
        let (mut cluster, client) = cluster(2);
        let inputs: Vec<_> = (0..20).map(inc::lazy).collect();
        let held = client.map(|d: &Delayed<i64>| inc::lazy(d), inputs.iter()).unwrap();
        client.wait(&held, Duration::from_secs(30)).unwrap();
        // Half of the results live on worker 0; stop it and ask for a sum over all of them.
        cluster.stop_worker(0);
        let slow: Vec<_> = (0..6).map(|i| slow_inc::lazy(i, 20)).collect();
        let slow_futures = client.map(|d: &Delayed<i64>| inc::lazy(d), slow.iter()).unwrap();
        assert_eq!(client.gather(&held).unwrap(), (2..22).collect::<Vec<i64>>());
        assert_eq!(client.gather(&slow_futures).unwrap(), (2..8).collect::<Vec<i64>>());
    });
}

#[test]
fn as_completed_yields_each_future_once_and_takes_new_ones() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let futures = client.map(|i| slow_inc::lazy(i, 5), 0..6).unwrap();
        let extra = client.submit(inc::lazy(100)).unwrap();
        let mut seen = client.block_on(async {
            let mut completed = client.asynchronous().as_completed(futures);
            let mut seen = Vec::new();
            let mut added = false;
            while let Some((_future, result)) = completed.next_with_result().await.unwrap() {
                seen.push(result.unwrap());
                if !added {
                    completed.add(extra.clone());
                    added = true;
                }
            }
            seen
        });
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 101]);
    });
}

#[test]
fn placement_prefers_the_worker_that_holds_big_inputs_but_idle_workers_take_slow_work() {
    within(90, || {
        let (cluster, client) = cluster(2);
        let data = client.submit(make_data::lazy(200_000)).unwrap();
        client.wait(std::slice::from_ref(&data), Duration::from_secs(30)).unwrap();
        let futures: Vec<_> =
            (0..12).map(|i| client.submit(slow_len::lazy(&data, i, 50)).unwrap()).collect();
        let lengths = client.gather(&futures).unwrap();
        assert_eq!(lengths, (0..12).map(|i| 200_000 + i).collect::<Vec<i64>>());
        drop(cluster);
    });
}

#[test]
fn cancel_and_restart_leave_nothing_behind() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let slow = client.map(|i| slow_inc::lazy(i, 200), 0..4).unwrap();
        client.cancel(&slow).unwrap();
        match client.result(&slow[0]) {
            Err(ClientError::Cancelled { .. }) => {}
            other => panic!("expected a cancellation, got {other:?}"),
        }
        let kept = client.submit(inc::lazy(1)).unwrap();
        assert_eq!(client.result(&kept).unwrap(), 2);
        client.restart().unwrap();
        assert!(matches!(client.result(&kept), Err(ClientError::Cancelled { .. })));
        // The cluster still works after a restart.
        let again = client.submit(inc::lazy(5)).unwrap();
        assert_eq!(client.result(&again).unwrap(), 6);
    });
}

#[test]
fn named_datasets_and_channels_between_clients_and_tasks() {
    within(60, || {
        let (_cluster, alice) = cluster(2);
        let bob = _cluster.client().unwrap();
        let model = alice.submit(inc::lazy(99)).unwrap();
        alice.publish("model", &model, false).unwrap();
        let refused = alice.publish("model", &model, false).unwrap_err().to_string();
        assert!(refused.contains("exists"), "{refused}");
        drop(model);
        let shared = bob.get_dataset::<i64>("model").unwrap();
        assert_eq!(bob.result(&shared).unwrap(), 100, "the dataset outlives alice's future");
        assert_eq!(bob.list_datasets().unwrap(), ["model"]);
        let missing = bob.get_dataset::<i64>("nope").unwrap_err().to_string();
        assert!(missing.contains("no dataset named"), "{missing}");
        // A scorer appends to a channel; tasks on workers read the newest score.
        let mut scores = alice.channel::<i64>("scores", 10);
        assert_eq!(bob.result(&bob.submit(read_latest::lazy("scores")).unwrap()).unwrap(), 0);
        for score in [5, 7, 9] {
            scores.append(&alice.submit(add::lazy(score, 0)).unwrap()).unwrap();
        }
        let seen = bob.result(&bob.submit(read_latest::lazy("scores")).unwrap()).unwrap();
        assert_eq!(seen, 9);
        let polled: Vec<i64> =
            scores.poll().unwrap().iter().map(|f| alice.result(f).unwrap()).collect();
        assert_eq!(polled, vec![5, 7, 9]);
        assert!(scores.poll().unwrap().is_empty(), "nothing new since the last poll");
    });
}

/// Fails for negative inputs: to debug with `rerun_locally`.
#[rask::delayed]
fn checked_sqrt(x: i64) -> Result<f64, std::io::Error> {
    if x < 0 {
        return Err(std::io::Error::other(format!("negative input {x}")));
    }
    Ok((x as f64).sqrt())
}

#[test]
fn a_failed_task_reruns_in_the_client_with_its_real_inputs() {
    within(60, || {
        // In-process workers share this test binary's registry, so they know checked_sqrt.
        let (_cluster, client) = cluster(2);
        let input = client.submit(add::lazy(-10, 1)).unwrap();
        let root = client.submit(checked_sqrt::lazy(&input)).unwrap();
        let err = client.result(&root).unwrap_err().to_string();
        assert!(err.contains("negative input -9"), "{err}");
        drop(input); // the input may be dropped on the cluster: rerun recomputes it
        let local = client.rerun_locally(&root).unwrap();
        let failure = local.expect_err("it fails again, here");
        assert_eq!(failure.error.chain, vec!["negative input -9".to_string()]);
        let ok = client.submit(checked_sqrt::lazy(16)).unwrap();
        assert!(client.rerun_locally(&ok).unwrap_err().to_string().contains("did not fail"));
    });
}

/// Fails the first `failures` times it is called with `tag`, then returns `x`.
#[rask::delayed(impure)]
fn flaky(x: i64, tag: &str, failures: u32) -> Result<i64, std::io::Error> {
    static CALLS: std::sync::Mutex<std::collections::BTreeMap<String, u32>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut calls = CALLS.lock().unwrap();
    let seen = calls.entry(tag.to_string()).or_insert(0);
    *seen += 1;
    if *seen <= failures {
        return Err(std::io::Error::other(format!("transient failure {seen}")));
    }
    Ok(x)
}

#[test]
fn retries_run_on_the_worker_and_who_has_names_the_holders() {
    within(60, || {
        let (_cluster, client) = cluster(2);
        let ok = client.submit(flaky::lazy(7, "twice", 2).retries(2)).unwrap();
        assert_eq!(client.result(&ok).unwrap(), 7);
        let failed = client.submit(flaky::lazy(7, "thrice", 3).retries(1)).unwrap();
        let err = client.result(&failed).unwrap_err().to_string();
        assert!(err.contains("after 2 attempts") && err.contains("transient failure 2"), "{err}");
        let holders = client.who_has(std::slice::from_ref(&ok)).unwrap();
        let addresses: Vec<String> =
            client.workers().unwrap().into_iter().map(|w| w.address).collect();
        assert_eq!(holders[0].len(), 1);
        assert!(addresses.contains(&holders[0][0]), "{holders:?} not among {addresses:?}");
    });
}
