//! A response as data: what it does, to what, why, until when, and what
//! happened to it.

use std::fmt;
use std::net::IpAddr;

use cordon_core::hostname::FqdnPattern;
use cordon_core::units::{ByteSize, Window};
use ipnet::IpNet;
use serde::Serialize;

/// A response's id: `RSP-` and ten hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ResponseId(pub String);

impl ResponseId {
    /// The id for a response created at `created_ms` with `salt` (the
    /// document's generation and anything else that tells two apart).
    #[must_use]
    pub fn new(created_ms: i64, salt: &str) -> ResponseId {
        let mut h = cordon_detect::finding::fnv64(format!("{created_ms}/{salt}").bytes());
        // Spread the bits (splitmix64's finalizer): ids made a moment
        // apart should not look alike to the people who type them.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        ResponseId(format!("RSP-{:010x}", h & 0xff_ffff_ffff))
    }

    /// Whether `text` has the shape of an id.
    #[must_use]
    pub fn valid(text: &str) -> bool {
        text.strip_prefix("RSP-")
            .is_some_and(|h| h.len() == 10 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

impl fmt::Display for ResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a response is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a person to approve it; enforced nowhere.
    Proposed,
    /// Enforced until it expires or is undone.
    Active,
    /// Its time ran out.
    Expired,
    /// Someone took it back.
    Undone,
}

impl Status {
    /// The word used in documents and output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Undone => "undone",
        }
    }

    /// The status written as `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Proposed,
            Status::Active,
            Status::Expired,
            Status::Undone,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a quarantine isolates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A workload of the inventory, by name (all its addresses).
    Workload(String),
    /// An address or a range.
    Address(IpNet),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Workload(w) => write!(f, "workload {w}"),
            Subject::Address(n) => write!(f, "{}", show_net(n)),
        }
    }
}

/// A peer named in an allow-list or the never-block list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An address or range.
    Net(IpNet),
    /// A hostname (its addresses are whatever it resolves to).
    Fqdn(FqdnPattern),
    /// A group or workload of the policy, by name.
    Name(String),
}

impl Peer {
    /// Read `text`: an address or CIDR, a hostname (has a dot), or a name.
    #[must_use]
    pub fn parse(text: &str) -> Peer {
        let t = text.trim();
        if let Some(net) = parse_net(t) {
            return Peer::Net(net);
        }
        // A hostname has a dot inside it (a trailing one alone is a
        // rooted single label, which names nothing here).
        if t.trim_end_matches('.').contains('.')
            && let Ok(p) = FqdnPattern::parse(t)
        {
            return Peer::Fqdn(p);
        }
        Peer::Name(t.to_string())
    }

    /// Why `text` cannot name a peer, if it cannot: a name of the policy
    /// has no spaces or control characters.
    #[must_use]
    pub fn invalid(text: &str) -> Option<String> {
        match Peer::parse(text) {
            Peer::Name(n) if n.is_empty() => Some("an empty name".into()),
            Peer::Name(n) if n.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Some(format!(
                    "`{}` is not an address, a hostname or a name of the policy",
                    n.escape_debug()
                ))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Net(n) => write!(f, "{}", show_net(n)),
            Peer::Fqdn(p) => write!(f, "{p}"),
            Peer::Name(n) => f.write_str(n),
        }
    }
}

/// What a block cuts off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A hostname or `*.` pattern.
    Fqdn(FqdnPattern),
    /// An address or range.
    Net(IpNet),
    /// A group of the policy.
    Group(String),
    /// A vendor of the policy (every group that is that vendor).
    Vendor(String),
}

impl Destination {
    /// The field name the destination is written under.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Destination::Fqdn(_) => "fqdn",
            Destination::Net(_) => "cidr",
            Destination::Group(_) => "group",
            Destination::Vendor(_) => "vendor",
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Fqdn(p) => write!(f, "{p}"),
            Destination::Net(n) => write!(f, "{}", show_net(n)),
            Destination::Group(g) => write!(f, "group {g}"),
            Destination::Vendor(v) => write!(f, "vendor {v}"),
        }
    }
}

/// What a response does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// All traffic of the subject denied both ways, except with the
    /// allow-list and the never-block list.
    Quarantine {
        /// Who is isolated.
        subject: Subject,
        /// Peers it may still talk to.
        allow: Vec<Peer>,
    },
    /// Traffic between `from` (every source when `None`) and the
    /// destination denied.
    Block {
        /// What is cut off.
        to: Destination,
        /// The group of sources it is cut off for.
        from: Option<String>,
    },
    /// A vendor's egress limit lowered to `bytes` per `per`.
    Throttle {
        /// The vendor, by name.
        vendor: String,
        /// Bytes from clients to the vendor per window.
        bytes: ByteSize,
        /// The window.
        per: Window,
    },
}

impl Action {
    /// The action's word.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quarantine { .. } => "quarantine",
            Action::Block { .. } => "block",
            Action::Throttle { .. } => "throttle",
        }
    }

    /// The target, for one line of output.
    #[must_use]
    pub fn target(&self) -> String {
        match self {
            Action::Quarantine { subject, .. } => subject.to_string(),
            Action::Block { to, from } => match from {
                Some(f) => format!("{to} from {f}"),
                None => to.to_string(),
            },
            Action::Throttle { vendor, bytes, per } => format!("vendor {vendor} to {bytes}/{per}"),
        }
    }
}

/// One entry of a response's audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When, milliseconds since the epoch.
    #[serde(serialize_with = "serialize_time")]
    pub at: i64,
    /// Who or what (`cli:alice`, `playbook:beacon-quarantine`, `ttl`).
    pub by: String,
    /// What happened: `created`, `proposed`, `approved`, `undone`, `expired`.
    pub what: String,
    /// Anything said with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Its id.
    pub id: ResponseId,
    /// What it does.
    pub action: Action,
    /// Why, in the words of who made it.
    pub reason: String,
    /// The finding it answers.
    pub finding: Option<String>,
    /// The incident it answers.
    pub incident: Option<String>,
    /// Who or what made it.
    pub created_by: String,
    /// When it was made, milliseconds since the epoch.
    pub created: i64,
    /// How long it holds once active.
    pub ttl: Window,
    /// When it stops holding (for a proposed response: set on approval).
    pub expires: Option<i64>,
    /// Where it is in its life, as last written.
    pub status: Status,
    /// What happened to it, oldest first.
    pub history: Vec<Event>,
}

impl Response {
    /// The status at `now_ms`: an active response past its expiry is
    /// expired whether or not that was written yet (expiry is data, not a
    /// timer).
    #[must_use]
    pub fn status_at(&self, now_ms: i64) -> Status {
        match (self.status, self.expires) {
            (Status::Active, Some(e)) if e <= now_ms => Status::Expired,
            (s, _) => s,
        }
    }

    /// Whether it is enforced at `now_ms`.
    #[must_use]
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.status_at(now_ms) == Status::Active
    }
}

/// An address as itself, a range as a CIDR.
#[must_use]
pub fn show_net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// An address (as a one-address range) or a CIDR, truncated to its prefix.
#[must_use]
pub fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(IpNet::from(cordon_core::canonical_ip(ip)));
    }
    text.parse::<IpNet>().ok().map(|n| n.trunc())
}

fn serialize_time<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&cordon_flow::time::format_rfc3339(*ms))
}
