//! The dashboard's JSON endpoints and page, against a running in-process cluster.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{eventually, get, json, within};
use rask::testing::{inc, make_data, slow_inc, slow_len};
use rask::LocalCluster;

#[test]
fn the_dashboard_shows_the_computation_its_tasks_and_its_workers() {
    within(60, || {
        let cluster = LocalCluster::with_dashboard(2, 1, "127.0.0.1:0").unwrap();
        let address = cluster.dashboard_address().expect("a dashboard").to_string();
        let client = cluster.client().unwrap();
        let futures = client.map(|i| slow_inc::lazy(i, 2), 0..20).unwrap();
        assert_eq!(client.gather(&futures).unwrap().len(), 20);
        let more = client.submit(inc::lazy(1)).unwrap();
        client.result(&more).unwrap();

        eventually(10, "the task stream to show the 21 tasks", || {
            json(&address, "/api/task-stream?since=0")["records"]
                .as_array()
                .is_some_and(|r| r.len() == 21)
        });
        let stream = json(&address, "/api/task-stream?since=0");
        let records = stream["records"].as_array().unwrap();
        assert!(records.iter().filter(|r| r["prefix"] == "slow_inc").count() == 20, "{records:?}");
        assert!(records
            .iter()
            .all(|r| r["duration_us"].as_u64().is_some() && r["start_us"].as_u64() > Some(0)));
        let next = stream["next"].as_u64().unwrap();
        let newer = json(&address, &format!("/api/task-stream?since={next}"));
        assert!(newer["records"].as_array().unwrap().is_empty(), "nothing new since {next}");

        let status = json(&address, "/api/status");
        assert_eq!(status["workers"], 2);
        assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
        assert!(status["assigned"].as_u64().unwrap() >= 21);
        let workers = json(&address, "/api/workers");
        assert_eq!(workers.as_array().unwrap().len(), 2);
        let progress = json(&address, "/api/progress");
        assert_eq!(progress["slow_inc"]["memory"], 20, "{progress}");

        // The graph of what the scheduler holds: the 20 held results (the rest was released).
        let graph = json(&address, "/api/graph");
        assert_eq!(graph["too_large"], false);
        let nodes = graph["nodes"].as_array().unwrap();
        assert!(
            nodes.iter().filter(|n| n["prefix"] == "slow_inc" && n["status"] == "memory").count()
                == 20,
            "{graph}"
        );
        for page in ["/tasks", "/progress", "/workers", "/graph"] {
            let (status, html) = get(&address, page);
            assert!(
                status.contains("200") && html.contains(&format!("data-page=\"{}\"", &page[1..])),
                "{page}: {status}"
            );
        }
        // A reduction over results on both workers moves inputs: transfers show in the stream.
        let sum = client.submit(rask::testing::total::lazy(&futures)).unwrap();
        assert_eq!(client.result(&sum).unwrap(), (1..=20).sum::<i64>());
        eventually(10, "a transfer in the task stream", || {
            json(&address, "/api/task-stream?since=0")["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["kind"] == "transfer" && r["thread"] == 1000))
        });
        let (status, page) = get(&address, "/");
        assert!(status.contains("200") && page.contains("<canvas id=\"stream\">"), "{status}");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN links: the page works offline"
        );
        let (status, _) = get(&address, "/no/such/page");
        assert!(status.contains("404"), "{status}");
    });
}

#[test]
fn updates_are_pushed_to_open_pages_as_server_sent_events() {
    within(60, || {
        let cluster = LocalCluster::with_dashboard(1, 1, "127.0.0.1:0").unwrap();
        let address = cluster.dashboard_address().expect("a dashboard").to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(stream, "GET /api/events HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
        let mut reader = std::io::BufReader::new(stream);
        // Reads `data:` lines until one satisfies `done` (each read has the timeout above).
        let mut next_message = |done: &dyn Fn(&serde_json::Value) -> bool| loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            assert!(n > 0, "the event stream ended");
            if let Some(data) = line.strip_prefix("data:") {
                let message: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                if done(&message) {
                    return message;
                }
            }
        };
        // A page that opens before the scheduler's first copy (every 500 ms) gets the empty
        // initial one first; the next carries the status.
        let first = next_message(&|m| m["status"]["version"].is_string());
        assert!(first["stream"]["records"].as_array().is_some(), "{first}");
        // Work done after the page opened arrives without a request.
        let client = cluster.client().unwrap();
        let future = client.submit(inc::lazy(41)).unwrap();
        assert_eq!(client.result(&future).unwrap(), 42);
        let pushed = next_message(&|m| {
            m["stream"]["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["prefix"] == "inc"))
        });
        assert_eq!(pushed["workers"].as_array().unwrap().len(), 1);
    });
}

#[test]
fn the_task_stream_keeps_as_many_tasks_as_the_scheduler_is_told() {
    within(120, || {
        let address = common::free_loopback_address();
        let cluster = LocalCluster::processes_with(
            env!("CARGO_BIN_EXE_rask"),
            1,
            1,
            &["--dashboard-address", &address, "--task-stream-length", "5"],
        )
        .unwrap();
        let client = cluster.client().unwrap();
        let futures = client.map(inc::lazy, 0..20).unwrap();
        assert_eq!(client.gather(&futures).unwrap().len(), 20);
        // The newest five are kept: the stream's cursor counts all twenty.
        eventually(20, "the task stream to count 20 tasks", || {
            std::net::TcpStream::connect(&address).is_ok()
                && json(&address, "/api/task-stream?since=0")["next"].as_u64() == Some(20)
        });
        let records =
            json(&address, "/api/task-stream?since=0")["records"].as_array().unwrap().len();
        assert_eq!(records, 5);
    });
}

/// Files a worker has spilled under `local_directory` now.
fn spill_files(local_directory: &std::path::Path) -> usize {
    let mut files = 0;
    for dir in std::fs::read_dir(local_directory).unwrap().flatten() {
        if dir.file_name().to_string_lossy().starts_with("rask-spill-") {
            files += std::fs::read_dir(dir.path()).map_or(0, |d| d.count());
        }
    }
    files
}

/// Computes 30 results of 8 MB on the cluster, holds them, and waits until the worker (whose
/// dashboard is at `address`) reports that it spilled some.
fn hold_until_spilled(client: &rask::Client, address: &str) -> Vec<rask::Future<Vec<f64>>> {
    let data = client.map(|i| make_data::lazy(1_000_000 + i), 0..30).unwrap();
    client.wait(&data, Duration::from_secs(120)).unwrap();
    eventually(20, "the worker to report spilled results", || {
        std::net::TcpStream::connect(address).is_ok()
            && json(address, "/api/workers")[0]["spilled_values"].as_u64() > Some(0)
    });
    data
}

#[test]
fn a_worker_over_its_memory_target_spills_to_disk_reads_back_whole_and_the_dashboard_shows_it() {
    within(240, || {
        let address = common::free_loopback_address();
        let local_directory = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::processes_with_args(
            env!("CARGO_BIN_EXE_rask"),
            1,
            1,
            &["--dashboard-address", &address],
            &[
                "--memory-limit",
                "200MiB",
                "--local-directory",
                local_directory.path().to_str().unwrap(),
            ],
        )
        .unwrap();
        let client = cluster.client().unwrap();
        let report_start = client.start_report().unwrap();
        // 240 MB held by the client against a target of 120 MiB.
        let data = hold_until_spilled(&client, &address);
        assert!(spill_files(local_directory.path()) > 0, "spill files in the local directory");
        let worker = &json(&address, "/api/workers")[0];
        assert_eq!(worker["memory_limit"].as_u64(), Some(200 << 20));
        assert!(
            worker["managed_bytes"].as_u64().unwrap() <= 130_000_000,
            "in memory: at most the target (and one value) {worker}"
        );

        // Tasks read spilled inputs back whole, and the client gets spilled values whole.
        let length_futures: Vec<_> = data
            .iter()
            .enumerate()
            .map(|(i, d)| client.submit(slow_len::lazy(d, i as i64, 0)).unwrap())
            .collect();
        let lengths: Vec<i64> = client.gather(&length_futures).unwrap();
        let expected: Vec<i64> = (0..30).map(|i| 1_000_000 + 2 * i).collect();
        assert_eq!(lengths, expected);
        let first: Vec<Vec<f64>> = client.gather(&data[..2]).unwrap();
        assert_eq!(first[0].len(), 1_000_000);
        assert_eq!((first[1].len(), first[1][1_000_000]), (1_000_001, 1_000_000.0));

        // The task stream shows the disk traffic in rows of its own.
        eventually(10, "disk writes and reads in the task stream", || {
            let stream = json(&address, "/api/task-stream?since=0");
            let records = stream["records"].as_array().unwrap();
            let disk = |prefix: &str| {
                records
                    .iter()
                    .any(|r| r["kind"] == "spill" && r["prefix"] == prefix && r["thread"] == 1001)
            };
            disk("disk-write") && disk("disk-read")
        });
        let (dom, log) = browser(
            &format!("http://{address}/workers"),
            "200.0 MiB",
            Some(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-spill.png")),
        );
        assert!(dom.contains("results)"), "the workers page shows spilled results: {dom}");
        assert!(!log.lines().any(|l| l.starts_with("CONSOLE error")), "{log}");
        let shot =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-spill-tasks.png");
        let (_, log) =
            browser(&format!("http://{address}/tasks"), "data-page=\"tasks\"", Some(&shot));
        assert!(!log.lines().any(|l| l.starts_with("CONSOLE error")), "{log}");

        // The performance report draws the disk traffic too, and still counts only tasks.
        let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("spill-report.html");
        assert_eq!(client.write_report(&report_start, "spilling", &report).unwrap(), 60);
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(html.contains("\"kind\":\"spill\"") && html.contains("\"prefix\":\"disk-write\""));
        let (dom, log) =
            browser(&format!("file://{}", report.display()), "disk reads and writes", None);
        assert!(dom.contains("60 tasks in"), "the summary counts tasks only: {dom}");
        assert!(!log.lines().any(|l| l.starts_with("CONSOLE error")), "{log}");

        // Freed results leave the disk too (the small lengths may have been spilled as well:
        // they are older than the inputs read back for them).
        drop(data);
        drop(length_futures);
        eventually(20, "the spill files to be deleted", || {
            spill_files(local_directory.path()) == 0
        });
    });
}

/// Opens `url` in headless Chromium (driven by `scripts/browser.mjs` through playwright-core),
/// waiting until the page shows `expect`; returns the page's HTML and its console messages.
/// One browser at a time (they are heavy on two cores); a launch that crashes under load is
/// retried twice.
fn browser(url: &str, expect: &str, screenshot: Option<&std::path::Path>) -> (String, String) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/browser.mjs");
    let mut last_error = String::new();
    for _ in 0..3 {
        let mut command = std::process::Command::new("node");
        command.arg(script).arg(url).args(["--expect", expect]);
        if let Some(path) = screenshot {
            command.arg("--screenshot").arg(path);
        }
        let output = command.output().expect(
            "node runs scripts/browser.mjs (scripts/install-chromium.sh installs what it needs)",
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            return (String::from_utf8_lossy(&output.stdout).into_owned(), stderr);
        }
        last_error = format!("{:?}: {stderr}", output.status);
    }
    panic!("the browser failed three times; the last time: {last_error}");
}

#[test]
fn a_real_browser_shows_the_tasks_progress_and_workers_without_console_errors() {
    within(180, || {
        let cluster = LocalCluster::with_dashboard(2, 2, "127.0.0.1:0").unwrap();
        let address = cluster.dashboard_address().expect("a dashboard").to_string();
        let client = cluster.client().unwrap();
        // Held while the browser looks, so the progress table lists them.
        let futures = client.map(|i| slow_inc::lazy(i, 5), 0..40).unwrap();
        client.gather(&futures).unwrap();
        eventually(10, "the task stream", || {
            json(&address, "/api/task-stream?since=0")["records"]
                .as_array()
                .is_some_and(|r| r.len() == 40)
        });
        let url = format!("http://{address}/");
        let (dom, log) = browser(&url, "40 / 40", None);
        assert!(
            dom.contains("local-worker-0") && dom.contains("local-worker-1"),
            "the workers table: {dom}"
        );
        assert!(dom.contains("slow_inc") && dom.contains("40 / 40"), "the progress table: {dom}");
        assert!(dom.contains("2 workers, 4 threads"), "the status line: {dom}");
        // Every single-view page loads and draws without console errors.
        for (page, expect) in [
            ("graph", "(40 tasks, coloured by state)"),
            ("tasks", "data-page=\"tasks\""),
            ("progress", "40 / 40"),
            ("workers", "local-worker-1"),
        ] {
            let (page_dom, page_log) = browser(&format!("http://{address}/{page}"), expect, None);
            assert!(page_dom.contains(expect), "the {page} page: {page_dom}");
            assert!(
                !page_log
                    .lines()
                    .any(|l| l.starts_with("CONSOLE error") || l.starts_with("CONSOLE Uncaught")),
                "{page}: {page_log}"
            );
        }
        assert!(
            !dom.contains("id=\"status\">disconnected"),
            "the page reached its endpoints: {dom}"
        );
        let console_errors: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("CONSOLE error") || l.starts_with("CONSOLE Uncaught"))
            .collect();
        assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
        // A screenshot for people, next to the test's other output.
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
        let _ = browser(&url, "40 / 40", Some(&shot));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
            "a screenshot at {}",
            shot.display()
        );
        drop(futures);
    });
}

#[test]
fn performance_reports_of_local_and_cluster_computations_open_offline() {
    use rask::prelude::*;
    within(180, || {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Local: the report is a callback of the local scheduler.
        let report = std::sync::Arc::new(rask::PerformanceReport::new("local </script> run"));
        let scheduler = rask::LocalScheduler::new().threads(2).callbacks(report.clone());
        let total =
            rask::testing::total::lazy((0..30).map(|i| slow_inc::lazy(i, 1)).collect::<Vec<_>>());
        assert_eq!(total.compute_with(&scheduler).unwrap(), (1..=30).sum::<i64>());
        assert_eq!(report.tasks().len(), 31);
        let local_path = dir.join("local-report.html");
        report.write(&local_path).unwrap();
        let html = std::fs::read_to_string(&local_path).unwrap();
        assert!(
            html.contains("slow_inc") && html.contains("class TaskStream"),
            "data and code are inside"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no links out: it opens offline"
        );
        assert_eq!(html.matches("</script>").count(), 2, "the title cannot end a script early");

        // Cluster: the report covers what ran since it started.
        let cluster = LocalCluster::new(2, 1).unwrap();
        let client = cluster.client().unwrap();
        let before = client.map(|i| inc::lazy(i + 1000), 0..5).unwrap();
        client.gather(&before).unwrap();
        let start = client.start_report().unwrap();
        let futures = client.map(|i| slow_inc::lazy(i, 2), 0..12).unwrap();
        client.gather(&futures).unwrap();
        let cluster_path = dir.join("cluster-report.html");
        assert_eq!(client.write_report(&start, "cluster run", &cluster_path).unwrap(), 12);
        let html = std::fs::read_to_string(&cluster_path).unwrap();
        assert!(
            html.contains("local-worker-0") || html.contains("local-worker-1"),
            "workers are named"
        );

        // A real browser renders it without errors.
        let url = format!("file://{}", cluster_path.display());
        let (dom, log) = browser(&url, "12 tasks in", None);
        assert!(dom.contains("12 tasks in"), "the summary line: {dom}");
        assert!(
            dom.contains("<td>slow_inc</td><td class=\"n\">12</td>"),
            "the prefix table: {dom}"
        );
        let console_errors: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("CONSOLE error") || l.starts_with("CONSOLE Uncaught"))
            .collect();
        assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
    });
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn after_a_spill_phase_a_worker_holding_nothing_runs_a_batch_at_full_parallelism() {
    within(240, || {
        let address = common::free_loopback_address();
        let local_directory = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::processes_with_args(
            env!("CARGO_BIN_EXE_rask"),
            0,
            2,
            &["--dashboard-address", &address],
            &[],
        )
        .unwrap();
        // The worker's allocator keeps what is freed (mimalloc, told never to return memory to
        // the kernel; glibc's does the same with fragmented heaps): after the spill phase its
        // resident memory stays near the pause fraction while it holds nothing, which kept it
        // paused for good when pausing was decided on resident memory.
        let log = std::fs::File::create(local_directory.path().join("worker.log")).unwrap();
        let worker = KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_rask"))
                .args(["worker", cluster.address(), "--nthreads", "2", "--memory-limit", "150MiB"])
                .arg("--local-directory")
                .arg(local_directory.path())
                .env("MIMALLOC_PURGE_DELAY", "-1")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let client = cluster.client().unwrap();
        eventually(30, "the worker to register", || client.workers().unwrap().len() == 1);
        // The spill phase: 240 MB of results against a 90 MiB target.
        let data = hold_until_spilled(&client, &address);
        // Spilling keeps pace with the results: the peak stays near the limit (the issue saw
        // 1.5× it). Not exactly within it here: this allocator setup keeps every freed block,
        // which the worker's accounting cannot see (152 MiB of 150 was seen once with glibc's
        // allocator made to fragment its one heap). That spilling starts before the limit, not after, is pinned exactly by the
        // state-machine test `results_are_spilled_before_the_limit_is_reached_not_after`.
        let status = std::fs::read_to_string(format!("/proc/{}/status", worker.0.id())).unwrap();
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        eprintln!("peak resident memory of the worker: {peak_kib} KiB (limit 150 MiB)");
        assert!(
            peak_kib * 1024 <= (150 << 20) * 5 / 4,
            "peak resident memory {peak_kib} KiB > 1.25 × the 150 MiB limit"
        );
        // Everything is freed: the worker holds nothing, whatever its resident memory says.
        drop(data);
        eventually(30, "the worker to hold nothing and run all its threads", || {
            let worker = &json(&address, "/api/workers")[0];
            worker["managed_bytes"].as_u64() == Some(0)
                && worker["spilled_values"].as_u64() == Some(0)
                && worker["paused"].as_bool() == Some(false)
        });
        // A batch of tasks after it runs on both threads at once: two 800 ms tasks overlap.
        let batch = client.map(|i| slow_inc::lazy(i, 800), 0..4).unwrap();
        assert_eq!(client.gather(&batch).unwrap(), vec![1, 2, 3, 4]);
        let mut spans: Vec<(u64, u64)> = Vec::new();
        eventually(10, "the batch in the task stream", || {
            let stream = json(&address, "/api/task-stream?since=0");
            spans = stream["records"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["kind"] == "task" && r["prefix"] == "slow_inc")
                .map(|r| {
                    let start = r["start_us"].as_u64().unwrap();
                    (start, start + r["duration_us"].as_u64().unwrap())
                })
                .collect();
            spans.len() == 4
        });
        spans.sort();
        let overlapping = spans.windows(2).any(|w| w[1].0 < w[0].1);
        assert!(overlapping, "the batch ran one task at a time: {spans:?}");
    });
}
