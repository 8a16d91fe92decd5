//! Detection in cloud audit events: what a cloud identity did that an
//! intruder does. Each rule reads one normalised [`AuditEvent`] (and, for
//! sign-ins, the ones before it from the same identity or address):
//!
//! - **defences impaired** (T1562.008, T1562.007): trails stopped or
//!   deleted, event selectors narrowed, flow logs, DNS query logs,
//!   GuardDuty, Config, Macie or Security Hub switched off, findings
//!   suppressed, bucket logging, versioning or the public access block
//!   removed, deletion protection off, a firewall opened to
//!   the whole Internet on an administration or database port, an account
//!   leaving its organisation; log sinks deleted and flow logs disabled
//!   (GCP); diagnostic settings and alerting deleted (Azure);
//! - **data shared** (T1537): a snapshot, image or database snapshot
//!   shared with another account or everyone, a bucket policy, ACL or
//!   replication that opens a bucket to another account or the public, any
//!   other resource policy (keys, queues, secrets, repositories, domains)
//!   opened to another account or to `*` without a condition holding it
//!   to the organisation, an IAM binding to `allUsers` (GCP);
//! - **storage exposed** (T1530, T1619, T1537, T1565): storage that
//!   served a request carrying no credentials, or an identity of another
//!   account no group names;
//! - **persistence** (T1098): keys, console passwords or SSH keys created
//!   for another identity, administrator policies attached, role trust
//!   opened to another account (also T1199: a trusted relationship the
//!   attacker controls), functions opened to other accounts, federation
//!   tokens and Roles Anywhere trust anchors; service-account keys and
//!   token-creator grants (GCP); credentials added to service principals
//!   and elevated access (Azure);
//! - **bulk reads** (T1530, T1555.006, T1552): one identity reading many
//!   secrets or parameters, instance passwords or user data, or (above
//!   its own busiest earlier window) many objects or bytes of storage,
//!   within ten minutes;
//! - **account compromise** (T1078.004, T1586.003, T1110): console
//!   sign-ins without MFA, sign-ins flagged suspicious by the provider, a
//!   run of failed sign-ins followed by a success from the same identity
//!   or address, and an identity (an assumed role by its role) used from
//!   an Internet network it never used in the day it was watched before:
//!   `medium` for machine identities, `low` for people, plus T1199 when
//!   the identity belongs to another account (a third party's role).
//!
//! Rules judge what a call does, never which tool made it: user agents and
//! names given by attack tools are not read. A call that failed is an
//! attempt the cloud refused: `low`. Everything planted or opened is
//! `high` at most alone; the incident joins it with the rest of the path.

use cordon_audit::{AuditEvent, Cloud};
use cordon_core::FindingKind;
use serde_json::Value;

mod changes;

use crate::bounded::{Aged, Bounded};
use crate::detectors::{calibrate, fact};
use crate::finding::{Entity, Finding, Severity};

/// Failed sign-ins that make a guessing run.
const FAILED_RUN: usize = 5;
/// How long a run of failed sign-ins counts.
const FAILED_WINDOW_MS: i64 = 30 * 60_000;
/// Identities and addresses whose sign-ins are remembered.
const MAX_SIGNERS: usize = 65_536;
/// The window bulk reads are counted in.
const READ_WINDOW_MS: i64 = 10 * 60_000;
/// A day, in milliseconds: "once a day" counts days since the epoch (UTC).
const DAY_MS: i64 = 24 * 3_600_000;
/// Distinct resources remembered per window.
const MAX_DISTINCT: usize = 4096;

/// Severity scores for the rules.
const HIGH: f64 = 75.0;
const MEDIUM: f64 = 55.0;
const LOW: f64 = 30.0;

/// The score a rule gives a finding it caps at `severity`.
fn score_of(severity: Severity) -> f64 {
    match severity {
        Severity::Critical | Severity::High => HIGH,
        Severity::Medium => MEDIUM,
        Severity::Low => LOW,
    }
}

struct SignIns {
    failures: Vec<i64>,
    last_ms: i64,
    reported_run: bool,
}

impl Aged for SignIns {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// How long an identity is watched before a new network is news.
const IDENTITY_LEARN_MS: i64 = DAY_MS;
/// Networks remembered per identity.
const MAX_NETWORKS: usize = 32;
/// Blocks of networks (see [`block`]) after which an identity roams (a
/// new network is not news).
const ROAMING: usize = 3;

/// The networks and clients one identity was used from.
struct Identity {
    first_ms: i64,
    last_ms: i64,
    nets: Vec<String>,
    /// Client families (`aws-sdk-java`, `aws-cli`, `Boto3`...).
    agents: Vec<String>,
}

impl Identity {
    /// An identity first seen at `t`.
    fn new(t: i64) -> Identity {
        Identity {
            first_ms: t,
            last_ms: t,
            nets: Vec::new(),
            agents: Vec::new(),
        }
    }

    /// Seen again at `t` (events come roughly in time order).
    fn seen_at(&mut self, t: i64) {
        self.first_ms = self.first_ms.min(t);
        self.last_ms = self.last_ms.max(t);
    }
}

/// Client families remembered per identity.
const MAX_AGENTS: usize = 16;

/// A user agent's family: its first product token without the version
/// (`aws-sdk-java/2.20 Linux/5.10` → `aws-sdk-java`); `None` when none
/// is recorded or a cloud service made the call.
fn agent_family(ua: &str) -> Option<&str> {
    let token = ua.split_whitespace().next()?;
    let family = token
        .split('/')
        .next()
        .unwrap_or(token)
        .trim_matches(['[', ']', '"']);
    (!family.is_empty() && !family.ends_with(".amazonaws.com") && family.len() <= 64)
        .then_some(family)
}

impl Aged for Identity {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The identity behind a call: an assumed role by its role (sessions come
/// and go), anything else by its id.
fn identity(e: &AuditEvent) -> Option<String> {
    let p = &e.principal;
    let id = p.role.clone().or_else(|| {
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION → the role.
        p.id.split_once(":assumed-role/").map(|(head, rest)| {
            format!(
                "{head}:assumed-role/{}",
                rest.split('/').next().unwrap_or(rest)
            )
        })
    });
    let id = id.unwrap_or_else(|| p.id.clone());
    (!id.is_empty()).then_some(id)
}

/// The network of an address: its /24 (IPv4) or /48 (IPv6).
fn network(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The block a network (as [`network`] writes it) belongs to: its first
/// two octets (IPv4) or groups (IPv6).
fn block(net: &str) -> &str {
    let sep = if net.contains(':') { ':' } else { '.' };
    let mut cut = net.len();
    let mut seen = 0;
    for (i, c) in net.char_indices() {
        if c == sep {
            seen += 1;
            if seen == 2 {
                cut = i;
                break;
            }
        }
    }
    &net[..cut]
}

/// What kind of bulk read a call is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Reads {
    /// Secrets and secure parameters.
    Secrets,
    /// Instance passwords and user data.
    InstanceSecrets,
    /// Objects of storage.
    Storage,
    /// Objects of storage deleted.
    Deletes,
    /// Objects of storage written with keys the caller provides (the cloud
    /// keeps no copy: without the caller, nobody reads them again).
    CustomerKeys,
    /// Descriptions of the network and machines: security groups,
    /// addresses, interfaces, instances.
    Layout,
}

impl Reads {
    /// The kind of read `e` is, and the resources it reads.
    fn of(e: &AuditEvent) -> Option<(Reads, Vec<String>)> {
        let p = |k: &str| {
            e.detail_str(&format!("requestParameters/{k}"))
                .map(str::to_string)
        };
        let list = |k: &str| -> Vec<String> {
            e.detail_at(&format!("requestParameters/{k}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let one = |v: Option<String>| v.into_iter().collect::<Vec<_>>();
        Some(match (e.cloud, e.service.as_str(), e.action.as_str()) {
            (Cloud::Aws, "secretsmanager", "GetSecretValue") => {
                (Reads::Secrets, one(p("secretId")))
            }
            (Cloud::Aws, "secretsmanager", "BatchGetSecretValue") => {
                let mut ids = list("secretIdList");
                if ids.is_empty() {
                    // Filters: the answer names the secrets.
                    ids = e
                        .detail_at("responseElements/secretValues")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.get("name").and_then(Value::as_str))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                }
                (Reads::Secrets, ids)
            }
            (Cloud::Aws, "ssm", "GetParameter") => (Reads::Secrets, one(p("name"))),
            (Cloud::Aws, "ssm", "GetParameters") => (Reads::Secrets, list("names")),
            (Cloud::Aws, "ssm", "GetParametersByPath") => (Reads::Secrets, one(p("path"))),
            (Cloud::Aws, "ec2", "GetPasswordData") => {
                (Reads::InstanceSecrets, one(p("instanceId")))
            }
            (Cloud::Aws, "ec2", "DescribeInstanceAttribute")
                if p("attribute").as_deref() == Some("userData") =>
            {
                (Reads::InstanceSecrets, one(p("instanceId")))
            }
            (Cloud::Aws, "s3", "GetObject") => {
                // The objects (the record also names their bucket).
                let objects: Vec<String> = e
                    .resources
                    .iter()
                    .filter(|r| {
                        r.strip_prefix("arn:aws:s3:::")
                            .is_some_and(|x| x.contains('/'))
                    })
                    .cloned()
                    .collect();
                let objects = if objects.is_empty() {
                    e.resources.clone()
                } else {
                    objects
                };
                (Reads::Storage, objects)
            }
            (Cloud::Gcp, _, "storage.objects.get") => (Reads::Storage, e.resources.clone()),
            (Cloud::Aws, "s3", "DeleteObject" | "DeleteObjects") => {
                (Reads::Deletes, e.resources.clone())
            }
            (Cloud::Gcp, _, "storage.objects.delete") => (Reads::Deletes, e.resources.clone()),
            (Cloud::Azure, _, a) if a.eq_ignore_ascii_case("DeleteBlob") => {
                (Reads::Deletes, e.resources.clone())
            }
            (Cloud::Azure, _, a) if azure_layout_read(a) => (Reads::Layout, e.resources.clone()),
            (Cloud::Aws, "ec2", a) if a.starts_with("Describe") => {
                (Reads::Layout, e.resources.clone())
            }
            (
                Cloud::Aws,
                "s3",
                "PutObject"
                | "CopyObject"
                | "CreateMultipartUpload"
                | "UploadPart"
                | "UploadPartCopy",
            ) if e
                .detail_at("requestParameters/x-amz-server-side-encryption-customer-algorithm")
                .is_some() =>
            {
                (Reads::CustomerKeys, e.resources.clone())
            }
            (Cloud::Azure, _, a) if a.eq_ignore_ascii_case("GetBlob") => {
                (Reads::Storage, e.resources.clone())
            }
            _ => return None,
        })
    }

    fn technique(self) -> &'static str {
        match self {
            Reads::Secrets => "T1555.006",
            Reads::InstanceSecrets => "T1552",
            Reads::Storage => "T1530",
            Reads::Deletes => "T1485",
            Reads::CustomerKeys => "T1486",
            Reads::Layout => "T1580",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Reads::Secrets => "secrets or secure parameters",
            Reads::InstanceSecrets => "instance passwords or user data",
            Reads::Storage | Reads::Deletes | Reads::CustomerKeys => "stored objects",
            Reads::Layout => "network and machine descriptions",
        }
    }

    /// What the identity did to them.
    fn verb(self) -> &'static str {
        match self {
            Reads::Deletes => "deleted",
            Reads::CustomerKeys => "wrote, with keys only the caller holds,",
            _ => "read",
        }
    }

    /// Whether the calls count rather than the resources: deleting or
    /// re-encrypting the same object again is as telling as another one.
    fn counts_calls(self) -> bool {
        matches!(self, Reads::Deletes | Reads::CustomerKeys | Reads::Layout)
    }
}

/// One identity's reads of one kind in the current window.
struct ReadWindow {
    start_ms: i64,
    last_ms: i64,
    calls: u64,
    distinct: rustc_hash::FxHashSet<String>,
    bytes: u64,
    /// The busiest earlier window: calls and bytes.
    usual_calls: u64,
    usual_bytes: u64,
    windows: u64,
    /// Resources and bytes when last reported (0: not yet): the finding
    /// is told again as the read doubles.
    reported: (u64, u64),
    samples: Vec<Value>,
}

impl Aged for ReadWindow {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// One identity's calls of one sort (refused, reads) in the current
/// [`READ_WINDOW_MS`] window: how many, and the APIs among them.
struct ApiWindow {
    start_ms: i64,
    last_ms: i64,
    calls: u64,
    /// `service:action`, each once, at most [`APIS_KEPT`] (the counts go
    /// on).
    apis: Vec<String>,
    /// The window's size, as its rule measures it, when last told (0: not
    /// yet).
    reported: u64,
}

/// The APIs (and services) a window keeps to show.
const APIS_KEPT: usize = 64;

impl ApiWindow {
    fn new(t: i64) -> ApiWindow {
        ApiWindow {
            start_ms: t,
            last_ms: t,
            calls: 0,
            apis: Vec::new(),
            reported: 0,
        }
    }

    /// Count `e` in, after starting a new window when the current one is
    /// over; whether it started one.
    fn count(&mut self, e: &AuditEvent) -> bool {
        let fresh = e.time_ms >= self.start_ms + READ_WINDOW_MS;
        if fresh {
            *self = ApiWindow::new(e.time_ms);
        }
        self.last_ms = self.last_ms.max(e.time_ms);
        self.calls += 1;
        let api = format!("{}:{}", e.service, e.action);
        if !self.apis.contains(&api) && self.apis.len() < APIS_KEPT {
            self.apis.push(api);
        }
        fresh
    }

    /// The first `n` APIs, to show in a summary.
    fn shown(&self, n: usize) -> String {
        let first = self.apis.iter().take(n).cloned().collect::<Vec<_>>();
        format!(
            "{}{}",
            first.join(", "),
            if self.apis.len() > n { ", …" } else { "" }
        )
    }
}

impl Aged for ApiWindow {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// Refused calls that make a run worth telling.
const REFUSED_RUN: u64 = 15;
/// Distinct APIs among them that make it probing rather than one
/// misconfigured client retrying.
const PROBED_APIS: usize = 5;

/// Distinct read APIs, and the services they span, that make one
/// identity's reads within [`READ_WINDOW_MS`] a sweep of the account
/// rather than a person looking at a page or a workload doing its job.
const SWEEP_APIS: usize = 12;
const SWEEP_SERVICES: usize = 4;

/// One identity's successful reads in the current window (its size: the
/// distinct APIs), the services they span, and the day it was first told
/// sweeping.
struct Sweep {
    window: ApiWindow,
    services: Vec<String>,
    told_day: Option<i64>,
}

impl Aged for Sweep {
    fn last_ms(&self) -> i64 {
        self.window.last_ms
    }
}
/// How long a run of second-factor failures counts.
const SECOND_FACTOR_WINDOW_MS: i64 = 15 * 60_000;
/// How long one sign-in session's networks are compared.
const SESSION_WINDOW_MS: i64 = 60 * 60_000;
/// Failed sign-ins that are a guessing run even before any succeeds.
const FAILED_ALONE: usize = 10;
/// ... and a determined one.
const FAILED_MANY: usize = 30;

/// The network blocks one instance's role credentials (or one sign-in
/// session) were used from, and when last.
struct Instance {
    blocks: Vec<String>,
    last_ms: i64,
    reported_two: bool,
}

impl Aged for Instance {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

impl Instance {
    /// Note network block `blk`; whether it is one not seen before (at
    /// most eight are kept).
    fn saw(&mut self, blk: String) -> bool {
        let new = !self.blocks.contains(&blk);
        if new && self.blocks.len() < 8 {
            self.blocks.push(blk);
        }
        new
    }
}

/// Whether `error` says the caller was not allowed.
fn refused(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    [
        "denied",
        "unauthorized",
        "forbidden",
        "authorizationfailed",
        "not authorized",
    ]
    .iter()
    .any(|x| e.contains(x))
}

/// The instance an assumed role's session belongs to, when the session is
/// an instance profile's (its name is the instance id: `i-0abc…`).
fn instance_session(e: &AuditEvent) -> Option<&str> {
    if e.principal.kind != "AssumedRole" {
        return None;
    }
    let session = e
        .principal
        .session
        .as_deref()
        .or_else(|| e.principal.id.rsplit('/').next())?;
    let hex = session.strip_prefix("i-")?;
    (matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(session)
}

/// What a vendor identity (one a group names) was seen doing.
struct VendorIdentity {
    /// When, from which networks and through which clients.
    seen: Identity,
    apis: rustc_hash::FxHashSet<String>,
    /// Hours of the day (UTC) it was active in, a bit each.
    hours: u32,
    /// APIs first called after its baseline formed.
    new_apis: Vec<String>,
    /// Networks outside its declared ranges already reported.
    reported_outside: Vec<String>,
}

impl Aged for VendorIdentity {
    fn last_ms(&self) -> i64 {
        self.seen.last_ms
    }
}

/// The audit-event detectors.
pub(crate) struct AuditDetectors {
    sign_ins: Bounded<String, SignIns>,
    reads: Bounded<(String, Reads), ReadWindow>,
    identities: Bounded<String, Identity>,
    vendors: Bounded<String, VendorIdentity>,
    refused: Bounded<String, ApiWindow>,
    sweeps: Bounded<String, Sweep>,
    second_factors: Bounded<String, SignIns>,
    instances: Bounded<String, Instance>,
    sessions: Bounded<String, Instance>,
    events: u64,
}

impl AuditDetectors {
    pub(crate) fn new() -> Self {
        AuditDetectors {
            sign_ins: Bounded::new(MAX_SIGNERS),
            reads: Bounded::new(MAX_SIGNERS),
            identities: Bounded::new(MAX_SIGNERS),
            vendors: Bounded::new(MAX_SIGNERS),
            refused: Bounded::new(MAX_SIGNERS),
            sweeps: Bounded::new(MAX_SIGNERS),
            second_factors: Bounded::new(MAX_SIGNERS),
            instances: Bounded::new(MAX_SIGNERS),
            sessions: Bounded::new(MAX_SIGNERS),
            events: 0,
        }
    }

    /// Events examined.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Keys held.
    pub(crate) fn state(&self) -> usize {
        self.sign_ins.len()
            + self.reads.len()
            + self.identities.len()
            + self.vendors.len()
            + self.refused.len()
            + self.sweeps.len()
            + self.second_factors.len()
            + self.instances.len()
            + self.sessions.len()
    }

    /// Keys evicted.
    pub(crate) fn evicted(&self) -> u64 {
        self.sign_ins.evicted()
            + self.reads.evicted()
            + self.identities.evicted()
            + self.vendors.evicted()
            + self.refused.evicted()
            + self.sweeps.evicted()
            + self.second_factors.evicted()
            + self.instances.evicted()
            + self.sessions.evicted()
    }

    /// Look at one event.
    pub(crate) fn observe(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        self.events += 1;
        let found = logging(e)
            .or_else(|| moved_away(e))
            .or_else(|| exposed_storage(e))
            .or_else(|| shared(e))
            .or_else(|| persistence(e))
            .or_else(|| unprotected_sign_in(e))
            .or_else(|| changes::changed(e));
        if let Some(mut f) = found {
            if !e.success {
                attempt(&mut f, e);
            }
            out.push(f);
        }
        self.sign_in_run(e, out);
        self.second_factor(e, out);
        self.bulk_read(e, out);
        self.refusals(e, out);
        self.sweep(e, out);
        self.instance_credentials(e, out);
        self.session_moved(e, out);
        if e.policy.as_deref().is_some_and(|c| c.vendor.is_some()) {
            self.vendor_identity(e, out);
        } else {
            self.new_network(e, out);
            self.new_agent(e, out);
        }
    }

    /// A vendor's identity (one its group names) used from outside the
    /// address ranges the vendor declares, from a network it never used,
    /// at an hour or calling an API its baseline never saw (T1199,
    /// T1078.004).
    fn vendor_identity(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(ctx) = e.policy.as_deref() else {
            return;
        };
        let vendor = ctx.vendor.clone().unwrap_or_default();
        let Some(who) = identity(e) else {
            return;
        };
        let internet = e.source_ip.filter(|ip| cordon_core::ip::is_internet(*ip));
        let api = format!("{}:{}", e.service, e.action);
        let hour = ((e.time_ms.rem_euclid(DAY_MS)) / 3_600_000) as u32;
        let v = self.vendors.entry(who.clone(), || VendorIdentity {
            seen: Identity::new(e.time_ms),
            apis: rustc_hash::FxHashSet::default(),
            hours: 0,
            new_apis: Vec::new(),
            reported_outside: Vec::new(),
        });
        v.seen.seen_at(e.time_ms);
        let learning = e.time_ms - v.seen.first_ms < IDENTITY_LEARN_MS;
        let days = (e.time_ms - v.seen.first_ms) as f64 / DAY_MS as f64;
        // Outside the declared ranges: the policy says where the vendor
        // comes from, so this needs no baseline.
        if let (Some(ip), Some(true)) = (internet, ctx.outside_declared(e.source_ip)) {
            let net = network(ip);
            if !v.reported_outside.contains(&net) && v.reported_outside.len() < MAX_NETWORKS {
                v.reported_outside.push(net.clone());
                let mut f = audit_finding(
                    FindingKind::CloudAccountCompromise,
                    &format!("vendor-outside|{who}|{net}"),
                    e,
                    HIGH,
                    format!(
                        "{vendor}'s identity {who} used from {ip}, outside the ranges the policy declares for {vendor} ({}): {} {}",
                        ctx.declared
                            .iter()
                            .take(4)
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        api,
                        if e.success { "succeeded" } else { "refused" }
                    ),
                );
                f.techniques = vec!["T1199".into(), "T1078.004".into()];
                fact(&mut f, "identity", who.as_str());
                fact(&mut f, "network", net.as_str());
                fact(
                    &mut f,
                    "shape",
                    "vendor identity outside its declared ranges",
                );
                calibrate(
                    &mut f,
                    (
                        Severity::High,
                        "a vendor's credentials used from outside the address ranges the policy declares for it: a trusted relationship used by someone else".into(),
                    ),
                );
                out.push(f);
            }
        }
        // New networks, hours and APIs, once the identity has a baseline.
        let net = internet.map(network);
        let new_net = net.as_ref().is_some_and(|n| !v.seen.nets.contains(n));
        let new_hour = v.hours & (1 << hour) == 0;
        let new_api = !v.apis.contains(&api);
        if let Some(n) = &net
            && new_net
            && v.seen.nets.len() < MAX_NETWORKS
        {
            v.seen.nets.push(n.clone());
        }
        v.hours |= 1 << hour;
        // A client family it never used (not the first one it is seen with).
        let family = agent_family(&e.user_agent).filter(|f| !v.seen.agents.iter().any(|a| a == f));
        let new_agent = family.filter(|_| !v.seen.agents.is_empty());
        if let Some(f) = family
            && v.seen.agents.len() < MAX_AGENTS
        {
            v.seen.agents.push(f.to_string());
        }
        if new_api && v.apis.len() < MAX_DISTINCT {
            v.apis.insert(api.clone());
        }
        if learning {
            return;
        }
        if new_api && v.new_apis.len() < 32 {
            v.new_apis.push(api.clone());
        }
        let mut what = Vec::new();
        if new_net && ctx.outside_declared(e.source_ip) != Some(true) {
            what.push(format!(
                "from a new network ({})",
                net.as_deref().unwrap_or("-")
            ));
        }
        if new_hour {
            what.push(format!(
                "at {hour:02}:00 UTC, an hour it was never active in"
            ));
        }
        if let Some(f) = new_agent {
            what.push(format!("through {f}, a client it never used"));
        }
        if new_api {
            let n = v.new_apis.len();
            what.push(if n == 1 {
                format!("calling {api}, an API it never called")
            } else {
                format!(
                    "calling {n} APIs it never called ({}{})",
                    v.new_apis[n.saturating_sub(6)..].join(", "),
                    if n > 6 { ", …" } else { "" }
                )
            });
        }
        if what.is_empty() {
            return;
        }
        let mut f = audit_finding(
            FindingKind::CloudAccountCompromise,
            &format!("vendor-drift|{who}|{}", e.time_ms / 3_600_000),
            e,
            LOW,
            format!(
                "{vendor}'s identity {who} acted outside its {days:.1}-day baseline: {}",
                what.join("; ")
            ),
        );
        f.techniques = vec!["T1199".into(), "T1078.004".into()];
        fact(&mut f, "identity", who.as_str());
        fact(&mut f, "new_apis", v.new_apis.clone());
        fact(&mut f, "shape", "vendor identity off its baseline");
        calibrate(
            &mut f,
            (
                Severity::Low,
                "a vendor identity doing something its baseline never showed; low alone, the incident says more".into(),
            ),
        );
        out.push(f);
    }

    /// What is known of identity `who`, seen again at `t`.
    fn identity_seen(&mut self, who: &str, t: i64) -> &mut Identity {
        let id = self.identities.entry(who.to_string(), || Identity::new(t));
        id.seen_at(t);
        id
    }

    /// An identity used from an Internet network it never used in the
    /// day it was watched before (see [`Identity`]).
    fn new_network(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(ip) = e.source_ip.filter(|ip| cordon_core::ip::is_internet(*ip)) else {
            return;
        };
        let Some(who) = identity(e) else {
            return;
        };
        let net = network(ip);
        let id = self.identity_seen(&who, e.time_ms);
        if id.nets.contains(&net) {
            return;
        }
        let learning = e.time_ms - id.first_ms < IDENTITY_LEARN_MS;
        let known = id.nets.len();
        // A neighbour of a known network (the same /16, /32 for IPv6: the
        // same provider's pool or ISP block) is where it already runs.
        let nearby = id.nets.iter().any(|n| block(n) == block(&net));
        let mut blocks: Vec<&str> = id.nets.iter().map(|n| block(n)).collect();
        blocks.sort_unstable();
        blocks.dedup();
        let places = blocks.len();
        if id.nets.len() < MAX_NETWORKS {
            id.nets.push(net.clone());
        }
        // Roaming identities (CI runners, people on the move) already came
        // from several places: one more is not news.
        if learning || known == 0 || places >= ROAMING || nearby {
            return;
        }
        // People sign in from home, the office and the road; machine
        // identities (roles and keys used by code) keep their networks.
        let human = e.is_sign_in()
            || e.user_agent.contains("Mozilla")
            || e.principal.id.contains("AWSReservedSSO");
        let foreign = e
            .principal
            .account
            .as_deref()
            .is_some_and(|a| !a.is_empty() && !e.account.is_empty() && a != e.account);
        let days = (e.time_ms - id.first_ms) as f64 / DAY_MS as f64;
        let mut f = audit_finding(
            FindingKind::CloudAccountCompromise,
            &format!("new-network|{who}|{net}"),
            e,
            MEDIUM,
            format!(
                "{who} used from {net}, a network it never used in {days:.1} days from {known} other network(s): {} from {}",
                e.action,
                from(e)
            ),
        );
        f.techniques = vec!["T1078.004".into()];
        if foreign {
            // Another account's identity in this one: a trusted
            // relationship, used from somewhere new.
            f.techniques.push("T1199".into());
        }
        fact(&mut f, "identity", who.as_str());
        fact(&mut f, "network", net.as_str());
        fact(&mut f, "known_networks", known);
        fact(&mut f, "shape", "new network");
        calibrate(
            &mut f,
            either(
                human,
                (
                    Severity::Low,
                    "a person's sign-in from a new network (people move); low unless something else corroborates it",
                ),
                (
                    Severity::Medium,
                    "a machine identity's credentials used from a network they never came from; medium alone",
                ),
            ),
        );
        out.push(f);
    }

    /// A machine identity used through a client (an SDK, a command line)
    /// it never used in the day it was watched before: `low`, as the
    /// same code rarely changes its client (T1078.004).
    fn new_agent(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(family) = agent_family(&e.user_agent) else {
            return;
        };
        let Some(who) = identity(e) else {
            return;
        };
        let id = self.identity_seen(&who, e.time_ms);
        if id.agents.iter().any(|a| a == family) {
            return;
        }
        let known = id.agents.clone();
        if id.agents.len() < MAX_AGENTS {
            id.agents.push(family.to_string());
        }
        let learning = e.time_ms - id.first_ms < IDENTITY_LEARN_MS;
        // People switch browsers and tools; several clients already is a
        // person or a shared identity.
        let human =
            e.is_sign_in() || family == "Mozilla" || e.principal.id.contains("AWSReservedSSO");
        if learning || known.is_empty() || known.len() >= ROAMING || human {
            return;
        }
        let mut f = audit_finding(
            FindingKind::CloudAccountCompromise,
            &format!("new-agent|{who}|{family}"),
            e,
            LOW,
            format!(
                "{who} used through {family}, a client it never used (it used {}): {} from {}",
                known.join(", "),
                e.action,
                from(e)
            ),
        );
        f.techniques = vec!["T1078.004".into()];
        fact(&mut f, "identity", who.as_str());
        fact(&mut f, "client", family);
        fact(&mut f, "known_clients", known);
        fact(&mut f, "shape", "new client");
        calibrate(
            &mut f,
            (
                Severity::Low,
                "a machine identity's credentials used through a client its code never used; low alone".into(),
            ),
        );
        out.push(f);
    }

    /// Many secrets, instance secrets or objects read by one identity
    /// within [`READ_WINDOW_MS`].
    fn bulk_read(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        // A refused read read nothing: refusals are counted apart.
        if !e.success {
            return;
        }
        let Some((kind, resources)) = Reads::of(e) else {
            return;
        };
        // By identity: a role's sessions share one baseline.
        let key = (identity(e).unwrap_or_else(|| e.source.clone()), kind);
        let w = self.reads.entry(key.clone(), || ReadWindow {
            start_ms: e.time_ms,
            last_ms: e.time_ms,
            calls: 0,
            distinct: rustc_hash::FxHashSet::default(),
            bytes: 0,
            usual_calls: 0,
            usual_bytes: 0,
            windows: 0,
            reported: (0, 0),
            samples: Vec::new(),
        });
        if e.time_ms >= w.start_ms + READ_WINDOW_MS {
            w.usual_calls = w.usual_calls.max(w.calls);
            w.usual_bytes = w.usual_bytes.max(w.bytes);
            w.windows += 1;
            w.start_ms = e.time_ms;
            w.calls = 0;
            w.distinct.clear();
            w.bytes = 0;
            w.reported = (0, 0);
            w.samples.clear();
        }
        w.last_ms = w.last_ms.max(e.time_ms);
        // A batch read by filter names no secret in its request: it
        // reaches up to twenty.
        let batch =
            kind == Reads::Secrets && e.action == "BatchGetSecretValue" && resources.is_empty();
        w.calls += if batch {
            10
        } else {
            resources.len().max(1) as u64
        };
        w.bytes += e.bytes_out.unwrap_or(0);
        for r in resources {
            if w.distinct.len() < MAX_DISTINCT {
                w.distinct.insert(r);
            }
        }
        if w.samples.len() < 5 {
            w.samples.push(e.reference());
        }
        let distinct = w.distinct.len() as u64;
        const MB: u64 = 1024 * 1024;
        // Storage the policy says holds personal data counts sooner.
        let data: &[String] = e.policy.as_deref().map_or(&[], |c| c.data.as_slice());
        let personal = kind == Reads::Storage && !data.is_empty();
        let bulk = match kind {
            Reads::Secrets => distinct >= 5 || w.calls >= 10,
            // Many instances: the same one read again is a tool's
            // routine (its single read is told as a sensitive call).
            Reads::InstanceSecrets => distinct >= 5,
            // Applications read objects all day: bulk is well above the
            // identity's own busiest window, and large in itself (more
            // so with no history to compare with).
            Reads::Storage => {
                let (objects, bytes) = match (w.windows == 0, personal) {
                    (true, false) => (2000, 10_240 * MB),
                    (false, false) => (200, 1024 * MB),
                    (true, true) => (500, 1024 * MB),
                    (false, true) => (100, 256 * MB),
                };
                (distinct >= objects && w.calls > 4 * w.usual_calls)
                    || (w.bytes >= bytes && w.bytes > 4 * w.usual_bytes)
            }
            Reads::Deletes => w.calls >= 15 && w.calls > 4 * w.usual_calls,
            Reads::CustomerKeys => w.calls >= 20 && w.calls > 4 * w.usual_calls,
            Reads::Layout => w.calls >= 50 && w.calls > 4 * w.usual_calls,
        };
        let size = if kind.counts_calls() {
            w.calls
        } else {
            distinct
        };
        let grown = w.reported == (0, 0)
            || size >= 2 * w.reported.0.max(1)
            || (w.reported.1 > 0 && w.bytes >= 2 * w.reported.1);
        if !bulk || !grown {
            return;
        }
        w.reported = (size, w.bytes);
        // Deleting or re-encrypting: medium above the identity's own
        // earlier windows or when large; the first time it is seen, low.
        let firm = w.windows > 0 || w.calls >= 200;
        let (finding_kind, cap) = match kind {
            Reads::Deletes | Reads::CustomerKeys => (
                FindingKind::CloudDataDestroyed,
                either(
                    firm,
                    (
                        Severity::Medium,
                        "storage destroyed or made unreadable in bulk, well above the identity's own earlier windows; medium alone",
                    ),
                    (
                        Severity::Low,
                        "storage destroyed or made unreadable in bulk by an identity never seen doing it before; low alone, medium as it grows",
                    ),
                ),
            ),
            Reads::Layout => (
                FindingKind::CloudDiscovery,
                (
                    Severity::Low,
                    "the network's layout read in bulk: an inventory tool as often as an intruder mapping it; low".to_string(),
                ),
            ),
            _ if personal => (
                FindingKind::CloudBulkRead,
                (
                    Severity::High,
                    "personal data (as the policy classifies the storage) read in bulk".to_string(),
                ),
            ),
            _ => (
                FindingKind::CloudBulkRead,
                (
                    Severity::Medium,
                    "bulk reads alone (no policy says the identity may not read them); medium".to_string(),
                ),
            ),
        };
        let counted = if kind.counts_calls() {
            format!(
                "{} {} {} times ({distinct} distinct",
                kind.verb(),
                kind.what(),
                w.calls
            )
        } else {
            format!(
                "{} {distinct} {} ({} calls",
                kind.verb(),
                kind.what(),
                w.calls
            )
        };
        let mut f = audit_finding(
            finding_kind,
            &format!("bulk|{}|{:?}|{}", key.0, kind, w.start_ms),
            e,
            score_of(cap.0),
            format!(
                "{} {counted}{}) within {} min, from {}",
                who(e),
                if w.bytes > 0 {
                    format!(", {}", crate::finding::human_bytes(w.bytes))
                } else {
                    String::new()
                },
                READ_WINDOW_MS / 60_000,
                from(e)
            ),
        );
        f.first_ms = w.start_ms;
        f.techniques = vec![kind.technique().into()];
        fact(&mut f, "distinct_resources", distinct);
        fact(&mut f, "calls", w.calls);
        fact(&mut f, "bytes_out", w.bytes);
        fact(&mut f, "busiest_earlier_window_calls", w.usual_calls);
        fact(&mut f, "events", Value::Array(w.samples.clone()));
        if personal && finding_kind == FindingKind::CloudBulkRead {
            fact(&mut f, "data", data.to_vec());
            f.evidence.summary.push_str(&format!(
                "; the policy says it holds personal data ({})",
                data.join(", ")
            ));
        }
        calibrate(&mut f, cap);
        out.push(f);
    }

    /// A sign-in whose password passed and whose second factor failed:
    /// `low` once, `medium` twice within [`SECOND_FACTOR_WINDOW_MS`]
    /// (someone holds the password; T1621, T1110, T1078.004).
    fn second_factor(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        if !e.is_sign_in() || e.success || !second_factor_failed(e) {
            return;
        }
        let key = if e.principal.id.is_empty() {
            e.source.clone()
        } else {
            e.principal.id.clone()
        };
        let s = self.second_factors.entry(key.clone(), || SignIns {
            failures: Vec::new(),
            last_ms: e.time_ms,
            reported_run: false,
        });
        s.last_ms = s.last_ms.max(e.time_ms);
        s.failures
            .retain(|t| e.time_ms - t <= SECOND_FACTOR_WINDOW_MS);
        s.failures.push(e.time_ms);
        let n = s.failures.len();
        if n > 2 {
            s.failures.truncate(2);
            return;
        }
        let twice = n == 2;
        let cap = either(
            twice,
            (
                Severity::Medium,
                "a right password with second factors failing again: someone else holds the password",
            ),
            (
                Severity::Low,
                "one failed second factor: a slip, or someone else holding the password; low alone",
            ),
        );
        let mut f = audit_finding(
            FindingKind::CloudAccountCompromise,
            &format!(
                "second-factor|{key}|{n}|{}",
                s.failures[0] / SECOND_FACTOR_WINDOW_MS
            ),
            e,
            score_of(cap.0),
            format!(
                "the password of {} was accepted and the second factor failed{}, from {}",
                who(e),
                if twice {
                    format!(" twice within {} min", SECOND_FACTOR_WINDOW_MS / 60_000)
                } else {
                    String::new()
                },
                from(e)
            ),
        );
        f.first_ms = s.failures[0];
        f.techniques = vec!["T1621".into(), "T1110".into(), "T1078.004".into()];
        fact(&mut f, "shape", "second factor failed");
        calibrate(&mut f, cap);
        out.push(f);
    }

    /// One identity reading [`SWEEP_APIS`] distinct APIs across
    /// [`SWEEP_SERVICES`] services or more within [`READ_WINDOW_MS`]: the
    /// account mapped (T1580, T1526, T1087.004). `low`, told the first day
    /// an identity does it and again that day only as the sweep doubles;
    /// an identity that swept on an earlier day is an inventory tool at
    /// work. Calls the cloud makes on someone's behalf (no address) and
    /// calls without credentials are left to their own rules.
    fn sweep(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        if !e.success
            || e.is_sign_in()
            || e.source_ip.is_none()
            || e.principal.kind == "AWSService"
            || e.unauthenticated()
            || !e.reads_only()
        {
            return;
        }
        let Some(who_key) = identity(e) else {
            return;
        };
        let s = self.sweeps.entry(who_key.clone(), || Sweep {
            window: ApiWindow::new(e.time_ms),
            services: Vec::new(),
            told_day: None,
        });
        if s.window.count(e) {
            s.services.clear();
        }
        if !s.services.contains(&e.service) && s.services.len() < APIS_KEPT {
            s.services.push(e.service.clone());
        }
        let w = &mut s.window;
        if w.apis.len() < SWEEP_APIS || s.services.len() < SWEEP_SERVICES {
            return;
        }
        let day = e.time_ms.div_euclid(DAY_MS);
        match s.told_day {
            // Its habit: an inventory or backup tool sweeps every day.
            Some(d) if d < day => return,
            // Told today in an earlier window.
            Some(_) if w.reported == 0 => return,
            _ => {}
        }
        let size = w.apis.len() as u64;
        if w.reported > 0 && size < 2 * w.reported {
            return;
        }
        w.reported = size;
        s.told_day = Some(day);
        let mut f = audit_finding(
            FindingKind::CloudDiscovery,
            &format!("sweep|{who_key}|{}", w.start_ms),
            e,
            LOW,
            format!(
                "{} distinct read APIs{} across {} services by {} within {} min ({}), from {}",
                w.apis.len(),
                if w.apis.len() >= APIS_KEPT {
                    " or more"
                } else {
                    ""
                },
                s.services.len(),
                who(e),
                READ_WINDOW_MS / 60_000,
                w.shown(8),
                from(e)
            ),
        );
        f.first_ms = w.start_ms;
        f.techniques = vec!["T1580".into(), "T1526".into(), "T1087.004".into()];
        fact(&mut f, "read_calls", w.calls);
        fact(&mut f, "apis", w.apis.clone());
        fact(&mut f, "services", s.services.clone());
        fact(&mut f, "shape", "read sweep");
        calibrate(
            &mut f,
            (
                Severity::Low,
                "many services read within minutes: an inventory tool on its first day as often as an intruder mapping the account; low".to_string(),
            ),
        );
        out.push(f);
    }

    /// Calls refused to one identity within [`READ_WINDOW_MS`]: `low` for
    /// a run of them, `medium` when they span [`PROBED_APIS`] APIs or more
    /// (an identity finding out what it may do; T1580, T1087.004).
    fn refusals(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        if e.success || e.is_sign_in() || !e.error.as_deref().is_some_and(refused) {
            return;
        }
        let who_key = identity(e).unwrap_or_else(|| e.source.clone());
        let r = self
            .refused
            .entry(who_key.clone(), || ApiWindow::new(e.time_ms));
        r.count(e);
        if r.calls < REFUSED_RUN || (r.reported > 0 && r.calls < 2 * r.reported) {
            return;
        }
        r.reported = r.calls;
        let probing = r.apis.len() >= PROBED_APIS;
        let cap = either(
            probing,
            (
                Severity::Medium,
                "calls refused across many APIs: an identity probing what it may do; medium",
            ),
            (
                Severity::Low,
                "one client refused again and again: a misconfiguration as often as an intruder; low",
            ),
        );
        let mut f = audit_finding(
            FindingKind::CloudDiscovery,
            &format!("refused|{who_key}|{}", r.start_ms),
            e,
            score_of(cap.0),
            format!(
                "{} calls refused to {} within {} min, across {} API(s) ({}), from {}",
                r.calls,
                who(e),
                READ_WINDOW_MS / 60_000,
                r.apis.len(),
                r.shown(6),
                from(e)
            ),
        );
        f.first_ms = r.start_ms;
        f.techniques = vec!["T1580".into(), "T1087.004".into()];
        fact(&mut f, "refused_calls", r.calls);
        fact(&mut f, "apis", r.apis.clone());
        fact(&mut f, "shape", "refused calls");
        calibrate(&mut f, cap);
        out.push(f);
    }

    /// An instance profile's credentials used from the Internet: `low`,
    /// told once a day per instance (calls from inside the cloud come from
    /// the instance or its endpoint); `high` when one instance's
    /// credentials come from networks in two blocks (copied off the
    /// instance; T1552, T1078.004).
    fn instance_credentials(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(instance) = instance_session(e) else {
            return;
        };
        let Some(ip) = e.source_ip.filter(|ip| cordon_core::ip::is_internet(*ip)) else {
            return;
        };
        let net = network(ip);
        let blk = block(&net).to_string();
        let day = e.time_ms.div_euclid(DAY_MS);
        let role = identity(e).unwrap_or_default();
        let inst = self.instances.entry(instance.to_string(), || Instance {
            blocks: Vec::new(),
            last_ms: e.time_ms,
            reported_two: false,
        });
        let told_today = inst.last_ms.div_euclid(DAY_MS) == day && !inst.blocks.is_empty();
        inst.last_ms = inst.last_ms.max(e.time_ms);
        let new_block = inst.saw(blk);
        let two = inst.blocks.len() >= 2 && new_block && !inst.reported_two;
        if two {
            inst.reported_two = true;
        } else if told_today {
            return;
        }
        let mut f = if two {
            let mut f = audit_finding(
                FindingKind::CloudAccountCompromise,
                &format!("instance-two|{instance}"),
                e,
                HIGH,
                format!(
                    "the role credentials of instance {instance} ({role}) used from networks in {} blocks ({}): copied off the instance; now {} from {}",
                    inst.blocks.len(),
                    inst.blocks.join(", "),
                    e.action,
                    from(e)
                ),
            );
            calibrate(
                &mut f,
                (
                    Severity::High,
                    "one instance's credentials used from two places at once".into(),
                ),
            );
            f
        } else {
            let mut f = audit_finding(
                FindingKind::CloudAccountCompromise,
                &format!("instance-internet|{role}|{day}"),
                e,
                LOW,
                format!(
                    "the role credentials of instance {instance} ({role}) used from an Internet address: {} from {}",
                    e.action,
                    from(e)
                ),
            );
            calibrate(
                &mut f,
                (
                    Severity::Low,
                    "instances with public addresses call the cloud from them too; low, once a day per role".into(),
                ),
            );
            f
        };
        f.techniques = vec!["T1552".into(), "T1078.004".into()];
        fact(&mut f, "instance", instance);
        fact(&mut f, "networks", inst.blocks.clone());
        fact(&mut f, "shape", "instance credentials outside");
        out.push(f);
    }

    /// One Entra ID sign-in session used from networks in two /16 blocks
    /// within [`SESSION_WINDOW_MS`]: a session token replayed elsewhere
    /// (T1550.001), or a device changing network: `low`.
    fn session_moved(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        if e.cloud != Cloud::Azure || !e.is_sign_in() || !e.success {
            return;
        }
        let Some(session) = e
            .detail_str("properties/sessionId")
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let Some(ip) = e.source_ip.filter(|ip| cordon_core::ip::is_internet(*ip)) else {
            return;
        };
        let blk = block(&network(ip)).to_string();
        let s = self.sessions.entry(session.to_string(), || Instance {
            blocks: Vec::new(),
            last_ms: e.time_ms,
            reported_two: false,
        });
        if e.time_ms - s.last_ms > SESSION_WINDOW_MS {
            s.blocks.clear();
        }
        s.last_ms = s.last_ms.max(e.time_ms);
        if !s.saw(blk) || s.blocks.len() < 2 || s.reported_two {
            return;
        }
        s.reported_two = true;
        let mut f = audit_finding(
            FindingKind::CloudAccountCompromise,
            &format!("session-moved|{session}"),
            e,
            LOW,
            format!(
                "one sign-in session of {} used from networks in {} blocks within {} min ({}): now {}",
                who(e),
                s.blocks.len(),
                SESSION_WINDOW_MS / 60_000,
                s.blocks.join(", "),
                from(e)
            ),
        );
        f.techniques = vec!["T1550.001".into(), "T1078.004".into()];
        fact(&mut f, "session", session);
        fact(&mut f, "networks", s.blocks.clone());
        fact(&mut f, "shape", "session from two networks");
        calibrate(
            &mut f,
            (
                Severity::Low,
                "a session token replayed elsewhere, or a device that changed network; low alone"
                    .into(),
            ),
        );
        out.push(f);
    }

    /// Failed sign-ins, then a success, from one identity or address.
    fn sign_in_run(&mut self, e: &AuditEvent, out: &mut Vec<Finding>) {
        if !e.is_sign_in() {
            return;
        }
        let keys = [
            Some(format!("principal|{}", e.principal.id)).filter(|_| !e.principal.id.is_empty()),
            e.source_ip.map(|ip| format!("source|{ip}")),
        ];
        for key in keys.into_iter().flatten() {
            let s = self.sign_ins.entry(key.clone(), || SignIns {
                failures: Vec::new(),
                last_ms: e.time_ms,
                reported_run: false,
            });
            s.last_ms = s.last_ms.max(e.time_ms);
            s.failures.retain(|t| e.time_ms - t <= FAILED_WINDOW_MS);
            if !e.success {
                if s.failures.len() < 64 {
                    s.failures.push(e.time_ms);
                }
                let n = s.failures.len();
                if n == FAILED_ALONE || n == FAILED_MANY {
                    let first = s.failures.first().copied().unwrap_or(e.time_ms);
                    let many = n == FAILED_MANY;
                    let cap = either(
                        many,
                        (
                            Severity::Medium,
                            "a long run of failed sign-ins: guessing, or a client with a stale secret; medium",
                        ),
                        (
                            Severity::Low,
                            "failed sign-ins alone: guessing, or a client with a stale secret; low until one succeeds",
                        ),
                    );
                    let mut f = audit_finding(
                        FindingKind::CloudAccountCompromise,
                        &format!("sign-in-failures|{key}|{n}|{}", first / FAILED_WINDOW_MS),
                        e,
                        score_of(cap.0),
                        format!(
                            "{n} failed sign-ins for {} from {} within {} min, none succeeded yet (last: {})",
                            who(e),
                            from(e),
                            FAILED_WINDOW_MS / 60_000,
                            e.error.as_deref().unwrap_or("failed")
                        ),
                    );
                    f.first_ms = first;
                    f.techniques = vec!["T1110".into()];
                    fact(&mut f, "failed_sign_ins", n);
                    fact(&mut f, "shape", "failures without success");
                    calibrate(&mut f, cap);
                    out.push(f);
                }
                continue;
            }
            if s.failures.len() >= FAILED_RUN && !s.reported_run {
                s.reported_run = true;
                let mut f = audit_finding(
                    FindingKind::CloudAccountCompromise,
                    &format!("sign-in-run|{key}"),
                    e,
                    HIGH,
                    format!(
                        "{} failed sign-ins then a success for {} from {} within {} min",
                        s.failures.len(),
                        who(e),
                        from(e),
                        FAILED_WINDOW_MS / 60_000
                    ),
                );
                f.first_ms = s.failures.first().copied().unwrap_or(e.time_ms);
                f.techniques = vec!["T1110".into(), "T1078.004".into(), "T1586.003".into()];
                fact(&mut f, "failed_sign_ins", s.failures.len());
                fact(&mut f, "shape", "failures then success");
                calibrate(
                    &mut f,
                    (
                        Severity::High,
                        "a success right after a run of failures is a guessed or stolen password"
                            .into(),
                    ),
                );
                out.push(f);
            }
            s.failures.clear();
        }
    }
}

fn who(e: &AuditEvent) -> &str {
    if e.principal.id.is_empty() {
        "an unknown identity"
    } else {
        &e.principal.id
    }
}

fn from(e: &AuditEvent) -> String {
    if e.source.is_empty() {
        "an unrecorded source".into()
    } else {
        e.source.clone()
    }
}

/// A finding of `kind` about event `e`, identified by `key`.
fn audit_finding(
    kind: FindingKind,
    key: &str,
    e: &AuditEvent,
    score: f64,
    summary: String,
) -> Finding {
    let ctx = e.policy.as_deref();
    let src_entity = Entity {
        ip: e.source_ip,
        workload: ctx.and_then(|c| c.workload.clone()),
        groups: ctx.map(|c| c.source_groups.clone()).unwrap_or_default(),
        vendor: ctx.and_then(|c| c.vendor.clone()),
        hostname: None,
    };
    let target = e.resources.first().cloned().unwrap_or_else(|| {
        if e.account.is_empty() {
            "-".to_string()
        } else {
            format!("{} account {}", e.cloud.as_str(), e.account)
        }
    });
    let mut facts = serde_json::Map::new();
    facts.insert("plane".into(), Value::from("cloud audit"));
    facts.insert("principal".into(), Value::from(e.principal.id.clone()));
    facts.insert(
        "principal_type".into(),
        Value::from(e.principal.kind.clone()),
    );
    facts.insert("account".into(), Value::from(e.account.clone()));
    facts.insert(
        "action".into(),
        Value::from(format!("{}:{}", e.service, e.action)),
    );
    if let Some(c) = ctx {
        if !c.groups.is_empty() {
            facts.insert("principal_groups".into(), Value::from(c.groups.clone()));
        }
        if let Some(v) = &c.vendor {
            facts.insert("vendor".into(), Value::from(v.clone()));
        }
    }
    if let Some(id) = identity(e) {
        // The identity behind the call: a role, not one of its sessions.
        facts.insert("identity".into(), Value::from(id));
    }
    facts.insert("events".into(), Value::Array(vec![e.reference()]));
    let key = format!("{}|{}|{key}", e.cloud.as_str(), e.account);
    let mut f = Finding::scored(kind, &key, score, e.time_ms, summary);
    f.src = who(e).to_string();
    f.dst = target;
    f.src_entity = src_entity;
    f.evidence.facts = facts.into_iter().collect();
    f
}

/// The cap and its reason for a finding: `yes` when `cond` holds, `no`
/// otherwise.
fn either(cond: bool, yes: (Severity, &str), no: (Severity, &str)) -> (Severity, String) {
    let (severity, why) = if cond { yes } else { no };
    (severity, why.to_string())
}

/// A failed call is an attempt the cloud refused: visible, `low`.
fn attempt(f: &mut Finding, e: &AuditEvent) {
    f.evidence.summary = format!(
        "attempted, refused ({}): {}",
        e.error.as_deref().unwrap_or("failed"),
        f.evidence.summary
    );
    calibrate(
        f,
        (
            Severity::Low,
            "the call failed: an attempt the cloud refused; low unless something else corroborates it".into(),
        ),
    );
}

/// Lower-case text of an action, for the clouds that vary its case.
fn lower(e: &AuditEvent) -> String {
    e.action.to_ascii_lowercase()
}

/// Whether Azure operation `op` reads the network's layout: addresses,
/// security groups, interfaces, machines.
fn azure_layout_read(op: &str) -> bool {
    let op = op.to_ascii_lowercase();
    op.ends_with("/read")
        && (op.starts_with("microsoft.network/")
            || op.starts_with("microsoft.compute/virtualmachines"))
}

/// Whether failed sign-in `e` got past the password and failed at the
/// second factor: AWS says MFA was used, Google presented a challenge
/// beyond the password, Entra reports a failed strong authentication
/// (500121).
fn second_factor_failed(e: &AuditEvent) -> bool {
    match e.cloud {
        Cloud::Aws => e.detail_str("additionalEventData/MFAUsed") == Some("Yes"),
        Cloud::Gcp => gcp_login_param(e, "login_challenge_method")
            .and_then(|v| v.get("multiStrValue"))
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .any(|x| x != "password" && x != "none")
            }),
        Cloud::Azure => e.error.as_deref() == Some("500121"),
    }
}

/// A parameter of a Google login event (`metadata.event[].parameter[]`
/// by name).
fn gcp_login_param<'a>(e: &'a AuditEvent, name: &str) -> Option<&'a Value> {
    e.detail_at("metadata/event")?
        .as_array()?
        .iter()
        .filter_map(|ev| ev.get("parameter").and_then(Value::as_array))
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

/// The risk Entra ID gave a sign-in, the higher of its two ratings (during
/// the sign-in, aggregated): 0 none, 1 low, 2 medium, 3 high; 0 when an
/// administrator dismissed it or it was remediated or confirmed safe.
fn entra_risk(e: &AuditEvent) -> u8 {
    let settled = e.detail_str("properties/riskState").is_some_and(|r| {
        ["dismissed", "remediated", "confirmedSafe"]
            .iter()
            .any(|x| r.eq_ignore_ascii_case(x))
    });
    if settled {
        return 0;
    }
    ["riskLevelDuringSignIn", "riskLevelAggregated"]
        .iter()
        .filter_map(|k| e.detail_str(&format!("properties/{k}")))
        .map(|r| match r.to_ascii_lowercase().as_str() {
            "high" => 3,
            "medium" => 2,
            "low" => 1,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Whether an Entra ID client is a legacy one (basic authentication
/// protocols that cannot ask for a second factor).
fn legacy_client(client: &str) -> bool {
    let c = client.to_ascii_lowercase();
    [
        "exchange activesync",
        "imap",
        "pop",
        "smtp",
        "authenticated smtp",
        "exchange web services",
        "mapi over http",
        "offline address book",
        "outlook anywhere",
        "autodiscover",
        "exchange online powershell",
        "other clients",
    ]
    .iter()
    .any(|x| c.starts_with(x))
}

/// Objects written to another account's bucket (T1537), or encrypted
/// with a key another account holds (T1486: only that account can read
/// them again).
fn moved_away(e: &AuditEvent) -> Option<Finding> {
    if e.cloud != Cloud::Aws || e.service != "s3" || !e.success {
        return None;
    }
    let copy = matches!(e.action.as_str(), "CopyObject" | "UploadPartCopy");
    if !copy
        && !matches!(
            e.action.as_str(),
            "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload"
        )
    {
        return None;
    }
    let ours = |a: &str| a == e.account || Some(a) == e.principal.account.as_deref();
    let key_owner = e
        .detail_str("requestParameters/x-amz-server-side-encryption-aws-kms-key-id")
        .and_then(|k| k.strip_prefix("arn:aws:kms:"))
        .and_then(|rest| rest.split(':').nth(1))
        .filter(|a| !a.is_empty() && !ours(a));
    if let Some(owner) = key_owner {
        let target = e.resources.first().cloned().unwrap_or_default();
        let mut f = audit_finding(
            FindingKind::CloudDataDestroyed,
            &format!("foreign-key|{target}|{owner}"),
            e,
            HIGH,
            format!(
                "objects encrypted with a key of account {owner}, which alone can decrypt them: {} by {} from {}",
                e.action,
                who(e),
                from(e)
            ),
        );
        f.techniques = vec!["T1486".into()];
        fact(&mut f, "key_account", owner);
        calibrate(
            &mut f,
            (
                Severity::High,
                "data re-encrypted under another account's key: ransom or theft; high alone".into(),
            ),
        );
        return Some(f);
    }
    let foreign: Vec<String> = e
        .resource_accounts
        .iter()
        .filter(|a| !ours(a))
        .cloned()
        .collect();
    if foreign.is_empty() {
        return None;
    }
    let to = foreign.join(", ");
    let target = e.resources.first().cloned().unwrap_or_default();
    let cap = either(
        copy,
        (
            Severity::High,
            "stored data copied into a bucket another account owns; high alone",
        ),
        (
            Severity::Medium,
            "data uploaded into a bucket another account owns (a partner's, or a way out); medium",
        ),
    );
    let mut f = audit_finding(
        FindingKind::CloudDataShared,
        &format!("foreign-bucket|{target}|{to}"),
        e,
        score_of(cap.0),
        format!(
            "objects {} a bucket of account {to}: {} by {} from {}",
            if copy { "copied to" } else { "written to" },
            e.action,
            who(e),
            from(e)
        ),
    );
    f.techniques = vec!["T1537".into()];
    fact(&mut f, "shared_with", format!("account {to}"));
    if let Some(src) = e.detail_str("requestParameters/x-amz-copy-source") {
        fact(&mut f, "copied_from", src);
    }
    calibrate(&mut f, cap);
    Some(f)
}

/// What a request without credentials did to storage.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenUse {
    /// Listed its objects or asked whether it exists.
    List,
    /// Read an object.
    Read,
    /// Wrote, replaced or deleted objects or their settings.
    Write,
}

impl OpenUse {
    fn of(e: &AuditEvent) -> OpenUse {
        let a = lower(e);
        // `storage.objects.list`, `ListBlobs`: the verb is the last word.
        let verb = a.rsplit('.').next().unwrap_or(&a);
        const WRITES: [&str; 12] = [
            "put", "delete", "copy", "create", "upload", "restore", "set", "update", "patch",
            "write", "append", "complete",
        ];
        if WRITES.iter().any(|w| verb.starts_with(w)) {
            OpenUse::Write
        } else if verb.starts_with("list")
            || verb.starts_with("headbucket")
            || verb.starts_with("getbucket")
            || verb.starts_with("getcontainer")
            || a.starts_with("storage.buckets.")
        {
            OpenUse::List
        } else {
            OpenUse::Read
        }
    }
}

/// Who outside the organisation a storage request came from.
enum Outsider {
    /// A request carrying no credentials: the storage is open to anyone.
    Anyone,
    /// An identity of another account that no group of the policy names.
    Account(String),
}

impl Outsider {
    fn of(e: &AuditEvent) -> Option<Outsider> {
        if e.unauthenticated() {
            return Some(Outsider::Anyone);
        }
        if e.cloud != Cloud::Aws {
            return None;
        }
        let account = e.principal.account.as_deref().filter(|a| !a.is_empty())?;
        // CloudTrail calls a caller of another account `AWSAccount`, even
        // when the record names no recipient.
        let other = if e.account.is_empty() {
            e.principal.kind == "AWSAccount"
        } else {
            account != e.account
        };
        let declared = e
            .policy
            .as_deref()
            .is_some_and(|c| !c.groups.is_empty() || c.vendor.is_some());
        (other && !declared).then(|| Outsider::Account(account.to_string()))
    }
}

/// Storage that served someone outside the organisation: a request with
/// no credentials at all (it is open to anyone), or an identity of an
/// account no group declares (T1530, T1619; T1565 for writes; T1537 for
/// another account's reads). Each bucket is told once a day per outsider
/// and kind of use. Refused requests are left alone: strangers knocking
/// on closed storage are the Internet's background.
fn exposed_storage(e: &AuditEvent) -> Option<Finding> {
    if !e.success {
        return None;
    }
    let storage = match e.cloud {
        Cloud::Aws => e.service == "s3",
        Cloud::Gcp => e.service.starts_with("storage."),
        Cloud::Azure => true,
    };
    if !storage {
        return None;
    }
    let outsider = Outsider::of(e)?;
    let use_ = OpenUse::of(e);
    let bucket = e
        .resources
        .first()
        .map_or_else(|| "storage".to_string(), |r| container(r).to_string());
    let data: &[String] = e.policy.as_deref().map_or(&[], |c| c.data.as_slice());
    let personal = !data.is_empty();
    let day = e.time_ms.div_euclid(DAY_MS);
    let (severity, why, techniques): (Severity, &str, &[&str]) = match (&outsider, use_) {
        (Outsider::Anyone, OpenUse::Write) => (
            Severity::High,
            "anyone can change or delete what the storage holds; high alone",
            &["T1565", "T1530"],
        ),
        (Outsider::Account(_), OpenUse::Write) => (
            Severity::Medium,
            "an account no group declares changed what the storage holds; medium",
            &["T1565"],
        ),
        (Outsider::Anyone, _) if personal => (
            Severity::High,
            "storage the policy says holds personal data served anyone who asked; high",
            &["T1530"],
        ),
        (Outsider::Account(_), _) if personal => (
            Severity::Medium,
            "storage the policy says holds personal data served an account no group declares; medium",
            &["T1530", "T1537"],
        ),
        (Outsider::Anyone, OpenUse::List) => (
            Severity::Medium,
            "the storage lists its contents to anyone, and an outsider listed them; medium",
            &["T1619", "T1580"],
        ),
        (Outsider::Anyone, _) => (
            Severity::Low,
            "an object served to anyone: a public website's files look the same; low unless the policy says the storage holds personal data",
            &["T1530"],
        ),
        (Outsider::Account(_), OpenUse::List) => (
            Severity::Low,
            "an account no group declares listed the storage: a partner the policy does not name yet, or someone the storage was opened to; low",
            &["T1619"],
        ),
        (Outsider::Account(_), _) => (
            Severity::Low,
            "an account no group declares read from the storage: a partner the policy does not name yet, or data leaving; low",
            &["T1530", "T1537"],
        ),
    };
    let (outside, by) = match &outsider {
        Outsider::Anyone => (
            "anyone".to_string(),
            "a request with no credentials".to_string(),
        ),
        Outsider::Account(a) => (a.clone(), format!("account {a}, which no group declares")),
    };
    let what = match use_ {
        OpenUse::List => "listed",
        OpenUse::Read => "read",
        OpenUse::Write => "changed",
    };
    let mut f = audit_finding(
        FindingKind::CloudStorageExposed,
        &format!("exposed|{bucket}|{outside}|{}|{day}", use_ as u8),
        e,
        score_of(severity),
        format!(
            "{bucket} {what} by {by} ({}) from {}{}",
            e.action,
            from(e),
            if personal {
                format!(
                    "; the policy says it holds personal data ({})",
                    data.join(", ")
                )
            } else {
                String::new()
            }
        ),
    );
    f.techniques = techniques.iter().map(|t| t.to_string()).collect();
    f.stage = match use_ {
        OpenUse::List => "discovery",
        OpenUse::Read => "collection",
        OpenUse::Write => "impact",
    }
    .to_string();
    if matches!(outsider, Outsider::Anyone) {
        f.src = "anyone (no credentials)".to_string();
    }
    fact(&mut f, "bucket", bucket);
    fact(&mut f, "outsider", outside);
    if personal {
        fact(&mut f, "data", data.to_vec());
    }
    calibrate(&mut f, (severity, why.to_string()));
    Some(f)
}

/// The bucket or container an object's name is in (the name itself when
/// it names no object).
fn container(resource: &str) -> &str {
    if let Some(rest) = resource.strip_prefix("arn:aws:s3:::") {
        return rest.find('/').map_or(resource, |i| &resource[..13 + i]);
    }
    if let Some(i) = resource.find("/objects/") {
        return &resource[..i];
    }
    resource
}

/// Logging, detection or guardrails switched off or opened (T1562.008,
/// T1562.007 for firewalls).
fn logging(e: &AuditEvent) -> Option<Finding> {
    let (score, what) = match e.cloud {
        Cloud::Aws => match (e.service.as_str(), e.action.as_str()) {
            ("cloudtrail", "StopLogging") => (HIGH, "audit trail stopped"),
            ("cloudtrail", "DeleteTrail") => (HIGH, "audit trail deleted"),
            ("cloudtrail", "DeleteEventDataStore") => (HIGH, "audit event store deleted"),
            ("cloudtrail", "PutEventSelectors") if narrowed_selectors(e) => {
                (HIGH, "audit trail narrowed to leave out management events")
            }
            ("ec2", "DeleteFlowLogs") => (HIGH, "VPC flow logs deleted"),
            (
                "route53resolver",
                "DeleteResolverQueryLogConfig" | "DisassociateResolverQueryLogConfig",
            ) => (MEDIUM, "DNS query logging removed"),
            (
                "guardduty",
                "DeleteDetector"
                | "DisassociateFromMasterAccount"
                | "DisassociateFromAdministratorAccount",
            ) => (HIGH, "threat detection (GuardDuty) removed"),
            ("guardduty", "UpdateDetector")
                if e.detail_at("requestParameters/enable") == Some(&Value::Bool(false)) =>
            {
                (HIGH, "threat detection (GuardDuty) disabled")
            }
            (
                "config",
                "StopConfigurationRecorder"
                | "DeleteConfigurationRecorder"
                | "DeleteDeliveryChannel",
            ) => (HIGH, "configuration recording stopped"),
            ("securityhub", "DisableSecurityHub") => (HIGH, "Security Hub disabled"),
            ("s3", "PutBucketLogging")
                if e.detail_at("requestParameters/BucketLoggingStatus")
                    .is_some()
                    && e.detail_at("requestParameters/BucketLoggingStatus/LoggingEnabled")
                        .is_none() =>
            {
                (MEDIUM, "bucket access logging disabled")
            }
            ("s3", "PutBucketVersioning") if versioning_off(e) => (
                MEDIUM,
                "bucket versioning or MFA delete turned off (deleted data cannot be recovered)",
            ),
            ("s3", "DeleteBucketPublicAccessBlock" | "DeletePublicAccessBlock") => {
                (MEDIUM, "the public access block removed")
            }
            ("s3", "PutBucketPublicAccessBlock" | "PutPublicAccessBlock")
                if public_block_off(e) =>
            {
                (MEDIUM, "the public access block relaxed")
            }
            ("securityhub", "BatchUpdateFindings") if findings_suppressed(e) => {
                (MEDIUM, "security findings suppressed")
            }
            ("macie2", "DisableMacie") => (HIGH, "data discovery (Macie) disabled"),
            ("macie2", "UpdateMacieSession")
                if e.detail_str("requestParameters/status") == Some("PAUSED") =>
            {
                (HIGH, "data discovery (Macie) paused")
            }
            ("waf" | "wafv2" | "waf-regional", "DisassociateWebACL") => {
                (MEDIUM, "a web application firewall detached")
            }
            ("rds", "ModifyDBInstance" | "ModifyDBCluster")
                if e.detail_at("requestParameters/deletionProtection")
                    == Some(&Value::Bool(false)) =>
            {
                (MEDIUM, "database deletion protection turned off")
            }
            ("ec2", "AuthorizeSecurityGroupIngress") if opened_to_internet(e) => (
                HIGH,
                "a firewall opened to the whole Internet on an administration or database port",
            ),
            ("organizations", "LeaveOrganization") => (
                HIGH,
                "the account left its organisation (and the organisation's trails and guardrails)",
            ),
            _ => return None,
        },
        Cloud::Gcp => {
            let a = lower(e);
            if a.contains("deletesink") || a.ends_with("sinks.delete") {
                (HIGH, "a log sink deleted")
            } else if a.ends_with("subnetworks.patch")
                && (e.detail_at("request/logConfig/enable") == Some(&Value::Bool(false))
                    || e.detail_at("request/enableFlowLogs") == Some(&Value::Bool(false)))
            {
                (MEDIUM, "VPC flow logs disabled on a subnetwork")
            } else {
                return None;
            }
        }
        Cloud::Azure => {
            let a = lower(e);
            if a.contains("diagnosticsettings/delete") {
                (HIGH, "diagnostic settings (log export) deleted")
            } else if a.contains("actiongroups/delete") || a.contains("activitylogalerts/delete") {
                (MEDIUM, "alerting deleted")
            } else {
                return None;
            }
        }
    };
    let target = e.resources.first().cloned().unwrap_or_default();
    let mut f = audit_finding(
        FindingKind::CloudDefensesImpaired,
        &format!("{}|{}", e.action, target),
        e,
        score,
        format!("{what}: {} by {} from {}", e.action, who(e), from(e)),
    );
    let firewall = e.action == "AuthorizeSecurityGroupIngress" || e.action == "DisassociateWebACL";
    f.techniques = vec![if firewall { "T1562.007" } else { "T1562.008" }.into()];
    calibrate(
        &mut f,
        (
            Severity::High,
            "a defence of the account was switched off or opened; high alone".into(),
        ),
    );
    Some(f)
}

/// Whether a `PutBucketVersioning` suspends versioning or MFA delete.
fn versioning_off(e: &AuditEvent) -> bool {
    let c = e.detail_at("requestParameters/VersioningConfiguration");
    let is = |k: &str, values: &[&str]| {
        c.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .is_some_and(|v| values.iter().any(|x| v.eq_ignore_ascii_case(x)))
    };
    is("Status", &["Suspended", "Disabled"]) || is("MfaDelete", &["Disabled"])
}

/// Whether a public access block is written with any protection off.
fn public_block_off(e: &AuditEvent) -> bool {
    let text = e
        .detail_at("requestParameters")
        .map(Value::to_string)
        .unwrap_or_default();
    [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ]
    .iter()
    .any(|k| text.contains(&format!("\"{k}\":false")))
}

/// Whether a Security Hub update suppresses or archives findings.
fn findings_suppressed(e: &AuditEvent) -> bool {
    let text = e
        .detail_at("requestParameters")
        .map(Value::to_string)
        .unwrap_or_default();
    text.contains("SUPPRESSED") || text.contains("\"ARCHIVED\"")
}

/// Ports a firewall should never open to the whole Internet:
/// administration and databases.
const EXPOSED_PORTS: &[i64] = &[
    22, 23, 445, 1433, 1521, 2375, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 9200, 11211, 27017,
];

/// Whether an ingress rule opens an administration or database port (or
/// every port) to `0.0.0.0/0` or `::/0`.
fn opened_to_internet(e: &AuditEvent) -> bool {
    let Some(params) = e.detail_at("requestParameters") else {
        return false;
    };
    let mut rules = Vec::new();
    collect_permissions(params, &mut rules);
    rules.iter().any(|p| {
        let anywhere = everywhere(p);
        let num = |k: &str| {
            p.get(k)
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        };
        let protocol = p
            .get("ipProtocol")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default();
        let all = protocol == "-1" || protocol == "all";
        let (from, to) = (
            num("fromPort").unwrap_or(0),
            num("toPort").unwrap_or(65_535),
        );
        anywhere && (all || EXPOSED_PORTS.iter().any(|port| (from..=to).contains(port)))
    })
}

/// Whether a value names a range of every address (`0.0.0.0/0`, `::/0`,
/// any address with a `/0` prefix).
fn everywhere(v: &Value) -> bool {
    match v {
        Value::String(s) => s.ends_with("/0"),
        Value::Object(o) => o.values().any(everywhere),
        Value::Array(a) => a.iter().any(everywhere),
        _ => false,
    }
}

/// The permission entries (objects with a port range) of an ingress call.
fn collect_permissions(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(o) if o.contains_key("ipProtocol") => out.push(v.clone()),
        Value::Object(o) => o.values().for_each(|x| collect_permissions(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect_permissions(x, out)),
        _ => {}
    }
}

/// Whether a `PutEventSelectors` leaves management events or writes out.
fn narrowed_selectors(e: &AuditEvent) -> bool {
    let params = e.detail_at("requestParameters");
    let plain = params
        .and_then(|p| p.get("eventSelectors"))
        .and_then(Value::as_array);
    if let Some(list) = plain {
        return list.is_empty()
            || list.iter().any(|s| {
                s.get("includeManagementEvents") == Some(&Value::Bool(false))
                    || s.get("readWriteType")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t != "All")
            });
    }
    // Advanced selectors that exclude management events.
    params
        .and_then(|p| p.get("advancedEventSelectors"))
        .is_some_and(|v| {
            let text = v.to_string();
            text.contains("NotEquals") && text.contains("Management")
        })
}

/// Account ids named in a policy principal or a list of grantees, and
/// whether everyone (`*`) is among them.
fn principals(v: &Value, ids: &mut Vec<String>, everyone: &mut bool) {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if s == "*" || s.eq_ignore_ascii_case("all") {
                *everyone = true;
            } else if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
                ids.push(s.to_string());
            } else if let Some(rest) = s.strip_prefix("arn:aws:iam::")
                && let Some(account) = rest.split(':').next()
                && !account.is_empty()
            {
                ids.push(account.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| principals(x, ids, everyone)),
        Value::Object(o) => {
            // Service principals (`lambda.amazonaws.com`) are not accounts.
            for (k, x) in o {
                if k != "Service" && k != "Federated" {
                    principals(x, ids, everyone);
                }
            }
        }
        _ => {}
    }
}

/// Condition keys that hold a statement to the organisation's own
/// identities, networks or accounts.
const RESTRICTING: &[&str] = &[
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:userid",
    "aws:username",
    "kms:calleraccount",
    "kms:viaservice",
];

/// Whether a statement's condition restricts who it applies to.
fn restricted(condition: Option<&Value>) -> bool {
    let Some(Value::Object(operators)) = condition else {
        return false;
    };
    operators.values().any(|keys| {
        keys.as_object().is_some_and(|k| {
            k.keys()
                .any(|key| RESTRICTING.contains(&key.to_ascii_lowercase().as_str()))
        })
    })
}

/// A policy document as recorded: an object, or JSON text.
fn document(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
    }
}

/// The `Allow` statements of a policy document (`Statement` is a list or
/// a single object).
fn allows(doc: &Value) -> impl Iterator<Item = &Value> {
    let list: &[Value] = match doc.get("Statement") {
        Some(Value::Array(a)) => a,
        Some(s @ Value::Object(_)) => std::slice::from_ref(s),
        _ => &[],
    };
    list.iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
}

/// Accounts other than `own` and everyone, among the `Allow` statements'
/// principals of a policy document.
fn opened_to(doc: &Value, own: &str) -> (Vec<String>, bool) {
    let mut ids = Vec::new();
    let mut everyone = false;
    for s in allows(doc) {
        if let Some(p) = s.get("Principal") {
            let mut open = false;
            principals(p, &mut ids, &mut open);
            // `*` held to the organisation, its networks or its accounts
            // by a condition is not everyone.
            everyone |= open && !restricted(s.get("Condition"));
        }
    }
    ids.retain(|a| a != own);
    ids.sort();
    ids.dedup();
    (ids, everyone)
}

/// Data shared with another account or everyone (T1537).
fn shared(e: &AuditEvent) -> Option<Finding> {
    let mut ids = Vec::new();
    let mut everyone = false;
    let what = match (e.cloud, e.service.as_str(), e.action.as_str()) {
        (Cloud::Aws, "ec2", "ModifySnapshotAttribute") => {
            let add = e.detail_at("requestParameters/createVolumePermission/add/items")?;
            add_items(add, &mut ids, &mut everyone);
            "an EBS snapshot shared"
        }
        (Cloud::Aws, "ec2", "ModifyImageAttribute") => {
            let add = e.detail_at("requestParameters/launchPermission/add/items")?;
            add_items(add, &mut ids, &mut everyone);
            "a machine image shared"
        }
        (Cloud::Aws, "rds", "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute") => {
            if e.detail_str("requestParameters/attributeName") != Some("restore") {
                return None;
            }
            principals(
                e.detail_at("requestParameters/valuesToAdd")?,
                &mut ids,
                &mut everyone,
            );
            "a database snapshot shared"
        }
        (Cloud::Aws, "s3", "PutBucketPolicy") => {
            let doc = document(e.detail_at("requestParameters/bucketPolicy"))?;
            (ids, everyone) = opened_to(&doc, &e.account);
            "a bucket policy opened"
        }
        (Cloud::Aws, "s3", "PutBucketAcl" | "PutObjectAcl") => {
            let text = e.detail_at("requestParameters")?.to_string();
            everyone = text.contains("acs.amazonaws.com/groups/global/AllUsers")
                || text.contains("acs.amazonaws.com/groups/global/AuthenticatedUsers")
                || text.contains("public-read");
            "a bucket or object ACL opened"
        }
        (Cloud::Aws, "codebuild", "UpdateProjectVisibility") => {
            everyone = e
                .detail_str("requestParameters/projectVisibility")
                .is_some_and(|v| v.starts_with("PUBLIC"));
            "a build project (its logs and artifacts) made public"
        }
        (Cloud::Aws, "s3", "PutBucketReplication") => {
            let text = e.detail_at("requestParameters")?.to_string();
            let v: Value = serde_json::from_str(&text).ok()?;
            collect_key(&v, "Account", &mut ids);
            "bucket replication set up"
        }
        // Any other service's resource policy (keys, queues, topics,
        // repositories, secrets, domains) written with the call; trust
        // policies of roles are persistence's.
        (Cloud::Aws, service, action)
            if service != "iam"
                && ["Put", "Set", "Create", "Update", "Add", "Modify"]
                    .iter()
                    .any(|v| action.starts_with(v)) =>
        {
            let docs = policy_documents(e.detail_at("requestParameters")?);
            if docs.is_empty() {
                return None;
            }
            for doc in &docs {
                let (more, open) = opened_to(doc, &e.account);
                ids.extend(more);
                everyone |= open;
            }
            "a resource policy opened"
        }
        (Cloud::Gcp, _, a) if a.to_ascii_lowercase().ends_with("setiampolicy") => {
            let text = e.detail_at("request")?.to_string();
            everyone = text.contains("\"allUsers\"") || text.contains("\"allAuthenticatedUsers\"");
            "an IAM policy opened"
        }
        _ => return None,
    };
    ids.retain(|a| *a != e.account);
    ids.sort();
    ids.dedup();
    if ids.is_empty() && !everyone {
        return None;
    }
    let to = match (everyone, ids.is_empty()) {
        (true, _) => "everyone".to_string(),
        (false, _) => format!("account {}", ids.join(", ")),
    };
    let target = e.resources.first().cloned().unwrap_or_default();
    let mut f = audit_finding(
        FindingKind::CloudDataShared,
        &format!("{}|{target}|{to}", e.action),
        e,
        HIGH,
        format!(
            "{what} with {to}: {} by {} from {}",
            e.action,
            who(e),
            from(e)
        ),
    );
    f.techniques = vec!["T1537".into()];
    fact(&mut f, "shared_with", to);
    fact(&mut f, "public", everyone);
    if e.action == "PutBucketReplication"
        && let Some(params) = e.detail_at("requestParameters")
    {
        // Where the copies go: the destination buckets.
        let mut buckets = Vec::new();
        collect_key(params, "Bucket", &mut buckets);
        buckets.retain(|b| b.starts_with("arn:aws:s3:::"));
        buckets.dedup();
        if !buckets.is_empty() {
            fact(&mut f, "to_buckets", buckets);
        }
    }
    calibrate(
        &mut f,
        (
            Severity::High,
            "data made readable outside the organisation's accounts; high alone".into(),
        ),
    );
    Some(f)
}

/// Policy documents among a call's parameters: objects with a
/// `Statement`, or JSON text of one, a few levels deep.
fn policy_documents(params: &Value) -> Vec<Value> {
    fn walk(v: &Value, depth: u8, out: &mut Vec<Value>) {
        if depth > 3 || out.len() >= 8 {
            return;
        }
        match v {
            Value::Object(o) if o.contains_key("Statement") => out.push(v.clone()),
            Value::Object(o) => o.values().for_each(|x| walk(x, depth + 1, out)),
            Value::String(s) if s.contains("Statement") => {
                if let Ok(doc) = serde_json::from_str::<Value>(s) {
                    walk(&doc, depth + 1, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(params, 0, &mut out);
    out
}

fn add_items(items: &Value, ids: &mut Vec<String>, everyone: &mut bool) {
    for item in items.as_array().into_iter().flatten() {
        if let Some(u) = item.get("userId").and_then(Value::as_str) {
            ids.push(u.to_string());
        }
        if item.get("group").and_then(Value::as_str) == Some("all") {
            *everyone = true;
        }
    }
}

fn collect_key(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == key
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_string());
                } else {
                    collect_key(x, key, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_key(x, key, out)),
        _ => {}
    }
}

/// The user name an AWS principal acts as: an IAM user's name
/// (`arn:aws:iam::1:user/path/alice` → `alice`), or the session name of an
/// assumed role (people sign in through an identity provider as
/// themselves).
fn own_user(e: &AuditEvent) -> Option<&str> {
    e.principal
        .id
        .split_once(":user/")
        .map(|(_, p)| p.rsplit('/').next().unwrap_or(p))
        .or(e.principal.session.as_deref())
}

/// Credentials, trust or permissions planted (T1098).
fn persistence(e: &AuditEvent) -> Option<Finding> {
    let other_user = || {
        let target = e.detail_str("requestParameters/userName")?;
        (Some(target) != own_user(e)).then_some(target)
    };
    let (score, technique, what): (f64, &str, String) = match e.cloud {
        Cloud::Aws => {
            match (e.service.as_str(), e.action.as_str()) {
                ("iam", "CreateAccessKey") => {
                    // Administrators provision keys for others too: medium
                    // alone. The root user gains nothing by another's key
                    // (its own use is told as a change).
                    if e.principal.kind == "Root" {
                        return None;
                    }
                    let u = other_user()?;
                    (
                        MEDIUM,
                        "T1098.001",
                        format!("an access key created for another user ({u})"),
                    )
                }
                ("iam", "CreateLoginProfile" | "UpdateLoginProfile") => {
                    // A password the user must change at the next sign-in is
                    // an administrator's reset, not a way in.
                    if e.detail_at("requestParameters/passwordResetRequired")
                        == Some(&Value::Bool(true))
                    {
                        return None;
                    }
                    let u = other_user()?;
                    (
                        HIGH,
                        "T1098",
                        format!("a console password set for another user ({u})"),
                    )
                }
                ("iam", "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy") => {
                    let arn = e.detail_str("requestParameters/policyArn")?;
                    if !(arn.ends_with("/AdministratorAccess") || arn.ends_with("/IAMFullAccess")) {
                        return None;
                    }
                    (
                        HIGH,
                        "T1098.003",
                        format!("{} attached", arn.rsplit('/').next().unwrap_or(arn)),
                    )
                }
                ("iam", "PutUserPolicy" | "PutRolePolicy" | "PutGroupPolicy") => {
                    let doc = document(e.detail_at("requestParameters/policyDocument"))?;
                    if !grants_everything(&doc) {
                        return None;
                    }
                    (
                        HIGH,
                        "T1098.003",
                        "an inline policy allowing every action on every resource".into(),
                    )
                }
                ("iam", "CreateRole" | "UpdateAssumeRolePolicy") => {
                    let doc = document(
                        e.detail_at("requestParameters/assumeRolePolicyDocument")
                            .or_else(|| e.detail_at("requestParameters/policyDocument")),
                    )?;
                    let (ids, everyone) = opened_to(&doc, &e.account);
                    if ids.is_empty() && !everyone {
                        return None;
                    }
                    let to = if everyone {
                        "anyone".to_string()
                    } else {
                        format!("account {}", ids.join(", "))
                    };
                    (HIGH, "T1098", format!("a role made assumable by {to}"))
                }
                ("lambda", a) if a.starts_with("AddPermission") => {
                    let p = e.detail_str("requestParameters/principal")?;
                    let (mut ids, mut everyone) = (Vec::new(), false);
                    principals(&Value::from(p), &mut ids, &mut everyone);
                    let foreign = everyone || ids.iter().any(|a| *a != e.account);
                    if !foreign {
                        return None;
                    }
                    (HIGH, "T1098", format!("a function made callable by {p}"))
                }
                ("lambda", a)
                    if a.starts_with("UpdateFunctionConfiguration")
                        && e.detail_at("requestParameters/layers").is_some() =>
                {
                    let layers = e.detail_at("requestParameters/layers")?.to_string();
                    let foreign = layers
                        .split("arn:aws:lambda:")
                        .skip(1)
                        .filter_map(|rest| rest.split(':').nth(1))
                        .any(|account| account != e.account);
                    if foreign {
                        (HIGH, "T1098", "a function given a layer from another account (code that runs with it)".into())
                    } else {
                        (
                            LOW,
                            "T1098",
                            "a function's layers changed (code that runs with it)".into(),
                        )
                    }
                }
                ("sts", "GetFederationToken") => (
                    MEDIUM,
                    "T1098",
                    "a federation token issued (sessions that outlive a revoked key)".into(),
                ),
                ("rolesanywhere", "CreateTrustAnchor") => (
                    MEDIUM,
                    "T1098",
                    "a Roles Anywhere trust anchor created (outside certificates may get roles)"
                        .into(),
                ),
                ("ec2-instance-connect", "SendSSHPublicKey" | "SendSerialConsoleSSHPublicKey") => {
                    (MEDIUM, "T1098", "an SSH key pushed to an instance".into())
                }
                _ => return None,
            }
        }
        Cloud::Gcp => {
            let a = lower(e);
            if a.ends_with("createserviceaccountkey") {
                (MEDIUM, "T1098.001", "a service-account key created".into())
            } else if a.ends_with("setiampolicy") {
                let text = e.detail_at("request")?.to_string();
                let role = [
                    "roles/iam.serviceAccountTokenCreator",
                    "roles/iam.serviceAccountKeyAdmin",
                    "roles/owner",
                    "roles/iam.securityAdmin",
                ]
                .into_iter()
                .find(|r| text.contains(r))?;
                (MEDIUM, "T1098.003", format!("{role} granted"))
            } else {
                return None;
            }
        }
        Cloud::Azure => {
            let a = lower(e);
            if a.contains("service principal credentials")
                || a.contains("certificates and secrets management")
            {
                (
                    MEDIUM,
                    "T1098.001",
                    "credentials added to an application or service principal".into(),
                )
            } else if a.contains("elevated their access") || a.contains("elevateaccess") {
                (
                    HIGH,
                    "T1098.003",
                    "access elevated to User Access Administrator".into(),
                )
            } else {
                return None;
            }
        }
    };
    let target = e.resources.first().cloned().unwrap_or_default();
    let mut f = audit_finding(
        FindingKind::CloudPersistence,
        &format!("{}|{target}|{what}", e.action),
        e,
        score,
        format!("{what}: {} by {} from {}", e.action, who(e), from(e)),
    );
    f.techniques = vec![technique.to_string()];
    if what.starts_with("a role made assumable") {
        f.techniques.push("T1199".into());
    }
    calibrate(
        &mut f,
        (
            Severity::High,
            "a way back in was planted; high alone".into(),
        ),
    );
    Some(f)
}

/// Whether a policy document allows `*` on `*`.
fn grants_everything(doc: &Value) -> bool {
    let star = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some("*")),
        _ => false,
    };
    allows(doc).any(|s| star(s.get("Action")) && star(s.get("Resource")))
}

/// A sign-in without MFA, or one the provider flags as suspicious.
fn unprotected_sign_in(e: &AuditEvent) -> Option<Finding> {
    // A failed sign-in the provider rates risky is still told (as an
    // attempt); the rest need a success.
    if !e.is_sign_in() || (!e.success && e.cloud != Cloud::Azure) {
        return None;
    }
    let prop = |k: &str| e.detail_str(&format!("properties/{k}")).unwrap_or_default();
    let single_factor = prop("authenticationRequirement") == "singleFactorAuthentication";
    let protocol = prop("authenticationProtocol");
    let client = prop("clientAppUsed");
    let root = e.principal.kind == "Root";
    // Federated sign-ins (SAML, identity center) do MFA at the identity
    // provider; the console never sees it.
    let federated = e.detail_at("additionalEventData/SamlProviderArn").is_some()
        || !matches!(e.principal.kind.as_str(), "IAMUser" | "Root");
    let (score, what) = match e.cloud {
        Cloud::Aws if e.principal.mfa == Some(false) && !federated => (
            if root { HIGH } else { MEDIUM },
            if root {
                "the root user signed in to the console without MFA"
            } else {
                "a console sign-in without MFA"
            },
        ),
        Cloud::Azure
            if e.success
                && single_factor
                && (protocol.eq_ignore_ascii_case("ropc") || legacy_client(client)) =>
        {
            (
                MEDIUM,
                "a sign-in by a protocol that cannot ask for a second factor (password only)",
            )
        }
        Cloud::Azure if e.success && protocol.eq_ignore_ascii_case("deviceCode") => (
            LOW,
            "a device-code sign-in (a code typed on another device: the flow phishing uses)",
        ),
        Cloud::Gcp
            if e.action.ends_with("loginSuccess")
                && gcp_login_param(e, "login_type")
                    .and_then(|p| p.get("value"))
                    .and_then(Value::as_str)
                    == Some("google_password")
                && gcp_login_param(e, "login_challenge_method")
                    .and_then(|p| p.get("multiStrValue"))
                    .and_then(Value::as_array)
                    .is_some_and(|m| {
                        !m.is_empty() && m.iter().all(|x| x.as_str() == Some("password"))
                    }) =>
        {
            (MEDIUM, "a sign-in with a password alone (no second step)")
        }
        Cloud::Gcp
            if e.action.ends_with("loginSuccess")
                && e.detail_at("metadata").is_some_and(|m| {
                    let t = m.to_string();
                    t.contains("\"is_suspicious\"") && t.contains("\"boolValue\":true")
                }) =>
        {
            (MEDIUM, "a sign-in the provider flags as suspicious")
        }
        Cloud::Azure if entra_risk(e) >= 2 => (MEDIUM, "a sign-in the provider rates risky"),
        Cloud::Azure if entra_risk(e) == 1 => (LOW, "a sign-in the provider rates low-risk"),
        _ => return None,
    };
    let mut f = audit_finding(
        FindingKind::CloudAccountCompromise,
        &format!("sign-in|{}|{}", e.principal.id, e.source),
        e,
        score,
        format!("{what}: {} from {}", who(e), from(e)),
    );
    f.techniques = vec!["T1078.004".into()];
    if protocol.eq_ignore_ascii_case("deviceCode") {
        f.techniques.push("T1528".into());
    }
    calibrate(
        &mut f,
        (
            if root {
                Severity::High
            } else if score < MEDIUM {
                Severity::Low
            } else {
                Severity::Medium
            },
            if root {
                "the root user without MFA; high alone".into()
            } else {
                "one sign-in alone; medium unless something else corroborates it".into()
            },
        ),
    );
    Some(f)
}

#[cfg(test)]
mod tests;
