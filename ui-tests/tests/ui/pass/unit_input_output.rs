//! An operation without input (no input argument) and one without output (`OperationResult<()>`):
//! the definition has no `input` / `output` for them.

use std::sync::atomic::{AtomicU32, Ordering};

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, OperationContext, OperationResult, nexus_service};

#[nexus_service(name = "counter")]
pub trait Counter {
    async fn increment(&self, ctx: OperationContext) -> OperationResult<()>;
    async fn add(&self, ctx: OperationContext, amount: u32) -> OperationResult<()>;
    async fn get(&self, ctx: OperationContext) -> OperationResult<u32>;
}

#[derive(Default)]
struct Impl(AtomicU32);

impl Counter for Impl {
    async fn increment(&self, _ctx: OperationContext) -> OperationResult<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(().into())
    }

    async fn add(&self, _ctx: OperationContext, amount: u32) -> OperationResult<()> {
        self.0.fetch_add(amount, Ordering::SeqCst);
        Ok(().into())
    }

    async fn get(&self, _ctx: OperationContext) -> OperationResult<u32> {
        Ok(self.0.load(Ordering::SeqCst).into())
    }
}

fn unit_input<Op: Operation<Input = ()>>() {}
fn unit_output<Op: Operation<Output = ()>>() {}
fn input_is_u32<Op: Operation<Input = u32>>() {}
fn output_is_u32<Op: Operation<Output = u32>>() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    unit_input::<counter::Increment>();
    unit_output::<counter::Increment>();
    unit_output::<counter::Add>();
    unit_input::<counter::Get>();
    input_is_u32::<counter::Add>();
    output_is_u32::<counter::Get>();

    let definition = Definition::of::<CounterService>();
    let operations = &definition.services["counter"].operations;
    assert_eq!(operations["increment"].input, None);
    assert_eq!(operations["increment"].output, None);
    assert!(operations["add"].input.is_some());
    assert_eq!(operations["add"].output, None);
    assert_eq!(operations["get"].input, None);
    assert!(operations["get"].output.is_some());

    let dispatcher = Dispatcher::builder()
        .service(CounterService::handler(Impl::default()))
        .build();
    let client = Client::builder()
        .endpoint("counter", InProcessTransport::new(dispatcher))
        .build();
    let counter = CounterClient::new(client, "counter");
    counter.increment().await.unwrap();
    counter.add(41).await.unwrap();
    assert_eq!(counter.get().await.unwrap(), 42);
}
