//! `payments` load mode whose SQLite store is full (`--disk-full-file`): the checks it cannot
//! record are never started and counted as `not_started`, not as failed; the checks it did record
//! still end; the run exits non-zero naming the cause; run again, it starts the checks that were
//! not. (The crash test's disk-full scenario gives a store room again while its process runs on.)
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{free_port, load_run_args, spawn_handler};

fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Waits until `log` contains `text`.
fn wait_for(log: &Path, text: &str) {
    let begun = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "no {text:?} in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn checks_a_full_store_cannot_record_are_not_started_and_fail_the_run_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (mut handler, url) = spawn_handler(&[
        "--check-delay-ms",
        "200",
        "--store",
        dir.path().join("handler.sqlite3").to_str().unwrap(),
    ]);
    let full = dir.path().join("payments.full");
    let store = dir.path().join("payments.sqlite3");
    let callback = format!("127.0.0.1:{}", free_port());
    // All at once: those that do not fit are not recorded (with fewer, the recorded ones would
    // hold every slot, waiting for completions the full store cannot record).
    let mut args = load_run_args(&url, &callback, &store, 30);
    args.extend(["--disk-full-file".to_owned(), full.display().to_string()]);
    let payments = || Command::new(env!("CARGO_BIN_EXE_payments"));

    // Full from the start: the store keeps what fits in the pages it has, and no more.
    std::fs::write(&full, b"").unwrap();
    let log = dir.path().join("payments-1.log");
    let first = payments()
        .args(&args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Once a check could not be recorded (after the store's retries), room comes back.
    wait_for(&log, "cannot record the operation");
    std::fs::remove_file(&full).unwrap();
    let first = first.wait_with_output().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!first.status.success(), "the run fails: {stderr}");
    let summary_1 = summary(&first);
    let field = |name: &str| summary_1[name].as_u64().unwrap();
    let not_started = field("not_started");
    assert!(not_started > 0, "{summary_1}");
    for name in ["failed", "canceled", "timed_out"] {
        assert_eq!(field(name), 0, "{name}: {summary_1}");
    }
    assert_eq!(
        field("succeeded") + not_started,
        30,
        "every check recorded ended in this process, with room again: {summary_1}"
    );
    let cause = stderr.lines().last().unwrap();
    assert!(
        cause.starts_with(&format!(
            "payments: {not_started} of 30 checks were not started, their store failed: "
        )) && cause.contains("database or disk is full"),
        "{cause}"
    );
    assert!(summary_1["not_started_cause"].is_string(), "{summary_1}");
    assert!(
        stderr.contains("disk full: the store is capped"),
        "{stderr}"
    );

    // Run again with room: it starts the checks that were not, and finishes.
    let second = payments().args(&args).output().unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let summary_2 = summary(&second);
    assert_eq!(summary_2["succeeded"], 30, "{summary_2}");
    assert_eq!(summary_2["not_started"], 0, "{summary_2}");

    handler.kill().unwrap();
    let _ = handler.wait();
}
