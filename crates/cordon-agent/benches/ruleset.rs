//! The agent's work before the kernel's: compiling a policy of 1,000 rules
//! over 10,000 CIDRs into its table, and encoding that table as the netlink
//! batch (bench/agent.sh measures the whole load against `nft -f`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;
use std::hint::black_box;
use std::sync::Arc;

use cordon_policy::{CompiledPolicy, LoadOptions, parse_policy};
use criterion::{Criterion, criterion_group, criterion_main};

fn policy(rules: usize, cidrs: usize) -> CompiledPolicy {
    let groups = rules / 10;
    let per = cidrs / groups;
    let mut p = String::from(
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: bench}\nspec:\n  default: deny\n  groups:\n    db: {cidrs: [10.0.2.0/24]}\n",
    );
    let mut n = 0;
    for g in 0..groups {
        let nets: Vec<String> = (0..per)
            .map(|_| {
                let m = 2 * n;
                n += 1;
                format!("{}.{}.{}.0/24", 11 + m / 65536, m / 256 % 256, m % 256)
            })
            .collect();
        let _ = writeln!(p, "    g{g}: {{cidrs: [{}]}}", nets.join(", "));
    }
    p.push_str("  rules:\n");
    for r in 0..rules {
        let _ = writeln!(
            p,
            "    - {{name: r{r}, from: [g{}], to: [db], ports: [tcp/{}], action: allow}}",
            r % groups,
            10000 + r
        );
    }
    CompiledPolicy::new(Arc::new(
        parse_policy("bench.yaml", &p, &LoadOptions::default()).unwrap(),
    ))
}

fn bench(c: &mut Criterion) {
    let compiled = policy(1000, 10_000);
    let ips = ["10.0.2.10".parse().unwrap()];
    c.bench_function(
        "compile 1,000 rules over 10,000 CIDRs into the table",
        |b| b.iter(|| cordon_agent::ruleset(black_box(&compiled), &ips, false).unwrap()),
    );
    let table = cordon_agent::ruleset(&compiled, &ips, false).unwrap().table;
    c.bench_function("encode that table as one netlink batch", |b| {
        b.iter(|| cordon_agent::netlink::replacement_batch(black_box(&table)))
    });
    c.bench_function("render that table as an nft script", |b| {
        b.iter(|| black_box(&table).script())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
