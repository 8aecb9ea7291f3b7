//! Connection-level limits against hostile clients, with real sockets on loopback: slow request
//! heads, idle keep-alive connections, slow bodies, oversized heads, too many connections. The
//! timeouts are short and the assertions leave generous margins; after each attack the server
//! still answers valid calls.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::{Duration, Instant};

use nexus_runtime::Client;
use nexus_runtime::server::{CallbackListener, HandlerServer, ServerHandle, ServerLimits};
use nexus_runtime::service::Dispatcher;
use support::probe::Probe;
use support::raw_client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);
/// How long a test waits for the server to close a connection before it fails.
const PATIENCE: Duration = Duration::from_secs(5);

async fn serve(limits: ServerLimits) -> ServerHandle {
    let dispatcher = Dispatcher::builder().service(Probe::new("probe")).build();
    HandlerServer::builder(dispatcher)
        .limits(limits)
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

/// A valid call succeeds.
async fn valid_call(server: &ServerHandle) {
    let response = raw_client()
        .post(format!("{}/probe/echo", server.url()))
        .header("content-type", "application/json")
        .body("{\"ok\":true}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"{\"ok\":true}");
}

/// Reads until the server closes the connection; returns what was read and how long it took.
async fn read_until_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server closed the connection in time");
        match read {
            Ok(0) | Err(_) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

const REQUEST: &str = "POST /probe/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

#[tokio::test]
async fn a_request_head_trickled_slower_than_the_header_timeout_is_cut_off() {
    let mut limits = ServerLimits::default();
    limits.header_read_timeout = SHORT;
    let server = serve(limits).await;
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = slow.split();
    writer
        .write_all(b"POST /probe/echo HTTP/1.1\r\n")
        .await
        .unwrap();
    // One header byte every 50 ms, for 5 s: activity, but the head never ends.
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = trickle => unreachable!(),
        _ = read_until_closed(&mut reader) => {}
    }
    let waited = started.elapsed();
    assert!(waited >= SHORT - Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    valid_call(&server).await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let mut limits = ServerLimits::default();
    limits.idle_timeout = SHORT;
    limits.header_read_timeout = Duration::from_secs(30);
    let server = serve(limits).await;

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    // A connection kept alive after one request.
    let mut kept = TcpStream::connect(server.local_addr()).await.unwrap();
    kept.write_all(REQUEST.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, waited) = read_until_closed(&mut kept).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("{}"), "{answer}");
    assert!(waited >= SHORT - Duration::from_millis(50), "{waited:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let (_, waited) = read_until_closed(&mut silent).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    valid_call(&server).await;
}

#[tokio::test]
async fn a_request_in_flight_is_not_idle() {
    let mut limits = ServerLimits::default();
    limits.idle_timeout = SHORT;
    let server = serve(limits).await;
    // The body arrives after twice the idle timeout: the request is in flight meanwhile.
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let (head, body) = REQUEST.split_at(REQUEST.len() - 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(SHORT * 2).await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_a_request_timeout_naming_it() {
    let mut limits = ServerLimits::default();
    limits.body_read_timeout = SHORT;
    let server = serve(limits).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /probe/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{\"")
        .await
        .unwrap();
    let (answer, waited) = read_until_closed(&mut stream).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains("the request body was not received within the body read timeout (300ms)"),
        "{answer}"
    );
    assert!(waited >= SHORT - Duration::from_millis(50), "{waited:?}");
    valid_call(&server).await;
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_431() {
    let mut limits = ServerLimits::default();
    limits.max_header_bytes = 8 * 1024;
    let server = serve(limits).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let big = "a".repeat(16 * 1024);
    let request = format!(
        "POST /probe/echo HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    // The server may close before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut stream).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    // A head under the limit is served.
    let fine = raw_client()
        .post(format!("{}/probe/echo", server.url()))
        .header("x-big", "a".repeat(4 * 1024))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_calls_succeed_once_they_are_gone() {
    const CAP: usize = 8;
    let mut limits = ServerLimits::default();
    limits.max_connections = CAP;
    let server = serve(limits).await;

    // CAP idle connections hold every place (a request on each makes sure each was accepted).
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        held.push(stream);
    }
    // The excess is closed at once, without an answer.
    for _ in 0..4 {
        let mut excess = TcpStream::connect(server.local_addr()).await.unwrap();
        let _ = excess.write_all(REQUEST.as_bytes()).await;
        let (answer, waited) = read_until_closed(&mut excess).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
    let refused = raw_client()
        .post(format!("{}/probe/echo", server.url()))
        .body("{}")
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // The connections under the cap are still served.
    let mut first = held.remove(0);
    first.write_all(REQUEST.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(PATIENCE, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));

    // Once they are gone, calls succeed again (the server notices the closes promptly).
    drop(first);
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let attempt = raw_client()
            .post(format!("{}/probe/echo", server.url()))
            .body("{}")
            .send()
            .await;
        match attempt {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the server did not recover: {e}"),
        }
    }
    valid_call(&server).await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_ends() {
    let server = serve(ServerLimits::default()).await;
    let mut idle = TcpStream::connect(server.local_addr()).await.unwrap();
    idle.write_all(REQUEST.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let _ = idle.read(&mut buf).await.unwrap();
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shutdown does not wait for idle connections")
        .unwrap();
    let (_, waited) = read_until_closed(&mut idle).await;
    assert!(waited < Duration::from_secs(1));
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_then_closes_its_connection() {
    let server = serve(ServerLimits::default()).await;
    let mut busy = TcpStream::connect(server.local_addr()).await.unwrap();
    // `stall` answers only when its request deadline passes.
    busy.write_all(
        b"POST /probe/stall HTTP/1.1\r\nhost: x\r\nrequest-timeout: 700ms\r\ncontent-length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut idle = TcpStream::connect(server.local_addr()).await.unwrap();
    idle.write_all(REQUEST.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let _ = idle.read(&mut buf).await.unwrap();

    let started = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    // The idle connection closes at once; the busy one gets its answer, then closes.
    let (_, waited) = read_until_closed(&mut idle).await;
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    assert!(
        !stopping.is_finished(),
        "the stop did not wait for the request in flight"
    );
    let (answer, _) = read_until_closed(&mut busy).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 520 "), "{answer}");
    assert!(answer.contains("request deadline"), "{answer}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("the stop ends once the last connection has")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn the_callback_receiver_has_the_same_limits() {
    let mut limits = ServerLimits::default();
    limits.idle_timeout = SHORT;
    limits.body_read_timeout = SHORT;
    let listener = CallbackListener::bind_loopback()
        .await
        .unwrap()
        .limits(limits);
    let client = Client::builder().build();
    let receiver = listener.serve(client).unwrap();

    let mut silent = TcpStream::connect(receiver.local_addr()).await.unwrap();
    let (_, waited) = read_until_closed(&mut silent).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    let mut slow = TcpStream::connect(receiver.local_addr()).await.unwrap();
    slow.write_all(
        b"POST /nexus/callback/op-1 HTTP/1.1\r\nhost: x\r\nnexus-operation-state: succeeded\r\ncontent-length: 10\r\n\r\n{",
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut slow).await;
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("body read timeout"), "{answer}");
}
