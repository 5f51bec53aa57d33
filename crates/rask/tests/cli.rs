//! The `rask` binary's command line.

mod common;

use std::process::Command;

fn rask(args: &[&str]) -> (bool, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_rask")).args(args).output().expect("the rask binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn version_and_help() {
    let (ok, out) = rask(&["--version"]);
    assert!(ok);
    assert_eq!(out.trim(), format!("rask {}", env!("CARGO_PKG_VERSION")));
    let (ok, out) = rask(&["--help"]);
    assert!(ok);
    assert!(out.contains("Usage: rask") && out.contains("functions"), "{out}");
    let (ok, out) = rask(&["functions"]);
    assert!(ok);
    assert!(out.lines().any(|l| l == "rask::identity"), "{out}");
    let (ok, out) = rask(&["no-such-command"]);
    assert!(!ok);
    assert!(out.contains("unrecognized subcommand"), "{out}");
}

#[test]
fn a_worker_sizes_polars_thread_pool_to_its_threads_unless_the_user_did() {
    common::within(60, || {
        // No scheduler listens on port 1: the worker says how it is set up, then fails to
        // connect and exits.
        let worker = |threads: &str, env: Option<&str>| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_rask"));
            command.args(["worker", "127.0.0.1:1", "--nthreads", threads]);
            command.env_remove("POLARS_MAX_THREADS").env("RUST_LOG", "info");
            if let Some(value) = env {
                command.env("POLARS_MAX_THREADS", value);
            }
            let output = command.output().expect("the rask binary runs");
            assert!(!output.status.success(), "nothing to connect to");
            String::from_utf8_lossy(&output.stderr).into_owned()
        };
        let out = worker("1", None);
        assert!(out.contains("polars_threads=1"), "{out}");
        let out = worker("2", None);
        assert!(out.contains("polars_threads=2"), "{out}");
        let out = worker("1", Some("3"));
        assert!(out.contains("polars_threads=3"), "the user's setting wins: {out}");
    });
}

#[test]
fn the_scheduler_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("rask-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scheduler.addr");
    let mut scheduler = Command::new(env!("CARGO_BIN_EXE_rask"))
        .args(["scheduler", "--port", "0", "--dashboard-address", "none", "--scheduler-file"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !file.exists() {
        assert!(std::time::Instant::now() < deadline, "the scheduler did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status =
        Command::new("kill").args(["-TERM", &scheduler.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = scheduler.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "the scheduler did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(!file.exists(), "a clean stop removes the scheduler file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_worker_where_no_scheduler_listens_says_to_start_one_or_check_the_address() {
    common::within(60, || {
        let address = common::free_loopback_address();
        let (ok, out) = rask(&["worker", &address, "--nthreads", "1"]);
        assert!(!ok, "{out}");
        assert!(out.contains(&address), "{out}");
        assert!(out.contains("start a scheduler (`rask scheduler`) or check the address"), "{out}");
    });
}
