//! In-process call: a sync operation through the generated stub, client, in-process transport,
//! dispatcher and dispatch table, against a direct trait method call doing the same JSON
//! encode/decode.
//!
//! Run: `cargo bench -p nexus-benches --bench inprocess`. (`nexus-bench inprocess` measures the
//! same calls as the median of interleaved rounds, which is what BENCHMARKS.md reports.)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nexus_benches::inprocess::fraud_client;
use nexus_benches::{DirectDesk, bench_input, direct_quick_score};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fraud = fraud_client();
    let input = bench_input();
    let desk = DirectDesk;

    let mut group = c.benchmark_group("in-process sync operation");
    group.bench_function("baseline: direct trait call with JSON encode/decode", |b| {
        b.iter(|| direct_quick_score(&desk, black_box(&input)))
    });
    group.bench_function("nexus: generated stub -> dispatcher -> handler", |b| {
        b.to_async(&runtime).iter(|| {
            let fraud = fraud.clone();
            let input = input.clone();
            async move { fraud.get_quick_score(black_box(input)).await.expect("call") }
        })
    });
    group.bench_function("nexus: start() + result() through a handle", |b| {
        b.to_async(&runtime).iter(|| {
            let fraud = fraud.clone();
            let input = input.clone();
            async move {
                let handle = fraud
                    .get_quick_score(black_box(input))
                    .start()
                    .await
                    .expect("start");
                handle.result().await.expect("result")
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
