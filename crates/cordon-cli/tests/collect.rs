//! `cordon collect` against a real exporter: pmacct's `pmacctd` with its
//! nfprobe plugin (from Debian's packages) reads a capture this test writes
//! and exports NetFlow v5, v9 and IPFIX to the collector over loopback UDP.
//! (softflowd was tried first; reading a capture file it often never
//! reaches the end of it here, so it is not used.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::temp_dir;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4 frame with a TCP or UDP header and `payload`.
fn frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    tcp_flags: Option<u8>,
    payload: usize,
) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend(sport.to_be_bytes());
    l4.extend(dport.to_be_bytes());
    let proto = match tcp_flags {
        Some(flags) => {
            l4.extend(1u32.to_be_bytes());
            l4.extend(0u32.to_be_bytes());
            l4.extend([5 << 4, flags]);
            l4.extend(65535u16.to_be_bytes());
            l4.extend([0, 0, 0, 0]);
            6
        }
        None => {
            l4.extend((8 + payload as u16).to_be_bytes());
            l4.extend([0, 0]);
            17
        }
    };
    l4.extend(vec![b'x'; payload]);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 1, 0, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 8, 0];
    f.extend(ip);
    f.extend(l4);
    f
}

/// A pcap file: one TCP connection (220 bytes out, 380 back) and one UDP query.
fn write_pcap(path: &Path) {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let (c, s) = ([10, 0, 1, 10], [10, 0, 3, 10]);
    let frames = [
        frame(c, s, 40000, 8080, Some(0x02), 0),
        frame(s, c, 8080, 40000, Some(0x12), 0),
        frame(c, s, 40000, 8080, Some(0x18), 100),
        frame(s, c, 8080, 40000, Some(0x18), 300),
        frame(c, s, 40000, 8080, Some(0x11), 0),
        frame([10, 0, 4, 10], [10, 0, 0, 2], 5353, 53, None, 30),
    ];
    for (i, f) in frames.iter().enumerate() {
        out.extend((1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    std::fs::write(path, out).unwrap();
}

/// A running collector on a port the system chose, once it listens.
struct Collector {
    child: Child,
    port: u16,
    errors: mpsc::Receiver<String>,
}

fn start_collector(store: &Path) -> Collector {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "collect",
            "--listen",
            "127.0.0.1:0",
            "--store",
            store.to_str().unwrap(),
            "--json",
            "--flush-ms",
            "100",
        ])
        .args([
            "--policy",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/acme-prod.yaml"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, errors) = common::collector_address(&mut child);
    Collector {
        child,
        port: addr.port(),
        errors,
    }
}

fn stop_collector(collector: Collector) -> serde_json::Value {
    Command::new("kill")
        .args(["-TERM", &collector.child.id().to_string()])
        .status()
        .unwrap();
    let out = collector.child.wait_with_output().unwrap();
    let said: Vec<String> = collector.errors.try_iter().collect();
    assert!(out.status.success(), "{}", said.join("\n"));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn query(store: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "flows",
            "query",
            "--store",
            store.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
#[ignore = "needs pmacct (apt-get install pmacct); CI runs it"]
fn pmacct_exports_in_every_version_and_the_collector_stores_them() {
    assert!(
        Command::new("pmacctd").arg("-V").output().is_ok(),
        "pmacctd is not installed: apt-get install pmacct"
    );
    let dir = temp_dir("pmacct");
    let pcap = dir.join("capture.pcap");
    write_pcap(&pcap);
    for version in ["5", "9", "10"] {
        let store = dir.join(format!("store-v{version}"));
        let collector = start_collector(&store);
        let port = collector.port;
        let conf = dir.join(format!("pmacctd-v{version}.conf"));
        std::fs::write(
            &conf,
            format!(
                "daemonize: false\npcap_savefile: {}\nplugins: nfprobe\nnfprobe_receiver: 127.0.0.1:{port}\nnfprobe_version: {version}\nnfprobe_timeouts: general=1:maxlife=1:expint=1\n",
                pcap.display()
            ),
        )
        .unwrap();
        let mut exporter = Command::new("pmacctd")
            .args(["-f", conf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // pmacctd reads the capture, exports and exits (a few seconds).
        let started = Instant::now();
        while query(&store).len() < 3 && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = exporter.kill();
        let _ = exporter.wait();
        let stats = stop_collector(collector);
        let flows = query(&store);
        assert_eq!(flows.len(), 3, "v{version}: {stats}\n{flows:?}");
        assert!(stats["packets"].as_u64().unwrap() >= 1);
        let source = if version == "10" { "ipfix" } else { "netflow" };
        assert!(flows.iter().all(|f| f["source"] == source));
        // Both halves of the TCP connection are oriented client → server.
        let tcp: Vec<&serde_json::Value> = flows.iter().filter(|f| f["protocol"] == 6).collect();
        assert_eq!(tcp.len(), 2, "v{version}");
        assert!(
            tcp.iter()
                .all(|f| f["dst_port"] == 8080 && f["src_ip"] == "10.0.1.10"),
            "v{version}: {tcp:?}"
        );
        let out: u64 = tcp.iter().map(|f| f["bytes_out"].as_u64().unwrap()).sum();
        let back: u64 = tcp.iter().map(|f| f["bytes_in"].as_u64().unwrap()).sum();
        assert_eq!((out, back), (220, 380), "v{version}: IP bytes each way");
        // Enriched: web-1 → api-1 on 8080 is allowed by the example policy.
        assert!(
            tcp.iter().all(|f| f["enrichment"]["verdict"] == "allow"),
            "v{version}: {tcp:?}"
        );
        let dns = flows.iter().find(|f| f["protocol"] == 17).unwrap();
        assert_eq!(
            (dns["dst_port"].as_u64(), dns["bytes_out"].as_u64()),
            (Some(53), Some(58))
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_collector_counts_garbage_and_keeps_going() {
    let dir = temp_dir("garbage");
    let store = dir.join("store");
    let collector = start_collector(&store);
    let port = collector.port;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"not netflow at all", ("127.0.0.1", port))
        .unwrap();
    sender
        .send_to(&[0, 10, 255, 255, 0, 0], ("127.0.0.1", port))
        .unwrap();
    // A v5 packet with one record.
    sender
        .send_to(&common::netflow_v5(41_000), ("127.0.0.1", port))
        .unwrap();
    let started = Instant::now();
    while query(&store).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = stop_collector(collector);
    assert_eq!(stats["packets"], 3, "{stats}");
    assert_eq!(stats["stored"], 1, "{stats}");
    assert_eq!(stats["skipped"]["malformed"]["count"], 2, "{stats}");
    let flows = query(&store);
    assert_eq!(
        flows[0]["enrichment"]["verdict"], "deny",
        "web-1 → user-db is denied: {flows:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
