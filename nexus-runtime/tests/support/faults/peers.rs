//! Misbehaving peers below HTTP: a listener that resets or closes connections before answering,
//! and a TCP peer that accepts and never answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a [`FaultyListener`] does to a connection instead of serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request, then resets the connection (SO_LINGER 0: an RST).
    Reset,
    /// Reads the request, then closes the connection (a FIN) without answering.
    Close,
}

/// Counts of a [`FaultyListener`].
#[derive(Default)]
pub struct Faults {
    script: Mutex<VecDeque<Fault>>,
    forever: Mutex<Option<Fault>>,
    pub accepted: AtomicU32,
    pub faulted: AtomicU32,
}

impl Faults {
    /// The next connections get these faults, in order; later ones are served.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().unwrap().extend(faults);
    }

    /// Every connection gets this fault.
    pub fn forever(&self, fault: Fault) {
        *self.forever.lock().unwrap() = Some(fault);
    }

    pub fn accepted(&self) -> u32 {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn faulted(&self) -> u32 {
        self.faulted.load(Ordering::SeqCst)
    }

    fn next(&self) -> Option<Fault> {
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .or(*self.forever.lock().unwrap())
    }
}

/// A loopback listener that faults connections as scripted and hands the others to the server.
pub struct FaultyListener {
    inner: TcpListener,
    faults: Arc<Faults>,
}

impl FaultyListener {
    pub async fn bind() -> (Self, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (
            Self {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }
}

impl axum::serve::Listener for FaultyListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            self.faults.accepted.fetch_add(1, Ordering::SeqCst);
            match self.faults.next() {
                None => return (stream, addr),
                Some(fault) => {
                    self.faults.faulted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(apply(stream, fault));
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

async fn apply(stream: TcpStream, fault: Fault) {
    // Wait for the request, so the failure is the answer's, not the connection's.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), read_some(&stream, &mut buf)).await;
    if fault == Fault::Reset {
        stream.set_zero_linger().unwrap();
    }
    drop(stream);
}

/// Reads what is there (tokio's `io-util` is not enabled for the tests).
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// A TCP peer that accepts connections, reads what comes, and never answers. It records each
/// request head and when the client closed each connection.
pub struct Silent {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<(Instant, String)>>>,
    closed: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Silent {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let closed: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let task = tokio::spawn({
            let (heads, closed) = (heads.clone(), closed.clone());
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let (heads, closed) = (heads.clone(), closed.clone());
                    connections.spawn(async move {
                        let mut buf = vec![0u8; 8192];
                        loop {
                            match read_some(&stream, &mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => heads.lock().unwrap().push((
                                    Instant::now(),
                                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                                )),
                            }
                        }
                        closed.lock().unwrap().push(Instant::now());
                    });
                }
            }
        });
        Self {
            addr,
            heads,
            closed,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received (request line and headers, lower-cased names kept as sent).
    pub fn heads(&self) -> Vec<(Instant, String)> {
        self.heads.lock().unwrap().clone()
    }

    /// When the client closed its connections.
    pub fn closed(&self) -> Vec<Instant> {
        self.closed.lock().unwrap().clone()
    }
}

/// The value of header `name` in a raw request head.
pub fn head_header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
