//! # rask-worker: runs tasks and keeps their results
//!
//! [`state::WorkerState`] is the worker: a pure state machine that decides what to fetch, what
//! to run next and what to tell the scheduler. The shell in this module gives it a connection to
//! the scheduler, `nthreads` execution threads, a data server that peers and clients fetch
//! results from, fetches from other workers (several at once), a heartbeat, and a memory
//! monitor that measures the process five times a second when the worker has a memory limit
//! (results beyond it are spilled to files under the worker's local directory, [`store`]).
//!
//! A worker runs registered functions by name — the `#[rask::delayed]` functions and built-in
//! operations of the binary it was started from — so a worker for user functions is the user's
//! own binary re-executed in worker mode.

pub mod state;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rask_core::{Key, Task, Value, WireValue};
use rask_protocol::data::DataPool;
use rask_protocol::messages::{
    DataRef, DataReply, DataRequest, SchedulerToWorker, TaskTiming, WorkerId, WorkerToScheduler,
};
use rask_protocol::transport::{memory_address, MEMORY_PREFIX};
use rask_protocol::{
    connect, handshake, Listener, Packet, ProtocolError, Role, Stream, MAX_FRAME_BYTES,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use state::{MemoryLimits, WorkerCommand, WorkerEvent, WorkerState};
use store::DirectoryDisk;

/// What can stop a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The scheduler could not be reached or refused the worker.
    #[error("could not join the scheduler at {address}: {source}{}", .source.connect_hint())]
    Connect {
        /// The scheduler's address.
        address: String,
        /// Why.
        source: ProtocolError,
    },
    /// A socket failed.
    #[error("worker I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The directory for spilled results could not be made.
    #[error(
        "cannot create the worker's spill directory under {parent}: {source}; give a writable \
         directory with --local-directory"
    )]
    SpillDirectory {
        /// Where it was to be made.
        parent: String,
        /// Why not.
        source: std::io::Error,
    },
    /// The scheduler broke the protocol.
    #[error("the scheduler sent {0} before Welcome")]
    Protocol(String),
}

/// Settings of a worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The scheduler's address (`host:port`).
    pub scheduler: String,
    /// Execution threads.
    pub nthreads: usize,
    /// A name for logs and restrictions.
    pub name: String,
    /// The host the data server listens on.
    pub host: String,
    /// Abstract resources, such as `("GPU", 2.0)`.
    pub resources: Vec<(String, f64)>,
    /// The memory the worker keeps within, in bytes (`None`: no limit, nothing is spilled).
    pub memory_limit: Option<u64>,
    /// Where spilled results go (`None`: the system's temporary directory).
    pub local_directory: Option<PathBuf>,
}

/// A worker's threads when none are asked for: one per core.
pub fn default_nthreads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl WorkerConfig {
    /// A worker for the scheduler at `scheduler` with one thread per core.
    pub fn new(scheduler: impl Into<String>) -> Self {
        WorkerConfig {
            scheduler: scheduler.into(),
            nthreads: default_nthreads(),
            name: format!("worker-{}", std::process::id()),
            host: "127.0.0.1".into(),
            resources: Vec::new(),
            memory_limit: None,
            local_directory: None,
        }
    }
}

/// The machine's memory in bytes, from /proc/meminfo (`None` where that is unavailable).
pub fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A worker running in this process.
pub struct WorkerHandle {
    /// Its id at the scheduler.
    pub id: WorkerId,
    /// Where its data server listens.
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

impl WorkerHandle {
    /// Stops the worker (its results are lost to the cluster) and waits for it.
    pub async fn shutdown(mut self) -> Result<(), WorkerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.await.unwrap_or(Ok(()))
    }

    /// Runs until `signal` completes (then stops the worker) or the worker ends by itself
    /// (the scheduler closed it or went away).
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), WorkerError> {
        tokio::select! {
            _ = signal => self.shutdown().await,
            result = &mut self.done => result.unwrap_or(Ok(())),
        }
    }
}

/// The values found and the keys missing, for a data request.
type DataAnswer = (Vec<(Key, Value)>, Vec<Key>);

enum Input {
    Event(WorkerEvent),
    /// A fetch measured this many bytes per second.
    Bandwidth(f64),
    /// A fetch to report to the scheduler.
    Transferred(WorkerToScheduler),
    GetData(Vec<Key>, oneshot::Sender<DataAnswer>),
}

/// The async runtime for a worker process: multi-thread, with one thread for the event loop,
/// its connections and fetches. Not a current-thread runtime, although one thread is all it
/// needs, because tiny tasks run inline on the event loop and task code may block in place:
/// Polars plans every lazy query inside `tokio::task::block_in_place`, which panics on a
/// current-thread runtime and hands the event loop to another thread on this one.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
}

/// Starts a worker in the current tokio runtime (see [`runtime`]): connects, registers, and
/// runs until stopped or until the scheduler goes away.
pub async fn start(config: WorkerConfig) -> Result<WorkerHandle, WorkerError> {
    // Where results spill: made first, so a worker that cannot spill never joins the cluster.
    let parent = config.local_directory.clone().unwrap_or_else(std::env::temp_dir);
    let disk = DirectoryDisk::create(&parent, &config.name).map_err(|source| {
        WorkerError::SpillDirectory { parent: parent.display().to_string(), source }
    })?;
    // A worker of an in-process scheduler serves its data in-process too.
    let data_address = if config.scheduler.starts_with(MEMORY_PREFIX) {
        memory_address("worker")
    } else {
        format!("{}:0", config.host)
    };
    let listener = Listener::bind(&data_address).await?;
    let address = listener.address()?;
    let (connection, _) =
        connect::<SchedulerToWorker, WorkerToScheduler>(&config.scheduler, Role::Worker)
            .await
            .map_err(|source| WorkerError::Connect { address: config.scheduler.clone(), source })?;
    let (mut to_scheduler, mut from_scheduler) = connection.split();
    let register = WorkerToScheduler::Register {
        name: config.name.clone(),
        nthreads: config.nthreads as u32,
        address: address.clone(),
        resources: config.resources.clone(),
    };
    let connect_error = |source| WorkerError::Connect { address: config.scheduler.clone(), source };
    to_scheduler.send(Packet::one(register)).await.map_err(connect_error)?;
    let welcome = from_scheduler
        .recv()
        .await
        .map_err(connect_error)?
        .and_then(|p| p.messages.into_iter().next());
    let id = match welcome {
        Some(SchedulerToWorker::Welcome { id }) => id,
        other => return Err(WorkerError::Protocol(format!("{other:?}"))),
    };
    info!(%id, name = %config.name, %address, nthreads = config.nthreads, "worker registered");

    let state = WorkerState::with_memory_limit(
        config.nthreads,
        config.memory_limit.map(MemoryLimits::new),
        Box::new(disk),
    );
    let (inputs, receiver) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(data_server(listener, inputs.clone()));
    let pool = ExecutionPool::start(config.nthreads, &config.name, &config.scheduler, &inputs);
    let done = tokio::spawn(async move {
        let result = event_loop(
            state,
            config.nthreads,
            to_scheduler,
            from_scheduler,
            inputs,
            receiver,
            stopped,
            &pool,
        )
        .await;
        // A stopped worker's results are gone: stop serving them too.
        server.abort();
        pool.stop();
        result
    });
    Ok(WorkerHandle { id, address, stop: Some(stop), done })
}

#[allow(clippy::too_many_arguments)] // the loop's whole world, taken once
async fn event_loop(
    mut state: WorkerState,
    nthreads: usize,
    mut to_scheduler: rask_protocol::PacketSender<Stream, WorkerToScheduler>,
    mut from_scheduler: rask_protocol::PacketReceiver<Stream, SchedulerToWorker>,
    inputs: mpsc::UnboundedSender<Input>,
    mut receiver: mpsc::UnboundedReceiver<Input>,
    mut stopped: oneshot::Receiver<()>,
    pool: &ExecutionPool,
) -> Result<(), WorkerError> {
    let mut durations = Durations::default();
    // Measured bytes per second of fetches from peers (0: nothing measured yet).
    let mut bandwidth = 0.0_f64;
    let pool_of_peers = Arc::new(DataPool::new());
    let mut commands = Vec::new();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    // Five times a second, as Dask's memory monitor; without a limit there is nothing to act on.
    let watch_memory = state.memory().limit > 0;
    let mut memory_monitor = tokio::time::interval(Duration::from_millis(200));
    // The clock of the measurements, for the decay of unmanaged memory.
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            packet = from_scheduler.recv() => match packet {
                Ok(Some(packet)) => {
                    for message in packet.messages {
                        let event = match message {
                            SchedulerToWorker::Compute { task, who_has } => {
                                WorkerEvent::Compute { task: Arc::unwrap_or_clone(task), who_has }
                            }
                            SchedulerToWorker::Free { keys } => WorkerEvent::Free(keys),
                            SchedulerToWorker::Clear => WorkerEvent::Clear,
                            SchedulerToWorker::Steal { key } => WorkerEvent::Steal(key),
                            SchedulerToWorker::Close => return Ok(()),
                            SchedulerToWorker::Welcome { .. } => continue,
                        };
                        state.handle(event, &mut commands);
                    }
                }
                Ok(None) => {
                    info!("the scheduler closed the connection; worker stops");
                    return Ok(());
                }
                Err(error) => {
                    warn!(%error, "lost the scheduler; worker stops");
                    return Ok(());
                }
            },
            input = receiver.recv() => {
                let Some(input) = input else { return Ok(()) };
                let mut next = Some(input);
                while let Some(input) = next.take().or_else(|| receiver.try_recv().ok()) {
                    match input {
                        Input::Event(event) => {
                            durations.learn(&event);
                            state.handle(event, &mut commands);
                        }
                        Input::GetData(keys, reply) => {
                            let _ = reply.send(state.get_data(&keys));
                        }
                        Input::Transferred(message) => commands.push(WorkerCommand::ToScheduler(message)),
                        Input::Bandwidth(measured) => {
                            bandwidth = if bandwidth > 0.0 { 0.8 * bandwidth + 0.2 * measured } else { measured };
                        }
                    }
                }
            }
            _ = memory_monitor.tick(), if watch_memory => {
                let (process_bytes, _) = process_usage();
                let at_ms = started.elapsed().as_millis() as u64;
                state.handle(WorkerEvent::MemoryMeasured { process_bytes, at_ms }, &mut commands);
            }
            _ = heartbeat.tick() => {
                let (memory_bytes, cpu_seconds) = process_usage();
                let beat = WorkerToScheduler::Heartbeat {
                    executing: state.executing() as u32,
                    stored: state.stored() as u32,
                    bandwidth,
                    memory_bytes,
                    cpu_seconds,
                    memory: state.memory(),
                };
                commands.push(WorkerCommand::ToScheduler(beat));
            }
        }
        let mut outgoing = Vec::new();
        loop {
            let mut ran_inline = Vec::new();
            for command in commands.drain(..) {
                match command {
                    WorkerCommand::Execute { task, inputs } => {
                        if durations.is_tiny(&task) {
                            ran_inline.push(execute(&task, &inputs, nthreads as u32));
                        } else {
                            pool.submit(task, inputs);
                        }
                    }
                    WorkerCommand::Fetch { peer, keys } => {
                        tokio::spawn(fetch(pool_of_peers.clone(), peer, keys, inputs.clone()));
                    }
                    WorkerCommand::ToScheduler(message) => outgoing.push(message),
                }
            }
            if ran_inline.is_empty() {
                break;
            }
            for event in ran_inline {
                durations.learn(&event);
                state.handle(event, &mut commands);
            }
        }
        if !outgoing.is_empty()
            && to_scheduler.send(Packet { messages: outgoing, data: Vec::new() }).await.is_err()
        {
            warn!("lost the scheduler; worker stops");
            return Ok(());
        }
    }
}

/// This process's resident memory (bytes) and CPU time (seconds), from /proc; zeros where it
/// is not available.
fn process_usage() -> (u64, f64) {
    let memory = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| {
            statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0);
    (memory, cpu)
}

/// Fetches values from a peer's data server and hands them to the state machine.
async fn fetch(
    peers: Arc<DataPool>,
    peer: String,
    keys: Vec<Key>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let started_at_us =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let event = match peers.fetch(&peer, &keys).await {
        Ok(fetched) => {
            let timing = TaskTiming {
                started_at_us,
                duration_us: (fetched.seconds * 1e6) as u64,
                thread: 0,
            };
            let _ = inputs.send(Input::Transferred(WorkerToScheduler::Transferred {
                from: peer.clone(),
                values: fetched.values.len() as u32,
                bytes: fetched.bytes as u64,
                timing,
            }));
            // Only transfers big enough to be dominated by bandwidth, not latency, say
            // something about bandwidth.
            if fetched.bytes >= 64 * 1024 && fetched.seconds > 0.0 {
                let _ = inputs.send(Input::Bandwidth(fetched.bytes as f64 / fetched.seconds));
            }
            WorkerEvent::Fetched { peer, values: fetched.values, missing: fetched.missing }
        }
        Err(error) => {
            debug!(%peer, %error, "fetch failed");
            WorkerEvent::FetchFailed { peer, keys }
        }
    };
    let _ = inputs.send(Input::Event(event));
}

async fn data_server(mut listener: Listener, inputs: mpsc::UnboundedSender<Input>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) if error.kind() == std::io::ErrorKind::NotConnected => return,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(%error, "accepting a data connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let inputs = inputs.clone();
        tokio::spawn(async move {
            let (mut connection, hello) = match handshake::<_, DataRequest, DataReply>(
                stream,
                Role::WorkerServer,
                MAX_FRAME_BYTES,
            )
            .await
            {
                Ok(ok) => ok,
                Err(error) => {
                    warn!(%peer, %error, "refused a data connection");
                    return;
                }
            };
            if hello.role != Role::Peer {
                warn!(%peer, role = ?hello.role, "refused a data connection: not a peer");
                return;
            }
            while let Ok(Some(packet)) = connection.recv().await {
                let data = packet.data;
                for request in packet.messages {
                    let reply = answer(request, &data, &inputs).await;
                    if connection.send(reply).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

async fn answer(
    request: DataRequest,
    data: &[Bytes],
    inputs: &mpsc::UnboundedSender<Input>,
) -> Packet<DataReply> {
    match request {
        DataRequest::Get { keys } => {
            let (reply, answer) = oneshot::channel();
            if inputs.send(Input::GetData(keys.clone(), reply)).is_err() {
                return Packet::one(DataReply::Failed { reason: "the worker is stopping".into() });
            }
            let Ok((found, missing)) = answer.await else {
                return Packet::one(DataReply::Failed { reason: "the worker is stopping".into() });
            };
            let mut packet = Packet { messages: Vec::new(), data: Vec::new() };
            let mut values = Vec::with_capacity(found.len());
            for (key, value) in found {
                match WireValue::encode(&value) {
                    Ok(wire) => {
                        let index = packet.push_data(Bytes::from(wire.bytes));
                        values.push(DataRef { key, type_name: wire.type_name, data: index });
                    }
                    Err(error) => {
                        return Packet::one(DataReply::Failed { reason: format!("{key}: {error}") })
                    }
                }
            }
            packet.messages.push(DataReply::Values { values, missing });
            packet
        }
        DataRequest::Put { values } => {
            let mut decoded = Vec::with_capacity(values.len());
            for DataRef { key, type_name, data: index } in values {
                let Some(bytes) = data.get(index as usize) else {
                    return Packet::one(DataReply::Failed {
                        reason: "a Put names data it does not carry".into(),
                    });
                };
                match WireValue::decode_bytes(&type_name, bytes) {
                    Ok(value) => decoded.push((key, value)),
                    Err(error) => {
                        return Packet::one(DataReply::Failed { reason: error.to_string() })
                    }
                }
            }
            let _ = inputs.send(Input::Event(WorkerEvent::Stored(decoded)));
            Packet::one(DataReply::Stored)
        }
    }
}

type Job = (Task, Vec<Value>);

thread_local! {
    static WORKER_NAME: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    static SCHEDULER_ADDRESS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The address of the scheduler of the worker whose execution thread calls this (`None`
/// outside workers): lets a task connect a client of its own (`rask::worker_client`).
pub fn current_scheduler_address() -> Option<String> {
    SCHEDULER_ADDRESS.with(|address| address.borrow().clone())
}

/// The name of the worker whose execution thread calls this (`None` outside workers): lets a
/// task report where it ran.
pub fn current_worker_name() -> Option<String> {
    WORKER_NAME.with(|name| name.borrow().clone())
}

/// `nthreads` OS threads that run tasks; results go back to the event loop.
struct ExecutionPool {
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

impl ExecutionPool {
    fn start(
        nthreads: usize,
        name: &str,
        scheduler: &str,
        inputs: &mpsc::UnboundedSender<Input>,
    ) -> Self {
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for thread in 0..nthreads.max(1) {
            let receiver = receiver.clone();
            let inputs = inputs.clone();
            let name = name.to_string();
            let scheduler = scheduler.to_string();
            std::thread::Builder::new()
                .name(format!("rask-worker-{thread}"))
                .spawn(move || loop {
                    WORKER_NAME.with(|slot| *slot.borrow_mut() = Some(name.clone()));
                    SCHEDULER_ADDRESS.with(|slot| *slot.borrow_mut() = Some(scheduler.clone()));
                    let job = receiver.lock().map(|r| r.recv());
                    let Ok(Ok((task, values))) = job else { return };
                    if inputs.send(Input::Event(execute(&task, &values, thread as u32))).is_err() {
                        return;
                    }
                })
                .expect("an execution thread starts");
        }
        ExecutionPool { jobs: Mutex::new(Some(jobs)) }
    }

    fn submit(&self, task: Task, inputs: Vec<Value>) {
        if let Some(jobs) = self.jobs.lock().expect("not poisoned").as_ref() {
            let _ = jobs.send((task, inputs));
        }
    }

    fn stop(&self) {
        self.jobs.lock().expect("not poisoned").take();
    }
}

/// Learned task durations per key prefix, to run tiny tasks on the event-loop thread: handing a
/// 2 µs task to an execution thread and its result back costs two thread wake-ups, far more
/// than the task. A task whose kind has taken under `TINY_US` on average runs inline.
#[derive(Default)]
struct Durations {
    mean_us: rustc_hash::FxHashMap<String, f64>,
}

/// Tasks whose kind averages less than this many microseconds run inline.
const TINY_US: f64 = 50.0;

impl Durations {
    fn learn(&mut self, event: &WorkerEvent) {
        if let WorkerEvent::Executed { key, timing, .. } = event {
            let duration = timing.duration_us as f64;
            match self.mean_us.get_mut(key.prefix()) {
                Some(mean) => *mean = 0.8 * *mean + 0.2 * duration,
                None => {
                    self.mean_us.insert(key.prefix().to_string(), duration);
                }
            }
        }
    }

    fn is_tiny(&self, task: &Task) -> bool {
        self.mean_us.get(task.key.prefix()).is_some_and(|mean| *mean < TINY_US)
    }
}

/// Runs a task on the calling thread and reports it as the execution threads do.
fn execute(task: &Task, inputs: &[Value], thread: u32) -> WorkerEvent {
    let started_at_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let started = Instant::now();
    let result = task.run_with_retries(inputs);
    let timing =
        TaskTiming { started_at_us, duration_us: started.elapsed().as_micros() as u64, thread };
    WorkerEvent::Executed { key: task.key.clone(), result, timing }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rask_core::task_graph::Body;

    fn task(name: &str) -> Task {
        let identity = rask_core::registry::lookup("rask::identity").unwrap();
        let op = rask_core::task_graph::Op { func: identity, args: Box::new([]) };
        Task { key: Key::new(name), body: Body::Call(op), part: 0, retries: 0 }
    }

    fn executed(name: &str, duration_us: u64) -> WorkerEvent {
        WorkerEvent::Executed {
            key: Key::new(name),
            result: Ok(Value::new(())),
            timing: TaskTiming::lasting(duration_us),
        }
    }

    #[test]
    fn a_worker_that_cannot_make_its_spill_directory_says_where_and_what_to_do() {
        let file = std::env::temp_dir().join(format!("rask-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"a file, not a directory").unwrap();
        let config = WorkerConfig {
            local_directory: Some(file.clone()),
            ..WorkerConfig::new("127.0.0.1:1")
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let error = runtime.block_on(start(config)).err().expect("no spill directory, no worker");
        let _ = std::fs::remove_file(&file);
        let message = error.to_string();
        assert!(matches!(error, WorkerError::SpillDirectory { .. }), "{message}");
        assert!(
            message.contains(&file.display().to_string()) && message.contains("--local-directory")
        );
    }

    fn blocks_in_place(_args: &[Value]) -> rask_core::TaskResult {
        Ok(Value::new(tokio::task::block_in_place(|| 42_i64)))
    }
    rask_core::register_function!("rask_worker::tests::blocks_in_place", blocks_in_place);

    #[test]
    fn tasks_run_inline_on_the_event_loop_may_block_in_place_as_polars_does() {
        let func = rask_core::registry::lookup("rask_worker::tests::blocks_in_place").unwrap();
        let op = rask_core::task_graph::Op { func, args: Box::new([]) };
        let task = Task { key: Key::new("plan-0"), body: Body::Call(op), part: 0, retries: 0 };
        let runtime = runtime().unwrap();
        // As the event loop runs: spawned on the worker's runtime.
        let event = runtime.block_on(async move {
            tokio::spawn(async move { execute(&task, &[], 0) }).await.unwrap()
        });
        match event {
            WorkerEvent::Executed { result: Ok(value), .. } => {
                assert_eq!(value.downcast_ref::<i64>(), Some(&42));
            }
            other => panic!("the task failed on the event loop: {other:?}"),
        }
    }

    #[test]
    fn only_kinds_of_task_known_to_be_tiny_run_inline() {
        let mut durations = Durations::default();
        let tiny = format!("inc-{:032x}", 1);
        let slow = format!("train-{:032x}", 2);
        assert!(!durations.is_tiny(&task(&tiny)), "unknown kinds go to the execution threads");
        durations.learn(&executed(&format!("inc-{:032x}", 7), 3));
        durations.learn(&executed(&slow, 20_000));
        assert!(durations.is_tiny(&task(&tiny)), "learned per prefix, not per key");
        assert!(!durations.is_tiny(&task(&slow)));
        for _ in 0..20 {
            durations.learn(&executed(&tiny, 5_000));
        }
        assert!(!durations.is_tiny(&task(&tiny)), "a kind that became slow leaves the event loop");
    }
}
