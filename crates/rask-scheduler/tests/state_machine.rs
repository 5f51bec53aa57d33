//! The scheduler state machine driven directly: events in, commands checked, invariants after
//! every step. No sockets, no threads, no time.

use rask_core::{Key, TaskError, TaskFailure, WireTask};
use rask_protocol::messages::{
    ClientId, Reply, Request, SchedulerToClient, SchedulerToWorker, TaskTiming, WorkerId,
};
use rask_scheduler::{Command, Event, RecordKind, SchedulerConfig, SchedulerState, TaskStatus};

struct Env {
    state: SchedulerState,
    out: Vec<Command>,
}

const ALICE: ClientId = ClientId(1);
const BOB: ClientId = ClientId(2);

fn w(n: u32) -> WorkerId {
    WorkerId(n)
}

fn key(name: &str) -> Key {
    Key::new(name)
}

fn task(name: &str, deps: &[&str], priority: u32) -> WireTask {
    WireTask {
        key: key(name),
        deps: deps.iter().map(|d| key(d)).collect(),
        priority,
        part: 0,
        retries: 0,
        ops: vec![rask_core::wire::WireOp { func: "test::f".into(), args: vec![] }],
        label: None,
        origins: vec![],
    }
}

impl Env {
    fn new() -> Self {
        Self::with(SchedulerConfig::default())
    }

    fn with(config: SchedulerConfig) -> Self {
        let mut env = Env { state: SchedulerState::new(config), out: Vec::new() };
        env.on(Event::ClientConnected(ALICE));
        env.on(Event::ClientConnected(BOB));
        env
    }

    fn on(&mut self, event: Event) {
        self.state.handle(event, &mut self.out);
        self.state.check_invariants();
    }

    fn worker(&mut self, id: u32, nthreads: u32) {
        self.on(Event::WorkerConnected {
            worker: w(id),
            name: format!("w{id}"),
            address: format!("10.0.0.{id}:1"),
            nthreads,
            resources: if id == 9 { vec![("GPU".into(), 1.0)] } else { vec![] },
            now_us: 0,
        });
    }

    fn submit(&mut self, client: ClientId, tasks: Vec<WireTask>, wanted: &[&str]) {
        let wanted = wanted.iter().map(|k| key(k)).collect();
        self.on(Event::UpdateGraph {
            client,
            tasks,
            wanted,
            restrictions: vec![],
            resources: vec![],
            priority: 0,
        });
    }

    fn finish(&mut self, worker: u32, name: &str, nbytes: u64) {
        self.on(Event::TaskFinished {
            worker: w(worker),
            key: key(name),
            nbytes,
            timing: TaskTiming::lasting(1000),
        });
    }

    /// The tasks sent to workers since the last call, as (worker, key).
    fn computes(&mut self) -> Vec<(u32, String)> {
        let mut sent = Vec::new();
        self.out.retain(|c| match c {
            Command::ToWorker(worker, SchedulerToWorker::Compute { task, .. }) => {
                sent.push((worker.0, task.key.name().to_string()));
                false
            }
            _ => true,
        });
        sent.sort();
        sent
    }

    /// Messages to a client since the last call.
    fn messages_for(&mut self, client: ClientId) -> Vec<SchedulerToClient> {
        let mut messages = Vec::new();
        self.out.retain(|c| match c {
            Command::ToClient(id, message) if *id == client => {
                messages.push(message.clone());
                false
            }
            _ => true,
        });
        messages
    }

    fn frees(&mut self) -> Vec<(u32, String)> {
        let mut freed = Vec::new();
        self.out.retain(|c| match c {
            Command::ToWorker(worker, SchedulerToWorker::Free { keys }) => {
                freed.extend(keys.iter().map(|k| (worker.0, k.name().to_string())));
                false
            }
            _ => true,
        });
        freed.sort();
        freed
    }

    fn status(&self, name: &str) -> Option<TaskStatus> {
        self.state.status(&key(name))
    }
}

fn in_memory(messages: &[SchedulerToClient]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            SchedulerToClient::KeyInMemory { key, .. } => Some(key.name().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_chain_runs_in_order_and_intermediates_are_freed() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("a", &[], 0), task("b", &["a"], 1)], &["b"]);
    assert_eq!(env.computes(), [(1, "a".into())]);
    assert_eq!(env.status("b"), Some(TaskStatus::Waiting));
    env.finish(1, "a", 10);
    assert_eq!(env.computes(), [(1, "b".into())]);
    env.finish(1, "b", 10);
    assert_eq!(in_memory(&env.messages_for(ALICE)), ["b"]);
    assert_eq!(env.frees(), [(1, "a".into())], "a is freed once b no longer needs it");
    assert_eq!(env.status("a"), Some(TaskStatus::Released));
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("b")] });
    assert_eq!(env.frees(), [(1, "b".into())]);
    assert_eq!(env.state.num_tasks(), 0, "everything is forgotten");
}

#[test]
fn workers_take_at_most_threads_plus_one_long_tasks_and_the_rest_waits_on_the_scheduler() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 1e6, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.worker(2, 1);
    let tasks = (0..10).map(|i| task(&format!("t{i}"), &[], i)).collect();
    let wanted: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    env.submit(ALICE, tasks, &wanted.iter().map(String::as_str).collect::<Vec<_>>());
    let sent = env.computes();
    assert_eq!(sent.len(), 4, "two slots each: {sent:?}");
    let mut keys: Vec<&str> = sent.iter().map(|(_, k)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["t0", "t1", "t2", "t3"], "best priority first");
    let queued =
        (0..10).filter(|i| env.status(&format!("t{i}")) == Some(TaskStatus::Queued)).count();
    assert_eq!(queued, 6);
    let (worker, first) = sent[0].clone();
    env.finish(worker, &first, 8);
    assert_eq!(
        env.computes(),
        [(worker, "t4".into())],
        "a free slot takes the next in priority order"
    );
}

#[test]
fn workers_take_many_tiny_tasks_at_once_to_hide_the_round_trip() {
    let mut env = Env::new();
    env.worker(1, 1);
    // Names "tiny-<token>" share the prefix "tiny", under which durations are learned.
    let names: Vec<String> = (0..100).map(|i| format!("tiny-{i:016x}")).collect();
    let tasks = names.iter().enumerate().map(|(i, n)| task(n, &[], i as u32)).collect();
    env.submit(ALICE, tasks, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let first = env.computes().len();
    assert_eq!(first, 10, "5 ms of queued work at the default 0.5 ms per unknown task");
    // The first results teach the scheduler that these tasks take 10 µs.
    for name in &names[..3] {
        env.on(Event::TaskFinished {
            worker: w(1),
            key: key(name),
            nbytes: 8,
            timing: TaskTiming::lasting(10),
        });
    }
    let _ = env.computes();
    let in_flight = env.state.processing_on(w(1)).len();
    assert!(in_flight > 50, "now far more tiny tasks are in flight: {in_flight}");
}

#[test]
fn a_task_goes_where_its_big_input_is() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.worker(2, 1);
    env.submit(ALICE, vec![task("big", &[], 0), task("small", &[], 1)], &["big", "small"]);
    let sent = env.computes();
    let big_on = sent.iter().find(|(_, k)| k == "big").unwrap().0;
    let small_on = sent.iter().find(|(_, k)| k == "small").unwrap().0;
    env.finish(big_on, "big", 500_000_000);
    env.finish(small_on, "small", 10);
    env.submit(ALICE, vec![task("uses-big", &["big", "small"], 0)], &["uses-big"]);
    assert_eq!(env.computes(), [(big_on, "uses-big".into())]);
}

#[test]
fn when_a_worker_dies_its_tasks_rerun_and_its_results_are_recomputed() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.worker(2, 1);
    env.submit(
        ALICE,
        vec![task("x", &[], 0), task("y", &[], 1), task("z", &["x", "y"], 2)],
        &["z"],
    );
    let sent = env.computes();
    assert_eq!(sent.len(), 2);
    let x_on = sent.iter().find(|(_, k)| k == "x").unwrap().0;
    let other = if x_on == 1 { 2 } else { 1 };
    env.finish(x_on, "x", 8);
    // y is still running on `other`; x's holder dies.
    env.on(Event::WorkerDisconnected(w(x_on)));
    assert_eq!(
        env.status("x"),
        Some(TaskStatus::Processing(w(other))),
        "x is recomputed on the survivor"
    );
    assert_eq!(env.status("z"), Some(TaskStatus::Waiting));
    let _ = env.computes();
    env.finish(other, "y", 8);
    env.finish(other, "x", 8);
    assert_eq!(env.computes(), [(other, "z".into())]);
    env.finish(other, "z", 8);
    assert_eq!(in_memory(&env.messages_for(ALICE)), ["z"]);
}

#[test]
fn a_task_that_keeps_killing_workers_fails_as_killed_worker_naming_them() {
    let mut env = Env::with(SchedulerConfig { allowed_failures: 1, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.submit(ALICE, vec![task("poison", &[], 0), task("fine", &[], 1)], &["poison", "fine"]);
    assert_eq!(env.computes(), [(1, "fine".into()), (1, "poison".into())]);
    env.on(Event::TaskStarted { worker: w(1), keys: vec![key("poison")] });
    env.on(Event::WorkerDisconnected(w(1)));
    env.worker(2, 1);
    assert_eq!(env.computes(), [(2, "fine".into()), (2, "poison".into())]);
    env.on(Event::TaskStarted { worker: w(2), keys: vec![key("fine")] });
    env.finish(2, "fine", 8);
    env.on(Event::TaskStarted { worker: w(2), keys: vec![key("poison")] });
    env.on(Event::WorkerDisconnected(w(2)));
    assert_eq!(env.status("poison"), Some(TaskStatus::Erred));
    let messages = env.messages_for(ALICE);
    let failure = messages
        .iter()
        .find_map(|m| match m {
            SchedulerToClient::KeyErred { key, failure } if key.name().as_str() == "poison" => {
                Some(failure.clone())
            }
            _ => None,
        })
        .expect("the client hears of the failure");
    let text = failure.error.chain.join(" ");
    assert!(
        text.contains("KilledWorker") && text.contains("WorkerId-1") && text.contains("WorkerId-2"),
        "{text}"
    );
    // "fine" finished before the second death but lived on worker 2: it is recomputed.
    env.worker(3, 1);
    assert_eq!(env.computes(), [(3, "fine".into())]);
}

#[test]
fn tasks_merely_queued_on_a_dying_worker_are_not_suspects() {
    let mut env = Env::with(SchedulerConfig { allowed_failures: 0, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.submit(ALICE, vec![task("runs", &[], 0), task("queued", &[], 1)], &["runs", "queued"]);
    let _ = env.computes();
    env.on(Event::TaskStarted { worker: w(1), keys: vec![key("runs")] });
    env.on(Event::WorkerDisconnected(w(1)));
    assert_eq!(
        env.status("runs"),
        Some(TaskStatus::Erred),
        "allowed_failures = 0: one death is enough"
    );
    assert_eq!(env.status("queued"), Some(TaskStatus::Queued), "it never ran there");
}

#[test]
fn an_error_fails_every_task_that_waits_on_it() {
    let mut env = Env::new();
    env.worker(1, 2);
    env.submit(ALICE, vec![task("a", &[], 0), task("b", &["a"], 1), task("c", &["b"], 2)], &["c"]);
    let _ = env.computes();
    let failure = TaskFailure {
        key: key("a"),
        function: "f".into(),
        attempts: 1,
        error: TaskError::msg("boom"),
    };
    env.on(Event::TaskErred { worker: w(1), key: key("a"), failure });
    assert_eq!(env.status("b"), Some(TaskStatus::Erred));
    assert_eq!(env.status("c"), Some(TaskStatus::Erred));
    let messages = env.messages_for(ALICE);
    assert!(
        matches!(&messages[..], [SchedulerToClient::KeyErred { key, failure }] if key.name().as_str() == "c" && failure.key == self::key("a"))
    );
}

/// Two workers of one thread, and a 500 MB result `name` on one of them: the environment, the
/// holder and the other worker.
fn big_result_on_one_of_two_workers(name: &str) -> (Env, u32, u32) {
    let mut env = Env::new();
    env.worker(1, 1);
    env.worker(2, 1);
    env.submit(ALICE, vec![task(name, &[], 0)], &[name]);
    let [(holder, _)] = &env.computes()[..] else { panic!("one task") };
    let (holder, other) = (*holder, 3 - *holder);
    env.finish(holder, name, 500_000_000);
    (env, holder, other)
}

#[test]
fn a_replica_draws_readers_to_its_worker_and_is_freed_with_the_result() {
    let (mut env, holder, other) = big_result_on_one_of_two_workers("big");
    // The other worker fetched a copy for a task of its own and says so.
    env.on(Event::Replicated { worker: w(other), keys: vec![key("big"), key("unknown")] });
    assert_eq!(env.state.who_has(&key("big")), [w(holder), w(other)]);
    assert_eq!(env.frees(), [(other, "unknown".into())], "a copy of nothing known goes");
    // Two readers of the big result: both workers hold it, so each takes one, none fetches.
    env.submit(ALICE, vec![task("r1", &["big"], 0), task("r2", &["big"], 1)], &["r1", "r2"]);
    let sent = env.computes();
    assert_eq!(sent.iter().map(|(w, _)| *w).collect::<Vec<_>>(), [1, 2], "{sent:?}");
    env.finish(1, "r1", 8);
    env.finish(2, "r2", 8);
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("big")] });
    assert_eq!(env.status("big"), Some(TaskStatus::Released));
    assert_eq!(env.frees(), [(1, "big".into()), (2, "big".into())], "every copy is freed");
    // A copy reported after its result was released is freed at once.
    env.on(Event::Replicated { worker: w(2), keys: vec![key("r1")] });
    assert_eq!(env.state.who_has(&key("r1")), [w(1), w(2)]);
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("r1")] });
    assert_eq!(env.frees(), [(1, "r1".into()), (2, "r1".into())]);
    env.on(Event::Replicated { worker: w(2), keys: vec![key("r1")] });
    assert_eq!(env.frees(), [(2, "r1".into())]);
}

#[test]
fn a_result_read_again_after_one_of_its_readers_was_forgotten_is_computed_again() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("a", &[], 0)], &["a"]);
    env.computes();
    env.finish(1, "a", 8);
    env.submit(ALICE, vec![task("r1", &["a"], 0), task("r2", &["a"], 1)], &["r1", "r2"]);
    for (_, reader) in env.computes() {
        env.finish(1, &reader, 8);
    }
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("a")] });
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("r1")] });
    assert_eq!(env.status("r1"), None, "r1 is forgotten");
    assert_eq!(env.status("a"), Some(TaskStatus::Released), "r2 may still need a");
    // A new task takes r1's slot; a new reader brings `a` back.
    env.submit(ALICE, vec![task("other", &[], 0), task("r3", &["a"], 1)], &["other", "r3"]);
    let sent = env.computes();
    assert!(sent.contains(&(1, "a".into())), "{sent:?}");
    env.finish(1, "a", 8);
    assert_eq!(env.computes(), [(1, "r3".into())]);
}

#[test]
fn a_worker_that_lost_a_copy_it_reported_is_no_longer_a_holder() {
    let (mut env, holder, other) = big_result_on_one_of_two_workers("a");
    env.on(Event::Replicated { worker: w(other), keys: vec![key("a")] });
    // Keep the holder busy so the reader goes to the worker with the copy.
    env.submit(ALICE, vec![task("busy", &[], 0)], &["busy"]);
    let busy_on = env.computes()[0].0;
    assert_eq!(busy_on, holder, "{busy_on}");
    env.submit(ALICE, vec![task("reader", &["a"], 1)], &["reader"]);
    assert_eq!(env.computes(), [(other, "reader".into())]);
    env.on(Event::MissingData { worker: w(other), key: key("reader"), dep: key("a") });
    assert_eq!(env.state.who_has(&key("a")), [w(holder)], "the copy was not there");
    let requeued = env.status("reader");
    assert!(
        matches!(requeued, Some(TaskStatus::Queued | TaskStatus::Processing(_))),
        "{requeued:?}"
    );
}

#[test]
fn two_clients_share_a_result_until_both_release_it() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("shared", &[], 0)], &["shared"]);
    env.submit(BOB, vec![task("shared", &[], 0)], &["shared"]);
    assert_eq!(env.computes().len(), 1, "computed once");
    env.finish(1, "shared", 8);
    assert_eq!(in_memory(&env.messages_for(ALICE)), ["shared"]);
    assert_eq!(in_memory(&env.messages_for(BOB)), ["shared"]);
    env.on(Event::ReleaseKeys { client: ALICE, keys: vec![key("shared")] });
    assert_eq!(env.status("shared"), Some(TaskStatus::Memory));
    env.on(Event::ClientDisconnected(BOB));
    assert_eq!(env.status("shared"), None);
    assert_eq!(env.frees(), [(1, "shared".into())]);
}

#[test]
fn releasing_an_unfinished_future_stops_its_work() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("slow", &[], 0), task("after", &["slow"], 1)], &["after"]);
    assert_eq!(env.computes(), [(1, "slow".into())]);
    env.on(Event::Cancel { client: ALICE, keys: vec![key("after")] });
    assert!(matches!(&env.messages_for(ALICE)[..], [SchedulerToClient::KeyCancelled { .. }]));
    assert_eq!(env.frees(), [(1, "slow".into())], "the running input is stopped too");
    assert_eq!(env.state.num_tasks(), 0);
    // Its late result is refused.
    env.finish(1, "slow", 8);
    assert_eq!(env.frees(), [(1, "slow".into())]);
}

#[test]
fn restart_forgets_everything_and_clears_workers() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("a", &[], 0), task("b", &["a"], 1)], &["b"]);
    env.on(Event::Request { client: BOB, request: Request::Restart });
    assert_eq!(env.state.num_tasks(), 0);
    assert!(env.state.processing_on(w(1)).is_empty());
    assert!(env.out.iter().any(|c| matches!(c, Command::ToWorker(_, SchedulerToWorker::Clear))));
    assert!(matches!(&env.messages_for(ALICE)[..], [SchedulerToClient::KeyCancelled { .. }]));
    assert!(matches!(&env.messages_for(BOB)[..], [SchedulerToClient::Reply(Reply::Restarted)]));
}

#[test]
fn an_input_nobody_submitted_is_an_error_that_says_so() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("orphan", &["ghost"], 0)], &["orphan"]);
    let messages = env.messages_for(ALICE);
    let [SchedulerToClient::KeyErred { failure, .. }] = &messages[..] else {
        panic!("{messages:?}")
    };
    let text = failure.error.chain.join(" ");
    assert!(text.contains("'ghost'") && text.contains("unknown to the scheduler"), "{text}");
}

#[test]
fn silent_workers_are_removed_after_their_ttl() {
    let mut env =
        Env::with(SchedulerConfig { worker_ttl_us: 1_000_000, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.submit(ALICE, vec![task("t", &[], 0)], &["t"]);
    let _ = env.computes();
    env.on(Event::Tick { now_us: 500_000 });
    assert_eq!(env.status("t"), Some(TaskStatus::Processing(w(1))));
    env.on(Event::Tick { now_us: 2_000_000 });
    assert!(env.out.iter().any(|c| matches!(c, Command::CloseWorker(id) if *id == w(1))));
    assert_eq!(env.status("t"), Some(TaskStatus::Queued));
}

#[test]
fn restricted_tasks_only_run_where_allowed() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 1e6, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.worker(2, 1);
    let tasks = (0..4).map(|i| task(&format!("pinned{i}"), &[], i)).collect();
    let restrictions =
        (0..4).map(|i| (key(&format!("pinned{i}")), vec!["w2".to_string()])).collect();
    let wanted = (0..4).map(|i| key(&format!("pinned{i}"))).collect();
    env.on(Event::UpdateGraph {
        client: ALICE,
        tasks,
        wanted,
        restrictions,
        resources: vec![],
        priority: 0,
    });
    let sent = env.computes();
    assert!(sent.iter().all(|(worker, _)| *worker == 2), "{sent:?}");
    assert_eq!(sent.len(), 2, "worker 2's two slots; worker 1 stays idle");
}

#[test]
fn a_wide_graph_is_scheduled_without_rescanning_the_queue() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.worker(2, 1);
    let n = 5_000;
    let names: Vec<String> = (0..n).map(|i| format!("inc-{i:016x}")).collect();
    let mut tasks: Vec<WireTask> =
        names.iter().enumerate().map(|(i, k)| task(k, &[], i as u32)).collect();
    let deps: Vec<&str> = names.iter().map(String::as_str).collect();
    tasks.push(task("sum", &deps, n as u32));
    env.submit(ALICE, tasks, &["sum"]);
    let mut done = 0;
    while env.status("sum") != Some(TaskStatus::Memory) {
        let sent = env.computes();
        assert!(!sent.is_empty() || done > 0, "progress");
        for (worker, name) in sent {
            env.state.handle(
                Event::TaskFinished {
                    worker: w(worker),
                    key: key(&name),
                    nbytes: 8,
                    timing: TaskTiming::lasting(5),
                },
                &mut env.out,
            );
            done += 1;
        }
        env.frees();
    }
    env.state.check_invariants();
    let stats = env.state.stats.clone();
    assert_eq!(stats.assigned, n as u64 + 1);
    assert!(stats.ready_pops < 2 * (n as u64 + 1), "{stats:?}");
}

#[test]
fn datasets_and_channels_keep_results_for_any_client() {
    let mut env = Env::new();
    env.worker(1, 1);
    env.submit(ALICE, vec![task("model", &[], 0)], &["model"]);
    let _ = env.computes();
    env.finish(1, "model", 8);
    let publish =
        Request::Publish { name: "best".into(), keys: vec![key("model")], overwrite: false };
    env.on(Event::Request { client: ALICE, request: publish.clone() });
    env.on(Event::Request { client: ALICE, request: publish });
    let replies = env.messages_for(ALICE);
    assert!(
        matches!(replies.last(), Some(SchedulerToClient::Reply(Reply::Refused { reason })) if reason.contains("exists"))
    );
    // Alice lets go of her future: the dataset keeps the result.
    env.on(Event::ClientDisconnected(ALICE));
    assert_eq!(env.status("model"), Some(TaskStatus::Memory));
    env.on(Event::Request { client: BOB, request: Request::GetDataset { name: "best".into() } });
    assert!(
        matches!(&env.messages_for(BOB)[..], [SchedulerToClient::Reply(Reply::Dataset { keys: Some(keys) })] if keys == &vec![key("model")])
    );
    // A channel keeps the newest `maxlen` items.
    for (i, name) in ["s0", "s1", "s2"].iter().enumerate() {
        env.submit(BOB, vec![task(name, &[], i as u32)], &[name]);
        let _ = env.computes();
        env.finish(1, name, 8);
        env.on(Event::Request {
            client: BOB,
            request: Request::ChannelAppend { name: "scores".into(), key: key(name), maxlen: 2 },
        });
    }
    let _ = env.messages_for(BOB);
    env.on(Event::Request {
        client: BOB,
        request: Request::ChannelRead { name: "scores".into(), since: 0 },
    });
    let replies = env.messages_for(BOB);
    let [SchedulerToClient::Reply(Reply::ChannelItems { items, next })] = &replies[..] else {
        panic!("{replies:?}")
    };
    assert_eq!(items, &vec![key("s1"), key("s2")]);
    assert_eq!(*next, 3);
    env.on(Event::Request { client: BOB, request: Request::Unpublish { name: "best".into() } });
    assert_eq!(env.status("model"), None, "nobody holds it any more");
}

#[test]
fn resources_limit_where_and_how_many_tasks_run() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 1e6, ..SchedulerConfig::default() });
    env.worker(1, 2);
    env.worker(9, 2); // worker 9 offers GPU=1
    let tasks = (0..3).map(|i| task(&format!("gpu{i}"), &[], i)).collect();
    let resources =
        (0..3).map(|i| (key(&format!("gpu{i}")), vec![("GPU".to_string(), 1.0)])).collect();
    let wanted = (0..3).map(|i| key(&format!("gpu{i}"))).collect();
    env.on(Event::UpdateGraph {
        client: ALICE,
        tasks,
        wanted,
        restrictions: vec![],
        resources,
        priority: 0,
    });
    assert_eq!(
        env.computes(),
        [(9, "gpu0".into())],
        "one GPU: one task at a time, on the GPU worker"
    );
    env.finish(9, "gpu0", 8);
    assert_eq!(env.computes(), [(9, "gpu1".into())]);
}

#[test]
fn a_higher_user_priority_runs_first() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 1e6, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.submit(ALICE, vec![task("busy1", &[], 0), task("busy2", &[], 1)], &["busy1", "busy2"]);
    let _ = env.computes();
    env.submit(ALICE, vec![task("normal", &[], 0)], &["normal"]);
    let urgent = vec![task("urgent", &[], 0)];
    env.on(Event::UpdateGraph {
        client: BOB,
        tasks: urgent,
        wanted: vec![key("urgent")],
        restrictions: vec![],
        resources: vec![],
        priority: 10,
    });
    env.finish(1, "busy1", 8);
    assert_eq!(env.computes(), [(1, "urgent".into())], "submitted later, but more urgent");
}

#[test]
fn measured_bandwidth_replaces_the_guess_for_placement() {
    let mut env = Env::new();
    env.worker(1, 1);
    let guess = env.state.bandwidth();
    for _ in 0..30 {
        env.on(Event::Heartbeat {
            worker: w(1),
            now_us: 1,
            bandwidth: 1e9,
            memory_bytes: 0,
            cpu_seconds: 0.0,
            memory: Default::default(),
        });
    }
    assert!(env.state.bandwidth() > 5.0 * guess, "{} vs {guess}", env.state.bandwidth());
    env.on(Event::Heartbeat {
        worker: w(1),
        now_us: 2,
        bandwidth: 0.0,
        memory_bytes: 0,
        cpu_seconds: 0.0,
        memory: Default::default(),
    });
    assert!(env.state.bandwidth() > 5.0 * guess, "nothing measured: the estimate stays");
}

#[test]
fn an_idle_worker_steals_queued_work_but_not_running_or_pinned_tasks() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 100_000.0, ..SchedulerConfig::default() });
    env.worker(1, 1);
    let names = ["slow0", "slow1", "pinned"];
    let tasks = names.iter().enumerate().map(|(i, n)| task(n, &[], i as u32)).collect();
    let wanted = names.iter().map(|n| key(n)).collect();
    let restrictions = vec![(key("pinned"), vec!["w1".to_string()])];
    env.on(Event::UpdateGraph {
        client: ALICE,
        tasks,
        wanted,
        restrictions,
        resources: vec![],
        priority: 0,
    });
    assert_eq!(env.computes(), [(1, "slow0".into()), (1, "slow1".into())], "two slots on worker 1");
    env.on(Event::TaskStarted { worker: w(1), keys: vec![key("slow0")] });
    // A second worker arrives: "pinned" must wait for worker 1, "slow1" is queued there.
    env.worker(2, 1);
    let steals: Vec<String> = env
        .out
        .iter()
        .filter_map(|c| match c {
            Command::ToWorker(id, SchedulerToWorker::Steal { key }) if *id == w(1) => {
                Some(key.name().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(steals, ["slow1"], "not the running slow0");
    env.on(Event::StealResponse { worker: w(1), key: key("slow1"), stolen: true });
    assert_eq!(env.status("slow1"), Some(TaskStatus::Processing(w(2))));
    assert_eq!(env.state.stats.stolen, 1);
    env.finish(1, "slow0", 8);
    assert_eq!(
        env.status("pinned"),
        Some(TaskStatus::Processing(w(1))),
        "pinned stays on worker 1"
    );
}

#[test]
fn a_task_that_started_meanwhile_is_not_moved() {
    let mut env =
        Env::with(SchedulerConfig { default_duration_us: 100_000.0, ..SchedulerConfig::default() });
    env.worker(1, 1);
    env.submit(ALICE, vec![task("a", &[], 0), task("b", &[], 1)], &["a", "b"]);
    env.on(Event::TaskStarted { worker: w(1), keys: vec![key("a")] });
    env.worker(2, 1);
    assert!(env
        .out
        .iter()
        .any(|c| matches!(c, Command::ToWorker(_, SchedulerToWorker::Steal { .. }))));
    env.on(Event::StealResponse { worker: w(1), key: key("b"), stolen: false });
    assert_eq!(env.status("b"), Some(TaskStatus::Processing(w(1))));
    env.finish(1, "b", 8);
    assert_eq!(env.status("b"), Some(TaskStatus::Memory));
}

#[test]
fn the_task_stream_and_progress_describe_the_computation_for_the_dashboard() {
    let mut env =
        Env::with(SchedulerConfig { task_stream_length: 2, ..SchedulerConfig::default() });
    env.worker(1, 1);
    let names: Vec<String> = (0..3).map(|i| format!("load-{i:016x}")).collect();
    let mut tasks: Vec<WireTask> =
        names.iter().enumerate().map(|(i, n)| task(n, &[], i as u32)).collect();
    tasks.push(task(
        "sum-0000000000000001",
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
        3,
    ));
    env.submit(ALICE, tasks, &["sum-0000000000000001"]);
    let progress = env.state.progress();
    assert_eq!(progress["load"].processing + progress["load"].queued, 3);
    assert_eq!(progress["sum"].waiting, 1);
    for (i, name) in names.iter().enumerate() {
        let timing = TaskTiming { started_at_us: 1_000 * i as u64, duration_us: 10, thread: 0 };
        env.on(Event::TaskFinished { worker: w(1), key: key(name), nbytes: 8, timing });
    }
    let stream: Vec<String> = env.state.task_stream().map(|r| r.key.name().to_string()).collect();
    assert_eq!(stream, names[1..], "the stream keeps the newest two");
    assert_eq!(env.state.task_stream().last().unwrap().timing.started_at_us, 2_000);
    assert_eq!(env.state.progress()["sum"].processing, 1);
}

#[test]
fn transfers_join_the_task_stream_but_not_reports_of_tasks() {
    let mut env = Env::new();
    env.worker(1, 1);
    let timing = TaskTiming { started_at_us: 5, duration_us: 7, thread: 0 };
    env.on(Event::Transferred {
        worker: w(1),
        from: "10.0.0.2:1".into(),
        values: 3,
        bytes: 300,
        timing,
    });
    let (records, next) = env.state.task_stream_since(0);
    assert_eq!(next, 1);
    assert!(records[0].kind == RecordKind::Transfer && records[0].nbytes == 300);
    assert!(records[0].key.name().as_str().contains("3 values from 10.0.0.2:1"));
    env.on(Event::Request { client: ALICE, request: Request::TaskStream { since: 0 } });
    let replies = env.messages_for(ALICE);
    assert!(
        matches!(&replies[..], [SchedulerToClient::Reply(Reply::TaskStream { records, next: 1 })]
            if records.len() == 1 && records[0].4 == RecordKind::Transfer && records[0].2 == 300),
        "reports see transfers too, with their kind"
    );
}

#[test]
fn a_result_pinned_to_a_dead_worker_fails_at_once_naming_the_worker() {
    let mut env = Env::new();
    // Only w1 at first, so both pinned results are computed there.
    env.worker(1, 2);
    let pinned = |name: &str, allowed: &[&str]| {
        (key(name), allowed.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    };
    env.on(Event::UpdateGraph {
        client: ALICE,
        tasks: vec![task("only-w1", &[], 0), task("w1-or-w2", &[], 1)],
        wanted: vec![key("only-w1"), key("w1-or-w2")],
        restrictions: vec![pinned("only-w1", &["w1"]), pinned("w1-or-w2", &["w1", "10.0.0.2:1"])],
        resources: vec![],
        priority: 0,
    });
    assert_eq!(env.computes(), [(1, "only-w1".into()), (1, "w1-or-w2".into())]);
    env.finish(1, "only-w1", 8);
    env.finish(1, "w1-or-w2", 8);
    // A reader that may run anywhere, waiting for a slot while w2 joins.
    env.submit(ALICE, vec![task("reader", &["only-w1"], 2)], &["reader"]);
    env.worker(2, 1);
    let _ = env.computes();
    let _ = env.messages_for(ALICE);

    env.on(Event::WorkerDisconnected(w(1)));
    let messages = env.messages_for(ALICE);
    let erred: Vec<(String, String)> = messages
        .iter()
        .filter_map(|m| match m {
            SchedulerToClient::KeyErred { key, failure } => {
                Some((key.name().to_string(), failure.error.to_string()))
            }
            _ => None,
        })
        .collect();
    let only = erred.iter().find(|(k, _)| k == "only-w1").map(|(_, e)| e.as_str());
    let only = only.unwrap_or_else(|| panic!("only-w1 must fail at once: {messages:?}"));
    for needle in ["w1", "10.0.0.1:1", "is gone", "no worker is allowed to hold or recompute it"] {
        assert!(only.contains(needle), "{needle:?} missing in {only:?}");
    }
    assert_eq!(env.status("only-w1"), Some(TaskStatus::Erred));
    assert!(
        !env.computes().iter().any(|(_, k)| k == "only-w1"),
        "nothing may recompute a result pinned to a dead worker"
    );
    let reader = erred.iter().find(|(k, _)| k == "reader");
    assert!(reader.is_some(), "its reader fails with it: {erred:?}");
    // A restriction that still names a live worker is obeyed: it is recomputed there.
    assert!(!erred.iter().any(|(k, _)| k == "w1-or-w2"), "{erred:?}");
    assert_eq!(env.status("w1-or-w2"), Some(TaskStatus::Processing(w(2))));
}
