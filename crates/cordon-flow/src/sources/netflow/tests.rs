//! Hand-built packets in every version, and packets that lie.

use std::net::SocketAddr;

use super::NetflowDecoder;
use crate::flow::{Flow, FlowSource};
use crate::read::SkipReason;

fn exporter() -> SocketAddr {
    "192.0.2.1:9995".parse().unwrap()
}

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// (src, dst, sport, dport, proto, packets, bytes)
type V5Record = ([u8; 4], [u8; 4], u16, u16, u8, u32, u32);

/// A NetFlow v5 packet with `records`.
pub fn v5(records: &[V5Record], sampling: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(be16(5));
    p.extend(be16(records.len() as u16));
    p.extend(be32(100_000)); // sys uptime ms
    p.extend(be32(1_700_000_000)); // unix secs
    p.extend(be32(0));
    p.extend(be32(1)); // sequence
    p.extend([0, 0]);
    p.extend(be16(sampling));
    for (src, dst, sport, dport, proto, pkts, bytes) in records {
        p.extend(src);
        p.extend(dst);
        p.extend([0; 4]);
        p.extend(be16(1));
        p.extend(be16(2));
        p.extend(be32(*pkts));
        p.extend(be32(*bytes));
        p.extend(be32(90_000)); // first
        p.extend(be32(99_000)); // last
        p.extend(be16(*sport));
        p.extend(be16(*dport));
        p.extend([0, 0x1b, *proto, 0]);
        p.extend([0; 8]);
    }
    p
}

fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(be16(id));
    s.extend(be16(body.len() as u16 + 4));
    s.extend(body);
    s
}

fn v9(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(be16(9));
    p.extend(be16(sets.len() as u16));
    p.extend(be32(100_000));
    p.extend(be32(1_700_000_000));
    p.extend(be32(7));
    p.extend(be32(domain));
    for s in sets {
        p.extend(s);
    }
    p
}

fn ipfix(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut p = Vec::new();
    p.extend(be16(10));
    p.extend(be16(16 + body.len() as u16));
    p.extend(be32(1_700_000_000));
    p.extend(be32(3));
    p.extend(be32(domain));
    p.extend(body);
    p
}

/// Template: (id, [(field, length)]).
fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(be16(id));
    t.extend(be16(fields.len() as u16));
    for (f, l) in fields {
        t.extend(be16(*f));
        t.extend(be16(*l));
    }
    t
}

const V4_FIELDS: &[(u16, u16)] = &[
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
    (6, 1),
];

fn v4_record(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, pkts: u32, bytes: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(src);
    r.extend(dst);
    r.extend(be16(sport));
    r.extend(be16(dport));
    r.push(6);
    r.extend(be32(pkts));
    r.extend(be32(bytes));
    r.extend(be32(95_000));
    r.extend(be32(99_000));
    r.push(0x02);
    r
}

fn decode(d: &mut NetflowDecoder, p: &[u8], now: i64) -> (Vec<Flow>, super::PacketOutcome) {
    let mut out = Vec::new();
    let o = d.packet(exporter(), p, now, &mut out);
    (out, o)
}

#[test]
fn v5_records_with_sampling() {
    let p = v5(
        &[
            ([10, 0, 0, 1], [10, 0, 2, 10], 40000, 5432, 6, 10, 1500),
            ([10, 0, 0, 2], [8, 8, 8, 8], 5353, 53, 17, 1, 80),
        ],
        0x4000 | 10,
    );
    let mut d = NetflowDecoder::default();
    let (flows, o) = decode(&mut d, &p, 0);
    assert!(o.skipped.is_empty(), "{o:?}");
    assert_eq!(flows.len(), 2);
    let f = &flows[0];
    assert_eq!(
        (f.source, f.dst_port, f.protocol),
        (FlowSource::Netflow, 5432, 6)
    );
    assert_eq!(
        (f.packets_out, f.bytes_out),
        (100, 15_000),
        "sampling 1 in 10"
    );
    assert_eq!(f.start_ms, 1_700_000_000_000 - 10_000);
    assert_eq!(f.end_ms, 1_700_000_000_000 - 1_000);
}

#[test]
fn v5_with_a_lying_count_decodes_what_fits() {
    let mut p = v5(&[([10, 0, 0, 1], [10, 0, 2, 10], 1, 2, 6, 1, 1)], 0);
    p[2..4].copy_from_slice(&be16(30));
    let mut d = NetflowDecoder::default();
    let (flows, o) = decode(&mut d, &p, 0);
    assert_eq!(flows.len(), 1);
    assert_eq!(o.skipped[0].reason, SkipReason::Malformed);
    let (flows, o) = decode(&mut d, &p[..10], 0);
    assert!(flows.is_empty() && !o.skipped.is_empty());
}

#[test]
fn v9_template_then_data_with_uptime_times() {
    let mut d = NetflowDecoder::default();
    let mut data = v4_record([10, 0, 1, 10], [10, 0, 3, 10], 40001, 8080, 5, 700);
    data.extend(v4_record(
        [10, 0, 1, 11],
        [10, 0, 3, 11],
        40002,
        8080,
        6,
        800,
    ));
    let p = v9(1, &[set(0, &template(256, V4_FIELDS)), set(256, &data)]);
    let (flows, o) = decode(&mut d, &p, 0);
    assert!(o.skipped.is_empty(), "{o:?}");
    assert_eq!((o.templates, flows.len()), (1, 2));
    assert_eq!(flows[1].bytes_out, 800);
    assert_eq!(flows[0].start_ms, 1_700_000_000_000 - 5_000);
    assert_eq!(flows[0].get_attr("tcp_flags"), Some("2"));
}

#[test]
fn v9_options_sampling_multiplies_counts() {
    let mut d = NetflowDecoder::default();
    // Options template 257: scope (system, 4 bytes), option SAMPLING_INTERVAL (4 bytes).
    let mut ot = Vec::new();
    ot.extend(be16(257));
    ot.extend(be16(4));
    ot.extend(be16(4));
    ot.extend(be16(1));
    ot.extend(be16(4));
    ot.extend(be16(34));
    ot.extend(be16(4));
    let mut od = Vec::new();
    od.extend(be32(0));
    od.extend(be32(100));
    let p = v9(
        1,
        &[
            set(0, &template(256, V4_FIELDS)),
            set(1, &ot),
            set(257, &od),
            set(256, &v4_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 80, 2, 100)),
        ],
    );
    let (flows, _) = decode(&mut d, &p, 0);
    assert_eq!((flows[0].packets_out, flows[0].bytes_out), (200, 10_000));
    assert_eq!(flows[0].get_attr("sampling"), Some("100"));
}

#[test]
fn templates_are_per_exporter_and_domain() {
    let mut d = NetflowDecoder::default();
    decode(&mut d, &v9(1, &[set(0, &template(256, V4_FIELDS))]), 0);
    let (flows, _) = decode(
        &mut d,
        &v9(
            2,
            &[set(
                256,
                &v4_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 80, 1, 1),
            )],
        ),
        0,
    );
    assert!(flows.is_empty(), "domain 2 has no template 256");
    let mut out = Vec::new();
    d.packet(
        "192.0.2.2:9995".parse().unwrap(),
        &v9(
            1,
            &[set(
                256,
                &v4_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 80, 1, 1),
            )],
        ),
        0,
        &mut out,
    );
    assert!(out.is_empty(), "another exporter has no template 256");
}

#[test]
fn data_before_its_template_is_held_then_replayed_or_expired() {
    let mut d = NetflowDecoder::default();
    let data = set(300, &v4_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 443, 1, 60));
    let (flows, o) = decode(&mut d, &ipfix(5, std::slice::from_ref(&data)), 1_000);
    assert!(flows.is_empty() && o.skipped.is_empty());
    let mut tpl = Vec::new();
    tpl.extend(be16(2));
    let t = template(300, V4_FIELDS);
    let (flows, o) = decode(&mut d, &ipfix(5, &[set(2, &t)]), 2_000);
    assert_eq!(flows.len(), 1, "replayed when the template came: {o:?}");
    assert_eq!(flows[0].source, FlowSource::Ipfix);

    decode(&mut d, &ipfix(5, &[set(301, &[0u8; 24])]), 3_000);
    let (_, o) = decode(&mut d, &ipfix(5, &[]), 60_000);
    assert_eq!(
        o.expired, 1,
        "held data whose template never came is dropped"
    );
}

#[test]
fn ipfix_withdrawal_variable_length_and_enterprise_fields() {
    let mut d = NetflowDecoder::default();
    // Template 400: src, dst (v6), a variable-length field, an enterprise
    // reverse octet count (PEN 29305), and octetDeltaCount.
    let mut t = Vec::new();
    t.extend(be16(400));
    t.extend(be16(5));
    for (f, l) in [(27u16, 16u16), (28, 16), (96, 65535)] {
        t.extend(be16(f));
        t.extend(be16(l));
    }
    t.extend(be16(0x8000 | 1));
    t.extend(be16(8));
    t.extend(be32(29305));
    t.extend(be16(1));
    t.extend(be16(8));
    let mut r = Vec::new();
    r.extend("fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    r.extend("2600::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
    r.push(5);
    r.extend(b"hello");
    r.extend(700u64.to_be_bytes());
    r.extend(9000u64.to_be_bytes());
    let (flows, o) = decode(&mut d, &ipfix(1, &[set(2, &t), set(400, &r)]), 0);
    assert!(o.skipped.is_empty(), "{o:?}");
    assert_eq!((flows[0].bytes_out, flows[0].bytes_in), (9000, 700));
    assert_eq!(flows[0].src_ip.to_string(), "fd00::1");
    assert_eq!(d.template_count(), 1);
    // Withdraw template 400 (field count 0).
    let mut w = Vec::new();
    w.extend(be16(400));
    w.extend(be16(0));
    decode(&mut d, &ipfix(1, &[set(2, &w)]), 0);
    assert_eq!(d.template_count(), 0);
}

#[test]
fn lying_lengths_and_zero_length_fields_never_panic() {
    let mut d = NetflowDecoder::default();
    let good = ipfix(
        1,
        &[
            set(2, &template(256, V4_FIELDS)),
            set(256, &v4_record([10, 0, 0, 1], [10, 0, 0, 2], 1, 80, 1, 1)),
        ],
    );
    // IPFIX message length larger than the packet.
    let mut p = good.clone();
    p[2..4].copy_from_slice(&be16(9000));
    let (_, o) = decode(&mut d, &p, 0);
    assert_eq!(o.skipped[0].reason, SkipReason::Malformed);
    // A set length larger than what remains.
    let mut p = good.clone();
    p[18..20].copy_from_slice(&be16(4000));
    let (_, o) = decode(&mut d, &p, 0);
    assert!(!o.skipped.is_empty());
    // A set length smaller than its header.
    let mut p = good.clone();
    p[18..20].copy_from_slice(&be16(2));
    let (_, o) = decode(&mut d, &p, 0);
    assert!(!o.skipped.is_empty());
    // A template of zero-length fields.
    let (_, o) = decode(
        &mut d,
        &ipfix(1, &[set(2, &template(257, &[(8, 0), (12, 0)]))]),
        0,
    );
    assert!(!o.skipped.is_empty());
    // Every truncation of a good packet, and random bytes.
    for cut in 0..good.len() {
        let _ = decode(&mut d, &good[..cut], 0);
        let _ = decode(&mut d, &v9(1, &[good[..cut].to_vec()]), 0);
    }
    let mut x: u64 = 0x1234_5678;
    for _ in 0..2_000 {
        let mut p = vec![0u8; (x % 300) as usize];
        for b in p.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if p.len() >= 2 {
            p[0] = 0;
            p[1] = [5u8, 9, 10][(x % 3) as usize];
        }
        let _ = decode(&mut d, &p, 0);
    }
}

#[test]
fn the_number_of_exporters_is_bounded() {
    let mut d = NetflowDecoder::with_limits(super::Limits {
        max_domains: 3,
        ..super::Limits::default()
    });
    for domain in 0..10 {
        decode(&mut d, &v9(domain, &[set(0, &template(256, V4_FIELDS))]), 0);
    }
    assert_eq!(d.template_count(), 3);
}

#[test]
fn a_file_of_ipfix_messages_reads_through_the_input_driver() {
    use crate::input::{ReadOptions, read_flows};
    let template = ipfix(1, &[set(2, &template(256, V4_FIELDS))]);
    let data = ipfix(
        1,
        &[set(
            256,
            &[
                v4_record([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 3, 300),
                v4_record([10, 0, 0, 3], [10, 0, 0, 2], 40001, 443, 4, 400),
            ]
            .concat(),
        )],
    );
    let file = [template.clone(), data.clone(), data.clone()].concat();
    assert_eq!(crate::Format::detect(&file), Some(crate::Format::IpfixFile));
    let mut flows = Vec::new();
    let report = read_flows(
        "x.ipfix",
        Box::new(std::io::Cursor::new(file.clone())),
        &ReadOptions::default(),
        &mut |_, f| {
            flows.append(f);
            Ok::<_, std::convert::Infallible>(())
        },
    )
    .unwrap();
    assert_eq!((report.flows, flows.len()), (4, 4));
    assert_eq!(flows[1].bytes_out, 400);
    // Resuming after the first data message skips its flows.
    let resume = ReadOptions {
        resume_from: (template.len() + data.len()) as u64,
        ..ReadOptions::default()
    };
    let mut n = 0;
    read_flows(
        "x.ipfix",
        Box::new(std::io::Cursor::new(file.clone())),
        &resume,
        &mut |_, f| {
            n += f.len();
            f.clear();
            Ok::<_, std::convert::Infallible>(())
        },
    )
    .unwrap();
    assert_eq!(n, 2);
    // A file cut inside a message: what came before is kept, the cut reported.
    let cut = &file[..file.len() - 7];
    let mut n = 0;
    let report = read_flows(
        "cut.ipfix",
        Box::new(std::io::Cursor::new(cut.to_vec())),
        &ReadOptions::default(),
        &mut |_, f| {
            n += f.len();
            f.clear();
            Ok::<_, std::convert::Infallible>(())
        },
    )
    .unwrap();
    assert_eq!(n, 2);
    let bad = &report.skipped[&SkipReason::Malformed];
    assert!(bad.examples[0].contains("cut.ipfix@"), "{:?}", bad.examples);
}
