//! Multi-level cancellation through real dispatchers, in one process: a caller starts A; A's async
//! work calls B; B's async work calls C. Canceling A's operation cancels B's, and B's cancels C's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::error::{CallError, OperationError, OperationErrorState};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{CancellationType, Client, OperationContext, OperationResult, nexus_service};
use tokio::sync::Notify;

/// Level A.
#[nexus_service(name = "trips.v1")]
pub trait Trips {
    /// Books a trip (async): reserves a flight.
    async fn book(&self, ctx: OperationContext, trip: String) -> OperationResult<String>;
}

/// Level B.
#[nexus_service(name = "flights.v1")]
pub trait Flights {
    /// Reserves a seat (async): charges the card.
    async fn reserve(&self, ctx: OperationContext, flight: String) -> OperationResult<String>;
}

/// Level C.
#[nexus_service(name = "payments.v1")]
pub trait Payments {
    /// Charges a card (async): takes an hour unless canceled.
    async fn charge(&self, ctx: OperationContext, card: String) -> OperationResult<String>;
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.lock().expect("log").push(line);
}

struct TripsDesk {
    flights: FlightsClient,
    log: Log,
}

impl Trips for TripsDesk {
    async fn book(&self, ctx: OperationContext, trip: String) -> OperationResult<String> {
        let flights = self.flights.clone();
        let log = self.log.clone();
        ctx.start_async(move |work| async move {
            let result = flights.reserve(format!("{trip}/flight")).await;
            note(
                &log,
                format!(
                    "A: cancel requested={}, call to B ended: {}",
                    work.is_cancelled(),
                    describe(&result)
                ),
            );
            match result {
                Ok(seat) => Ok(seat),
                Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => Err(
                    OperationError::canceled(format!("trip canceled ({})", e.message)),
                ),
                Err(e) => Err(OperationError::failed(e.to_string())),
            }
        })
    }
}

struct FlightsDesk {
    payments: PaymentsClient,
    /// How B's call to C is canceled.
    cancellation_type: CancellationType,
    log: Log,
}

impl Flights for FlightsDesk {
    async fn reserve(&self, ctx: OperationContext, flight: String) -> OperationResult<String> {
        let payments = self.payments.clone();
        let log = self.log.clone();
        let cancellation_type = self.cancellation_type;
        ctx.start_async(move |work| async move {
            let result = payments
                .charge(format!("{flight}/card"))
                .cancellation_type(cancellation_type)
                .await;
            note(
                &log,
                format!(
                    "B: cancel requested={}, call to C ended: {}",
                    work.is_cancelled(),
                    describe(&result)
                ),
            );
            match result {
                Ok(receipt) => Ok(receipt),
                Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => Err(
                    OperationError::canceled(format!("reservation canceled ({})", e.message)),
                ),
                Err(CallError::Canceled) => Err(OperationError::canceled(
                    "reservation canceled (charge abandoned)",
                )),
                Err(e) => Err(OperationError::failed(e.to_string())),
            }
        })
    }
}

struct PaymentsDesk {
    log: Log,
    charging: Arc<Notify>,
}

impl Payments for PaymentsDesk {
    async fn charge(&self, ctx: OperationContext, card: String) -> OperationResult<String> {
        let log = self.log.clone();
        let charging = self.charging.clone();
        ctx.start_async(move |work| async move {
            charging.notify_one();
            tokio::select! {
                () = work.cancelled() => {
                    note(&log, format!("C: cancel requested while charging {card}"));
                    Err(OperationError::canceled("charge canceled"))
                }
                () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(format!("charged {card}")),
            }
        })
    }
}

fn describe(result: &Result<String, CallError>) -> String {
    match result {
        Ok(v) => format!("ok {v}"),
        Err(CallError::Operation(e)) => format!("{} ({})", e.state, e.message),
        Err(e) => format!("error: {e}"),
    }
}

struct Chain {
    trips: TripsClient,
    dispatchers: [Dispatcher; 3],
    log: Log,
    charging: Arc<Notify>,
}

fn chain(cancellation_type: CancellationType) -> Chain {
    let log = Log::default();
    let charging = Arc::new(Notify::new());
    let c = Dispatcher::builder()
        .service(PaymentsService::handler(PaymentsDesk {
            log: log.clone(),
            charging: charging.clone(),
        }))
        .build();
    let to_c = Client::builder()
        .endpoint("payments", InProcessTransport::new(c.clone()))
        .build();
    let b = Dispatcher::builder()
        .service(FlightsService::handler(FlightsDesk {
            payments: PaymentsClient::new(to_c, "payments"),
            cancellation_type,
            log: log.clone(),
        }))
        .build();
    let to_b = Client::builder()
        .endpoint("flights", InProcessTransport::new(b.clone()))
        .build();
    let a = Dispatcher::builder()
        .service(TripsService::handler(TripsDesk {
            flights: FlightsClient::new(to_b, "flights"),
            log: log.clone(),
        }))
        .build();
    let caller = Client::builder()
        .endpoint("trips", InProcessTransport::new(a.clone()))
        .build();
    Chain {
        trips: TripsClient::new(caller, "trips"),
        dispatchers: [a, b, c],
        log,
        charging,
    }
}

#[tokio::test(start_paused = true)]
async fn canceling_the_top_operation_cancels_every_level_below() {
    let chain = chain(CancellationType::WaitCompleted);
    let handle = chain
        .trips
        .book("paris".into())
        .start()
        .await
        .expect("A started");
    chain.charging.notified().await;
    let running: Vec<usize> = chain
        .dispatchers
        .iter()
        .map(Dispatcher::running_operations)
        .collect();
    assert_eq!(running, [1, 1, 1], "A, B and C are running");

    handle
        .cancel()
        .await
        .expect("A acknowledged the cancel request");
    let error = handle.result().await.expect_err("canceled");
    let CallError::Operation(e) = error else {
        panic!("expected an OperationError, got {error:?}")
    };
    assert_eq!(e.state, OperationErrorState::Canceled);
    assert_eq!(
        e.message,
        "trip canceled (reservation canceled (charge canceled))"
    );
    let log = chain.log.lock().expect("log").clone();
    assert_eq!(
        log,
        [
            "C: cancel requested while charging paris/flight/card",
            "B: cancel requested=true, call to C ended: canceled (charge canceled)",
            "A: cancel requested=true, call to B ended: canceled (reservation canceled (charge canceled))",
        ]
    );
    tokio::task::yield_now().await;
    let running: Vec<usize> = chain
        .dispatchers
        .iter()
        .map(Dispatcher::running_operations)
        .collect();
    assert_eq!(running, [0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn without_cancellation_every_level_completes() {
    let chain = chain(CancellationType::WaitCompleted);
    let receipt = chain.trips.book("rome".into()).await.expect("completes");
    assert_eq!(receipt, "charged rome/flight/card");
    assert_eq!(
        chain.log.lock().expect("log").clone(),
        [
            "B: cancel requested=false, call to C ended: ok charged rome/flight/card",
            "A: cancel requested=false, call to B ended: ok charged rome/flight/card",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_abandons_leaves_the_level_below_running() {
    let chain = chain(CancellationType::Abandon);
    let handle = chain
        .trips
        .book("oslo".into())
        .start()
        .await
        .expect("A started");
    chain.charging.notified().await;
    handle
        .cancel()
        .await
        .expect("A acknowledged the cancel request");
    let error = handle.result().await.expect_err("canceled");
    assert!(
        matches!(&error, CallError::Operation(e) if e.message == "trip canceled (reservation canceled (charge abandoned))"),
        "{error:?}"
    );
    assert_eq!(
        chain.log.lock().expect("log").clone(),
        [
            "B: cancel requested=true, call to C ended: error: operation canceled by the caller",
            "A: cancel requested=true, call to B ended: canceled (reservation canceled (charge abandoned))",
        ]
    );
    tokio::task::yield_now().await;
    let running: Vec<usize> = chain
        .dispatchers
        .iter()
        .map(Dispatcher::running_operations)
        .collect();
    assert_eq!(running, [0, 0, 1], "C was abandoned, not canceled");
}
