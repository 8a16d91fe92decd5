use super::ConnTable;
use super::capture::{CaptureReader, is_capture};
use super::packet::{Datagram, NotDatagram, parse};
use crate::flow::{Flow, Observed};

const A: [u8; 4] = [10, 0, 1, 10];
const B: [u8; 4] = [93, 184, 216, 34];

/// An Ethernet frame with an IPv4 header (total length counting `payload`)
/// and `transport` (a TCP or UDP header) and `payload`.
fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    transport: &[u8],
    payload: usize,
    vlan: bool,
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    if vlan {
        f.extend([0x81, 0x00, 0x00, 0x64]);
    }
    f.extend([0x08, 0x00]);
    let total = (20 + transport.len() + payload) as u16;
    f.extend([
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        protocol,
        0,
        0,
    ]);
    f.extend(src);
    f.extend(dst);
    f.extend(transport);
    f.extend(std::iter::repeat_n(0u8, payload));
    f
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend([0u8; 8]);
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend([0, 8, 0, 0]);
    u
}

/// A classic little-endian microsecond pcap of Ethernet `frames` at `(t_us, frame)`.
fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (t, frame) in frames {
        out.extend(((t / 1_000_000) as u32).to_le_bytes());
        out.extend(((t % 1_000_000) as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    }
    out
}

/// The same frames as pcapng with nanosecond timestamps (if_tsresol 9).
fn pcapng(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let block = |kind: u32, body: &[u8]| {
        let total = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut b = Vec::new();
        b.extend(kind.to_le_bytes());
        b.extend(total.to_le_bytes());
        b.extend(body);
        b.extend(std::iter::repeat_n(
            0u8,
            body.len().div_ceil(4) * 4 - body.len(),
        ));
        b.extend(total.to_le_bytes());
        b
    };
    let mut out = block(
        0x0a0d0d0a,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    // Interface: Ethernet, snap length, option if_tsresol = 9, end.
    out.extend(block(
        1,
        &[1, 0, 0, 0, 0, 0, 4, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
    ));
    for (t, frame) in frames {
        let ns = (*t as u64) * 1000;
        let mut body = Vec::new();
        body.extend(0u32.to_le_bytes());
        body.extend(((ns >> 32) as u32).to_le_bytes());
        body.extend((ns as u32).to_le_bytes());
        body.extend((frame.len() as u32).to_le_bytes());
        body.extend((frame.len() as u32).to_le_bytes());
        body.extend(frame);
        out.extend(block(6, &body));
    }
    out
}

fn connections(capture: &[u8]) -> Vec<Flow> {
    let mut reader = CaptureReader::new(capture).unwrap();
    let mut table = ConnTable::default();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        if let Ok(d) = parse(p.linktype, &p.data) {
            table.packet(p.time_us, &d, &mut out);
        }
    }
    table.finish(&mut out);
    out
}

const T: i64 = 1_700_000_000_000_000;

/// A whole TCP conversation: handshake, data both ways, FIN both ways.
fn conversation(t: i64, sport: u16) -> Vec<(i64, Vec<u8>)> {
    vec![
        (t, ipv4(A, B, 6, &tcp(sport, 443, 0x02), 0, false)),
        (t + 10_000, ipv4(B, A, 6, &tcp(443, sport, 0x12), 0, false)),
        (t + 20_000, ipv4(A, B, 6, &tcp(sport, 443, 0x10), 0, false)),
        (
            t + 30_000,
            ipv4(A, B, 6, &tcp(sport, 443, 0x18), 500, false),
        ),
        (
            t + 40_000,
            ipv4(B, A, 6, &tcp(443, sport, 0x18), 1500, true),
        ),
        (t + 50_000, ipv4(A, B, 6, &tcp(sport, 443, 0x11), 0, false)),
        (t + 60_000, ipv4(B, A, 6, &tcp(443, sport, 0x11), 0, false)),
        (t + 70_000, ipv4(A, B, 6, &tcp(sport, 443, 0x10), 0, false)),
    ]
}

#[test]
fn a_tcp_conversation_is_one_connection_like_zeeks() {
    for capture in [
        pcap(&conversation(T, 40001)),
        pcapng(&conversation(T, 40001)),
    ] {
        assert!(is_capture(&capture));
        let flows = connections(&capture);
        assert_eq!(flows.len(), 1, "{flows:#?}");
        let f = &flows[0];
        assert_eq!(
            (f.src_ip.to_string().as_str(), f.src_port),
            ("10.0.1.10", 40001)
        );
        assert_eq!(
            (f.dst_ip.to_string().as_str(), f.dst_port),
            ("93.184.216.34", 443)
        );
        assert_eq!((f.packets_out, f.packets_in), (5, 3));
        assert_eq!((f.bytes_out, f.bytes_in), (5 * 40 + 500, 3 * 40 + 1500));
        assert_eq!((f.start_ms, f.end_ms), (T / 1000, T / 1000 + 70));
        assert_eq!(f.get_attr("conn_state"), Some("SF"));
        assert_eq!(f.observed, Some(Observed::Accepted));
    }
}

#[test]
fn refused_unanswered_aborted_and_midstream_connections_get_their_states() {
    let frames = vec![
        // Refused: SYN, RST-ACK.
        (T, ipv4(A, B, 6, &tcp(40010, 8443, 0x02), 0, false)),
        (T + 1_000, ipv4(B, A, 6, &tcp(8443, 40010, 0x14), 0, false)),
        // Unanswered: two SYNs.
        (T + 2_000, ipv4(A, B, 6, &tcp(40011, 8443, 0x02), 0, false)),
        (
            T + 1_002_000,
            ipv4(A, B, 6, &tcp(40011, 8443, 0x02), 0, false),
        ),
        // Aborted by the originator after the handshake.
        (T + 3_000, ipv4(A, B, 6, &tcp(40012, 443, 0x02), 0, false)),
        (T + 4_000, ipv4(B, A, 6, &tcp(443, 40012, 0x12), 0, false)),
        (T + 5_000, ipv4(A, B, 6, &tcp(40012, 443, 0x04), 0, false)),
        // Seen from the middle: no SYN.
        (T + 6_000, ipv4(A, B, 6, &tcp(40013, 443, 0x18), 100, false)),
        // The capture starts with the answer to a SYN: the opener is A.
        (T + 7_000, ipv4(B, A, 6, &tcp(443, 40014, 0x12), 0, false)),
        (T + 8_000, ipv4(A, B, 6, &tcp(40014, 443, 0x10), 0, false)),
    ];
    let flows = connections(&pcap(&frames));
    let state = |port: u16| {
        flows
            .iter()
            .find(|f| f.src_port == port)
            .and_then(|f| f.get_attr("conn_state"))
    };
    assert_eq!(state(40010), Some("REJ"));
    assert_eq!(state(40011), Some("S0"));
    assert_eq!(state(40012), Some("RSTO"));
    assert_eq!(state(40013), Some("OTH"));
    assert_eq!(state(40014), Some("OTH"));
    let rejected = flows.iter().find(|f| f.src_port == 40010).unwrap();
    assert_eq!(rejected.observed, Some(Observed::Rejected));
    assert_eq!(
        flows
            .iter()
            .find(|f| f.src_port == 40011)
            .unwrap()
            .packets_out,
        2
    );
}

#[test]
fn udp_exchanges_are_not_joined_across_gaps() {
    // NTP every 64 s from port 123 to port 123: each exchange is its own.
    let mut frames = Vec::new();
    for i in 0..5 {
        let t = T + i * 64_000_000;
        frames.push((t, ipv4(A, B, 17, &udp(123, 123), 48, false)));
        frames.push((t + 20_000, ipv4(B, A, 17, &udp(123, 123), 48, false)));
    }
    let flows = connections(&pcap(&frames));
    assert_eq!(flows.len(), 5, "{flows:#?}");
    assert!(flows.iter().all(|f| f.end_ms - f.start_ms == 20));
    assert!(flows.iter().all(|f| f.get_attr("conn_state") == Some("SF")));
}

#[test]
fn the_table_is_bounded() {
    let mut table = ConnTable::with_capacity(100);
    let mut out = Vec::new();
    for port in 0..1000u16 {
        let d = Datagram {
            src: A.into(),
            dst: B.into(),
            protocol: 17,
            src_port: 10_000 + port,
            dst_port: 53,
            tcp_flags: 0,
            ip_bytes: 60,
            payload: 32,
        };
        table.packet(T + i64::from(port), &d, &mut out);
        assert!(table.len() <= 100);
    }
    table.finish(&mut out);
    assert_eq!(out.len(), 1000, "every connection is reported once");
}

#[test]
fn frames_that_make_no_connection_say_why() {
    let mut arp = vec![0u8; 12];
    arp.extend([0x08, 0x06]);
    arp.extend([0u8; 28]);
    assert!(matches!(parse(1, &arp), Err(NotDatagram::NotIp(_))));
    let mut fragment = ipv4(A, B, 17, &udp(5, 5), 100, false);
    fragment[14 + 6] = 0x00;
    fragment[14 + 7] = 0x10;
    assert_eq!(parse(1, &fragment), Err(NotDatagram::LaterFragment));
    let whole = ipv4(A, B, 6, &tcp(1, 2, 0x02), 0, false);
    for cut in 0..whole.len() - 6 {
        assert!(parse(1, &whole[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        parse(9999, &whole),
        Err(NotDatagram::LinkType(9999))
    ));
    // IPv6 with a hop-by-hop header before UDP, on a raw-IP link.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
    v6.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend([17, 0, 0, 0, 0, 0, 0, 0]);
    v6.extend(udp(5353, 53));
    let d = parse(101, &v6).unwrap();
    assert_eq!(
        (d.protocol, d.src_port, d.dst_port, d.ip_bytes),
        (17, 5353, 53, 56)
    );
}

#[test]
fn damaged_captures_are_errors_with_their_place_and_keep_what_came_before() {
    let good = pcap(&conversation(T, 40001));
    // Cut inside the last packet: the packets before it are read.
    let cut = &good[..good.len() - 10];
    let mut reader = CaptureReader::new(cut).unwrap();
    let mut n = 0;
    let err = loop {
        match reader.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("the cut was not noticed"),
            Err(e) => break e,
        }
    };
    assert_eq!(n, 7);
    let text = err.to_string();
    assert!(
        text.contains("packet 8") && text.contains("ends inside"),
        "{text}"
    );
    // A record claiming a huge packet is refused before any allocation.
    let mut huge = good.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut reader = CaptureReader::new(&huge[..]).unwrap();
    assert!(
        reader
            .next_packet()
            .unwrap_err()
            .to_string()
            .contains("captured bytes")
    );
    assert!(CaptureReader::new(&b"hello world"[..]).is_err());
    // Big-endian and nanosecond classic captures read the same.
    let mut be = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4];
    be.extend([0u8; 8]);
    be.extend(65535u32.to_be_bytes());
    be.extend(1u32.to_be_bytes());
    let frame = ipv4(A, B, 17, &udp(1, 2), 0, false);
    be.extend(1_700_000_000u32.to_be_bytes());
    be.extend(500_000_000u32.to_be_bytes());
    be.extend((frame.len() as u32).to_be_bytes());
    be.extend((frame.len() as u32).to_be_bytes());
    be.extend(&frame);
    let p = CaptureReader::new(&be[..])
        .unwrap()
        .next_packet()
        .unwrap()
        .unwrap();
    assert_eq!(p.time_us, 1_700_000_000_500_000);
}

#[test]
fn check_ins_inside_one_session_are_beats_and_keepalives_are_not() {
    // One UDP session held open for three minutes: a burst of a few
    // packets (request, answer, follow-up) every 15 s.
    let mut frames = Vec::new();
    frames.push((T, ipv4(A, B, 17, &udp(53241, 443), 1200, false)));
    frames.push((T + 90_000, ipv4(B, A, 17, &udp(443, 53241), 1200, false)));
    for i in 1..=12i64 {
        let t = T + i * 15_000_000 + (i % 3) * 40_000;
        frames.push((t, ipv4(A, B, 17, &udp(53241, 443), 25, false)));
        frames.push((t + 100_000, ipv4(B, A, 17, &udp(443, 53241), 30, false)));
        frames.push((t + 300_000, ipv4(A, B, 17, &udp(53241, 443), 400, false)));
    }
    // A TCP session whose only later traffic is keepalive probes (no
    // payload, or one byte) every 15 s.
    frames.extend(conversation(T, 40001).into_iter().take(4));
    for i in 1..=12i64 {
        let t = T + i * 15_000_000;
        frames.push((
            t,
            ipv4(A, B, 6, &tcp(40001, 443, 0x10), (i % 2) as usize, false),
        ));
        frames.push((t + 1_000, ipv4(B, A, 6, &tcp(443, 40001, 0x10), 0, false)));
    }
    frames.sort_by_key(|(t, _)| *t);
    let flows = connections(&pcap(&frames));
    let session = flows.iter().find(|f| f.protocol == 17).unwrap();
    let beats: Vec<i64> = session
        .get_attr("beats")
        .expect("beats reported")
        .split(',')
        .map(|b| b.parse().unwrap())
        .collect();
    assert_eq!(beats.len(), 12, "{beats:?}");
    assert_eq!(beats[0], 15_040);
    assert!(
        beats
            .windows(2)
            .all(|w| (14_900..=15_100).contains(&(w[1] - w[0])))
    );
    let kept = flows.iter().find(|f| f.protocol == 6).unwrap();
    assert_eq!(kept.get_attr("beats"), None, "{kept:?}");
    // Payload is what follows the transport header.
    let d = parse(1, &ipv4(A, B, 6, &tcp(1, 2, 0x18), 500, false)).unwrap();
    assert_eq!((d.ip_bytes, d.payload), (540, 500));
    let d = parse(1, &ipv4(A, B, 17, &udp(1, 2), 48, false)).unwrap();
    assert_eq!((d.ip_bytes, d.payload), (76, 48));
}
