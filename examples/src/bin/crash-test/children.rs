//! The child processes: `fraud-handler` and `payments`, started with the same arguments every
//! time (same ports, stores and log), killed with SIGKILL. Each is killed when its handle is
//! dropped, so no exit path of the harness leaves one running.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::plan::Side;

/// Everything the children are started with.
pub struct Setup {
    pub handler_bin: PathBuf,
    pub payments_bin: PathBuf,
    pub dir: PathBuf,
    pub handler_port: u16,
    pub callback_port: u16,
    pub handler_store: String,
    pub caller_store: String,
    pub executions_log: PathBuf,
    pub check_delay_ms: u64,
    pub count: u64,
    pub concurrency: u32,
    pub run_id: String,
    /// The disk-full scenario: each process gets `--disk-full-file` (see [`Setup::full_file`]).
    pub disk_full: bool,
}

/// A running child (killed with SIGKILL when dropped).
pub struct Running {
    pub name: String,
    child: Child,
    /// Kept open: the handler's stdout, after its first line.
    _stdout: Option<BufReader<ChildStdout>>,
    stderr_path: PathBuf,
}

impl Setup {
    pub fn handler_log(&self, n: u32) -> PathBuf {
        self.dir.join(format!("fraud-handler-{n}.log"))
    }

    pub fn payments_out(&self, n: u32) -> PathBuf {
        self.dir.join(format!("payments-{n}.out"))
    }

    pub fn payments_log(&self, n: u32) -> PathBuf {
        self.dir.join(format!("payments-{n}.log"))
    }

    /// The file whose existence makes `side`'s store full (`--disk-full-file`).
    pub fn full_file(&self, side: Side) -> PathBuf {
        self.dir.join(format!("{}.full", side.name()))
    }

    /// `--disk-full-file` for `side`, in the disk-full scenario.
    fn disk_full_arg(&self, command: &mut Command, side: Side) {
        if self.disk_full {
            command.arg("--disk-full-file").arg(self.full_file(side));
        }
    }

    /// Starts incarnation `n` of the handler and waits until it listens.
    pub async fn start_handler(&self, n: u32) -> Result<Running, String> {
        let stderr_path = self.handler_log(n);
        let mut command = Command::new(&self.handler_bin);
        command
            .args(["--listen", &format!("127.0.0.1:{}", self.handler_port)])
            .args(["--check-delay-ms", &self.check_delay_ms.to_string()])
            .args(["--store", &self.handler_store])
            .args(["--owner", "crash-test-handler"])
            .arg("--executions-log")
            .arg(&self.executions_log)
            // A delivery cut short by a kill is sent again 3 s after (not 60 s).
            .args(["--outbox-visibility-ms", "3000"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped());
        self.disk_full_arg(&mut command, Side::Handler);
        let name = format!("fraud-handler #{n}");
        let mut running = spawn(name, command, &stderr_path)?;
        let Some(stdout) = running.child.stdout.take() else {
            return Err(format!("{}: no stdout", running.name));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) || !line.starts_with("listening on ") {
            return Err(format!(
                "{} did not start listening (first line {line:?}){}",
                running.name,
                tail(&stderr_path)
            ));
        }
        running._stdout = Some(stdout);
        Ok(running)
    }

    /// Starts incarnation `n` of payments in load mode.
    pub fn start_payments(&self, n: u32) -> Result<Running, String> {
        let out = File::create(self.payments_out(n))
            .map_err(|e| format!("cannot create {}: {e}", self.payments_out(n).display()))?;
        let mut command = Command::new(&self.payments_bin);
        command
            .args([
                "--endpoint",
                &format!("http://127.0.0.1:{}", self.handler_port),
            ])
            .args([
                "--callback-listen",
                &format!("127.0.0.1:{}", self.callback_port),
            ])
            .args(["--store", &self.caller_store])
            .args(["--count", &self.count.to_string()])
            .args(["--run-id", &self.run_id])
            .args(["--concurrency", &self.concurrency.to_string()])
            // The run must finish, however many kills: no check times out.
            .args(["--timeout-secs", "3600"])
            .args(["--owner-id", "crash-test-payments"])
            // Retry soon after the handler comes back, and do not let the breaker hold
            // everything for a minute after each handler kill.
            .args(["--max-retry-interval-ms", "1000"])
            .args(["--breaker-open-ms", "500"])
            .env("NO_COLOR", "1")
            .stdout(out);
        self.disk_full_arg(&mut command, Side::Payments);
        spawn(format!("payments #{n}"), command, &self.payments_log(n))
    }
}

fn spawn(name: String, mut command: Command, stderr_path: &Path) -> Result<Running, String> {
    let stderr = File::create(stderr_path)
        .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
    let child = command
        .stdin(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(Running {
        name,
        child,
        _stdout: None,
        stderr_path: stderr_path.to_owned(),
    })
}

impl Running {
    /// Kills it with SIGKILL and waits until it is gone.
    pub async fn kill(&mut self) -> Result<(), String> {
        self.child
            .kill()
            .await
            .map_err(|e| format!("cannot kill {}: {e}", self.name))
    }

    /// Its exit status, if it exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>, String> {
        self.child
            .try_wait()
            .map_err(|e| format!("cannot watch {}: {e}", self.name))
    }

    /// An error if it exited (it should still run).
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.exited()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "{} exited unexpectedly ({status}){}",
                self.name,
                tail(&self.stderr_path)
            )),
        }
    }

    /// The end of its stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr_path)
    }
}

/// The last lines of a log file, as a suffix for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    if lines.is_empty() {
        String::new()
    } else {
        format!(
            "\n  last lines of {}:\n    {}",
            path.display(),
            lines[start..].join("\n    ")
        )
    }
}
