//! Packet captures end to end: `tcpdump` records real traffic between
//! sockets on loopback (a TCP exchange closed normally, a refused TCP
//! connection, and UDP exchanges a gap apart), and `cordon ingest` turns
//! the capture into the connections that traffic was.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cordon, stderr, temp_dir};

#[test]
#[ignore = "needs root and tcpdump (apt-get install tcpdump) to capture on loopback; CI runs it"]
fn real_loopback_traffic_captured_by_tcpdump_becomes_its_connections() {
    let dir = temp_dir("capture");
    let pcap = dir.join("lo.pcap");
    // Only this test's traffic: ports picked now, filtered in tcpdump.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = server.local_addr().unwrap().port();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = closed.local_addr().unwrap().port();
    drop(closed);
    let udp_server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp_server.local_addr().unwrap().port();
    let filter = format!("port {tcp_port} or port {refused_port} or port {udp_port}");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-w"])
        .arg(&pcap)
        .arg(&filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump runs (apt-get install tcpdump)");
    // Wait until tcpdump says it listens.
    let mut err = tcpdump.stderr.take().unwrap();
    let mut said = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&said).contains("listening on") && Instant::now() < deadline {
        if err.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        said.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&said).contains("listening"),
        "{}",
        String::from_utf8_lossy(&said)
    );

    // A TCP exchange: 3,000 bytes up, 50,000 down, closed by the client.
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = vec![0u8; 3000];
        s.read_exact(&mut got).unwrap();
        s.write_all(&vec![7u8; 50_000]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut client = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    client.write_all(&[1u8; 3000]).unwrap();
    let mut back = vec![0u8; 50_000];
    client.read_exact(&mut back).unwrap();
    drop(client);
    serve.join().unwrap();
    // A refused connection.
    assert!(TcpStream::connect(("127.0.0.1", refused_port)).is_err());
    // Two UDP exchanges from one socket, 1.5 s apart.
    let udp_client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..2 {
        udp_client
            .send_to(&[0u8; 48], ("127.0.0.1", udp_port))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = udp_server.recv_from(&mut buf).unwrap();
        udp_server.send_to(&buf[..n], from).unwrap();
        udp_client.recv_from(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &tcpdump.id().to_string()])
        .status()
        .unwrap();
    tcpdump.wait().unwrap();

    let store = dir.join("store");
    let out = cordon(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--json",
        pcap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"][0]["format"], "pcap", "{summary}");
    let out = cordon(&[
        "flows",
        "query",
        "--store",
        store.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let flows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let state = |f: &serde_json::Value| {
        f["attrs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv[0] == "conn_state")
            .map(|kv| kv[1].as_str().unwrap().to_string())
            .unwrap()
    };
    let tcp: Vec<&serde_json::Value> = flows.iter().filter(|f| f["dst_port"] == tcp_port).collect();
    assert_eq!(tcp.len(), 1, "{flows:#?}");
    let t = tcp[0];
    assert_eq!(state(t), "SF");
    assert_eq!(t["source"], "pcap");
    // IP-level bytes: the payload plus 40+ bytes of headers per packet.
    let (out_b, in_b) = (
        t["bytes_out"].as_u64().unwrap(),
        t["bytes_in"].as_u64().unwrap(),
    );
    assert!((3000..3000 + 40 * 40).contains(&out_b), "{t}");
    assert!((50_000..50_000 + 40 * 80).contains(&in_b), "{t}");
    let refused: Vec<&serde_json::Value> = flows
        .iter()
        .filter(|f| f["dst_port"] == refused_port)
        .collect();
    assert_eq!(refused.len(), 1, "{flows:#?}");
    assert_eq!(state(refused[0]), "REJ");
    assert_eq!(refused[0]["observed"], "rejected");
    let udp: Vec<&serde_json::Value> = flows.iter().filter(|f| f["dst_port"] == udp_port).collect();
    assert_eq!(
        udp.len(),
        1,
        "1.5 s is within UDP's inactivity timeout: {flows:#?}"
    );
    assert_eq!(
        (
            udp[0]["packets_out"].as_u64(),
            udp[0]["packets_in"].as_u64()
        ),
        (Some(2), Some(2))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
