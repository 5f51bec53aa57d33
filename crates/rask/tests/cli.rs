//! The `rask` binary's command line.

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
