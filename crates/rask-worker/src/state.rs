//! The worker as a pure state machine: events in, commands out, no I/O.
//!
//! A task arrives with the addresses of the workers that hold its inputs. Inputs already here
//! are used in place; the others are queued per holder, most urgent task first, and fetched in
//! batches with a bound on what is on its way: at most [`MAX_FETCHES_IN_FLIGHT`] requests and,
//! with a memory limit, a tenth of it in bytes (Dask's `transfer_incoming_count_limit` and
//! `memory.transfer`) — a worker handed hundreds of tasks must not pull all their inputs at once,
//! faster than it can spill them. A paused worker fetches only when it has nothing else to do. A
//! task whose inputs are all here waits in a priority queue for one of `nthreads` execution
//! slots. A holder that does not answer or lacks a value is dropped from the list and the next
//! one is tried; when none is left the scheduler is told (`MissingData`) and reschedules.
//! Fetched inputs stay as replicas: the scheduler is told (`Replicated`), places later readers
//! here, and frees the copies with the results.
//!
//! Results live in a [`DataStore`]: with a memory limit, results beyond its target go to disk,
//! least recently used first, and come back when a task needs them. The shell measures the
//! process's resident memory a few times a second (`MemoryMeasured`), and the worker decides on
//! what it *holds* (managed: its results in memory) plus an estimate of the rest (unmanaged: task
//! working memory, buffers, the runtime), not on the resident figure itself: memory the
//! allocator keeps after results are freed or spilled is reusable, and counting it kept a worker
//! paused for as long as it lived after one spill-heavy phase. The unmanaged estimate takes
//! every growth of the process that the results do not explain at once, and lets it decay
//! (half-life [`UNMANAGED_HALF_LIFE_MS`]) towards the least unmanaged memory ever measured (the
//! process's own overhead) while the process does not grow further. Results are kept under the
//! target *minus* that estimate as they arrive, so the worker spills before it reaches its
//! limit, not after; above the spill fraction more results go; above the pause fraction the
//! worker starts a task only when none is running, so it still makes progress (one task at a
//! time) instead of stalling or running out of memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rask_core::{Key, Task, TaskFailure, Value, WireTask};
use rask_protocol::messages::{InputLocation, TaskTiming, WorkerMemory, WorkerToScheduler};
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{info, warn};

use crate::store::{DataStore, SpillDisk, SpillRecord};

/// A worker's memory limit and the fractions of it at which the worker acts (Dask's
/// `distributed.worker.memory.target/spill/pause`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryLimits {
    /// The limit in bytes.
    pub limit: u64,
    /// Results in memory beyond this fraction of the limit go to disk.
    pub target: f64,
    /// When the whole process uses more than this fraction, results go to disk until it should
    /// be back under `target`.
    pub spill: f64,
    /// Above this fraction the worker starts a task only when none is running.
    pub pause: f64,
}

/// At most this many fetch requests are on their way at once.
pub const MAX_FETCHES_IN_FLIGHT: usize = 4;

/// One fetch request asks for at most this many bytes (unless one value is larger).
pub const MAX_FETCH_BYTES: u64 = 50 << 20;

/// With a memory limit, at most this fraction of it is on its way from peers at once.
pub const FETCH_FRACTION: f64 = 0.1;

/// How fast unmanaged memory that stopped growing stops counting (halves every 5 s). Short,
/// because any new growth counts again at once (the next measurement, 200 ms later); long
/// enough that a task holding working memory for a while slows the worker down while it does.
pub const UNMANAGED_HALF_LIFE_MS: f64 = 5_000.0;

/// The worker's estimate of the memory it does not manage (Dask's "unmanaged"): resident
/// memory minus the results it holds, counted fully while it appears and decaying once it no
/// longer grows, since what stays is mostly freed memory the allocator keeps for reuse.
#[derive(Debug, Default)]
struct Unmanaged {
    /// Bytes counted now.
    estimate: u64,
    /// The least unmanaged memory measured: the process's own overhead, which never decays.
    floor: u64,
    /// The previous measurement: when (ms), resident bytes, managed bytes.
    last: Option<(u64, u64, u64)>,
}

impl Unmanaged {
    /// Takes a measurement; returns the new estimate.
    fn measure(&mut self, at_ms: u64, process: u64, managed: u64) -> u64 {
        let measured = process.saturating_sub(managed);
        self.estimate = match self.last {
            None => {
                self.floor = measured;
                measured
            }
            Some((then, last_process, last_managed)) => {
                self.floor = self.floor.min(measured);
                let elapsed = at_ms.saturating_sub(then) as f64;
                let decay = 0.5_f64.powf(elapsed / UNMANAGED_HALF_LIFE_MS);
                let above_floor = (self.estimate.saturating_sub(self.floor) as f64 * decay) as u64;
                // Growth the new results do not explain is new unmanaged memory; a process that
                // stays put while results leave it only keeps what it freed, for reuse.
                let grown = process
                    .saturating_sub(last_process)
                    .saturating_sub(managed.saturating_sub(last_managed));
                (self.floor + above_floor + grown).min(measured)
            }
        };
        self.last = Some((at_ms, process, managed));
        self.estimate
    }
}

impl MemoryLimits {
    /// A limit of `limit` bytes with Dask's fractions: 0.6, 0.7 and 0.8.
    pub fn new(limit: u64) -> Self {
        MemoryLimits { limit, target: 0.6, spill: 0.7, pause: 0.8 }
    }

    fn bytes(&self, fraction: f64) -> u64 {
        (self.limit as f64 * fraction) as u64
    }
}

/// What happens to a worker.
#[derive(Debug)]
pub enum WorkerEvent {
    /// The scheduler sends a task.
    Compute {
        /// The task.
        task: WireTask,
        /// Holders (and sizes) of inputs not on this worker.
        who_has: Vec<InputLocation>,
    },
    /// The scheduler frees results (or tasks not started).
    Free(Vec<Key>),
    /// The scheduler wants a task back if it has not started (work stealing).
    Steal(Key),
    /// The scheduler clears everything.
    Clear,
    /// Values arrived from a peer; `missing` are keys the peer did not have.
    Fetched {
        /// The peer's address.
        peer: String,
        /// The values.
        values: Vec<(Key, Value)>,
        /// Keys it lacked.
        missing: Vec<Key>,
    },
    /// A fetch from a peer failed altogether.
    FetchFailed {
        /// The peer's address.
        peer: String,
        /// The keys asked for.
        keys: Vec<Key>,
    },
    /// A task finished on an execution thread.
    Executed {
        /// The task.
        key: Key,
        /// The result or the failure.
        result: Result<Value, TaskFailure>,
        /// When and where it ran.
        timing: TaskTiming,
    },
    /// A client or peer stored values here (scatter).
    Stored(Vec<(Key, Value)>),
    /// The shell measured the process's resident memory.
    MemoryMeasured {
        /// Bytes.
        process_bytes: u64,
        /// When, in milliseconds on a monotonic clock (since the worker started).
        at_ms: u64,
    },
}

/// What the worker wants done.
#[derive(Debug)]
pub enum WorkerCommand {
    /// Run a task on an execution thread.
    Execute {
        /// The task.
        task: Task,
        /// Its inputs, in dependency order.
        inputs: Vec<Value>,
    },
    /// Fetch values from a peer.
    Fetch {
        /// The peer's data address.
        peer: String,
        /// The keys.
        keys: Vec<Key>,
    },
    /// Tell the scheduler.
    ToScheduler(WorkerToScheduler),
}

/// Keys by (priority, arrival): the lowest priority first, then the earliest.
type Queue = BinaryHeap<Reverse<(u32, u64, Key)>>;

struct Pending {
    task: Task,
    deps: Vec<Key>,
    priority: u32,
    missing: usize,
}

/// A worker's state.
pub struct WorkerState {
    nthreads: usize,
    data: DataStore,
    limits: Option<MemoryLimits>,
    /// Starting a task only when none runs: the process is near its memory limit.
    paused: bool,
    /// What the process uses besides the results held.
    unmanaged: Unmanaged,
    pending: FxHashMap<Key, Pending>,
    /// Tasks waiting for each input being fetched.
    waiting_for: FxHashMap<Key, Vec<Key>>,
    /// Holders still to try, per input.
    holders: FxHashMap<Key, Vec<String>>,
    /// Inputs queued or being fetched.
    fetching: FxHashSet<Key>,
    /// Inputs to fetch, per holder to ask, most urgent (lowest task priority) first.
    fetch_queue: FxHashMap<String, Queue>,
    /// The priority and size of every queued input.
    queued_inputs: FxHashMap<Key, (u32, u64)>,
    /// The inputs of the requests on their way, and their sizes.
    in_flight: FxHashMap<Key, u64>,
    /// Requests on their way.
    fetches_in_flight: usize,
    /// Bytes on their way.
    fetch_bytes_in_flight: u64,
    ready: Queue,
    sequence: u64,
    executing: FxHashSet<Key>,
    /// Running tasks whose results are no longer wanted.
    discard: FxHashSet<Key>,
    /// Tasks started since the scheduler was last told.
    started: Vec<Key>,
    /// Copies fetched from peers, reported to the scheduler as they arrive: they stay until it
    /// frees them with the results (an all-to-all rechunk has one chunk read by hundreds of
    /// tasks, which the scheduler hands out a few at a time — dropping the copy after each
    /// batch fetched it again and again: 17.8 GB moved for a 400 MB array), and spill like
    /// results under memory pressure.
    replicas: FxHashSet<Key>,
    /// Replicas that arrived since the scheduler was last told.
    new_replicas: Vec<Key>,
    /// How many pending tasks on this worker read each key.
    needed: FxHashMap<Key, u32>,
}

impl WorkerState {
    /// A worker with `nthreads` execution slots and no memory limit.
    pub fn new(nthreads: usize) -> Self {
        WorkerState::with_memory_limit(
            nthreads,
            None,
            Box::new(crate::store::MemoryDisk::default()),
        )
    }

    /// A worker with `nthreads` execution slots that keeps within `limits`, spilling to `disk`.
    pub fn with_memory_limit(
        nthreads: usize,
        limits: Option<MemoryLimits>,
        disk: Box<dyn SpillDisk>,
    ) -> Self {
        WorkerState {
            nthreads: nthreads.max(1),
            data: DataStore::new(limits.map(|l| l.bytes(l.target)), disk),
            limits,
            paused: false,
            unmanaged: Unmanaged::default(),
            pending: FxHashMap::default(),
            waiting_for: FxHashMap::default(),
            holders: FxHashMap::default(),
            fetching: FxHashSet::default(),
            fetch_queue: FxHashMap::default(),
            queued_inputs: FxHashMap::default(),
            in_flight: FxHashMap::default(),
            fetches_in_flight: 0,
            fetch_bytes_in_flight: 0,
            ready: BinaryHeap::new(),
            sequence: 0,
            executing: FxHashSet::default(),
            discard: FxHashSet::default(),
            started: Vec::new(),
            replicas: FxHashSet::default(),
            new_replicas: Vec::new(),
            needed: FxHashMap::default(),
        }
    }

    /// A pending task no longer needs its inputs (it started, or it left).
    fn release_inputs(&mut self, deps: &[Key]) {
        for dep in deps {
            let Some(count) = self.needed.get_mut(dep) else { continue };
            *count -= 1;
            if *count == 0 {
                self.needed.remove(dep);
            }
        }
    }

    /// Removes a pending task and releases its inputs; whether it was pending.
    fn drop_pending(&mut self, key: &Key) -> bool {
        match self.pending.remove(key) {
            Some(pending) => {
                self.release_inputs(&pending.deps);
                true
            }
            None => false,
        }
    }

    /// The values with these keys that are here, and the keys that are not.
    /// Spilled values are read from disk for this without coming back to memory.
    pub fn get_data(&mut self, keys: &[Key]) -> (Vec<(Key, Value)>, Vec<Key>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for key in keys {
            match self.data.peek(key) {
                Some(value) => found.push((key.clone(), value.clone())),
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }

    /// How many tasks are running.
    pub fn executing(&self) -> usize {
        self.executing.len()
    }

    /// How many results are held.
    pub fn stored(&self) -> usize {
        self.data.len()
    }

    /// Whether a result is on disk now.
    pub fn is_spilled(&self, key: &Key) -> bool {
        self.data.is_spilled(key)
    }

    /// Whether the worker runs at most one task, being near its memory limit.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The memory figures a heartbeat reports.
    pub fn memory(&self) -> WorkerMemory {
        WorkerMemory {
            limit: self.limits.map_or(0, |l| l.limit),
            managed_bytes: self.data.memory_bytes(),
            spilled_bytes: self.data.spilled_bytes(),
            spilled_values: self.data.spilled_values() as u32,
            paused: self.paused,
        }
    }

    /// The unmanaged memory the worker counts now (see [`Unmanaged`]).
    pub fn unmanaged_bytes(&self) -> u64 {
        self.unmanaged.estimate
    }

    fn memory_measured(&mut self, process_bytes: u64, at_ms: u64) {
        let Some(limits) = self.limits else { return };
        let unmanaged = self.unmanaged.measure(at_ms, process_bytes, self.data.memory_bytes());
        // Results arriving from now on stay under the target together with the unmanaged part.
        self.data.set_target(Some(limits.bytes(limits.target).saturating_sub(unmanaged)));
        let counted = self.data.memory_bytes() + unmanaged;
        if counted > limits.bytes(limits.spill) {
            let excess = counted - limits.bytes(limits.target);
            let spilled = self.data.spill(excess);
            if spilled > 0 {
                info!(
                    process_bytes,
                    unmanaged, spilled, "near the memory limit: spilled results to disk"
                );
            }
        }
        let counted = self.data.memory_bytes() + unmanaged;
        let paused = counted > limits.bytes(limits.pause);
        if paused != self.paused {
            if paused {
                warn!(
                    process_bytes,
                    unmanaged,
                    limit = limits.limit,
                    "near the memory limit: one task at a time"
                );
            } else {
                info!(
                    process_bytes,
                    unmanaged, "back under the memory limit: all threads run tasks"
                );
            }
            self.paused = paused;
        }
    }

    /// Handles one event, appending commands to `out`.
    pub fn handle(&mut self, event: WorkerEvent, out: &mut Vec<WorkerCommand>) {
        match event {
            WorkerEvent::Compute { task, who_has } => self.compute(task, who_has, out),
            WorkerEvent::Free(keys) => {
                for key in keys {
                    self.data.remove(&key);
                    self.replicas.remove(&key);
                    if !self.drop_pending(&key) && self.executing.contains(&key) {
                        self.discard.insert(key);
                    }
                }
            }
            WorkerEvent::Steal(key) => {
                // A task not yet running can go: it may still wait for inputs, or for a slot.
                let stolen = self.drop_pending(&key);
                out.push(WorkerCommand::ToScheduler(WorkerToScheduler::StealResponse {
                    key,
                    stolen,
                }));
            }
            WorkerEvent::Clear => {
                self.data.clear();
                self.pending.clear();
                self.replicas.clear();
                self.new_replicas.clear();
                self.needed.clear();
                self.waiting_for.clear();
                self.holders.clear();
                self.ready.clear();
                // Requests on their way still answer and are counted off then.
                self.fetching.clear();
                self.fetch_queue.clear();
                self.queued_inputs.clear();
                self.discard.extend(self.executing.iter().cloned());
            }
            WorkerEvent::Fetched { peer, values, missing } => {
                self.fetches_in_flight = self.fetches_in_flight.saturating_sub(1);
                for (key, value) in values {
                    self.arrived_or_failed(&key);
                    self.fetching.remove(&key);
                    self.holders.remove(&key);
                    self.queued_inputs.remove(&key);
                    if !self.needed.contains_key(&key) {
                        continue; // every task that wanted it left meanwhile
                    }
                    if !self.data.contains(&key) && self.replicas.insert(key.clone()) {
                        self.new_replicas.push(key.clone());
                    }
                    self.data.insert(key.clone(), value);
                    self.input_arrived(&key);
                }
                for key in missing {
                    self.arrived_or_failed(&key);
                    self.fetch_failed(&peer, key, out);
                }
            }
            WorkerEvent::FetchFailed { peer, keys } => {
                self.fetches_in_flight = self.fetches_in_flight.saturating_sub(1);
                for key in keys {
                    self.arrived_or_failed(&key);
                    self.fetch_failed(&peer, key, out);
                }
            }
            WorkerEvent::Executed { key, result, timing } => {
                self.executing.remove(&key);
                if !self.discard.remove(&key) {
                    match result {
                        Ok(value) => {
                            let nbytes = self.data.insert(key.clone(), value);
                            out.push(WorkerCommand::ToScheduler(WorkerToScheduler::TaskFinished {
                                key,
                                nbytes,
                                timing,
                            }));
                        }
                        Err(failure) => {
                            out.push(WorkerCommand::ToScheduler(WorkerToScheduler::TaskErred {
                                key,
                                failure,
                            }))
                        }
                    }
                }
            }
            WorkerEvent::Stored(values) => {
                for (key, value) in values {
                    self.data.insert(key.clone(), value);
                    self.input_arrived(&key);
                }
            }
            WorkerEvent::MemoryMeasured { process_bytes, at_ms } => {
                self.memory_measured(process_bytes, at_ms)
            }
        }
        self.start_ready(out);
        self.fetch_more(out);
        for SpillRecord { direction, values, bytes, timing } in self.data.take_records() {
            out.push(WorkerCommand::ToScheduler(WorkerToScheduler::Spilled {
                direction,
                values,
                bytes,
                timing,
            }));
        }
        if !self.started.is_empty() {
            let keys = std::mem::take(&mut self.started);
            out.push(WorkerCommand::ToScheduler(WorkerToScheduler::Started { keys }));
        }
        if !self.new_replicas.is_empty() {
            let keys = std::mem::take(&mut self.new_replicas);
            out.push(WorkerCommand::ToScheduler(WorkerToScheduler::Replicated { keys }));
        }
    }

    fn compute(
        &mut self,
        wire: WireTask,
        who_has: Vec<InputLocation>,
        out: &mut Vec<WorkerCommand>,
    ) {
        let task = match wire.decode() {
            Ok(task) => task,
            Err(error) => {
                let function = wire.ops.last().map_or_else(String::new, |op| op.func.clone());
                let failure =
                    TaskFailure { key: wire.key, function, attempts: 0, error: error.into() };
                out.push(WorkerCommand::ToScheduler(WorkerToScheduler::TaskErred {
                    key: failure.key.clone(),
                    failure,
                }));
                return;
            }
        };
        let mut sizes: FxHashMap<Key, u64> = FxHashMap::default();
        for InputLocation { key, holders, nbytes } in who_has {
            if !self.data.contains(&key) {
                sizes.insert(key.clone(), nbytes);
                self.holders.insert(key, holders);
            }
        }
        let mut missing = 0;
        for dep in &wire.deps {
            if self.data.contains(dep) {
                continue;
            }
            missing += 1;
            self.waiting_for.entry(dep.clone()).or_default().push(wire.key.clone());
            if self.fetching.insert(dep.clone()) {
                let nbytes = sizes.get(dep).copied().unwrap_or(0);
                if !self.queue_fetch(dep.clone(), wire.priority, nbytes) {
                    self.fetching.remove(dep);
                    out.push(WorkerCommand::ToScheduler(WorkerToScheduler::MissingData {
                        key: wire.key.clone(),
                        dep: dep.clone(),
                    }));
                    self.forget_waiter(dep, &wire.key);
                    return;
                }
            }
        }
        let key = wire.key.clone();
        for dep in &wire.deps {
            *self.needed.entry(dep.clone()).or_insert(0) += 1;
        }
        self.pending.insert(
            key.clone(),
            Pending { task, deps: wire.deps, priority: wire.priority, missing },
        );
        if missing == 0 {
            self.make_ready(key);
        }
    }

    fn forget_waiter(&mut self, dep: &Key, task: &Key) {
        if let Some(waiters) = self.waiting_for.get_mut(dep) {
            waiters.retain(|k| k != task);
            if waiters.is_empty() {
                self.waiting_for.remove(dep);
            }
        }
    }

    fn make_ready(&mut self, key: Key) {
        let priority = self.pending[&key].priority;
        self.sequence += 1;
        self.ready.push(Reverse((priority, self.sequence, key)));
    }

    fn input_arrived(&mut self, dep: &Key) {
        for waiter in self.waiting_for.remove(dep).unwrap_or_default() {
            if let Some(pending) = self.pending.get_mut(&waiter) {
                pending.missing -= 1;
                if pending.missing == 0 {
                    self.make_ready(waiter);
                }
            }
        }
    }

    fn fetch_failed(&mut self, peer: &str, key: Key, out: &mut Vec<WorkerCommand>) {
        let next = self.holders.get_mut(&key).and_then(|holders| {
            holders.retain(|h| h != peer);
            holders.first().cloned()
        });
        match next {
            Some(_) => {
                let (priority, nbytes) = self.queued_inputs.get(&key).copied().unwrap_or((0, 0));
                self.queue_fetch(key, priority, nbytes);
            }
            None => {
                self.fetching.remove(&key);
                self.holders.remove(&key);
                self.queued_inputs.remove(&key);
                for waiter in self.waiting_for.remove(&key).unwrap_or_default() {
                    if self.drop_pending(&waiter) {
                        out.push(WorkerCommand::ToScheduler(WorkerToScheduler::MissingData {
                            key: waiter,
                            dep: key.clone(),
                        }));
                    }
                }
            }
        }
    }

    /// Queues an input for its first holder; false if no holder is left.
    fn queue_fetch(&mut self, key: Key, priority: u32, nbytes: u64) -> bool {
        let Some(peer) = self.holders.get(&key).and_then(|h| h.first()).cloned() else {
            return false;
        };
        self.sequence += 1;
        self.queued_inputs.insert(key.clone(), (priority, nbytes));
        self.fetch_queue.entry(peer).or_default().push(Reverse((priority, self.sequence, key)));
        true
    }

    /// An input's request answered (with the value, without it, or not at all).
    fn arrived_or_failed(&mut self, key: &Key) {
        if let Some(nbytes) = self.in_flight.remove(key) {
            self.fetch_bytes_in_flight = self.fetch_bytes_in_flight.saturating_sub(nbytes);
        }
    }

    /// The bytes that may be on their way from peers at once.
    fn fetch_bytes_limit(&self) -> u64 {
        self.limits.map_or(u64::MAX, |l| l.bytes(FETCH_FRACTION).max(1))
    }

    /// Sends fetch requests while the bounds allow: a batch of the most urgent inputs of the
    /// holder whose most urgent input comes first. The first request is always allowed (one
    /// value larger than the bound must still come); a paused worker fetches only when it has
    /// nothing to run and nothing on its way.
    fn fetch_more(&mut self, out: &mut Vec<WorkerCommand>) {
        while self.fetches_in_flight < MAX_FETCHES_IN_FLIGHT {
            let idle = self.executing.is_empty() && self.ready.is_empty();
            if self.paused && (self.fetches_in_flight > 0 || !idle) {
                return;
            }
            let room = self.fetch_bytes_limit().saturating_sub(self.fetch_bytes_in_flight);
            let first_request = self.fetches_in_flight == 0;
            let Some(peer) = self
                .fetch_queue
                .iter()
                .filter_map(|(peer, queue)| queue.peek().map(|Reverse((p, s, _))| (*p, *s, peer)))
                .min()
                .map(|(_, _, peer)| peer.clone())
            else {
                return;
            };
            let queue = self.fetch_queue.get_mut(&peer).expect("chosen among the queues");
            let (mut keys, mut bytes) = (Vec::new(), 0u64);
            while let Some(Reverse((_, _, key))) = queue.peek() {
                if !self.needed.contains_key(key) || !self.fetching.contains(key) {
                    // Every task that wanted it left (or it came meanwhile): nothing to fetch.
                    let key = key.clone();
                    queue.pop();
                    if self.fetching.remove(&key) {
                        self.holders.remove(&key);
                        self.waiting_for.remove(&key);
                    }
                    self.queued_inputs.remove(&key);
                    continue;
                }
                let nbytes = self.queued_inputs.get(key).map_or(0, |&(_, n)| n);
                let fits = bytes + nbytes <= room.min(MAX_FETCH_BYTES);
                // The first key of the first request goes even when it alone exceeds the room.
                if !(fits || keys.is_empty() && first_request) {
                    break;
                }
                let Some(Reverse((_, _, key))) = queue.pop() else { break };
                bytes += nbytes;
                self.in_flight.insert(key.clone(), nbytes);
                keys.push(key);
            }
            if queue.is_empty() {
                self.fetch_queue.remove(&peer);
            }
            if keys.is_empty() {
                if self.fetch_queue.contains_key(&peer) {
                    return; // the most urgent input does not fit now
                }
                continue;
            }
            self.fetches_in_flight += 1;
            self.fetch_bytes_in_flight += bytes;
            out.push(WorkerCommand::Fetch { peer, keys });
        }
    }

    /// Inputs queued or on their way (for tests and the heartbeat's view).
    pub fn fetches(&self) -> (usize, u64) {
        (self.fetches_in_flight, self.fetch_bytes_in_flight)
    }

    fn start_ready(&mut self, out: &mut Vec<WorkerCommand>) {
        // Paused (near the memory limit): one task at a time, so the worker still progresses.
        let slots = if self.paused { 1 } else { self.nthreads };
        while self.executing.len() < slots {
            let Some(Reverse((_, _, key))) = self.ready.pop() else { break };
            let Some(pending) = self.pending.remove(&key) else { continue }; // freed meanwhile
            let inputs: Result<Vec<Value>, &Key> =
                pending.deps.iter().map(|d| self.data.get(d).ok_or(d)).collect();
            let inputs = match inputs {
                Ok(inputs) => inputs,
                Err(lost) => {
                    // An input vanished while the task waited: the scheduler reschedules it.
                    let dep = lost.clone();
                    self.release_inputs(&pending.deps);
                    out.push(WorkerCommand::ToScheduler(WorkerToScheduler::MissingData {
                        key,
                        dep,
                    }));
                    continue;
                }
            };
            self.release_inputs(&pending.deps);
            self.executing.insert(key.clone());
            self.started.push(key);
            out.push(WorkerCommand::Execute { task: pending.task, inputs });
        }
    }
}
