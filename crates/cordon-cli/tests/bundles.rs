//! Signed policy bundles end to end: `cordon policy keygen` and `bundle`,
//! `cordon serve --bundle` publishing, and a gateway and an agent pulling
//! it. A corpus of bad bundles (a changed byte, a swapped file, a forged
//! manifest, a wrong key, an older version, a cut archive, an unsigned
//! one) is served in turn: each is refused with its reason and the last
//! good policy stays enforced; a good new version is applied within one
//! poll interval. The agent half needs root and nftables (CI runs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::metric;
use common::{cordon, stderr, stdout, temp_dir};

/// The policy of version `v`: the notifier may reach the mail vendor on
/// `port` only.
fn policy(port: u16) -> String {
    format!(
        r#"apiVersion: cordon/v1
kind: Policy
metadata: {{name: bundled}}
spec:
  default: deny
  inventory_files: [inventory.yaml]
  groups:
    notifier: {{labels: {{app: notifier}}}}
    email-vendor:
      external: true
      fqdns: ["*.mailer.test"]
      cidrs: [127.0.0.2/32]
      vendor: {{name: MailCo, data: [email]}}
  rules:
    - {{name: notifier-to-mailer, from: [notifier], to: [email-vendor], ports: [tcp/{port}], action: allow}}
"#
    )
}

const INVENTORY: &str = "apiVersion: cordon/v1\nkind: Inventory\nworkloads:\n  - {name: notifier-1, ips: [127.0.0.10], labels: {app: notifier}}\n";

fn run_ok(args: &[&str]) -> String {
    let out = cordon(args);
    assert!(out.status.success(), "cordon {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Sign the policy allowing `port` as `version` with `key` into `out`.
fn sign(dir: &Path, key: &Path, version: u64, port: u16, out: &Path) {
    let src = dir.join(format!("src-{version}-{port}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("policy.yaml"), policy(port)).unwrap();
    std::fs::write(src.join("inventory.yaml"), INVENTORY).unwrap();
    run_ok(&[
        "policy",
        "bundle",
        "--key",
        key.to_str().unwrap(),
        "--version",
        &version.to_string(),
        src.join("policy.yaml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
}

/// Unpack `bundle` into a folder, let `change` alter it, pack it again
/// with the system's tar.
fn altered(dir: &Path, bundle: &Path, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let work = dir.join(format!("unpacked-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(bundle)
        .arg("-C")
        .arg(&work)
        .status()
        .unwrap();
    assert!(st.success());
    change(&work);
    let out = dir.join(format!("{name}.bundle"));
    let st = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(&work)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

/// The corpus: every bundle here carries a policy that would allow port
/// 2525, and must be refused by a receiver holding version 2 (port 25).
fn bad_bundles(dir: &Path, key: &Path, v2: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let other = dir.join("other.key");
    run_ok(&["policy", "keygen", "--out", other.to_str().unwrap()]);
    let good_v5 = dir.join("v5.bundle");
    sign(dir, key, 5, 2525, &good_v5);
    let old = dir.join("v1.bundle");
    sign(dir, key, 1, 2525, &old);
    let wrong_key = dir.join("wrong-key.bundle");
    sign(dir, &other, 6, 2525, &wrong_key);
    let changed_byte = altered(dir, v2, "changed-byte", |w| {
        let f = w.join("files/policy.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("tcp/25]"));
        std::fs::write(&f, text.replace("tcp/25]", "tcp/2525]")).unwrap();
    });
    let swapped = altered(dir, v2, "swapped", |w| {
        // The policy and the inventory trade places under the same names.
        let (p, i) = (w.join("files/policy.yaml"), w.join("files/inventory.yaml"));
        let (pt, it) = (std::fs::read(&p).unwrap(), std::fs::read(&i).unwrap());
        std::fs::write(&p, it).unwrap();
        std::fs::write(&i, pt).unwrap();
    });
    let forged = altered(dir, v2, "forged-manifest", |w| {
        let f = w.join("manifest.json");
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, text.replace("\"version\": 2,", "\"version\": 9,")).unwrap();
    });
    let unsigned = altered(dir, &good_v5, "unsigned", |w| {
        std::fs::remove_file(w.join("manifest.sig")).unwrap();
    });
    let truncated = dir.join("truncated.bundle");
    let bytes = std::fs::read(&good_v5).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    vec![
        ("changed byte", changed_byte, "was changed after signing"),
        ("swapped file", swapped, "was changed after signing"),
        ("forged manifest", forged, "does not verify"),
        ("wrong key", wrong_key, "does not verify"),
        ("older version", old, "older than version 2"),
        ("truncated", truncated, "not a policy bundle"),
        ("unsigned", unsigned, "unsigned"),
    ]
}

/// A signing key, version 2 signed and served, and the server's and the
/// receivers' token files.
struct Publisher {
    key: PathBuf,
    trust: PathBuf,
    v2: PathBuf,
    served: PathBuf,
}

fn publisher(dir: &Path) -> Publisher {
    let key = dir.join("signing.key");
    run_ok(&["policy", "keygen", "--out", key.to_str().unwrap()]);
    let v2 = dir.join("v2.bundle");
    sign(dir, &key, 2, 25, &v2);
    let served = dir.join("served.bundle");
    publish(&v2, &served);
    std::fs::write(
        dir.join("tokens"),
        "agent-token-0123456789abcdef viewer fleet\n",
    )
    .unwrap();
    std::fs::write(dir.join("agent.token"), "agent-token-0123456789abcdef\n").unwrap();
    Publisher {
        trust: dir.join("signing.key.pub"),
        key,
        v2,
        served,
    }
}

/// Replace the served bundle atomically.
fn publish(bundle: &Path, served: &Path) {
    let tmp = served.with_extension("tmp");
    std::fs::copy(bundle, &tmp).unwrap();
    std::fs::rename(&tmp, served).unwrap();
}

/// The status line of a CONNECT through the gateway from the notifier's
/// address (127.0.0.10, as the policy's inventory names it).
fn connect_status(proxy: &str, target: &str) -> String {
    common::gateway::tunnel(proxy, "127.0.0.10", target).0
}

#[test]
fn a_gateway_pulls_signed_bundles_refuses_every_bad_one_and_applies_a_good_one_within_a_poll() {
    let dir = temp_dir("bundles-gateway");
    let Publisher {
        key,
        trust,
        v2,
        served,
    } = publisher(&dir);
    let server = common::serve::spawn_serve(
        &dir.join("store"),
        &[
            "--bundle",
            served.to_str().unwrap(),
            "--tokens",
            dir.join("tokens").to_str().unwrap(),
        ],
    );
    // Without a token: 401, and no bundle.
    let anonymous = common::serve::http(&server.addr, "GET", "/api/v1/policy/bundle", &[], b"");
    assert_eq!(anonymous.status, 401);

    std::fs::write(dir.join("hosts"), "127.0.0.2 api.mailer.test\n").unwrap();
    let url = format!("http://{}/api/v1/policy/bundle", server.addr);
    let cache = dir.join("last-good.bundle");
    let token = dir.join("agent.token");
    let hosts = dir.join("hosts");
    let gateway = common::gateway::spawn(&[
        "--policy-url".as_ref(),
        url.as_ref(),
        "--trust".as_ref(),
        trust.as_os_str(),
        "--policy-token-file".as_ref(),
        token.as_os_str(),
        "--policy-cache".as_ref(),
        cache.as_os_str(),
        "--policy-poll".as_ref(),
        "1".as_ref(),
        "--hosts".as_ref(),
        hosts.as_os_str(),
    ]);
    let (proxy, admin, log) = (
        gateway.proxy.clone(),
        gateway.admin.clone(),
        gateway.log.clone(),
    );
    assert_eq!(metric(&admin, "cordon_gateway_policy_bundle_version"), 2);
    assert!(connect_status(&proxy, "api.mailer.test:2525").contains("403"));
    assert!(
        std::fs::metadata(&cache).is_ok(),
        "the last good bundle is kept"
    );

    for (what, bundle, reason) in bad_bundles(&dir, &key, &v2) {
        let failures = metric(&admin, "cordon_gateway_reload_failures_total");
        publish(&bundle, &served);
        let deadline = Instant::now() + Duration::from_secs(15);
        while metric(&admin, "cordon_gateway_reload_failures_total") == failures {
            assert!(
                Instant::now() < deadline,
                "{what}: not refused; log:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            metric(&admin, "cordon_gateway_policy_bundle_version"),
            2,
            "{what}: the last good bundle stays"
        );
        assert!(
            connect_status(&proxy, "api.mailer.test:2525").contains("403"),
            "{what}: still enforcing version 2"
        );
        let said = log.lock().unwrap().clone();
        assert!(
            said.contains(reason),
            "{what}: the log says why ({reason}):\n{said}"
        );
    }

    // A good new version: in force within one poll interval (1 s) and the
    // reload that follows it (checked every second).
    let v3 = dir.join("v3.bundle");
    sign(&dir, &key, 3, 2525, &v3);
    publish(&v3, &served);
    let published = Instant::now();
    while metric(&admin, "cordon_gateway_policy_bundle_version") != 3 {
        assert!(
            published.elapsed() < Duration::from_secs(10),
            "v3 not applied"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = published.elapsed();
    println!(
        "a good bundle was in force {} ms after it was published",
        took.as_millis()
    );
    assert!(
        took < Duration::from_millis(2500),
        "{took:?}: more than one poll and one check"
    );
    assert!(!connect_status(&proxy, "api.mailer.test:2525").contains("403"));
    // The server answers 304 to the gateway's If-None-Match.
    let etag = common::serve::http(
        &server.addr,
        "GET",
        "/api/v1/policy/bundle",
        &[("Authorization", "Bearer agent-token-0123456789abcdef")],
        b"",
    );
    assert_eq!(etag.status, 200);
    let tag = etag
        .raw_headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .unwrap()
        .to_string();
    let again = common::serve::http(
        &server.addr,
        "GET",
        "/api/v1/policy/bundle",
        &[
            ("Authorization", "Bearer agent-token-0123456789abcdef"),
            ("If-None-Match", &tag),
        ],
        b"",
    );
    assert_eq!(again.status, 304);
}

#[test]
fn verify_bundle_says_why_it_refuses() {
    let dir = temp_dir("bundles-verify");
    let key = dir.join("k");
    run_ok(&["policy", "keygen", "--out", key.to_str().unwrap()]);
    let v2 = dir.join("v2.bundle");
    sign(&dir, &key, 2, 25, &v2);
    let trust = dir.join("k.pub");
    let ok = run_ok(&[
        "policy",
        "verify-bundle",
        "--trust",
        trust.to_str().unwrap(),
        v2.to_str().unwrap(),
    ]);
    assert!(ok.contains("ok: version 2 of policy `bundled`"), "{ok}");
    for (what, bundle, reason) in bad_bundles(&dir, &key, &v2) {
        let out = cordon(&[
            "policy",
            "verify-bundle",
            "--trust",
            trust.to_str().unwrap(),
            "--newer-than",
            "2",
            "--json",
            bundle.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(64), "{what}");
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["valid"], false, "{what}");
        let why = v["reason"].as_str().unwrap();
        let reason = if what == "older version" {
            "not above version 2"
        } else {
            reason
        };
        assert!(why.contains(reason), "{what}: {why}");
    }
    // An invalid policy is never signed.
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: cordon/v1\nkind: Policy\nspec: {rules: [x]}\n",
    )
    .unwrap();
    let out = cordon(&[
        "policy",
        "bundle",
        "--key",
        key.to_str().unwrap(),
        dir.join("bad.yaml").to_str().unwrap(),
        "--out",
        dir.join("bad.bundle").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(!dir.join("bad.bundle").exists());
    // The key is private to its owner; keygen does not overwrite.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = cordon(&["policy", "keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(64));
    // OpenSSL checks the same signature over the manifest's bytes.
    let unpacked = dir.join("openssl");
    std::fs::create_dir_all(&unpacked).unwrap();
    assert!(
        Command::new("tar")
            .arg("xzf")
            .arg(&v2)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap()
            .success()
    );
    let openssl = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&trust)
        .arg("-rawin")
        .arg("-in")
        .arg(unpacked.join("manifest.json"))
        .arg("-sigfile")
        .arg(unpacked.join("manifest.sig"))
        .output()
        .unwrap();
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
}

/// A network namespace of its own, removed when dropped.
struct Netns(&'static str);

impl Netns {
    fn new(name: &'static str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", name])
                .status()
                .unwrap()
                .success()
        );
        assert!(
            Command::new("ip")
                .args(["-n", name, "link", "set", "lo", "up"])
                .status()
                .unwrap()
                .success()
        );
        Netns(name)
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.0, program]);
        c
    }

    fn table(&self) -> String {
        let out = self
            .exec("nft")
            .args(["list", "table", "inet", "cordon"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", self.0]).status();
    }
}

fn wait_log(log: &Path, what: &str, count: usize, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(what).count() >= count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "no {count} × `{what}` in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_agent_pulls_signed_bundles_into_nftables_and_keeps_the_last_good_table() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "needs root"
    );
    let ns = Netns::new("cordon-bundles");
    let dir = temp_dir("bundles-agent");
    let Publisher {
        key, v2, served, ..
    } = publisher(&dir);
    // The server and the agent share the namespace's loopback.
    let mut server = ns
        .exec(env!("CARGO_BIN_EXE_cordon"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(dir.join("store"))
        .arg("--bundle")
        .arg(&served)
        .arg("--tokens")
        .arg(dir.join("tokens"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = common::lines(&mut server);
    let line = common::wait_for(&rx, "console: http");
    let addr = line
        .split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let _server = common::Killed(server);
    let log = dir.join("agent.log");
    let file = std::fs::File::create(&log).unwrap();
    let agent = ns
        .exec(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "agent",
            "--policy-url",
            &format!("http://{addr}/api/v1/policy/bundle"),
        ])
        .arg("--trust")
        .arg(dir.join("signing.key.pub"))
        .arg("--policy-token-file")
        .arg(dir.join("agent.token"))
        .args(["--policy-poll", "1", "--self-ip", "127.0.0.10"])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let _agent = common::Killed(agent);
    wait_log(&log, "applied:", 1, Duration::from_secs(20));
    let table = ns.table();
    assert!(table.contains("25") && !table.contains("2525"), "{table}");

    for (n, (what, bundle, reason)) in bad_bundles(&dir, &key, &v2).into_iter().enumerate() {
        publish(&bundle, &served);
        wait_log(
            &log,
            "; keeping the last good ruleset",
            n + 1,
            Duration::from_secs(15),
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(reason),
            "{what}: the log says why ({reason}):\n{text}"
        );
        assert!(
            !ns.table().contains("2525"),
            "{what}: version 2's table stays"
        );
    }
    let v3 = dir.join("v3.bundle");
    sign(&dir, &key, 3, 2525, &v3);
    publish(&v3, &served);
    let took = wait_log(&log, "reloaded:", 1, Duration::from_secs(10));
    println!(
        "the agent's table changed {} ms after the bundle was published",
        took.as_millis()
    );
    assert!(
        took < Duration::from_millis(2500),
        "{took:?}: more than one poll"
    );
    assert!(ns.table().contains("2525"));
}

#[test]
fn a_server_given_keys_publishes_only_a_bundle_that_verifies() {
    let dir = temp_dir("bundles-serve-trust");
    let Publisher {
        trust, v2, served, ..
    } = publisher(&dir);
    let args = || {
        vec![
            "--bundle".to_string(),
            served.display().to_string(),
            "--trust".to_string(),
            trust.display().to_string(),
            "--tokens".to_string(),
            dir.join("tokens").display().to_string(),
        ]
    };
    let get = |addr: &str| {
        common::serve::http(
            addr,
            "GET",
            "/api/v1/policy/bundle",
            &[("Authorization", "Bearer agent-token-0123456789abcdef")],
            b"",
        )
    };
    let tampered = altered(&dir, &v2, "serve-changed", |w| {
        let f = w.join("files/policy.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, text.replace("tcp/25]", "tcp/2525]")).unwrap();
    });
    let a = args();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let server = common::serve::spawn_serve(&dir.join("store-a"), &a);
    let good = get(&server.addr);
    assert_eq!(good.status, 200);
    // A tampered file in its place: the last good bundle stays published.
    publish(&tampered, &served);
    let after = get(&server.addr);
    assert_eq!(after.status, 200);
    assert_eq!(after.body, good.body, "still the good bundle");
    drop(server);
    // A server that never saw a good one answers 503 with the reason.
    let server = common::serve::spawn_serve(&dir.join("store-b"), &a);
    let refused = get(&server.addr);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("changed after signing"),
        "{}",
        refused.body
    );
}
