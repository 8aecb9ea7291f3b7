//! Child processes: the servers run as `nexus-bench serve` children of the benchmark, so that
//! server and load generator never share a runtime or a process; and their memory, read from
//! `/proc`.

use std::io::{self, BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// A child `nexus-bench` process serving HTTP; killed when dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    // Held open: the child exits when it closes (if this process dies, say).
    _stdin: Option<ChildStdin>,
    /// The URL it listens on (`http://127.0.0.1:port`).
    pub url: String,
}

impl ChildServer {
    /// Starts `nexus-bench serve ARGS...` (this same executable) and waits for its URL, which it
    /// prints as `listening on URL` on its first line of output.
    pub fn spawn(args: &[String]) -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = match line.trim().strip_prefix("listening on ") {
            Some(url) => url.to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "the server printed {line:?} instead of its URL"
                )));
            }
        };
        Ok(Self {
            child,
            _stdin: stdin,
            url,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now, in bytes.
    pub fn rss(&self) -> io::Result<u64> {
        rss_of(&format!("/proc/{}/status", self.pid()))
    }

    /// The CPU time it has used so far (user + system).
    pub fn cpu_time(&self) -> io::Result<Duration> {
        cpu_time_of(&format!("/proc/{}/stat", self.pid()))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU time this process has used so far (user + system, every thread).
pub fn own_cpu_time() -> io::Result<Duration> {
    cpu_time_of("/proc/self/stat")
}

/// utime + stime of `/proc/PID/stat`, in clock ticks of 10 ms (Linux's USER_HZ is 100).
fn cpu_time_of(stat: &str) -> io::Result<Duration> {
    let text = std::fs::read_to_string(stat)?;
    // Fields after the command name (which may contain spaces) in parentheses; utime and stime
    // are fields 14 and 15, the 12th and 13th after it.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other(format!("malformed {stat}")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("malformed {stat}")))
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// This process's resident memory now, in bytes.
pub fn own_rss() -> io::Result<u64> {
    rss_of("/proc/self/status")
}

fn rss_of(status: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(status)?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other(format!("no VmRSS in {status}")))
}

/// In a `serve` child: exits the process when its stdin closes (the parent ended).
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::Read::read_to_end(&mut io::stdin(), &mut sink);
        std::process::exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_and_cpu_are_readable() {
        assert!(own_rss().expect("readable") > 0);
        let before = own_cpu_time().expect("readable");
        let until = std::time::Instant::now() + Duration::from_millis(50);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(own_cpu_time().expect("readable") > before);
    }
}
