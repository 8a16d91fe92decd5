//! `cordon policy lint`: rules that cannot take effect, allows wider than
//! needed, and third parties without the paperwork.

use serde::Serialize;

use crate::model::{Action, Containment, GroupId, Mode, Policy, Rule};

/// How much a lint finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LintLevel {
    /// Probably a mistake or a gap in the policy.
    Warning,
    /// Worth a look.
    Info,
}

/// One lint finding.
#[derive(Clone, Debug, Serialize)]
pub struct LintFinding {
    /// Stable identifier of the check.
    pub code: &'static str,
    /// How much it matters.
    pub level: LintLevel,
    /// What is wrong.
    pub message: String,
    /// Where: `file:line:col`.
    pub at: Option<String>,
    /// What to do.
    pub hint: String,
    #[serde(skip)]
    pos: Option<cordon_yaml::Pos>,
}

/// Every check, with a line of explanation, for `--help`.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "shadowed-rule",
        "an allow rule that deny rules cover completely, so it never allows anything",
    ),
    (
        "redundant-rule",
        "a rule that another rule with the same action covers completely",
    ),
    (
        "wide-allow",
        "an allow with `any` or `internet` on a side, or on every port",
    ),
    (
        "unused-group",
        "a group no rule uses, directly or through other groups",
    ),
    (
        "empty-group",
        "a label selector that matches no workload in the inventory",
    ),
    (
        "vendor-missing",
        "an external group without vendor metadata",
    ),
    (
        "vendor-no-identities",
        "a vendor group that names no cloud identities, so its roles and keys in audit logs are anonymous",
    ),
    (
        "vendor-no-limit",
        "an allow to a vendor without an egress limit",
    ),
    (
        "audit-rule",
        "a rule left in audit mode inside an enforcing policy",
    ),
    (
        "mode-on-allow",
        "`mode` on an allow rule, where it has no effect",
    ),
    (
        "default-allow",
        "a policy whose default is allow (not zero trust)",
    ),
];

struct Linter<'p> {
    policy: &'p Policy,
    containment: Containment,
    out: Vec<LintFinding>,
}

impl Linter<'_> {
    fn at(&self, pos: Option<cordon_yaml::Pos>) -> Option<String> {
        pos.map(|p| format!("{}:{p}", self.policy.file))
    }

    fn push(
        &mut self,
        code: &'static str,
        level: LintLevel,
        pos: Option<cordon_yaml::Pos>,
        message: String,
        hint: impl Into<String>,
    ) {
        let at = self.at(pos);
        self.out.push(LintFinding {
            code,
            level,
            message,
            at,
            hint: hint.into(),
            pos,
        });
    }

    /// Whether every (from, to, port) of `rule` is covered by one of `by`.
    fn covered(&self, rule: &Rule, by: &[&Rule]) -> bool {
        rule.from.iter().all(|f| {
            rule.to.iter().all(|t| {
                rule.port_list().iter().all(|p| {
                    by.iter()
                        .any(|d| self.containment.rule_covers(d, *f, *t, p))
                })
            })
        })
    }
}

/// Run every check on `policy`.
pub fn lint(policy: &Policy) -> Vec<LintFinding> {
    let mut l = Linter {
        policy,
        containment: Containment::new(policy),
        out: Vec::new(),
    };
    let denies: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| r.action == Action::Deny)
        .collect();
    let name = |g: &GroupId| policy.group_name(*g).to_string();

    for (i, rule) in policy.rules.iter().enumerate() {
        if rule.action == Action::Allow && l.covered(rule, &denies) {
            l.push(
                "shadowed-rule",
                LintLevel::Warning,
                rule.pos,
                format!(
                    "rule `{}` never takes effect: deny rules cover all it allows",
                    rule.name
                ),
                "deny overrides allow regardless of order; narrow the deny or remove this rule",
            );
        } else {
            let others: Vec<&Rule> = policy
                .rules
                .iter()
                .enumerate()
                .filter(|(j, o)| {
                    *j != i
                        && o.action == rule.action
                        && policy.rule_mode(o) == policy.rule_mode(rule)
                })
                // Of two identical rules, only the later one is reported.
                .filter(|(j, o)| !(l.covered(o, &[rule]) && *j > i))
                .map(|(_, o)| o)
                .collect();
            if others.iter().any(|o| l.covered(rule, &[o])) {
                let by = others
                    .iter()
                    .find(|o| l.covered(rule, &[o]))
                    .map_or("?", |o| o.name.as_str());
                l.push(
                    "redundant-rule",
                    LintLevel::Info,
                    rule.pos,
                    format!(
                        "rule `{}` adds nothing: rule `{by}` already covers it",
                        rule.name
                    ),
                    "remove one of them",
                );
            }
        }
        if rule.action == Action::Allow {
            let wide: Vec<String> = rule
                .from
                .iter()
                .chain(&rule.to)
                .filter(|g| **g == GroupId::ANY || **g == GroupId::INTERNET)
                .map(name)
                .collect();
            if !wide.is_empty() {
                l.push(
                    "wide-allow",
                    LintLevel::Warning,
                    rule.pos,
                    format!(
                        "rule `{}` allows `{}` on a side",
                        rule.name,
                        wide.join("`, `")
                    ),
                    "name the groups that need this access; for egress, name FQDN or vendor groups",
                );
            } else if rule.port_list().iter().any(|p| p.protocol.is_none()) {
                l.push(
                    "wide-allow",
                    LintLevel::Warning,
                    rule.pos,
                    format!("rule `{}` allows every protocol and port", rule.name),
                    "list the ports the traffic needs, such as `tcp/443`",
                );
            }
            if rule.mode.is_some() {
                l.push(
                    "mode-on-allow",
                    LintLevel::Info,
                    rule.pos,
                    format!(
                        "rule `{}` sets `mode`, which only affects deny rules",
                        rule.name
                    ),
                    "remove `mode` from allow rules",
                );
            }
            for to in &rule.to {
                let Some(group) = policy.group(*to) else {
                    continue;
                };
                if group.external && group.vendor.is_some() && rule.limit.is_none() {
                    l.push(
                        "vendor-no-limit",
                        LintLevel::Warning,
                        rule.pos,
                        format!("rule `{}` allows traffic to vendor group `{}` without a `limit`", rule.name, group.name),
                        "add `limit: {bytes_out: 50MiB, per: 1h}` sized to the vendor's normal volume",
                    );
                }
            }
        }
        if policy.mode == Mode::Enforce
            && rule.mode == Some(Mode::Audit)
            && rule.action == Action::Deny
        {
            l.push(
                "audit-rule",
                LintLevel::Warning,
                rule.pos,
                format!(
                    "rule `{}` is in audit mode: it records would-deny but stops nothing",
                    rule.name
                ),
                "once its would-deny records look right, remove `mode: audit`",
            );
        }
    }

    // Groups used by rules, and everything nested in them.
    let mut used = vec![false; policy.groups.len()];
    let mut stack: Vec<GroupId> = policy
        .rules
        .iter()
        .flat_map(|r| r.from.iter().chain(&r.to))
        .copied()
        .collect();
    while let Some(g) = stack.pop() {
        if let Some(slot) = used.get_mut(g.index())
            && !*slot
        {
            *slot = true;
            if let Some(group) = policy.group(g) {
                stack.extend(&group.members);
            }
        }
    }
    for (g, group) in policy.groups.iter().enumerate() {
        if group.builtin {
            continue;
        }
        // A group that classifies data (`data:`) serves detection even
        // when no rule names it.
        if !used.get(g).copied().unwrap_or(true) && group.data.is_empty() {
            l.push(
                "unused-group",
                LintLevel::Info,
                group.pos,
                format!("group `{}` is not used by any rule", group.name),
                "remove it, or write the rule it was meant for",
            );
        }
        if let Some(labels) = &group.labels {
            let matches = policy
                .workloads
                .iter()
                .any(|w| labels.iter().all(|(k, v)| w.labels.get(k) == Some(v)));
            if !matches {
                let selector: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                l.push(
                    "empty-group",
                    LintLevel::Warning,
                    group.pos,
                    format!(
                        "group `{}` selects labels {} but no workload in the inventory has them",
                        group.name,
                        selector.join(",")
                    ),
                    if policy.workloads.is_empty() {
                        "no inventory was loaded: pass --inventory FILE or set spec.inventory_files"
                    } else {
                        "check the labels against the inventory"
                    },
                );
            }
        }
        if group.external && group.vendor.is_none() {
            l.push(
                "vendor-missing",
                LintLevel::Warning,
                group.pos,
                format!("external group `{}` has no vendor metadata", group.name),
                "add `vendor: {name, data, criticality, contact, contract}`: third-party registers (PCI DSS 12.8, DORA Art. 28) need it",
            );
        }
        if group.vendor.is_some() && group.identities.is_empty() {
            l.push(
                "vendor-no-identities",
                LintLevel::Info,
                group.pos,
                format!(
                    "vendor group `{}` names no cloud identities: its cross-account roles and keys are not told apart from anyone else's in audit logs",
                    group.name
                ),
                "add `identities: [...]`: the vendor's AWS account ids and role ARNs, GCP service accounts, Azure app ids (none if it has no access to your clouds)",
            );
        }
    }
    if policy.default == Action::Allow {
        l.push(
            "default-allow",
            LintLevel::Warning,
            policy.raw.default.as_ref().map(|d| d.pos),
            "the policy default is allow: anything no rule denies passes".to_string(),
            "zero trust means `default: deny` with explicit allows",
        );
    }
    l.out
        .sort_by(|a, b| a.pos.cmp(&b.pos).then(a.code.cmp(b.code)));
    l.out
}
