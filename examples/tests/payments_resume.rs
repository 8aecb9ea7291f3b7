//! `payments` load mode against a real `fraud-handler`: killed (SIGKILL) mid-run and restarted
//! with the same arguments, it resumes the run from its SQLite store and prints the same summary;
//! a third run finds everything recorded and prints it again.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nexus_runtime::store::SqliteStore;
use serde_json::{Value, json};
use support::{free_port, load_run_args, spawn_handler};

fn fraud_handler(check_delay_ms: u64, store: &Path) -> (Child, String) {
    // Its own store: a shared default file would replay answers recorded by earlier runs of this
    // test (same request ids) to callbacks that no longer exist.
    spawn_handler(&[
        "--check-delay-ms",
        &check_delay_ms.to_string(),
        "--store",
        store.to_str().unwrap(),
    ])
}

fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "payments failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.starts_with(r#"{"run_id":"run-1","count":30,"succeeded":"#),
        "fields in the documented order: {stdout}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn resumed(output: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .split(", ")
        .find_map(|part| part.trim().strip_suffix(" resumed")?.parse().ok())
        .unwrap_or_else(|| panic!("no resumed count in {stderr}"))
}

async fn recorded(path: &Path) -> (i64, i64) {
    // Opened (and migrated) by the store, then read behind its back.
    let store = SqliteStore::open(path).await.unwrap();
    store.close().await;
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM caller_operations \
             WHERE request_id LIKE 'run-1-%'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[test]
fn a_killed_load_run_resumes_and_prints_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data").join("payments.sqlite3");
    let (mut handler, url) = fraud_handler(1500, &dir.path().join("handler.sqlite3"));
    let callback = format!("127.0.0.1:{}", free_port());
    let args = load_run_args(&url, &callback, &store, 10);
    let payments = || Command::new(env!("CARGO_BIN_EXE_payments"));

    // The first run is killed while its first checks are started but not done.
    let mut first = payments()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    first.kill().unwrap();
    let killed = first.wait_with_output().unwrap();
    assert!(killed.stdout.is_empty(), "it had not finished");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (before, _) = runtime.block_on(recorded(&store));
    assert!(before > 0 && before < 30, "{before} operations recorded");

    // The second run resumes what the first recorded, schedules the rest, and finishes.
    let second = payments().args(&args).output().unwrap();
    let expected = json!({
        "run_id": "run-1",
        "count": 30,
        "succeeded": 30,
        "failed": 0,
        "canceled": 0,
        "timed_out": 0,
        "not_started": 0,
        "approved": 24,
    });
    assert_eq!(summary(&second), expected);
    assert!(
        resumed(&second) > 0,
        "the killed run's operations were resumed"
    );
    assert_eq!(
        runtime.block_on(recorded(&store)),
        (30, 30),
        "one operation per request id"
    );

    // A third run finds the whole run recorded.
    let third = payments().args(&args).output().unwrap();
    assert_eq!(summary(&third), expected);
    assert_eq!(resumed(&third), 0);
    assert_eq!(runtime.block_on(recorded(&store)), (30, 30));

    handler.kill().unwrap();
    let _ = handler.wait();
}
