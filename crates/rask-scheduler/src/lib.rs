//! # rask-scheduler: the distributed scheduler
//!
//! [`state::SchedulerState`] is the scheduler itself: a plain struct whose `handle` method takes
//! an [`state::Event`] (a client's graph, a worker's result, a worker's death, time passing) and
//! appends [`state::Command`]s (messages to workers and clients). It does no I/O, so its tests
//! drive it directly and deterministically. [`server`] is the thin tokio shell around it: it
//! accepts connections, turns packets into events, and sends the commands.

pub mod dashboard;
pub mod server;
pub mod state;

pub use rask_protocol::messages::RecordKind;
pub use server::{serve, SchedulerHandle, ServerConfig};
pub use state::{
    Command, Event, PrefixProgress, SchedulerConfig, SchedulerState, SchedulerStats, TaskRecord,
    TaskStatus, WorkerView,
};
