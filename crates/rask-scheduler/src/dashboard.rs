//! The scheduler's dashboard: what it knows, over HTTP.
//!
//! The scheduler's core loop copies a summary into [`DashboardData`] a few times a second —
//! workers, per-prefix progress, counters, and the task-stream records added since the last
//! copy — so HTTP handlers never touch the scheduler's state and never slow scheduling down.
//! Every page's data is a JSON endpoint (`/api/status`, `/api/workers`, `/api/progress`,
//! `/api/task-stream?since=N`, `/api/graph`), and `/api/events` pushes each new copy to the
//! open pages as a server-sent event, so they update live without asking; the pages (`/` for everything at a glance,
//! `/tasks`, `/progress`, `/workers`, `/graph`) are plain HTML and JavaScript embedded in the
//! binary (no CDN, no third-party code), drawing on canvases.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value as JsonValue};
use tokio::net::TcpListener;

use crate::state::SchedulerState;

/// The live page, with the shared task-stream drawing code put in once.
fn index_html() -> &'static str {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| {
        include_str!("dashboard/index.html").replace("/*STREAM_JS*/", rask_local::report::STREAM_JS)
    })
}

/// The page showing one view (`status` shows them all).
fn page(name: &str) -> String {
    index_html().replacen("<body>", &format!("<body data-page=\"{name}\">"), 1)
}

/// What the dashboard serves, refreshed by the scheduler's core loop.
pub struct DashboardData {
    status: JsonValue,
    graph: JsonValue,
    workers: JsonValue,
    progress: JsonValue,
    stream: VecDeque<JsonValue>,
    /// The number of the next task-stream record (numbers count every record ever added).
    stream_next: u64,
    capacity: usize,
    /// Counts the refreshes; pages listening on `/api/events` wake up on each.
    updates: tokio::sync::watch::Sender<u64>,
}

/// The dashboard data shared between the core loop and the HTTP handlers.
pub type SharedDashboard = Arc<Mutex<DashboardData>>;

impl DashboardData {
    /// Empty data, keeping at most `capacity` task-stream records.
    pub fn new(capacity: usize) -> SharedDashboard {
        Arc::new(Mutex::new(DashboardData {
            status: json!({}),
            graph: json!({"nodes": [], "too_large": false}),
            workers: json!([]),
            progress: json!({}),
            stream: VecDeque::new(),
            stream_next: 0,
            capacity: capacity.max(1),
            updates: tokio::sync::watch::Sender::new(0),
        }))
    }
}

/// Copies what the scheduler knows now into the dashboard data.
pub fn refresh(data: &SharedDashboard, state: &SchedulerState, address: &str) {
    let workers: Vec<JsonValue> = state
        .worker_views()
        .into_iter()
        .map(|w| {
            json!({
                "id": w.id.0, "name": w.name, "address": w.address, "nthreads": w.nthreads,
                "processing": w.processing, "executing": w.executing, "results": w.results,
                "bytes": w.bytes, "last_seen_us": w.last_seen_us, "resources": w.resources,
                "memory_bytes": w.memory_bytes, "cpu_percent": w.cpu_percent, "bandwidth": w.bandwidth,
                "memory_limit": w.memory.limit, "managed_bytes": w.memory.managed_bytes,
                "spilled_bytes": w.memory.spilled_bytes, "spilled_values": w.memory.spilled_values,
                "paused": w.memory.paused,
                "seconds_since_heartbeat": state.now_us().saturating_sub(w.last_seen_us) as f64 / 1e6,
            })
        })
        .collect();
    let progress: serde_json::Map<String, JsonValue> = state
        .progress()
        .into_iter()
        .map(|(prefix, p)| {
            let counts = json!({
                "released": p.released, "waiting": p.waiting, "queued": p.queued,
                "processing": p.processing, "memory": p.memory, "erred": p.erred,
            });
            (prefix, counts)
        })
        .collect();
    let stats = &state.stats;
    let status = json!({
        "address": address,
        "version": env!("CARGO_PKG_VERSION"),
        "workers": workers.len(),
        "threads": workers.iter().map(|w| w["nthreads"].as_u64().unwrap_or(0)).sum::<u64>(),
        "tasks": state.num_tasks(),
        "bandwidth": state.bandwidth(),
        "assigned": stats.assigned,
        "stolen": stats.stolen,
        "steal_requests": stats.steal_requests,
    });
    let graph = match state.graph_view(GRAPH_LIMIT) {
        Some(tasks) => {
            let nodes: Vec<JsonValue> = tasks
                .into_iter()
                .map(|(key, status, deps)| {
                    json!({
                        "key": key.to_string(),
                        "prefix": key.prefix(),
                        "status": status_name(status),
                        "deps": deps.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "nodes": nodes, "too_large": false })
        }
        None => json!({ "nodes": [], "too_large": true, "limit": GRAPH_LIMIT }),
    };
    let mut data = data.lock().expect("not poisoned");
    data.graph = graph;
    let (records, next) = state.task_stream_since(data.stream_next);
    let first_number = next - records.len() as u64;
    for (i, record) in records.into_iter().enumerate() {
        if data.stream.len() == data.capacity {
            data.stream.pop_front();
        }
        // Transfers and disk traffic get rows of their own under the worker's threads.
        let (kind, prefix, thread) =
            record.kind.presentation(record.key.prefix(), record.timing.thread);
        data.stream.push_back(json!({
            "seq": first_number + i as u64,
            "key": record.key.to_string(),
            "prefix": prefix,
            "kind": kind,
            "worker": record.worker.0,
            "thread": thread,
            "start_us": record.timing.started_at_us,
            "duration_us": record.timing.duration_us,
            "nbytes": record.nbytes,
        }));
    }
    data.stream_next = next;
    data.status = status;
    data.workers = JsonValue::Array(workers);
    data.progress = JsonValue::Object(progress);
    data.updates.send_modify(|n| *n += 1);
}

/// The most tasks the graph page draws.
const GRAPH_LIMIT: usize = 1_000;

fn status_name(status: crate::state::TaskStatus) -> &'static str {
    use crate::state::TaskStatus;
    match status {
        TaskStatus::Released => "released",
        TaskStatus::Waiting => "waiting",
        TaskStatus::Queued => "queued",
        TaskStatus::Processing(_) => "processing",
        TaskStatus::Memory => "memory",
        TaskStatus::Erred => "erred",
    }
}

/// Serves the dashboard on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, data: SharedDashboard) {
    let app = Router::new()
        .route("/", get(|| async { Html(page("status")) }))
        .route("/tasks", get(|| async { Html(page("tasks")) }))
        .route("/progress", get(|| async { Html(page("progress")) }))
        .route("/workers", get(|| async { Html(page("workers")) }))
        .route("/graph", get(|| async { Html(page("graph")) }))
        .route("/api/graph", part(|d| &d.graph))
        .route("/api/status", part(|d| &d.status))
        .route("/api/workers", part(|d| &d.workers))
        .route("/api/progress", part(|d| &d.progress))
        .route("/api/task-stream", get(task_stream))
        .route("/api/events", get(events))
        .with_state(data);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::warn!(%error, "the dashboard stopped");
    }
}

/// A JSON endpoint serving one part of the latest copy.
fn part(pick: fn(&DashboardData) -> &JsonValue) -> axum::routing::MethodRouter<SharedDashboard> {
    get(move |State(data): State<SharedDashboard>| async move {
        Json(pick(&data.lock().expect("not poisoned")).clone())
    })
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

async fn task_stream(
    State(data): State<SharedDashboard>,
    Query(query): Query<StreamQuery>,
) -> impl IntoResponse {
    let data = data.lock().expect("not poisoned");
    Json(stream_page(&data, query.since.unwrap_or(0), query.limit.unwrap_or(20_000)))
}

/// Task-stream records numbered `since` and later (at most `limit`), and the next number.
fn stream_page(data: &DashboardData, since: u64, limit: usize) -> JsonValue {
    let records: Vec<&JsonValue> = data
        .stream
        .iter()
        .filter(|r| r["seq"].as_u64().is_some_and(|seq| seq >= since))
        .take(limit)
        .collect();
    let next = records
        .last()
        .and_then(|r| r["seq"].as_u64())
        .map_or(data.stream_next.max(since), |s| s + 1);
    json!({ "records": records, "next": next })
}

/// Server-sent events: after every refresh, one `message` with the status, workers, progress
/// and the task-stream records the page has not seen (from `?since=N` on). Each connection
/// ends after a minute and the browser reconnects (with `since` from its last message), so a
/// page that went away leaves nothing running for long.
async fn events(
    State(data): State<SharedDashboard>,
    Query(query): Query<StreamQuery>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let updates = data.lock().expect("not poisoned").updates.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let since = query.since.unwrap_or(0);
    let stream = futures_util::stream::unfold(
        (data, updates, since, true),
        move |(data, mut updates, since, first)| async move {
            // The first message goes out at once; later ones after each refresh.
            if !first {
                match tokio::time::timeout_at(deadline, updates.changed()).await {
                    Ok(Ok(())) => {}
                    _ => return None,
                }
            }
            let message = {
                let data = data.lock().expect("not poisoned");
                let page = stream_page(&data, since, 20_000);
                json!({
                    "status": data.status, "workers": data.workers, "progress": data.progress,
                    "stream": page,
                })
            };
            let next = message["stream"]["next"].as_u64().unwrap_or(since);
            let event = Event::default().data(message.to_string());
            Some((Ok(event), (data, updates, next, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
