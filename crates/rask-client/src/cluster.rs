//! A scheduler and workers on this machine, for tests, exploration and single-machine work
//! that wants the distributed scheduler's behaviour.
//!
//! * [`LocalCluster::new`]: everything inside this process, on a private tokio runtime,
//!   talking over in-memory pipes (`memory://` addresses) — the same protocol and code paths
//!   as a real cluster, without sockets or processes.
//! * [`LocalCluster::processes`]: a scheduler and workers as child processes of a program
//!   that runs `rask::cli::cluster_main` (the `rask` binary, or your own binary so that the
//!   workers know your functions: [`LocalCluster::processes_of_this_binary`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rask_scheduler::{serve, SchedulerHandle, ServerConfig};
use rask_worker::{WorkerConfig, WorkerHandle};

use crate::{Client, ClientError, Result};

enum Backing {
    InProcess {
        runtime: Arc<tokio::runtime::Runtime>,
        scheduler: Option<SchedulerHandle>,
        workers: Vec<Option<WorkerHandle>>,
    },
    Processes {
        program: PathBuf,
        dir: PathBuf,
        scheduler: Child,
        workers: Vec<Option<Child>>,
        /// Extra arguments of every `program worker`.
        worker_args: Vec<String>,
    },
}

/// A scheduler and workers on this machine.
pub struct LocalCluster {
    backing: Backing,
    address: String,
    threads_per_worker: usize,
}

fn start_error(what: &str, error: impl std::fmt::Display) -> ClientError {
    ClientError::ClusterStart { step: what.to_string(), reason: error.to_string() }
}

impl LocalCluster {
    /// Starts a scheduler and `workers` workers of `threads_per_worker` threads each, all in
    /// this process.
    pub fn new(workers: usize, threads_per_worker: usize) -> Result<Self> {
        Self::in_process(workers, threads_per_worker, None)
    }

    /// [`LocalCluster::new`] with the scheduler's dashboard served at `dashboard` (`host:port`,
    /// port 0: any free port; see [`LocalCluster::dashboard_address`]).
    pub fn with_dashboard(
        workers: usize,
        threads_per_worker: usize,
        dashboard: &str,
    ) -> Result<Self> {
        Self::in_process(workers, threads_per_worker, Some(dashboard.to_string()))
    }

    fn in_process(
        workers: usize,
        threads_per_worker: usize,
        dashboard: Option<String>,
    ) -> Result<Self> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("rask-local-cluster")
                .enable_all()
                .build()
                .map_err(|e| start_error("starting a runtime", e))?,
        );
        // In-memory pipes instead of sockets: the same protocol, no ports, no kernel.
        let config = ServerConfig {
            address: rask_protocol::transport::memory_address("scheduler"),
            dashboard_address: dashboard,
            ..ServerConfig::default()
        };
        let scheduler = runtime
            .block_on(serve(config))
            .map_err(|e| start_error("starting the scheduler", e))?;
        let address = scheduler.address.clone();
        let backing =
            Backing::InProcess { runtime, scheduler: Some(scheduler), workers: Vec::new() };
        let mut cluster = LocalCluster { backing, address, threads_per_worker };
        for _ in 0..workers {
            cluster.add_worker()?;
        }
        Ok(cluster)
    }

    /// Starts `program scheduler` and `workers` times `program worker` as child processes on
    /// loopback, and waits until every worker has registered.
    pub fn processes(
        program: impl AsRef<Path>,
        workers: usize,
        threads_per_worker: usize,
    ) -> Result<Self> {
        Self::processes_with(program, workers, threads_per_worker, &["--dashboard-address", "none"])
    }

    /// [`LocalCluster::processes`] with extra arguments for `program scheduler`, such as
    /// `["--dashboard-address", "127.0.0.1:8787"]`.
    pub fn processes_with(
        program: impl AsRef<Path>,
        workers: usize,
        threads_per_worker: usize,
        scheduler_args: &[&str],
    ) -> Result<Self> {
        Self::processes_with_args(program, workers, threads_per_worker, scheduler_args, &[])
    }

    /// [`LocalCluster::processes_with`] with extra arguments for every `program worker` too,
    /// such as `["--memory-limit", "200MiB"]`.
    pub fn processes_with_args(
        program: impl AsRef<Path>,
        workers: usize,
        threads_per_worker: usize,
        scheduler_args: &[&str],
        worker_args: &[&str],
    ) -> Result<Self> {
        let program = program.as_ref().to_path_buf();
        let dir =
            std::env::temp_dir().join(format!("rask-cluster-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| start_error("creating a directory for logs", e))?;
        let file = dir.join("scheduler.addr");
        let scheduler = Command::new(&program)
            .args(["scheduler", "--port", "0", "--scheduler-file"])
            .arg(&file)
            .args(scheduler_args)
            .stdout(Stdio::null())
            .stderr(log(&dir, "scheduler.log")?)
            .spawn()
            .map_err(|e| start_error(&format!("starting {} scheduler", program.display()), e))?;
        let worker_args = worker_args.iter().map(ToString::to_string).collect();
        let mut backing =
            Backing::Processes { program, dir, scheduler, workers: Vec::new(), worker_args };
        let address = wait_for_file(&file, Duration::from_secs(30))
            .inspect_err(|_| kill_all(&mut backing))?;
        let mut cluster = LocalCluster { backing, address, threads_per_worker };
        for _ in 0..workers {
            cluster.add_worker()?;
        }
        let client = cluster.client()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.workers()?.len() < workers {
            if Instant::now() > deadline {
                return Err(start_error(
                    "waiting for the workers to register",
                    "not all did within 30 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(cluster)
    }

    /// [`LocalCluster::processes`] of the running program: its workers know every function
    /// it registers. The program's `main` must start with `rask::cli::cluster_main`.
    pub fn processes_of_this_binary(workers: usize, threads_per_worker: usize) -> Result<Self> {
        let program =
            std::env::current_exe().map_err(|e| start_error("finding this program", e))?;
        Self::processes(program, workers, threads_per_worker)
    }

    /// The scheduler's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Where the scheduler's dashboard is served, if it has one (in-process clusters made with
    /// [`LocalCluster::with_dashboard`]).
    pub fn dashboard_address(&self) -> Option<&str> {
        match &self.backing {
            Backing::InProcess { scheduler, .. } => {
                scheduler.as_ref().and_then(|s| s.dashboard_address.as_deref())
            }
            Backing::Processes { .. } => None,
        }
    }

    /// The scheduler's process id, when it runs as a child process.
    pub fn scheduler_pid(&self) -> Option<u32> {
        match &self.backing {
            Backing::Processes { scheduler, .. } => Some(scheduler.id()),
            Backing::InProcess { .. } => None,
        }
    }

    /// The process ids of the running worker processes (none for an in-process cluster).
    pub fn worker_pids(&self) -> Vec<u32> {
        match &self.backing {
            Backing::Processes { workers, .. } => workers.iter().flatten().map(Child::id).collect(),
            Backing::InProcess { .. } => Vec::new(),
        }
    }

    /// A client connected to this cluster.
    pub fn client(&self) -> Result<Client> {
        Client::connect(&self.address)
    }

    /// Starts one more worker; returns its index.
    pub fn add_worker(&mut self) -> Result<usize> {
        let threads = self.threads_per_worker;
        match &mut self.backing {
            Backing::InProcess { runtime, workers, .. } => {
                let index = workers.len();
                let config = WorkerConfig {
                    nthreads: threads,
                    name: format!("local-worker-{index}"),
                    ..WorkerConfig::new(self.address.clone())
                };
                let worker = runtime
                    .block_on(rask_worker::start(config))
                    .map_err(|e| start_error("starting a worker", e))?;
                workers.push(Some(worker));
                Ok(index)
            }
            Backing::Processes { program, dir, workers, worker_args, .. } => {
                let index = workers.len();
                let child = Command::new(&*program)
                    .args(["worker", &self.address, "--nthreads", &threads.to_string(), "--name"])
                    .arg(format!("local-worker-{index}"))
                    .args(&*worker_args)
                    .stdout(Stdio::null())
                    .stderr(log(dir, &format!("worker-{index}.log"))?)
                    .spawn()
                    .map_err(|e| start_error("starting a worker process", e))?;
                workers.push(Some(child));
                Ok(index)
            }
        }
    }

    /// Stops worker `index` abruptly, as if it died (SIGKILL for a process): its results are
    /// lost to the cluster.
    pub fn stop_worker(&mut self, index: usize) {
        match &mut self.backing {
            Backing::InProcess { runtime, workers, .. } => {
                if let Some(worker) = workers.get_mut(index).and_then(Option::take) {
                    let _ = runtime.block_on(worker.shutdown());
                }
            }
            Backing::Processes { workers, .. } => {
                if let Some(mut child) = workers.get_mut(index).and_then(Option::take) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn log(dir: &Path, name: &str) -> Result<std::fs::File> {
    std::fs::File::create(dir.join(name)).map_err(|e| start_error("creating a log file", e))
}

fn wait_for_file(file: &Path, wait: Duration) -> Result<String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if !text.trim().is_empty() {
                return Ok(text.trim().to_string());
            }
        }
        if Instant::now() > deadline {
            return Err(start_error(
                "waiting for the scheduler to write its address",
                format!("nothing within {wait:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_all(backing: &mut Backing) {
    match backing {
        Backing::InProcess { runtime, scheduler, workers } => {
            for worker in workers.iter_mut().filter_map(Option::take) {
                let _ = runtime.block_on(worker.shutdown());
            }
            if let Some(scheduler) = scheduler.take() {
                runtime.block_on(scheduler.shutdown());
            }
        }
        Backing::Processes { dir, scheduler, workers, .. } => {
            for mut child in workers.iter_mut().filter_map(Option::take) {
                terminate(&mut child);
            }
            terminate(scheduler);
            if std::env::var_os("RASK_KEEP_LOGS").is_none() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Asks a child process to stop (SIGTERM, so it shuts down cleanly), and kills it if it has
/// not within two seconds.
fn terminate(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    if asked.is_ok_and(|status| status.success()) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        kill_all(&mut self.backing);
    }
}
