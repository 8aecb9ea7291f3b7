//! One run: start both processes, fire the plan's kills (each after the handler logged enough
//! starts), restart what was killed, wait for payments to finish, and collect what the checks
//! need: the log's length and the handler store's snapshot when each handler died, the caller's
//! unfinished operations when each payments died, and the final summary.

use std::collections::BTreeSet;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

mod disk_full;

use crate::children::{Running, Setup};
use crate::plan::{Event, Kill, Plan};
use crate::stores::{HandlerSnapshot, Stores};

/// One handler process, from its start to its death.
#[derive(Debug)]
pub struct HandlerLife {
    pub n: u32,
    /// Whether it was killed during the run (the last one is killed after the run).
    pub crashed: bool,
    /// The executions log's length when it died: its lines start before this offset (and at
    /// or after the previous one's).
    pub log_end: u64,
    /// The handler store when it died.
    pub snapshot: HandlerSnapshot,
    /// Request ids it warned about: an answer it could not record, a claim it lost.
    pub warned: BTreeSet<String>,
}

/// One kill of payments.
#[derive(Debug)]
pub struct PaymentsKill {
    pub n: u32,
    /// Operations recorded, and unfinished, when it died.
    pub recorded: usize,
    pub unfinished: usize,
}

/// What a run leaves for the checks.
#[derive(Debug)]
pub struct Trace {
    pub lives: Vec<HandlerLife>,
    pub payments_kills: Vec<PaymentsKill>,
    /// The last payments process's summary line.
    pub summary: String,
    /// Operations the payments processes resumed at their start, in all.
    pub payments_resumed: u64,
    pub elapsed: Duration,
    /// What the disk-full scenario saw, and what it found wrong.
    pub disk_full: disk_full::Report,
}

/// The state of a run in progress.
struct Run<'a> {
    setup: &'a Setup,
    stores: &'a Stores,
    begun: Instant,
    deadline: Instant,
    handler: Option<Running>,
    handler_n: u32,
    payments: Option<Running>,
    payments_n: u32,
    progress: Progress,
    lives: Vec<HandlerLife>,
    payments_kills: Vec<PaymentsKill>,
    /// The disk-full scenario: payments may exit non-zero once, with checks it could not record.
    disk_full: disk_full::Report,
}

/// Runs the plan; every child is killed when this returns (or is dropped), whatever happened.
pub async fn run(
    setup: &Setup,
    stores: &Stores,
    plan: &Plan,
    timeout: Duration,
) -> Result<Trace, String> {
    let begun = Instant::now();
    let mut run = Run {
        setup,
        stores,
        begun,
        deadline: begun + timeout,
        handler: None,
        handler_n: 0,
        payments: None,
        payments_n: 0,
        progress: Progress::new(&setup.executions_log),
        lives: Vec::new(),
        payments_kills: Vec::new(),
        disk_full: disk_full::Report::default(),
    };
    run.start_handler().await?;
    run.start_payments()?;
    let mut finished = false;
    let mut last = 0;
    for event in &plan.events {
        // A new start since the last event: work is flowing when the kill comes.
        if !run.wait_for_starts(event.at_starts.max(last + 1)).await? {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(event.delay_ms)).await;
        if run.payments_finished()? {
            finished = true;
            break;
        }
        run.fire(event).await?;
        last = run.progress.poll()?;
    }
    for full in &plan.disk_full {
        if finished || !run.wait_for_starts(full.at_starts).await? {
            finished = true;
            break;
        }
        run.fill(full).await?;
    }
    if finished {
        run.say("payments finished before the remaining events");
    }
    let summary = run.wait_for_payments().await?;
    run.settle_deliveries().await?;
    run.kill_handler(false).await?;
    let payments_resumed = (2..=run.payments_n)
        .map(|n| resumed_count(&setup.payments_log(n)))
        .sum();
    let mut lives = std::mem::take(&mut run.lives);
    for life in &mut lives {
        life.warned = warned_request_ids(&setup.handler_log(life.n));
    }
    let mut disk_full = std::mem::take(&mut run.disk_full);
    disk_full.check_logs(setup, plan);
    Ok(Trace {
        lives,
        payments_kills: std::mem::take(&mut run.payments_kills),
        summary,
        payments_resumed,
        elapsed: begun.elapsed(),
        disk_full,
    })
}

impl Run<'_> {
    fn say(&self, what: &str) {
        println!("  {:6.1}s  {what}", self.begun.elapsed().as_secs_f64());
    }

    async fn start_handler(&mut self) -> Result<(), String> {
        self.handler_n += 1;
        self.handler = Some(self.setup.start_handler(self.handler_n).await?);
        self.say(&format!("fraud-handler #{} listening", self.handler_n));
        Ok(())
    }

    fn start_payments(&mut self) -> Result<(), String> {
        self.payments_n += 1;
        self.payments = Some(self.setup.start_payments(self.payments_n)?);
        self.say(&format!("payments #{} started", self.payments_n));
        Ok(())
    }

    /// Kills the handler, then records where the log ends and what its store holds.
    async fn kill_handler(&mut self, crashed: bool) -> Result<(), String> {
        let Some(mut handler) = self.handler.take() else {
            return Ok(());
        };
        handler.check_running()?;
        handler.kill().await?;
        let log_end = std::fs::metadata(&self.setup.executions_log)
            .map(|m| m.len())
            .unwrap_or(0);
        let db = self.stores.open_handler().await?;
        let snapshot = db.handler_snapshot().await;
        db.close().await;
        let snapshot = snapshot?;
        if crashed {
            let starts = self.progress.poll()?;
            self.say(&format!(
                "killed fraud-handler #{} after {starts} starts: {} starts unanswered, {} checks \
                 running",
                self.handler_n,
                snapshot.open_claims.len(),
                snapshot.running.len()
            ));
        }
        self.lives.push(HandlerLife {
            n: self.handler_n,
            crashed,
            log_end,
            snapshot,
            warned: BTreeSet::new(),
        });
        Ok(())
    }

    /// Kills payments, then counts its unfinished operations.
    async fn kill_payments(&mut self) -> Result<(), String> {
        let Some(mut payments) = self.payments.take() else {
            return Ok(());
        };
        payments.check_running()?;
        payments.kill().await?;
        let db = self.stores.open_caller().await?;
        let counts = db.caller_counts().await;
        db.close().await;
        let (recorded, unfinished) = counts?;
        self.say(&format!(
            "killed payments #{}: {recorded} checks recorded, {unfinished} unfinished",
            self.payments_n
        ));
        self.payments_kills.push(PaymentsKill {
            n: self.payments_n,
            recorded,
            unfinished,
        });
        Ok(())
    }

    async fn fire(&mut self, event: &Event) -> Result<(), String> {
        let down = Duration::from_millis(event.down_ms);
        match event.kill {
            Kill::Handler => {
                self.kill_handler(true).await?;
                tokio::time::sleep(down).await;
                self.start_handler().await
            }
            Kill::Payments => {
                self.kill_payments().await?;
                tokio::time::sleep(down).await;
                self.start_payments()
            }
            Kill::Both {
                handler_first,
                restart_handler_first,
                gap_ms,
            } => {
                let gap = Duration::from_millis(gap_ms);
                if handler_first {
                    self.kill_handler(true).await?;
                    tokio::time::sleep(gap).await;
                    self.kill_payments().await?;
                } else {
                    self.kill_payments().await?;
                    tokio::time::sleep(gap).await;
                    self.kill_handler(true).await?;
                }
                self.say("both down");
                tokio::time::sleep(down).await;
                if restart_handler_first {
                    self.start_handler().await?;
                    tokio::time::sleep(gap).await;
                    self.start_payments()
                } else {
                    self.start_payments()?;
                    tokio::time::sleep(gap).await;
                    self.start_handler().await
                }
            }
        }
    }

    /// Whether payments exited successfully; an error if it failed (unless, in the disk-full
    /// scenario, it failed with checks its store could not record: then it starts again).
    fn payments_finished(&mut self) -> Result<bool, String> {
        let Some(payments) = &mut self.payments else {
            return Ok(false);
        };
        match payments.exited()? {
            None => Ok(false),
            Some(status) if status.success() => Ok(true),
            Some(_) if self.disk_full.expects_not_started() => {
                self.payments_not_started()?;
                Ok(false)
            }
            Some(status) => Err(format!(
                "{} failed ({status}){}",
                payments.name,
                payments.stderr_tail()
            )),
        }
    }

    fn check_time(&self, waiting_for: &str) -> Result<(), String> {
        if Instant::now() < self.deadline {
            return Ok(());
        }
        Err(format!(
            "timed out after {:.0}s waiting for {waiting_for} ({} starts logged)",
            self.begun.elapsed().as_secs_f64(),
            self.progress.starts
        ))
    }

    /// Waits until the log has `starts` start executions: `false` if payments finished first.
    async fn wait_for_starts(&mut self, starts: u64) -> Result<bool, String> {
        loop {
            if self.progress.poll()? >= starts {
                return Ok(true);
            }
            if self.payments_finished()? {
                return Ok(false);
            }
            if let Some(handler) = &mut self.handler {
                handler.check_running()?;
            }
            self.check_time(&format!("{starts} starts"))?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the last payments process to finish, and returns its summary line.
    async fn wait_for_payments(&mut self) -> Result<String, String> {
        while !self.payments_finished()? {
            if let Some(handler) = &mut self.handler {
                handler.check_running()?;
            }
            self.check_time("payments to finish")?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.say(&format!("payments #{} finished", self.payments_n));
        let out = self.setup.payments_out(self.payments_n);
        let text = std::fs::read_to_string(&out)
            .map_err(|e| format!("cannot read {}: {e}", out.display()))?;
        Ok(text.trim().to_owned())
    }

    /// Lets the handler record the last deliveries: waits until none is pending, or the
    /// number stops falling for 2 s (a completion sent again after a kill, to a payments that
    /// has exited, stays pending; the checks look at those).
    async fn settle_deliveries(&mut self) -> Result<(), String> {
        let db = self.stores.open_handler().await?;
        let mut last = (i64::MAX, Instant::now());
        let settled = loop {
            let pending = match db.pending_deliveries().await {
                Ok(pending) => pending,
                Err(e) => break Err(e),
            };
            if pending == 0 || last.1.elapsed() >= Duration::from_secs(2) {
                break Ok(());
            }
            if pending < last.0 {
                last = (pending, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        db.close().await;
        settled
    }
}

/// Follows the executions log: how many start executions it has.
struct Progress {
    path: std::path::PathBuf,
    offset: u64,
    partial: Vec<u8>,
    starts: u64,
}

impl Progress {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            offset: 0,
            partial: Vec::new(),
            starts: 0,
        }
    }

    /// Reads what was appended since the last call; returns the number of starts.
    fn poll(&mut self) -> Result<u64, String> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(self.starts),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let mut new = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut new))
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        self.offset += new.len() as u64;
        self.partial.extend_from_slice(&new);
        let complete = self
            .partial
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines = String::from_utf8_lossy(&self.partial[..complete]).into_owned();
        self.partial.drain(..complete);
        self.starts += lines
            .lines()
            .filter(|line| line.contains(r#""execution":"start""#))
            .count() as u64;
        Ok(self.starts)
    }
}

/// The request ids a handler's log warns about: answers it could not record, claims it lost
/// (the dispatcher's warnings name the request id as `request_id=...`).
fn warned_request_ids(log: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| {
            line.contains("WARN")
                && (line.contains("could not be recorded")
                    || line.contains("lost the claim on a start request"))
        })
        .filter_map(|line| {
            let (_, rest) = line.split_once("request_id=")?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// How many operations a payments process resumed at its start (from its first stderr line,
/// `run ...: N checks, ..., K resumed`).
fn resumed_count(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("run ")?
                .split(", ")
                .find_map(|part| part.strip_suffix(" resumed")?.parse().ok())
        })
        .unwrap_or(0)
}
