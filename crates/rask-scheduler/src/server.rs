//! The scheduler's tokio shell: sockets in, events to the state machine, commands out.
//!
//! One task owns the [`SchedulerState`]; every connection has a reader task that turns packets
//! into events and a writer task that sends what the state machine says. The owner drains every
//! event that is already waiting before it sends anything, so a burst of results becomes one
//! batch per connection. A bad peer (garbage, a wrong version, an oversized frame) only loses
//! its own connection, which is logged.

use std::time::{Duration, Instant};

use rask_protocol::messages::{
    ClientId, ClientToScheduler, SchedulerToClient, SchedulerToWorker, WorkerId, WorkerToScheduler,
};
use rask_protocol::{handshake, Listener, Packet, Role, Stream, MAX_FRAME_BYTES};
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::dashboard::{self, DashboardData, SharedDashboard};
use crate::state::{Command, Event, SchedulerConfig, SchedulerState};

/// Settings of a scheduler server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen, such as `127.0.0.1:8786` (port 0: any free port), or `memory://NAME`
    /// for clients and workers in this process.
    pub address: String,
    /// The state machine's settings.
    pub scheduler: SchedulerConfig,
    /// The largest frame accepted from a peer.
    pub max_frame: usize,
    /// Where to serve the dashboard (`host:port`, port 0: any free port); `None`: no
    /// dashboard. An address that cannot be bound is logged and the scheduler runs without it.
    pub dashboard_address: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            address: "127.0.0.1:8786".into(),
            scheduler: SchedulerConfig::default(),
            max_frame: MAX_FRAME_BYTES,
            dashboard_address: None,
        }
    }
}

/// A running scheduler.
pub struct SchedulerHandle {
    /// The address it listens on.
    pub address: String,
    /// Where its dashboard is served, if it has one.
    pub dashboard_address: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops accepting, closes every connection and waits for the scheduler to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        let _ = self.done.await;
    }
}

enum Input {
    Event(Event),
    Client(ClientId, mpsc::UnboundedSender<Vec<SchedulerToClient>>),
    Worker(WorkerId, mpsc::UnboundedSender<Vec<SchedulerToWorker>>),
}

/// Binds and starts a scheduler in the current tokio runtime.
pub async fn serve(config: ServerConfig) -> std::io::Result<SchedulerHandle> {
    let listener = Listener::bind(&config.address).await?;
    let address = listener.address()?;
    info!(%address, "scheduler listening");
    let mut dashboard = None;
    let mut dashboard_address = None;
    if let Some(requested) = &config.dashboard_address {
        match tokio::net::TcpListener::bind(requested).await {
            Ok(http) => {
                let bound = http.local_addr()?.to_string();
                info!(address = %bound, "dashboard at http://{bound}/");
                let data = DashboardData::new(config.scheduler.task_stream_length);
                tokio::spawn(dashboard::serve(http, data.clone()));
                dashboard = Some(data);
                dashboard_address = Some(bound);
            }
            Err(error) => {
                warn!(%error, address = %requested, "the dashboard could not start; the scheduler runs without it")
            }
        }
    }
    let (inputs, receiver) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let done =
        tokio::spawn(run(listener, config, inputs, receiver, stopped, dashboard, address.clone()));
    Ok(SchedulerHandle { address, dashboard_address, shutdown: Some(stop), done })
}

async fn run(
    mut listener: Listener,
    config: ServerConfig,
    inputs: mpsc::UnboundedSender<Input>,
    mut receiver: mpsc::UnboundedReceiver<Input>,
    mut stopped: oneshot::Receiver<()>,
    dashboard: Option<SharedDashboard>,
    address: String,
) {
    let started = Instant::now();
    // The dashboard gets a copy a few times a second; HTTP requests never reach the state.
    let mut dashboard_tick = tokio::time::interval(Duration::from_millis(500));
    let mut state = SchedulerState::new(config.scheduler.clone());
    let mut clients: FxHashMap<ClientId, mpsc::UnboundedSender<Vec<SchedulerToClient>>> =
        FxHashMap::default();
    let mut workers: FxHashMap<WorkerId, mpsc::UnboundedSender<Vec<SchedulerToWorker>>> =
        FxHashMap::default();
    let mut next_id = 0u32;
    let mut commands = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_id += 1;
                    tokio::spawn(connection(stream, peer, next_id, inputs.clone(), started, config.max_frame));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = dashboard_tick.tick(), if dashboard.is_some() => {
                if let Some(data) = &dashboard {
                    dashboard::refresh(data, &state, &address);
                }
            }
            _ = tick.tick() => {
                state.handle(Event::Tick { now_us: started.elapsed().as_micros() as u64 }, &mut commands);
            }
            input = receiver.recv() => {
                let Some(input) = input else { break };
                let mut next = Some(input);
                // Drain what is already waiting: one batch of replies per burst.
                while let Some(input) = next.take().or_else(|| receiver.try_recv().ok()) {
                    match input {
                        Input::Event(event) => {
                            let client_left = matches!(event, Event::ClientDisconnected(_));
                            state.handle(event, &mut commands);
                            if client_left {
                                info!(stats = ?state.stats, tasks = state.num_tasks(), "scheduler counters");
                            }
                        }
                        Input::Client(id, sender) => {
                            clients.insert(id, sender);
                            state.handle(Event::ClientConnected(id), &mut commands);
                        }
                        Input::Worker(id, sender) => {
                            workers.insert(id, sender);
                        }
                    }
                }
            }
        }
        dispatch(&mut commands, &clients, &mut workers);
    }
    info!(stats = ?state.stats, "scheduler stopped");
}

fn dispatch(
    commands: &mut Vec<Command>,
    clients: &FxHashMap<ClientId, mpsc::UnboundedSender<Vec<SchedulerToClient>>>,
    workers: &mut FxHashMap<WorkerId, mpsc::UnboundedSender<Vec<SchedulerToWorker>>>,
) {
    let mut to_clients: FxHashMap<ClientId, Vec<SchedulerToClient>> = FxHashMap::default();
    let mut to_workers: FxHashMap<WorkerId, Vec<SchedulerToWorker>> = FxHashMap::default();
    for command in commands.drain(..) {
        match command {
            Command::ToClient(id, message) => to_clients.entry(id).or_default().push(message),
            Command::ToWorker(id, message) => to_workers.entry(id).or_default().push(message),
            Command::CloseWorker(id) => {
                workers.remove(&id);
            }
        }
    }
    for (id, batch) in to_clients {
        if let Some(sender) = clients.get(&id) {
            let _ = sender.send(batch);
        }
    }
    for (id, batch) in to_workers {
        if let Some(sender) = workers.get(&id) {
            let _ = sender.send(batch);
        }
    }
}

/// Sends what the scheduler queues for one connection, everything queued so far in one packet.
async fn write_batches<M: serde::Serialize>(
    mut sender: rask_protocol::PacketSender<Stream, M>,
    mut outgoing: mpsc::UnboundedReceiver<Vec<M>>,
) {
    while let Some(mut batch) = outgoing.recv().await {
        while let Ok(more) = outgoing.try_recv() {
            batch.extend(more);
        }
        if sender.send(Packet { messages: batch, data: Vec::new() }).await.is_err() {
            break;
        }
    }
}

async fn connection(
    stream: Stream,
    peer: String,
    id: u32,
    inputs: mpsc::UnboundedSender<Input>,
    started: Instant,
    max_frame: usize,
) {
    // The peer's role decides the message types; read the hello with the generic handshake
    // and then re-type the connection.
    let result =
        handshake::<_, ClientToScheduler, SchedulerToClient>(stream, Role::Scheduler, max_frame)
            .await;
    let (connection, hello) = match result {
        Ok(ok) => ok,
        Err(error) => {
            warn!(%peer, %error, "refused a connection");
            return;
        }
    };
    match hello.role {
        Role::Client => client_connection(connection, peer, ClientId(id), inputs).await,
        Role::Worker => {
            let connection = connection.retype::<WorkerToScheduler, SchedulerToWorker>();
            worker_connection(connection, peer, WorkerId(id), inputs, started).await
        }
        other => {
            warn!(%peer, role = ?other, "refused a connection: the scheduler talks to clients and workers only")
        }
    }
}

async fn client_connection(
    connection: rask_protocol::Connection<Stream, ClientToScheduler, SchedulerToClient>,
    peer: String,
    client: ClientId,
    inputs: mpsc::UnboundedSender<Input>,
) {
    info!(%peer, %client, "client connected");
    let (sender, mut receiver) = connection.split();
    let (outbox, outgoing) = mpsc::unbounded_channel::<Vec<SchedulerToClient>>();
    let _ = inputs.send(Input::Client(client, outbox));
    let writer = tokio::spawn(write_batches(sender, outgoing));
    loop {
        let packet = tokio::select! {
            packet = receiver.recv() => packet,
            // The scheduler stopped: end the connection (both halves dropped close it), so
            // the peer learns at once that the scheduler is gone.
            _ = inputs.closed() => break,
        };
        match packet {
            Ok(Some(packet)) => {
                for message in packet.messages {
                    let event = match message {
                        ClientToScheduler::UpdateGraph {
                            tasks,
                            wanted,
                            restrictions,
                            resources,
                            priority,
                        } => Event::UpdateGraph {
                            client,
                            tasks,
                            wanted,
                            restrictions,
                            resources,
                            priority,
                        },
                        ClientToScheduler::ReleaseKeys { keys } => {
                            Event::ReleaseKeys { client, keys }
                        }
                        ClientToScheduler::Cancel { keys } => Event::Cancel { client, keys },
                        ClientToScheduler::Scattered { keys, workers } => {
                            Event::Scattered { client, keys, workers }
                        }
                        ClientToScheduler::Request(request) => Event::Request { client, request },
                    };
                    let _ = inputs.send(Input::Event(event));
                }
            }
            Ok(None) => break,
            Err(error) => {
                warn!(%peer, %client, %error, "client connection failed");
                break;
            }
        }
    }
    info!(%peer, %client, "client disconnected");
    let _ = inputs.send(Input::Event(Event::ClientDisconnected(client)));
    writer.abort();
}

async fn worker_connection(
    connection: rask_protocol::Connection<Stream, WorkerToScheduler, SchedulerToWorker>,
    peer: String,
    worker: WorkerId,
    inputs: mpsc::UnboundedSender<Input>,
    started: Instant,
) {
    let (mut sender, mut receiver) = connection.split();
    let registration = match receiver.recv().await {
        Ok(Some(packet)) => packet.messages.into_iter().next(),
        _ => None,
    };
    let Some(WorkerToScheduler::Register { name, nthreads, address, resources }) = registration
    else {
        warn!(%peer, "a worker connection did not start with Register; closed");
        return;
    };
    info!(%peer, %worker, %name, %address, nthreads, "worker connected");
    if sender.send(Packet::one(SchedulerToWorker::Welcome { id: worker })).await.is_err() {
        return;
    }
    let (outbox, outgoing) = mpsc::unbounded_channel::<Vec<SchedulerToWorker>>();
    let _ = inputs.send(Input::Worker(worker, outbox));
    let now_us = started.elapsed().as_micros() as u64;
    let _ = inputs.send(Input::Event(Event::WorkerConnected {
        worker,
        name: name.clone(),
        address,
        nthreads,
        resources,
        now_us,
    }));
    // When the scheduler drops this worker (CloseWorker), the writer ends and closing the
    // socket tells the worker.
    let writer = tokio::spawn(write_batches(sender, outgoing));
    loop {
        let packet = tokio::select! {
            packet = receiver.recv() => packet,
            // The scheduler stopped: end the connection (both halves dropped close it), so
            // the peer learns at once that the scheduler is gone.
            _ = inputs.closed() => break,
        };
        match packet {
            Ok(Some(packet)) => {
                for message in packet.messages {
                    let event = match message {
                        WorkerToScheduler::TaskFinished { key, nbytes, timing } => {
                            Event::TaskFinished { worker, key, nbytes, timing }
                        }
                        WorkerToScheduler::TaskErred { key, failure } => {
                            Event::TaskErred { worker, key, failure }
                        }
                        WorkerToScheduler::Started { keys } => Event::TaskStarted { worker, keys },
                        WorkerToScheduler::Transferred { from, values, bytes, timing } => {
                            Event::Transferred { worker, from, values, bytes, timing }
                        }
                        WorkerToScheduler::StealResponse { key, stolen } => {
                            Event::StealResponse { worker, key, stolen }
                        }
                        WorkerToScheduler::Replicated { keys } => {
                            Event::Replicated { worker, keys }
                        }
                        WorkerToScheduler::MissingData { key, dep } => {
                            Event::MissingData { worker, key, dep }
                        }
                        WorkerToScheduler::Heartbeat {
                            bandwidth,
                            memory_bytes,
                            cpu_seconds,
                            memory,
                            ..
                        } => Event::Heartbeat {
                            worker,
                            now_us: started.elapsed().as_micros() as u64,
                            bandwidth,
                            memory_bytes,
                            cpu_seconds,
                            memory,
                        },
                        WorkerToScheduler::Spilled { direction, values, bytes, timing } => {
                            Event::Spilled { worker, direction, values, bytes, timing }
                        }
                        WorkerToScheduler::Register { .. } => {
                            debug!(%worker, "ignored a second Register");
                            continue;
                        }
                    };
                    let _ = inputs.send(Input::Event(event));
                }
            }
            Ok(None) => break,
            Err(error) => {
                warn!(%peer, %worker, %error, "worker connection failed");
                break;
            }
        }
    }
    info!(%peer, %worker, %name, "worker disconnected");
    let _ = inputs.send(Input::Event(Event::WorkerDisconnected(worker)));
    writer.abort();
}
