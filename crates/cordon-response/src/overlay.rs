//! Responses resolved against a policy: what every enforcement point and
//! `--dry-run` asks ("does a response deny this?"), the never-block list
//! that nothing may cut, and the checks a new response must pass.
//!
//! Responses overlay the policy with deny-overrides semantics: a flow a
//! response denies is denied whatever the policy says; a flow no response
//! denies is decided by the policy alone, so removing a response restores
//! exactly what was in force before.

use std::net::IpAddr;
use std::time::Duration;

use cordon_core::hostname::FqdnPattern;
use cordon_policy::model::{GroupId, WorkloadId};
use cordon_policy::{CompiledPolicy, Endpoint};
use ipnet::IpNet;

use crate::document::Responses;
use crate::model::{Action, Destination, Peer, Response, ResponseId, Subject, show_net};

/// Peers resolved against the policy: addresses, hostnames, groups and
/// workloads, each with where it came from (for messages).
#[derive(Clone, Debug, Default)]
pub struct PeerSet {
    /// Addresses and ranges.
    pub nets: Vec<(IpNet, String)>,
    /// Hostname patterns.
    pub fqdns: Vec<FqdnPattern>,
    /// Groups of the policy.
    pub groups: Vec<GroupId>,
    /// Workloads of the inventory.
    pub workloads: Vec<WorkloadId>,
}

impl PeerSet {
    /// Resolve `peers` against `policy`: a name is a group, else a
    /// workload.
    ///
    /// # Errors
    /// A name that is neither.
    pub fn resolve(peers: &[Peer], policy: &CompiledPolicy) -> Result<PeerSet, String> {
        let (out, unknown) = PeerSet::resolve_known(peers, policy);
        match unknown.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Resolve what `policy` knows of `peers`; why each of the others was
    /// left out.
    #[must_use]
    pub fn resolve_known(peers: &[Peer], policy: &CompiledPolicy) -> (PeerSet, Vec<String>) {
        let p = policy.policy();
        let mut out = PeerSet::default();
        let mut unknown = Vec::new();
        for peer in peers {
            match peer {
                Peer::Net(n) => out.nets.push((*n, show_net(n))),
                Peer::Fqdn(f) => out.fqdns.push(f.clone()),
                Peer::Name(name) => {
                    if let Some(g) = p.group_id(name) {
                        out.groups.push(g);
                    } else if let Some(w) = p.workload_id(name) {
                        out.workloads.push(w);
                    } else {
                        unknown.push(unknown_name(policy, name, "a group or workload"));
                    }
                }
            }
        }
        (out, unknown)
    }

    /// Add an address with why it is here.
    pub fn push_net(&mut self, net: IpNet, why: impl Into<String>) {
        self.nets.push((net, why.into()));
    }

    /// Whether `ep` is one of the peers; the entry that matched.
    #[must_use]
    pub fn matching(&self, policy: &CompiledPolicy, ep: &Endpoint) -> Option<String> {
        if let Some(ip) = ep.ip
            && let Some((_, why)) = self.nets.iter().find(|(n, _)| n.contains(&ip))
        {
            return Some(why.clone());
        }
        if let Some(host) = &ep.host
            && let Some(f) = self.fqdns.iter().find(|f| f.matches(host))
        {
            return Some(f.to_string());
        }
        let p = policy.policy();
        if !self.workloads.is_empty() {
            let w = ep
                .workload
                .or_else(|| ep.ip.and_then(|ip| policy.workload_at(ip)));
            if let Some(w) = w.filter(|w| self.workloads.contains(w)) {
                return p.workload(w).map(|w| w.name.clone());
            }
        }
        if !self.groups.is_empty() {
            let member = policy.membership(ep);
            if let Some(g) = self.groups.iter().find(|g| member.contains(**g)) {
                return Some(p.group_name(*g).to_string());
            }
        }
        None
    }

    /// Every address the peers stand for (hostnames through `resolve`),
    /// `None` when a group is `any`.
    #[must_use]
    pub fn addresses(
        &self,
        policy: &CompiledPolicy,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> Option<Vec<IpNet>> {
        let p = policy.policy();
        let mut out: Vec<IpNet> = self.nets.iter().map(|(n, _)| *n).collect();
        for f in self.fqdns.iter().filter(|f| !f.wildcard) {
            out.extend(resolve(f.name.as_str()).into_iter().map(IpNet::from));
        }
        for w in &self.workloads {
            if let Some(w) = p.workload(*w) {
                out.extend(w.ips.iter().map(|ip| IpNet::from(*ip)));
            }
        }
        for g in &self.groups {
            out.extend(policy.group_addresses(*g, resolve)?);
        }
        Some(out)
    }
}

fn unknown_name(policy: &CompiledPolicy, name: &str, what: &str) -> String {
    let p = policy.policy();
    let known: Vec<&str> = p
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .chain(p.workloads.iter().map(|w| w.name.as_str()))
        .collect();
    match cordon_yaml::closest(name, known.iter().copied()) {
        Some(best) => format!("`{name}` is not {what} of the policy (did you mean `{best}`?)"),
        None => format!("`{name}` is not {what} of the policy"),
    }
}

/// Read a block's destination as people write it: `vendor:NAME` and
/// `group:NAME` say what they are; then an address or CIDR; a name of
/// the policy (a group, else a vendor); else a hostname.
///
/// # Errors
/// Text that is none of these.
pub fn destination(text: &str, policy: &CompiledPolicy) -> Result<Destination, String> {
    let p = policy.policy();
    if let Some(v) = text.strip_prefix("vendor:") {
        return Ok(Destination::Vendor(v.to_string()));
    }
    if let Some(g) = text.strip_prefix("group:") {
        return Ok(Destination::Group(g.to_string()));
    }
    if let Some(n) = crate::model::parse_net(text) {
        return Ok(Destination::Net(n));
    }
    if p.group_id(text).is_some() {
        return Ok(Destination::Group(text.to_string()));
    }
    if p.vendor(text).is_some() {
        return Ok(Destination::Vendor(text.to_string()));
    }
    if text.contains('.') {
        return FqdnPattern::parse(text)
            .map(Destination::Fqdn)
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "`{text}` is not an address, a hostname, or a group or vendor of the policy{}",
        if p.groups.len() <= 3 {
            " (give --policy to name groups)"
        } else {
            ""
        }
    ))
}

/// What a destination of a block is, resolved.
#[derive(Clone, Debug)]
pub enum Target {
    /// An address or range.
    Net(IpNet),
    /// A hostname pattern.
    Fqdn(FqdnPattern),
    /// Groups (one for a group, every group of a vendor).
    Groups(Vec<GroupId>),
}

/// A response resolved and in force.
#[derive(Clone, Debug)]
pub struct Enforced {
    /// Its id.
    pub id: ResponseId,
    /// `quarantine`, `block` or `throttle`.
    pub action: &'static str,
    /// What it targets, for people.
    pub target: String,
    /// What it does, resolved.
    pub kind: Kind,
}

/// A resolved action.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Everything to and from `subject` denied except with `allow`.
    Quarantine {
        /// The isolated addresses.
        subject: Vec<IpNet>,
        /// Who may still talk to it (the never-block list is added when
        /// matching).
        allow: PeerSet,
    },
    /// Traffic between `from` (everyone when `None`) and `to` denied.
    Block {
        /// The destination.
        to: Target,
        /// The sources.
        from: Option<GroupId>,
    },
    /// A vendor's egress limit.
    Throttle {
        /// The vendor's groups.
        groups: Vec<GroupId>,
        /// The vendor's name.
        vendor: String,
        /// Bytes per window.
        bytes: u64,
        /// The window.
        per: Duration,
    },
}

/// The responses in force, resolved against one policy.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// What is enforced.
    pub enforced: Vec<Enforced>,
    /// What nothing may cut.
    pub never: PeerSet,
    /// The never-block list as addresses (groups and workloads through
    /// the policy, hostnames left out), each with the entry it came from.
    pub never_addrs: Vec<(IpNet, String)>,
    /// Responses in force that are not enforced here, and why.
    pub warnings: Vec<String>,
    /// The document's generation.
    pub generation: u64,
    /// When the set in force next changes by itself (ms since the epoch).
    pub next_expiry: Option<i64>,
}

/// Why a response is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The never-block entries every process adds: the resolvers of
/// `/etc/resolv.conf`. (Loopback is refused as a target on its own: see
/// [`Overlay::resolve`].)
#[must_use]
pub fn system_never_block() -> Vec<(IpNet, String)> {
    let mut out: Vec<(IpNet, String)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("nameserver")
                && let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
            {
                out.push((IpNet::from(ip), format!("DNS resolver {ip}")));
            }
        }
    }
    out
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A target that is (or holds) a loopback address: traffic on it never
/// leaves the host, and cutting it breaks the host's own services.
fn loopback(n: &IpNet) -> Result<(), Refused> {
    let lo: [IpNet; 2] = [
        IpNet::V4(
            ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default(),
        ),
        IpNet::V6(ipnet::Ipv6Net::new(std::net::Ipv6Addr::LOCALHOST, 128).unwrap_or_default()),
    ];
    if lo.iter().any(|l| overlaps(l, n)) {
        return Err(Refused(format!(
            "{} is loopback: a response never targets the host's own loopback",
            show_net(n)
        )));
    }
    Ok(())
}

impl Overlay {
    /// Resolve the responses of `doc` in force at `now_ms` against
    /// `policy`, with `extra_never` (the process's own never-block
    /// addresses) added to the document's list. A response that no longer
    /// resolves (a group renamed) or now hits the never-block list is left
    /// out with a warning: enforcement never cuts what it must not.
    #[must_use]
    pub fn build(
        doc: &Responses,
        policy: &CompiledPolicy,
        now_ms: i64,
        extra_never: &[(IpNet, String)],
    ) -> Overlay {
        let mut warnings = Vec::new();
        let (mut never, unknown) = PeerSet::resolve_known(&doc.never_block, policy);
        warnings.extend(
            unknown
                .into_iter()
                .map(|e| format!("never-block list: {e}")),
        );
        for (n, why) in extra_never {
            never.push_net(*n, why.clone());
        }
        let p = policy.policy();
        let mut never_addrs = never.nets.clone();
        for g in &never.groups {
            for n in policy
                .group_addresses(*g, &|_| Vec::new())
                .unwrap_or_default()
            {
                never_addrs.push((n, p.group_name(*g).to_string()));
            }
        }
        for w in never.workloads.iter().filter_map(|w| p.workload(*w)) {
            for ip in &w.ips {
                never_addrs.push((IpNet::from(*ip), w.name.clone()));
            }
        }
        let mut out = Overlay {
            enforced: Vec::new(),
            never,
            never_addrs,
            warnings,
            generation: doc.generation,
            next_expiry: doc.next_expiry(now_ms),
        };
        for r in doc.in_force(now_ms) {
            match out.resolve(r, policy) {
                Ok(e) => out.enforced.push(e),
                Err(Refused(why)) => out
                    .warnings
                    .push(format!("response {} is not enforced: {why}", r.id)),
            }
        }
        out
    }

    /// Resolve `r`, refusing it when it names what the policy does not
    /// have or would cut what is on the never-block list.
    ///
    /// # Errors
    /// Why it cannot be enforced.
    pub fn resolve(&self, r: &Response, policy: &CompiledPolicy) -> Result<Enforced, Refused> {
        let p = policy.policy();
        let kind = match &r.action {
            Action::Quarantine { subject, allow } => {
                let nets = match subject {
                    Subject::Address(n) => vec![*n],
                    Subject::Workload(name) => {
                        let w = p
                            .workload_id(name)
                            .and_then(|id| p.workload(id))
                            .ok_or_else(|| Refused(unknown_workload(policy, name)))?;
                        if w.ips.is_empty() {
                            return Err(Refused(format!("workload `{name}` has no addresses")));
                        }
                        w.ips.iter().map(|ip| IpNet::from(*ip)).collect()
                    }
                };
                for n in &nets {
                    loopback(n)?;
                }
                self.check_subject(policy, &nets, subject)?;
                let allow = PeerSet::resolve(allow, policy).map_err(Refused)?;
                Kind::Quarantine {
                    subject: nets,
                    allow,
                }
            }
            Action::Block { to, from } => {
                let from = match from {
                    None => None,
                    Some(name) => Some(
                        p.group_id(name)
                            .ok_or_else(|| Refused(unknown_name(policy, name, "a group")))?,
                    ),
                };
                let to = match to {
                    Destination::Net(n) => {
                        loopback(n)?;
                        Target::Net(*n)
                    }
                    Destination::Fqdn(f) => Target::Fqdn(f.clone()),
                    Destination::Group(name) => {
                        let g = p
                            .group_id(name)
                            .ok_or_else(|| Refused(unknown_name(policy, name, "a group")))?;
                        if p.group(g).is_some_and(|g| g.builtin) {
                            return Err(Refused(format!(
                                "`{name}` is a built-in group (every address of its kind): too broad to block; quarantine the source instead"
                            )));
                        }
                        Target::Groups(vec![g])
                    }
                    Destination::Vendor(name) => Target::Groups(vendor_groups(policy, name)?),
                };
                self.check_destination(policy, &to)?;
                Kind::Block { to, from }
            }
            Action::Throttle { vendor, bytes, per } => Kind::Throttle {
                groups: vendor_groups(policy, vendor)?,
                vendor: vendor.clone(),
                bytes: bytes.0,
                per: per.0,
            },
        };
        Ok(Enforced {
            id: r.id.clone(),
            action: r.action.name(),
            target: r.action.target(),
            kind,
        })
    }

    fn check_subject(
        &self,
        policy: &CompiledPolicy,
        nets: &[IpNet],
        subject: &Subject,
    ) -> Result<(), Refused> {
        let refuse = |why: &str| {
            Err(Refused(format!(
                "{subject} is on the never-block list ({why}); quarantining it could cut what must stay reachable"
            )))
        };
        for n in nets {
            if let Some((_, why)) = self.never_addrs.iter().find(|(m, _)| overlaps(m, n)) {
                return refuse(why);
            }
            if let Some(why) = self.never.matching(policy, &Endpoint::ip(n.network())) {
                return refuse(&why);
            }
        }
        Ok(())
    }

    fn check_destination(&self, policy: &CompiledPolicy, to: &Target) -> Result<(), Refused> {
        let refuse = |why: String| {
            Err(Refused(format!(
                "the destination is on the never-block list ({why}); blocking it could cut what must stay reachable"
            )))
        };
        let p = policy.policy();
        match to {
            Target::Net(n) => {
                if let Some((_, why)) = self.never_addrs.iter().find(|(m, _)| overlaps(m, n)) {
                    return refuse(why.clone());
                }
                if let Some(why) = self.never.matching(policy, &Endpoint::ip(n.network())) {
                    return refuse(why);
                }
            }
            Target::Fqdn(f) => {
                if let Some(n) = self
                    .never
                    .fqdns
                    .iter()
                    .find(|n| n.matches(&f.name) || f.matches(&n.name) || *n == f)
                {
                    return refuse(n.to_string());
                }
                let ep = Endpoint {
                    host: Some(f.name.clone()),
                    ..Endpoint::default()
                };
                if let Some(why) = self.never.matching(policy, &ep) {
                    return refuse(why);
                }
            }
            Target::Groups(groups) => {
                for g in groups {
                    let closure = p.group_closure(*g);
                    if let Some(n) = self.never.groups.iter().find(|n| closure.contains(n)) {
                        return refuse(p.group_name(*n).to_string());
                    }
                    let addrs = policy
                        .group_addresses(*g, &|_| Vec::new())
                        .unwrap_or_default();
                    for a in &addrs {
                        if let Some((_, why)) =
                            self.never_addrs.iter().find(|(m, _)| overlaps(m, a))
                        {
                            return refuse(why.clone());
                        }
                        if let Some(why) = self.never.matching(policy, &Endpoint::ip(a.network())) {
                            return refuse(why);
                        }
                    }
                    let fqdns = p
                        .group_closure(*g)
                        .into_iter()
                        .filter_map(|id| p.group(id))
                        .flat_map(|g| g.fqdns.iter())
                        .find(|f| {
                            self.never
                                .fqdns
                                .iter()
                                .any(|n| n.matches(&f.name) || *n == **f)
                        });
                    if let Some(f) = fqdns {
                        return refuse(f.to_string());
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a response denies `src` reaching `dst`: the first that
    /// does, and why.
    #[must_use]
    pub fn denies(
        &self,
        policy: &CompiledPolicy,
        src: &Endpoint,
        dst: &Endpoint,
    ) -> Option<(&Enforced, String)> {
        let inside = |nets: &[IpNet], ep: &Endpoint| {
            ep.ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
        };
        for e in &self.enforced {
            match &e.kind {
                Kind::Quarantine { subject, allow } => {
                    for (me, peer, dir) in [(src, dst, "from"), (dst, src, "to")] {
                        if inside(subject, me)
                            && allow.matching(policy, peer).is_none()
                            && self.never.matching(policy, peer).is_none()
                        {
                            return Some((
                                e,
                                format!(
                                    "response {} quarantines {} (traffic {dir} it)",
                                    e.id, e.target
                                ),
                            ));
                        }
                    }
                }
                Kind::Block { to, from } => {
                    let hit = match to {
                        Target::Net(n) => inside(std::slice::from_ref(n), dst),
                        Target::Fqdn(f) => dst.host.as_ref().is_some_and(|h| f.matches(h)),
                        Target::Groups(gs) => {
                            let m = policy.membership(dst);
                            gs.iter().any(|g| m.contains(*g))
                        }
                    };
                    let from_ok = from.is_none_or(|g| policy.membership(src).contains(g));
                    if hit && from_ok && self.never.matching(policy, dst).is_none() {
                        return Some((e, format!("response {} blocks {}", e.id, e.target)));
                    }
                }
                Kind::Throttle { .. } => {}
            }
        }
        None
    }

    /// The lowest throttle on any of `groups` (a destination's groups):
    /// bytes per window and the response.
    #[must_use]
    pub fn throttle(&self, groups: &[GroupId]) -> Option<(u64, Duration, &Enforced)> {
        self.enforced
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::Throttle {
                    groups: g,
                    bytes,
                    per,
                    ..
                } if g.iter().any(|x| groups.contains(x)) => Some((*bytes, *per, e)),
                _ => None,
            })
            .min_by(|a, b| {
                // Compare rates: bytes per second.
                let ra = a.0 as f64 / a.1.as_secs_f64().max(1e-3);
                let rb = b.0 as f64 / b.1.as_secs_f64().max(1e-3);
                ra.total_cmp(&rb)
            })
    }
}

fn unknown_workload(policy: &CompiledPolicy, name: &str) -> String {
    let p = policy.policy();
    match cordon_yaml::closest(name, p.workloads.iter().map(|w| w.name.as_str())) {
        Some(best) => {
            format!("no workload named `{name}` in the inventory (did you mean `{best}`?)")
        }
        None => format!("no workload named `{name}` in the inventory"),
    }
}

fn vendor_groups(policy: &CompiledPolicy, name: &str) -> Result<Vec<GroupId>, Refused> {
    let p = policy.policy();
    let groups: Vec<GroupId> = p
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.vendor.as_ref().is_some_and(|v| v.name == name))
        .filter_map(|(i, _)| u32::try_from(i).ok().map(GroupId))
        .collect();
    if groups.is_empty() {
        let vendors: Vec<&str> = p
            .groups
            .iter()
            .filter_map(|g| g.vendor.as_ref().map(|v| v.name.as_str()))
            .collect();
        return Err(Refused(
            match cordon_yaml::closest(name, vendors.iter().copied()) {
                Some(best) => {
                    format!("no vendor named `{name}` in the policy (did you mean `{best}`?)")
                }
                None => format!("no vendor named `{name}` in the policy"),
            },
        ));
    }
    Ok(groups)
}
