//! In-process call: a sync operation through the generated stub, client, in-process transport,
//! dispatcher and dispatch table, against a direct call doing the same JSON encode/decode.
//!
//! Run: `cargo bench -p nexus-benches --bench inprocess`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fraud_contract::{FraudClient, FraudService, GetQuickScoreInput};
use nexus_benches::direct_quick_score;
use nexus_examples::fraud_desk::FraudDesk;
use nexus_runtime::Client;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dispatcher = Dispatcher::builder()
        .service(FraudService::handler(FraudDesk::new(
            Duration::from_millis(1),
        )))
        .build();
    let client = Client::builder()
        .endpoint("fraud", InProcessTransport::new(dispatcher))
        .build();
    let fraud = FraudClient::new(client, "fraud");
    let input = GetQuickScoreInput {
        user_id: "user-ada".into(),
    };

    let mut group = c.benchmark_group("in-process sync operation");
    group.bench_function("baseline: direct call with JSON encode/decode", |b| {
        b.iter(|| direct_quick_score(black_box(&input)))
    });
    group.bench_function("nexus: generated stub -> dispatcher -> handler", |b| {
        b.to_async(&runtime).iter(|| {
            let fraud = fraud.clone();
            let input = input.clone();
            async move { fraud.get_quick_score(black_box(input)).await.expect("call") }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
