//! The scheduler as a pure state machine: events in, commands out, no I/O.
//!
//! Task states follow Dask's: **released** (known, not computed or result dropped), **waiting**
//! (some inputs not in memory), **queued** (ready, waiting for a worker slot), **processing**
//! (sent to a worker), **memory** (result held by one or more workers), **erred**; a task nobody
//! can need any more is **forgotten** (removed).
//!
//! * Placement: a ready task goes to the worker that minimises the time to start it — bytes of
//!   inputs it would have to fetch (at an assumed bandwidth) plus the work already queued there
//!   (learned task durations per key prefix). Workers take `nthreads + 1` tasks, and more only
//!   while their queued work is short (tiny tasks), so input is not loaded faster than it is
//!   consumed; a task waits on the scheduler for its best worker when moving its inputs
//!   elsewhere would cost more than waiting.
//! * Memory: a result is dropped as soon as no waiting task needs it and no client holds it;
//!   a task is forgotten once nothing can need it again.
//! * Failures: when a worker leaves, its running tasks go back to the queue and results only it
//!   held are recomputed from their specs (dependents wait again). A task that was running on
//!   `allowed_failures + 1` workers that died fails with a killed-worker error naming them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::Arc;

use rask_core::{Key, TaskError, TaskFailure, WireTask};
use rask_protocol::messages::{
    ClientId, InputLocation, RecordKind, Reply, Request, SchedulerToClient, SchedulerToWorker,
    SpillDirection, TaskTiming, WorkerId, WorkerInfo, WorkerMemory,
};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// Index of a task in the scheduler's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u32);

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Known; not being computed; no result held.
    Released,
    /// Some inputs are not in memory yet.
    Waiting,
    /// Ready, waiting for a worker slot.
    Queued,
    /// Sent to a worker.
    Processing(WorkerId),
    /// The result is held by workers.
    Memory,
    /// Failed.
    Erred,
}

/// Settings of the scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How many worker deaths a task may be part of before it fails as a suspect.
    pub allowed_failures: u32,
    /// A worker silent for this long (microseconds) is removed.
    pub worker_ttl_us: u64,
    /// Network bandwidth, bytes per second, assumed for placement until workers measure it.
    pub bandwidth: f64,
    /// Assumed duration (microseconds) of a task whose prefix has no history yet.
    pub default_duration_us: f64,
    /// How much expected work (microseconds per thread) a worker may have queued beyond
    /// `nthreads + 1` tasks.
    pub queued_work_per_thread_us: f64,
    /// How many finished tasks the task stream keeps (for the dashboard); 0 keeps none.
    pub task_stream_length: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            allowed_failures: 3,
            worker_ttl_us: 30_000_000,
            bandwidth: 100e6,
            default_duration_us: 500.0,
            queued_work_per_thread_us: 5_000.0,
            task_stream_length: 100_000,
        }
    }
}

/// What happens to the scheduler.
#[derive(Debug)]
pub enum Event {
    /// A client connected.
    ClientConnected(ClientId),
    /// A client went away: its futures are released.
    ClientDisconnected(ClientId),
    /// A client submits tasks and holds futures for `wanted`. `restrictions` limit where a task
    /// may run (worker names or addresses).
    UpdateGraph {
        /// The client.
        client: ClientId,
        /// The tasks, dependencies first.
        tasks: Vec<WireTask>,
        /// The keys it wants.
        wanted: Vec<Key>,
        /// Per key, the workers (names or addresses) it may run on.
        restrictions: Vec<(Key, Vec<String>)>,
        /// Per key, the resources it holds while it runs.
        resources: Vec<(Key, Vec<(String, f64)>)>,
        /// The user's priority (higher first).
        priority: i32,
    },
    /// A client dropped futures.
    ReleaseKeys {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client cancels futures.
    Cancel {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client stored values on workers itself.
    Scattered {
        /// The client.
        client: ClientId,
        /// Keys and sizes.
        keys: Vec<(Key, u64)>,
        /// The holders.
        workers: Vec<WorkerId>,
    },
    /// A client asks something; it gets exactly one reply.
    Request {
        /// The client.
        client: ClientId,
        /// The question.
        request: Request,
    },
    /// A worker registered.
    WorkerConnected {
        /// Its id.
        worker: WorkerId,
        /// Its name.
        name: String,
        /// Its data address.
        address: String,
        /// Its threads.
        nthreads: u32,
        /// The resources it offers, such as `("GPU", 2.0)`.
        resources: Vec<(String, f64)>,
        /// The time, in microseconds.
        now_us: u64,
    },
    /// A worker's connection closed.
    WorkerDisconnected(WorkerId),
    /// Tasks started executing on a worker.
    TaskStarted {
        /// Where.
        worker: WorkerId,
        /// Which.
        keys: Vec<Key>,
    },
    /// A task finished.
    TaskFinished {
        /// Where.
        worker: WorkerId,
        /// Which.
        key: Key,
        /// The result's size.
        nbytes: u64,
        /// When and where it ran.
        timing: TaskTiming,
    },
    /// A task failed.
    TaskErred {
        /// Where.
        worker: WorkerId,
        /// Which.
        key: Key,
        /// Why.
        failure: TaskFailure,
    },
    /// A worker fetched values from a peer.
    Transferred {
        /// The worker that fetched.
        worker: WorkerId,
        /// The peer's data address.
        from: String,
        /// How many values.
        values: u32,
        /// How many bytes.
        bytes: u64,
        /// When and how long.
        timing: TaskTiming,
    },
    /// A worker wrote results to disk or read them back.
    Spilled {
        /// The worker.
        worker: WorkerId,
        /// Which way.
        direction: SpillDirection,
        /// How many values.
        values: u32,
        /// Their size in memory.
        bytes: u64,
        /// When and how long.
        timing: TaskTiming,
    },
    /// A worker answered a steal request.
    StealResponse {
        /// The worker asked.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// Whether it gave the task back.
        stolen: bool,
    },
    /// A worker holds copies of these results, fetched for its tasks.
    Replicated {
        /// Where.
        worker: WorkerId,
        /// The results.
        keys: Vec<Key>,
    },
    /// A worker could not fetch `dep` for `key`.
    MissingData {
        /// Where.
        worker: WorkerId,
        /// The task that needed it.
        key: Key,
        /// The input that could not be fetched.
        dep: Key,
    },
    /// A worker is alive.
    Heartbeat {
        /// Which.
        worker: WorkerId,
        /// The time, in microseconds.
        now_us: u64,
        /// Bytes per second its fetches achieved lately (0: nothing measured).
        bandwidth: f64,
        /// Its resident memory in bytes (0: unknown).
        memory_bytes: u64,
        /// CPU seconds its process has used (0: unknown).
        cpu_seconds: f64,
        /// Its memory limit, results in memory and on disk.
        memory: WorkerMemory,
    },
    /// Time passes (for removing silent workers).
    Tick {
        /// The time, in microseconds.
        now_us: u64,
    },
}

/// What the scheduler wants done.
#[derive(Debug)]
pub enum Command {
    /// Send to a worker.
    ToWorker(WorkerId, SchedulerToWorker),
    /// Send to a client.
    ToClient(ClientId, SchedulerToClient),
    /// Disconnect a worker the scheduler gave up on.
    CloseWorker(WorkerId),
}

struct TaskState {
    key: Key,
    /// How to compute it; `None` for scattered data, which cannot be recomputed.
    spec: Option<Arc<WireTask>>,
    status: TaskStatus,
    deps: Vec<TaskId>,
    dependents: Vec<TaskId>,
    /// Inputs not in memory (meaningful while waiting).
    waiting_on: u32,
    /// Dependents that are waiting, queued or processing: they need this result.
    needed_by: u32,
    /// Dependents not forgotten: they might need this result again.
    live_dependents: u32,
    /// Clients holding a future for it.
    wanted_by: u32,
    who_has: SmallVec<[WorkerId; 2]>,
    nbytes: u64,
    priority: Priority,
    /// Workers that died while running it.
    killed_on: Vec<WorkerId>,
    /// Whether its worker said it started (it was not merely queued there).
    executing: bool,
    /// Whether a steal request for it is out.
    stealing: bool,
    failure: Option<Arc<TaskFailure>>,
    restrictions: Option<Vec<String>>,
    /// Resources it holds while it runs.
    needs: Vec<(String, f64)>,
}

/// Where and how urgently a submission's tasks run.
struct SubmitRules {
    restrictions: Vec<(Key, Vec<String>)>,
    resources: Vec<(Key, Vec<(String, f64)>)>,
    priority: i32,
}

/// The order of ready tasks: the user's priority (negated: higher first), then first come
/// first served between submissions, then the graph's own order.
type Priority = (i64, u64, u32);

struct WorkerState {
    name: String,
    address: String,
    nthreads: u32,
    /// Tasks sent here and not finished, with the duration expected when they were sent.
    processing: FxHashMap<TaskId, f64>,
    has: HashSet<TaskId>,
    last_seen_us: u64,
    /// Sum of the expected durations of the tasks processing here.
    occupancy_us: f64,
    /// Resources offered.
    resources: Vec<(String, f64)>,
    /// Resources held by its processing tasks.
    resources_used: FxHashMap<String, f64>,
    /// Resident memory at the last heartbeat.
    memory_bytes: u64,
    /// CPU seconds at the last heartbeat.
    cpu_seconds: f64,
    /// CPU use between the last two heartbeats, in percent of one core.
    cpu_percent: f64,
    /// The bandwidth its fetches achieved lately.
    bandwidth: f64,
    /// Its memory as its last heartbeat said.
    memory: WorkerMemory,
}

impl WorkerState {
    /// Whether the worker offers `needs` at all.
    fn offers(&self, needs: &[(String, f64)]) -> bool {
        needs.iter().all(|(name, amount)| {
            self.resources.iter().any(|(n, total)| n == name && total >= amount)
        })
    }

    /// Whether `needs` are free on the worker now.
    fn has_free(&self, needs: &[(String, f64)]) -> bool {
        needs.iter().all(|(name, amount)| {
            let total = self.resources.iter().find(|(n, _)| n == name).map_or(0.0, |(_, t)| *t);
            total - self.resources_used.get(name).copied().unwrap_or(0.0) >= *amount - 1e-9
        })
    }
}

/// The distributed scheduler's state.
pub struct SchedulerState {
    config: SchedulerConfig,
    tasks: Vec<Option<TaskState>>,
    free_ids: Vec<u32>,
    by_key: FxHashMap<Key, TaskId>,
    workers: BTreeMap<WorkerId, WorkerState>,
    clients: FxHashMap<ClientId, HashSet<TaskId>>,
    ready: BinaryHeap<Reverse<(Priority, TaskId)>>,
    submissions: u64,
    /// Learned mean duration per key prefix, in microseconds.
    durations: FxHashMap<String, f64>,
    /// Counters, for benchmarks and the dashboard.
    pub stats: SchedulerStats,
    /// Bytes per second a transfer between workers is expected to achieve: the configured
    /// guess, then what workers measure.
    bandwidth: f64,
    /// The last finished tasks, oldest first (the dashboard's task stream).
    task_stream: std::collections::VecDeque<TaskRecord>,
    /// How many records were ever added to the task stream.
    task_stream_total: u64,
    /// The latest time an event told (microseconds on the scheduler's clock).
    now_us: u64,
    /// Named datasets: results kept for any client.
    datasets: FxHashMap<String, Vec<TaskId>>,
    /// Named channels: recent results, oldest first, and the position of the oldest.
    channels: FxHashMap<String, (std::collections::VecDeque<TaskId>, u64)>,
}

/// One finished task, as the task stream keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    /// The task.
    pub key: Key,
    /// Where it ran.
    pub worker: WorkerId,
    /// Its result's size.
    pub nbytes: u64,
    /// When, how long and on which thread.
    pub timing: TaskTiming,
    /// A task, a transfer or a spill.
    pub kind: RecordKind,
}

/// A worker as the dashboard shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerView {
    /// Its id.
    pub id: WorkerId,
    /// Its name.
    pub name: String,
    /// Its data address.
    pub address: String,
    /// Its execution threads.
    pub nthreads: u32,
    /// Tasks sent to it and not finished.
    pub processing: usize,
    /// Of those, the ones it said started.
    pub executing: usize,
    /// Results it holds.
    pub results: usize,
    /// Their size in bytes.
    pub bytes: u64,
    /// When it was last heard from (scheduler clock, microseconds).
    pub last_seen_us: u64,
    /// Resources it offers.
    pub resources: Vec<(String, f64)>,
    /// Its resident memory in bytes.
    pub memory_bytes: u64,
    /// Its CPU use lately, in percent of one core.
    pub cpu_percent: f64,
    /// The bandwidth its fetches achieved lately (bytes per second, 0: none measured).
    pub bandwidth: f64,
    /// Its memory limit, results in memory and on disk, as its last heartbeat said.
    pub memory: WorkerMemory,
}

/// How many tasks of one key prefix are in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixProgress {
    /// Known, not being computed, no result held.
    pub released: u64,
    /// Waiting for inputs.
    pub waiting: u64,
    /// Ready, waiting for a worker.
    pub queued: u64,
    /// On a worker.
    pub processing: u64,
    /// Result held.
    pub memory: u64,
    /// Failed.
    pub erred: u64,
}

/// What the scheduler has done, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Tasks sent to workers.
    pub assigned: u64,
    /// Times a ready task was set aside to wait for a busy worker.
    pub deferred: u64,
    /// Entries taken from the ready queue (including stale ones).
    pub ready_pops: u64,
    /// Steal requests sent to busy workers.
    pub steal_requests: u64,
    /// Tasks given back by busy workers and placed again.
    pub stolen: u64,
}

impl SchedulerState {
    /// An empty scheduler.
    pub fn new(config: SchedulerConfig) -> Self {
        let bandwidth = config.bandwidth;
        SchedulerState {
            config,
            tasks: Vec::new(),
            free_ids: Vec::new(),
            by_key: FxHashMap::default(),
            workers: BTreeMap::new(),
            clients: FxHashMap::default(),
            ready: BinaryHeap::new(),
            submissions: 0,
            durations: FxHashMap::default(),
            stats: SchedulerStats::default(),
            datasets: FxHashMap::default(),
            channels: FxHashMap::default(),
            bandwidth,
            task_stream: std::collections::VecDeque::new(),
            task_stream_total: 0,
            now_us: 0,
        }
    }

    /// Adds a record to the task stream, dropping the oldest beyond its length.
    fn record(&mut self, record: TaskRecord) {
        if self.config.task_stream_length == 0 {
            return;
        }
        if self.task_stream.len() == self.config.task_stream_length {
            self.task_stream.pop_front();
        }
        self.task_stream.push_back(record);
        self.task_stream_total += 1;
    }

    /// The latest time an event told, in microseconds on the scheduler's clock.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Task-stream records numbered `since` and later (numbers count every record ever
    /// added), and the number the next record will get: a reader keeps the number and asks
    /// again for what is new.
    pub fn task_stream_since(&self, since: u64) -> (Vec<&TaskRecord>, u64) {
        let first = self.task_stream_total - self.task_stream.len() as u64;
        let skip = since.saturating_sub(first) as usize;
        (self.task_stream.iter().skip(skip).collect(), self.task_stream_total)
    }

    /// The task graph the scheduler holds now — each task's key, status and inputs — if it has
    /// at most `limit` tasks (`None` otherwise: too large to draw).
    pub fn graph_view(&self, limit: usize) -> Option<Vec<(Key, TaskStatus, Vec<Key>)>> {
        if self.by_key.len() > limit {
            return None;
        }
        Some(
            self.tasks
                .iter()
                .flatten()
                .map(|t| {
                    (
                        t.key.clone(),
                        t.status,
                        t.deps.iter().map(|&d| self.t(d).key.clone()).collect(),
                    )
                })
                .collect(),
        )
    }

    /// The workers as the dashboard shows them.
    pub fn worker_views(&self) -> Vec<WorkerView> {
        self.workers
            .iter()
            .map(|(&id, w)| WorkerView {
                id,
                name: w.name.clone(),
                address: w.address.clone(),
                nthreads: w.nthreads,
                processing: w.processing.len(),
                executing: w.processing.keys().filter(|&&t| self.t(t).executing).count(),
                results: w.has.len(),
                bytes: w.has.iter().map(|&t| self.t(t).nbytes).sum(),
                last_seen_us: w.last_seen_us,
                resources: w.resources.clone(),
                memory_bytes: w.memory_bytes,
                cpu_percent: w.cpu_percent,
                bandwidth: w.bandwidth,
                memory: w.memory,
            })
            .collect()
    }

    /// The last finished tasks, oldest first: when, where and how long each ran.
    pub fn task_stream(&self) -> impl Iterator<Item = &TaskRecord> {
        self.task_stream.iter()
    }

    /// How many tasks of each key prefix are in each state now.
    pub fn progress(&self) -> std::collections::BTreeMap<String, PrefixProgress> {
        let mut progress: std::collections::BTreeMap<String, PrefixProgress> = Default::default();
        for task in self.tasks.iter().flatten() {
            let entry = progress.entry(task.key.prefix().to_string()).or_default();
            match task.status {
                TaskStatus::Released => entry.released += 1,
                TaskStatus::Waiting => entry.waiting += 1,
                TaskStatus::Queued => entry.queued += 1,
                TaskStatus::Processing(_) => entry.processing += 1,
                TaskStatus::Memory => entry.memory += 1,
                TaskStatus::Erred => entry.erred += 1,
            }
        }
        progress
    }

    /// The bandwidth placement assumes now, in bytes per second.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    fn answer(&mut self, client: ClientId, request: Request, out: &mut Vec<Command>) -> Reply {
        match request {
            Request::ListWorkers => Reply::Workers { workers: self.worker_infos(), tasks: self.by_key.len() as u64 },
            Request::Restart => {
                self.restart(out);
                Reply::Restarted
            }
            Request::WhoHas { keys } => Reply::WhoHas {
                entries: keys
                    .into_iter()
                    .map(|key| {
                        let holders = self
                            .who_has(&key)
                            .iter()
                            .filter_map(|w| self.workers.get(w))
                            .map(|w| w.address.clone())
                            .collect();
                        (key, holders)
                    })
                    .collect(),
            },
            Request::Publish { name, keys, overwrite } => {
                if self.datasets.contains_key(&name) && !overwrite {
                    return Reply::Refused {
                        reason: format!("a dataset named {name:?} exists already: unpublish it first, or publish with overwrite"),
                    };
                }
                let mut ids = Vec::with_capacity(keys.len());
                for key in &keys {
                    match self.by_key.get(key) {
                        Some(&id) => ids.push(id),
                        None => {
                            return Reply::Refused {
                                reason: format!("{key} is unknown to the scheduler: publish a future that is still held"),
                            }
                        }
                    }
                }
                for &id in &ids {
                    self.tm(id).wanted_by += 1;
                }
                if let Some(old) = self.datasets.insert(name, ids) {
                    for id in old {
                        self.unwant(id, out);
                    }
                }
                Reply::Done
            }
            Request::Unpublish { name } => match self.datasets.remove(&name) {
                Some(ids) => {
                    for id in ids {
                        self.unwant(id, out);
                    }
                    Reply::Done
                }
                None => Reply::Refused { reason: format!("there is no dataset named {name:?}") },
            },
            Request::GetDataset { name } => Reply::Dataset {
                keys: self.datasets.get(&name).map(|ids| ids.iter().map(|&id| self.t(id).key.clone()).collect()),
            },
            Request::ListDatasets => {
                let mut names: Vec<String> = self.datasets.keys().cloned().collect();
                names.sort();
                Reply::Datasets { names }
            }
            Request::ChannelAppend { name, key, maxlen } => {
                let Some(&id) = self.by_key.get(&key) else {
                    return Reply::Refused { reason: format!("{key} is unknown to the scheduler: append a future that is still held") };
                };
                self.tm(id).wanted_by += 1;
                let (items, first) = self.channels.entry(name).or_default();
                items.push_back(id);
                let mut dropped = Vec::new();
                while items.len() > maxlen.max(1) as usize {
                    dropped.extend(items.pop_front());
                    *first += 1;
                }
                for id in dropped {
                    self.unwant(id, out);
                }
                Reply::Done
            }
            Request::TaskStream { since } => {
                let (records, next) = self.task_stream_since(since);
                let records = records
                    .into_iter()
                    .map(|r| (r.key.clone(), r.worker, r.nbytes, r.timing, r.kind))
                    .collect();
                Reply::TaskStream { records, next }
            }
            Request::TaskSpec { key } => {
                Reply::Spec { task: self.by_key.get(&key).and_then(|&id| self.t(id).spec.clone()) }
            }
            Request::ChannelRead { name, since } => match self.channels.get(&name) {
                Some((items, first)) => {
                    let skip = since.saturating_sub(*first) as usize;
                    Reply::ChannelItems {
                        items: items.iter().skip(skip).map(|&id| self.t(id).key.clone()).collect(),
                        next: first + items.len() as u64,
                    }
                }
                None => Reply::ChannelItems { items: Vec::new(), next: 0 },
            },
        }
        .tap_client(client)
    }

    fn t(&self, id: TaskId) -> &TaskState {
        self.tasks[id.0 as usize].as_ref().expect("a live task id")
    }

    fn tm(&mut self, id: TaskId) -> &mut TaskState {
        self.tasks[id.0 as usize].as_mut().expect("a live task id")
    }

    /// The status of a key, or `None` when the scheduler does not know it (forgotten).
    pub fn status(&self, key: &Key) -> Option<TaskStatus> {
        self.by_key.get(key).map(|&id| self.t(id).status)
    }

    /// The workers holding a key's result.
    pub fn who_has(&self, key: &Key) -> Vec<WorkerId> {
        self.by_key.get(key).map(|&id| self.t(id).who_has.to_vec()).unwrap_or_default()
    }

    /// How many tasks the scheduler knows.
    pub fn num_tasks(&self) -> usize {
        self.by_key.len()
    }

    /// The tasks processing on a worker.
    pub fn processing_on(&self, worker: WorkerId) -> Vec<Key> {
        self.workers.get(&worker).map_or_else(Vec::new, |w| {
            w.processing.keys().map(|&id| self.t(id).key.clone()).collect()
        })
    }

    /// The workers, as clients see them.
    pub fn worker_infos(&self) -> Vec<WorkerInfo> {
        self.workers
            .iter()
            .map(|(&id, w)| WorkerInfo {
                id,
                name: w.name.clone(),
                address: w.address.clone(),
                nthreads: w.nthreads,
            })
            .collect()
    }

    /// Handles one event, appending the commands it causes to `out`.
    pub fn handle(&mut self, event: Event, out: &mut Vec<Command>) {
        match event {
            Event::ClientConnected(client) => {
                self.clients.entry(client).or_default();
            }
            Event::ClientDisconnected(client) => {
                let wanted: Vec<TaskId> = self
                    .clients
                    .remove(&client)
                    .map(|s| s.into_iter().collect())
                    .unwrap_or_default();
                for id in wanted {
                    self.unwant(id, out);
                }
            }
            Event::UpdateGraph { client, tasks, wanted, restrictions, resources, priority } => {
                let rules = SubmitRules { restrictions, resources, priority };
                self.update_graph(client, tasks, &wanted, rules, out)
            }
            Event::ReleaseKeys { client, keys } => self.release_keys(client, &keys, None, out),
            Event::Cancel { client, keys } => {
                self.release_keys(client, &keys, Some("cancelled by the client"), out)
            }
            Event::Scattered { client, keys, workers } => {
                self.scattered(client, keys, &workers, out)
            }
            Event::Request { client, request } => {
                let reply = self.answer(client, request, out);
                out.push(Command::ToClient(client, SchedulerToClient::Reply(reply)));
            }
            Event::WorkerConnected { worker, name, address, nthreads, resources, now_us } => {
                self.workers.insert(
                    worker,
                    WorkerState {
                        name,
                        address,
                        nthreads: nthreads.max(1),
                        processing: FxHashMap::default(),
                        has: HashSet::new(),
                        last_seen_us: now_us,
                        occupancy_us: 0.0,
                        resources,
                        resources_used: FxHashMap::default(),
                        memory_bytes: 0,
                        cpu_seconds: 0.0,
                        cpu_percent: 0.0,
                        bandwidth: 0.0,
                        memory: WorkerMemory::default(),
                    },
                );
            }
            Event::WorkerDisconnected(worker) => self.remove_worker(worker, out),
            Event::TaskStarted { worker, keys } => {
                for key in keys {
                    if let Some(&id) = self.by_key.get(&key) {
                        if self.t(id).status == TaskStatus::Processing(worker) {
                            self.tm(id).executing = true;
                        }
                    }
                }
            }
            Event::Transferred { worker, from, values, bytes, timing } => {
                let key = Key::new(format!("transfer of {values} values from {from}").as_str());
                let kind = RecordKind::Transfer;
                self.record(TaskRecord { key, worker, nbytes: bytes, timing, kind });
            }
            Event::Spilled { worker, direction, values, bytes, timing } => {
                let what = match direction {
                    SpillDirection::ToDisk => format!("spill of {values} values to disk"),
                    SpillDirection::FromDisk => format!("read of {values} values from disk"),
                };
                let kind = RecordKind::Spill(direction);
                self.record(TaskRecord {
                    key: Key::new(what.as_str()),
                    worker,
                    nbytes: bytes,
                    timing,
                    kind,
                });
            }
            Event::StealResponse { worker, key, stolen } => {
                if let Some(&id) = self.by_key.get(&key) {
                    if self.t(id).status == TaskStatus::Processing(worker) && self.t(id).stealing {
                        self.tm(id).stealing = false;
                        if stolen {
                            self.unassign(id, worker);
                            self.stats.stolen += 1;
                            let task = self.tm(id);
                            task.status = TaskStatus::Queued;
                            let priority = task.priority;
                            self.ready.push(Reverse((priority, id)));
                        }
                    }
                }
            }
            Event::TaskFinished { worker, key, nbytes, timing } => {
                self.task_finished(worker, &key, nbytes, timing, out)
            }
            Event::TaskErred { worker, key, failure } => {
                self.task_erred(worker, &key, failure, out)
            }
            Event::Replicated { worker, keys } => self.replicated(worker, keys, out),
            Event::MissingData { worker, key, dep } => self.missing_data(worker, &key, &dep, out),
            Event::Heartbeat { worker, now_us, bandwidth, memory_bytes, cpu_seconds, memory } => {
                self.now_us = self.now_us.max(now_us);
                if let Some(w) = self.workers.get_mut(&worker) {
                    let wall = now_us.saturating_sub(w.last_seen_us) as f64 / 1e6;
                    if wall > 0.0 && w.cpu_seconds > 0.0 {
                        w.cpu_percent = ((cpu_seconds - w.cpu_seconds) / wall * 100.0).max(0.0);
                    }
                    w.last_seen_us = now_us;
                    w.memory_bytes = memory_bytes;
                    w.memory = memory;
                    w.cpu_seconds = cpu_seconds;
                    w.bandwidth = bandwidth;
                }
                if bandwidth > 0.0 {
                    // Placement uses what transfers really achieve, starting from the
                    // configured guess.
                    self.bandwidth = 0.8 * self.bandwidth + 0.2 * bandwidth;
                }
            }
            Event::Tick { now_us } => {
                self.now_us = self.now_us.max(now_us);
                let ttl = self.config.worker_ttl_us;
                let silent: Vec<WorkerId> = self
                    .workers
                    .iter()
                    .filter(|(_, w)| now_us.saturating_sub(w.last_seen_us) > ttl)
                    .map(|(&id, _)| id)
                    .collect();
                for worker in silent {
                    out.push(Command::CloseWorker(worker));
                    self.remove_worker(worker, out);
                }
            }
        }
        self.schedule(out);
    }

    fn new_task(&mut self, key: Key, spec: Option<Arc<WireTask>>, priority: Priority) -> TaskId {
        let state = TaskState {
            key: key.clone(),
            spec,
            status: TaskStatus::Released,
            deps: Vec::new(),
            dependents: Vec::new(),
            waiting_on: 0,
            needed_by: 0,
            live_dependents: 0,
            wanted_by: 0,
            who_has: SmallVec::new(),
            nbytes: 0,
            priority,
            killed_on: Vec::new(),
            executing: false,
            stealing: false,
            failure: None,
            restrictions: None,
            needs: Vec::new(),
        };
        let id = match self.free_ids.pop() {
            Some(slot) => {
                self.tasks[slot as usize] = Some(state);
                TaskId(slot)
            }
            None => {
                self.tasks.push(Some(state));
                TaskId(self.tasks.len() as u32 - 1)
            }
        };
        self.by_key.insert(key, id);
        id
    }

    fn update_graph(
        &mut self,
        client: ClientId,
        tasks: Vec<WireTask>,
        wanted: &[Key],
        rules: SubmitRules,
        out: &mut Vec<Command>,
    ) {
        let SubmitRules { restrictions, resources, priority: user_priority } = rules;
        self.submissions += 1;
        let submission = self.submissions;
        for wire in tasks {
            if let Some(&id) = self.by_key.get(&wire.key) {
                let task = self.tm(id);
                if task.spec.is_none() && task.status != TaskStatus::Memory {
                    task.spec = Some(Arc::new(wire));
                }
                continue;
            }
            let mut deps = Vec::with_capacity(wire.deps.len());
            let mut missing = None;
            for dep in &wire.deps {
                match self.by_key.get(dep) {
                    Some(&d) => deps.push(d),
                    None => missing = Some(dep.clone()),
                }
            }
            let key = wire.key.clone();
            let priority = (-i64::from(user_priority), submission, wire.priority);
            let id = self.new_task(key.clone(), Some(Arc::new(wire)), priority);
            for &d in &deps {
                let dep = self.tm(d);
                dep.dependents.push(id);
                dep.live_dependents += 1;
            }
            self.tm(id).deps = deps;
            if let Some(dep) = missing {
                let failure = TaskFailure {
                    key,
                    function: "(scheduler)".into(),
                    attempts: 0,
                    error: TaskError::msg(format!(
                        "its input {dep} is unknown to the scheduler: it was released, or never submitted; \
                         keep a future for it, or submit the graph that computes it together with this one"
                    )),
                };
                self.fail(id, &Arc::new(failure), out);
            }
        }
        for (key, allowed) in restrictions {
            if let Some(&id) = self.by_key.get(&key) {
                self.tm(id).restrictions = Some(allowed);
            }
        }
        for (key, needs) in resources {
            if let Some(&id) = self.by_key.get(&key) {
                self.tm(id).needs = needs;
            }
        }
        let wants = self.clients.entry(client).or_default();
        let mut new_wants = Vec::new();
        for key in wanted {
            if let Some(&id) = self.by_key.get(key) {
                if wants.insert(id) {
                    new_wants.push(id);
                }
            }
        }
        for &id in &new_wants {
            self.tm(id).wanted_by += 1;
        }
        for key in wanted {
            let Some(&id) = self.by_key.get(key) else {
                out.push(Command::ToClient(
                    client,
                    SchedulerToClient::KeyCancelled {
                        key: key.clone(),
                        reason: "no task of the submitted graph has this key".into(),
                    },
                ));
                continue;
            };
            self.activate(id, out);
            let task = self.t(id);
            match task.status {
                TaskStatus::Memory => {
                    out.push(Command::ToClient(client, self.in_memory_message(id)))
                }
                TaskStatus::Erred => out.push(Command::ToClient(
                    client,
                    SchedulerToClient::KeyErred {
                        key: key.clone(),
                        failure: task
                            .failure
                            .as_deref()
                            .cloned()
                            .unwrap_or_else(|| unknown_failure(key)),
                    },
                )),
                _ => {}
            }
        }
    }

    fn in_memory_message(&self, id: TaskId) -> SchedulerToClient {
        let task = self.t(id);
        SchedulerToClient::KeyInMemory {
            key: task.key.clone(),
            workers: task
                .who_has
                .iter()
                .filter_map(|w| self.workers.get(w))
                .map(|w| w.address.clone())
                .collect(),
        }
    }

    /// Makes sure a task is computed: released tasks (and released inputs they need) become
    /// waiting or queued again.
    fn activate(&mut self, root: TaskId, out: &mut Vec<Command>) {
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if self.t(id).status != TaskStatus::Released {
                continue;
            }
            if self.t(id).spec.is_none() {
                let key = self.t(id).key.clone();
                let failure = TaskFailure {
                    key: key.clone(),
                    function: "(scatter)".into(),
                    attempts: 0,
                    error: TaskError::msg(format!(
                        "the scattered value {key} was lost with the workers that held it and cannot be recomputed; scatter it again"
                    )),
                };
                self.fail(id, &Arc::new(failure), out);
                continue;
            }
            let deps = self.t(id).deps.clone();
            if let Some(failure) = deps.iter().find_map(|&d| self.t(d).failure.clone()) {
                self.fail(id, &failure, out);
                continue;
            }
            let mut waiting_on = 0;
            for &d in &deps {
                let dep = self.tm(d);
                dep.needed_by += 1;
                if dep.status != TaskStatus::Memory {
                    waiting_on += 1;
                    if dep.status == TaskStatus::Released {
                        stack.push(d);
                    }
                }
            }
            let task = self.tm(id);
            task.waiting_on = waiting_on;
            if waiting_on == 0 {
                task.status = TaskStatus::Queued;
                let priority = task.priority;
                self.ready.push(Reverse((priority, id)));
            } else {
                task.status = TaskStatus::Waiting;
            }
        }
    }

    /// A task leaves the waiting/queued/processing states: its inputs are needed once less,
    /// and an input nobody needs any more is dropped (its result freed, or its computation
    /// stopped).
    fn stop_needing_inputs(&mut self, id: TaskId, out: &mut Vec<Command>) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let deps = self.t(id).deps.clone();
            for d in deps {
                let dep = self.tm(d);
                dep.needed_by = dep.needed_by.saturating_sub(1);
                if dep.needed_by > 0 || dep.wanted_by > 0 {
                    continue;
                }
                match dep.status {
                    TaskStatus::Memory => self.release_result(d, out),
                    status if Self::is_active(status) => {
                        if let TaskStatus::Processing(w) = status {
                            self.unassign(d, w);
                            out.push(Command::ToWorker(
                                w,
                                SchedulerToWorker::Free { keys: vec![self.t(d).key.clone()] },
                            ));
                        }
                        self.tm(d).status = TaskStatus::Released;
                        stack.push(d);
                    }
                    _ => {}
                }
            }
        }
    }

    fn is_active(status: TaskStatus) -> bool {
        matches!(status, TaskStatus::Waiting | TaskStatus::Queued | TaskStatus::Processing(_))
    }

    /// Drops a result nobody needs; forgets the task if nothing can need it again.
    fn release_result(&mut self, id: TaskId, out: &mut Vec<Command>) {
        let task = self.tm(id);
        if task.status == TaskStatus::Memory {
            task.status = TaskStatus::Released;
            let holders = std::mem::take(&mut task.who_has);
            let key = task.key.clone();
            for w in holders {
                if let Some(worker) = self.workers.get_mut(&w) {
                    worker.has.remove(&id);
                }
                out.push(Command::ToWorker(w, SchedulerToWorker::Free { keys: vec![key.clone()] }));
            }
        }
        self.maybe_forget(id, out);
    }

    fn maybe_forget(&mut self, root: TaskId, out: &mut Vec<Command>) {
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            let Some(task) = self.tasks[id.0 as usize].as_ref() else { continue };
            let forgettable = task.wanted_by == 0
                && task.needed_by == 0
                && task.live_dependents == 0
                && !Self::is_active(task.status);
            if !forgettable {
                continue;
            }
            if task.status == TaskStatus::Memory {
                self.release_result(id, out); // drops the data, then comes back here
                continue;
            }
            let task = self.tasks[id.0 as usize].take().expect("checked above");
            self.by_key.remove(&task.key);
            self.free_ids.push(id.0);
            for d in task.deps {
                if let Some(dep) = self.tasks[d.0 as usize].as_mut() {
                    dep.live_dependents = dep.live_dependents.saturating_sub(1);
                    // A forgotten id is reused: a result computed again must not find it
                    // among its dependents.
                    dep.dependents.retain(|&dt| dt != id);
                    stack.push(d);
                }
            }
        }
    }

    fn unwant(&mut self, id: TaskId, out: &mut Vec<Command>) {
        let Some(task) = self.tasks[id.0 as usize].as_mut() else { return };
        task.wanted_by = task.wanted_by.saturating_sub(1);
        if task.wanted_by > 0 || task.needed_by > 0 {
            return;
        }
        match task.status {
            TaskStatus::Memory => self.release_result(id, out),
            status if Self::is_active(status) => {
                // Nobody wants it any more: stop computing it.
                if let TaskStatus::Processing(w) = status {
                    self.unassign(id, w);
                    out.push(Command::ToWorker(
                        w,
                        SchedulerToWorker::Free { keys: vec![self.t(id).key.clone()] },
                    ));
                }
                self.tm(id).status = TaskStatus::Released;
                self.stop_needing_inputs(id, out);
                self.maybe_forget(id, out);
            }
            _ => self.maybe_forget(id, out),
        }
    }

    fn release_keys(
        &mut self,
        client: ClientId,
        keys: &[Key],
        cancel: Option<&str>,
        out: &mut Vec<Command>,
    ) {
        for key in keys {
            let Some(&id) = self.by_key.get(key) else { continue };
            let held = self.clients.get_mut(&client).is_some_and(|wants| wants.remove(&id));
            if held {
                self.unwant(id, out);
                if let Some(reason) = cancel {
                    out.push(Command::ToClient(
                        client,
                        SchedulerToClient::KeyCancelled { key: key.clone(), reason: reason.into() },
                    ));
                }
            }
        }
    }

    fn scattered(
        &mut self,
        client: ClientId,
        keys: Vec<(Key, u64)>,
        workers: &[WorkerId],
        out: &mut Vec<Command>,
    ) {
        let submission = {
            self.submissions += 1;
            self.submissions
        };
        for (key, nbytes) in keys {
            let id = match self.by_key.get(&key) {
                Some(&id) => id,
                None => self.new_task(key.clone(), None, (0, submission, 0)),
            };
            let live: Vec<WorkerId> =
                workers.iter().copied().filter(|w| self.workers.contains_key(w)).collect();
            for &w in &live {
                self.workers.get_mut(&w).expect("filtered").has.insert(id);
            }
            let task = self.tm(id);
            task.status = TaskStatus::Memory;
            task.nbytes = nbytes;
            task.who_has = live.into_iter().collect();
            if self.clients.entry(client).or_default().insert(id) {
                self.tm(id).wanted_by += 1;
            }
            out.push(Command::ToClient(client, self.in_memory_message(id)));
        }
    }

    fn restart(&mut self, out: &mut Vec<Command>) {
        for (&c, wants) in &self.clients {
            for &id in wants {
                out.push(Command::ToClient(
                    c,
                    SchedulerToClient::KeyCancelled {
                        key: self.t(id).key.clone(),
                        reason: "the cluster was restarted".into(),
                    },
                ));
            }
        }
        for wants in self.clients.values_mut() {
            wants.clear();
        }
        for (&w, worker) in &mut self.workers {
            worker.processing.clear();
            worker.has.clear();
            worker.occupancy_us = 0.0;
            out.push(Command::ToWorker(w, SchedulerToWorker::Clear));
        }
        self.tasks.clear();
        self.free_ids.clear();
        self.by_key.clear();
        self.ready.clear();
        self.datasets.clear();
        self.channels.clear();
    }

    fn expected_duration(&self, id: TaskId) -> f64 {
        self.durations
            .get(self.t(id).key.prefix())
            .copied()
            .unwrap_or(self.config.default_duration_us)
    }

    fn unassign(&mut self, id: TaskId, worker: WorkerId) {
        self.tm(id).executing = false;
        self.tm(id).stealing = false;
        let needs = std::mem::take(&mut self.tm(id).needs);
        if let Some(w) = self.workers.get_mut(&worker) {
            if let Some(expected) = w.processing.remove(&id) {
                w.occupancy_us = (w.occupancy_us - expected).max(0.0);
                for (name, amount) in &needs {
                    if let Some(used) = w.resources_used.get_mut(name) {
                        *used = (*used - amount).max(0.0);
                    }
                }
            }
        }
        self.tm(id).needs = needs;
    }

    fn task_finished(
        &mut self,
        worker: WorkerId,
        key: &Key,
        nbytes: u64,
        timing: TaskTiming,
        out: &mut Vec<Command>,
    ) {
        let Some(&id) = self.by_key.get(key) else {
            out.push(Command::ToWorker(
                worker,
                SchedulerToWorker::Free { keys: vec![key.clone()] },
            ));
            return;
        };
        match self.t(id).status {
            TaskStatus::Processing(w) if w == worker => {}
            TaskStatus::Memory => {
                // Computed twice (it was re-sent after a false alarm): one more holder.
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.has.insert(id);
                    self.tm(id).who_has.push(worker);
                }
                return;
            }
            _ => {
                // Stale: cancelled or moved meanwhile.
                out.push(Command::ToWorker(
                    worker,
                    SchedulerToWorker::Free { keys: vec![key.clone()] },
                ));
                return;
            }
        }
        self.unassign(id, worker);
        let duration = timing.duration_us as f64;
        match self.durations.get_mut(key.prefix()) {
            Some(mean) => *mean = 0.8 * *mean + 0.2 * duration,
            None => {
                self.durations.insert(key.prefix().to_string(), duration);
            }
        }
        let kind = RecordKind::Task;
        self.record(TaskRecord { key: key.clone(), worker, nbytes, timing, kind });
        if let Some(w) = self.workers.get_mut(&worker) {
            w.has.insert(id);
        }
        let task = self.tm(id);
        task.status = TaskStatus::Memory;
        task.nbytes = nbytes;
        task.who_has = SmallVec::from_elem(worker, 1);
        task.killed_on.clear();
        let dependents = task.dependents.clone();
        for dt in dependents {
            let dependent = self.tm(dt);
            if dependent.status == TaskStatus::Waiting {
                dependent.waiting_on -= 1;
                if dependent.waiting_on == 0 {
                    dependent.status = TaskStatus::Queued;
                    let priority = dependent.priority;
                    self.ready.push(Reverse((priority, dt)));
                }
            }
        }
        self.notify_clients(id, out);
        self.stop_needing_inputs(id, out);
        let task = self.t(id);
        if task.wanted_by == 0 && task.needed_by == 0 {
            self.release_result(id, out);
        }
    }

    fn notify_clients(&self, id: TaskId, out: &mut Vec<Command>) {
        if self.t(id).wanted_by == 0 {
            return;
        }
        for (&client, wants) in &self.clients {
            if wants.contains(&id) {
                let message = match self.t(id).status {
                    TaskStatus::Erred => SchedulerToClient::KeyErred {
                        key: self.t(id).key.clone(),
                        failure: self
                            .t(id)
                            .failure
                            .as_deref()
                            .cloned()
                            .unwrap_or_else(|| unknown_failure(&self.t(id).key)),
                    },
                    _ => self.in_memory_message(id),
                };
                out.push(Command::ToClient(client, message));
            }
        }
    }

    fn task_erred(
        &mut self,
        worker: WorkerId,
        key: &Key,
        failure: TaskFailure,
        out: &mut Vec<Command>,
    ) {
        let Some(&id) = self.by_key.get(key) else { return };
        if self.t(id).status != TaskStatus::Processing(worker) {
            return;
        }
        self.unassign(id, worker);
        self.fail(id, &Arc::new(failure), out);
    }

    /// Marks a task and everything waiting on it as failed with `failure`.
    fn fail(&mut self, root: TaskId, failure: &Arc<TaskFailure>, out: &mut Vec<Command>) {
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            let status = self.t(id).status;
            if matches!(status, TaskStatus::Erred | TaskStatus::Memory) {
                continue;
            }
            if let TaskStatus::Processing(w) = status {
                self.unassign(id, w);
                out.push(Command::ToWorker(
                    w,
                    SchedulerToWorker::Free { keys: vec![self.t(id).key.clone()] },
                ));
            }
            let was_active = Self::is_active(status);
            let task = self.tm(id);
            task.status = TaskStatus::Erred;
            task.failure = Some(failure.clone());
            let dependents = task.dependents.clone();
            if was_active {
                self.stop_needing_inputs(id, out);
            }
            self.notify_clients(id, out);
            for dt in dependents {
                if Self::is_active(self.t(dt).status) {
                    stack.push(dt);
                }
            }
        }
    }

    /// A worker fetched copies of results: it is one more holder of those still in memory
    /// (later readers are placed there, and the copies are freed with the results). A copy of
    /// a result released meanwhile is freed at once — unless the result is being computed
    /// again on that very worker, whose new result replaces the copy.
    fn replicated(&mut self, worker: WorkerId, keys: Vec<Key>, out: &mut Vec<Command>) {
        if !self.workers.contains_key(&worker) {
            return;
        }
        let mut stale = Vec::new();
        for key in keys {
            let Some(&id) = self.by_key.get(&key) else {
                stale.push(key);
                continue;
            };
            match self.t(id).status {
                TaskStatus::Memory => {
                    if !self.t(id).who_has.contains(&worker) {
                        self.tm(id).who_has.push(worker);
                        self.workers.get_mut(&worker).expect("checked above").has.insert(id);
                    }
                }
                TaskStatus::Processing(w) if w == worker => {}
                _ => stale.push(key),
            }
        }
        if !stale.is_empty() {
            out.push(Command::ToWorker(worker, SchedulerToWorker::Free { keys: stale }));
        }
    }

    fn missing_data(&mut self, worker: WorkerId, key: &Key, dep: &Key, out: &mut Vec<Command>) {
        // The worker's view of who holds `dep` was stale: drop those holders we no longer
        // trust only if they are gone; reschedule the task.
        let (Some(&id), Some(&d)) = (self.by_key.get(key), self.by_key.get(dep)) else { return };
        if self.t(id).status != TaskStatus::Processing(worker) {
            return;
        }
        // The worker itself does not hold `dep`, whatever it said before (a copy it reported
        // and lost): it is no holder.
        if self.t(d).who_has.contains(&worker) {
            self.tm(d).who_has.retain(|w| *w != worker);
            if let Some(state) = self.workers.get_mut(&worker) {
                state.has.remove(&d);
            }
        }
        self.unassign(id, worker);
        out.push(Command::ToWorker(worker, SchedulerToWorker::Free { keys: vec![key.clone()] }));
        let dep_task = self.t(d);
        let alive = dep_task.who_has.iter().any(|w| self.workers.contains_key(w));
        let task = self.tm(id);
        if alive {
            task.status = TaskStatus::Queued;
            let priority = task.priority;
            self.ready.push(Reverse((priority, id)));
        } else {
            task.status = TaskStatus::Waiting;
            task.waiting_on = 1;
            self.tm(d).who_has.clear();
            self.tm(d).status = TaskStatus::Released;
            self.activate(d, out);
        }
    }

    fn remove_worker(&mut self, worker: WorkerId, out: &mut Vec<Command>) {
        let Some(state) = self.workers.remove(&worker) else { return };
        // Results only this worker held are lost: their readers wait again, and the results are
        // recomputed if anybody still needs them.
        let mut lost = Vec::new();
        for &id in &state.has {
            let task = self.tm(id);
            task.who_has.retain(|w| *w != worker);
            if task.who_has.is_empty() && task.status == TaskStatus::Memory {
                task.status = TaskStatus::Released;
                lost.push(id);
            }
        }
        let mut affected = Vec::new();
        for &id in &lost {
            affected.extend(self.t(id).dependents.iter().copied());
        }
        for dt in affected {
            let status = self.t(dt).status;
            if !matches!(
                status,
                TaskStatus::Waiting | TaskStatus::Queued | TaskStatus::Processing(_)
            ) {
                continue;
            }
            if let TaskStatus::Processing(w) = status {
                if w != worker {
                    self.unassign(dt, w);
                    out.push(Command::ToWorker(
                        w,
                        SchedulerToWorker::Free { keys: vec![self.t(dt).key.clone()] },
                    ));
                }
            }
            let missing =
                self.t(dt).deps.iter().filter(|&&d| self.t(d).status != TaskStatus::Memory).count()
                    as u32;
            let dependent = self.tm(dt);
            dependent.waiting_on = missing;
            if missing > 0 {
                dependent.status = TaskStatus::Waiting;
            }
        }
        // Tasks that were running there go back to the queue, unless they keep killing workers.
        let mut processing: Vec<TaskId> = state.processing.keys().copied().collect();
        processing.sort_by_key(|&id| self.t(id).priority);
        let allowed_failures = self.config.allowed_failures;
        for id in processing {
            let task = self.tm(id);
            // Only tasks that were running are suspects; queued ones simply go elsewhere.
            if std::mem::take(&mut task.executing) {
                task.killed_on.push(worker);
            }
            if task.killed_on.len() as u32 > allowed_failures {
                let names: Vec<String> = task.killed_on.iter().map(|w| w.to_string()).collect();
                let failure = TaskFailure {
                    key: task.key.clone(),
                    function: task.spec.as_ref().and_then(|s| s.ops.last()).map_or_else(String::new, |op| op.func.clone()),
                    attempts: task.killed_on.len() as u32,
                    error: TaskError::msg(format!(
                        "KilledWorker: the task was running on {} workers that died ({}); it is probably what kills \
                         them (allowed_failures = {}); run it locally to debug it",
                        names.len(),
                        names.join(", "),
                        allowed_failures
                    )),
                };
                if task.status == TaskStatus::Processing(worker) {
                    task.status = TaskStatus::Queued; // still active, but on no worker
                }
                self.fail(id, &Arc::new(failure), out);
            } else if task.status == TaskStatus::Processing(worker) {
                task.status = TaskStatus::Queued;
                let priority = task.priority;
                self.ready.push(Reverse((priority, id)));
            }
        }
        for id in lost {
            let task = self.t(id);
            if task.wanted_by > 0 || task.needed_by > 0 {
                self.activate(id, out);
            } else {
                self.maybe_forget(id, out);
            }
        }
        self.fail_pinned_to_gone(&state.name, &state.address, out);
    }

    /// Tasks restricted to workers of which none is left, the last having just gone, can
    /// never run: they fail now with an error naming that worker (and their readers with
    /// them), instead of waiting for ever while a client's `result()` times out on a dead
    /// address. Tasks whose restrictions still name a live worker are simply recomputed there.
    /// This scans every task, which is fine: workers leave rarely.
    fn fail_pinned_to_gone(&mut self, name: &str, address: &str, out: &mut Vec<Command>) {
        let matches = |allowed: &[String], name: &str, address: &str| {
            allowed.iter().any(|a| a == name || a == address)
        };
        let stranded: Vec<TaskId> = self
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, task)| {
                let task = task.as_ref()?;
                let allowed = task.restrictions.as_deref()?;
                let waits = matches!(task.status, TaskStatus::Waiting | TaskStatus::Queued);
                let stranded = waits
                    && matches(allowed, name, address)
                    && !self.workers.values().any(|w| matches(allowed, &w.name, &w.address));
                stranded.then_some(TaskId(i as u32))
            })
            .collect();
        for id in stranded {
            if !matches!(self.t(id).status, TaskStatus::Waiting | TaskStatus::Queued) {
                continue; // failed meanwhile, as a reader of an earlier one
            }
            let task = self.t(id);
            let failure = TaskFailure {
                key: task.key.clone(),
                function: task
                    .spec
                    .as_ref()
                    .and_then(|s| s.ops.last())
                    .map_or_else(String::new, |op| op.func.clone()),
                attempts: 0,
                error: TaskError::msg(format!(
                    "{} may run only on {:?}, and the only such worker, {name} at {address}, is \
                     gone: no worker is allowed to hold or recompute it; submit it again without \
                     the restriction, or to a live worker (or once a worker of that name is back)",
                    task.key,
                    task.restrictions.as_deref().unwrap_or_default(),
                )),
            };
            self.fail(id, &Arc::new(failure), out);
        }
    }

    /// Hands ready tasks to workers with free slots, best priority first.
    fn schedule(&mut self, out: &mut Vec<Command>) {
        if self.workers.is_empty() {
            return;
        }
        // Tasks that wait for a busy worker (their inputs are there, or they are restricted to
        // it) are set aside; past a bound, the rest waits for the next event rather than the
        // scheduler scanning a long queue on every event.
        const MAX_DEFERRED: usize = 64;
        let mut deferred = Vec::new();
        while let Some(&Reverse((priority, id))) = self.ready.peek() {
            let queued_work_us = self.config.queued_work_per_thread_us;
            if deferred.len() >= MAX_DEFERRED
                || !self.workers.values().any(|w| has_room(w, queued_work_us))
            {
                break;
            }
            self.ready.pop();
            self.stats.ready_pops += 1;
            let Some(task) = self.tasks[id.0 as usize].as_ref() else { continue };
            if task.status != TaskStatus::Queued || task.priority != priority {
                continue; // stale entry
            }
            match self.choose_worker(id) {
                Some(worker) => self.assign(id, worker, out),
                None => {
                    self.stats.deferred += 1;
                    deferred.push(Reverse((priority, id)));
                }
            }
        }
        self.ready.extend(deferred);
        self.steal(out);
    }

    /// Work stealing: when a worker is idle after placement (nothing ready can go there), ask
    /// busy workers to give back
    /// tasks that have not started, where running them on the idle worker (fetching their
    /// inputs) is expected to finish sooner than waiting. Only tasks that take a while are worth
    /// it; tasks restricted away from the idle worker never move.
    fn steal(&mut self, out: &mut Vec<Command>) {
        /// Tasks expected to take less than this are not worth a steal round trip.
        const MIN_STEAL_US: f64 = 1_000.0;
        let idle: Vec<(WorkerId, usize)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.processing.len() < w.nthreads as usize)
            .map(|(&id, w)| (id, w.nthreads as usize - w.processing.len()))
            .collect();
        for (thief, slots) in idle {
            let mut wanted = slots;
            // Victims: the busiest workers first.
            let mut victims: Vec<(f64, WorkerId)> = self
                .workers
                .iter()
                .filter(|(&id, w)| id != thief && w.processing.len() > w.nthreads as usize)
                .map(|(&id, w)| (w.occupancy_us / f64::from(w.nthreads), id))
                .collect();
            victims.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (wait_us, victim) in victims {
                if wanted == 0 {
                    break;
                }
                let candidates: Vec<TaskId> =
                    self.workers[&victim].processing.keys().copied().collect();
                for id in candidates {
                    if wanted == 0 {
                        break;
                    }
                    let task = self.t(id);
                    if task.executing || task.stealing {
                        continue;
                    }
                    let expected = self.expected_duration(id);
                    let thief_state = &self.workers[&thief];
                    let allowed = task.restrictions.as_ref().is_none_or(|a| {
                        a.iter().any(|n| *n == thief_state.name || *n == thief_state.address)
                    });
                    if expected < MIN_STEAL_US || !allowed || !thief_state.offers(&task.needs) {
                        continue;
                    }
                    let missing_bytes: u64 = task
                        .deps
                        .iter()
                        .map(|&d| self.t(d))
                        .filter(|dep| !dep.who_has.contains(&thief))
                        .map(|dep| dep.nbytes)
                        .sum();
                    let transfer_us = missing_bytes as f64 / self.bandwidth * 1e6;
                    if transfer_us >= wait_us {
                        continue;
                    }
                    let key = task.key.clone();
                    self.tm(id).stealing = true;
                    self.stats.steal_requests += 1;
                    out.push(Command::ToWorker(victim, SchedulerToWorker::Steal { key }));
                    wanted -= 1;
                }
            }
        }
    }

    /// The worker where the task can start soonest. A busy worker wins only through its data:
    /// the task then waits on the scheduler (`None`) when fetching its inputs elsewhere would
    /// take longer than waiting for that worker; otherwise the best worker with room takes it.
    fn choose_worker(&self, id: TaskId) -> Option<WorkerId> {
        let task = self.t(id);
        let expected = self.expected_duration(id);
        let queued_work_us = self.config.queued_work_per_thread_us;
        // (cost, transfer, worker) of the best worker overall and of the best one with room.
        let mut best: Option<(f64, f64, WorkerId, bool)> = None;
        let mut best_free: Option<(f64, f64, WorkerId)> = None;
        for (&wid, worker) in &self.workers {
            if let Some(allowed) = &task.restrictions {
                if !allowed.iter().any(|a| *a == worker.name || *a == worker.address) {
                    continue;
                }
            }
            if !worker.offers(&task.needs) {
                continue;
            }
            let missing_bytes: u64 = task
                .deps
                .iter()
                .map(|&d| self.t(d))
                .filter(|dep| !dep.who_has.contains(&wid))
                .map(|dep| dep.nbytes)
                .sum();
            let transfer_us = missing_bytes as f64 / self.bandwidth * 1e6;
            let wait_us = worker.occupancy_us / f64::from(worker.nthreads);
            let free = has_room(worker, queued_work_us) && worker.has_free(&task.needs);
            let cost = transfer_us + wait_us + if free { 0.0 } else { expected };
            if best.is_none_or(|(c, ..)| cost < c) {
                best = Some((cost, transfer_us, wid, free));
            }
            if free && best_free.is_none_or(|(c, ..)| cost < c) {
                best_free = Some((cost, transfer_us, wid));
            }
        }
        match (best, best_free) {
            (Some((_, _, wid, true)), _) => Some(wid),
            (Some((_, busy_transfer, _, false)), Some((_, free_transfer, wid))) => {
                (busy_transfer >= free_transfer).then_some(wid)
            }
            _ => None,
        }
    }

    fn assign(&mut self, id: TaskId, worker: WorkerId, out: &mut Vec<Command>) {
        let expected = self.expected_duration(id);
        let task = self.t(id);
        let who_has: Vec<InputLocation> = task
            .deps
            .iter()
            .map(|&d| self.t(d))
            .filter(|dep| !dep.who_has.contains(&worker))
            .map(|dep| {
                let holders = dep
                    .who_has
                    .iter()
                    .filter_map(|w| self.workers.get(w))
                    .map(|w| w.address.clone())
                    .collect();
                InputLocation { key: dep.key.clone(), holders, nbytes: dep.nbytes }
            })
            .collect();
        let spec = task.spec.clone().expect("queued tasks have a spec");
        self.stats.assigned += 1;
        let needs = self.t(id).needs.clone();
        let w = self.workers.get_mut(&worker).expect("chosen among live workers");
        for (name, amount) in needs {
            *w.resources_used.entry(name).or_insert(0.0) += amount;
        }
        w.processing.insert(id, expected);
        w.occupancy_us += expected;
        self.tm(id).status = TaskStatus::Processing(worker);
        out.push(Command::ToWorker(worker, SchedulerToWorker::Compute { task: spec, who_has }));
    }

    /// Checks the invariants that tie the tables together; panics with a description if one
    /// does not hold. For tests.
    pub fn check_invariants(&self) {
        for (slot, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            let id = TaskId(slot as u32);
            assert_eq!(self.by_key.get(&task.key), Some(&id), "{} is indexed", task.key);
            match task.status {
                TaskStatus::Processing(w) => {
                    let worker = self
                        .workers
                        .get(&w)
                        .unwrap_or_else(|| panic!("{} processing on a gone worker", task.key));
                    assert!(
                        worker.processing.contains_key(&id),
                        "{} is in its worker's processing set",
                        task.key
                    );
                }
                TaskStatus::Memory => {
                    assert!(!task.who_has.is_empty(), "{} in memory has holders", task.key);
                    for w in &task.who_has {
                        assert!(self.workers[w].has.contains(&id), "{} is in {w}'s data", task.key);
                    }
                }
                TaskStatus::Waiting => {
                    let missing = task
                        .deps
                        .iter()
                        .filter(|&&d| self.t(d).status != TaskStatus::Memory)
                        .count() as u32;
                    assert_eq!(
                        task.waiting_on, missing,
                        "{} waits on {} inputs",
                        task.key, missing
                    );
                    assert!(missing > 0, "{} waits for nothing", task.key);
                }
                TaskStatus::Queued => {
                    assert!(
                        task.deps.iter().all(|&d| self.t(d).status == TaskStatus::Memory),
                        "{} queued with inputs missing",
                        task.key
                    );
                }
                TaskStatus::Released | TaskStatus::Erred => {}
            }
            let needed =
                task.dependents.iter().filter(|&&d| Self::is_active(self.t(d).status)).count()
                    as u32;
            assert_eq!(
                task.needed_by, needed,
                "{} is needed by {} active dependents",
                task.key, needed
            );
        }
        for (w, worker) in &self.workers {
            for id in worker.processing.keys() {
                assert_eq!(self.t(*id).status, TaskStatus::Processing(*w));
            }
            let expected: f64 = worker.processing.values().sum();
            assert!(
                (worker.occupancy_us - expected).abs() < 1e-3 * expected.max(1.0),
                "{w}'s occupancy adds up"
            );
            let most =
                (worker.nthreads as usize * MAX_TASKS_PER_THREAD).max(worker.nthreads as usize + 1);
            assert!(worker.processing.len() <= most, "{w} is over capacity");
        }
    }
}

/// The most tasks a worker holds per thread, however short they are.
const MAX_TASKS_PER_THREAD: usize = 500;

/// Whether a worker takes another task: always while it has fewer than `nthreads + 1` (so it
/// never idles between a result and its next task), and beyond that while the work queued
/// there is expected to take less than `queued_work_us` per thread — many tiny tasks in flight
/// hide the round trip to the scheduler, while long tasks stay with the scheduler to be placed
/// well when a worker frees up.
fn has_room(worker: &WorkerState, queued_work_us: f64) -> bool {
    let tasks = worker.processing.len();
    let threads = worker.nthreads as usize;
    tasks < threads + 1
        || (tasks < threads * MAX_TASKS_PER_THREAD
            && worker.occupancy_us < threads as f64 * queued_work_us)
}

/// Lets `answer` end in one expression whatever the request (the client is only for logs).
trait TapClient {
    fn tap_client(self, client: ClientId) -> Self;
}

impl TapClient for Reply {
    fn tap_client(self, client: ClientId) -> Self {
        if let Reply::Refused { reason } = &self {
            tracing::debug!(%client, %reason, "refused a request");
        }
        self
    }
}

fn unknown_failure(key: &Key) -> TaskFailure {
    TaskFailure {
        key: key.clone(),
        function: String::new(),
        attempts: 0,
        error: TaskError::msg("failed"),
    }
}
