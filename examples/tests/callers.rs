//! `fraud-handler --allow-caller --token` and `payments --token`, end to end: only the allowed
//! caller's token gets through.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::spawn_handler;

#[test]
fn only_the_allowed_caller_gets_through() {
    let (mut handler, url) = spawn_handler(&[
        "--store",
        "none",
        // Long enough that the demo's cancel lands before the check ends on a loaded machine.
        "--check-delay-ms",
        "1000",
        "--allow-caller",
        "payments",
        "--token",
        "payments=token-of-payments",
        "--token",
        "ledger=token-of-ledger",
    ]);
    let data = tempfile::tempdir().unwrap();
    let mut runs = 0;
    let mut payments = |token: Option<&str>| {
        runs += 1;
        let mut command = Command::new(env!("CARGO_BIN_EXE_payments"));
        command
            .args(["--endpoint", &url, "--timeout-secs", "20", "--store"])
            .arg(data.path().join(format!("payments-{runs}.sqlite3")));
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let output = command.output().expect("run payments");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };

    let (ok, text) = payments(Some("token-of-payments"));
    assert!(ok, "payments failed:\n{text}");
    assert!(text.contains("later by callback approved=true"), "{text}");

    let (ok, text) = payments(None);
    assert!(!ok);
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
    let (ok, text) = payments(Some("token-of-ledger"));
    assert!(!ok);
    assert!(
        text.contains("UNAUTHORIZED") && text.contains("`token:ledger` may not call"),
        "{text}"
    );
    let (ok, text) = payments(Some("a-guess"));
    assert!(!ok);
    assert!(text.contains("the bearer token is not valid"), "{text}");

    handler.kill().unwrap();
    handler.wait().unwrap();
}
