//! Helpers shared by the `cordon` binary's end-to-end tests: running the
//! binary, fresh folders, reading a child's output as it comes, and waiting.

#![allow(dead_code, reason = "each test file uses a part")]

pub mod gateway;
pub mod serve;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run `cordon` with `args` from the crate folder.
pub fn cordon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lines `child` prints on its (piped) standard output, as they come.
/// The pipe is read to its end even when nobody listens any more, so the
/// child never writes into a closed pipe (and ends, as `cordon` does when
/// its reader goes away).
pub fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    read_lines(child.stdout.take().unwrap())
}

/// Lines `child` prints on its (piped) standard error, as they come.
pub fn error_lines(child: &mut Child) -> mpsc::Receiver<String> {
    read_lines(child.stderr.take().unwrap())
}

/// The UDP address a `cordon collect` child listens on, once it does: it
/// says so on standard error after binding, so a test can give it port 0
/// and wait for no guess (a test that probes the port by binding it can
/// take it from the collector). The rest of its standard error follows.
pub fn collector_address(child: &mut Child) -> (std::net::SocketAddr, mpsc::Receiver<String>) {
    let errors = error_lines(child);
    let line = wait_for(&errors, "collecting NetFlow/IPFIX on udp ");
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "udp")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"));
    (addr, errors)
}

fn read_lines(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The first line from `rx` containing `what`, within a minute; panics
/// with everything said before otherwise.
pub fn wait_for(rx: &mpsc::Receiver<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains(what) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no `{what}` from the child; it said:\n{}", seen.join("\n"));
}

/// Whether `child` exited successfully within `within`; `None` (and the
/// child killed) when it had not exited by then.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<bool> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.success());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    None
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the OCSF validator on `file` for `class`; panics with its report.
pub fn ocsf_valid(file: &Path, class: u32) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop");
    let mut schema = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(data.join("ocsf-1.3.0.compiled.json.gz")).unwrap(),
    )
    .read_to_string(&mut schema)
    .unwrap();
    let schema_file = file.with_extension("schema.json");
    std::fs::write(&schema_file, schema).unwrap();
    let out = Command::new("python3")
        .arg(data.join("ocsf_validate.py"))
        .args(["--schema", schema_file.to_str().unwrap()])
        .args(["--class-uid", &class.to_string()])
        .arg(file)
        .output()
        .expect("python3 runs");
    let report = stdout(&out);
    assert!(
        out.status.success(),
        "OCSF {class}:\n{report}{}",
        stderr(&out)
    );
    assert!(report.contains(" 0 violations"), "{report}");
}

/// `moto_server` (moto's S3) on a free loopback port, killed when dropped.
pub fn moto_server() -> (Killed, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Killed(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (child, port)
}

/// A NetFlow v5 packet with one TCP record, 10.0.1.10:`src_port` to
/// 10.0.2.10:5432 (3 packets, 180 bytes).
pub fn netflow_v5(src_port: u16) -> Vec<u8> {
    let mut p = vec![0, 5, 0, 1];
    p.extend(100_000u32.to_be_bytes());
    p.extend(1_700_000_000u32.to_be_bytes());
    p.extend([0u8; 12]);
    p.extend([10, 0, 1, 10, 10, 0, 2, 10, 0, 0, 0, 0, 0, 1, 0, 2]);
    p.extend(3u32.to_be_bytes());
    p.extend(180u32.to_be_bytes());
    p.extend(90_000u32.to_be_bytes());
    p.extend(99_000u32.to_be_bytes());
    p.extend(src_port.to_be_bytes());
    p.extend(5432u16.to_be_bytes());
    p.extend([0, 0x1b, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    p
}
