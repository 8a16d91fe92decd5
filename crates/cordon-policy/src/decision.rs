//! Requests to the policy and the decisions it gives.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::model::{GroupId, RuleId, WorkloadId};
use crate::ports::Protocol;
pub use cordon_core::Verdict;

/// A request or endpoint written on a command line or in a test case that
/// cannot be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRequest(pub String);
use cordon_core::hostname::Hostname;

/// One side of a connection, identified by whatever is known about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Its address.
    pub ip: Option<IpAddr>,
    /// Its hostname (SNI, Host header, DNS answer).
    pub host: Option<Hostname>,
    /// The workload it is known to be.
    pub workload: Option<WorkloadId>,
    /// The SPIFFE ID it presented.
    pub spiffe: Option<String>,
}

impl Endpoint {
    /// An endpoint known by address only.
    pub fn ip(ip: IpAddr) -> Self {
        Endpoint {
            ip: Some(cordon_core::canonical_ip(ip)),
            ..Endpoint::default()
        }
    }

    /// An endpoint known by hostname only.
    pub fn host(host: Hostname) -> Self {
        Endpoint {
            host: Some(host),
            ..Endpoint::default()
        }
    }
}

/// A connection to decide on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Who opens it.
    pub src: Endpoint,
    /// Where it goes.
    pub dst: Endpoint,
    /// IP protocol.
    pub protocol: Protocol,
    /// Destination port (ignored for protocols without ports).
    pub port: u16,
}

/// Why the verdict is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A matching deny rule (deny overrides allow).
    DenyRule(RuleId),
    /// A matching allow rule, and no deny matched.
    AllowRule(RuleId),
    /// No rule matched; the policy default applies.
    Default,
}

/// A set of groups (sorted ids), borrowed from the compiled policy when it
/// can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSet<'p>(pub(crate) Cow<'p, [u32]>);

impl GroupSet<'_> {
    /// Whether `group` is in the set.
    #[inline]
    pub fn contains(&self, group: GroupId) -> bool {
        list_contains(&self.0, group.0)
    }

    /// The groups in the set, in id order.
    pub fn iter(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.0.iter().map(|g| GroupId(*g))
    }

    /// The group ids, sorted.
    pub fn ids(&self) -> &[u32] {
        &self.0
    }

    /// An identity for the set when it is one the compiled policy interned
    /// (the same identity is the same set while the policy lives), for
    /// callers that cache by set; `None` for a set made for one request.
    pub fn interned(&self) -> Option<(usize, usize)> {
        match &self.0 {
            Cow::Borrowed(ids) => Some((ids.as_ptr() as usize, ids.len())),
            Cow::Owned(_) => None,
        }
    }
}

/// The policy's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<'p> {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
    /// Every matching rule, in rule order.
    pub rules: Vec<RuleId>,
    /// Groups the source is in.
    pub src_groups: GroupSet<'p>,
    /// Groups the destination is in.
    pub dst_groups: GroupSet<'p>,
}

impl Request {
    /// Parse the protocol and port of a request: `tcp/443`, `udp/53`,
    /// `icmp`.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse_port(text: &str) -> Result<(Protocol, u16), InvalidRequest> {
        let range =
            crate::ports::PortRange::parse(text).map_err(|e| InvalidRequest(e.to_string()))?;
        match range.protocol {
            None => Err(InvalidRequest(format!(
                "`{text}`: a request needs one protocol, such as `tcp/443`"
            ))),
            Some(p) if !p.has_ports() => Ok((p, 0)),
            Some(p) if range.first == range.last => Ok((p, range.first)),
            Some(p) => Err(InvalidRequest(format!(
                "`{text}`: a request needs one port, such as `{p}/443`"
            ))),
        }
    }
}

impl Endpoint {
    /// Parse an endpoint as people write it on a command line or in a test:
    /// an IP address; a SPIFFE ID; a workload name from the inventory (which
    /// also brings its first address); or a hostname. Prefixes `ip:`,
    /// `host:` and `workload:` remove any doubt.
    ///
    /// # Errors
    /// A message saying why `text` is none of these.
    pub fn parse(policy: &crate::model::Policy, text: &str) -> Result<Endpoint, InvalidRequest> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("ip:") {
            let ip: IpAddr = rest
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| InvalidRequest(format!("`{rest}` is not an IP address")))?;
            return Ok(Endpoint::ip(ip));
        }
        if let Some(rest) = text.strip_prefix("host:") {
            return Hostname::parse(rest)
                .map(Endpoint::host)
                .map_err(|e| InvalidRequest(e.to_string()));
        }
        if let Some(rest) = text.strip_prefix("workload:") {
            return workload(policy, rest)
                .ok_or_else(|| InvalidRequest(format!("no workload named `{rest}`")));
        }
        if text.starts_with("spiffe://") {
            return Ok(Endpoint {
                spiffe: Some(text.to_string()),
                ..Endpoint::default()
            });
        }
        if let Ok(ip) = text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Endpoint::ip(ip));
        }
        if let Some(e) = workload(policy, text) {
            return Ok(e);
        }
        Hostname::parse(text).map(Endpoint::host).map_err(|e| {
            InvalidRequest(format!(
                "`{text}` is not an IP address, a workload in the inventory, or a hostname: {e}"
            ))
        })
    }
}

fn workload(policy: &crate::model::Policy, name: &str) -> Option<Endpoint> {
    let id = policy.workload_id(name)?;
    Some(Endpoint {
        ip: policy.workload(id).and_then(|w| w.ips.first().copied()),
        workload: Some(id),
        ..Endpoint::default()
    })
}

/// Whether sorted `list` holds `group`.
#[inline]
pub fn list_contains(list: &[u32], group: u32) -> bool {
    if list.len() <= 16 {
        list.contains(&group)
    } else {
        list.binary_search(&group).is_ok()
    }
}
