//! `cordon intel ...`: threat intelligence over TAXII 2.1.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::StoreArgs;

/// `cordon intel ...`
#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Pull a TAXII collection into the store (incremental: only what was
    /// added since the last pull; resumes after a failure).
    #[command(
        after_help = "The threat-intel detector of `cordon ingest --detect` and `cordon detect`
matches flows against the indicators pulled into the store.

EXAMPLES:
  cordon intel pull --taxii https://taxii.isac.example/api1/ --collection 91a7b528-80eb-42ed-a74d-c6fbd5a26116 \\
      --user acme --password-file isac.pass --store cordon-data
  cordon intel pull --taxii http://127.0.0.1:5000/trustgroup1/ --collection feed --token-file feed.token --json"
    )]
    Pull(PullArgs),
    /// Push a STIX bundle, or Cordon's findings, to a TAXII collection.
    #[command(after_help = "EXAMPLES:
  cordon intel push --taxii https://taxii.isac.example/api1/ --collection shared --token-file isac.token findings.stix.json
  cordon intel push --taxii https://taxii.isac.example/api1/ --collection shared --token-file isac.token --findings --store cordon-data")]
    Push(PushArgs),
    /// The sources pulled from (last pull, object counts) and the store's own collections.
    #[command(after_help = "EXAMPLES:
  cordon intel list --store cordon-data
  cordon intel list --json")]
    List(IntelListArgs),
}

/// Where a TAXII server is and how to prove who we are.
#[derive(Debug, Args)]
pub struct TaxiiServerArgs {
    /// The URL of the server's API root (`https://host/api1/`).
    #[arg(long = "taxii", value_name = "URL")]
    pub url: String,
    /// The collection id.
    #[arg(long, value_name = "ID")]
    pub collection: String,
    /// User name for HTTP Basic authentication (with --password-file).
    #[arg(long, value_name = "USER", requires = "password_file")]
    pub user: Option<String>,
    /// File whose first line is the password (kept out of the command line and logs).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// File whose first line is a bearer token.
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Attempts after the first for a request that fails in a way that may pass.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
    /// Longest one request may take, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `cordon intel pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub server: TaxiiServerArgs,
    /// The source's name in the store [default: HOST[:PORT]/COLLECTION].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Objects per page asked for.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon intel push`
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub server: TaxiiServerArgs,
    /// A STIX 2.1 bundle (or TAXII envelope) to push.
    #[arg(
        value_name = "FILE",
        required_unless_present = "findings",
        conflicts_with = "findings"
    )]
    pub file: Option<PathBuf>,
    /// Push Cordon's findings and incidents (the store's `findings` collection) instead.
    #[arg(long)]
    pub findings: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon intel list`
#[derive(Debug, Args)]
pub struct IntelListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
