//! The `/ops` page in headless Chromium (the Debian `chromium` package; `scripts/test.sh`
//! installs it): the page loads the admin API with the token from its URL fragment and shows
//! the known operations, their states, links and buttons; hostile text stays text. A screenshot
//! is kept in `target/test-artifacts/ops.png`.
#![cfg(all(feature = "admin", feature = "auth"))]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::admin::{TOKEN, World};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium on `url` with `args`; returns its standard output.
async fn chromium(url: String, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let output = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `<tr …>` start tag of the row with `data-id="{id}"`, and the rest of that row.
fn row<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id} in {dom}"));
    let end = dom[start..].find("</tr>").unwrap() + start;
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_pending_operations_links_and_buttons_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} is absent (apt-get install chromium; scripts/test.sh installs it)"
        );
        return;
    }
    let world = World::new().await;
    let url = format!("{}#token={TOKEN}", world.url("/ops"));
    let dom = chromium(url.clone(), vec!["--dump-dom".into()]).await;

    assert!(
        dom.contains("data-state=\"ready\""),
        "the page did not load: {dom}"
    );
    // The caller's pending operations: states, attempts, failures, links, cancel buttons.
    for handle in &world.started {
        let row = row(&dom, &handle.operation_id().to_string());
        assert!(row.contains("data-state=\"started\""), "{row}");
        assert!(
            row.contains("<a href=\"https://handler.example/runs/1\""),
            "{row}"
        );
        assert!(row.contains(">handler.Run</a>"), "{row}");
        assert!(row.contains(">Cancel</button>"), "{row}");
    }
    let flaky = row(&dom, &world.backing_off.operation_id().to_string());
    assert!(flaky.contains("data-state=\"backing_off\""), "{flaky}");
    assert!(flaky.contains("the ledger is down"), "{flaky}");
    assert!(flaky.contains("<td>1</td>"), "{flaky}");
    // The handler's running operations and failed deliveries; a redeliver button for the dead
    // one only.
    assert!(dom.contains("req-tok-running-hostile"), "{dom}");
    let dead = row(&dom, &world.dead.to_string());
    assert!(dead.contains("data-state=\"dead\""), "{dead}");
    assert!(dead.contains(">Redeliver</button>"), "{dead}");
    assert!(dead.contains("secret=REDACTED"), "{dead}");
    let failing = row(&dom, &world.failing.to_string());
    assert!(failing.contains("data-state=\"pending\""), "{failing}");
    assert!(failing.contains("connection refused"), "{failing}");
    assert!(!failing.contains("Redeliver"), "{failing}");
    assert_eq!(dom.matches(">Cancel</button>").count(), 3);
    assert_eq!(dom.matches(">Redeliver</button>").count(), 1);
    // Hostile text is text: no element was made of it, no script URL became a link, and the
    // token never reaches the document.
    assert!(dom.contains("&lt;img src=x onerror="), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("pwned</title>"), "{dom}");
    assert!(!dom.contains("href=\"javascript:"), "{dom}");
    assert!(dom.contains("evil.Script: javascript:alert(1)"), "{dom}");
    assert!(!dom.contains(TOKEN), "{dom}");
    assert!(!dom.contains("do-not-show"), "{dom}");

    // Without the token the page says it cannot load, and shows nothing.
    let anonymous = chromium(world.url("/ops"), vec!["--dump-dom".into()]).await;
    assert!(anonymous.contains("data-state=\"error\""), "{anonymous}");
    assert!(anonymous.contains("401"), "{anonymous}");
    assert!(!anonymous.contains("data-id="), "{anonymous}");

    // The screenshot, kept as a test artifact.
    let png = artifacts().join("ops.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        url,
        vec![
            format!("--screenshot={}", png.display()),
            "--window-size=1400,1000".into(),
        ],
    )
    .await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 10_000,
        "a blank screenshot? {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}
