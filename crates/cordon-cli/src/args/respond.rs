//! `cordon respond ...`: quarantines, blocks and throttles.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{InventoryArgs, StoreArgs};

/// `cordon respond ...`
#[derive(Debug, Subcommand)]
pub enum RespondCommand {
    /// Cut a workload or address off, both ways, except for an allow-list.
    #[command(after_help = "EXAMPLES:
  cordon respond quarantine --ip 203.0.113.66 --ttl 1h --reason \"C2 beacon\" --responses responses.yaml
  cordon respond quarantine --workload notifier-1 --allow bastion --ttl 4h \\
      --reason \"exfiltration to cloud storage\" --incident INC-5a3c0e91f2 \\
      --policy policy.yaml --responses responses.yaml
  cordon respond quarantine --ip 10.0.4.10 --ttl 1h --reason test --dry-run --policy policy.yaml")]
    Quarantine(QuarantineArgs),
    /// Cut a destination (FQDN, CIDR, group or vendor) off for some or all sources.
    #[command(after_help = "EXAMPLES:
  cordon respond block --to storage.googleapis.com --from notifier --ttl 2h --reason exfil --policy policy.yaml --responses responses.yaml
  cordon respond block --to 198.51.100.0/24 --ttl 30m --reason \"C2 range\" --responses responses.yaml
  cordon respond block --to vendor:mailgun --ttl 1h --reason \"vendor breach\" --policy policy.yaml --responses responses.yaml")]
    Block(BlockArgs),
    /// Lower a vendor's egress limit at the gateway.
    #[command(after_help = "EXAMPLES:
  cordon respond throttle --vendor mailgun --limit 10MiB/h --ttl 1d --reason \"unusual volume\" --policy policy.yaml --responses responses.yaml")]
    Throttle(ThrottleArgs),
    /// List responses, oldest first.
    List(RespondListArgs),
    /// One response with its audit trail.
    Show(RespondShowArgs),
    /// Approve a proposed response: it is enforced for its TTL from now.
    Approve(RespondChangeArgs),
    /// Take a response back: what it cut is let through again.
    Undo(RespondChangeArgs),
}

/// The responses file.
#[derive(Debug, Args)]
pub struct ResponsesFile {
    /// The responses document the agent and gateway follow (created when
    /// missing).
    #[arg(long, value_name = "FILE")]
    pub responses: PathBuf,
}

/// What every new response needs.
#[derive(Debug, Args)]
pub struct NewResponseArgs {
    /// How long it holds: 30s, 15m, 4h, 1d (at most the file's maxTtl,
    /// 24h unless set).
    #[arg(long, value_name = "DURATION")]
    pub ttl: String,
    /// Why, for the audit trail and the people who read it.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// The finding it answers.
    #[arg(long, value_name = "ID")]
    pub finding: Option<String>,
    /// The incident it answers.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Make it a proposal that `cordon respond approve` puts in force.
    #[arg(long)]
    pub propose: bool,
    /// Change nothing: check it and print the flows of the last hour in
    /// the store it would have cut.
    #[arg(long)]
    pub dry_run: bool,
    /// The policy whose groups, workloads and vendors it names.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub file: ResponsesFile,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon respond quarantine`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["workload", "ip"])))]
pub struct QuarantineArgs {
    /// The workload of the inventory to isolate.
    #[arg(long, value_name = "NAME")]
    pub workload: Option<String>,
    /// The address (or CIDR) to isolate.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// A group, workload, CIDR or hostname it may still talk to. Repeatable.
    #[arg(long, value_name = "GROUP|CIDR")]
    pub allow: Vec<String>,
    #[command(flatten)]
    pub new: NewResponseArgs,
}

/// `cordon respond block`
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// What to cut off: an FQDN (`*.` allowed), an address or CIDR, a
    /// group, or a vendor (`vendor:NAME`, or a vendor's name).
    #[arg(long, value_name = "FQDN|CIDR|GROUP")]
    pub to: String,
    /// Only for sources in this group (default: every source).
    #[arg(long, value_name = "GROUP")]
    pub from: Option<String>,
    #[command(flatten)]
    pub new: NewResponseArgs,
}

/// `cordon respond throttle`
#[derive(Debug, Args)]
pub struct ThrottleArgs {
    /// The vendor, as named in the policy.
    #[arg(long, value_name = "NAME")]
    pub vendor: String,
    /// Bytes per window: 10MiB/h, 500KiB/m.
    #[arg(long, value_name = "BYTES/WINDOW")]
    pub limit: String,
    #[command(flatten)]
    pub new: NewResponseArgs,
}

/// `cordon respond list`
#[derive(Debug, Args)]
pub struct RespondListArgs {
    #[command(flatten)]
    pub file: ResponsesFile,
    /// Only responses in this status: proposed, active, expired, undone.
    #[arg(long)]
    pub status: Option<String>,
    /// One JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `cordon respond show`
#[derive(Debug, Args)]
pub struct RespondShowArgs {
    /// Response id (`RSP-...`).
    pub id: String,
    #[command(flatten)]
    pub file: ResponsesFile,
    /// As JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon respond approve|undo`
#[derive(Debug, Args)]
pub struct RespondChangeArgs {
    /// Response id (`RSP-...`).
    pub id: String,
    /// A note for the audit trail.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The policy the response names (checked again on approval).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub file: ResponsesFile,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
}
