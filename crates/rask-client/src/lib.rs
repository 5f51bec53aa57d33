//! # rask-client: futures on a rask cluster
//!
//! [`AsyncClient`] connects to a scheduler and turns lazy values into [`Future`]s: `compute`
//! (and `submit`, `map`) lower the graph *in the client* with rask-core's optimizations and send
//! it in one message; `gather` fetches results straight from the workers that hold them;
//! `scatter` puts values on workers. A `Future<T>` holds its result on the cluster: when the
//! last copy of a future is dropped, the scheduler is told and the result is freed.
//!
//! [`Client`] is the same API for ordinary (non-async) code; it owns a small tokio runtime. A
//! client is also a [`rask_core::Scheduler`], so `set_as_default()` makes every `compute()` in
//! the process run on the cluster.
//!
//! [`LocalCluster`] starts a scheduler and workers inside this process, on loopback sockets.

mod cluster;

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rask_core::optimize::prepare;
use rask_core::{
    encode_graph, Collection, Graph, Key, Layer, Name, Optimizations, TaskFailure, Value,
};
use rask_protocol::data::DataPool;
use rask_protocol::messages::{ClientToScheduler, Reply, Request, SchedulerToClient, WorkerInfo};
use rask_protocol::{connect, Packet, ProtocolError, Role};
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::warn;

pub use cluster::LocalCluster;

/// What can go wrong for a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The scheduler could not be reached.
    #[error("could not connect to the scheduler at {address}: {source}{}", .source.connect_hint())]
    Connect {
        /// Its address.
        address: String,
        /// Why.
        source: ProtocolError,
    },
    /// The scheduler went away (it stopped or died, or the network between us failed): nothing
    /// more can be submitted or awaited through this client.
    #[error(
        "the scheduler at {address} is gone (its connection closed); start it again \
         (`rask scheduler`) and connect a new client"
    )]
    SchedulerGone {
        /// Its address.
        address: String,
    },
    /// `worker_client()` was called outside a task.
    #[error(
        "worker_client() works only inside a task running on a worker; elsewhere connect a \
         client with Client::connect(address)"
    )]
    NotInTask,
    /// A task failed.
    #[error(transparent)]
    Task(#[from] rask_core::Error),
    /// A result was cancelled.
    #[error("{key} was cancelled: {reason}")]
    Cancelled {
        /// The key.
        key: Key,
        /// Why.
        reason: String,
    },
    /// A result could not be fetched from its workers.
    #[error("could not fetch {key} from its workers: {reason}")]
    Fetch {
        /// The key.
        key: Key,
        /// Why.
        reason: String,
    },
    /// No worker is connected (for scatter).
    #[error("no worker is connected to the scheduler")]
    NoWorkers,
    /// Waiting took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A local cluster could not start.
    #[error(
        "the local cluster could not start ({step}: {reason}); its logs, for clusters of \
         processes, are kept when RASK_KEEP_LOGS is set"
    )]
    ClusterStart {
        /// What it was doing.
        step: String,
        /// Why it failed.
        reason: String,
    },
    /// The scheduler refused a request.
    #[error("the scheduler refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
}

/// The result type of the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
enum KeyStatus {
    Pending,
    InMemory(Vec<String>),
    Erred(Arc<TaskFailure>),
    Cancelled(String),
}

struct Shared {
    /// The scheduler's address, for errors.
    address: String,
    to_scheduler: mpsc::UnboundedSender<ClientToScheduler>,
    status: Mutex<FxHashMap<Key, KeyStatus>>,
    refcounts: Mutex<FxHashMap<Key, usize>>,
    changed: Notify,
    replies: Mutex<VecDeque<oneshot::Sender<Reply>>>,
    connected: std::sync::atomic::AtomicBool,
    /// Connections to workers' data servers, for gather and scatter.
    data: DataPool,
}

impl Shared {
    /// Queues a message for the scheduler; fails once its connection is known to be closed,
    /// so a `submit` after the scheduler died is an error, not a future that never resolves.
    fn send(&self, message: ClientToScheduler) -> Result<()> {
        if !self.connected.load(std::sync::atomic::Ordering::Acquire) {
            return Err(self.gone());
        }
        self.to_scheduler.send(message).map_err(|_| self.gone())
    }

    fn gone(&self) -> ClientError {
        ClientError::SchedulerGone { address: self.address.clone() }
    }

    fn hold(&self, key: &Key) {
        *self.refcounts.lock().expect("not poisoned").entry(key.clone()).or_insert(0) += 1;
    }

    fn drop_hold(&self, key: &Key) {
        let mut refcounts = self.refcounts.lock().expect("not poisoned");
        let Some(count) = refcounts.get_mut(key) else { return };
        *count -= 1;
        if *count == 0 {
            refcounts.remove(key);
            self.status.lock().expect("not poisoned").remove(key);
            let _ =
                self.to_scheduler.send(ClientToScheduler::ReleaseKeys { keys: vec![key.clone()] });
        }
    }

    /// Forgets holders that failed to deliver `key`, so the next word from the scheduler counts.
    fn mark_stale(&self, key: &Key, failed: &[String]) {
        let mut status = self.status.lock().expect("not poisoned");
        if let Some(KeyStatus::InMemory(workers)) = status.get_mut(key) {
            if workers == failed {
                workers.clear();
            }
        }
    }

    /// Waits until the scheduler names holders of `key` other than `failed` (or the key fails).
    async fn wait_for_change(&self, key: &Key, failed: &[String]) {
        loop {
            let notified = self.changed.notified();
            {
                let status = self.status.lock().expect("not poisoned");
                match status.get(key) {
                    Some(KeyStatus::InMemory(workers))
                        if workers.is_empty() || workers == failed => {}
                    Some(KeyStatus::Pending) => {}
                    _ => return,
                }
            }
            if !self.connected.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    async fn wait_status(&self, key: &Key) -> Result<KeyStatus> {
        loop {
            let notified = self.changed.notified();
            {
                let status = self.status.lock().expect("not poisoned");
                match status.get(key) {
                    Some(KeyStatus::Pending) | None => {}
                    Some(done) => return Ok(done.clone()),
                }
            }
            if !self.connected.load(std::sync::atomic::Ordering::Acquire) {
                return Err(self.gone());
            }
            notified.await;
        }
    }
}

/// Where a performance report starts in the scheduler's task stream (see
/// [`AsyncClient::start_report`]).
#[derive(Clone, Copy, Debug)]
pub struct ReportStart(u64);

/// Where and how urgently submitted work runs (see [`AsyncClient::submit_with`]).
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// Names or data addresses of the workers it may run on (empty: any).
    pub workers: Vec<String>,
    /// Abstract resources it holds while it runs, such as `("GPU", 1.0)`: it runs only on
    /// workers started with enough of them (`rask worker --resources GPU=2`), and only while
    /// they are free.
    pub resources: Vec<(String, f64)>,
    /// Higher runs first; then first come, first served.
    pub priority: i32,
}

/// A result on the cluster, of type `T`.
pub struct Future<T> {
    key: Key,
    shared: Arc<Shared>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        self.shared.hold(&self.key);
        Future { key: self.key.clone(), shared: self.shared.clone(), _type: PhantomData }
    }
}

impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        self.shared.drop_hold(&self.key);
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Future<{}>({})", std::any::type_name::<T>(), self.key)
    }
}

impl<T> Future<T> {
    fn new(key: Key, shared: Arc<Shared>) -> Self {
        shared.hold(&key);
        Future { key, shared, _type: PhantomData }
    }

    /// The key of the result.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Whether the result is ready (or failed).
    pub fn done(&self) -> bool {
        !matches!(
            self.shared.status.lock().expect("not poisoned").get(&self.key),
            Some(KeyStatus::Pending) | None
        )
    }
}

impl<T: Clone + Send + Sync + 'static> Future<T> {
    /// Waits for the result and fetches it.
    pub async fn result(&self) -> Result<T> {
        let value = fetch(&self.shared, &self.key).await?;
        Ok(value.into_inner::<T>(&self.key)?)
    }
}

async fn fetch(shared: &Shared, key: &Key) -> Result<Value> {
    // A holder may die between the scheduler's word and our fetch: the scheduler then
    // recomputes the result and says where it is again, so wait for that a few times.
    const ATTEMPTS: usize = 5;
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match shared.wait_status(key).await? {
            KeyStatus::InMemory(workers) => {
                last = String::from("no worker holds it");
                for worker in &workers {
                    match shared.data.fetch(worker, std::slice::from_ref(key)).await {
                        Ok(mut fetched) if !fetched.values.is_empty() => {
                            return Ok(fetched.values.remove(0).1)
                        }
                        Ok(_) => last = format!("{worker} does not have it"),
                        Err(error) => last = error,
                    }
                }
                shared.mark_stale(key, &workers);
                let wait = shared.wait_for_change(key, &workers);
                if tokio::time::timeout(Duration::from_secs(30), wait).await.is_err() {
                    break;
                }
            }
            KeyStatus::Erred(failure) => {
                return Err(ClientError::Task(rask_core::Error::TaskFailed(failure)))
            }
            KeyStatus::Cancelled(reason) => {
                return Err(ClientError::Cancelled { key: key.clone(), reason })
            }
            KeyStatus::Pending => unreachable!("wait_status returns a final status"),
        }
    }
    Err(ClientError::Fetch { key: key.clone(), reason: last })
}

impl<T> rask_core::IntoArg<T> for &Future<T> {
    fn into_arg(self) -> rask_core::delayed::DelayedArg {
        rask_core::delayed::DelayedArg::external(&self.key)
    }
}

impl<T> rask_core::delayed::RemoteResult for Future<T> {
    type Output = T;
    fn remote_key(&self) -> &Key {
        &self.key
    }
}

/// A client of a rask cluster, for async code.
#[derive(Clone)]
pub struct AsyncClient {
    shared: Arc<Shared>,
    address: String,
}

impl AsyncClient {
    /// Connects to the scheduler at `address` (`host:port`, or `memory://NAME` for a
    /// scheduler in this process).
    pub async fn connect(address: &str) -> Result<Self> {
        let (connection, _) =
            connect::<SchedulerToClient, ClientToScheduler>(address, Role::Client)
                .await
                .map_err(|source| ClientError::Connect { address: address.to_string(), source })?;
        let (mut sender, mut receiver) = connection.split();
        let (to_scheduler, mut outgoing) = mpsc::unbounded_channel::<ClientToScheduler>();
        let shared = Arc::new(Shared {
            address: address.to_string(),
            to_scheduler,
            status: Mutex::new(FxHashMap::default()),
            refcounts: Mutex::new(FxHashMap::default()),
            changed: Notify::new(),
            replies: Mutex::new(VecDeque::new()),
            connected: std::sync::atomic::AtomicBool::new(true),
            data: DataPool::new(),
        });
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                let mut batch = vec![message];
                while let Ok(more) = outgoing.try_recv() {
                    batch.push(more);
                }
                if sender.send(Packet { messages: batch, data: Vec::new() }).await.is_err() {
                    break;
                }
            }
        });
        let reader = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let packet = receiver.recv().await;
                let Some(shared) = reader.upgrade() else { return };
                let packet = match packet {
                    Ok(Some(packet)) => packet,
                    Ok(None) | Err(_) => {
                        shared.connected.store(false, std::sync::atomic::Ordering::Release);
                        shared.changed.notify_waiters();
                        return;
                    }
                };
                {
                    let mut status = shared.status.lock().expect("not poisoned");
                    for message in packet.messages {
                        match message {
                            SchedulerToClient::KeyInMemory { key, workers } => {
                                if let Some(s) = status.get_mut(&key) {
                                    *s = KeyStatus::InMemory(workers);
                                }
                            }
                            SchedulerToClient::KeyErred { key, failure } => {
                                if let Some(s) = status.get_mut(&key) {
                                    *s = KeyStatus::Erred(Arc::new(failure));
                                }
                            }
                            SchedulerToClient::KeyCancelled { key, reason } => {
                                if let Some(s) = status.get_mut(&key) {
                                    *s = KeyStatus::Cancelled(reason);
                                }
                            }
                            SchedulerToClient::Reply(reply) => {
                                if let Some(waiter) =
                                    shared.replies.lock().expect("not poisoned").pop_front()
                                {
                                    let _ = waiter.send(reply);
                                }
                            }
                        }
                    }
                }
                shared.changed.notify_waiters();
            }
        });
        Ok(AsyncClient { shared, address: address.to_string() })
    }

    /// The scheduler's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    async fn request(&self, request: Request) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        {
            // Queue the waiter and send under one lock, so replies match requests in order
            // even when several tasks ask at once.
            let mut replies = self.shared.replies.lock().expect("not poisoned");
            replies.push_back(reply);
            self.shared.send(ClientToScheduler::Request(request))?;
        }
        tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .map_err(|_| ClientError::Timeout(Duration::from_secs(60)))?
            .map_err(|_| self.shared.gone())
    }

    /// Sends a graph for `outputs` (one message for the whole graph) and holds the outputs
    /// until the caller's futures take over.
    fn submit_graph(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> Result<Vec<Key>> {
        self.submit_graph_to(graph, outputs, optimizations, &SubmitOptions::default())
    }

    /// `submit_graph` with options for the outputs' tasks.
    fn submit_graph_to(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
        options: &SubmitOptions,
    ) -> Result<Vec<Key>> {
        let tasks = prepare(graph, outputs, optimizations)?;
        let wire = encode_graph(&tasks)?;
        {
            let mut status = self.shared.status.lock().expect("not poisoned");
            for key in outputs {
                status.entry(key.clone()).or_insert(KeyStatus::Pending);
            }
        }
        for key in outputs {
            self.shared.hold(key);
        }
        let restrictions = if options.workers.is_empty() {
            Vec::new()
        } else {
            outputs.iter().map(|k| (k.clone(), options.workers.clone())).collect()
        };
        let resources = if options.resources.is_empty() {
            Vec::new()
        } else {
            outputs.iter().map(|k| (k.clone(), options.resources.clone())).collect()
        };
        self.shared.send(ClientToScheduler::UpdateGraph {
            tasks: wire,
            wanted: outputs.to_vec(),
            restrictions,
            resources,
            priority: options.priority,
        })?;
        Ok(outputs.to_vec())
    }

    /// Starts computing a collection on the cluster; the future's result is the collection's
    /// single output value (for a `Delayed<T>`, the `T`).
    pub fn compute<C: Collection>(&self, collection: &C) -> Result<Future<C::Output>> {
        self.submit_one(collection, &SubmitOptions::default())
    }

    /// Starts one task (a lazy call): like Dask's `client.submit(func, *args)`.
    pub fn submit<C: Collection>(&self, call: C) -> Result<Future<C::Output>> {
        self.submit_one(&call, &SubmitOptions::default())
    }

    /// Computes a collection on the cluster and keeps the result there, like Dask's
    /// `client.persist`: the future stands for it, and later lazy calls can take the future as
    /// an input (`f::lazy(&future)`) without recomputing anything. (The same as `compute`: a
    /// rask future always keeps its result on the cluster until dropped.)
    pub fn persist<C: Collection>(&self, collection: &C) -> Result<Future<C::Output>> {
        self.submit_one(collection, &SubmitOptions::default())
    }

    /// Starts one task with options: the workers it may run on, resources it holds while it
    /// runs, and its priority — like Dask's `client.submit(..., workers=, resources=,
    /// priority=)`. The options apply to the call's own task, not to its inputs.
    pub fn submit_with<C: Collection>(
        &self,
        call: C,
        options: &SubmitOptions,
    ) -> Result<Future<C::Output>> {
        self.submit_one(&call, options)
    }

    fn submit_one<C: Collection>(
        &self,
        collection: &C,
        options: &SubmitOptions,
    ) -> Result<Future<C::Output>> {
        let keys = collection.output_keys();
        let [key] = keys.as_slice() else {
            return Err(ClientError::Refused {
                reason: format!(
                    "a future holds one result, but this collection has {} outputs: compute it with \
                     `collection.compute_with(&client)`, or submit its parts one by one",
                    keys.len()
                ),
            });
        };
        self.submit_graph_to(&collection.graph(), &keys, &collection.optimizations(), options)?;
        let future = Future::new(key.clone(), self.shared.clone());
        self.shared.drop_hold(key); // submit_graph held it for the call; the future holds it now
        Ok(future)
    }

    /// Starts one task that may only run on the named workers (names or data addresses).
    pub fn submit_to<C: Collection>(
        &self,
        call: C,
        workers: &[String],
    ) -> Result<Future<C::Output>> {
        self.submit_with(
            call,
            &SubmitOptions { workers: workers.to_vec(), ..SubmitOptions::default() },
        )
    }

    /// Starts `f(item)` for every item, all in one graph submission.
    pub fn map<I, C>(
        &self,
        f: impl Fn(I) -> C,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<Future<C::Output>>>
    where
        C: Collection,
    {
        let calls: Vec<C> = items.into_iter().map(f).collect();
        let graphs: Vec<Graph> = calls.iter().map(Collection::graph).collect();
        let graph = Graph::merge(&graphs.iter().collect::<Vec<_>>());
        let keys: Vec<Key> = calls.iter().flat_map(Collection::output_keys).collect();
        let optimizations = calls.first().map(Collection::optimizations).unwrap_or_default();
        self.submit_graph(&graph, &keys, &optimizations)?;
        let futures =
            keys.iter().map(|key| Future::new(key.clone(), self.shared.clone())).collect();
        for key in &keys {
            self.shared.drop_hold(key);
        }
        Ok(futures)
    }

    /// Waits for all futures and fetches their results, in order.
    pub async fn gather<T: Clone + Send + Sync + 'static>(
        &self,
        futures: &[Future<T>],
    ) -> Result<Vec<T>> {
        let mut results = Vec::with_capacity(futures.len());
        for future in futures {
            results.push(future.result().await?);
        }
        Ok(results)
    }

    /// Puts values on workers (round-robin, or on every worker with `broadcast`) and returns
    /// futures for them.
    pub async fn scatter<T>(&self, values: Vec<T>, broadcast: bool) -> Result<Vec<Future<T>>>
    where
        T: serde::Serialize + Send + Sync + 'static,
    {
        let workers = self.workers().await?;
        if workers.is_empty() {
            return Err(ClientError::NoWorkers);
        }
        let mut futures = Vec::with_capacity(values.len());
        let mut placed: Vec<(Key, u64, Vec<usize>)> = Vec::new();
        let mut per_worker: Vec<Vec<(Key, Value)>> = vec![Vec::new(); workers.len()];
        for (i, data) in values.into_iter().enumerate() {
            let arg = rask_core::IntoArg::<T>::into_arg(data);
            let (key, value) = scatter_parts(arg);
            let targets: Vec<usize> =
                if broadcast { (0..workers.len()).collect() } else { vec![i % workers.len()] };
            for &t in &targets {
                per_worker[t].push((key.clone(), value.clone()));
            }
            placed.push((key.clone(), value.size_hint() as u64, targets));
            {
                let mut status = self.shared.status.lock().expect("not poisoned");
                status.insert(key.clone(), KeyStatus::Pending);
            }
            futures.push(Future::new(key, self.shared.clone()));
        }
        for (worker, values) in workers.iter().zip(&per_worker) {
            if !values.is_empty() {
                self.shared
                    .data
                    .put(&worker.address, values)
                    .await
                    .map_err(|reason| ClientError::Fetch { key: values[0].0.clone(), reason })?;
            }
        }
        let mut by_targets: FxHashMap<Vec<usize>, Vec<(Key, u64)>> = FxHashMap::default();
        for (key, nbytes, targets) in placed {
            by_targets.entry(targets).or_default().push((key, nbytes));
        }
        for (targets, keys) in by_targets {
            let ids = targets.iter().map(|&t| workers[t].id).collect();
            self.shared.send(ClientToScheduler::Scattered { keys, workers: ids })?;
        }
        Ok(futures)
    }

    /// The workers of the cluster.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        match self.request(Request::ListWorkers).await? {
            Reply::Workers { workers, .. } => Ok(workers),
            other => Err(unexpected(other)),
        }
    }

    /// How many tasks the scheduler knows, of all clients (after `restart`: none).
    pub async fn scheduler_tasks(&self) -> Result<u64> {
        match self.request(Request::ListWorkers).await? {
            Reply::Workers { tasks, .. } => Ok(tasks),
            other => Err(unexpected(other)),
        }
    }

    /// Threads per worker address, like Dask's `client.ncores()`.
    pub async fn ncores(&self) -> Result<Vec<(String, u32)>> {
        Ok(self.workers().await?.into_iter().map(|w| (w.address, w.nthreads)).collect())
    }

    /// Cancels futures: their tasks stop unless other futures need them.
    pub fn cancel<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.shared.send(ClientToScheduler::Cancel {
            keys: futures.iter().map(|f| f.key.clone()).collect(),
        })
    }

    /// Forgets every task and result on the cluster (all clients' futures are cancelled).
    pub async fn restart(&self) -> Result<()> {
        match self.request(Request::Restart).await? {
            Reply::Restarted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The data addresses of the workers holding each future's result.
    pub async fn who_has<T>(&self, futures: &[Future<T>]) -> Result<Vec<Vec<String>>> {
        let keys = futures.iter().map(|f| f.key.clone()).collect();
        match self.request(Request::WhoHas { keys }).await? {
            Reply::WhoHas { entries } => {
                Ok(entries.into_iter().map(|(_, holders)| holders).collect())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Keeps a result under a name for any client, even after this client lets go of it (like
    /// Dask's `client.publish_dataset`). Refused if the name is taken, unless `overwrite`.
    pub async fn publish<T>(&self, name: &str, future: &Future<T>, overwrite: bool) -> Result<()> {
        let request =
            Request::Publish { name: name.to_string(), keys: vec![future.key.clone()], overwrite };
        expect_done(self.request(request).await?)
    }

    /// Drops a named dataset.
    pub async fn unpublish(&self, name: &str) -> Result<()> {
        expect_done(self.request(Request::Unpublish { name: name.to_string() }).await?)
    }

    /// A future for a named dataset published by any client.
    pub async fn get_dataset<T>(&self, name: &str) -> Result<Future<T>> {
        match self.request(Request::GetDataset { name: name.to_string() }).await? {
            Reply::Dataset { keys: Some(keys) } if keys.len() == 1 => {
                Ok(self.adopt(keys)?.remove(0))
            }
            Reply::Dataset { .. } => {
                Err(ClientError::Refused { reason: format!("there is no dataset named {name:?}") })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Runs the task that made `future` fail again, here in the client process, with its real
    /// inputs (fetched from the cluster, recomputed if they were dropped), and returns what it
    /// does now: its error again, or a value if it succeeds this time. Like Dask's
    /// `recreate_error_locally`: set breakpoints or add prints in the function and call this.
    pub async fn rerun_locally<T>(
        &self,
        future: &Future<T>,
    ) -> Result<std::result::Result<Value, TaskFailure>> {
        let failure = match self.shared.wait_status(&future.key).await? {
            KeyStatus::Erred(failure) => failure,
            KeyStatus::InMemory(_) => {
                return Err(ClientError::Refused { reason: format!("{} did not fail", future.key) })
            }
            KeyStatus::Cancelled(reason) => {
                return Err(ClientError::Cancelled { key: future.key.clone(), reason })
            }
            KeyStatus::Pending => unreachable!("wait_status returns a final status"),
        };
        // The failing task may be an input of the future's task (the error propagated).
        let failed = failure.key.clone();
        let Reply::Spec { task: Some(spec) } =
            self.request(Request::TaskSpec { key: failed.clone() }).await?
        else {
            return Err(ClientError::Refused {
                reason: format!("the scheduler no longer knows how {failed} is computed"),
            });
        };
        let task = spec.decode()?;
        let inputs: Vec<Future<()>> = self.adopt(spec.deps.clone())?;
        let mut values = Vec::with_capacity(inputs.len());
        for input in &inputs {
            values.push(fetch(&self.shared, &input.key).await?);
        }
        Ok(task.run_with_retries(&values))
    }

    /// Starts a performance report: returns the point in the scheduler's task stream from which
    /// [`AsyncClient::write_report`] will report (like entering Dask's `performance_report`).
    pub async fn start_report(&self) -> Result<ReportStart> {
        match self.request(Request::TaskStream { since: u64::MAX }).await? {
            Reply::TaskStream { next, .. } => Ok(ReportStart(next)),
            other => Err(unexpected(other)),
        }
    }

    /// Writes a self-contained HTML report of every task finished on the cluster since
    /// `start` (by any client): task stream, time and bytes per prefix, workers. The scheduler
    /// keeps the last 100,000 tasks; older ones are not in the report.
    pub async fn write_report(
        &self,
        start: &ReportStart,
        title: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<usize> {
        let records = match self.request(Request::TaskStream { since: start.0 }).await? {
            Reply::TaskStream { records, .. } => records,
            other => return Err(unexpected(other)),
        };
        let names: Vec<(u32, String)> =
            self.workers().await?.into_iter().map(|w| (w.id.0, w.name)).collect();
        let records: Vec<rask_local::report::ReportTask> = records
            .into_iter()
            .map(|(key, worker, nbytes, timing, kind)| {
                let (kind, prefix, thread) = kind.presentation(key.prefix(), timing.thread);
                rask_local::report::ReportTask {
                    prefix: prefix.to_string(),
                    key: key.to_string(),
                    worker: worker.0,
                    thread,
                    start_us: timing.started_at_us,
                    duration_us: timing.duration_us,
                    nbytes,
                    kind,
                }
            })
            .collect();
        let html = rask_local::report::render(title, &records, &names);
        std::fs::write(path, html)
            .map_err(|e| ClientError::Refused { reason: format!("writing the report: {e}") })?;
        Ok(records.iter().filter(|r| r.kind == "task").count())
    }

    /// The names of the published datasets.
    pub async fn list_datasets(&self) -> Result<Vec<String>> {
        match self.request(Request::ListDatasets).await? {
            Reply::Datasets { names } => Ok(names),
            other => Err(unexpected(other)),
        }
    }

    /// A named channel of results shared between clients (like the channels of Dask's
    /// TensorFlow walkthrough): some append futures, others read the newest. It keeps the
    /// newest `maxlen` items.
    pub fn channel<T>(&self, name: &str, maxlen: u32) -> Channel<T> {
        Channel {
            client: self.clone(),
            name: name.to_string(),
            maxlen,
            next: 0,
            _type: PhantomData,
        }
    }

    /// Futures for keys the scheduler holds (a dataset's, a channel's): the client registers
    /// its own hold, so the results stay while the futures live.
    fn adopt<T>(&self, keys: Vec<Key>) -> Result<Vec<Future<T>>> {
        {
            let mut status = self.shared.status.lock().expect("not poisoned");
            for key in &keys {
                status.entry(key.clone()).or_insert(KeyStatus::Pending);
            }
        }
        let futures =
            keys.iter().map(|key| Future::new(key.clone(), self.shared.clone())).collect();
        self.shared.send(ClientToScheduler::UpdateGraph {
            tasks: Vec::new(),
            wanted: keys,
            restrictions: Vec::new(),
            resources: Vec::new(),
            priority: 0,
        })?;
        Ok(futures)
    }

    /// Waits until every future is done (ready, failed or cancelled), or the timeout passes.
    pub async fn wait<T>(&self, futures: &[Future<T>], timeout: Duration) -> Result<()> {
        let all = async {
            for future in futures {
                self.shared.wait_status(&future.key).await?;
            }
            Ok(())
        };
        tokio::time::timeout(timeout, all).await.map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Yields futures as they finish, in completion order; more can be added while iterating.
    pub fn as_completed<T>(&self, futures: Vec<Future<T>>) -> AsCompleted<T> {
        AsCompleted { shared: self.shared.clone(), pending: futures }
    }
}

fn unexpected(reply: Reply) -> ClientError {
    match reply {
        Reply::Refused { reason } => ClientError::Refused { reason },
        other => ClientError::Refused {
            reason: format!("unexpected reply from the scheduler: {other:?}"),
        },
    }
}

fn expect_done(reply: Reply) -> Result<()> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// A named channel of results shared between clients (see [`AsyncClient::channel`]).
pub struct Channel<T> {
    client: AsyncClient,
    name: String,
    maxlen: u32,
    next: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T> Channel<T> {
    /// Adds a result to the channel.
    pub async fn append(&self, future: &Future<T>) -> Result<()> {
        let request = Request::ChannelAppend {
            name: self.name.clone(),
            key: future.key.clone(),
            maxlen: self.maxlen,
        };
        expect_done(self.client.request(request).await?)
    }

    /// The items appended since the last `poll` (or all it keeps, the first time).
    pub async fn poll(&mut self) -> Result<Vec<Future<T>>> {
        match self
            .client
            .request(Request::ChannelRead { name: self.name.clone(), since: self.next })
            .await?
        {
            Reply::ChannelItems { items, next } => {
                self.next = next;
                self.client.adopt(items)
            }
            other => Err(unexpected(other)),
        }
    }

    /// The newest item, if any.
    pub async fn latest(&self) -> Result<Option<Future<T>>> {
        match self
            .client
            .request(Request::ChannelRead { name: self.name.clone(), since: 0 })
            .await?
        {
            Reply::ChannelItems { mut items, .. } => match items.pop() {
                Some(key) => Ok(self.client.adopt(vec![key])?.pop()),
                None => Ok(None),
            },
            other => Err(unexpected(other)),
        }
    }
}

/// A [`Channel`] for blocking code (see [`Client::channel`]).
pub struct BlockingChannel<T> {
    inner: Channel<T>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl<T> BlockingChannel<T> {
    /// See [`Channel::append`].
    pub fn append(&self, future: &Future<T>) -> Result<()> {
        self.runtime.block_on(self.inner.append(future))
    }

    /// See [`Channel::poll`].
    pub fn poll(&mut self) -> Result<Vec<Future<T>>> {
        self.runtime.block_on(self.inner.poll())
    }

    /// See [`Channel::latest`].
    pub fn latest(&self) -> Result<Option<Future<T>>> {
        self.runtime.block_on(self.inner.latest())
    }
}

fn scatter_parts(arg: rask_core::delayed::DelayedArg) -> (Key, Value) {
    arg.into_literal().expect("a scattered value is a literal")
}

/// Futures in the order they finish (see [`AsyncClient::as_completed`]).
pub struct AsCompleted<T> {
    shared: Arc<Shared>,
    pending: Vec<Future<T>>,
}

impl<T> AsCompleted<T> {
    /// Adds a future to wait for.
    pub fn add(&mut self, future: Future<T>) {
        self.pending.push(future);
    }

    /// How many futures have not been yielded yet.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every future was yielded.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Every future that is done now (at least one, waiting if none is), like Dask's
    /// `as_completed(...).batches()`. Empty when nothing is left.
    pub async fn next_batch(&mut self) -> Result<Vec<Future<T>>> {
        loop {
            if self.pending.is_empty() {
                return Ok(Vec::new());
            }
            let notified = self.shared.changed.notified();
            let (done, pending): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.pending).into_iter().partition(Future::done);
            self.pending = pending;
            if !done.is_empty() {
                return Ok(done);
            }
            if !self.shared.connected.load(std::sync::atomic::Ordering::Acquire) {
                return Err(self.shared.gone());
            }
            notified.await;
        }
    }

    /// The next future to finish with its result (or its error), like Dask's
    /// `as_completed(..., with_results=True)`; `None` when none is left.
    pub async fn next_with_result(&mut self) -> Result<Option<(Future<T>, Result<T>)>>
    where
        T: Clone + Send + Sync + 'static,
    {
        let Some(future) = self.next().await? else { return Ok(None) };
        let result = future.result().await;
        Ok(Some((future, result)))
    }

    /// The next future to finish, or `None` when none is left.
    pub async fn next(&mut self) -> Result<Option<Future<T>>> {
        let mut batch = self.next_batch().await?;
        let first = if batch.is_empty() { None } else { Some(batch.remove(0)) };
        // Put the rest back in front, so that none is lost.
        batch.extend(std::mem::take(&mut self.pending));
        self.pending = batch;
        Ok(first)
    }
}

/// A client of a rask cluster for ordinary, blocking code.
#[derive(Clone)]
pub struct Client {
    inner: AsyncClient,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// Connects to the scheduler at `address` (`host:port`).
    pub fn connect(address: &str) -> Result<Self> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("rask-client")
                .enable_all()
                .build()
                .map_err(|e| ClientError::Connect {
                    address: address.to_string(),
                    source: e.into(),
                })?,
        );
        let inner = runtime.block_on(AsyncClient::connect(address))?;
        Ok(Client { inner, runtime })
    }

    /// The async client behind this one.
    pub fn asynchronous(&self) -> &AsyncClient {
        &self.inner
    }

    /// See [`AsyncClient::compute`].
    pub fn compute<C: Collection>(&self, collection: &C) -> Result<Future<C::Output>> {
        let _guard = self.runtime.enter();
        self.inner.compute(collection)
    }

    /// See [`AsyncClient::submit`].
    pub fn submit<C: Collection>(&self, call: C) -> Result<Future<C::Output>> {
        self.compute(&call)
    }

    /// See [`AsyncClient::persist`].
    pub fn persist<C: Collection>(&self, collection: &C) -> Result<Future<C::Output>> {
        let _guard = self.runtime.enter();
        self.inner.persist(collection)
    }

    /// See [`AsyncClient::submit_with`].
    pub fn submit_with<C: Collection>(
        &self,
        call: C,
        options: &SubmitOptions,
    ) -> Result<Future<C::Output>> {
        let _guard = self.runtime.enter();
        self.inner.submit_with(call, options)
    }

    /// See [`AsyncClient::submit_to`].
    pub fn submit_to<C: Collection>(
        &self,
        call: C,
        workers: &[String],
    ) -> Result<Future<C::Output>> {
        let _guard = self.runtime.enter();
        self.inner.submit_to(call, workers)
    }

    /// See [`AsyncClient::scheduler_tasks`].
    pub fn scheduler_tasks(&self) -> Result<u64> {
        self.runtime.block_on(self.inner.scheduler_tasks())
    }

    /// See [`AsyncClient::map`].
    pub fn map<I, C: Collection>(
        &self,
        f: impl Fn(I) -> C,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<Future<C::Output>>> {
        let _guard = self.runtime.enter();
        self.inner.map(f, items)
    }

    /// Waits for one result.
    pub fn result<T: Clone + Send + Sync + 'static>(&self, future: &Future<T>) -> Result<T> {
        self.runtime.block_on(future.result())
    }

    /// See [`AsyncClient::gather`].
    pub fn gather<T: Clone + Send + Sync + 'static>(
        &self,
        futures: &[Future<T>],
    ) -> Result<Vec<T>> {
        self.runtime.block_on(self.inner.gather(futures))
    }

    /// See [`AsyncClient::scatter`].
    pub fn scatter<T: serde::Serialize + Send + Sync + 'static>(
        &self,
        values: Vec<T>,
        broadcast: bool,
    ) -> Result<Vec<Future<T>>> {
        self.runtime.block_on(self.inner.scatter(values, broadcast))
    }

    /// See [`AsyncClient::workers`].
    pub fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.runtime.block_on(self.inner.workers())
    }

    /// See [`AsyncClient::ncores`].
    pub fn ncores(&self) -> Result<Vec<(String, u32)>> {
        self.runtime.block_on(self.inner.ncores())
    }

    /// See [`AsyncClient::cancel`].
    pub fn cancel<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.inner.cancel(futures)
    }

    /// See [`AsyncClient::restart`].
    pub fn restart(&self) -> Result<()> {
        self.runtime.block_on(self.inner.restart())
    }

    /// See [`AsyncClient::who_has`].
    pub fn who_has<T>(&self, futures: &[Future<T>]) -> Result<Vec<Vec<String>>> {
        self.runtime.block_on(self.inner.who_has(futures))
    }

    /// See [`AsyncClient::publish`].
    pub fn publish<T>(&self, name: &str, future: &Future<T>, overwrite: bool) -> Result<()> {
        self.runtime.block_on(self.inner.publish(name, future, overwrite))
    }

    /// See [`AsyncClient::unpublish`].
    pub fn unpublish(&self, name: &str) -> Result<()> {
        self.runtime.block_on(self.inner.unpublish(name))
    }

    /// See [`AsyncClient::get_dataset`].
    pub fn get_dataset<T>(&self, name: &str) -> Result<Future<T>> {
        self.runtime.block_on(self.inner.get_dataset(name))
    }

    /// See [`AsyncClient::channel`]; this one's methods block.
    pub fn channel<T>(&self, name: &str, maxlen: u32) -> BlockingChannel<T> {
        BlockingChannel { inner: self.inner.channel(name, maxlen), runtime: self.runtime.clone() }
    }

    /// See [`AsyncClient::rerun_locally`].
    pub fn rerun_locally<T>(
        &self,
        future: &Future<T>,
    ) -> Result<std::result::Result<Value, TaskFailure>> {
        self.runtime.block_on(self.inner.rerun_locally(future))
    }

    /// See [`AsyncClient::start_report`].
    pub fn start_report(&self) -> Result<ReportStart> {
        self.runtime.block_on(self.inner.start_report())
    }

    /// See [`AsyncClient::write_report`]; returns how many tasks the report shows.
    pub fn write_report(
        &self,
        start: &ReportStart,
        title: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<usize> {
        self.runtime.block_on(self.inner.write_report(start, title, path))
    }

    /// See [`AsyncClient::list_datasets`].
    pub fn list_datasets(&self) -> Result<Vec<String>> {
        self.runtime.block_on(self.inner.list_datasets())
    }

    /// See [`AsyncClient::wait`].
    pub fn wait<T>(&self, futures: &[Future<T>], timeout: Duration) -> Result<()> {
        self.runtime.block_on(self.inner.wait(futures, timeout))
    }

    /// Runs an async block on the client's runtime (for `as_completed` and the like).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Makes this client the scheduler of every `compute()` in the process.
    pub fn set_as_default(&self) {
        rask_core::set_default_scheduler(Some(Arc::new(self.clone())));
    }
}

impl rask_core::Scheduler for Client {
    fn compute(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> rask_core::Result<Vec<Value>> {
        let to_core = |error: ClientError| match error {
            ClientError::Task(error) => error,
            other => rask_core::Error::Cluster(other.to_string()),
        };
        let _guard = self.runtime.enter();
        let keys = self.inner.submit_graph(graph, outputs, optimizations).map_err(to_core)?;
        let shared = self.inner.shared.clone();
        let values = self.runtime.block_on(async {
            let mut values = Vec::with_capacity(keys.len());
            for key in &keys {
                values.push(fetch(&shared, key).await?);
            }
            Ok::<_, ClientError>(values)
        });
        for key in &keys {
            shared.drop_hold(key);
        }
        values.map_err(to_core)
    }

    /// Submits the graph and returns at once (as Dask's `persist`): the results stay on the
    /// workers, and the graph returned reads them there, holding this client's claims on them
    /// until its last copy is dropped.
    fn persist(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> rask_core::Result<Graph> {
        let _guard = self.runtime.enter();
        let keys =
            self.inner.submit_graph(graph, outputs, optimizations).map_err(
                |error| match error {
                    ClientError::Task(error) => error,
                    other => rask_core::Error::Cluster(other.to_string()),
                },
            )?;
        let name = keys.first().map_or_else(|| Name::from("persisted"), |k| k.name().clone());
        let holds = Arc::new(Holds { shared: self.inner.shared.clone(), keys: keys.clone() });
        Ok(Graph::from_layer(Layer::external_held(name, keys, holds)))
    }

    /// Waits for every result the graph's `External` layers name (failed ones count as done:
    /// reading them reports the failure).
    fn wait_persisted(&self, graph: &Graph) -> rask_core::Result<()> {
        let keys: Vec<Key> = graph
            .layers()
            .iter()
            .filter_map(|layer| match layer.kind() {
                rask_core::LayerKind::External(keys) => Some(keys.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let shared = self.inner.shared.clone();
        self.runtime.block_on(async {
            for key in &keys {
                shared
                    .wait_status(key)
                    .await
                    .map_err(|e| rask_core::Error::Cluster(e.to_string()))?;
            }
            Ok(())
        })
    }
}

/// A client's claims on results a persisted graph reads: released when dropped.
struct Holds {
    shared: Arc<Shared>,
    keys: Vec<Key>,
}

impl Drop for Holds {
    fn drop(&mut self) {
        for key in &self.keys {
            self.shared.drop_hold(key);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let held = self.refcounts.get_mut().map(|r| r.len()).unwrap_or(0);
        if held > 0 {
            warn!(held, "client dropped while futures were held; the scheduler releases them when the connection closes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn submit_after_the_scheduler_died_fails_saying_the_scheduler_is_gone() {
        let config = rask_scheduler::ServerConfig {
            address: rask_protocol::transport::memory_address("gone-scheduler"),
            ..rask_scheduler::ServerConfig::default()
        };
        let scheduler = rask_scheduler::serve(config).await.expect("scheduler starts");
        let address = scheduler.address.clone();
        let client = AsyncClient::connect(&address).await.expect("connects");
        let before = client.submit(rask_core::delayed(1_i64)).expect("submitted while it lives");
        scheduler.shutdown().await;

        // result() learns that the connection closed...
        let awaited = tokio::time::timeout(Duration::from_secs(10), before.result()).await;
        let error = awaited.expect("result() does not hang").expect_err("no result");
        let gone = format!("the scheduler at {address} is gone");
        assert!(error.to_string().contains(&gone), "{error}");
        // ... and from then on, submit fails the same way instead of returning a future that
        // can never resolve.
        let error = client.submit(rask_core::delayed(2_i64)).expect_err("the scheduler is gone");
        assert!(error.to_string().contains(&gone), "{error}");
    }

    #[tokio::test]
    async fn connecting_where_nothing_listens_says_to_start_a_scheduler() {
        // A loopback port that was free a moment ago: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let error = AsyncClient::connect(&address).await.err().expect("nothing listens");
        let message = error.to_string();
        assert!(message.contains(&address), "{message}");
        assert!(message.contains("start a scheduler (`rask scheduler`)"), "{message}");
        assert!(message.contains("check the address"), "{message}");
    }
}
