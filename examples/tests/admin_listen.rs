//! `fraud-handler --admin-listen`: metrics, the JSON API and the page on their own port, behind
//! `--admin-token`; without a token, loopback only.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts fraud-handler with `args`; returns it and its admin base URL.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraud-handler"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fraud-handler");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("fraud-handler ended").unwrap();
        if let Some(page) = line.strip_prefix("admin page: ") {
            break page.strip_suffix("/ops").unwrap().to_owned();
        }
    };
    // Keep reading its log, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test]
async fn fraud_handler_serves_metrics_api_and_page_behind_the_admin_token() {
    nexus_runtime::tls::install_default_provider();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("handler.sqlite3");
    let (child, base) = spawn(&[
        "--store",
        store.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token",
        "t0ken",
    ]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/metrics", "/api/handler/operations", "/api/deliveries"] {
        let anonymous = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let allowed = http
            .get(format!("{base}{path}"))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{path}");
    }
    let listing = http
        .get(format!("{base}/api/handler/operations"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(listing, r#"{"items":[],"next_cursor":null}"#);
    // A handler shows no caller operations.
    let caller = http
        .get(format!("{base}/api/operations"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(caller.status(), 404);
    let page = http.get(format!("{base}/ops")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Pending operations"));
    stop(child);

    // Without a token, only a loopback address.
    let refused = Command::new(env!("CARGO_BIN_EXE_fraud-handler"))
        .args(["--listen", "127.0.0.1:0", "--store", "none"])
        .args(["--admin-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
