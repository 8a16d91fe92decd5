//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bundle;
mod intel;
mod lake;
mod operate;
mod respond;
pub use bundle::*;
pub use intel::*;
pub use lake::*;
pub use operate::*;
pub use respond::*;

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
    /// How the gateway, agent, collector and pipeline log to standard
    /// error: `human` lines or `json` (one object per event). The level is
    /// set with CORDON_LOG (`info` by default; `debug`, `warn`,
    /// `cordon_pipeline=debug`, ...).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per event, for machines.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with policies: check, explain, lint, diff, format.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read flow logs and captures into the store: AWS, GCP, Azure, Zeek, Hubble, IPFIX, pcap, Cordon.
    #[command(
        after_help = "Formats are detected; gzip is read transparently. Re-running an ingest stores
nothing twice, and an interrupted one resumes where it stopped.

EXAMPLES:
  cordon ingest vpc-flow-logs/
  cordon ingest --policy examples/acme-prod.yaml conn.log.gz
  cordon ingest --policy examples/acme-prod.yaml --dns dns.log conn.log
  cordon ingest --detect capture.pcapng
  zcat flows.jsonl.gz | cordon ingest --format hubble -
  cordon ingest --store /var/lib/cordon --json azure-nsg.json
  cordon ingest --lake /data/lake vpc-flow-logs/"
    )]
    Ingest(IngestArgs),
    /// Receive NetFlow v5/v9 and IPFIX over UDP into the flow store.
    #[command(
        after_help = "Runs until interrupted (Ctrl-C or SIGTERM), committing at least once a second,
then prints totals. Listens on loopback unless told otherwise.

EXAMPLES:
  cordon collect
  cordon collect --listen 0.0.0.0:4739 --policy examples/acme-prod.yaml
  cordon collect --listen 127.0.0.1:2055 --store /var/lib/cordon --json
  cordon collect --lake s3://acme-security-lake/cordon --region eu-west-1 --lake-flush 300"
    )]
    Collect(CollectArgs),
    /// Look at stored flows: query, topology, audit.
    #[command(subcommand)]
    Flows(FlowsCommand),
    /// Look at stored cloud audit events (CloudTrail, GCP, Azure).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Enforce the policy on this host (or network namespace) with nftables.
    #[command(
        after_help = "Compiles the rules that apply to this host's addresses into one nftables table
(inet cordon) and loads it in one transaction; keeps watching the policy file
and reloads on change or SIGHUP, keeping the last good ruleset when a new one
fails. Stopping the agent leaves the ruleset in force; --cleanup removes it.
Needs root (CAP_NET_ADMIN) and nft.

EXAMPLES:
  cordon agent --policy examples/acme-prod.yaml --workload user-db-1
  cordon agent --policy policy.yaml --self-ip 10.0.2.10 --audit --once
  cordon agent --policy policy.yaml --workload web-1 --print
  cordon agent --cleanup"
    )]
    Agent(AgentArgs),
    /// Run the egress gateway: a policy-deciding forward proxy with an SSRF guard.
    #[command(
        after_help = "Decides every connection by policy on (client identity, hostname, port),
resolves the name itself, refuses private, loopback, link-local, metadata and
reserved addresses unless an allowing rule names them in a CIDR group, dials
exactly the address it checked, meters vendor egress limits, and logs one
decision record and one close record per connection (JSON lines that
`cordon ingest` reads). Reloads the policy on change and on SIGHUP; drains on
SIGTERM or Ctrl-C.

Answers: 403 denied (x-cordon-decision says verdict, rule and reason), 400 bad
target, 407 bad proxy token, 502 DNS or upstream failure, 504 timeouts, 503
with Retry-After when connection limits are reached.

EXAMPLES:
  cordon gateway --policy examples/acme-prod.yaml --listen 127.0.0.1:3128 --log -
  cordon gateway --policy policy.yaml --hosts hosts.txt --admin 127.0.0.1:9090 --log decisions.jsonl
  cordon gateway --policy policy.yaml --transparent-tls 0.0.0.0:8443 --dns 10.0.0.2
  curl -x http://127.0.0.1:3128 https://api.vendor.example/"
    )]
    Gateway(Box<GatewayArgs>),
    /// Build or remove the network-namespace lab (root).
    #[command(after_help = "EXAMPLES:
  cordon lab up
  ip netns exec cordon-user-db-1 cordon agent --policy examples/acme-prod.yaml --workload user-db-1 --once
  cordon lab status
  cordon lab down")]
    Lab(LabArgs),
    /// Find attacks in stored flows: beaconing, exfiltration, lateral movement, scans...
    #[command(
        after_help = "Findings are stored (re-running updates them), mapped to MITRE ATT&CK and to
compliance controls, and printed. Flows ingested without a policy are judged
with private address space as internal.

EXAMPLES:
  cordon detect
  cordon detect --since 24h --fail-on high
  cordon detect --policy examples/acme-prod.yaml --intel iocs.txt --intel feed.stix.json
  cordon detect --output stix > findings.stix.json
  cordon detect --config detection.yaml --json | jq .kind"
    )]
    Detect(DetectArgs),
    /// Generate a small company's traffic, with attacks and ground truth, as flow logs.
    #[command(
        after_help = "Scenarios: third-party-compromise, benign, vendor-access, discovery,
lateral-movement, command-and-control, exfiltration, brute-force.
Formats: aws, gcp, azure, zeek, ipfix (each with the resolver's dns.log).

EXAMPLES:
  cordon simulate --out /tmp/sim
  cordon simulate --scenario benign --format zeek --hours 24 --seed 7 --out /tmp/benign
  cordon simulate --scenario exfiltration --format azure --out /tmp/exfil --json"
    )]
    Simulate(SimulateArgs),
    /// Replay the email-vendor breach through the whole pipeline and show the kill chain found.
    #[command(
        after_help = "Simulates the third-party-compromise scenario, ingests it with the example
policy (parse, enrich, verdict, store, detect), and prints each stage of the
attack with its techniques, evidence, the controls it touches, and the rule
that would have stopped it. No root, no network.

EXAMPLES:
  cordon demo
  cordon demo --out /tmp/cordon-demo --seed 3
  cordon demo --format zeek --json"
    )]
    Demo(DemoArgs),
    /// Incidents: findings linked into attack paths; list, show, acknowledge, resolve.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Incidents are made and updated by `ingest --detect` and `detect` as findings
grow: findings on one attack path (the same host, vendor or external party,
within a day, following the kill chain) become one incident. A single finding
makes one only when it is high or critical on its own.

EXAMPLES:
  cordon incidents
  cordon incidents --status open --json
  cordon incidents show INC-5a3c0e91f2
  cordon incidents ack INC-5a3c0e91f2 --note \"on it, isolating notifier-1\"
  cordon incidents resolve INC-5a3c0e91f2 --by alice --note \"vendor key rotated\""
    )]
    Incidents(IncidentsArgs),
    /// Write an incident's report: summary, timeline, kill chain, evidence, controls, actions.
    #[command(after_help = "EXAMPLES:
  cordon report INC-5a3c0e91f2
  cordon report INC-5a3c0e91f2 --format html --out incident.html
  cordon report INC-5a3c0e91f2 --policy examples/acme-prod.yaml --format json")]
    Report(ReportArgs),
    /// The register of third parties the flows show: declared vendors and undeclared ones.
    #[command(
        after_help = "Declared vendors are the policy's external groups with vendor metadata;
every other external party is listed by its domain when a name is known, else
by its address block. The CSV uses the field names of a DORA Art. 28 register
of information (the part flows can fill) and serves as the PCI DSS 12.8.1 list
of third-party service providers.

EXAMPLES:
  cordon vendors --policy examples/acme-prod.yaml
  cordon vendors --since 7d --json
  cordon vendors --policy policy.yaml --output csv > register.csv"
    )]
    Vendors(VendorsArgs),
    /// Serve the HTTP API, the web console, /metrics and /healthz over a store.
    #[command(
        after_help = "Reads go to the store on every request, so what a concurrent `ingest` or
`collect` commits shows up without a restart. Nothing is anonymous but
/healthz: the API takes `Authorization: Bearer TOKEN`, the console a login
with a token. --tokens FILE has lines `TOKEN ROLE NAME` (roles viewer,
responder, admin). Without it, the first start makes an admin token, keeps
only its digest in the store folder, and writes the token once to a 0600
file there whose path it prints.

EXAMPLES:
  cordon serve --store /tmp/cordon-demo/store --policy examples/acme-prod.yaml
  cordon serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --tokens tokens.txt
  curl -H \"Authorization: Bearer $(cat cordon-data/admin-token)\" http://127.0.0.1:8080/api/v1/incidents"
    )]
    Serve(ServeArgs),
    /// Respond to an attack: quarantine, block or throttle, with a TTL and an audit trail.
    #[command(
        subcommand,
        after_help = "Responses are written to one file (`--responses FILE`) that
`cordon agent --responses` and `cordon gateway --responses` follow: a response
is enforced everywhere within seconds, ends by itself when its TTL runs out
(also across restarts), and `undo` restores exactly what was in force before.
Nothing on the never-block list (the file's spec.neverBlock, the system's DNS
resolvers, the gateway's own addresses) and no loopback address can be
quarantined or blocked.

EXAMPLES:
  cordon respond quarantine --ip 203.0.113.66 --ttl 1h --reason \"C2 beacon\" --responses responses.yaml
  cordon respond list --responses responses.yaml
  cordon respond undo RSP-0a1b2c3d4e --note \"false positive\" --responses responses.yaml"
    )]
    Respond(RespondCommand),
    /// Exchange threat intelligence over TAXII 2.1: pull feeds in, push findings out.
    #[command(
        subcommand,
        after_help = "`cordon serve` is also a TAXII 2.1 server (under /taxii2/): its `findings` and
`indicators` collections share what Cordon found, and partners push feeds to
its `intel` collection. `cordon intel` is the client side.

EXAMPLES:
  cordon intel pull --taxii https://taxii.isac.example/api1/ --collection feed --user acme --password-file isac.pass
  cordon intel push --taxii https://taxii.isac.example/api1/ --collection shared --token-file isac.token --findings
  cordon intel list"
    )]
    Intel(IntelCommand),
    /// Export stored flows to a Parquet lake (OCSF, Security Lake layout).
    #[command(subcommand)]
    Lake(LakeCommand),
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
    /// Propose least-privilege allow rules from the traffic seen.
    #[command(
        after_help = "Takes the groups (and inventory) of --policy, labels every stored flow with
them, and writes a policy allowing exactly the group-to-group traffic seen,
in audit mode, for review.

EXAMPLES:
  cordon policy recommend --from-flows --policy groups.yaml > proposed.yaml
  cordon policy recommend --from-flows --policy groups.yaml --since 7d --store /var/lib/cordon"
    )]
    Recommend(RecommendArgs),
    /// Print a policy in canonical form (comments are not kept).
    #[command(after_help = "EXAMPLES:
  cordon policy fmt prod.yaml > prod.formatted.yaml
  cordon policy fmt --check prod.yaml
  cordon policy fmt --write prod.yaml")]
    Fmt(FmtArgs),
    /// Write the policy as Kubernetes NetworkPolicy or CiliumNetworkPolicy objects.
    #[command(
        after_help = "The YAML goes to standard output (or --out); every rule or setting that the
target cannot express is listed on standard error with the reason.

EXAMPLES:
  cordon policy export --format cilium examples/acme-prod.yaml | kubectl apply -f -
  cordon policy export --format k8s examples/acme-prod.yaml --namespace shop --out netpol.yaml
  cordon policy export --format k8s examples/acme-prod.yaml --json | jq .unexpressible"
    )]
    Export(ExportArgs),
    /// Make an Ed25519 key pair for signing policy bundles.
    #[command(
        after_help = "Writes FILE (the private key, PKCS#8 PEM, mode 0600) and FILE.pub (the
public key agents and gateways trust). OpenSSL keys work too:
`openssl genpkey -algorithm ed25519 -out FILE` and `openssl pkey -in FILE -pubout`.

EXAMPLES:
  cordon policy keygen --out /etc/cordon/bundle-signing.key"
    )]
    Keygen(KeygenArgs),
    /// Sign a policy, its inventories and a responses document into a bundle.
    #[command(
        after_help = "The policy is checked first: an invalid policy is never signed. The bundle is
a tar.gz of manifest.json (every file's size and SHA-256, the version),
manifest.sig (Ed25519 over the manifest's bytes) and files/.

EXAMPLES:
  cordon policy bundle --key signing.key examples/acme-prod.yaml --out acme.bundle
  cordon policy bundle --key signing.key --version 42 prod.yaml pods.json responses.yaml --out prod.bundle
  cordon serve --bundle prod.bundle   # agents: --policy-url https://HOST:8080/api/v1/policy/bundle --trust signing.key.pub",
        disable_version_flag = true
    )]
    Bundle(BundleArgs),
    /// Check a bundle's signature, files and policy as a receiver would.
    #[command(
        after_help = "Exit status: 0 when the bundle would be applied, 64 when it is refused.

EXAMPLES:
  cordon policy verify-bundle --trust signing.key.pub prod.bundle
  cordon policy verify-bundle --trust old.pub --trust new.pub prod.bundle --newer-than 41 --json"
    )]
    VerifyBundle(VerifyBundleArgs),
}

/// `cordon policy export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Policy file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Target: k8s (networking.k8s.io/v1 NetworkPolicy, allow only) or cilium (cilium.io/v2 CiliumNetworkPolicy).
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Namespace of the objects.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Write the YAML here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print objects and the unexpressible list as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Export targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Kubernetes NetworkPolicy.
    K8s,
    /// Cilium CiliumNetworkPolicy.
    Cilium,
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
    /// Where to write the simulated logs, the store and the findings
    /// (default: a new folder in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hours of traffic to simulate.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(4..=168))]
    pub hours: u32,
    /// Flow-log format to simulate: aws, gcp, azure, zeek, ipfix.
    #[arg(long, default_value = "aws")]
    pub format: String,
    /// Print the findings as JSON lines instead of the story.
    #[arg(long)]
    pub json: bool,
    /// Then serve the demo's store in the console (until Ctrl-C).
    #[arg(long)]
    pub serve: bool,
    /// Where --serve listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

/// `cordon incidents`
#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub command: Option<IncidentsCommand>,
    #[command(flatten)]
    pub list: IncidentListArgs,
}

/// `cordon incidents ...`
#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest last.
    List(IncidentListArgs),
    /// One incident: stages, findings, entities, history.
    Show(IncidentShowArgs),
    /// Acknowledge an incident: someone is on it.
    Ack(IncidentChangeArgs),
    /// Resolve an incident, with a note on how.
    Resolve(IncidentChangeArgs),
    /// Open a resolved or acknowledged incident again.
    Reopen(IncidentChangeArgs),
}

/// `cordon incidents list`
#[derive(Debug, Args)]
pub struct IncidentListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only incidents in this status: open, acknowledged, resolved.
    #[arg(long)]
    pub status: Option<String>,
    /// One JSON array of incidents.
    #[arg(long)]
    pub json: bool,
}

/// `cordon incidents show`
#[derive(Debug, Args)]
pub struct IncidentShowArgs {
    /// Incident id (`INC-...`).
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The incident and its findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon incidents ack|resolve|reopen`
#[derive(Debug, Args)]
pub struct IncidentChangeArgs {
    /// Incident id (`INC-...`).
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Why, or what was done.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Who [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    /// The incident as JSON afterwards.
    #[arg(long)]
    pub json: bool,
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// One self-contained HTML file.
    Html,
    /// JSON, for machines.
    Json,
}

/// `cordon report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Incident id (`INC-...`).
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The policy in force: names vendors' data and checks proposed rules.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Output formats of `cordon vendors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VendorsOutput {
    /// A table for people.
    Table,
    /// One JSON array.
    Json,
    /// CSV with DORA register field names.
    Csv,
}

/// `cordon vendors`
#[derive(Debug, Args)]
pub struct VendorsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// The policy: declared vendors and the rules that allow each party.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Output.
    #[arg(long, value_enum, default_value = "table")]
    pub output: VendorsOutput,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
}

/// `cordon serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The policy in force: explain, lint, what-if, vendor metadata.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Tokens: lines of `TOKEN ROLE NAME` (viewer, responder, admin; partner: TAXII exchange only).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// The responses file the agents and gateways follow: listed on the
    /// console and the API, made, approved and undone by responders.
    #[arg(long, value_name = "FILE")]
    pub responses: Option<PathBuf>,
    /// Publish this signed policy bundle (`cordon policy bundle`) at
    /// /api/v1/policy/bundle for agents and gateways (viewer role; ETag);
    /// read again when it changes.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Publish the bundle only while it verifies with one of these public
    /// keys (PEM; repeatable): a refused bundle is logged and the last good
    /// one stays published.
    #[arg(long = "trust", value_name = "PUBKEY", requires = "bundle")]
    pub bundle_trust: Vec<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Where the flow store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Flow store folder [default: $CORDON_STORE, else ./cordon-data].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store folder in force.
    pub fn path(&self) -> PathBuf {
        self.store
            .clone()
            .or_else(|| std::env::var_os("CORDON_STORE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("cordon-data"))
    }
}

/// `cordon ingest`
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files, folders (read recursively) or `-` for standard input.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Policy for enrichment and verdicts.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Input format instead of detecting it: aws, gcp, gcp-array, azure, zeek, zeek-json, hubble, cordon, ipfix.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Zeek dns.log (TSV or JSON) whose answers name flows that lack a
    /// hostname, so FQDN groups match them. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub dns: Vec<PathBuf>,
    /// Run the detectors over the flows as they are ingested and store the findings.
    #[arg(long)]
    pub detect: bool,
    #[command(flatten)]
    pub detection: DetectionArgs,
    /// Run this response playbook (`kind: ResponsePlaybook`) on the
    /// findings: responses are written to --responses (needs --detect).
    #[arg(long, value_name = "FILE", requires_all = ["detect", "responses"])]
    pub playbook: Option<PathBuf>,
    /// The responses file the playbook writes (what `cordon agent` and
    /// `cordon gateway` follow).
    #[arg(long, value_name = "FILE", requires = "playbook")]
    pub responses: Option<PathBuf>,
    /// Keep reading the files as they grow (a gateway's decision log, an
    /// agent's flows), detecting and responding as records arrive, until
    /// interrupted.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub lake: LakeSinkArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cordon flows ...`
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Stored flows matching filters, as a table, JSON, CSV or OCSF.
    #[command(after_help = "EXAMPLES:
  cordon flows query --since 1h --verdict deny
  cordon flows query --addr 10.0.2.0/24 --port 5432 --json
  cordon flows query --vendor 'Mailer Inc' --output csv > mailer.csv
  cordon flows query --group user-db --output ocsf
  cordon flows query --lake /data/lake --since 90d --src 10.0.4.10 --json

With --lake, flows that started before the store's oldest one come from the
lake (files skipped by their time range, row groups by statistics and, for
one address, by bloom filters; from S3 only those are fetched), the rest
from the store.")]
    Query(Box<QueryArgs>),
    /// Group-to-group edges with flows, bytes and verdicts.
    #[command(after_help = "EXAMPLES:
  cordon flows topology
  cordon flows topology --since 24h --output dot | dot -Tsvg > topology.svg")]
    Topology(TopologyArgs),
    /// What would break if this policy were enforced: stored flows it denies.
    #[command(after_help = "EXAMPLES:
  cordon flows audit --policy examples/acme-prod.yaml
  cordon flows audit --policy new.yaml --since 7d --json")]
    Audit(AuditArgs),
    /// Delete stored flows older than a retention period.
    #[command(after_help = "EXAMPLES:
  cordon flows prune --older-than 30d
  cordon flows prune --older-than 2026-01-01T00:00:00Z --store /var/lib/cordon
  cordon flows prune --older-than 30d --lake s3://acme-security-lake/cordon --region eu-west-1")]
    Prune(PruneArgs),
}

/// `cordon flows prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Delete flows that started before this: a duration back from now
    /// (30d, 12h), RFC 3339, or epoch seconds.
    #[arg(long, value_name = "TIME")]
    pub older_than: String,
    /// Write what the lake (a folder or `s3://BUCKET/PREFIX` that `--lake`
    /// or `cordon lake export` fills) does not hold yet before deleting,
    /// so the flows stay queryable with `flows query --lake`.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub lake: Option<String>,
    #[command(flatten)]
    pub s3: lake::S3Args,
    #[command(flatten)]
    pub partition: lake::PartitionArgs,
}

/// Time range and address filters shared by flow commands.
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// From: RFC 3339, epoch seconds, or a duration back from now (24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until: RFC 3339, epoch seconds, or a duration back from now.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// Output formats for `flows query`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QueryOutput {
    /// A table for people.
    Table,
    /// One JSON object per flow, per line.
    Json,
    /// CSV with a header row.
    Csv,
    /// One OCSF Network Activity (4001) event per line.
    Ocsf,
}

/// `cordon flows query`
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Source or destination address or CIDR.
    #[arg(long, value_name = "CIDR")]
    pub addr: Option<String>,
    /// Source address or CIDR.
    #[arg(long, value_name = "CIDR")]
    pub src: Option<String>,
    /// Destination address or CIDR.
    #[arg(long, value_name = "CIDR")]
    pub dst: Option<String>,
    /// Source or destination group.
    #[arg(long)]
    pub group: Option<String>,
    /// Destination port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Protocol name or number (tcp, udp, icmp, 47).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Verdict: allow, deny or would-deny.
    #[arg(long)]
    pub verdict: Option<String>,
    /// Vendor name.
    #[arg(long)]
    pub vendor: Option<String>,
    /// At most this many flows.
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
    /// Also read this lake (a folder or `s3://BUCKET/PREFIX` written by
    /// `cordon lake export` or `--lake`) for the time before the store's
    /// oldest flow.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub lake: Option<String>,
    #[command(flatten)]
    pub s3: lake::S3Args,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryOutput::Table)]
    pub output: QueryOutput,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
}

/// `cordon audit`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Stored cloud audit events matching filters, as a table, JSON or OCSF.
    #[command(
        after_help = "Audit logs are stored by `cordon ingest` (CloudTrail files, GCP Cloud Audit
Logs exports, Azure Activity and Entra ID logs, told apart from flow logs by
their content).

EXAMPLES:
  cordon ingest --store /var/lib/cordon cloudtrail/ vpc-flow-logs/
  cordon audit query --since 24h --principal vendor-mailer
  cordon audit query --action s3:GetObject --json
  cordon audit query --failed --output ocsf > failures.ocsf.jsonl"
    )]
    Query(AuditQueryArgs),
}

/// Output formats for `audit query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// A table for people.
    Table,
    /// One JSON object (the normalised event) per line.
    Json,
    /// One OCSF 1.3.0 event per line: API Activity (6003), or
    /// Authentication (3002) for sign-ins.
    Ocsf,
}

/// `cordon audit query`
#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Cloud: aws, gcp or azure.
    #[arg(long)]
    pub cloud: Option<String>,
    /// Account, project or subscription.
    #[arg(long)]
    pub account: Option<String>,
    /// Principals whose id (ARN, email, object id) contains this.
    #[arg(long)]
    pub principal: Option<String>,
    /// Actions (`service:operation`) containing this (`s3:GetObject`, `Delete`).
    #[arg(long)]
    pub action: Option<String>,
    /// The source as recorded (an address, or a service name).
    #[arg(long)]
    pub source: Option<String>,
    /// Failed calls only.
    #[arg(long)]
    pub failed: bool,
    /// At most this many events.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
}

/// Output formats for `flows topology`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TopologyOutput {
    /// A table for people.
    Table,
    /// A JSON array of edges.
    Json,
    /// Graphviz DOT.
    Dot,
}

/// `cordon flows topology`
#[derive(Debug, Args)]
pub struct TopologyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TopologyOutput::Table)]
    pub output: TopologyOutput,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
}

/// `cordon flows audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// The policy to try.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the policy would deny any stored flow.
    #[arg(long)]
    pub fail_on_deny: bool,
}

/// `cordon policy recommend`
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Recommend from stored flows (the only source for now).
    #[arg(long, required = true)]
    pub from_flows: bool,
    /// Policy whose groups and inventory name the traffic.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Name of the proposed policy.
    #[arg(long, default_value = "recommended")]
    pub name: String,
}

/// `cordon collect`
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// UDP address to listen on.
    #[arg(long, default_value = "127.0.0.1:2055", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Policy for enrichment and verdicts.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Commit to the store at least this often, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub flush_ms: u64,
    #[command(flatten)]
    pub lake: LakeSinkArgs,
    /// Print the final totals as JSON.
    #[arg(long)]
    pub json: bool,
}
