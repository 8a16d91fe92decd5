//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cordon: zero-trust segmentation, egress control, flow visibility and
/// attack detection in one binary.
#[derive(Debug, Parser)]
#[command(name = "cordon", version, propagate_version = true)]
#[command(after_help = "EXAMPLES:
  cordon demo
  cordon policy check examples/acme-prod.yaml
  cordon policy explain examples/acme-prod.yaml --from web-1 --to user-db-1 --port tcp/5432")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with policies: check, explain, lint, diff, format.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Walk through the example policy along the path of a third-party breach.
    #[command(after_help = "EXAMPLES:
  cordon demo
  cordon demo --out /tmp/cordon-demo")]
    Demo(DemoArgs),
}

/// `cordon policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policies; report every error with file:line:column.
    #[command(after_help = "Exit status: 0 when every policy is valid, 64 otherwise.

EXAMPLES:
  cordon policy check examples/acme-prod.yaml
  cordon policy check prod.yaml staging.yaml --inventory pods.json
  cordon policy check prod.yaml --json")]
    Check(CheckArgs),
    /// Decide one request and say why.
    #[command(
        after_help = "Endpoints are an IP address, a workload name from the inventory, a hostname,
or a SPIFFE ID; prefix with ip:, host: or workload: to remove doubt.

EXAMPLES:
  cordon policy explain examples/acme-prod.yaml --from web-1 --to api-1 --port tcp/8080
  cordon policy explain examples/acme-prod.yaml --from 198.51.100.9 --to user-db-1 --port tcp/5432
  cordon policy explain examples/acme-prod.yaml --from api-1 --to exfil.s3.amazonaws.com --port tcp/443 --json"
    )]
    Explain(ExplainArgs),
    /// Find rules that cannot take effect, over-wide allows, vendor gaps.
    #[command(
        after_help = "Checks: shadowed-rule, redundant-rule, wide-allow, unused-group, empty-group,
vendor-missing, vendor-no-limit, audit-rule, mode-on-allow, default-allow.

EXAMPLES:
  cordon policy lint examples/acme-prod.yaml
  cordon policy lint prod.yaml --fail-on warning --json"
    )]
    Lint(LintArgs),
    /// Show which group-to-group reachabilities appear or disappear.
    #[command(after_help = "EXAMPLES:
  cordon policy diff old.yaml new.yaml
  cordon policy diff old.yaml new.yaml --json")]
    Diff(DiffArgs),
    /// Print a policy in canonical form (comments are not kept).
    #[command(after_help = "EXAMPLES:
  cordon policy fmt prod.yaml > prod.formatted.yaml
  cordon policy fmt --check prod.yaml
  cordon policy fmt --write prod.yaml")]
    Fmt(FmtArgs),
}

/// Inventory files beyond what the policy names.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file: Cordon YAML/JSON, `aws ec2 describe-instances` JSON,
    /// or `kubectl get pods -o json`. Repeatable.
    #[arg(long = "inventory", value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
}

/// `cordon policy check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
}

/// `cordon policy explain`
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Policy file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Source: address, workload, hostname or SPIFFE ID.
    #[arg(long, value_name = "ENDPOINT")]
    pub from: String,
    /// Destination: address, workload, hostname or SPIFFE ID.
    #[arg(long, value_name = "ENDPOINT")]
    pub to: String,
    /// Protocol and port, such as tcp/443, udp/53 or icmp.
    #[arg(long, value_name = "PROTO/PORT")]
    pub port: String,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lint levels for `--fail-on`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FailOn {
    /// Fail on warnings.
    Warning,
    /// Fail on anything.
    Info,
}

/// `cordon policy lint`
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Exit 1 when a finding reaches this level.
    #[arg(long, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,
    /// Print findings as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `cordon policy diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The policy before.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The policy after.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Exit 1 when anything changed.
    #[arg(long)]
    pub exit_code: bool,
    /// Print the diff as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon policy fmt`
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Policy file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Exit 1 when the file is not in canonical form; print nothing.
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the file in place.
    #[arg(long)]
    pub write: bool,
}

/// `cordon demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the example policy and inventory (default: a new
    /// folder in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}
