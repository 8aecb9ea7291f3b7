//! The two example processes end to end: `fraud-handler` on a loopback port, `payments` calling
//! it, then the handler stopped with SIGTERM.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::spawn_handler;

#[test]
fn payments_calls_fraud_handler_over_http() {
    let data = tempfile::tempdir().unwrap();
    let handler_store = data.path().join("handler.sqlite3");
    let payments_store = data.path().join("payments.sqlite3");
    let (mut handler, url) = spawn_handler(&[
        // Long enough that the demo's cancel lands before the check ends on a loaded machine.
        "--check-delay-ms",
        "1000",
        "--store",
        handler_store.to_str().unwrap(),
    ]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let payments = Command::new(env!("CARGO_BIN_EXE_payments"))
        .args(["--endpoint", &url, "--timeout-secs", "20", "--store"])
        .arg(&payments_store)
        .output()
        .expect("run payments");
    let stdout = String::from_utf8_lossy(&payments.stdout);
    let stderr = String::from_utf8_lossy(&payments.stderr);
    assert!(
        payments.status.success(),
        "payments failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "1. sync    getQuickScore(user-ada) -> score ",
        "2. async   checkTransaction(tx-1001, 250) -> token ",
        "later by callback approved=true",
        "3. cancel  checkTransaction(tx-1002) -> canceled: check of transaction tx-1002 canceled",
        "4. failed  checkTransaction(tx-1003, -5) -> OperationError failed: ",
        "transaction_id: \"tx-1003\"",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // An unreachable endpoint is an error, not a hang.
    let refused = Command::new(env!("CARGO_BIN_EXE_payments"))
        .args([
            "--endpoint",
            "http://127.0.0.1:1",
            "--timeout-secs",
            "2",
            "--store",
        ])
        .arg(data.path().join("refused.sqlite3"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let bad_url = Command::new(env!("CARGO_BIN_EXE_payments"))
        .args(["--endpoint", "ftp://127.0.0.1", "--store"])
        .arg(data.path().join("bad-url.sqlite3"))
        .output()
        .unwrap();
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("only http and https"));

    let term = Command::new("kill")
        .args(["-TERM", &handler.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = Instant::now();
    loop {
        if let Some(status) = handler.try_wait().unwrap() {
            assert!(status.success(), "fraud-handler exited with {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "fraud-handler did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
