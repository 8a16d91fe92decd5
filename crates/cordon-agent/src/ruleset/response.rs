//! Responses on one host: the responses in force, resolved for this
//! host's addresses into three pairs of address sets that are always in
//! the table (empty when nothing is in force), so a response made or
//! undone changes set elements in place and never the table's shape.
//!
//! - `resp_peer`: remote addresses this host must not exchange a packet
//!   with (a quarantined remote subject, unless this host is on its
//!   allow-list; a blocked destination, when this host is one of the
//!   block's sources; a block's sources, when this host is its
//!   destination).
//! - `resp_self`: this host's own addresses under quarantine, and
//!   `resp_allow`: the peers they may still reach (the allow-lists, every
//!   quarantine's at once when several apply, and the never-block list).
//!
//! The rules that read them come before `ct state established` in both
//! base chains, so an established connection stops at its next packet;
//! the agent also deletes its conntrack entry.

use std::net::IpAddr;

use cordon_policy::{CompiledPolicy, Endpoint};
use cordon_response::{Kind, Overlay, Target};
use ipnet::IpNet;

use super::model::{self, Element, Hook, Key, Match, Rule, Set, Side, Verdict};

/// The response sets' contents for one host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseSets {
    /// Remote addresses cut off both ways.
    pub peer: Vec<IpNet>,
    /// This host's quarantined addresses.
    pub local: Vec<IpNet>,
    /// Who they may still reach: IPv4 and IPv6 ranges.
    pub allow: [Vec<Element>; 2],
}

/// Ranges in both `a` and `b` (ascending disjoint ranges each).
fn intersect(a: &[Element], b: &[Element]) -> Vec<Element> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let first = x.first.max(y.first);
        let last = x.last.min(y.last);
        if first <= last {
            out.push(Element {
                first,
                last,
                jump: None,
            });
        }
        if x.last < y.last {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

impl ResponseSets {
    /// Whether the table's response rules stop a connection between `src`
    /// and `dst`, one of which is in `self_ips` (the same test the kernel
    /// makes, for cutting established connections).
    #[must_use]
    pub fn cuts(&self, src: IpAddr, dst: IpAddr, self_ips: &[IpAddr]) -> bool {
        let (local, peer) = if self_ips.contains(&src) {
            (src, dst)
        } else {
            (dst, src)
        };
        let inside = |nets: &[IpNet], ip: IpAddr| nets.iter().any(|n| n.contains(&ip));
        let allowed = |ip: IpAddr| {
            let (family, key) = match ip {
                IpAddr::V4(a) => (0, u128::from(u32::from(a))),
                IpAddr::V6(a) => (1, u128::from(a)),
            };
            self.allow
                .get(family)
                .is_some_and(|r| r.iter().any(|e| e.first <= key && key <= e.last))
        };
        inside(&self.peer, peer) || (inside(&self.local, local) && !allowed(peer))
    }
}

/// What the responses of `overlay` mean for a host with `self_ips`;
/// hostnames resolve through `resolve`. Also returns what is not
/// enforced here, and why.
#[must_use]
pub fn response_sets(
    overlay: &Overlay,
    compiled: &CompiledPolicy,
    self_ips: &[IpAddr],
    resolve: &dyn Fn(&str) -> Vec<IpAddr>,
) -> (ResponseSets, Vec<String>) {
    let mut out = ResponseSets::default();
    let mut warnings = overlay.warnings.clone();
    let mut never: Vec<IpNet> = overlay.never_addrs.iter().map(|(n, _)| *n).collect();
    for f in overlay.never.fqdns.iter().filter(|f| !f.wildcard) {
        never.extend(resolve(f.name.as_str()).into_iter().map(IpNet::from));
    }
    // Each local quarantine's allowed peers, as ranges per family.
    let mut allows: Vec<[Vec<Element>; 2]> = Vec::new();
    let covered = |nets: &[IpNet], ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
    for e in &overlay.enforced {
        match &e.kind {
            Kind::Quarantine { subject, allow } => {
                let mine: Vec<IpAddr> = self_ips
                    .iter()
                    .copied()
                    .filter(|ip| covered(subject, ip))
                    .collect();
                if !mine.is_empty() {
                    out.local.extend(mine.iter().map(|ip| IpNet::from(*ip)));
                    let Some(mut peers) = allow.addresses(compiled, resolve) else {
                        // `any` on the allow-list: nothing is cut.
                        continue;
                    };
                    peers.extend(never.iter().copied());
                    allows.push(by_family(&peers));
                }
                // Other hosts of the subject, when this host may not talk
                // to them.
                let allowed_here = self_ips.iter().all(|ip| {
                    let me = Endpoint::ip(*ip);
                    allow.matching(compiled, &me).is_some()
                        || overlay.never.matching(compiled, &me).is_some()
                });
                if !allowed_here && mine.len() < self_ips.len() {
                    out.peer.extend(subject.iter().copied());
                }
            }
            Kind::Block { to, from } => {
                let dest: Vec<IpNet> = match to {
                    Target::Net(n) => vec![*n],
                    Target::Fqdn(f) if f.wildcard => {
                        warnings.push(format!(
                            "response {}: `{f}` is not enforced by the agent (a wildcard cannot be resolved to addresses; the gateway enforces it)",
                            e.id
                        ));
                        continue;
                    }
                    Target::Fqdn(f) => resolve(f.name.as_str())
                        .into_iter()
                        .map(IpNet::from)
                        .collect(),
                    Target::Groups(gs) => gs
                        .iter()
                        .filter_map(|g| compiled.group_addresses(*g, resolve))
                        .flatten()
                        .collect(),
                };
                let source_here = from.is_none_or(|g| {
                    self_ips
                        .iter()
                        .any(|ip| compiled.membership(&Endpoint::ip(*ip)).contains(g))
                });
                if source_here {
                    out.peer.extend(dest.iter().copied());
                }
                if self_ips.iter().any(|ip| covered(&dest, ip)) {
                    match from {
                        Some(g) => out
                            .peer
                            .extend(compiled.group_addresses(*g, resolve).unwrap_or_default()),
                        // Blocked for every source: this host keeps only
                        // the never-block list.
                        None => {
                            out.local.extend(
                                self_ips
                                    .iter()
                                    .filter(|ip| covered(&dest, ip))
                                    .map(|ip| IpNet::from(*ip)),
                            );
                            allows.push(by_family(&never));
                        }
                    }
                }
            }
            Kind::Throttle { .. } => {}
        }
    }
    // Several quarantines of this host: a peer must be allowed by all.
    let allow = allows.into_iter().reduce(|a, b| {
        let [a4, a6] = a;
        let [b4, b6] = b;
        [intersect(&a4, &b4), intersect(&a6, &b6)]
    });
    if let Some(a) = allow {
        out.allow = a;
    }
    // Never cut a never-block address as a peer either.
    out.peer.retain(|n| {
        !never
            .iter()
            .any(|m| m.contains(&n.network()) && m.prefix_len() <= n.prefix_len())
    });
    (out, warnings)
}

fn by_family(nets: &[IpNet]) -> [Vec<Element>; 2] {
    let (v6, v4): (Vec<IpNet>, Vec<IpNet>) = nets
        .iter()
        .copied()
        .partition(|n| matches!(n, IpNet::V6(_)));
    [model::ranges(&v4), model::ranges(&v6)]
}

/// The six response sets, filled from `sets`.
#[must_use]
pub fn sets(sets: &ResponseSets) -> Vec<Set> {
    let mut out = Vec::new();
    for (name, ranges, comment) in [
        (
            "resp_peer",
            by_family(&sets.peer),
            "responses: peers cut off both ways",
        ),
        (
            "resp_self",
            by_family(&sets.local),
            "responses: this host's quarantined addresses",
        ),
        (
            "resp_allow",
            sets.allow.clone(),
            "responses: who a quarantined address may still reach",
        ),
    ] {
        let [v4, v6] = ranges;
        for (family, elements, key) in [("v4", v4, Key::Ipv4), ("v6", v6, Key::Ipv6)] {
            out.push(Set {
                name: format!("{name}_{family}"),
                key,
                map: false,
                interval: true,
                comment: Some(comment.into()),
                elements,
            });
        }
    }
    out
}

/// The rules of base chain `hook` that read the response sets.
#[must_use]
pub fn rules(hook: Hook, audit: bool) -> Vec<Rule> {
    // Input: the peer is the source and this host the destination.
    let (peer, own) = match hook {
        Hook::Input => (Side::Source, Side::Destination),
        Hook::Output => (Side::Destination, Side::Source),
    };
    let (log, verdict) = if audit {
        ("cordon would-deny response: ", Verdict::Accept)
    } else {
        ("cordon deny response: ", Verdict::Drop)
    };
    let rule = |matches: Vec<Match>| Rule {
        matches,
        counter: true,
        log: Some(log.to_string()),
        verdict: verdict.clone(),
        comment: Some("response".into()),
    };
    let within = |v6: bool, side: Side, set: &str, negate: bool| Match::AddressIn {
        v6,
        side,
        set: format!("{set}_{}", if v6 { "v6" } else { "v4" }),
        negate,
    };
    let mut out = Vec::new();
    for v6 in [false, true] {
        out.push(rule(vec![within(v6, peer, "resp_peer", false)]));
        out.push(rule(vec![
            within(v6, own, "resp_self", false),
            within(v6, peer, "resp_allow", true),
        ]));
    }
    out
}
