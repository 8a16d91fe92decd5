//! Least-privilege allow rules from observed traffic: the group pairs and
//! ports stored flows (replayed with a policy's groups) actually used.

use std::collections::{BTreeMap, BTreeSet};

use cordon_core::{Protocol, WellKnownGroup, first_user_group};
use cordon_flow::{Flow, Observed};
use cordon_policy::fmt::format_policy;
use cordon_policy::raw::{RawPolicy, RawRule, Spanned};
use cordon_policy::{Action, LoadOptions, Mode, Policy, PolicyError, PortRange};

/// More distinct ports than this between two groups are proposed as the
/// whole protocol, for review.
const MAX_LISTED_PORTS: usize = 16;

/// A proposed policy.
#[derive(Clone, Debug)]
pub struct Recommendation {
    /// The policy as YAML (valid: it was checked).
    pub text: String,
    /// Rules proposed.
    pub rules: usize,
    /// Flows the rules are drawn from.
    pub flows: u64,
}

/// Collects the group pairs and ports of accepted flows.
#[derive(Debug, Default)]
pub struct Recommender {
    /// (from, to) → protocol → ports seen.
    edges: BTreeMap<(String, String), BTreeMap<u8, BTreeSet<u16>>>,
    counted: u64,
}

impl Recommender {
    /// Count `flow` (enriched with the policy whose groups are used).
    pub fn observe(&mut self, f: &Flow) {
        if f.observed == Some(Observed::Rejected) {
            return;
        }
        let Some(e) = &f.enrichment else { return };
        let pick = |groups: &[cordon_flow::Name]| -> Option<String> {
            first_user_group(groups)
                .or_else(|| {
                    groups
                        .iter()
                        .find(|g| WellKnownGroup::from_name(g) == Some(WellKnownGroup::Internet))
                })
                .map(|g| g.to_string())
        };
        let (Some(from), Some(to)) = (pick(&e.src_groups), pick(&e.dst_groups)) else {
            return;
        };
        self.counted += 1;
        self.edges
            .entry((from, to))
            .or_default()
            .entry(f.protocol)
            .or_default()
            .insert(f.dst_port);
    }

    /// `policy` with its rules replaced by one allow per group pair seen,
    /// in audit mode with a default deny, named `name`.
    ///
    /// # Errors
    /// The proposal does not validate (a defect: it is built from a valid
    /// policy's groups).
    pub fn finish(
        self,
        policy: &Policy,
        name: &str,
        source: &str,
        load: &LoadOptions,
    ) -> Result<Recommendation, PolicyError> {
        let mut raw: RawPolicy = policy.raw.clone();
        let pos = raw.name.pos;
        raw.name = Spanned::new(name.to_string(), pos);
        raw.description = Some(format!(
            "Least-privilege allows proposed from {} observed flows; review, then switch to enforce",
            self.counted
        ));
        raw.mode = Some(Spanned::new(Mode::Audit, pos));
        raw.default = Some(Spanned::new(Action::Deny, pos));
        raw.rules = self
            .edges
            .into_iter()
            .map(|((from, to), protocols)| {
                let mut ports = Vec::new();
                for (proto, seen) in protocols {
                    let protocol = Protocol(proto);
                    if !protocol.has_ports() || seen.len() > MAX_LISTED_PORTS {
                        ports.push(PortRange {
                            protocol: Some(protocol),
                            first: 0,
                            last: u16::MAX,
                        });
                    } else {
                        ports.extend(seen.into_iter().map(|p| PortRange {
                            protocol: Some(protocol),
                            first: p,
                            last: p,
                        }));
                    }
                }
                RawRule {
                    name: Spanned::new(format!("{from}-to-{to}"), pos),
                    description: Some("observed traffic".to_string()),
                    from: vec![Spanned::new(from, pos)],
                    to: vec![Spanned::new(to, pos)],
                    ports: ports.into_iter().map(|p| Spanned::new(p, pos)).collect(),
                    action: Spanned::new(Action::Allow, pos),
                    limit: None,
                    log: false,
                    mode: None,
                }
            })
            .collect();
        let text = format_policy(&raw);
        // What is proposed must be a valid policy.
        cordon_policy::parse_policy(source, &text, load)?;
        Ok(Recommendation {
            text,
            rules: raw.rules.len(),
            flows: self.counted,
        })
    }
}
