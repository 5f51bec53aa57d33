//! End to end: a real `rask scheduler` and real `rask worker` processes on loopback, a client
//! in this test process, and workers killed with SIGKILL. Every wait has a deadline.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, within};
use rask::prelude::*;
use rask::testing::{abort_process, add, inc, make_data, slow_inc, where_am_i};
use rask::{Client, ClientError, SubmitOptions};

/// A function the test binary registers but the stock `rask worker` binary does not know.
#[rask::delayed]
fn only_in_this_test(x: i64) -> i64 {
    x * 3
}

/// A delayed value that asks not to be fused: every step of a chain is its own task.
struct Unfused(Delayed<i64>);

impl rask::Collection for Unfused {
    type Output = i64;
    fn graph(&self) -> rask::Graph {
        self.0.graph()
    }
    fn output_keys(&self) -> Vec<rask::Key> {
        vec![self.0.key().clone()]
    }
    fn finalize(&self, values: Vec<rask::Value>) -> rask::Result<i64> {
        self.0.finalize(values)
    }
    fn optimizations(&self) -> rask::Optimizations {
        rask::Optimizations { fuse_linear: false, ..rask::Optimizations::default() }
    }
}

struct Cluster {
    dir: PathBuf,
    scheduler: Child,
    address: String,
    workers: Vec<Option<Child>>,
}

impl Cluster {
    fn start(workers: usize, scheduler_args: &[&str]) -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("rask-e2e-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scheduler.addr");
        let scheduler = Command::new(env!("CARGO_BIN_EXE_rask"))
            .args(["scheduler", "--port", "0", "--dashboard-address", "none", "--scheduler-file"])
            .arg(&file)
            .args(scheduler_args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("scheduler.log")).unwrap())
            .spawn()
            .unwrap();
        eventually(20, "the scheduler file", || file.exists());
        let address = std::fs::read_to_string(&file).unwrap().trim().to_string();
        let mut cluster = Cluster { dir, scheduler, address, workers: Vec::new() };
        for _ in 0..workers {
            cluster.add_worker();
        }
        let client = cluster.client();
        eventually(20, "the workers to register", || client.workers().unwrap().len() == workers);
        cluster
    }

    fn add_worker(&mut self) -> usize {
        self.add_worker_with(&[])
    }

    fn add_worker_with(&mut self, extra: &[&str]) -> usize {
        let index = self.workers.len();
        let child = Command::new(env!("CARGO_BIN_EXE_rask"))
            .args(["worker", &self.address, "--nthreads", "1", "--name", &format!("w{index}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(format!("worker-{index}.log"))).unwrap())
            .spawn()
            .unwrap();
        self.workers.push(Some(child));
        index
    }

    fn client(&self) -> Client {
        Client::connect(&self.address).unwrap()
    }

    /// SIGKILL (Child::kill sends SIGKILL on Unix).
    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.workers[index].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Replaces workers that died by themselves (a "nanny"); returns how many it replaced.
    fn replace_dead(&mut self) -> usize {
        let dead: Vec<usize> = self
            .workers
            .iter_mut()
            .enumerate()
            .filter_map(|(i, w)| w.as_mut().and_then(|c| c.try_wait().unwrap()).map(|_| i))
            .collect();
        for &i in &dead {
            self.workers[i] = None;
            self.add_worker();
        }
        dead.len()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for worker in self.workers.iter_mut().filter_map(Option::take) {
            let mut worker = worker;
            let _ = worker.kill();
            let _ = worker.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) * 1000
        + (Instant::now().elapsed().as_nanos() as u64 % 1000)
}

#[test]
fn map_inc_then_sigkill_one_of_two_workers_and_the_sum_is_still_55() {
    within(120, || {
        let mut cluster = Cluster::start(2, &[]);
        let client = cluster.client();
        let futures = client.map(|i| slow_inc::lazy(i, 100), 0..10).unwrap();
        eventually(30, "a first result", || futures.iter().any(|f| f.done()));
        cluster.kill(0);
        let results = client.gather(&futures).unwrap();
        assert_eq!(results.iter().sum::<i64>(), 55);
    });
}

#[test]
fn a_256_leaf_tree_survives_a_worker_killed_twice() {
    within(180, || {
        let mut cluster = Cluster::start(3, &[]);
        let client = cluster.client();
        let mut level: Vec<Delayed<i64>> = (0..256).map(|i| slow_inc::lazy(i, 5)).collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|pair| add::lazy(&pair[0], &pair[1])).collect();
        }
        let root = client.compute(&level[0]).unwrap();
        let probe = client.map(|i| slow_inc::lazy(1000 + i, 200), 0..3).unwrap();
        eventually(30, "work in progress", || probe.iter().any(|f| f.done()) || root.done());
        cluster.kill(0);
        let replacement = cluster.add_worker();
        eventually(30, "the replacement", || client.workers().unwrap().len() == 3);
        cluster.kill(replacement);
        assert_eq!(client.result(&root).unwrap(), (1..=256).sum::<i64>());
        assert_eq!(client.gather(&probe).unwrap(), vec![1001, 1002, 1003]);
    });
}

#[test]
fn a_task_that_kills_its_workers_fails_as_killed_worker_while_other_work_completes() {
    within(180, || {
        let mut cluster = Cluster::start(2, &["--allowed-failures", "1"]);
        let client = cluster.client();
        let poison = client.submit(abort_process::lazy(1)).unwrap();
        let others = client.map(|i| slow_inc::lazy(i, 20), 0..8).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !poison.done() {
            assert!(Instant::now() < deadline, "the poisoned task never failed");
            cluster.replace_dead();
            std::thread::sleep(Duration::from_millis(20));
        }
        let err = client.result(&poison).unwrap_err().to_string();
        assert!(err.contains("KilledWorker") && err.contains("2 workers"), "{err}");
        cluster.replace_dead();
        assert_eq!(client.gather(&others).unwrap(), (1..=8).collect::<Vec<i64>>());
    });
}

#[test]
fn results_held_only_by_a_dead_worker_are_recomputed() {
    within(120, || {
        let mut cluster = Cluster::start(2, &[]);
        let client = cluster.client();
        let futures = client.map(inc::lazy, 0..20).unwrap();
        client.wait(&futures, Duration::from_secs(30)).unwrap();
        cluster.kill(1);
        let total = client
            .compute(&rask::testing::total::lazy(futures.iter().map(inc::lazy).collect::<Vec<_>>()))
            .unwrap();
        assert_eq!(client.result(&total).unwrap(), (2..22).sum::<i64>());
        assert_eq!(client.gather(&futures).unwrap(), (1..=20).collect::<Vec<i64>>());
    });
}

#[test]
fn a_1000_step_chain_across_processes() {
    within(120, || {
        let cluster = Cluster::start(2, &[]);
        let client = cluster.client();
        let mut x = inc::lazy(0);
        for _ in 1..1000 {
            x = inc::lazy(&x);
        }
        assert_eq!(Unfused(x.clone()).compute_with(&client).unwrap(), 1000);
        assert_eq!(x.compute_with(&client).unwrap(), 1000, "and fused into one task");
    });
}

#[test]
fn slow_tasks_spread_to_both_workers_but_pinned_tasks_never_move() {
    within(120, || {
        let cluster = Cluster::start(2, &[]);
        let client = cluster.client();
        let data = client.submit_to(make_data::lazy(1000), &["w0".to_string()]).unwrap();
        client.wait(std::slice::from_ref(&data), Duration::from_secs(30)).unwrap();
        let free: Vec<_> =
            (0..50).map(|i| client.submit(where_am_i::lazy(&data, 20 + i % 2)).unwrap()).collect();
        let pinned: Vec<_> = (0..6)
            .map(|_| client.submit_to(where_am_i::lazy(&data, 10), &["w0".to_string()]).unwrap())
            .collect();
        let free_places = client.gather(&free).unwrap();
        let pinned_places = client.gather(&pinned).unwrap();
        assert!(
            free_places.iter().any(|w| w == "w0") && free_places.iter().any(|w| w == "w1"),
            "{free_places:?}"
        );
        assert!(pinned_places.iter().all(|w| w == "w0"), "{pinned_places:?}");
    });
}

#[test]
fn two_clients_share_a_scheduler_and_restart_leaves_no_tasks_behind() {
    within(120, || {
        let cluster = Cluster::start(2, &[]);
        let alice = cluster.client();
        let bob = cluster.client();
        let a = alice.submit(slow_inc::lazy(41, 50)).unwrap();
        let b = bob.submit(slow_inc::lazy(41, 50)).unwrap();
        assert_eq!(a.key(), b.key(), "the same pure call is one task");
        drop(a);
        assert_eq!(bob.result(&b).unwrap(), 42);
        let more = alice.map(|i| slow_inc::lazy(i, 100), 0..10).unwrap();
        alice.restart().unwrap();
        assert_eq!(alice.scheduler_tasks().unwrap(), 0);
        assert!(matches!(bob.result(&b), Err(ClientError::Cancelled { .. })));
        assert!(matches!(alice.result(&more[0]), Err(ClientError::Cancelled { .. })));
        let after = bob.submit(inc::lazy(1)).unwrap();
        assert_eq!(bob.result(&after).unwrap(), 2);
    });
}

#[test]
fn a_function_the_workers_do_not_have_is_named_with_what_to_do() {
    within(60, || {
        let cluster = Cluster::start(1, &[]);
        let client = cluster.client();
        let future = client.submit(only_in_this_test::lazy(2)).unwrap();
        let err = client.result(&future).unwrap_err().to_string();
        assert!(
            err.contains("only_in_this_test") && err.contains("register") && err.contains("binary"),
            "{err}"
        );
    });
}

#[test]
fn garbage_and_wrong_versions_on_the_scheduler_port_leave_it_unharmed() {
    use std::io::{Read, Write};
    within(60, || {
        let cluster = Cluster::start(1, &[]);
        // Garbage: the scheduler says hello, reads nonsense, closes.
        let mut garbage = std::net::TcpStream::connect(&cluster.address).unwrap();
        garbage.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        let _ = garbage.read_to_end(&mut sink);
        assert!(sink.windows(4).any(|w| w == b"RASK"), "the scheduler's hello came first");
        // A rask hello of another version (999): refused.
        let mut old = std::net::TcpStream::connect(&cluster.address).unwrap();
        old.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = [b"RASK".as_slice(), &[0xe7, 0x07, 0x00]].concat();
        old.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
        old.write_all(&hello).unwrap();
        let mut sink = Vec::new();
        let _ = old.read_to_end(&mut sink);
        // An oversized frame after a good handshake: the connection is dropped.
        let mut big = std::net::TcpStream::connect(&cluster.address).unwrap();
        big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = [b"RASK".as_slice(), &[0x01, 0x00]].concat();
        big.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
        big.write_all(&hello).unwrap();
        big.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let mut sink = Vec::new();
        let _ = big.read_to_end(&mut sink);
        // The scheduler still serves clients and workers.
        let client = cluster.client();
        let future = client.submit(inc::lazy(1)).unwrap();
        assert_eq!(client.result(&future).unwrap(), 2);
        let log = std::fs::read_to_string(cluster.dir.join("scheduler.log")).unwrap();
        assert!(log.contains("refused a connection"), "{log}");
        assert!(log.contains("version mismatch"), "{log}");
    });
}

#[test]
fn tasks_that_need_a_resource_run_only_where_it_is_offered() {
    within(120, || {
        let mut cluster = Cluster::start(1, &[]);
        cluster.add_worker_with(&["--resources", "GPU=1"]);
        let client = cluster.client();
        eventually(20, "the GPU worker", || client.workers().unwrap().len() == 2);
        let data = client.submit(make_data::lazy(10)).unwrap();
        let gpu =
            SubmitOptions { resources: vec![("GPU".into(), 1.0)], ..SubmitOptions::default() };
        let places: Vec<_> = (0..4)
            .map(|i| client.submit_with(where_am_i::lazy(&data, 5 + i), &gpu).unwrap())
            .collect();
        let names = client.gather(&places).unwrap();
        assert!(names.iter().all(|n| n == "w1"), "{names:?}");
        let urgent = SubmitOptions { priority: 5, ..SubmitOptions::default() };
        assert_eq!(client.result(&client.submit_with(inc::lazy(1), &urgent).unwrap()).unwrap(), 2);
    });
}

#[test]
fn a_result_pinned_to_a_worker_that_died_fails_at_once_naming_the_worker() {
    within(60, || {
        let mut cluster = Cluster::start(2, &[]);
        let client = cluster.client();
        let pinned = client.submit_to(inc::lazy(41), &["w0".to_string()]).unwrap();
        client.wait(std::slice::from_ref(&pinned), Duration::from_secs(30)).unwrap();
        cluster.kill(0);
        // It used to block 30 s on the dead address and then report a refused connection.
        let started = Instant::now();
        let err = client.result(&pinned).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert!(err.contains("w0") && err.contains("is gone"), "{err}");
        assert!(err.contains("no worker is allowed to hold or recompute it"), "{err}");
        // Work that may run anywhere goes on on the survivor.
        assert_eq!(client.result(&client.submit(inc::lazy(1)).unwrap()).unwrap(), 2);
    });
}

#[test]
fn after_the_scheduler_died_submit_fails_saying_the_scheduler_is_gone() {
    within(60, || {
        let mut cluster = Cluster::start(1, &[]);
        let client = cluster.client();
        let before = client.submit(slow_inc::lazy(1, 60_000)).unwrap();
        cluster.scheduler.kill().unwrap();
        cluster.scheduler.wait().unwrap();
        let gone = format!("the scheduler at {} is gone", cluster.address);
        let err = client.result(&before).unwrap_err().to_string();
        assert!(err.contains(&gone), "{err}");
        let err = client.submit(inc::lazy(1)).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(&gone), "{err}");
        // Connecting again finds nothing listening, and says what to do.
        let err = Client::connect(&cluster.address).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("start a scheduler (`rask scheduler`) or check the address"), "{err}");
    });
}

#[test]
fn worker_client_outside_a_task_says_it_works_only_inside_a_task() {
    let err = rask::worker_client().map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("works only inside a task"), "{err}");
    assert!(!err.contains("refused"), "{err}");
}
