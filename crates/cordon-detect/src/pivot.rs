//! Other hosts of a C2 server: once a host is found beaconing to a server,
//! every other internal host that talked to the same server in the day
//! around it (before or after) is part of the same intrusion — a second
//! implant, a file share the attacker staged data on, a payload download.
//! Attackers reuse their infrastructure; a hunter's first pivot from a C2
//! finding is "who else talked to it".
//!
//! Only other channels are this pivot's: a host reaching the server on the
//! beacon's own port is either a second implant, which the beacon detector
//! finds on its own terms, or one more user of a shared periodic service
//! (a telemetry endpoint many hosts poll), which is no news. A share the
//! attacker staged data on, a payload download, an upload on another port
//! are what the pivot adds.
//!
//! The engine keeps, for each destination, the few distinct sources that
//! reached it recently (bounded: as many destinations as the beacon
//! detector keeps pairs, a few sources each). A beacon finding of `medium` or worse marks its destination
//! as a C2 server; the sources remembered and any later ones become
//! `threat-intel` findings (the indicator comes from this network's own
//! detection), at most `medium`. A server stays marked for a week after
//! its beacon (attackers come back to the same server the next day); the
//! day before it is as far back as contacts are remembered.
//!
//! The second pivot is the compromised host's own next steps: a host found
//! beaconing (`medium` or worse) or in contact with a C2 server or a
//! threat-intel indicator is under an attacker's control, and its
//! connections to cloud storage or a file drop (by name, from DNS or the
//! enforcement point) from an hour before that finding to a week after are
//! where its data may have gone (T1567.002): `cloud-exfiltration`, at most
//! `medium`, whatever the volume (a few documents are a few kilobytes).

use std::net::IpAddr;

use cordon_core::FindingKind;
use cordon_flow::Flow;
use rustc_hash::{FxHashMap, FxHashSet};

use cordon_policy::{FqdnPattern, Hostname};

use crate::bounded::{Aged, Bounded};
use crate::detectors::{calibrate, fact, finding};
use crate::finding::{Finding, Severity};

/// How far before the beacon another host's contact counts.
const BEFORE_MS: i64 = 24 * 3_600_000;
/// How long after the beacon a server stays marked.
const AFTER_MS: i64 = 7 * 24 * 3_600_000;
/// How far before a host was found compromised its storage contacts count.
const STORAGE_BEFORE_MS: i64 = 3_600_000;
/// Cloud-storage names remembered per host.
const MAX_STORAGE: usize = 4;
/// Host names whose storage verdict is remembered (forgotten all at once
/// when full).
const MAX_NAMES: usize = 4096;
/// Distinct sources remembered per destination.
const MAX_SOURCES: usize = 4;
/// Servers marked as C2.
const MAX_SERVERS: usize = 1024;

/// One source's contacts with a destination.
struct Contact {
    /// The first flow (its attributes dropped), for the finding.
    first: Flow,
    last_ms: i64,
    flows: u64,
    bytes_out: u64,
    ports: Vec<u16>,
}

struct Contacts {
    by_source: Vec<Contact>,
    last_ms: i64,
}

impl Aged for Contacts {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// A destination found acting as a C2 server.
struct Server {
    /// The host found beaconing to it, and the finding that says so.
    beacon_src: Option<IpAddr>,
    /// The beacon's port.
    port: Option<u16>,
    finding: String,
    at_ms: i64,
}

/// One host's contacts with one cloud-storage name.
struct Storage {
    host: String,
    first: Flow,
    last_ms: i64,
    flows: u64,
    bytes_out: u64,
}

struct StorageContacts {
    by_name: Vec<Storage>,
    last_ms: i64,
}

impl Aged for StorageContacts {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// A host found under an attacker's control: since when, and the finding.
struct Compromised {
    at_ms: i64,
    finding: String,
}

/// Who else talked to each C2 server, and where compromised hosts went.
pub(crate) struct Pivot {
    contacts: Bounded<IpAddr, Contacts>,
    servers: FxHashMap<IpAddr, Server>,
    reported: FxHashSet<(IpAddr, IpAddr)>,
    storage_patterns: Vec<FqdnPattern>,
    /// Names already judged storage or not.
    storage_names: FxHashMap<String, bool>,
    storage: Bounded<IpAddr, StorageContacts>,
    compromised: FxHashMap<IpAddr, Compromised>,
    storage_reported: FxHashSet<(IpAddr, String)>,
}

impl Pivot {
    /// A pivot remembering at most `max_destinations` destinations.
    pub(crate) fn new(max_destinations: usize) -> Self {
        Pivot {
            contacts: Bounded::new(max_destinations),
            servers: FxHashMap::default(),
            reported: FxHashSet::default(),
            storage_patterns: crate::detectors::exfil::storage_patterns(),
            storage_names: FxHashMap::default(),
            storage: Bounded::new(max_destinations),
            compromised: FxHashMap::default(),
            storage_reported: FxHashSet::default(),
        }
    }

    /// Remember `flow` when it reaches cloud storage; report it when its
    /// source is compromised.
    fn observe_storage(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let Some(host) = flow.hostname.as_deref() else {
            return;
        };
        if crate::detectors::vendor(flow).is_some()
            || !crate::detectors::src_internal(flow)
            || !self.is_storage(host)
        {
            return;
        }
        let c = self.storage.entry(flow.src_ip, || StorageContacts {
            by_name: Vec::new(),
            last_ms: flow.start_ms,
        });
        c.last_ms = c.last_ms.max(flow.start_ms);
        match c.by_name.iter_mut().find(|s| s.host == host) {
            Some(s) => {
                s.last_ms = s.last_ms.max(flow.start_ms);
                s.flows += 1;
                s.bytes_out += flow.bytes_out;
            }
            None => {
                let mut first = flow.clone();
                first.attrs = Default::default();
                let contact = Storage {
                    host: host.to_string(),
                    first,
                    last_ms: flow.start_ms,
                    flows: 1,
                    bytes_out: flow.bytes_out,
                };
                if c.by_name.len() < MAX_STORAGE {
                    c.by_name.push(contact);
                } else if let Some(stale) = c.by_name.iter_mut().min_by_key(|s| s.last_ms) {
                    *stale = contact;
                }
            }
        }
        if self.compromised.contains_key(&flow.src_ip) {
            self.report_storage(flow.src_ip, out);
        }
    }

    /// Whether `host` is cloud storage, judged once per name (named flows
    /// repeat a few names; parsing and matching each flow's name would run
    /// for every flow a gateway or DNS log names).
    fn is_storage(&mut self, host: &str) -> bool {
        if let Some(known) = self.storage_names.get(host) {
            return *known;
        }
        let storage = Hostname::parse(host)
            .is_ok_and(|h| self.storage_patterns.iter().any(|p| p.matches(&h)));
        if self.storage_names.len() >= MAX_NAMES {
            self.storage_names.clear();
        }
        self.storage_names.insert(host.to_string(), storage);
        storage
    }

    /// Report the cloud-storage contacts of compromised `src` not reported
    /// yet.
    fn report_storage(&mut self, src: IpAddr, out: &mut Vec<Finding>) {
        let (Some(h), Some(c)) = (self.compromised.get(&src), self.storage.get_mut(&src)) else {
            return;
        };
        for s in &c.by_name {
            let since = s.last_ms - h.at_ms;
            if !(-STORAGE_BEFORE_MS..=AFTER_MS).contains(&since)
                || !self.storage_reported.insert((src, s.host.clone()))
            {
                continue;
            }
            let mut f = finding(
                FindingKind::CloudExfiltration,
                &format!("c2-storage|{src}>{}", s.host),
                &s.first,
                65.0,
                format!(
                    "{src}, a host under an attacker's control ({}), reached cloud storage {}: {} flows, {} bytes out",
                    h.finding, s.host, s.flows, s.bytes_out
                ),
            );
            f.last_ms = f.last_ms.max(s.last_ms);
            fact(&mut f, "compromise_finding", h.finding.as_str());
            fact(&mut f, "storage", s.host.as_str());
            fact(&mut f, "flows", s.flows);
            fact(&mut f, "bytes_out", s.bytes_out);
            calibrate(
                &mut f,
                (
                    Severity::Medium,
                    format!(
                        "cloud storage reached by a host this network's detection found compromised ({}); at most medium",
                        h.finding
                    ),
                ),
            );
            out.push(f);
        }
    }

    /// Remember `flow`'s source as a contact of its destination; report it
    /// when the destination is a known C2 server.
    pub(crate) fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        self.observe_storage(flow, out);
        let dst = flow.dst_ip;
        if dst.is_unspecified() || flow.src_ip == dst {
            return;
        }
        let c = self.contacts.entry(dst, || Contacts {
            by_source: Vec::new(),
            last_ms: flow.start_ms,
        });
        c.last_ms = c.last_ms.max(flow.start_ms);
        let known = c.by_source.len();
        match c
            .by_source
            .iter_mut()
            .find(|s| s.first.src_ip == flow.src_ip)
        {
            Some(s) => {
                s.last_ms = s.last_ms.max(flow.start_ms);
                s.flows += 1;
                s.bytes_out += flow.bytes_out;
                if s.ports.len() < 8 && !s.ports.contains(&flow.dst_port) {
                    s.ports.push(flow.dst_port);
                }
            }
            None => {
                let mut first = flow.clone();
                first.attrs = Default::default();
                let contact = Contact {
                    first,
                    last_ms: flow.start_ms,
                    flows: 1,
                    bytes_out: flow.bytes_out,
                    ports: vec![flow.dst_port],
                };
                if known < MAX_SOURCES {
                    c.by_source.push(contact);
                } else if let Some(stale) = c.by_source.iter_mut().min_by_key(|s| s.last_ms) {
                    // Full: the source seen least recently makes room.
                    *stale = contact;
                }
            }
        }
        if self.servers.contains_key(&dst) {
            self.report(dst, out);
        }
    }

    /// Look at a new finding: a beacon of `medium` or worse marks its
    /// destination as a C2 server.
    pub(crate) fn finding(&mut self, f: &Finding, out: &mut Vec<Finding>) {
        // A host beaconing, or talking to a C2 server or an indicator, is
        // compromised.
        if matches!(f.kind, FindingKind::Beaconing | FindingKind::ThreatIntel)
            && f.severity >= Severity::Medium
            && let Some(src) = f.src_entity.ip
            && (self.compromised.len() < MAX_SERVERS || self.compromised.contains_key(&src))
        {
            let h = self.compromised.entry(src).or_insert_with(|| Compromised {
                at_ms: f.first_ms,
                finding: f.id.clone(),
            });
            h.at_ms = h.at_ms.min(f.first_ms);
            self.report_storage(src, out);
        }
        if f.kind != FindingKind::Beaconing || f.severity < Severity::Medium {
            return;
        }
        let Some(dst) = f.dst_entity.ip else {
            return;
        };
        if self.servers.len() >= MAX_SERVERS && !self.servers.contains_key(&dst) {
            return;
        }
        self.servers.entry(dst).or_insert_with(|| Server {
            beacon_src: f.src_entity.ip,
            port: f.port,
            finding: f.id.clone(),
            at_ms: f.first_ms,
        });
        self.report(dst, out);
    }

    /// Report the sources of `server` not reported yet.
    fn report(&mut self, server: IpAddr, out: &mut Vec<Finding>) {
        let (Some(s), Some(c)) = (self.servers.get(&server), self.contacts.get_mut(&server)) else {
            return;
        };
        for contact in &c.by_source {
            let src = contact.first.src_ip;
            let other_channel = contact.ports.iter().any(|p| Some(*p) != s.port);
            if Some(src) == s.beacon_src
                || !other_channel
                || !(-BEFORE_MS..=AFTER_MS).contains(&(contact.last_ms - s.at_ms))
                || !self.reported.insert((src, server))
            {
                continue;
            }
            let beacon = s
                .beacon_src
                .map_or_else(|| "another host".to_string(), |b| b.to_string());
            let mut f = finding(
                FindingKind::ThreatIntel,
                &format!("c2-contact|{src}>{server}"),
                &contact.first,
                65.0,
                format!(
                    "{src} talked to {server}, which {beacon} was found beaconing to ({}): {} flows, {} bytes out, ports {:?}",
                    s.finding, contact.flows, contact.bytes_out, contact.ports
                ),
            );
            f.last_ms = f.last_ms.max(contact.last_ms);
            fact(&mut f, "indicator", server.to_string());
            fact(&mut f, "indicator_source", "this network's beacon finding");
            fact(&mut f, "beacon_finding", s.finding.as_str());
            fact(&mut f, "flows", contact.flows);
            fact(&mut f, "bytes_out", contact.bytes_out);
            calibrate(
                &mut f,
                (
                    Severity::Medium,
                    format!(
                        "a second host in contact with a C2 server this network's detection found ({}); at most medium",
                        s.finding
                    ),
                ),
            );
            out.push(f);
        }
    }

    /// Destinations and hosts remembered.
    pub(crate) fn state(&self) -> usize {
        self.contacts.len() + self.storage.len()
    }

    /// Destinations and hosts forgotten to stay within bounds.
    pub(crate) fn evicted(&self) -> u64 {
        self.contacts.evicted() + self.storage.evicted()
    }
}
