//! Hot paths of the flow pipeline: decoding one record of each format,
//! one IPFIX packet, and enriching one flow against the example policy.
//!
//! Run: `cargo bench -p cordon-flow --bench parse`

#![allow(missing_docs, reason = "benchmark harness")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use cordon_flow::enrich::Enricher;
use cordon_flow::sources::LineDecoder;
use cordon_flow::sources::aws::AwsDecoder;
use cordon_flow::sources::netflow::NetflowDecoder;
use cordon_flow::sources::zeek::ZeekTsvDecoder;
use cordon_flow::{Flow, FlowSource};
use cordon_policy::{CompiledPolicy, LoadOptions, load_policy};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const AWS: &str = "2 123456789012 eni-0a1b2c3d 10.0.1.10 10.0.2.10 40123 5432 6 12 4821 1700000000 1700000060 ACCEPT OK";
const ZEEK: &str = "1700000000.118403\tCHhAvVGS1DHFjwGM9\t10.0.4.10\t49152\t198.51.100.25\t587\ttcp\tsmtp\t2.503122\t1200\t340\tSF\tT\tF\t0\tShADadfF\t12\t1824\t10\t860\t(empty)";

/// An IPFIX message: a template for 10 fields and 20 records.
fn ipfix() -> Vec<u8> {
    let fields: [(u16, u16); 10] = [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (2, 4),
        (1, 4),
        (152, 8),
        (153, 8),
        (6, 1),
    ];
    let mut tpl = vec![1, 0, 0, 10];
    for (f, l) in fields {
        tpl.extend(f.to_be_bytes());
        tpl.extend(l.to_be_bytes());
    }
    let mut data = Vec::new();
    for i in 0..20u8 {
        data.extend([10, 0, 1, i, 10, 0, 2, 10]);
        data.extend(40000u16.to_be_bytes());
        data.extend(443u16.to_be_bytes());
        data.push(6);
        data.extend(10u32.to_be_bytes());
        data.extend(5000u32.to_be_bytes());
        data.extend(1_700_000_000_000u64.to_be_bytes());
        data.extend(1_700_000_001_000u64.to_be_bytes());
        data.push(0x1b);
    }
    let set = |id: u16, body: &[u8]| {
        let mut s = id.to_be_bytes().to_vec();
        s.extend((body.len() as u16 + 4).to_be_bytes());
        s.extend(body);
        s
    };
    let body = [set(2, &tpl), set(256, &data)].concat();
    let mut p = vec![0, 10];
    p.extend((16 + body.len() as u16).to_be_bytes());
    p.extend(1_700_000_000u32.to_be_bytes());
    p.extend(1u32.to_be_bytes());
    p.extend(0u32.to_be_bytes());
    p.extend(body);
    p
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let mut aws = AwsDecoder::default();
    let mut out = Vec::with_capacity(4);
    g.bench_function("aws-line", |b| {
        b.iter(|| {
            out.clear();
            aws.line(black_box(AWS), &mut out).unwrap();
        })
    });
    let mut zeek = ZeekTsvDecoder::default();
    g.bench_function("zeek-tsv-line", |b| {
        b.iter(|| {
            out.clear();
            zeek.line(black_box(ZEEK), &mut out).unwrap();
        })
    });
    let packet = ipfix();
    let mut nf = NetflowDecoder::default();
    let exporter = "192.0.2.1:4739".parse().unwrap();
    g.throughput(Throughput::Elements(20));
    g.bench_function("ipfix-packet-20-records", |b| {
        b.iter(|| {
            out.clear();
            nf.packet(exporter, black_box(&packet), 0, &mut out);
        })
    });
    g.finish();

    let policy = load_policy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let mut enricher = Enricher::new(Arc::new(CompiledPolicy::new(Arc::new(policy))));
    let mut flow = Flow::new(
        FlowSource::Aws,
        "10.0.3.10".parse().unwrap(),
        "10.0.2.10".parse().unwrap(),
        6,
    );
    flow.dst_port = 5432;
    c.bench_function("enrich/example-policy", |b| {
        b.iter(|| {
            enricher.enrich(black_box(&mut flow));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
