//! What the example processes' tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `fraud-handler` on a loopback port chosen by the OS, with `args`; returns it and the
/// URL it prints on its first line.
pub fn spawn_handler(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraud-handler"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fraud-handler");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The arguments of a `payments` load run `run-1` of 30 checks against `url`, receiving
/// completions at `callback`, recording in `store`, `concurrency` in flight.
pub fn load_run_args(
    url: &str,
    callback: &str,
    store: &std::path::Path,
    concurrency: u32,
) -> Vec<String> {
    let concurrency = concurrency.to_string();
    let store = store.to_str().unwrap();
    [
        "--endpoint",
        url,
        "--count",
        "30",
        "--run-id",
        "run-1",
        "--concurrency",
        &concurrency,
        "--timeout-secs",
        "120",
        "--callback-listen",
        callback,
        "--store",
        store,
    ]
    .map(str::to_owned)
    .to_vec()
}
