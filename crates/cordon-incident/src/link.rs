//! Linking findings into incidents: deterministic, so the same findings
//! always give the same incidents, whatever order they arrive in.
//!
//! Each finding names the entities it is about:
//! - its **actors**: the internal host it acts from (or, for traffic coming
//!   in, the internal host it lands on), the vendor whose trusted path it
//!   rides, and the external end of command-and-control, exfiltration and
//!   inbound attacks;
//! - what it **reaches**: the internal host a lateral move lands on, which
//!   becomes an actor of what follows.
//!
//! Findings from cloud audit logs join the same paths across planes: their
//! actors are the cloud identity that made the call, the address it came
//! from when that is on the Internet (the same address a flow finding
//! names as its far end), and the storage buckets they touched (the same
//! bucket an exfiltration flow's hostname names).
//!
//! Two findings are on one path when they share an actor, or when one
//! reaches the other's actor, and they are less than [`WINDOW_MS`] apart
//! (a reach only links to what happens after it). Connected findings form
//! a candidate; a candidate becomes an incident when it is a chain (two or
//! more attack stages, one of them at least medium) or when one finding is
//! high or critical on its own. Lone low and medium findings stay findings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cordon_core::ip::is_internet;
use cordon_detect::finding::Entity;
use cordon_detect::kb::Kb;
use cordon_detect::{Finding, Severity};

use crate::model::{Incident, IncidentEntity, IncidentStage, Role, Status};

/// Findings further apart than this are not linked (24 h).
pub const WINDOW_MS: i64 = 24 * 3_600_000;

/// The stage of findings whose stage comes from context only.
const POLICY_STAGE: &str = "policy";

/// What linking gave: the incidents, and the earlier incidents that were
/// folded into another because new findings joined their paths.
#[derive(Debug, Default)]
pub struct Linked {
    /// Every incident, oldest first.
    pub incidents: Vec<Incident>,
    /// `(absorbed id, id it now lives under)`.
    pub absorbed: Vec<(String, String)>,
}

/// Link `findings` into incidents. Ids of `previous` incidents are kept when
/// their findings are linked again, so an incident keeps its id as it grows.
pub fn link(findings: &[Finding], previous: &[Incident], kb: &Kb) -> Linked {
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by(|&a, &b| {
        (findings[a].first_ms, &findings[a].id).cmp(&(findings[b].first_ms, &findings[b].id))
    });
    let findings: Vec<&Finding> = order.iter().map(|&i| &findings[i]).collect();
    let keys: Vec<Keys> = findings.iter().map(|f| Keys::of(f)).collect();
    let mut sets = DisjointSets::new(findings.len());

    // Shared actors: walk each actor's findings in time order.
    let mut by_actor: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        for a in &k.actors {
            by_actor.entry(a.as_str()).or_default().push(i);
        }
    }
    for list in by_actor.values() {
        let mut reach_until = i64::MIN;
        let mut last = None;
        for &i in list {
            if let Some(prev) = last
                && findings[i].first_ms <= reach_until.saturating_add(WINDOW_MS)
            {
                sets.union(prev, i);
            }
            reach_until = reach_until.max(findings[i].last_ms);
            last = Some(i);
        }
    }
    // Reaches: a host reached links to what that host does next.
    for (i, k) in keys.iter().enumerate() {
        for r in &k.reaches {
            for &j in by_actor.get(r.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                let after = findings[j].last_ms >= findings[i].first_ms;
                let near = findings[j].first_ms <= findings[i].last_ms.saturating_add(WINDOW_MS);
                if after && near {
                    sets.union(i, j);
                }
            }
        }
    }

    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..findings.len() {
        components.entry(sets.find(i)).or_default().push(i);
    }
    let owner: HashMap<&str, &Incident> = previous
        .iter()
        .flat_map(|inc| inc.findings.iter().map(move |f| (f.as_str(), inc)))
        .collect();
    let mut out = Linked::default();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut members: Vec<Vec<usize>> = components.into_values().collect();
    members.sort_by_key(|m| m[0]);
    for member in members {
        let chain: Vec<&Finding> = member.iter().map(|&i| findings[i]).collect();
        if !qualifies(&chain) {
            continue;
        }
        // The id: the oldest earlier incident among its findings, else new.
        let mut earlier: Vec<&Incident> = chain
            .iter()
            .filter_map(|f| owner.get(f.id.as_str()).copied())
            .collect();
        earlier.sort_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)));
        earlier.dedup_by(|a, b| a.id == b.id);
        let id = match earlier.first() {
            Some(inc) if !used.contains(&inc.id) => inc.id.clone(),
            _ => fresh_id(&chain[0].id, &used),
        };
        for inc in earlier.iter().filter(|inc| inc.id != id) {
            out.absorbed.push((inc.id.clone(), id.clone()));
        }
        used.insert(id.clone());
        let member_keys: Vec<&Keys> = member.iter().map(|&i| &keys[i]).collect();
        out.incidents.push(build(id, &chain, &member_keys, kb));
    }
    out
}

/// A component is an incident when it is a chain or one finding is grave.
fn qualifies(chain: &[&Finding]) -> bool {
    let worst = chain.iter().map(|f| f.severity).max();
    let stages: BTreeSet<&str> = chain
        .iter()
        .map(|f| f.stage.as_str())
        .filter(|s| *s != POLICY_STAGE)
        .collect();
    match worst {
        Some(s) if s >= Severity::High => true,
        Some(s) if s >= Severity::Medium => stages.len() >= 2,
        _ => false,
    }
}

fn fresh_id(seed: &str, used: &BTreeSet<String>) -> String {
    let hash = |text: &str| cordon_detect::finding::fnv64(text.bytes());
    let mut salt = 0u32;
    loop {
        let text = if salt == 0 {
            seed.to_string()
        } else {
            format!("{seed}#{salt}")
        };
        let id = format!("INC-{:010x}", hash(&text) >> 24);
        if !used.contains(&id) {
            return id;
        }
        salt += 1;
    }
}

/// The entity keys of one finding.
#[derive(Debug, Default)]
struct Keys {
    actors: Vec<String>,
    reaches: Vec<String>,
    /// `(key, role, entity)` for the incident's entity list.
    shown: Vec<(String, Role, Entity)>,
}

/// Inside the organisation: a workload, or an address that is not on the
/// internet, unless a vendor owns it (vendors sit in documentation or
/// private ranges too).
fn internal(e: &Entity) -> bool {
    e.vendor.is_none() && (e.workload.is_some() || e.ip.is_some_and(|ip| !is_internet(ip)))
}

fn host_key(e: &Entity) -> Option<String> {
    match (&e.workload, e.ip) {
        (Some(w), _) => Some(format!("w:{w}")),
        (None, Some(ip)) => Some(format!("ip:{ip}")),
        _ => None,
    }
}

/// The bucket an S3 ARN names (`arn:aws:s3:::users-data/key` →
/// `users-data`).
fn bucket_of_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:s3:::")?;
    let bucket = rest.split('/').next()?;
    (!bucket.is_empty()).then(|| bucket.to_ascii_lowercase())
}

/// The bucket a virtual-hosted S3 name names
/// (`users-data.s3.eu-west-1.amazonaws.com` → `users-data`).
fn bucket_of_host(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let (bucket, rest) = host.split_once(".s3")?;
    (rest.ends_with(".amazonaws.com") && !bucket.is_empty()).then(|| bucket.to_string())
}

fn external_key(e: &Entity) -> Option<String> {
    match (&e.hostname, e.ip) {
        (Some(h), _) => Some(format!("x:{h}")),
        (None, Some(ip)) => Some(format!("x:{ip}")),
        _ => None,
    }
}

impl Keys {
    fn of(f: &Finding) -> Keys {
        use cordon_core::FindingKind as K;
        let mut k = Keys::default();
        let (src, dst) = (&f.src_entity, &f.dst_entity);
        let src_in = internal(src);
        if src_in {
            if let Some(key) = host_key(src) {
                k.actors.push(key.clone());
                k.shown.push((key, Role::Host, src.clone()));
            }
            if internal(dst)
                && let Some(key) = host_key(dst)
            {
                // An internal destination is reached, not acted from; it
                // is named when it is the target (not one of a sweep's).
                k.reaches.push(key.clone());
                if matches!(f.kind, K::LateralMovement | K::BruteForce) {
                    k.shown.push((key, Role::Host, dst.clone()));
                }
            }
        } else if internal(dst) {
            // Coming in: the host it lands on, and who it came from.
            if let Some(key) = host_key(dst) {
                k.actors.push(key.clone());
                k.shown.push((key, Role::Host, dst.clone()));
            }
            if src.vendor.is_none()
                && let Some(key) = external_key(src)
            {
                k.actors.push(key.clone());
                k.shown.push((key, Role::External, src.clone()));
            }
        }
        for e in [src, dst] {
            if let Some(v) = &e.vendor {
                let key = format!("v:{v}");
                k.actors.push(key.clone());
                k.shown.push((key, Role::Vendor, e.clone()));
            }
        }
        if f.kind.is_cloud_plane() {
            // The identity (a role rather than one of its sessions), else
            // the principal as recorded.
            let fact = |k: &str| {
                f.evidence
                    .facts
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .filter(|p| !p.is_empty())
            };
            if let Some(p) = fact("identity").or_else(|| fact("principal")) {
                let key = format!("p:{p}");
                k.actors.push(key.clone());
                k.shown.push((key, Role::Identity, src.clone()));
            }
            if !src_in
                && src.ip.is_some_and(is_internet)
                && let Some(key) = external_key(src)
            {
                k.actors.push(key.clone());
                k.shown.push((key, Role::External, src.clone()));
            }
            if let Some(b) = bucket_of_arn(&f.dst) {
                k.actors.push(format!("b:{b}"));
            }
            // Buckets data was copied to (replication's destinations).
            let to = f.evidence.facts.get("to_buckets");
            for arn in to
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(b) = arn.as_str().and_then(bucket_of_arn) {
                    k.actors.push(format!("b:{b}"));
                }
            }
        } else if f.kind.is_exfiltration()
            && let Some(b) = dst.hostname.as_deref().and_then(bucket_of_host)
        {
            k.actors.push(format!("b:{b}"));
        }
        let outward = matches!(
            f.kind,
            K::Beaconing
                | K::ThreatIntel
                | K::LongConnection
                | K::Exfiltration
                | K::CloudExfiltration
        );
        if src_in
            && !internal(dst)
            && dst.vendor.is_none()
            && let Some(key) = external_key(dst)
        {
            if outward {
                k.actors.push(key.clone());
            }
            k.shown.push((key, Role::External, dst.clone()));
        }
        k
    }
}

fn build(id: String, chain: &[&Finding], keys: &[&Keys], kb: &Kb) -> Incident {
    // Stages in kill-chain order.
    let mut stages: BTreeMap<(usize, String), IncidentStage> = BTreeMap::new();
    for f in chain {
        let known = kb.stages.iter().find(|s| s.id == f.stage);
        let key = (kb.stage_order(&f.stage), f.stage.clone());
        let stage = stages.entry(key).or_insert_with(|| IncidentStage {
            stage: f.stage.clone(),
            name: known.map_or_else(|| f.stage.clone(), |s| s.name.clone()),
            tactic: known.and_then(|s| s.tactic.clone()),
            findings: Vec::new(),
            techniques: Vec::new(),
            first_ms: f.first_ms,
            last_ms: f.last_ms,
        });
        stage.findings.push(f.id.clone());
        stage.first_ms = stage.first_ms.min(f.first_ms);
        stage.last_ms = stage.last_ms.max(f.last_ms);
        for t in &f.techniques {
            if !stage.techniques.contains(t) {
                stage.techniques.push(t.clone());
            }
        }
    }
    let stages: Vec<IncidentStage> = stages.into_values().collect();
    let mut techniques = Vec::new();
    for s in &stages {
        for t in &s.techniques {
            if !techniques.contains(t) {
                techniques.push(t.clone());
            }
        }
    }
    let tactics: BTreeSet<String> = chain.iter().flat_map(|f| f.tactics.clone()).collect();
    let controls: BTreeSet<String> = chain
        .iter()
        .flat_map(|f| f.controls.iter().map(|c| c.id.clone()))
        .collect();

    // Entities, most involved first within each role.
    let mut seen: BTreeMap<String, (Role, Entity, usize)> = BTreeMap::new();
    for k in keys {
        for (key, role, e) in &k.shown {
            let slot = seen.entry(key.clone()).or_insert((*role, e.clone(), 0));
            slot.2 += 1;
            if slot.1.hostname.is_none() {
                slot.1.hostname.clone_from(&e.hostname);
            }
        }
    }
    let mut ranked: Vec<(Role, usize, String, Entity)> = seen
        .into_iter()
        .map(|(key, (role, e, n))| (role, n, key, e))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let entities: Vec<IncidentEntity> = ranked
        .into_iter()
        .map(|(role, _, key, e)| IncidentEntity {
            role,
            label: match role {
                Role::Vendor => key.trim_start_matches("v:").to_string(),
                Role::Identity => key.trim_start_matches("p:").to_string(),
                _ => e.label(),
            },
            ip: e.ip,
            hostname: e.hostname.clone(),
            groups: e.groups.clone(),
        })
        .collect();

    let attack: Vec<&IncidentStage> = stages.iter().filter(|s| s.stage != POLICY_STAGE).collect();
    let worst = chain
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Low);
    let reaches_out = attack
        .iter()
        .any(|s| s.stage == "command-and-control" || s.stage == "exfiltration");
    let (severity, severity_reason) = if attack.len() >= 3 && reaches_out {
        (
            Severity::Critical,
            format!(
                "a chain of {} attack stages that reaches {}",
                attack.len(),
                attack.last().map_or("", |s| s.name.as_str()).to_lowercase()
            ),
        )
    } else if attack.len() >= 2 {
        (
            worst,
            format!(
                "a chain of {} attack stages; its gravest finding is {}",
                attack.len(),
                worst.as_str()
            ),
        )
    } else {
        (
            worst,
            format!("one {} finding, grave on its own", worst.as_str()),
        )
    };

    let host = entities
        .iter()
        .find(|e| e.role == Role::Host)
        .map(|e| e.label.clone());
    let vendor = entities
        .iter()
        .find(|e| e.role == Role::Vendor)
        .map(|e| e.label.clone());
    let title = match (attack.first(), attack.last()) {
        (Some(a), Some(b)) if attack.len() >= 2 => {
            let mut t = format!("{} to {}", a.name, b.name.to_lowercase());
            if let Some(h) = &host {
                t.push_str(&format!(" on {h}"));
            }
            if let Some(v) = &vendor {
                t.push_str(&format!(" through {v}"));
            }
            format!("{t} ({} stages)", attack.len())
        }
        _ => {
            let f = chain
                .iter()
                .max_by_key(|f| f.severity)
                .copied()
                .unwrap_or(chain[0]);
            format!("{}: {} → {}", f.title, f.src, f.dst)
        }
    };

    Incident {
        id,
        title,
        severity,
        severity_reason,
        status: Status::Open,
        history: Vec::new(),
        findings: chain.iter().map(|f| f.id.clone()).collect(),
        first_ms: chain.iter().map(|f| f.first_ms).min().unwrap_or(0),
        last_ms: chain.iter().map(|f| f.last_ms).max().unwrap_or(0),
        stages,
        entities,
        techniques,
        tactics: tactics.into_iter().collect(),
        controls: controls.into_iter().collect(),
    }
}

/// Union-find over finding indexes; the root of a set is its oldest
/// member, so components come out in time order.
struct DisjointSets(Vec<usize>);

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets((0..n).collect())
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        let (low, high) = (ra.min(rb), ra.max(rb));
        self.0[high] = low;
    }
}
