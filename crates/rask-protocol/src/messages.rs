//! The messages of the distributed runtime, by direction.
//!
//! Values never sit inside these messages: a message names a [`DataIndex`] into its packet's
//! data frames, with the value's type name beside it.

use serde::{Deserialize, Serialize};

use rask_core::{Key, TaskFailure, WireTask};

/// The index of a payload in its packet's data frames.
pub type DataIndex = u32;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u32);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}-{}", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A client, numbered by the scheduler.
    ClientId
);
id_type!(
    /// A worker, numbered by the scheduler.
    WorkerId
);

/// When and where a task ran: for the scheduler's duration estimates and the dashboard's task
/// stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTiming {
    /// When it started, in microseconds since the Unix epoch (the worker's clock).
    pub started_at_us: u64,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// Which of the worker's execution threads ran it (`nthreads` stands for the worker's
    /// event-loop thread, where tiny tasks run).
    pub thread: u32,
}

impl TaskTiming {
    /// A timing of `duration_us` with no start time or thread (for tests and simulations).
    pub fn lasting(duration_us: u64) -> Self {
        TaskTiming { started_at_us: 0, duration_us, thread: 0 }
    }
}

/// Which way values went between a worker's memory and its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpillDirection {
    /// Written to disk to free memory.
    ToDisk,
    /// Read back from disk.
    FromDisk,
}

/// What a task-stream record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// A task ran.
    Task,
    /// A worker fetched inputs from another.
    Transfer,
    /// A worker wrote results to disk or read them back.
    Spill(SpillDirection),
}

impl RecordKind {
    /// The record's kind as the dashboard and reports name it (`task`, `transfer`, `spill`),
    /// the prefix they group it under for non-tasks, and the row they draw it in (a worker's
    /// thread for tasks; rows of their own below the threads otherwise).
    pub fn presentation<'a>(
        &self,
        key_prefix: &'a str,
        thread: u32,
    ) -> (&'static str, &'a str, u32) {
        match self {
            RecordKind::Task => ("task", key_prefix, thread),
            RecordKind::Transfer => ("transfer", "transfer", TRANSFER_ROW),
            RecordKind::Spill(SpillDirection::ToDisk) => ("spill", "disk-write", DISK_ROW),
            RecordKind::Spill(SpillDirection::FromDisk) => ("spill", "disk-read", DISK_ROW),
        }
    }
}

/// The row number task streams give a worker's transfers.
pub const TRANSFER_ROW: u32 = 1_000;

/// The row number task streams give a worker's disk reads and writes.
pub const DISK_ROW: u32 = 1_001;

/// A worker's memory as its heartbeat reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerMemory {
    /// The worker's memory limit in bytes (0: none).
    pub limit: u64,
    /// Bytes of results held in memory.
    pub managed_bytes: u64,
    /// Bytes (in memory terms) of results spilled to disk.
    pub spilled_bytes: u64,
    /// How many results are on disk.
    pub spilled_values: u32,
    /// Whether the worker has paused starting tasks because its process is near the limit.
    pub paused: bool,
}

/// A value that lives in a packet's data frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// The value's key.
    pub key: Key,
    /// Its type's name (see `rask_core::codec`).
    pub type_name: String,
    /// Which data frame holds its bytes.
    pub data: DataIndex,
}

/// What a client tells the scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientToScheduler {
    /// New tasks (in priority order, dependencies first) and the keys the client wants.
    UpdateGraph {
        /// The tasks.
        tasks: Vec<WireTask>,
        /// Keys whose results the client holds futures for.
        wanted: Vec<Key>,
        /// Keys that may only run on the named workers (names or data addresses).
        restrictions: Vec<(Key, Vec<String>)>,
        /// Abstract resources each listed key needs while it runs, such as `("GPU", 1.0)`.
        resources: Vec<(Key, Vec<(String, f64)>)>,
        /// The user's priority of this submission: higher runs first (then first come,
        /// first served, then graph order).
        priority: i32,
    },
    /// The client dropped its futures for these keys.
    ReleaseKeys {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Stop computing these keys (and whatever only they need).
    Cancel {
        /// The keys.
        keys: Vec<Key>,
    },
    /// The client stored these values on workers itself (scatter); the client holds them.
    Scattered {
        /// Key, type name and size of each value.
        keys: Vec<(Key, u64)>,
        /// The workers that hold all of them.
        workers: Vec<WorkerId>,
    },
    /// A question; the scheduler answers every request with exactly one [`Reply`], in order.
    Request(Request),
}

/// A client's question to the scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// The workers (for scatter and `ncores`) and how many tasks the scheduler knows.
    ListWorkers,
    /// Forget every task and every result of every client.
    Restart,
    /// Which workers hold these results.
    WhoHas {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Keep these results under a name, for any client (a named dataset).
    Publish {
        /// The name.
        name: String,
        /// The results.
        keys: Vec<Key>,
        /// Replace a dataset of the same name.
        overwrite: bool,
    },
    /// Drop a named dataset.
    Unpublish {
        /// The name.
        name: String,
    },
    /// The keys of a named dataset.
    GetDataset {
        /// The name.
        name: String,
    },
    /// The names of all datasets.
    ListDatasets,
    /// Add a result to a named channel (the oldest beyond `maxlen` are dropped).
    ChannelAppend {
        /// The channel.
        name: String,
        /// The result.
        key: Key,
        /// How many items the channel keeps.
        maxlen: u32,
    },
    /// Task-stream records numbered `since` and later (`u64::MAX`: none, just the next
    /// number), for performance reports.
    TaskStream {
        /// The first record wanted.
        since: u64,
    },
    /// How a task is computed (to re-run a failed task in the client).
    TaskSpec {
        /// The task.
        key: Key,
    },
    /// The items of a channel from position `since` on.
    ChannelRead {
        /// The channel.
        name: String,
        /// The first position wanted.
        since: u64,
    },
}

/// The scheduler's answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The workers, and how many tasks the scheduler knows (of all clients).
    Workers {
        /// The workers.
        workers: Vec<WorkerInfo>,
        /// Known tasks.
        tasks: u64,
    },
    /// The restart is done: no task is left.
    Restarted,
    /// Holders of each key (data addresses).
    WhoHas {
        /// Key and holders.
        entries: Vec<(Key, Vec<String>)>,
    },
    /// Done.
    Done,
    /// The request was refused; why, for the user.
    Refused {
        /// Why.
        reason: String,
    },
    /// A dataset's keys (`None`: no such dataset).
    Dataset {
        /// The keys.
        keys: Option<Vec<Key>>,
    },
    /// The dataset names.
    Datasets {
        /// The names.
        names: Vec<String>,
    },
    /// Finished tasks, and the number of the next record.
    TaskStream {
        /// Key, worker, result (or transferred, or spilled) size, timing and kind of each.
        records: Vec<(Key, WorkerId, u64, TaskTiming, RecordKind)>,
        /// The number the next record will get.
        next: u64,
    },
    /// How a task is computed (`None`: unknown, or scattered data).
    Spec {
        /// The task.
        task: Option<std::sync::Arc<WireTask>>,
    },
    /// A channel's items from the requested position, and the position after them.
    ChannelItems {
        /// The items, oldest first.
        items: Vec<Key>,
        /// The position to read from next time.
        next: u64,
    },
}

/// A worker as the scheduler describes it to clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id.
    pub id: WorkerId,
    /// Its name.
    pub name: String,
    /// Where peers and clients fetch data from it.
    pub address: String,
    /// How many tasks it runs at once.
    pub nthreads: u32,
}

/// What the scheduler tells a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SchedulerToClient {
    /// The result of `key` is ready on these workers.
    KeyInMemory {
        /// The key.
        key: Key,
        /// Data addresses of the workers that hold it.
        workers: Vec<String>,
    },
    /// `key` failed.
    KeyErred {
        /// The key.
        key: Key,
        /// Why.
        failure: TaskFailure,
    },
    /// `key` will not be computed (cancelled, restarted, or its graph was refused).
    KeyCancelled {
        /// The key.
        key: Key,
        /// Why, for the user.
        reason: String,
    },
    /// The answer to a request.
    Reply(Reply),
}

/// What a worker tells the scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerToScheduler {
    /// The first message of a worker.
    Register {
        /// Its name.
        name: String,
        /// How many tasks it runs at once.
        nthreads: u32,
        /// Where peers fetch data from it.
        address: String,
        /// Abstract resources, such as `("GPU", 2.0)`.
        resources: Vec<(String, f64)>,
    },
    /// These tasks started executing (sent in batches): only they are suspects if the worker
    /// dies now; the others were merely queued there.
    Started {
        /// The tasks.
        keys: Vec<Key>,
    },
    /// A task finished and its result is held.
    TaskFinished {
        /// The task.
        key: Key,
        /// The result's size in bytes (estimated).
        nbytes: u64,
        /// When and where it ran.
        timing: TaskTiming,
    },
    /// A task failed after its retries.
    TaskErred {
        /// The task.
        key: Key,
        /// Why.
        failure: TaskFailure,
    },
    /// The worker fetched values from a peer (for the dashboard's task stream).
    Transferred {
        /// The peer's data address.
        from: String,
        /// How many values.
        values: u32,
        /// How many bytes arrived.
        bytes: u64,
        /// When and how long (`thread` is unused).
        timing: TaskTiming,
    },
    /// The answer to `Steal`: whether the task was given back (it had not started).
    StealResponse {
        /// The task.
        key: Key,
        /// Given back.
        stolen: bool,
    },
    /// The worker now holds copies of these results, fetched from peers for its tasks: the
    /// scheduler counts it among their holders, so later readers are placed where the copies
    /// are, and frees the copies with the results (Dask's replicas).
    Replicated {
        /// The results.
        keys: Vec<Key>,
    },
    /// A dependency of `key` could not be fetched from any holder.
    MissingData {
        /// The task that needed it.
        key: Key,
        /// The dependency.
        dep: Key,
    },
    /// Alive, and how busy.
    Heartbeat {
        /// Tasks running now.
        executing: u32,
        /// Results held.
        stored: u32,
        /// Bytes per second its recent fetches from peers achieved (0: none measured).
        bandwidth: f64,
        /// The worker process's resident memory, in bytes (0: unknown).
        memory_bytes: u64,
        /// CPU seconds the worker process has used so far (0: unknown).
        cpu_seconds: f64,
        /// Its memory limit, results in memory and on disk.
        memory: WorkerMemory,
    },
    /// The worker wrote results to disk or read them back (for the dashboard's task stream).
    Spilled {
        /// Which way.
        direction: SpillDirection,
        /// How many values.
        values: u32,
        /// Their size in memory.
        bytes: u64,
        /// When and how long (`thread` is unused).
        timing: TaskTiming,
    },
}

/// Where the input of a task is, for the worker that runs the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputLocation {
    /// The input's key.
    pub key: Key,
    /// The data addresses of the workers that hold it, the first one to ask first.
    pub holders: Vec<String>,
    /// Its size in memory as its holder reported it: what fetching it brings in, so the worker
    /// can keep its incoming transfers under a bound.
    pub nbytes: u64,
}

/// What the scheduler tells a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SchedulerToWorker {
    /// Registered under this id.
    Welcome {
        /// The worker's id.
        id: WorkerId,
    },
    /// Run a task; its dependencies are on these workers (data addresses).
    Compute {
        /// The task.
        task: std::sync::Arc<WireTask>,
        /// For each dependency not on this worker: who holds it, and how large it is.
        who_has: Vec<InputLocation>,
    },
    /// Drop these results (and forget these tasks, if queued).
    Free {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Give back this task if it has not started (work stealing); answer with `StealResponse`.
    Steal {
        /// The task.
        key: Key,
    },
    /// Drop every task and result.
    Clear,
    /// Shut down.
    Close,
}

/// What a peer (a worker or a client) asks a worker's data server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DataRequest {
    /// Send these values.
    Get {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Store these values (scatter).
    Put {
        /// The values, in the packet's data.
        values: Vec<DataRef>,
    },
}

/// A worker's data server's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DataReply {
    /// The values it has, in the packet's data, and the keys it does not have.
    Values {
        /// Found values.
        values: Vec<DataRef>,
        /// Keys it does not hold.
        missing: Vec<Key>,
    },
    /// The values of a `Put` are stored.
    Stored,
    /// The request failed (a value could not be decoded or encoded).
    Failed {
        /// Why.
        reason: String,
    },
}
