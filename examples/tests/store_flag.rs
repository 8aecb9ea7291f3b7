//! The `--store` flag of both binaries: a directory is refused with a clear error (the flag names
//! the database file), and `payments` runs with `--store none`.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::spawn_handler;

#[test]
fn a_directory_is_refused_by_both_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        (
            env!("CARGO_BIN_EXE_payments"),
            ["--endpoint", "http://127.0.0.1:1"],
        ),
        (
            env!("CARGO_BIN_EXE_fraud-handler"),
            ["--listen", "127.0.0.1:0"],
        ),
    ];
    for (binary, args) in runs {
        let output = Command::new(binary)
            .args(args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{binary}: {stderr}");
        assert!(stderr.contains("is a directory"), "{binary}: {stderr}");
        assert!(stderr.contains("nexus.sqlite3"), "{binary}: {stderr}");
    }
}

#[test]
fn payments_runs_without_a_store() {
    let data = tempfile::tempdir().unwrap();
    let handler_store = data.path().join("handler.sqlite3");
    let (mut handler, url) = spawn_handler(&[
        // Long enough that the demo's cancel lands before the check ends on a loaded machine.
        "--check-delay-ms",
        "1000",
        "--store",
        handler_store.to_str().unwrap(),
    ]);
    let payments = Command::new(env!("CARGO_BIN_EXE_payments"))
        .args([
            "--endpoint",
            &url,
            "--timeout-secs",
            "20",
            "--store",
            "none",
        ])
        .current_dir(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&payments.stdout);
    let stderr = String::from_utf8_lossy(&payments.stderr);
    assert!(payments.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("later by callback approved=true"),
        "{stdout}"
    );
    assert!(
        !data.path().join(".nexus-data").exists(),
        "nothing was written to the default store"
    );
    handler.kill().unwrap();
    let _ = handler.wait();
}
