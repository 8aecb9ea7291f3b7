//! What a handler's lease renewal costs its SQLite store as running operations pile up: the
//! renewal's own time, and the time of a write queued behind it (a start arriving as the keeper
//! renews), with no running operation and then with `operations` of them, in the same run.
//!
//! A renewal runs every third of a lease (ten seconds by default) whatever else the store does;
//! the baseline is the same renewal on the same store before any operation runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use nexus_runtime::codec::Content;
use nexus_runtime::link::Link;
use nexus_runtime::security::{Principal, PrincipalKind};
use nexus_runtime::store::{
    AsyncOperationRecord, AsyncState, BeginStart, HandlerStore, Lease, SqliteStore, StartAnswer,
    StartKey, StoredCallback,
};

use crate::stats::median;

/// The owner every operation of the run is leased to.
const OWNER: &str = "bench-owner";
/// The lease the keeper renews (the dispatcher's default).
const LEASE: Duration = Duration::from_secs(30);

/// What to measure.
#[derive(Debug, Clone)]
pub struct LeaseRenewalOptions {
    /// The directory of the SQLite store (made afresh).
    pub dir: PathBuf,
    /// Running operations to renew the leases of.
    pub operations: usize,
    /// Renewals measured at each size (the median is reported).
    pub renewals: usize,
}

/// One size's figures, medians over the renewals.
#[derive(Debug, Clone)]
pub struct Row {
    /// Running operations leased to the owner.
    pub operations: usize,
    /// What the renewal returned (the leases it counted).
    pub leases: u64,
    /// The renewal, from call to answer.
    pub renewal: Duration,
    /// A start's claim of its request id sent just after the renewal, from call to answer.
    pub queued_write: Duration,
}

/// Runs the measurement; returns a Markdown table.
pub fn run(options: &LeaseRenewalOptions) -> std::io::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rows = runtime
        .block_on(measure(options))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut table = format!(
        "Lease renewal of one owner on an SQLite store ({}; median of {} renewals per size)\n\n\
         | running operations | leases counted | renewal ms | write queued behind it ms |\n\
         |---:|---:|---:|---:|\n",
        options.dir.display(),
        options.renewals
    );
    for row in &rows {
        table.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} |\n",
            row.operations,
            row.leases,
            ms(row.renewal),
            ms(row.queued_write)
        ));
    }
    if let [empty, full] = rows.as_slice() {
        table.push_str(&format!(
            "\nrenewal with {} running / with none: {:.1}x; the queued write: {:.1}x\n",
            full.operations,
            ratio(full.renewal, empty.renewal),
            ratio(full.queued_write, empty.queued_write)
        ));
    }
    Ok(table)
}

async fn measure(options: &LeaseRenewalOptions) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)?;
    }
    let store: Arc<dyn HandlerStore> = Arc::new(SqliteStore::open_in_dir(&options.dir).await?);
    let mut rows = vec![renewals(&*store, 0, options.renewals).await?];
    let started = futures::stream::iter(0..options.operations)
        .map(|n| {
            let store = store.clone();
            async move { start(&*store, &format!("op-{n}")).await }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await;
    for result in started {
        result?;
    }
    rows.push(renewals(&*store, options.operations, options.renewals).await?);
    Ok(rows)
}

/// `count` renewals of the owner's leases, each with a start's claim sent right behind it.
async fn renewals(
    store: &dyn HandlerStore,
    operations: usize,
    count: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    let (mut renewal, mut queued) = (Vec::new(), Vec::new());
    let mut leases = 0;
    for n in 0..count.max(1) {
        let key = start_key(&format!("probe-{operations}-{n}"));
        let began = Instant::now();
        let renew = async {
            let leases = store.renew_async(OWNER, SystemTime::now(), LEASE).await;
            (leases, began.elapsed())
        };
        let probe = async {
            // Sent once the renewal is on its way to the store.
            tokio::task::yield_now().await;
            let sent = Instant::now();
            let claimed = store.begin_start(&key, SystemTime::now(), far()).await;
            (claimed, sent.elapsed())
        };
        let ((renewed, took), (claimed, waited)) = tokio::join!(renew, probe);
        leases = renewed?;
        claimed?;
        renewal.push(took.as_secs_f64());
        queued.push(waited.as_secs_f64());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Row {
        operations,
        leases,
        renewal: Duration::from_secs_f64(median(&renewal)),
        queued_write: Duration::from_secs_f64(median(&queued)),
    })
}

/// Records a running async operation `token`, leased to the owner, as a start does.
async fn start(store: &dyn HandlerStore, token: &str) -> Result<(), Box<dyn std::error::Error>> {
    let now = SystemTime::now();
    let key = start_key(token);
    let BeginStart::Claimed(claim) = store.begin_start(&key, now, far()).await? else {
        return Err(format!("request `{token}` was not new").into());
    };
    let op = AsyncOperationRecord {
        token: token.to_owned(),
        service: key.service.clone(),
        operation: key.operation.clone(),
        request_id: key.request_id.clone(),
        principal: principal(),
        input: Content::new(
            "application/json",
            br#"{"transactionId":"tx-0000000042","amount":1250.0,"currency":"EUR","country":"FR"}"#
                .to_vec(),
        ),
        headers: BTreeMap::from([("nexus-request-timeout".to_owned(), "30s".to_owned())]),
        links: vec![Link::new(
            "https://payments.example/transactions/42",
            "x.payment",
        )],
        callback: Some(StoredCallback {
            url: format!("http://127.0.0.1:9/nexus/callback/{token}?s=0123456789abcdef"),
            headers: BTreeMap::new(),
        }),
        state: AsyncState::Running,
        resumable: true,
        cancel_requested_at: None,
        deadline: Some(now + Duration::from_secs(3600)),
        started_at: now,
        closed_at: None,
        lease: Some(Lease::new(OWNER, now + LEASE)),
    };
    let answer = StartAnswer::Async {
        token: op.token.clone(),
        links: Vec::new(),
    };
    store
        .finish_start(&key, &claim, &answer, Some(&op), now)
        .await?;
    Ok(())
}

fn start_key(request_id: &str) -> StartKey {
    StartKey {
        principal: principal().name().to_owned(),
        service: "fraud.v1".into(),
        operation: "checkTransaction".into(),
        request_id: request_id.into(),
    }
}

fn principal() -> Principal {
    Principal::new("payments", PrincipalKind::Anonymous)
}

/// A start claim's end far enough not to matter.
fn far() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
