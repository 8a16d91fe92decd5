//! Arguments of the commands that operate Cordon rather than edit policy:
//! `agent`, `lab`, `detect` and `simulate`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{InventoryArgs, RangeArgs, StoreArgs};

/// `cordon agent`
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Policy file.
    #[arg(long, value_name = "FILE", required_unless_present = "cleanup")]
    pub policy: Option<PathBuf>,
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
    /// Apply once and exit (no watching).
    #[arg(long)]
    pub once: bool,
    /// Print the nftables script and exit; touch nothing.
    #[arg(long)]
    pub print: bool,
    /// Remove the agent's table and exit.
    #[arg(long, conflicts_with_all = ["policy", "workload", "self_ip", "audit", "once", "print", "hosts"])]
    pub cleanup: bool,
}

/// `cordon lab`
#[derive(Debug, Args)]
pub struct LabArgs {
    /// up, down or status.
    #[arg(value_enum)]
    pub action: LabAction,
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
