//! The disk-full scenario: one side's SQLite store is full for a while (its `--disk-full-file`
//! exists), then has room again while the same process runs on. Besides the run's usual checks
//! (exactly once, nothing lost), it checks that:
//!
//! - each side logged that its store was capped and then uncapped, and that writes failed with
//!   SQLite's "database or disk is full"; neither logged an error (every failed write was
//!   reported as retryable and tried again);
//! - payments, whose store could not record some checks, counted them as not started (none
//!   failed, canceled or timed out), still finished every check it had recorded (their
//!   completions were recorded once the store had room again), and exited non-zero naming the
//!   cause; the payments started after it resumed nothing and started those checks.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::{Run, resumed_count};
use crate::children::{Setup, tail};
use crate::plan::{DiskFull, Plan, Side};

/// SQLite's message for SQLITE_FULL, which a full disk and the cap both give.
const SQLITE_FULL: &str = "database or disk is full";

/// What the scenario saw, and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// Payments' store was full, and no payments has exited with checks not started since.
    awaiting_not_started: bool,
    /// Each full store: whose, and the log of the process that ran through it.
    filled: Vec<(Side, PathBuf)>,
    /// The payments process that exited with checks not started, and how many.
    pub not_started: Option<(u32, u64)>,
    pub violations: Vec<String>,
}

impl Report {
    /// Whether payments may exit non-zero now, with checks its full store could not record.
    pub fn expects_not_started(&self) -> bool {
        self.awaiting_not_started
    }

    /// Reads the logs of the processes whose store was full.
    pub fn check_logs(&mut self, setup: &Setup, plan: &Plan) {
        if self.filled.len() != plan.disk_full.len() {
            self.violations.push(format!(
                "the run ended after {} of {} full stores",
                self.filled.len(),
                plan.disk_full.len()
            ));
        }
        for (side, log) in &self.filled {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let name = side.name();
            for (what, needle) in [
                ("that its store was full", "disk full: the store is capped"),
                ("that its store had room again", "disk space back"),
                ("a write that failed for want of room", SQLITE_FULL),
            ] {
                if !text.contains(needle) {
                    self.violations.push(format!(
                        "{name} did not log {what} ({needle:?} in {})",
                        log.display()
                    ));
                }
            }
            if let Some(line) = text.lines().find(|l| l.contains(" ERROR ")) {
                self.violations
                    .push(format!("{name} logged an error: {line}"));
            }
        }
        let payments_full = self.filled.iter().any(|(side, _)| *side == Side::Payments);
        match self.not_started {
            Some((n, _)) => {
                let resumed = resumed_count(&setup.payments_log(n + 1));
                if resumed != 0 {
                    self.violations.push(format!(
                        "payments #{} resumed {resumed} operations: payments #{n} exited before \
                         every check it recorded had ended",
                        n + 1
                    ));
                }
            }
            None if payments_full => self.violations.push(
                "payments' full store refused no check: no payments exited with checks not \
                 started"
                    .into(),
            ),
            None => {}
        }
    }
}

impl Run<'_> {
    /// Makes `full.side`'s store full for `full.full_ms`, then gives it room again; the
    /// processes run on.
    pub(super) async fn fill(&mut self, full: &DiskFull) -> Result<(), String> {
        let file = self.setup.full_file(full.side);
        std::fs::write(&file, b"").map_err(|e| format!("cannot create {}: {e}", file.display()))?;
        let (n, log) = match full.side {
            Side::Handler => (self.handler_n, self.setup.handler_log(self.handler_n)),
            Side::Payments => (self.payments_n, self.setup.payments_log(self.payments_n)),
        };
        if full.side == Side::Payments {
            self.disk_full.awaiting_not_started = true;
        }
        let starts = self.progress.poll()?;
        self.say(&format!(
            "{} #{n}: store full after {starts} starts, for {} ms",
            full.side.name(),
            full.full_ms
        ));
        let until = Instant::now() + Duration::from_millis(full.full_ms);
        while Instant::now() < until {
            if let Some(handler) = &mut self.handler {
                handler.check_running()?;
            }
            if self.payments_finished()? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::remove_file(&file)
            .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
        self.say(&format!("{} #{n}: store has room again", full.side.name()));
        self.disk_full.filled.push((full.side, log));
        Ok(())
    }

    /// Payments exited non-zero after its store was full: checks the summary and the cause it
    /// gave, and starts payments again (which starts the checks that were not).
    pub(super) fn payments_not_started(&mut self) -> Result<(), String> {
        let n = self.payments_n;
        let out = std::fs::read_to_string(self.setup.payments_out(n)).unwrap_or_default();
        let log = self.setup.payments_log(n);
        let summary: serde_json::Value = serde_json::from_str(out.trim()).map_err(|e| {
            format!(
                "payments #{n} exited non-zero without a summary ({e}){}",
                tail(&log)
            )
        })?;
        let field = |name: &str| summary[name].as_u64().unwrap_or(u64::MAX);
        let not_started = field("not_started");
        if not_started == 0 || not_started == u64::MAX {
            return Err(format!(
                "payments #{n} failed, with every check started: {summary}{}",
                tail(&log)
            ));
        }
        for name in ["failed", "canceled", "timed_out"] {
            if field(name) != 0 {
                self.disk_full.violations.push(format!(
                    "payments #{n}: {name} is {}, expected 0: {summary}",
                    summary[name]
                ));
            }
        }
        let count = self.setup.count;
        if field("succeeded").saturating_add(not_started) != count {
            self.disk_full.violations.push(format!(
                "payments #{n} exited with checks it recorded unfinished: {summary}"
            ));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let cause = text.lines().last().unwrap_or_default().to_owned();
        let expected = format!(
            "payments: {not_started} of {count} checks were not started, their store failed: "
        );
        if !cause.starts_with(&expected) || !cause.contains(SQLITE_FULL) {
            self.disk_full.violations.push(format!(
                "payments #{n} did not name the cause ({expected}... {SQLITE_FULL}): {cause:?}"
            ));
        }
        self.say(&format!(
            "payments #{n} exited non-zero: {not_started} checks not started, its store was full"
        ));
        self.disk_full.not_started = Some((n, not_started));
        self.disk_full.awaiting_not_started = false;
        self.payments = None;
        self.start_payments()
    }
}
