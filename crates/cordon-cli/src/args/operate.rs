//! Arguments of the commands that operate Cordon rather than edit policy:
//! `agent`, `lab`, `detect` and `simulate`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{InventoryArgs, PolicyFeedArgs, RangeArgs, StoreArgs};

/// `cordon agent`
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Policy file.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["cleanup", "policy_url", "policy_bundle"])]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub feed: PolicyFeedArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Enforce for this inventory workload's addresses. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub workload: Vec<String>,
    /// Enforce for this address. Repeatable.
    #[arg(long, value_name = "ADDR")]
    pub self_ip: Vec<std::net::IpAddr>,
    /// Log would-deny and let everything pass.
    #[arg(long)]
    pub audit: bool,
    /// Resolve FQDN groups' names from this hosts(5) file instead of the
    /// system resolver.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Resolve names (not in --hosts) by asking this DNS server (ADDR or
    /// ADDR:PORT), and refresh each when its TTL runs out; the system
    /// resolver gives no TTLs, so without this names are refreshed every
    /// minute.
    #[arg(long, value_name = "ADDR", value_parser = parse_dns)]
    pub dns: Option<std::net::SocketAddr>,
    /// Write the host's flows to this file as Cordon flow records (JSON
    /// lines for `cordon ingest`): connections let through, from conntrack,
    /// and packets denied or audited, from NFLOG (needs conntrack and
    /// tcpdump).
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,
    /// Follow this responses file (`cordon respond` writes it): the
    /// quarantines and blocks in force are overlaid on the policy (deny
    /// overrides), applied as set-element updates, and their established
    /// connections are cut. A missing file means no responses and is
    /// watched for; SIGHUP reads it again.
    #[arg(long, value_name = "FILE")]
    pub responses: Option<PathBuf>,
    /// Apply once and exit (no watching).
    #[arg(long)]
    pub once: bool,
    /// Print the nftables script and exit; touch nothing.
    #[arg(long)]
    pub print: bool,
    /// Remove the agent's table and exit.
    #[arg(long, conflicts_with_all = ["policy", "workload", "self_ip", "audit", "once", "print", "hosts", "dns", "flows"])]
    pub cleanup: bool,
}

/// `cordon lab`
#[derive(Debug, Args)]
pub struct LabArgs {
    /// up, down or status.
    #[arg(value_enum)]
    pub action: LabAction,
    /// With `up`: start an agent enforcing this policy in every lab
    /// namespace that is a workload of its inventory; each writes its flows
    /// to /run/cordon-lab/NAME.flows.jsonl (and its log beside it).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// With `--policy`: the agents resolve names from this hosts(5) file.
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub hosts: Option<PathBuf>,
}

/// What to do with the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabAction {
    /// Build it (removing any leftover first).
    Up,
    /// Remove everything it created.
    Down,
    /// Which namespaces exist.
    Status,
}

/// `cordon detect`
#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Re-enrich flows with this policy first (verdicts, groups, vendors).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub detection: DetectionArgs,
    /// Output: table, json (one finding per line), ocsf (Detection Finding 2004), stix (a STIX 2.1 bundle).
    #[arg(long, value_enum, default_value = "table")]
    pub output: FindingsOutput,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
    /// Only show findings at or above this severity: low, medium, high, critical.
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<String>,
    /// Exit with 1 when any finding reaches this severity.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
}

/// Detector settings shared by `detect`, `ingest --detect` and `demo`.
#[derive(Debug, Args)]
pub struct DetectionArgs {
    /// Detector settings (YAML, kind DetectionConfig).
    #[arg(long = "detect-config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Indicators of compromise: a plain list (IP, CIDR or domain per line) or a STIX 2.1 bundle. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub intel: Vec<PathBuf>,
}

/// How findings are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FindingsOutput {
    /// A table for people.
    Table,
    /// One JSON object per finding per line.
    Json,
    /// OCSF Detection Finding (class 2004), one per line.
    Ocsf,
    /// One STIX 2.1 bundle.
    Stix,
}

/// `cordon simulate`
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario to generate.
    #[arg(long, default_value = "third-party-compromise")]
    pub scenario: String,
    /// Flow-log format to write: aws, gcp, azure, zeek, ipfix.
    #[arg(long, default_value = "aws")]
    pub format: String,
    /// Hours of traffic.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub hours: u32,
    /// Seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder to write into (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon gateway`
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Policy file (reloaded when it changes and on SIGHUP).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["policy_url", "policy_bundle"])]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub feed: PolicyFeedArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Explicit proxy listener (CONNECT and absolute-form HTTP). Repeatable.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3128")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Transparent TLS listener: decides on the ClientHello's server name.
    #[arg(long, value_name = "ADDR")]
    pub transparent_tls: Option<std::net::SocketAddr>,
    /// Transparent HTTP listener: decides on the Host header.
    #[arg(long, value_name = "ADDR")]
    pub transparent_http: Option<std::net::SocketAddr>,
    /// Port dialled for transparent TLS connections.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub upstream_tls_port: u16,
    /// Port dialled for transparent HTTP when Host names none.
    #[arg(long, value_name = "PORT", default_value_t = 80)]
    pub upstream_http_port: u16,
    /// TLS listener that requires client certificates (identity from the
    /// SPIFFE URI SAN, else the subject CN as a workload name).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key", "client_ca"])]
    pub tls_listen: Option<std::net::SocketAddr>,
    /// The TLS listener's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS listener's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates that sign client certificates (PEM).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Proxy tokens: lines of `TOKEN workload:NAME` or `TOKEN spiffe://...`,
    /// presented as `Proxy-Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Follow this responses file (`cordon respond` writes it): quarantines
    /// and blocks refuse connections (403, reason=response) and close open
    /// tunnels and kept-alive upstreams; throttles lower vendors' egress
    /// limits. Read again when it changes and on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub responses: Option<PathBuf>,
    /// Share egress limits with the other gateway replicas through this
    /// Redis (`redis://HOST:PORT[/DB]`): the limit holds for the fleet,
    /// judged on a two-window estimate (no double burst at a window's edge).
    #[arg(long, value_name = "URL")]
    pub quota_redis: Option<String>,
    /// What a shared limit does while Redis cannot be reached: `closed`
    /// refuses, `open` meters this replica alone and says so [default:
    /// closed for limits on sending to a vendor that receives personal
    /// data (`vendor.data`), open for the others].
    #[arg(long, value_enum, value_name = "MODE", requires = "quota_redis")]
    pub quota_fail: Option<QuotaFail>,
    /// Bytes a replica lets through before Redis must have counted them
    /// (the most each replica can overshoot a shared limit by).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 65536,
        requires = "quota_redis"
    )]
    pub quota_batch: u64,
    /// Admin listener: /metrics (Prometheus) and /healthz.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<std::net::SocketAddr>,
    /// hosts(5) file that overrides name resolution.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// DNS server to ask (ADDR or ADDR:PORT); default: the system resolver.
    #[arg(long, value_name = "ADDR", value_parser = parse_dns)]
    pub dns: Option<std::net::SocketAddr>,
    /// Decision log: a file to append JSON lines to, or `-` for stdout.
    #[arg(long, value_name = "FILE|-")]
    pub log: Option<String>,
    /// Largest request head, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    pub max_header_bytes: usize,
    /// Seconds allowed to send a request head.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a tunnel may stay silent before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Seconds allowed to connect upstream.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Concurrent connections from one client address.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_per_client: usize,
    /// Concurrent connections in all.
    #[arg(long, value_name = "N", default_value_t = 20000)]
    pub max_connections: usize,
    /// Seconds shutdown waits for open connections.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub drain: u64,
}

fn parse_dns(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{text}` is not an address or address:port"))
}

/// `--quota-fail`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QuotaFail {
    /// Keep metering locally and say so.
    Open,
    /// Refuse what the limit meters.
    Closed,
}
