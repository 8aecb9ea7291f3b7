//! End-to-end payload codecs: AES-256-GCM between a client and a dispatcher, in process and over
//! loopback HTTP with a tapping proxy in both directions (start requests and answers, completion
//! callbacks), wrong keys, altered ciphertext, and the stores holding only ciphertext.
#![cfg(all(feature = "http", feature = "aes-gcm"))]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::codec::aes_gcm::{AesGcmCodec, ENCRYPTED, KEY_ID, Keyring};
use nexus_runtime::codec::{CodecChain, CodecError, Content, PayloadCodec};
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::server::{CallbackListener, HandlerServer, ServerHandle};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::MemoryStore;
use nexus_runtime::transport::{HttpTransport, InProcessTransport};
use nexus_runtime::{CallError, Client, OperationContext, OperationError, OperationResult};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A secret that must never be seen between the two ends.
const SECRET: &str = "4111-1111-1111-1111";

/// A card to check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Card {
    /// Its number: the secret.
    pub number: String,
}

/// What the check says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    /// The card's number, echoed.
    pub number: String,
    /// Whether it is approved.
    pub approved: bool,
}

/// Checks cards.
#[nexus_runtime::nexus_service(name = "cards.v1")]
pub trait Cards {
    /// Answers at once.
    async fn check(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict>;
    /// Answers through a completion.
    async fn check_later(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict>;
    /// Fails at once, with the card as the failure's details.
    async fn decline(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict>;
    /// Fails through a completion, with the card as the failure's details.
    async fn decline_later(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict>;
}

/// Records the inputs the methods saw (decoded, typed).
#[derive(Clone, Default)]
struct CardsImpl {
    seen: Arc<Mutex<Vec<Card>>>,
}

impl Cards for CardsImpl {
    async fn check(&self, _ctx: OperationContext, card: Card) -> OperationResult<Verdict> {
        self.seen.lock().unwrap().push(card.clone());
        Ok(verdict(card).into())
    }

    async fn check_later(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict> {
        self.seen.lock().unwrap().push(card.clone());
        ctx.start_async(move |_work| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(verdict(card))
        })
    }

    async fn decline(&self, _ctx: OperationContext, card: Card) -> OperationResult<Verdict> {
        Err(declined(&card).into())
    }

    async fn decline_later(&self, ctx: OperationContext, card: Card) -> OperationResult<Verdict> {
        ctx.start_async(move |_work| async move { Err(declined(&card)) })
    }
}

/// The card in the details of a declined call's error.
fn declined_card(error: CallError) -> Card {
    let CallError::Operation(error) = error else {
        panic!("not an operation error: {error:?}");
    };
    assert_eq!(error.message, "declined");
    error.details::<Card>().unwrap().expect("details")
}

fn declined(card: &Card) -> OperationError {
    OperationError::failed("declined").with_details(card)
}

fn verdict(card: Card) -> Verdict {
    Verdict {
        approved: card.number.ends_with('1'),
        number: card.number,
    }
}

fn card() -> Card {
    Card {
        number: SECRET.into(),
    }
}

fn aes(current: &str) -> AesGcmCodec {
    AesGcmCodec::new(
        Keyring::new(current, &key(current))
            .unwrap()
            .with_decryption_key("old", &key("old"))
            .unwrap(),
    )
}

/// A distinct 32-byte key per id.
fn key(id: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (k, b) in key.iter_mut().zip(id.bytes().cycle()) {
        *k = b;
    }
    key
}

/// Flips a bit of the last byte of every payload it encodes (after the codecs before it).
struct Tamper;

impl PayloadCodec for Tamper {
    fn encode(&self, mut content: Content) -> Result<Content, CodecError> {
        let mut data = content.data.to_vec();
        if let Some(last) = data.last_mut() {
            *last ^= 1;
        }
        content.data = data.into();
        Ok(content)
    }

    fn decode(&self, content: Content) -> Result<Content, CodecError> {
        Ok(content)
    }
}

/// A client builder with endpoint `cards` on `handler`, in process.
fn in_process(handler: Dispatcher) -> nexus_runtime::client::ClientBuilder {
    Client::builder().endpoint("cards", InProcessTransport::new(handler))
}

fn dispatcher(cards: &CardsImpl, codec: impl PayloadCodec) -> Dispatcher {
    Dispatcher::builder()
        .service(CardsService::handler(cards.clone()))
        .payload_codec(codec)
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build()
}

#[tokio::test]
async fn in_process_sync_and_async_results_round_trip_and_the_store_holds_ciphertext() {
    let cards = CardsImpl::default();
    let store = Arc::new(MemoryStore::new());
    let client = in_process(dispatcher(&cards, aes("k1")))
        .store(store.clone())
        .payload_codec(aes("k1"))
        .build();
    let stub = CardsClient::new(client.clone(), "cards");
    assert_eq!(stub.check(card()).await.unwrap(), verdict(card()));
    let handle = stub.check_later(card()).start().await.unwrap();
    assert!(handle.token().is_some(), "an async operation");
    assert_eq!(handle.result().await.unwrap(), verdict(card()));
    assert_eq!(*cards.seen.lock().unwrap(), [card(), card()]);

    // Failure details are decoded too: sync, async, and from `start`.
    assert_eq!(
        declined_card(stub.decline(card()).await.unwrap_err()),
        card()
    );
    assert_eq!(
        declined_card(stub.decline_later(card()).await.unwrap_err()),
        card()
    );
    assert_eq!(
        declined_card(stub.decline(card()).start().await.unwrap_err()),
        card()
    );

    // What the caller recorded, input and completion, is what crossed: ciphertext.
    use nexus_runtime::store::CallerStore as _;
    let record = store.get(handle.operation_id()).await.unwrap().unwrap();
    for payload in [&record.input, record.result.as_ref().unwrap()] {
        assert_eq!(payload.content_type(), Some(ENCRYPTED));
        assert_eq!(&payload.headers[KEY_ID], "k1");
        assert!(!contains(&payload.data, SECRET.as_bytes()));
    }
    // A handle attached later decodes the recorded result too.
    let attached = client
        .attach::<cards::CheckLater>(handle.operation_id())
        .await
        .unwrap();
    assert_eq!(attached.result().await.unwrap(), verdict(card()));
}

#[tokio::test]
async fn a_durable_dispatcher_replays_the_recorded_ciphertext() {
    let cards = CardsImpl::default();
    let handler = Dispatcher::builder()
        .service(CardsService::handler(cards.clone()))
        .store(Arc::new(MemoryStore::new()))
        .payload_codec(aes("k1"))
        .build();
    // Two callers (two processes, say) with the same request id: the method runs once, the
    // second gets the recorded (encrypted) answer, and both decode it.
    for _ in 0..2 {
        let client = in_process(handler.clone()).payload_codec(aes("k1")).build();
        let stub = CardsClient::new(client, "cards");
        let out = stub.check(card()).request_id("order-1").await.unwrap();
        assert_eq!(out, verdict(card()));
        let err = stub
            .decline(card())
            .request_id("order-2")
            .await
            .unwrap_err();
        assert_eq!(declined_card(err), card());
    }
    // An async completion recorded (encrypted) in the outbox reaches the caller.
    let client = in_process(handler.clone()).payload_codec(aes("k1")).build();
    let stub = CardsClient::new(client, "cards");
    let out = stub
        .check_later(card())
        .request_id("order-3")
        .await
        .unwrap();
    assert_eq!(out, verdict(card()));
    assert_eq!(
        cards.seen.lock().unwrap().len(),
        2,
        "one run per request id"
    );
}

#[tokio::test]
async fn rotated_keys_still_decrypt_and_chains_compose() {
    let cards = CardsImpl::default();
    // The handler encrypts with the new key `k2` and still reads `old`; the caller still
    // encrypts with `old` (it is given `k2` as a decryption key).
    let caller = AesGcmCodec::new(
        Keyring::new("old", &key("old"))
            .unwrap()
            .with_decryption_key("k2", &key("k2"))
            .unwrap(),
    );
    let client = in_process(dispatcher(&cards, aes("k2")))
        .payload_codec(caller)
        .build();
    let stub = CardsClient::new(client, "cards");
    assert_eq!(stub.check(card()).await.unwrap(), verdict(card()));
    assert_eq!(stub.check_later(card()).await.unwrap(), verdict(card()));

    // Two codecs, given one after the other on both sides, form a chain.
    let chain = || CodecChain::new().then(aes("k1")).then(aes("k2"));
    let client = in_process(
        Dispatcher::builder()
            .service(CardsService::handler(cards.clone()))
            .payload_codec(aes("k1"))
            .payload_codec(aes("k2"))
            .build(),
    )
    .payload_codec(chain())
    .build();
    let stub = CardsClient::new(client, "cards");
    assert_eq!(stub.check_later(card()).await.unwrap(), verdict(card()));
}

#[tokio::test]
async fn a_wrong_key_or_plaintext_is_refused_by_the_handler_with_bad_request() {
    let cards = CardsImpl::default();
    let handler = dispatcher(&cards, aes("k1"));
    let cases = [
        (
            "unknown key",
            "cannot decode the input of operation `check`: unknown encryption key id `k9`",
        ),
        (
            "altered",
            "cannot decode the input of operation `check`: the encrypted payload failed \
             authentication with key `k1`",
        ),
        (
            "plaintext",
            "cannot decode the input of operation `check`: the payload is not encrypted \
             (content type `application/json`)",
        ),
    ];
    for (name, expected) in cases {
        let builder = in_process(handler.clone());
        let client = match name {
            "unknown key" => builder.payload_codec(aes("k9")),
            "altered" => builder.payload_codec(aes("k1")).payload_codec(Tamper),
            _ => builder,
        }
        .build();
        let err = CardsClient::new(client, "cards")
            .check(card())
            .await
            .unwrap_err();
        let CallError::Handler(e) = &err else {
            panic!("{name}: {err:?}");
        };
        assert_eq!(e.error_type, HandlerErrorType::BadRequest, "{name}");
        assert!(e.message.starts_with(expected), "{name}: {}", e.message);
    }
    assert!(cards.seen.lock().unwrap().is_empty(), "no method ran");
}

#[tokio::test]
async fn results_the_caller_cannot_decode_are_codec_errors() {
    let cards = CardsImpl::default();
    // The handler's results are altered after encryption: sync and async alike.
    let altering = Dispatcher::builder()
        .service(CardsService::handler(cards.clone()))
        .payload_codec(aes("k1"))
        .payload_codec(Tamper)
        .build();
    let client = in_process(altering).payload_codec(aes("k1")).build();
    let stub = CardsClient::new(client, "cards");
    for err in [
        stub.check(card()).await.unwrap_err(),
        stub.check_later(card()).await.unwrap_err(),
    ] {
        let CallError::Codec(message) = &err else {
            panic!("{err:?}");
        };
        assert!(
            message.contains("cannot decode the output of `check")
                && message.contains("failed authentication with key `k1`"),
            "{message}"
        );
    }
    let err = stub.decline(card()).await.unwrap_err();
    let CallError::Codec(message) = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.starts_with("cannot decode the failure details of `decline` (failed: declined): ")
            && message.contains("failed authentication"),
        "{message}"
    );
    // A handler whose key the caller lacks.
    let k7 = Keyring::new("k7", &key("k7"))
        .unwrap()
        .with_decryption_key("k1", &key("k1"))
        .unwrap();
    let client = in_process(dispatcher(&cards, AesGcmCodec::new(k7)))
        .payload_codec(aes("k1"))
        .build();
    let err = CardsClient::new(client, "cards")
        .check_later(card())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Codec(
            "cannot decode the output of `checkLater`: unknown encryption key id `k7`".into()
        )
    );
}

#[tokio::test]
async fn a_result_the_handler_cannot_encode_fails_the_operation() {
    struct Refuse;
    impl PayloadCodec for Refuse {
        fn encode(&self, _: Content) -> Result<Content, CodecError> {
            Err(CodecError::new("no encoder today"))
        }
        fn decode(&self, content: Content) -> Result<Content, CodecError> {
            Ok(content)
        }
    }
    let cards = CardsImpl::default();
    let client = in_process(dispatcher(&cards, Refuse)).build();
    let stub = CardsClient::new(client, "cards");
    // INTERNAL is retryable: one attempt shows it.
    let err = stub
        .check(card())
        .retry_policy(RetryPolicy::no_retries())
        .await
        .unwrap_err();
    let e = err.as_handler_error().unwrap();
    assert_eq!(e.error_type, HandlerErrorType::Internal);
    assert_eq!(
        e.message,
        "cannot encode the output of `check`: no encoder today"
    );
    let err = stub.check_later(card()).await.unwrap_err();
    let e: &OperationError = err.as_operation_error().unwrap();
    assert_eq!(
        e.message,
        "cannot encode the result of `checkLater`: no encoder today"
    );
    // A caller whose codec cannot encode the input fails before sending anything.
    let client = in_process(dispatcher(&cards, aes("k1")))
        .payload_codec(Refuse)
        .build();
    let err = CardsClient::new(client, "cards")
        .check(card())
        .schedule()
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Codec("cannot encode the input of `check`: no encoder today".into())
    );
}

/// Everything that crossed a [`tap`], both directions, concatenated.
type Captured = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy on loopback that forwards to `target` and keeps a copy of every byte.
async fn tap(target: SocketAddr) -> (SocketAddr, Captured) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let captured = Captured::default();
    let log = captured.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(pipe(in_read, out_write, log.clone()));
            tokio::spawn(pipe(out_read, in_write, log.clone()));
        }
    });
    (addr, captured)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Captured,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text(captured: &Captured) -> String {
    String::from_utf8_lossy(&captured.lock().unwrap()).to_lowercase()
}

struct OverHttp {
    cards: CardsImpl,
    stub: CardsClient,
    /// Start requests and their answers.
    starts: Captured,
    /// Completion callbacks.
    callbacks: Captured,
    _server: ServerHandle,
    _receiver: ServerHandle,
}

/// A handler server and a callback receiver, each behind a tap.
async fn over_http(caller: AesGcmCodec, handler: AesGcmCodec) -> OverHttp {
    let cards = CardsImpl::default();
    let server = HandlerServer::builder(dispatcher(&cards, handler))
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (handler_tap, starts) = tap(server.local_addr()).await;
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let (receiver_tap, callbacks) = tap(listener.local_addr()).await;
    let callback_url = listener.callback_url().replace(
        &listener.local_addr().to_string(),
        &receiver_tap.to_string(),
    );
    let client = Client::builder()
        .endpoint(
            "cards",
            HttpTransport::new(format!("http://{handler_tap}")).unwrap(),
        )
        .callback_url(callback_url)
        .payload_codec(caller)
        .build();
    let receiver = listener.serve(client.clone()).unwrap();
    OverHttp {
        cards,
        stub: CardsClient::new(client, "cards"),
        starts,
        callbacks,
        _server: server,
        _receiver: receiver,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_only_ciphertext_crosses_the_wire() {
    let s = over_http(aes("k1"), aes("k1")).await;
    assert_eq!(s.stub.check(card()).await.unwrap(), verdict(card()));
    assert_eq!(s.stub.check_later(card()).await.unwrap(), verdict(card()));
    // The methods saw the decoded input.
    assert_eq!(*s.cards.seen.lock().unwrap(), [card(), card()]);
    let before_failures = (text(&s.starts), text(&s.callbacks));
    assert_eq!(
        declined_card(s.stub.decline(card()).await.unwrap_err()),
        card()
    );
    assert_eq!(
        declined_card(s.stub.decline_later(card()).await.unwrap_err()),
        card()
    );

    let (starts, callbacks) = before_failures;
    // Two start requests and their two answers (one sync result, one 201), one completion.
    assert_eq!(starts.matches("content-key-id: k1").count(), 3, "{starts}");
    assert_eq!(
        starts
            .matches(&format!("content-type: {ENCRYPTED}"))
            .count(),
        3,
        "{starts}"
    );
    assert_eq!(
        callbacks.matches("content-key-id: k1").count(),
        1,
        "{callbacks}"
    );
    assert!(callbacks.contains("nexus-operation-state: succeeded"));
    // The failures' messages are readable, their details are not.
    assert!(text(&s.starts).contains("\"message\":\"declined\""));
    assert!(text(&s.callbacks).contains("\"message\":\"declined\""));
    assert!(text(&s.callbacks).contains("\"details-encoding\":\"payload-codec\""));
    for (what, seen) in [("starts", &s.starts), ("callbacks", &s.callbacks)] {
        let seen = seen.lock().unwrap();
        assert!(!contains(&seen, SECRET.as_bytes()), "{what}");
        assert!(!contains(&seen, b"approved"), "{what}");
        assert!(
            !contains(&seen, b"application/json\r\ncontent-length: 2"),
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_an_unknown_key_is_a_bad_request_naming_it() {
    let s = over_http(aes("k9"), aes("k1")).await;
    let err = s.stub.check(card()).await.unwrap_err();
    let e = err.as_handler_error().unwrap();
    assert_eq!(e.error_type, HandlerErrorType::BadRequest);
    assert_eq!(
        e.message,
        "cannot decode the input of operation `check`: unknown encryption key id `k9`"
    );
    assert!(text(&s.starts).starts_with("post "), "the request crossed");
    assert!(text(&s.starts).contains(" 400 bad request"));
    assert!(s.cards.seen.lock().unwrap().is_empty());
}
