//! A scheduler and workers inside this process, for tests, notebooks-style exploration and
//! single-machine work that wants the distributed scheduler's behaviour.
//!
//! Everything runs on a private tokio runtime and talks over loopback sockets: the same code
//! paths as a real cluster, without starting processes.

use std::sync::Arc;

use rask_scheduler::{serve, SchedulerHandle, ServerConfig};
use rask_worker::{WorkerConfig, WorkerHandle};

use crate::{Client, ClientError, Result};

/// A scheduler and workers in this process.
pub struct LocalCluster {
    runtime: Arc<tokio::runtime::Runtime>,
    scheduler: Option<SchedulerHandle>,
    workers: Vec<Option<WorkerHandle>>,
    address: String,
    threads_per_worker: usize,
}

impl LocalCluster {
    /// Starts a scheduler on a free loopback port and `workers` workers of
    /// `threads_per_worker` threads each.
    pub fn new(workers: usize, threads_per_worker: usize) -> Result<Self> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("rask-local-cluster")
                .enable_all()
                .build()
                .map_err(|e| ClientError::Connect {
                    address: "127.0.0.1:0".into(),
                    source: e.into(),
                })?,
        );
        let config = ServerConfig { address: "127.0.0.1:0".into(), ..ServerConfig::default() };
        let scheduler = runtime.block_on(serve(config)).map_err(|e| ClientError::Connect {
            address: "127.0.0.1:0".into(),
            source: e.into(),
        })?;
        let address = scheduler.address.to_string();
        let mut cluster = LocalCluster {
            runtime,
            scheduler: Some(scheduler),
            workers: Vec::new(),
            address,
            threads_per_worker,
        };
        for _ in 0..workers {
            cluster.add_worker()?;
        }
        Ok(cluster)
    }

    /// The scheduler's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A client connected to this cluster.
    pub fn client(&self) -> Result<Client> {
        Client::connect(&self.address)
    }

    /// Starts one more worker; returns its index.
    pub fn add_worker(&mut self) -> Result<usize> {
        let index = self.workers.len();
        let config = WorkerConfig {
            nthreads: self.threads_per_worker,
            name: format!("local-worker-{index}"),
            ..WorkerConfig::new(self.address.clone())
        };
        let worker = self.runtime.block_on(rask_worker::start(config)).map_err(|e| {
            ClientError::Fetch { key: rask_core::Key::new("worker"), reason: e.to_string() }
        })?;
        self.workers.push(Some(worker));
        Ok(index)
    }

    /// The data address of worker `index`, if it runs.
    pub fn worker_address(&self, index: usize) -> Option<&str> {
        self.workers.get(index).and_then(Option::as_ref).map(|w| w.address.as_str())
    }

    /// Stops worker `index` abruptly, as if it died: its results are lost to the cluster.
    pub fn stop_worker(&mut self, index: usize) {
        if let Some(worker) = self.workers.get_mut(index).and_then(Option::take) {
            let _ = self.runtime.block_on(worker.shutdown());
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for worker in self.workers.iter_mut().filter_map(Option::take) {
            let _ = self.runtime.block_on(worker.shutdown());
        }
        if let Some(scheduler) = self.scheduler.take() {
            self.runtime.block_on(scheduler.shutdown());
        }
    }
}
