//! Decision latency and compile cost of the compiled evaluator, against the
//! reference evaluator, on synthetic policies with 100,000 CIDRs and 100,000
//! FQDN patterns.
//!
//! Run: `cargo bench -p cordon-policy --bench evaluate`

#![allow(missing_docs, reason = "benchmark harness")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_policy::synthetic::{Shape, policy_yaml, requests};
use cordon_policy::{CompiledPolicy, LoadOptions, parse_policy, reference};
use criterion::{Criterion, criterion_group, criterion_main};

fn shape(rules: usize) -> Shape {
    Shape {
        rules,
        cidr_groups: 1_000,
        cidrs: 100_000,
        fqdn_groups: 1_000,
        fqdns: 100_000,
        seed: 7,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    group.measurement_time(Duration::from_secs(5));
    let mut largest = None;
    for rules in [10, 1_000, 10_000] {
        let s = shape(rules);
        let yaml = policy_yaml(&s);
        let policy =
            Arc::new(parse_policy("synthetic.yaml", &yaml, &LoadOptions::default()).unwrap());
        let before = rss_kib();
        let started = Instant::now();
        let compiled = CompiledPolicy::new(Arc::clone(&policy));
        let compile_time = started.elapsed();
        let grown = rss_kib().saturating_sub(before);
        eprintln!(
            "rules={rules}: compile {compile_time:?}, RSS +{grown} KiB, {:?}",
            compiled.stats()
        );
        // Two access patterns: 4,096 random requests spread over the whole
        // address and name space (most lookups miss the CPU caches: the
        // worst case), and a working set of 64 endpoints pairs, like a
        // gateway or agent seeing the same clients and services repeatedly.
        let reqs = requests(&s, 4_096);
        for (label, n) in [("random-4096", 4_096), ("working-set-64", 64)] {
            let mut i = 0;
            group.bench_function(format!("compiled/{rules}-rules/{label}"), |b| {
                b.iter(|| {
                    i = (i + 1) % n;
                    black_box(compiled.evaluate(black_box(&reqs[i])).verdict)
                });
            });
        }
        if rules == 10_000 {
            largest = Some((policy, compiled, reqs, yaml));
        }
    }
    let (policy, _compiled, reqs, yaml) = largest.unwrap();
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut i = 0;
    group.bench_function("reference/10000-rules", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let r = &reqs[i];
            black_box(reference::evaluate(&policy, &r.src, &r.dst, r.protocol, r.port).0)
        });
    });
    group.finish();

    let mut compile = c.benchmark_group("compile");
    compile.sample_size(10);
    compile.measurement_time(Duration::from_secs(20));
    compile.bench_function("compile/10000-rules", |b| {
        b.iter(|| CompiledPolicy::new(Arc::clone(&policy)));
    });
    compile.bench_function("parse+resolve/10000-rules", |b| {
        b.iter(|| parse_policy("synthetic.yaml", &yaml, &LoadOptions::default()).unwrap());
    });
    compile.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
