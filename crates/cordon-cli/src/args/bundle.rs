//! Arguments of signed policy bundles: `policy keygen`, `policy bundle`,
//! `policy verify-bundle`, and where agents and gateways take bundles from.

use std::path::PathBuf;

use clap::Args;

use super::InventoryArgs;

/// `cordon policy keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the private key here (mode 0600) and the public key to
    /// `FILE.pub`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
    /// Print the key id and files as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon policy bundle`
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The policy, then any inventory files and a responses document
    /// (recognised by `kind: Responses`). The inventory files the policy
    /// names in `inventory_files` are added by themselves.
    #[arg(required = true, value_name = "POLICY [FILE...]")]
    pub files: Vec<PathBuf>,
    /// The signing key (PKCS#8 PEM, from `cordon policy keygen` or
    /// `openssl genpkey -algorithm ed25519`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The bundle's version; receivers refuse any not above the one in
    /// force [default: the current time in seconds since the epoch].
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// A responses document to carry.
    #[arg(long, value_name = "FILE")]
    pub responses: Option<PathBuf>,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon policy verify-bundle`
#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A public key the bundle may be signed with (PEM). Repeatable.
    #[arg(long, value_name = "PUBKEY", required = true)]
    pub trust: Vec<PathBuf>,
    /// Refuse it unless its version is above this one (as a receiver
    /// holding that version would).
    #[arg(long, value_name = "N")]
    pub newer_than: Option<u64>,
    /// Print the verdict and the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where an agent or a gateway takes signed policy bundles from, instead
/// of a policy file.
#[derive(Debug, Args)]
pub struct PolicyFeedArgs {
    /// Pull signed policy bundles from this URL (`cordon serve --bundle`
    /// publishes one at /api/v1/policy/bundle), verify each and enforce
    /// the newest good one.
    #[arg(long, value_name = "URL", conflicts_with_all = ["policy", "policy_bundle"], requires = "trust")]
    pub policy_url: Option<String>,
    /// Take signed policy bundles from this file (read again when it
    /// changes and on SIGHUP).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "policy",
        requires = "trust"
    )]
    pub policy_bundle: Option<PathBuf>,
    /// A public key bundles may be signed with (PEM). Repeatable; bundles
    /// signed otherwise, unsigned or tampered with are refused.
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<PathBuf>,
    /// Seconds between polls of --policy-url.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub policy_poll: u64,
    /// Bearer token for --policy-url (first line of the file).
    #[arg(long, value_name = "FILE", requires = "policy_url")]
    pub policy_token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for an https --policy-url instead of
    /// the system's.
    #[arg(long, value_name = "FILE", requires = "policy_url")]
    pub policy_ca_file: Option<PathBuf>,
    /// Keep the last good bundle here (mode 0600): it is enforced at start
    /// until the server answers, and no older bundle is taken after a
    /// restart.
    #[arg(long, value_name = "FILE")]
    pub policy_cache: Option<PathBuf>,
}
