//! A `cordon gateway` child process: its addresses, its log as it comes,
//! its metrics, and CONNECT tunnels through it from a chosen address.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Killed;

/// A running gateway, stopped when dropped.
pub struct Gateway {
    _child: Killed,
    /// The explicit proxy listener.
    pub proxy: String,
    /// The admin listener (`/metrics`).
    pub admin: String,
    /// What it wrote to standard error so far.
    pub log: Arc<Mutex<String>>,
}

/// `cordon gateway ARGS --listen 127.0.0.1:0 --admin 127.0.0.1:0`, once it
/// listens.
pub fn spawn(args: &[&std::ffi::OsStr]) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("gateway")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let child = Killed(child);
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let listening = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("the gateway did not start: {line}"))
        .trim()
        .to_string();
    let addrs: Vec<String> = listening.split(", ").map(str::to_string).collect();
    let log = Arc::new(Mutex::new(String::new()));
    let l = log.clone();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let mut l = l.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    Gateway {
        _child: child,
        proxy: addrs[0].clone(),
        admin: addrs[1].clone(),
        log,
    }
}

/// A metric's value on `admin` (0 when absent).
pub fn metric(admin: &str, name: &str) -> u64 {
    super::serve::http(admin, "GET", "/metrics", &[], b"")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A CONNECT to `target` through `proxy` from the address `from`: the
/// status line, and the stream when it was let through.
pub fn tunnel(proxy: &str, from: &str, target: &str) -> (String, Option<std::net::TcpStream>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket
            .connect(proxy.parse().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let ok = status.contains(" 200");
    (status, ok.then_some(s))
}
