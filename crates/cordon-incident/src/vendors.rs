//! The register of third parties the network actually talks to: declared
//! vendors (the policy's external groups with vendor metadata) and every
//! other external party, named by its domain when a hostname is known,
//! else by its address block. Built in one pass over the flows, with
//! bounded memory, then joined with findings and incidents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use cordon_core::ip::is_internet;
use cordon_core::{Protocol, Verdict};
use cordon_detect::Finding;
use cordon_flow::Flow;
use cordon_policy::Policy;
use ipnet::IpNet;
use serde::Serialize;

use crate::model::Incident;

/// Parties kept; flows to further new parties are counted, not listed.
pub const MAX_PARTIES: usize = 50_000;
/// Values kept per list (workloads, hostnames, ports...).
const MAX_LIST: usize = 50;

/// How a party was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifiedBy {
    /// A vendor the policy declares.
    Policy,
    /// The registered domain of the hostnames seen.
    Domain,
    /// The address block (/24 or /48) of the addresses seen.
    AddressBlock,
}

/// Use of an egress limit: the busiest window against the limit.
#[derive(Clone, Debug, Serialize)]
pub struct LimitUse {
    /// The rule carrying the limit.
    pub rule: String,
    /// Bytes allowed per window.
    pub limit_bytes: u64,
    /// The window, in seconds.
    pub window_s: u64,
    /// Bytes sent in the busiest window.
    pub peak_bytes: u64,
    /// Peak over limit, in percent.
    pub peak_percent: f64,
}

/// One third party.
#[derive(Clone, Debug, Serialize)]
pub struct Party {
    /// Vendor name, domain or address block.
    pub name: String,
    /// Whether the policy declares it as a vendor.
    pub declared: bool,
    /// How it was identified.
    pub identified_by: IdentifiedBy,
    /// Data categories shared with it (declared vendors).
    pub data: Vec<String>,
    /// Criticality (declared vendors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    /// Contact (declared vendors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Contract reference (declared vendors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Policy groups the party's addresses or names fall in.
    pub groups: Vec<String>,
    /// Hostnames seen (up to 50).
    pub hostnames: Vec<String>,
    /// Addresses seen (up to 50).
    pub addresses: Vec<String>,
    /// Internal workloads (or addresses) that talk to it (up to 50).
    pub internal: Vec<String>,
    /// `tcp/443`-style services used (up to 50).
    pub ports: Vec<String>,
    /// Flows.
    pub flows: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// Bytes received from it.
    pub bytes_in: u64,
    /// Days with traffic.
    pub days: u64,
    /// Average bytes sent per day with traffic.
    pub bytes_out_per_day: u64,
    /// Average bytes received per day with traffic.
    pub bytes_in_per_day: u64,
    /// Flows the policy denied (or would deny in audit mode).
    pub denied: u64,
    /// Rules that allow its traffic.
    pub rules: Vec<String>,
    /// Egress limits on its rules and their use.
    pub limits: Vec<LimitUse>,
    /// First flow, ms since the epoch.
    pub first_ms: i64,
    /// Last flow.
    pub last_ms: i64,
    /// Findings involving it.
    pub findings: Vec<String>,
    /// Incidents involving it.
    pub incidents: Vec<String>,
}

#[derive(Default)]
struct Acc {
    declared: bool,
    by: Option<IdentifiedBy>,
    groups: BTreeSet<String>,
    hostnames: BTreeSet<String>,
    addresses: BTreeSet<IpAddr>,
    internal: BTreeSet<String>,
    ports: BTreeSet<String>,
    flows: u64,
    bytes_out: u64,
    bytes_in: u64,
    days: BTreeSet<i64>,
    denied: u64,
    rules: BTreeSet<String>,
    /// (rule, window index) → bytes out.
    windows: HashMap<(String, i64), u64>,
    first_ms: i64,
    last_ms: i64,
}

fn put<T: Ord>(set: &mut BTreeSet<T>, value: T) {
    if set.len() < MAX_LIST {
        set.insert(value);
    }
}

/// Two-level public suffixes common enough to matter for naming
/// (`example.co.uk` is a party; `co.uk` is not).
const SECOND_LEVEL: [&str; 12] = [
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "co.jp", "co.nz", "com.br", "com.cn",
    "co.in", "co.za",
];

/// The registered domain of `host`: its last two labels, or three under a
/// two-level public suffix.
pub fn registered_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() <= 2 {
        return host;
    }
    let last_two = labels[labels.len() - 2..].join(".");
    let take = if SECOND_LEVEL.contains(&last_two.as_str()) {
        3
    } else {
        2
    };
    labels[labels.len().saturating_sub(take)..].join(".")
}

/// The block an address is listed under: /24 for IPv4, /48 for IPv6.
pub fn address_block(ip: IpAddr) -> IpNet {
    let len = if ip.is_ipv4() { 24 } else { 48 };
    IpNet::new(ip, len).map_or_else(|_| IpNet::from(ip), |n| n.trunc())
}

/// Accumulates the register over flows.
pub struct Register<'p> {
    policy: Option<&'p Policy>,
    /// Vendor groups of the policy: group name → vendor name.
    vendor_groups: HashMap<String, String>,
    /// Egress limits of the policy's rules: rule name → (bytes, window s),
    /// looked up for every allowed flow.
    limits: HashMap<String, (u64, u64)>,
    parties: BTreeMap<String, Acc>,
    /// Flows to parties beyond [`MAX_PARTIES`].
    pub overflow: u64,
    /// Flows seen.
    pub seen: u64,
}

impl<'p> Register<'p> {
    /// An empty register; with `policy`, declared vendors are named and
    /// described from it.
    pub fn new(policy: Option<&'p Policy>) -> Self {
        let mut parties = BTreeMap::new();
        // Declared vendors are listed even when no flow reached them.
        for v in policy
            .into_iter()
            .flat_map(|p| p.groups.iter())
            .filter_map(|g| g.vendor.as_ref())
        {
            parties.insert(
                v.name.clone(),
                Acc {
                    declared: true,
                    by: Some(IdentifiedBy::Policy),
                    first_ms: i64::MAX,
                    last_ms: i64::MIN,
                    ..Acc::default()
                },
            );
        }
        let vendor_groups = policy
            .into_iter()
            .flat_map(|p| p.groups.iter())
            .filter_map(|g| g.vendor.as_ref().map(|v| (g.name.clone(), v.name.clone())))
            .collect();
        let limits = policy
            .into_iter()
            .flat_map(|p| p.rules.iter())
            .filter_map(|r| {
                let l = r.limit.as_ref()?;
                Some((r.name.clone(), (l.bytes_out.0, l.per.0.as_secs())))
            })
            .collect();
        Register {
            policy,
            vendor_groups,
            limits,
            parties,
            overflow: 0,
            seen: 0,
        }
    }

    /// Count one flow (enriched or not).
    pub fn add(&mut self, f: &Flow) {
        if f.is_snapshot() {
            return;
        }
        self.seen += 1;
        let e = f.enrichment.as_ref();
        let vendor = e.and_then(|e| e.vendor.as_deref());
        // The external end: the vendor's side, else the internet side.
        // Undeclared parties are what the organisation reaches out to;
        // internet clients of its public services are not third parties.
        let outward = match (vendor, e) {
            (Some(v), Some(e)) => {
                let is_vendor = |g: &str| self.vendor_groups.get(g).is_some_and(|n| n == v);
                if e.dst_groups.iter().any(|g| is_vendor(g)) {
                    true
                } else if e.src_groups.iter().any(|g| is_vendor(g)) {
                    false
                } else {
                    e.dst_workload.is_none()
                }
            }
            _ => is_internet(f.dst_ip) && !is_internet(f.src_ip),
        };
        let (ext_ip, int_ip) = if outward {
            (f.dst_ip, f.src_ip)
        } else {
            (f.src_ip, f.dst_ip)
        };
        if vendor.is_none() && !outward {
            return; // internal traffic, or internet clients coming in
        }
        let (key, by, declared) = match (vendor, &f.hostname) {
            (Some(v), _) => (v.to_string(), IdentifiedBy::Policy, true),
            (None, Some(h)) if outward => (registered_domain(h), IdentifiedBy::Domain, false),
            (None, _) => (
                address_block(ext_ip).to_string(),
                IdentifiedBy::AddressBlock,
                false,
            ),
        };
        let limit = e
            .filter(|e| e.verdict == Verdict::Allow)
            .and_then(|e| e.rule.as_deref())
            .and_then(|rule| self.limit_of(rule));
        if !self.parties.contains_key(&key) && self.parties.len() >= MAX_PARTIES {
            self.overflow += 1;
            return;
        }
        let acc = self.parties.entry(key).or_insert_with(|| Acc {
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            ..Acc::default()
        });
        acc.declared |= declared;
        acc.by = Some(acc.by.map_or(by, |b| b.min(by)));
        acc.flows += 1;
        let (out, inn) = if outward {
            (f.bytes_out, f.bytes_in)
        } else {
            (f.bytes_in, f.bytes_out)
        };
        acc.bytes_out = acc.bytes_out.saturating_add(out);
        acc.bytes_in = acc.bytes_in.saturating_add(inn);
        acc.first_ms = acc.first_ms.min(f.start_ms);
        acc.last_ms = acc.last_ms.max(f.end_ms.max(f.start_ms));
        if acc.days.len() < 10_000 {
            acc.days.insert(f.start_ms.div_euclid(86_400_000));
        }
        if outward && let Some(h) = &f.hostname {
            put(&mut acc.hostnames, h.clone());
        }
        put(&mut acc.addresses, ext_ip);
        let internal = e
            .and_then(|e| {
                if outward {
                    e.src_workload.as_deref()
                } else {
                    e.dst_workload.as_deref()
                }
            })
            .map_or_else(|| int_ip.to_string(), str::to_string);
        put(&mut acc.internal, internal);
        let port = if outward {
            f.dst_port
        } else {
            f.src_port.min(f.dst_port)
        };
        put(
            &mut acc.ports,
            format!(
                "{}/{}",
                Protocol(f.protocol).name(),
                if outward { port } else { f.dst_port }
            ),
        );
        if let Some(e) = e {
            let groups = if outward {
                &e.dst_groups
            } else {
                &e.src_groups
            };
            for g in groups.iter() {
                put(&mut acc.groups, g.to_string());
            }
            match e.verdict {
                Verdict::Allow => {
                    if let Some(rule) = e.rule.as_deref() {
                        put(&mut acc.rules, rule.to_string());
                        if let Some(limit) = limit {
                            let window = f.start_ms.div_euclid(limit.1.max(1) as i64 * 1000);
                            let slot = acc.windows.entry((rule.to_string(), window)).or_default();
                            *slot = slot.saturating_add(out);
                        }
                    }
                }
                Verdict::Deny | Verdict::WouldDeny => acc.denied += 1,
            }
        }
    }

    /// The limit of rule `name`: (bytes, window seconds).
    fn limit_of(&self, name: &str) -> Option<(u64, u64)> {
        self.limits.get(name).copied()
    }

    /// The register, declared vendors first, then by bytes sent; findings
    /// and incidents are joined by vendor name, hostname and address.
    pub fn finish(self, findings: &[Finding], incidents: &[Incident]) -> Vec<Party> {
        let mut out = Vec::with_capacity(self.parties.len());
        for (name, acc) in &self.parties {
            let meta = self.policy.and_then(|p| p.vendor(name));
            let involved: Vec<String> = findings
                .iter()
                .filter(|f| {
                    [&f.src_entity, &f.dst_entity].iter().any(|e| {
                        e.vendor.as_deref() == Some(name.as_str())
                            || (!acc.declared
                                && (e.ip.is_some_and(|ip| acc.addresses.contains(&ip))
                                    || e.hostname.as_deref().is_some_and(|h| {
                                        acc.hostnames.contains(h) || registered_domain(h) == *name
                                    })))
                    })
                })
                .map(|f| f.id.clone())
                .collect();
            let incident_ids: Vec<String> = incidents
                .iter()
                .filter(|i| involved.iter().any(|f| i.holds(f)))
                .map(|i| i.id.clone())
                .collect();
            let mut limits = Vec::new();
            for rule in &acc.rules {
                if let Some((bytes, window_s)) = self.limit_of(rule) {
                    let peak = acc
                        .windows
                        .iter()
                        .filter(|((r, _), _)| r == rule)
                        .map(|(_, b)| *b)
                        .max()
                        .unwrap_or(0);
                    limits.push(LimitUse {
                        rule: rule.clone(),
                        limit_bytes: bytes,
                        window_s,
                        peak_bytes: peak,
                        peak_percent: if bytes == 0 {
                            0.0
                        } else {
                            (peak as f64 / bytes as f64 * 1000.0).round() / 10.0
                        },
                    });
                }
            }
            let days = acc.days.len() as u64;
            out.push(Party {
                name: name.clone(),
                declared: acc.declared,
                identified_by: acc.by.unwrap_or(IdentifiedBy::AddressBlock),
                data: meta.map(|v| v.data.clone()).unwrap_or_default(),
                criticality: meta.and_then(|v| v.criticality.map(|c| c.to_string())),
                contact: meta.and_then(|v| v.contact.clone()),
                contract: meta.and_then(|v| v.contract.clone()),
                groups: acc.groups.iter().cloned().collect(),
                hostnames: acc.hostnames.iter().cloned().collect(),
                addresses: acc.addresses.iter().map(ToString::to_string).collect(),
                internal: acc.internal.iter().cloned().collect(),
                ports: acc.ports.iter().cloned().collect(),
                flows: acc.flows,
                bytes_out: acc.bytes_out,
                bytes_in: acc.bytes_in,
                days,
                bytes_out_per_day: acc.bytes_out.checked_div(days).unwrap_or(0),
                bytes_in_per_day: acc.bytes_in.checked_div(days).unwrap_or(0),
                denied: acc.denied,
                rules: acc.rules.iter().cloned().collect(),
                limits,
                first_ms: if acc.flows == 0 { 0 } else { acc.first_ms },
                last_ms: if acc.flows == 0 { 0 } else { acc.last_ms },
                findings: involved,
                incidents: incident_ids,
            });
        }
        out.sort_by(|a, b| {
            b.declared
                .cmp(&a.declared)
                .then(b.bytes_out.cmp(&a.bytes_out))
                .then(a.name.cmp(&b.name))
        });
        out
    }
}

/// The CSV columns: the part of a DORA Art. 28 register of information
/// (Implementing Regulation (EU) 2024/2956, templates B_02.02 and B_05.01)
/// that flows can fill, then what Cordon observed. The same list serves as
/// the PCI DSS 12.8.1 list of third-party service providers.
pub const CSV_COLUMNS: [&str; 20] = [
    "Contractual arrangement reference number",
    "Identification code of the ICT third-party service provider",
    "Type of code to identify the ICT third-party service provider",
    "Name of the ICT third-party service provider",
    "Type of ICT services",
    "Sensitiveness of the data stored or processed by the ICT third-party service provider",
    "Level of reliance on the ICT service",
    "Declared in policy",
    "Contact",
    "Data categories shared",
    "Internal workloads using the service",
    "Policy rules allowing the traffic",
    "Egress limit peak use (%)",
    "Bytes sent per day",
    "Bytes received per day",
    "Flows denied by policy",
    "First seen (UTC)",
    "Last seen (UTC)",
    "Findings",
    "Incidents",
];

/// The register as CSV (RFC 4180), header first.
pub fn csv(parties: &[Party]) -> String {
    let mut out = String::new();
    let header: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| cordon_flow::csv::field(c))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for p in parties {
        let (code, code_type) = match p.identified_by {
            IdentifiedBy::Policy => (
                p.hostnames
                    .first()
                    .map(|h| registered_domain(h))
                    .unwrap_or_default(),
                "domain name",
            ),
            IdentifiedBy::Domain => (p.name.clone(), "domain name"),
            IdentifiedBy::AddressBlock => (p.name.clone(), "IP address block"),
        };
        let peak = p
            .limits
            .iter()
            .map(|l| format!("{}: {}", l.rule, l.peak_percent))
            .collect::<Vec<_>>()
            .join("; ");
        let row = [
            p.contract.clone().unwrap_or_default(),
            code,
            code_type.to_string(),
            p.name.clone(),
            p.ports.join("; "),
            p.data.join("; "),
            p.criticality.clone().unwrap_or_default(),
            if p.declared { "yes" } else { "no" }.to_string(),
            p.contact.clone().unwrap_or_default(),
            p.data.join("; "),
            p.internal.join("; "),
            p.rules.join("; "),
            peak,
            p.bytes_out_per_day.to_string(),
            p.bytes_in_per_day.to_string(),
            p.denied.to_string(),
            time(p.first_ms, p.flows),
            time(p.last_ms, p.flows),
            p.findings.join("; "),
            p.incidents.join("; "),
        ];
        let row: Vec<String> = row.iter().map(|c| cordon_flow::csv::field(c)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn time(ms: i64, flows: u64) -> String {
    if flows == 0 {
        String::new()
    } else {
        cordon_flow::time::format_rfc3339(ms)
    }
}
