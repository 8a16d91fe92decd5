//! Detection throughput: every detector over a day of simulated traffic
//! (the third-party-compromise scenario, about 80,000 flows), per flow.
//!
//! Run: `cargo bench -p cordon-detect --bench detect`

#![allow(missing_docs, reason = "benchmark harness")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::hint::black_box;

use cordon_detect::Engine;
use cordon_detect::config::Config;
use cordon_detect::kb::Kb;
use cordon_flow::Flow;
use cordon_sim::{Scenario, Simulation};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn flows() -> Vec<Flow> {
    let mut flows = Vec::new();
    Simulation::new(Scenario::ThirdPartyCompromise, 24, 1)
        .run(&mut |c| flows.push(c.flow()), &mut |_| {});
    flows
}

fn bench(c: &mut Criterion) {
    let flows = flows();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(flows.len() as u64));
    g.sample_size(10);
    g.bench_function("all-detectors-one-day", |b| {
        b.iter(|| {
            let mut engine = Engine::new(Config::default(), Kb::embedded().unwrap(), None);
            for f in &flows {
                engine.observe(black_box(f));
            }
            black_box(engine.finish())
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
