//! Multi-level cancellation, in one process: a caller books a trip (level A); the trip desk's
//! async work reserves a flight (level B); the flight desk's async work charges a card (level C).
//! The caller then cancels the trip: the cancellation travels down A -> B -> C, each level's
//! outcome travels back up, and every level prints what it saw.
//!
//! A call made inside a handler inherits the handler's cancellation: when A's operation is
//! canceled, A's call to B is canceled according to its cancellation type (here the default,
//! WaitCompleted: send a cancel request, then wait for B's outcome).
//!
//! Run: `cargo run -p nexus-examples --bin cancel-chain` (`-- --help` for the options)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use nexus_runtime::error::{CallError, OperationError, OperationErrorState};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{AsyncContext, Client, OperationContext, OperationResult, nexus_service};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Level A: the trip desk.
#[nexus_service(name = "trips.v1")]
pub trait Trips {
    /// Books a trip; reserves its flight.
    async fn book(&self, ctx: OperationContext, trip: String) -> OperationResult<String>;
}

/// Level B: the flight desk.
#[nexus_service(name = "flights.v1")]
pub trait Flights {
    /// Reserves a seat; charges the card.
    async fn reserve(&self, ctx: OperationContext, flight: String) -> OperationResult<String>;
}

/// Level C: the payment desk.
#[nexus_service(name = "payments.v1")]
pub trait Payments {
    /// Charges a card; takes an hour unless canceled.
    async fn charge(&self, ctx: OperationContext, card: String) -> OperationResult<String>;
}

/// Prints a line with the time since the start.
#[derive(Clone)]
struct Say(Instant);

impl Say {
    fn line(&self, who: &str, what: impl AsRef<str>) {
        let ms = self.0.elapsed().as_millis();
        println!("{ms:>5} ms  {who:<8} {}", what.as_ref());
    }
}

struct TripDesk {
    flights: FlightsClient,
    say: Say,
}

impl Trips for TripDesk {
    async fn book(&self, ctx: OperationContext, trip: String) -> OperationResult<String> {
        let flights = self.flights.clone();
        let say = self.say.clone();
        say.line("A trip", format!("started booking {trip}; calling B"));
        ctx.start_async(move |work| async move {
            let call = flights.reserve(format!("{trip}/flight"));
            let result = call_and_watch(&work, &say, "A trip", "B", call.into_future()).await;
            level_outcome(&say, "A trip", "trip", result)
        })
    }
}

struct FlightDesk {
    payments: PaymentsClient,
    say: Say,
}

impl Flights for FlightDesk {
    async fn reserve(&self, ctx: OperationContext, flight: String) -> OperationResult<String> {
        let payments = self.payments.clone();
        let say = self.say.clone();
        say.line("B flight", format!("started reserving {flight}; calling C"));
        ctx.start_async(move |work| async move {
            let call = payments.charge(format!("{flight}/card"));
            let result = call_and_watch(&work, &say, "B flight", "C", call.into_future()).await;
            level_outcome(&say, "B flight", "reservation", result)
        })
    }
}

struct PaymentDesk {
    say: Say,
    charging: Arc<Notify>,
}

impl Payments for PaymentDesk {
    async fn charge(&self, ctx: OperationContext, card: String) -> OperationResult<String> {
        let say = self.say.clone();
        let charging = self.charging.clone();
        say.line("C pay", format!("started charging {card} (takes an hour)"));
        ctx.start_async(move |work| async move {
            charging.notify_one();
            tokio::select! {
                () = work.cancelled() => {
                    say.line("C pay", "cancel request received: stopping the charge");
                    Err(OperationError::canceled("charge canceled"))
                }
                () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(format!("charged {card}")),
            }
        })
    }
}

/// Awaits a call made inside an operation's work, printing when the operation's own cancellation
/// arrives (the call is then canceled by the runtime, because it inherits the work's scope).
async fn call_and_watch(
    work: &AsyncContext,
    say: &Say,
    who: &str,
    callee: &str,
    call: impl Future<Output = Result<String, CallError>>,
) -> Result<String, CallError> {
    let mut call = std::pin::pin!(call);
    tokio::select! {
        result = call.as_mut() => return result,
        () = work.cancelled() => say.line(
            who,
            format!("cancel request received: the runtime cancels my call to {callee}; waiting for its outcome"),
        ),
    }
    call.await
}

fn level_outcome(
    say: &Say,
    who: &str,
    what: &str,
    result: Result<String, CallError>,
) -> Result<String, OperationError> {
    match result {
        Ok(value) => Ok(value),
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => {
            say.line(
                who,
                format!("my call ended canceled ({}): ending canceled", e.message),
            );
            Err(OperationError::canceled(format!(
                "{what} canceled ({})",
                e.message
            )))
        }
        Err(e) => Err(OperationError::failed(e.to_string())),
    }
}

/// Multi-level cancellation in one process: a trip (level A) reserves a flight (B), which charges
/// a card (C); the caller cancels the trip, and the cancellation travels down A -> B -> C while
/// each level's outcome travels back up. Every level prints what it saw; the exit code is
/// non-zero if the trip does not end canceled.
#[derive(Debug, Parser)]
#[command(name = "cancel-chain", version)]
struct Args {
    /// The trip the caller books (and then cancels).
    #[arg(long, value_name = "NAME", default_value = "paris")]
    trip: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let say = Say(Instant::now());
    let charging = Arc::new(Notify::new());

    // Three teams, three dispatchers; each level calls the next through its own client.
    let payments = Dispatcher::builder()
        .service(PaymentsService::handler(PaymentDesk {
            say: say.clone(),
            charging: charging.clone(),
        }))
        .build();
    let flights = Dispatcher::builder()
        .service(FlightsService::handler(FlightDesk {
            payments: PaymentsClient::new(
                Client::builder()
                    .endpoint("payments", InProcessTransport::new(payments.clone()))
                    .build(),
                "payments",
            ),
            say: say.clone(),
        }))
        .build();
    let trips = Dispatcher::builder()
        .service(TripsService::handler(TripDesk {
            flights: FlightsClient::new(
                Client::builder()
                    .endpoint("flights", InProcessTransport::new(flights.clone()))
                    .build(),
                "flights",
            ),
            say: say.clone(),
        }))
        .build();
    let caller = TripsClient::new(
        Client::builder()
            .endpoint("trips", InProcessTransport::new(trips.clone()))
            .build(),
        "trips",
    );

    let handle = caller
        .book(args.trip)
        .start()
        .await
        .map_err(|e| format!("book: {e}"))?;
    say.line(
        "caller",
        format!("trip started, token {}", handle.token().unwrap_or("<none>")),
    );
    charging.notified().await;
    say.line(
        "caller",
        format!(
            "running operations: A={} B={} C={}; canceling the trip",
            trips.running_operations(),
            flights.running_operations(),
            payments.running_operations()
        ),
    );
    handle.cancel().await.map_err(|e| format!("cancel: {e}"))?;
    say.line(
        "caller",
        "A acknowledged the cancel request; waiting for the outcome",
    );
    match handle.result().await {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => {
            say.line("caller", format!("trip ended canceled: {}", e.message));
        }
        other => return Err(format!("expected a canceled trip, got {other:?}")),
    }
    tokio::task::yield_now().await;
    say.line(
        "caller",
        format!(
            "running operations: A={} B={} C={}",
            trips.running_operations(),
            flights.running_operations(),
            payments.running_operations()
        ),
    );
    Ok(())
}
